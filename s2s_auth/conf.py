"""The ``S2S_AUTH`` settings namespace.

Read at call time (``s2s_settings().NAME``), never at import time, so that
``override_settings`` works in tests. Every key and its default is documented in
``DEFAULTS``; an unknown key in ``S2S_AUTH`` is an error, so a typo cannot silently
fall back to a default.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from s2s_auth.identity import spiffe_id, spiffe_ids

DEFAULTS: dict[str, object] = {
    # Trust domain of the SPIFFE IDs this deployment issues and accepts:
    # spiffe://<TRUST_DOMAIN>/service/<name> (see SPIFFE_ID_PATHS). No default: it
    # names your deployment.
    # Reading it unset raises ImproperlyConfigured; `manage.py check` reports a
    # receiving service (SERVICE_NAME set) without it (s2s_auth.E008).
    "TRUST_DOMAIN": None,
    # Path layouts of the SPIFFE IDs that name services: templates with one whole
    # segment {name} (a list, or a comma-separated string; env S2S_SPIFFE_ID_PATHS in
    # the deployment). An ID is read with every template (matched whole); one that
    # matches none is refused (bad_spiffe_id). IDs are issued in the first layout.
    # Istio beside ours: ["/service/{name}", "/ns/default/sa/{name}"].
    "SPIFFE_ID_PATHS": ["/service/{name}"],
    # This service's own name (its SPIFFE ID is derived from it); used as the
    # expected audience of incoming tokens. None: not a receiving service.
    "SERVICE_NAME": None,
    # Directory of the private CA and the service certificates (ca.pem, NAME.pem,
    # NAME.key, crl.pem). Relative paths are resolved against settings.BASE_DIR.
    "PKI_DIR": "var/pki",
    # Trust anchors (PEM bundle) for client certificates; None: PKI_DIR/ca.pem.
    "TRUST_ANCHORS": None,
    # CRL (PEM) checked for every client certificate; None: PKI_DIR/crl.pem.
    # Reloaded when the file changes, so a revocation needs no restart.
    "CRL_FILE": None,
    # A missing CRL file means "nothing revoked" only when this is False. The file
    # holds a CRL per CA (s2s_pki writes the intermediate's and the root's): every
    # certificate of a peer's path is checked against its issuer's.
    "REQUIRE_CRL": True,
    # Oldest accepted CRL that has no nextUpdate, seconds since its thisUpdate; older
    # is crl_stale (503). A CRL with nextUpdate is stale once that has passed.
    "CRL_MAX_AGE": 7 * 24 * 3600,
    # --- Distributed revocation (docs/revocation.md) ----------------------------------
    # Base URL where the identity service publishes the CRL of each CA:
    # <CRL_URL>/<CA key id>.crl (s2s_auth.issuer.crl). Set, it does three things:
    # certificates issued from then on name their issuer's CRL there (CRL Distribution
    # Points); the CA host (the process with s2s_auth.issuer and the CA in PKI_DIR)
    # re-signs its CRLs before nextUpdate; every other process fetches the CRLs from
    # there (cached, like the JWKS) instead of reading CRL_FILE. None: CRL_FILE only.
    "CRL_URL": None,
    # How long a fetched CRL is used before it is fetched again, seconds: with the
    # CA host re-signing at once on a revocation, this bounds how late a verifier
    # learns of it. While the CA host is unreachable the last good CRL serves until
    # its nextUpdate, then every certificate is refused (503 crl_unavailable).
    "CRL_REFRESH_SECONDS": 30,
    # Least time between two fetch attempts of one CRL, successful or not, seconds.
    "CRL_MIN_REFETCH_SECONDS": 5,
    # nextUpdate - thisUpdate of the CRLs the CA signs ("5m", "1h", "7d", or seconds);
    # the CA host re-signs them when half of it is left. Short keeps the window in
    # which a verifier cut off from the CA host still trusts an old CRL short.
    "CRL_VALIDITY": "7d",
    # Origins ("https://host:port") a certificate's CRL Distribution Point may name
    # for it to be fetched; None: CRL_URL's origin only. A distribution point is only
    # ever read from a certificate of an already validated path.
    "CRL_ALLOWED_ORIGINS": None,
    # Lifetime of service certificates issued by `s2s_pki issue`.
    "CERT_LIFETIME_HOURS": 24,
    # The same as a duration ("90s", "15m", "1h", "24h", "7d", or seconds); when set
    # it wins over CERT_LIFETIME_HOURS (read it as `s2s_settings().cert_lifetime`).
    "CERT_LIFETIME": None,
    # --- Certificate renewal (s2s_auth.agent, POST /api/v1/pki/renew) ----------------
    # When the renewal agent renews this service's certificate: this fraction of the
    # way through its validity (SPIRE uses 1/2; 2/3 leaves a third to ride out an
    # identity service that is down).
    "RENEW_AT_FRACTION": 2 / 3,
    # The identity service's renewal endpoint; None: <ISSUER or ACCESS_TOKEN_ISSUER>
    # + /api/v1/pki/renew. Neither set: the agent has nowhere to renew and says so.
    "RENEWAL_URL": None,
    # Longest pause between two failed renewal attempts, seconds (exponential backoff
    # with full jitter from 1 s up to this, never past the certificate's expiry).
    "RENEWAL_RETRY_MAX_SECONDS": 60,
    # Renewals per caller (SPIFFE ID) per minute at the identity service; 0: no limit.
    "RENEWAL_RATE_LIMIT_PER_MINUTE": 10,
    # Lifetimes of the dev CA: root and intermediate.
    "ROOT_CA_LIFETIME_DAYS": 3650,
    "INTERMEDIATE_CA_LIFETIME_DAYS": 365,
    # Peer addresses (IPs or CIDRs) allowed to pass a client certificate in a
    # header (nginx $ssl_client_escaped_cert or Envoy X-Forwarded-Client-Cert).
    # From any other peer such headers are ignored.
    "TRUSTED_PROXIES": [],
    # Which proxy header carries the certificate: "nginx" or "envoy".
    "PROXY_CERT_HEADER": "nginx",
    # Name of the nginx header (as sent by the proxy).
    "NGINX_CERT_HEADER": "X-SSL-Client-Cert",
    # Self-signed service JWTs: longest accepted lifetime (exp - iat), seconds.
    "JWT_MAX_LIFETIME": 60,
    # Accepted signature algorithms. Never "none", never HMAC. "Ed25519" is RFC 9864's
    # name for EdDSA over Ed25519.
    "JWT_ALGORITHMS": ["ES256", "EdDSA", "Ed25519"],
    # Clock skew tolerated on iat/nbf/exp/created, seconds.
    "CLOCK_SKEW": 30,
    # Mechanisms a ServiceAPIView accepts, tried in this order: the first whose
    # credential is present decides. Mechanisms that carry a signed credential come
    # before plain mTLS, so a service JWT sent over mTLS is verified (and audited)
    # as a JWT. jwt_svid takes the Bearer tokens that are SPIFFE JWT-SVIDs and leaves
    # the others to access_token (list it first). Names: service_jwt, http_signature,
    # jwt_svid, access_token, api_key, mtls, or the dotted path of a DRF
    # BaseAuthentication subclass.
    "MECHANISMS": ["service_jwt", "http_signature", "jwt_svid", "access_token", "mtls"],
    # Timeouts of ServiceClient calls, seconds: (connect, read).
    "CLIENT_TIMEOUT": (2.0, 5.0),
    # --- SPIFFE JWT-SVIDs (Authorization: Bearer or ServiceJWT) -----------------------
    # Longest accepted lifetime of a JWT-SVID, seconds: exp - iat, and exp - now (iat
    # is optional). A JWT-SVID without jti is accepted only over mTLS from the
    # identity it names, so a copy lifted off the wire is useless elsewhere.
    "JWT_SVID_MAX_LIFETIME": 300,
    # Accepted signature algorithms of JWT-SVIDs (SPIRE signs with ES256 or RS256).
    "JWT_SVID_ALGORITHMS": ["ES256", "RS256", "PS256", "EdDSA"],
    # Accepted `aud` values (a string or a list); None: this service's SPIFFE IDs,
    # one per SPIFFE_ID_PATHS template.
    "JWT_SVID_AUDIENCE": None,
    # SPIFFE JWT bundles: {trust domain: JWKS file path or http(s) URL}. Their keys
    # are the trust domain's JWT authorities (SPIRE's): they may sign for any ID of
    # it. URLs are fetched and cached like the issuer's JWKS.
    "SPIFFE_JWT_BUNDLES": {},
    # --- RFC 9421 HTTP message signatures -------------------------------------------
    # Oldest accepted `created`, seconds (the nonce is remembered this long).
    "HTTPSIG_MAX_AGE": 300,
    "HTTPSIG_ALGORITHMS": ["ecdsa-p256-sha256", "ed25519"],
    # @authority + @path + @query count as @target-uri; content-digest is required only
    # of a request with a body (s2s_auth.core.httpsig.coverage).
    "HTTPSIG_REQUIRED_COMPONENTS": ["@method", "@target-uri", "content-digest"],
    # Refuse signatures without a nonce (missing_nonce). Off: a nonce-less signature is
    # accepted once, its value remembered for the created window (replayed_signature).
    "HTTPSIG_REQUIRE_NONCE": False,
    # The origin(s) callers address this service at: "scheme://host[:port]", or a list
    # of them (e.g. the compose name and the loopback address). @target-uri is rebuilt
    # from these, never from the request's Host (ALLOWED_HOSTS ignores ports, so a
    # request signed for a neighbour on the same host would pass). Required when
    # MECHANISMS has http_signature (`manage.py check`: s2s_auth.E009); unset, every
    # signed request is refused (httpsig_origin_unset).
    "HTTPSIG_ORIGIN": None,
    # --- OAuth2 access tokens (resource side) ---------------------------------------
    # The identity service's issuer URL (the `iss` of access tokens) and its JWKS.
    # None: access tokens are not accepted.
    "ACCESS_TOKEN_ISSUER": None,
    "JWKS_URL": None,
    # Expected `aud` of access tokens; None: this service's SPIFFE ID.
    "ACCESS_TOKEN_AUDIENCE": None,
    # Accepted `aud` of end users' tokens (a string or a list), at end-user
    # endpoints and in the user context a service forwards. None: the trust domain's
    # own SPIFFE ID, spiffe://<TRUST_DOMAIN> (a user token is for every service of
    # the trust domain), the same default as the issuer's USER_TOKEN_AUDIENCE.
    "END_USER_AUDIENCE": None,
    # How long fetched keys are used before a refresh; the least time between two
    # fetches on an unknown `kid`; keys are kept while the issuer is unreachable.
    "JWKS_CACHE_SECONDS": 300,
    "JWKS_MIN_REFETCH_SECONDS": 30,
    # Cache verified access tokens (by hash) until they expire.
    "CACHE_VERIFIED_TOKENS": True,
    # User context (s2s_auth.mechanisms.user_context). A calling service exchanges the
    # user's token (RFC 8693) for one minted for this service alone, naming the caller
    # in `act`. The user's own token forwarded as it is (any service that received it
    # could replay it anywhere) is accepted only when this is True: an opt-in for
    # peers that cannot exchange.
    "ACCEPT_FORWARDED_USER_TOKENS": False,
    # --- The identity service (s2s_auth.issuer) -------------------------------------
    # Issuer URL published in tokens and metadata; None: derived from the request.
    "ISSUER": None,
    "ACCESS_TOKEN_LIFETIME": 600,
    "USER_TOKEN_LIFETIME": 900,
    # Where the issuer's signing keys live (PEM files, mode 0600); None: PKI_DIR/issuer.
    "SIGNING_KEYS_DIR": None,
    # Token requests allowed per authenticated client per minute (counted after the
    # client authenticated: nobody else's requests use up its budget).
    "TOKEN_RATE_LIMIT_PER_MINUTE": 600,
    # Failed client authentications per minute at the token endpoints, per (client
    # id, source address) and per source address; beyond them that source's secret
    # and assertion attempts get 429 before any check. A connection with a verified
    # TLS client certificate is never held back by them.
    "TOKEN_FAILURE_LIMIT_PER_MINUTE": 10,
    "TOKEN_ADDRESS_FAILURE_LIMIT_PER_MINUTE": 60,
    # Most `resource`/`audience` targets one token request may name.
    "TOKEN_MAX_TARGETS": 10,
    # `aud` and `scope` of end-user tokens from /api/v1/auth/login. Audience None:
    # spiffe://<TRUST_DOMAIN> (see END_USER_AUDIENCE). Scope "": none; a deployment
    # names the scopes its users' tokens carry.
    "USER_TOKEN_AUDIENCE": None,
    "USER_TOKEN_SCOPE": "",
    # Lifetime of a token from the token-exchange grant (RFC 8693), seconds: one hop's
    # user context, for one audience.
    "TOKEN_EXCHANGE_LIFETIME": 120,
    # Failed logins per username per minute (all addresses), and login attempts per
    # client address per minute; beyond either, a login is refused before the
    # password hasher runs. They apply to every Django login that goes through
    # s2s_auth.credentials.throttles.LoginThrottleBackend (/admin/login/ too).
    "LOGIN_RATE_LIMIT_PER_MINUTE": 10,
    "LOGIN_ADDRESS_RATE_LIMIT_PER_MINUTE": 30,
    # Service self-registrations per client IP per hour, and whether they are open
    # at all. A self-registered service starts with no scopes and is marked: an
    # operator grants it scopes only with `s2s_service grant --approve-self-registered`.
    "REGISTRATION_RATE_LIMIT_PER_HOUR": 10,
    "REGISTRATION_OPEN": False,
    # How long a rotated client secret stays valid, seconds (`s2s_service
    # rotate-secret`; its --grace-hours overrides it).
    "SECRET_ROTATION_GRACE": 300,
    # Shortest accepted self-chosen registration password.
    "MIN_PASSWORD_LENGTH": 16,
    # Longest lifetime (exp - iat) of a private_key_jwt client assertion, seconds: an
    # hour, as Authlib and other clients sign them by default. Its jti is remembered
    # until its exp, so a longer lifetime costs replay-store entries, not safety.
    "CLIENT_ASSERTION_MAX_LIFETIME": 3600,
    # Cache-Control max-age of the JWKS and metadata documents, seconds.
    "JWKS_MAX_AGE": 300,
    # --- Replay stores and throttles ---------------------------------------------------
    # The Django cache alias that remembers used jti and nonces and keeps every
    # throttle's history. Every worker process must share it (Redis, the database
    # cache): `manage.py check` refuses a per-process cache with DEBUG off (E020).
    "REPLAY_CACHE": "default",
    # --- Principal cache (s2s_auth.credentials.cache) --------------------------------
    # Principals, their registered certificates and keys, and API keys (hashes) are
    # cached in each worker process. An entry is read from the database again at most
    # this many seconds after it was read: the bound on how long a change (a disabled
    # service, a revoked scope or key) takes to reach every process, even a change
    # that bypasses Django's signals. 0 turns the cache off.
    "PRINCIPAL_CACHE_SECONDS": 2,
    # How often a process reads the shared version in REPLAY_CACHE, seconds (at most
    # PRINCIPAL_CACHE_SECONDS). A change saved through the ORM (admin, management
    # commands) writes a new version: every process drops its entries within this.
    # While the store cannot be read, nothing is served from the cache.
    "PRINCIPAL_CACHE_CHECK_SECONDS": 1,
    # Most entries per process; the oldest are dropped first.
    "PRINCIPAL_CACHE_MAX_ENTRIES": 10000,
    # --- API keys ---------------------------------------------------------------------
    "API_KEY_PREFIX": "s2s",
    # --- Audit log --------------------------------------------------------------------
    "AUDIT_ENABLED": True,
    # How a record that need not join the request's transaction is written (see
    # s2s_auth.audit.writer): the accepted record of a GET, HEAD or OPTIONS request and
    # every refusal. Accepted records of other methods (and any record written inside
    # an open transaction) are always written at once, in that transaction.
    #   "group_commit": queued to the process's writer thread, which INSERTs whatever
    #       is queued in one transaction; the request waits for that commit before it
    #       answers (nothing acknowledged is lost).
    #   "background": queued, and the request answers at once; the writer flushes every
    #       AUDIT_FLUSH_INTERVAL seconds or AUDIT_BATCH_SIZE rows. A killed process
    #       (kill -9, OOM) loses the rows not yet flushed.
    #   "sync": one INSERT in the request, as before the writer existed.
    "AUDIT_WRITE": "group_commit",
    # "background": the longest a row waits in the queue before its batch is written.
    "AUDIT_FLUSH_INTERVAL": 0.05,
    # Rows per INSERT batch at most.
    "AUDIT_BATCH_SIZE": 200,
    # Rows queued per process at most; when full, a request waits up to
    # AUDIT_QUEUE_TIMEOUT for room, then writes its row itself (never dropped).
    "AUDIT_QUEUE_SIZE": 10_000,
    # Seconds a request waits for room in a full queue, and ("group_commit") for its
    # batch's commit before it writes its row itself.
    "AUDIT_QUEUE_TIMEOUT": 2.0,
}


def _trust_domain(conf: S2SSettings) -> str:
    raise ImproperlyConfigured(
        "S2S_AUTH['TRUST_DOMAIN'] is not set. It is the SPIFFE trust domain of your "
        "services (spiffe://<TRUST_DOMAIN>/service/<name>): callers need it for the "
        "audience of their credentials, receivers to check them. Set it in "
        "settings.S2S_AUTH, e.g. 'example.internal', the same on every service."
    )


def _trust_domain_id(conf: S2SSettings) -> str:
    return f"spiffe://{conf.TRUST_DOMAIN}"


#: Defaults that depend on other settings: computed when the key is None.
_DERIVED = {
    "TRUST_DOMAIN": _trust_domain,
    "END_USER_AUDIENCE": _trust_domain_id,
    "USER_TOKEN_AUDIENCE": _trust_domain_id,
}


class S2SSettings:
    """Attribute access to S2S_AUTH with defaults; paths resolved to absolute."""

    def __init__(self, user_settings: dict | None = None):
        self._user = dict(user_settings or {})
        unknown = set(self._user) - set(DEFAULTS)
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown S2S_AUTH setting(s): {', '.join(sorted(unknown))}. "
                f"Known: {', '.join(sorted(DEFAULTS))}."
            )

    def __getattr__(self, name: str):
        value = self.configured(name)
        if value in (None, "") and name in _DERIVED:
            value = _DERIVED[name](self)  # raises for a required setting: not kept
        # Kept on the instance: the next read is a plain attribute, not this method (a
        # request reads some twenty). The settings were copied at construction and a
        # change of S2S_AUTH makes a new object, so a kept value cannot go stale.
        self.__dict__[name] = value
        return value

    def configured(self, name: str):
        """The value as configured (or the static default), nothing derived or raised."""
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid S2S_AUTH setting: {name!r}")
        return self._user.get(name, DEFAULTS[name])

    # The paths are built once per settings object (every certificate check reads them);
    # a change of S2S_AUTH or BASE_DIR makes a new one.
    @cached_property
    def pki_dir(self) -> Path:
        path = Path(self.PKI_DIR)
        if not path.is_absolute():
            path = Path(getattr(settings, "BASE_DIR", Path.cwd())) / path
        return path

    @cached_property
    def trust_anchors_path(self) -> Path:
        return Path(self.TRUST_ANCHORS) if self.TRUST_ANCHORS else self.pki_dir / "ca.pem"

    @cached_property
    def crl_path(self) -> Path:
        return Path(self.CRL_FILE) if self.CRL_FILE else self.pki_dir / "crl.pem"

    @property
    def crl_validity(self) -> timedelta:
        """CRL_VALIDITY as a timedelta."""
        try:
            return parse_duration(self.CRL_VALIDITY)
        except ValueError as exc:
            raise ImproperlyConfigured(f"S2S_AUTH['CRL_VALIDITY']: {exc}") from None

    @property
    def cert_lifetime(self) -> timedelta:
        """Lifetime of issued service certificates: CERT_LIFETIME, else CERT_LIFETIME_HOURS."""
        try:
            if self.CERT_LIFETIME not in (None, ""):
                return parse_duration(self.CERT_LIFETIME)
            return parse_duration(float(self.CERT_LIFETIME_HOURS) * 3600)
        except ValueError as exc:
            raise ImproperlyConfigured(f"S2S_AUTH['CERT_LIFETIME']: {exc}") from None

    @property
    def renewal_url(self) -> str | None:
        """RENEWAL_URL, else the issuer's origin + ``/api/v1/pki/renew``; None if unknown."""
        if self.RENEWAL_URL:
            return str(self.RENEWAL_URL)
        issuer = self.ISSUER or self.ACCESS_TOKEN_ISSUER
        return str(issuer).rstrip("/") + "/api/v1/pki/renew" if issuer else None

    @property
    def renew_at_fraction(self) -> float:
        value = float(self.RENEW_AT_FRACTION)
        if not 0 < value < 1:
            raise ImproperlyConfigured("S2S_AUTH['RENEW_AT_FRACTION'] must be between 0 and 1")
        return value

    # Computed once per settings object (a new one when the settings change): every
    # request's audience check and challenge reads them.
    @cached_property
    def own_spiffe_id(self) -> str | None:
        return spiffe_id(self.SERVICE_NAME, self.TRUST_DOMAIN) if self.SERVICE_NAME else None

    @property
    def own_spiffe_ids(self) -> list[str]:
        """This service's SPIFFE IDs under every SPIFFE_ID_PATHS template."""
        return list(self._own_spiffe_ids)

    @cached_property
    def _own_spiffe_ids(self) -> tuple[str, ...]:
        return tuple(spiffe_ids(self.SERVICE_NAME, self.TRUST_DOMAIN)) if self.SERVICE_NAME else ()


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | int) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a number of seconds, as a positive
    timedelta; ValueError otherwise (a lifetime of zero would issue dead certificates)."""
    text = str(value).strip().lower()
    unit = _DURATION_UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"not a duration: {value!r} (e.g. 90s, 15m, 1h, 24h)") from None
    if not 0 < seconds < float("inf"):
        raise ValueError(f"a duration must be positive: {value!r}")
    return timedelta(seconds=seconds)


@lru_cache(maxsize=1)
def s2s_settings() -> S2SSettings:
    return S2SSettings(getattr(settings, "S2S_AUTH", None))


def _reload(*, setting, **kwargs):
    if setting in ("S2S_AUTH", "BASE_DIR"):
        s2s_settings.cache_clear()


setting_changed.connect(_reload)
