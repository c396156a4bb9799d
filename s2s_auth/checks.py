"""Django system checks: a misconfiguration fails ``manage.py check`` (and every
management command), not the first request.

=================  ==============================================================
``s2s_auth.E001``  ``S2S_AUTH`` is not a dict, or has keys that are not settings
``s2s_auth.E002``  a name in ``MECHANISMS`` does not resolve to an authentication class
``s2s_auth.E003``  ``JWT_ALGORITHMS`` / ``HTTPSIG_ALGORITHMS`` outside the allow-list
``s2s_auth.W004``  certificate mechanisms enabled, trust anchors not readable
``s2s_auth.W005``  the same with the anchors there, ``REQUIRE_CRL`` on, CRL not readable
``s2s_auth.W006``  ``AUDIT_ENABLED`` without the ``AuditMiddleware``
``s2s_auth.W007``  the ``AuditMiddleware`` before Django's ``AuthenticationMiddleware``
``s2s_auth.E010``  ``AUDIT_WRITE`` is not a mode of the audit writer, or one of its
                   sizes and intervals is not a positive number
``s2s_auth.E008``  a receiving service (``SERVICE_NAME``) without ``TRUST_DOMAIN``
``s2s_auth.E009``  ``http_signature`` enabled without a valid ``HTTPSIG_ORIGIN``
``s2s_auth.E020``  the replay store (``REPLAY_CACHE``) is not shared by the worker
                   processes (LocMem with DEBUG off), accepts everything (Dummy), or
                   is not a configured cache
``s2s_auth.W021``  the replay store's ``add`` is not atomic across processes
                   (FileBasedCache): a replay racing the original may pass
``s2s_auth.W022``  the replay store is Django's own ``DatabaseCache``, whose cull
                   deletes live entries past ``MAX_ENTRIES`` (a forgotten jti can be
                   replayed); s2s_auth's ``ReplayDatabaseCache`` (same table) never does
``s2s_auth.E030``  ``SPIFFE_ID_PATHS`` is not a list of path templates with one
                   ``{name}`` segment, or a JWT-SVID setting is invalid
                   (``JWT_SVID_ALGORITHMS``, ``SPIFFE_JWT_BUNDLES``)
``s2s_auth.E031``  a ``PRINCIPAL_CACHE_*`` setting is not a non-negative number, or
                   the check interval is longer than the max age (the bound)
=================  ==============================================================

Registered in :meth:`s2s_auth.apps.S2SAuthConfig.ready`. Settings are read when a
check runs, so ``override_settings`` applies.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from s2s_auth.conf import DEFAULTS, S2SSettings

__all__ = ["check_settings"]

#: Mechanisms that verify a certificate against the trust anchors (and the CRL).
CERTIFICATE_MECHANISMS = frozenset({"mtls", "service_jwt", "http_signature"})
AUDIT_MIDDLEWARE = "s2s_auth.audit.middleware.AuditMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _user_settings() -> tuple[dict, list[Error]]:
    """The known keys of ``S2S_AUTH`` and the E001 errors for the rest."""
    raw = getattr(settings, "S2S_AUTH", None)
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [
            Error(
                f"S2S_AUTH must be a dict, not {type(raw).__name__}.",
                id="s2s_auth.E001",
            )
        ]
    unknown = sorted(set(raw) - set(DEFAULTS))
    errors = []
    if unknown:
        errors.append(
            Error(
                f"Unknown S2S_AUTH setting(s): {', '.join(unknown)}.",
                hint="Check the spelling; every key and its default is in s2s_auth.conf.DEFAULTS.",
                id="s2s_auth.E001",
            )
        )
    return {k: v for k, v in raw.items() if k in DEFAULTS}, errors


def _mechanisms(conf: S2SSettings) -> list:
    from s2s_auth.mechanisms import mechanism_classes

    try:
        mechanism_classes(conf.MECHANISMS)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="s2s_auth.E002")]
    return []


def _algorithms(conf: S2SSettings) -> list:
    from s2s_auth.core import httpsig, jwk

    errors = []
    for name, allowed in (
        ("JWT_ALGORITHMS", jwk.SUPPORTED_ALGORITHMS),
        ("HTTPSIG_ALGORITHMS", frozenset(httpsig.SUPPORTED_ALGORITHMS)),
    ):
        value = conf.configured(name)
        names = [value] if isinstance(value, str) else list(value or [])
        bad = sorted(str(alg) for alg in names if alg not in allowed)
        if bad or not names:
            errors.append(
                Error(
                    f"S2S_AUTH['{name}'] has algorithm(s) outside the allow-list: "
                    f"{', '.join(bad) or '(none given)'}.",
                    hint=f"Choose from {', '.join(sorted(allowed))}; never none or HMAC.",
                    id="s2s_auth.E003",
                )
            )
    return errors


def _readable(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError:
        return False
    return True


def _pki_files(conf: S2SSettings) -> list:
    names = conf.configured("MECHANISMS")
    enabled = sorted(CERTIFICATE_MECHANISMS & set(names if isinstance(names, list | tuple) else []))
    if not enabled:
        return []
    warnings = []
    anchors = conf.trust_anchors_path
    if not _readable(anchors):
        warnings.append(
            Warning(
                f"Trust anchors {anchors} are not readable, so {', '.join(enabled)} will "
                "refuse every certificate.",
                hint="Run `manage.py s2s_pki init`, or set S2S_AUTH['TRUST_ANCHORS'] / "
                "S2S_AUTH['PKI_DIR'].",
                id="s2s_auth.W004",
            )
        )
    crl = conf.crl_path
    # No CA: W004 says it. With CRL_URL the CRLs are fetched (or re-signed here), not read.
    if not warnings and conf.REQUIRE_CRL and not conf.CRL_URL and not _readable(crl):
        warnings.append(
            Warning(
                f"CRL {crl} is not readable and S2S_AUTH['REQUIRE_CRL'] is on, so "
                f"{', '.join(enabled)} will answer 503 crl_unavailable.",
                hint="Publish a CRL (`manage.py s2s_pki crl`), or set S2S_AUTH['CRL_FILE'].",
                id="s2s_auth.W005",
            )
        )
    return warnings


def _audit_middleware(conf: S2SSettings) -> list:
    if not conf.AUDIT_ENABLED:
        return []
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if AUDIT_MIDDLEWARE not in middleware:
        return [
            Warning(
                f"S2S_AUTH['AUDIT_ENABLED'] is on but {AUDIT_MIDDLEWARE} is not in MIDDLEWARE: "
                "audit records do not follow the request's transaction.",
                hint=f"Add {AUDIT_MIDDLEWARE!r} to MIDDLEWARE after {AUTH_MIDDLEWARE!r}.",
                id="s2s_auth.W006",
            )
        ]
    if AUTH_MIDDLEWARE in middleware and middleware.index(AUDIT_MIDDLEWARE) < middleware.index(
        AUTH_MIDDLEWARE
    ):
        return [
            Warning(
                f"{AUDIT_MIDDLEWARE} comes before {AUTH_MIDDLEWARE} in MIDDLEWARE.",
                hint="Move it after AuthenticationMiddleware.",
                id="s2s_auth.W007",
            )
        ]
    return []


def _audit_write(conf: S2SSettings) -> list:
    from s2s_auth.audit.writer import MODES

    problems = []
    if conf.AUDIT_WRITE not in MODES:
        problems.append(f"AUDIT_WRITE is {conf.AUDIT_WRITE!r}, not one of {', '.join(MODES)}")
    for key in (
        "AUDIT_FLUSH_INTERVAL",
        "AUDIT_BATCH_SIZE",
        "AUDIT_QUEUE_SIZE",
        "AUDIT_QUEUE_TIMEOUT",
    ):
        value = getattr(conf, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"{key} is {value!r}, not a positive number")
    return [
        Error(f"S2S_AUTH: {problem}.", hint="See s2s_auth.audit.writer.", id="s2s_auth.E010")
        for problem in problems
    ]


#: Cache backends each process keeps for itself, and ones that remember nothing.
PER_PROCESS_CACHES = frozenset({"django.core.cache.backends.locmem.LocMemCache"})
NO_CACHES = frozenset({"django.core.cache.backends.dummy.DummyCache"})
RACY_CACHES = frozenset({"django.core.cache.backends.filebased.FileBasedCache"})
#: Shared and atomic, but culling live entries (Django's own database cache).
CULLING_CACHES = frozenset({"django.core.cache.backends.db.DatabaseCache"})
#: The embedded store to use instead: the same table, one statement per add().
REPLAY_DATABASE_CACHE = "s2s_auth.credentials.dbcache.ReplayDatabaseCache"


def _replay_store(conf: S2SSettings) -> list:
    alias = conf.REPLAY_CACHE
    caches = getattr(settings, "CACHES", None) or {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    where = f"CACHES[{alias!r}]"
    hint = (
        "Point S2S_AUTH['REPLAY_CACHE'] at a cache every worker process shares: "
        "django.core.cache.backends.redis.RedisCache, or a table in the database, "
        f"{REPLAY_DATABASE_CACHE} (`migrate` creates it)."
    )
    if alias not in caches:
        return [
            Error(
                f"S2S_AUTH['REPLAY_CACHE'] names {where}, which is not configured.",
                hint=hint,
                id="s2s_auth.E020",
            )
        ]
    backend = str(caches[alias].get("BACKEND", ""))
    if backend in NO_CACHES or (backend in PER_PROCESS_CACHES and not settings.DEBUG):
        kind = "remembers nothing" if backend in NO_CACHES else "is private to each process"
        return [
            Error(
                f"{where} (S2S_AUTH['REPLAY_CACHE']) is {backend.rsplit('.', 1)[-1]}, which "
                f"{kind}: with several worker processes a service JWT, a signed request "
                "or a client assertion is accepted once per process, and throttles "
                "count per process.",
                hint=hint,
                id="s2s_auth.E020",
            )
        ]
    if backend in RACY_CACHES:
        return [
            Warning(
                f"{where} (S2S_AUTH['REPLAY_CACHE']) is FileBasedCache, whose add() is not "
                "atomic: a replay sent at the same moment as the original may pass.",
                hint=hint,
                id="s2s_auth.W021",
            )
        ]
    if backend in CULLING_CACHES:
        options = caches[alias].get("OPTIONS") or {}
        limit = options.get("MAX_ENTRIES", 300)
        return [
            Warning(
                f"{where} (S2S_AUTH['REPLAY_CACHE']) is Django's DatabaseCache, which "
                f"deletes live entries once its table holds more than MAX_ENTRIES ({limit}): "
                "a used jti or nonce can be forgotten and its replay accepted.",
                hint=f"Use {REPLAY_DATABASE_CACHE}: the same table, live entries are never "
                "culled, and add() is one statement.",
                id="s2s_auth.W022",
            )
        ]
    return []


def _trust_domain(conf: S2SSettings) -> list:
    if conf.configured("SERVICE_NAME") and not conf.configured("TRUST_DOMAIN"):
        return [
            Error(
                f"S2S_AUTH['SERVICE_NAME'] is {conf.configured('SERVICE_NAME')!r} but "
                "S2S_AUTH['TRUST_DOMAIN'] is not set: this service cannot name its own "
                "SPIFFE ID, the audience every caller's credential must carry.",
                hint="Set S2S_AUTH['TRUST_DOMAIN'] (e.g. 'example.internal') to the trust "
                "domain of your CA, the same on every service.",
                id="s2s_auth.E008",
            )
        ]
    return []


def _httpsig_origin(conf: S2SSettings) -> list:
    """RFC 9421 signatures name the origin they were sent to: without this service's
    own origin(s) a request signed for another service could be accepted here."""
    from s2s_auth.core.httpsig import parse_origin

    if not isinstance(getattr(settings, "S2S_AUTH", None), dict | None):
        return []  # E001 says it
    names = conf.configured("MECHANISMS")
    if "http_signature" not in (names if isinstance(names, list | tuple) else []):
        return []
    value = conf.configured("HTTPSIG_ORIGIN")
    origins = [value] if isinstance(value, str) else value
    problem = None
    if not origins or not isinstance(origins, list | tuple):
        problem = "is not set"
    else:
        for origin in origins:
            try:
                parse_origin(origin)
            except ValueError as exc:
                problem = f"is invalid: {exc}"
                break
    if problem is None:
        return []
    return [
        Error(
            f"S2S_AUTH['MECHANISMS'] has http_signature but S2S_AUTH['HTTPSIG_ORIGIN'] "
            f"{problem}; every signed request would be refused.",
            hint="Set S2S_AUTH['HTTPSIG_ORIGIN'] to the origin callers sign, "
            "'https://host:port' (port included), or a list of them.",
            id="s2s_auth.E009",
        )
    ]


def _spiffe(conf: S2SSettings) -> list:
    """SPIFFE ID layouts and JWT-SVID settings (s2s_auth.E030)."""
    from s2s_auth.core.jwk import check_algorithms
    from s2s_auth.identity import validate_path_templates

    problems = []
    try:
        validate_path_templates(conf.configured("SPIFFE_ID_PATHS"))
    except ValueError as exc:
        problems.append(("SPIFFE_ID_PATHS", str(exc)))
    try:
        check_algorithms(conf.configured("JWT_SVID_ALGORITHMS"))
    except ValueError as exc:
        problems.append(("JWT_SVID_ALGORITHMS", str(exc)))
    bundles = conf.configured("SPIFFE_JWT_BUNDLES")
    if not isinstance(bundles, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in bundles.items()
    ):
        problems.append(("SPIFFE_JWT_BUNDLES", "map trust domains to a file path or URL"))
    return [
        Error(
            f"S2S_AUTH['{key}'] is invalid: {problem}",
            hint="Templates look like '/service/{name}' or '/ns/default/sa/{name}'.",
            id="s2s_auth.E030",
        )
        for key, problem in problems
    ]


def _principal_cache(conf: S2SSettings) -> list:
    """The principal cache's bound (s2s_auth.E031): PRINCIPAL_CACHE_SECONDS is the
    promise, the check interval must not be longer."""
    values = {}
    for name in ("SECONDS", "CHECK_SECONDS", "MAX_ENTRIES"):
        value = conf.configured(f"PRINCIPAL_CACHE_{name}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return [
                Error(
                    f"S2S_AUTH['PRINCIPAL_CACHE_{name}'] must be a number >= 0, not {value!r}.",
                    id="s2s_auth.E031",
                )
            ]
        values[name] = value
    if values["SECONDS"] > 0 and values["CHECK_SECONDS"] > values["SECONDS"]:
        return [
            Error(
                "S2S_AUTH['PRINCIPAL_CACHE_CHECK_SECONDS'] is longer than "
                "S2S_AUTH['PRINCIPAL_CACHE_SECONDS']: the max age alone would bound how "
                "long a change takes, and the shared version would be read for nothing.",
                hint="Check at least as often as entries expire (default: 1 s and 2 s).",
                id="s2s_auth.E031",
            )
        ]
    return []


@register(Tags.security, "s2s_auth")
def check_settings(app_configs=None, **kwargs) -> list:
    """Every s2s_auth check, on the current settings."""
    user, errors = _user_settings()
    conf = S2SSettings(user)
    for check in (
        _mechanisms,
        _algorithms,
        _pki_files,
        _audit_middleware,
        _audit_write,
        _trust_domain,
        _replay_store,
        _principal_cache,
    ):
        errors.extend(check(conf))
    errors.extend(_httpsig_origin(conf))
    errors.extend(_spiffe(conf))
    return errors
