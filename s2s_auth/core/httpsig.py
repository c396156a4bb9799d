"""RFC 9421 HTTP Message Signatures with RFC 9530 ``Content-Digest`` (the core, no DRF).

Canonicalisation, the signature base and the cryptographic check are the
``http-message-signatures`` library's; this module adds the policy the library leaves to
its caller: which components must be covered, ``created``/``expires`` with an injectable
clock, nonces and replay, the content digest checked against the actual body, the
algorithm derived from the key type, and one reason code per failure
(:class:`SignatureError`).

Client side::

    session.auth = HTTPSignatureAuth("ads", private_key)   # or sign_request(prepared, ...)

Server side (the DRF layer does this)::

    verifier = SignatureVerifier(resolve_key=..., nonce_store=cache_backed_add)
    verified = verifier.verify(
        request.method,
        target_uri(TRUSTED_SCHEME, TRUSTED_HOST, raw_path, request.META["QUERY_STRING"]),
        request.headers,
        request.body,
    )

``@target-uri`` on the server: the client signs the URL it sends to; the server must
rebuild the *same* string (:func:`target_uri`). Behind a TLS-terminating proxy the scheme
and host seen by Django are the proxy's, and ``X-Forwarded-*``/``Host`` are whatever the
caller put there: take scheme and host from trusted configuration (the service's public
origin), never from request headers that the caller controls. Take the path as the client
sent it (``environ["RAW_URI"]`` under gunicorn, ``environ["REQUEST_URI"]`` under uWSGI),
falling back to Django's decoded ``request.path``, which :func:`target_uri` re-encodes (an
encoded ``/`` (``%2F``) in the original path cannot be recovered from it).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import http_sf
import requests.auth
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import (
    ECDSA_P256_SHA256,
    ECDSA_P384_SHA384,
    ED25519,
    RSA_PSS_SHA512,
    RSA_V1_5_SHA256,
    HTTPSignatureAlgorithm,
)
from http_message_signatures.structures import get_header_fields

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_COMPONENTS",
    "REASON_CODES",
    "SUPPORTED_ALGORITHMS",
    "HTTPSignatureAuth",
    "MemoryNonceStore",
    "SignatureError",
    "SignatureVerifier",
    "VerifiedSignature",
    "algorithm_for_key",
    "check_content_digest",
    "content_digest",
    "sign_request",
    "target_uri",
]

# --------------------------------------------------------------------------- errors

REASON_CODES = frozenset(
    {
        "missing_signature",  # no Signature-Input / Signature header (or no label in it)
        "malformed_signature",  # not parseable, wrong member types, unknown parameters
        "unknown_key",  # keyid not known to resolve_key
        "algorithm_not_allowed",  # alg param / key type not in the allow-list or inconsistent
        "missing_component",  # a required component is not covered
        "bad_signature",  # the signature does not verify over this message
        "digest_mismatch",  # Content-Digest does not match the body (or is malformed)
        "missing_digest",  # Content-Digest absent, or no supported algorithm in it
        "created_missing",  # no ``created`` parameter
        "created_in_future",  # created > now + clock_skew
        "signature_too_old",  # created < now - max_age - clock_skew
        "expired",  # expires < now - clock_skew
        "replayed_nonce",  # nonce already seen for this keyid
        "missing_nonce",  # require_nonce and no ``nonce`` parameter
    }
)


class SignatureError(Exception):
    """Every failure of this module: a reason ``code`` (see :data:`REASON_CODES`) and a
    human-readable ``detail``. Library errors are chained (``__cause__``). ``key_id`` and
    ``label`` are set when known, for the audit entry."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        key_id: str | None = None,
        label: str | None = None,
    ):
        if code not in REASON_CODES:  # a typo here would silently change an audit reason
            raise ValueError(f"unknown SignatureError code {code!r}")
        self.code = code
        self.detail = detail or code.replace("_", " ")
        self.key_id = key_id
        self.label = label
        super().__init__(f"{code}: {self.detail}")


# --------------------------------------------------------------------------- algorithms

#: Algorithms this module can sign and verify (RFC 9421 §3.3 names). No HMAC: the keys
#: here are public keys, and a shared secret gives no non-repudiation.
SUPPORTED_ALGORITHMS: dict[str, type[HTTPSignatureAlgorithm]] = {
    "ecdsa-p256-sha256": ECDSA_P256_SHA256,
    "ecdsa-p384-sha384": ECDSA_P384_SHA384,
    "ed25519": ED25519,
    "rsa-pss-sha512": RSA_PSS_SHA512,
    "rsa-v1_5-sha256": RSA_V1_5_SHA256,
}
#: Verifier default allow-list: the project's ES256 / EdDSA. RSA only where configured.
DEFAULT_ALGORITHMS = frozenset({"ecdsa-p256-sha256", "ed25519"})
#: Components a request signature covers, and the verifier requires, by default.
DEFAULT_COMPONENTS = ("@method", "@target-uri", "content-digest")

_RSA_MIN_BITS = 2048
_RSA_ALGORITHMS = frozenset({"rsa-pss-sha512", "rsa-v1_5-sha256"})
_MAX_NONCE_LENGTH = 256
_SIGNATURE_PARAMETERS = {
    "alg": str,
    "created": int,
    "expires": int,
    "keyid": str,
    "nonce": str,
    "tag": str,
}


def algorithm_for_key(key: Any) -> str:
    """The RFC 9421 algorithm name for a private or public key object.

    EC P-256 → ``ecdsa-p256-sha256``, EC P-384 → ``ecdsa-p384-sha384``, Ed25519 →
    ``ed25519``, RSA (≥ 2048 bits) → ``rsa-pss-sha512``. Anything else raises
    ``SignatureError("algorithm_not_allowed")``.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        if isinstance(key.curve, ec.SECP384R1):
            return "ecdsa-p384-sha384"
        raise SignatureError("algorithm_not_allowed", f"unsupported EC curve {key.curve.name}")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < _RSA_MIN_BITS:
            raise SignatureError("algorithm_not_allowed", f"RSA key of {key.key_size} bits")
        return "rsa-pss-sha512"
    raise SignatureError("algorithm_not_allowed", f"unsupported key type {type(key).__name__}")


# --------------------------------------------------------------------------- Content-Digest

_DIGESTS: dict[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-512": hashlib.sha512,
}


def _reject_duplicate(key: str, context: str) -> None:
    # Structured Fields say "last one wins"; in a signature or digest header a duplicate
    # is either a mistake or an attempt to make two parsers disagree.
    raise ValueError(f"duplicate {context} key {key!r}")


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """The RFC 9530 ``Content-Digest`` value of ``body``, e.g. ``sha-256=:base64:``.

    Computed for an empty body too (a digest of ``b""``)."""
    if algorithm not in _DIGESTS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r} (sha-256, sha-512)")
    return http_sf.ser({algorithm: (_DIGESTS[algorithm](bytes(body)).digest(), {})})


def check_content_digest(header_value: str | None, body: bytes) -> tuple[str, ...]:
    """Check a ``Content-Digest`` field value against ``body``; return the algorithms checked.

    Every ``sha-256`` / ``sha-512`` member must match; members with other algorithms are
    ignored, but at least one supported member is required. Raises ``SignatureError``:
    ``missing_digest`` (absent/empty, or only unknown algorithms), ``digest_mismatch``
    (malformed, wrong length, or a different body).
    """
    if header_value is None or not header_value.strip():
        raise SignatureError("missing_digest", "no Content-Digest header")
    try:
        members = http_sf.parse(
            header_value.encode("ascii"), tltype="dictionary", on_duplicate_key=_reject_duplicate
        )
    except Exception as exc:  # untrusted input: any parser failure is "malformed"
        raise SignatureError("digest_mismatch", "malformed Content-Digest header") from exc
    if not isinstance(members, dict) or not members:
        raise SignatureError("missing_digest", "empty Content-Digest header")
    checked = []
    for algorithm, member in members.items():
        if algorithm not in _DIGESTS:
            continue
        value = member[0] if isinstance(member, tuple) else None
        if not isinstance(value, bytes):
            raise SignatureError("digest_mismatch", f"{algorithm} digest is not a byte sequence")
        expected = _DIGESTS[algorithm](bytes(body)).digest()
        if len(value) != len(expected):
            raise SignatureError("digest_mismatch", f"{algorithm} digest has the wrong length")
        if not hmac.compare_digest(value, expected):
            raise SignatureError("digest_mismatch", f"{algorithm} digest does not match the body")
        checked.append(algorithm)
    if not checked:
        raise SignatureError(
            "missing_digest",
            f"no supported digest algorithm in Content-Digest ({', '.join(sorted(_DIGESTS))})",
        )
    return tuple(checked)


# --------------------------------------------------------------------------- target URI

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.vV%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::([0-9]*))?")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def _encode_uri_part(value: str, safe: str) -> str:
    # Keep existing %XX escapes (a raw path passes through unchanged), escape a lone "%"
    # and everything not allowed in a URI (spaces, controls, non-ASCII as UTF-8).
    return quote(_LONE_PERCENT.sub("%25", value), safe=safe)


def _authority(scheme: str, host: str) -> str:
    match = _HOST_RE.fullmatch(host.strip())
    if match is None:
        raise ValueError(f"invalid host {host!r}")
    name, port = match.group(1).lower(), match.group(2)
    if port is not None and (port == "" or port.lstrip("0") == _DEFAULT_PORTS[scheme]):
        port = None
    return f"{name}:{port}" if port else name


def target_uri(scheme: str, host: str, path: str, query: str = "") -> str:
    """The ``@target-uri`` a server compares a request signature against.

    ``scheme`` and ``host`` (``name[:port]``) must come from trusted configuration when a
    proxy terminates TLS (see the module docstring). ``path`` is preferably the raw path
    as sent (existing ``%XX`` escapes are kept); a decoded path is re-encoded. ``query``
    is the raw query string (``QUERY_STRING``), with or without a leading ``?``; empty
    means none. Scheme and host are lowercased and a default port dropped, matching
    :func:`sign_request`, which signs the URL in the same form.
    """
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r}")
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = query[1:] if query.startswith("?") else query
    uri = f"{scheme}://{_authority(scheme, host)}{_encode_uri_part(path, _PATH_SAFE)}"
    return f"{uri}?{_encode_uri_part(query, _QUERY_SAFE)}" if query else uri


def _normalised_url(url: str) -> str:
    """``url`` with scheme/host lowercased and a default port dropped, as the server
    rebuilds it with :func:`target_uri` from its Host (clients omit a default port in
    ``Host``). Only the authority changes; path, query and fragment stay as they are."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    try:
        authority = _authority(scheme, hostport)
    except ValueError:
        return url  # the library will refuse it with a clear error
    netloc = f"{userinfo}@{authority}" if userinfo else authority
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- signing


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")  # what urllib3 2 sends for a str body
    raise TypeError(
        f"cannot sign a {type(body).__name__} body (streaming/file bodies are not supported); "
        "pass the body as bytes"
    )


def _timestamp(value: int | float | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def sign_request(
    request: Any,
    *,
    key_id: str,
    private_key: Any,
    components: Sequence[str] = DEFAULT_COMPONENTS,
    label: str = "sig1",
    nonce: bool | str | None = True,
    created: int | dt.datetime | None = None,
    expires: int | dt.datetime | None = None,
    tag: str | None = None,
    include_alg: bool = True,
) -> Any:
    """Sign ``request`` in place (RFC 9421) and return it.

    ``request`` is a ``requests.PreparedRequest`` or any object with ``method`` (upper
    case), ``url`` (encoded, absolute), ``headers`` (mutable mapping) and ``body`` (bytes,
    str (sent as UTF-8) or None). Sets ``Content-Digest`` (sha-256 of the body, also of an
    empty one; an existing one is replaced), ``Signature-Input`` and ``Signature``
    (replacing earlier signatures). A default port in the URL is dropped (the server
    rebuilds ``@target-uri`` from ``Host``, where clients omit it).

    The algorithm follows from the key (:func:`algorithm_for_key`) and is sent as ``alg``
    unless ``include_alg=False``. ``nonce=True`` generates a random nonce, a string is used
    as is, ``False``/``None`` sends none. ``created`` defaults to now (Unix seconds or an
    aware datetime); ``expires`` is optional. ``components`` are names (``"@method"``,
    ``"content-type"``) or serialized component identifiers
    (``'"@query-param";name="id"'``). Raises ``SignatureError`` (``algorithm_not_allowed``
    for an unsupported key, ``malformed_signature`` when the library cannot sign, e.g. a
    covered header is missing) and ``TypeError`` for a streaming body.
    """
    algorithm = algorithm_for_key(private_key)
    body = _body_bytes(request.body)
    request.url = _normalised_url(request.url)
    for name in list(request.headers):
        if name.lower() == "content-digest":
            del request.headers[name]
    request.headers["Content-Digest"] = content_digest(body)
    if nonce is True:
        nonce_value: str | None = secrets.token_urlsafe(24)
    elif nonce:
        nonce_value = str(nonce)
    else:
        nonce_value = None
    signer = HTTPMessageSigner(
        signature_algorithm=SUPPORTED_ALGORITHMS[algorithm],
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: private_key}),
    )
    try:
        signer.sign(
            request,
            key_id=key_id,
            created=_timestamp(created) or dt.datetime.now(dt.UTC),
            expires=_timestamp(expires),
            nonce=nonce_value,
            label=label,
            tag=tag,
            include_alg=include_alg,
            covered_component_ids=tuple(components),
            use_existing_digest=True,  # ours, just computed from the body
        )
    except HTTPMessageSignaturesException as exc:
        raise SignatureError("malformed_signature", f"cannot sign: {exc}", key_id=key_id) from exc
    return request


class HTTPSignatureAuth(requests.auth.AuthBase):
    """``requests`` auth hook signing every request with :func:`sign_request`.

    ``options`` are :func:`sign_request`'s keyword arguments (``components``, ``label``,
    ``nonce``, ...); ``created`` and the nonce are fresh for every request. Disable
    redirects on the session: ``requests`` keeps these headers on a redirect, and the
    signature (bound to the original URL) would only be refused there.
    """

    _OPTIONS = frozenset(
        {"components", "label", "nonce", "created", "expires", "tag", "include_alg"}
    )

    def __init__(self, key_id: str, private_key: Any, **options: Any):
        unknown = set(options) - self._OPTIONS
        if unknown:
            raise TypeError(f"unknown HTTPSignatureAuth option(s): {', '.join(sorted(unknown))}")
        algorithm_for_key(private_key)  # fail at configuration, not at the first request
        self.key_id = key_id
        self.private_key = private_key
        self.options = options

    def __call__(self, request):
        return sign_request(
            request, key_id=self.key_id, private_key=self.private_key, **self.options
        )


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifiedSignature:
    """A verified request signature: what the audit log stores for non-repudiation.

    ``covered_components`` uses :func:`sign_request`'s ``components`` syntax (``"@method"``,
    or a serialized identifier when the component has parameters). ``signature`` is the
    raw signature bytes, ``signature_input`` the ``Signature-Input`` member of this label
    (``label=(...);created=...``, a valid header value by itself) and ``signature_base``
    exactly the bytes (ASCII) the library verified the signature over.
    """

    key_id: str
    label: str
    algorithm: str
    covered_components: tuple[str, ...]
    created: int
    nonce: str | None
    signature: bytes
    signature_input: str
    signature_base: str
    expires: int | None = None
    tag: str | None = None

    @property
    def signature_b64(self) -> str:
        return base64.b64encode(self.signature).decode("ascii")


@dataclass(frozen=True)
class _Candidate:
    label: str
    components: tuple[str, ...]
    identities: frozenset
    params: dict
    signature: bytes
    signature_input: str
    signature_field: str


class _Fields:
    """A read-only header view with the ``items()`` the library reads."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._pairs = pairs

    def items(self) -> Iterable[tuple[str, str]]:
        return iter(self._pairs)

    def __iter__(self):
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._pairs)


@dataclass
class _Message:
    method: str
    url: str
    headers: _Fields


# The library calls ``algorithm.verify(signature, message)`` with the signature base it
# built; record it there so that VerifiedSignature.signature_base is exactly what was
# verified (never rebuilt by hand). A ContextVar keeps concurrent requests apart.
_verified_base: ContextVar[list[bytes] | None] = ContextVar("_verified_base", default=None)


class _RecordBase:
    def verify(self, signature: bytes, message: bytes):
        super().verify(signature, message)  # type: ignore[misc]
        sink = _verified_base.get()
        if sink is not None:
            sink.append(bytes(message))


_RECORDING_ALGORITHMS: dict[str, type[HTTPSignatureAlgorithm]] = {
    name: type(f"_Recording{cls.__name__}", (_RecordBase, cls), {})
    for name, cls in SUPPORTED_ALGORITHMS.items()
}


class _LibraryVerifier(HTTPMessageVerifier):
    # created/expires/max-age are checked by SignatureVerifier before this runs, with its
    # injectable clock and configured skew; the library's own check reads the wall clock.
    def validate_created_and_expires(self, sig_input, max_age=None):
        return None


class _OneKeyResolver(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, key: Any):
        self.key_id, self.key = key_id, key

    def resolve_public_key(self, key_id: str):
        return self.key if key_id == self.key_id else None

    def resolve_private_key(self, key_id: str):
        raise HTTPMessageSignaturesException("verification only")


def _component_identity(component: str) -> tuple[str, frozenset]:
    """(name, parameters) of a component given by name or as a serialized identifier."""
    if component.startswith('"'):
        value, params = http_sf.parse(component.encode("ascii"), tltype="item")
    else:
        value, params = component, {}
    if type(value) is not str or value != value.lower():
        raise ValueError(f"invalid component identifier {component!r}")
    return value, frozenset(params.items())


def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list:
    items = headers.items() if hasattr(headers, "items") else headers
    pairs = []
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("header names and values must be str (or bytes)")
        pairs.append((name, value))
    return pairs


class SignatureVerifier:
    """Verifies RFC 9421 request signatures under a fixed policy.

    ``resolve_key(keyid)`` returns ``(public_key, algorithm_or_None)`` and raises
    ``SignatureError("unknown_key")`` (a ``LookupError`` or a ``None`` key counts as
    unknown too; any other exception propagates: "key store down" is not "bad
    credential"). ``algorithm_or_None`` pins the key's algorithm (needed only to choose
    ``rsa-v1_5-sha256`` for an RSA key); ``None`` derives it from the key type.

    ``nonce_store(key_id, nonce, ttl_seconds)`` records a nonce and returns ``False`` when
    it was already there (Django's ``cache.add`` semantics); it is called last, only for a
    signature that passed every other check, with a TTL covering the whole acceptance
    window (``max_age + 2 * clock_skew``). ``require_nonce=True`` needs a store.

    Which signature: when ``Signature-Input`` carries several labels, the first one (in
    header order) that meets the structural requirements (member types, required
    components covered, ``keyid``, ``created``, ``nonce`` when required) is verified, and
    only that one; if none qualifies, the first label's failure is raised. A later valid
    signature does not rescue a qualifying one that fails cryptographically.

    Order of checks (it decides the reason code): headers present → parseable →
    structure/coverage/params → time window → key and algorithm → digest header present
    → signature (library) → digest against the body → nonce.
    """

    def __init__(
        self,
        *,
        resolve_key: Callable[[str], tuple[Any, str | None]],
        required_components: Sequence[str] = DEFAULT_COMPONENTS,
        max_age: int = 300,
        clock_skew: int = 30,
        nonce_store: Callable[[str, str, int], bool] | None = None,
        require_nonce: bool = True,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    ):
        self.resolve_key = resolve_key
        self.required_components = tuple(required_components)
        try:
            self._required = tuple((c, _component_identity(c)) for c in self.required_components)
        except Exception as exc:
            raise ValueError(f"invalid required_components: {exc}") from exc
        self.max_age = int(max_age)
        self.clock_skew = int(clock_skew)
        if self.max_age <= 0 or self.clock_skew < 0:
            raise ValueError("max_age must be > 0 and clock_skew >= 0")
        self.nonce_store = nonce_store
        self.require_nonce = require_nonce
        if require_nonce and nonce_store is None:
            raise ValueError("require_nonce=True needs a nonce_store (else replays go unseen)")
        self.algorithms = frozenset(algorithms)
        unsupported = self.algorithms - set(SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ValueError(f"unsupported algorithm(s): {', '.join(sorted(unsupported))}")

    # The clock seam for tests and subclasses.
    def _now(self) -> float:
        return time.time()

    @property
    def nonce_ttl(self) -> int:
        return self.max_age + 2 * self.clock_skew + 1

    def verify(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        now: float | dt.datetime | None = None,
    ) -> VerifiedSignature:
        """Verify the request's signature or raise :class:`SignatureError`.

        ``url`` is the full target URI as the server reconstructs it (:func:`target_uri`),
        ``headers`` any mapping of header names (any case) to values, e.g. Django's
        ``request.headers``, ``body`` the raw body bytes (``request.body``).
        """
        if isinstance(now, dt.datetime):
            current = now.timestamp()
        else:
            current = float(self._now() if now is None else now)
        body = b"" if body is None else bytes(body)
        pairs = _header_pairs(headers)
        fields = get_header_fields(_Fields(pairs))
        candidate = self._select(fields)
        key_id, params = candidate.params["keyid"], candidate.params

        def fail(code: str, detail: str = "") -> SignatureError:
            return SignatureError(code, detail, key_id=key_id, label=candidate.label)

        self._check_time(params, current, fail)
        algorithm, key = self._key_and_algorithm(key_id, params, fail)
        digest_covered = ("content-digest", frozenset()) in candidate.identities
        if digest_covered and "content-digest" not in fields:
            raise fail("missing_digest", "content-digest is covered but the header is absent")

        signature_base = self._library_verify(method, url, pairs, candidate, algorithm, key, fail)

        if digest_covered or "content-digest" in fields:
            try:
                check_content_digest(fields.get("content-digest"), body)
            except SignatureError as exc:
                raise fail(exc.code, exc.detail) from exc
        nonce = params.get("nonce")
        fresh = nonce is None or self.nonce_store is None
        if not fresh and not self.nonce_store(key_id, nonce, self.nonce_ttl):
            raise fail("replayed_nonce", "nonce already used with this key")
        return VerifiedSignature(
            key_id=key_id,
            label=candidate.label,
            algorithm=algorithm,
            covered_components=candidate.components,
            created=params["created"],
            nonce=nonce,
            signature=candidate.signature,
            signature_input=candidate.signature_input,
            signature_base=signature_base,
            expires=params.get("expires"),
            tag=params.get("tag"),
        )

    # -- steps

    @staticmethod
    def _parse_dictionary(name: str, value: str) -> dict:
        try:
            parsed = http_sf.parse(
                value.encode("ascii"), tltype="dictionary", on_duplicate_key=_reject_duplicate
            )
        except Exception as exc:  # untrusted input: any parser failure is "malformed"
            raise SignatureError(
                "malformed_signature", f"{name} is not a valid dictionary"
            ) from exc
        if not isinstance(parsed, dict):
            raise SignatureError("malformed_signature", f"{name} is not a dictionary")
        return parsed

    def _select(self, fields) -> _Candidate:
        if "signature-input" not in fields or "signature" not in fields:
            raise SignatureError("missing_signature", "Signature-Input and Signature required")
        inputs = self._parse_dictionary("Signature-Input", fields["signature-input"])
        signatures = self._parse_dictionary("Signature", fields["signature"])
        if not inputs and not signatures:
            raise SignatureError("missing_signature", "no signature in the headers")
        if set(inputs) != set(signatures):
            raise SignatureError(
                "malformed_signature", "Signature-Input and Signature have different labels"
            )
        first_error: SignatureError | None = None
        for label in inputs:
            try:
                return self._candidate(label, inputs[label], signatures[label])
            except SignatureError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _candidate(self, label: str, member: Any, sig_member: Any) -> _Candidate:
        def fail(code: str, detail: str, key_id: str | None = None) -> SignatureError:
            return SignatureError(code, detail, key_id=key_id, label=label)

        inner, params = member
        if not isinstance(inner, list):
            raise fail("malformed_signature", "Signature-Input member is not an inner list")
        signature = sig_member[0]
        if not isinstance(signature, bytes) or not signature:
            raise fail("malformed_signature", "Signature member is not a byte sequence")
        components, identities = [], set()
        for value, item_params in inner:
            if type(value) is not str or value != value.lower() or not value:
                raise fail("malformed_signature", "component names must be lowercase strings")
            identity = (value, frozenset(item_params.items()))
            if identity in identities:
                raise fail("malformed_signature", f"component {value!r} covered twice")
            identities.add(identity)
            components.append(http_sf.ser((value, item_params)) if item_params else value)
        for name, value in params.items():
            expected = _SIGNATURE_PARAMETERS.get(name)
            if expected is None:
                raise fail("malformed_signature", f"unknown signature parameter {name!r}")
            if type(value) is not expected:  # excludes bool (an int) and Token (a str-like)
                raise fail("malformed_signature", f"parameter {name!r} has the wrong type")
        key_id = params.get("keyid")
        if not key_id:
            raise fail("malformed_signature", "no keyid parameter")
        missing = [c for c, identity in self._required if identity not in identities]
        if missing:
            raise fail("missing_component", f"not covered: {', '.join(missing)}", key_id)
        if "created" not in params:
            raise fail("created_missing", "no created parameter", key_id)
        nonce = params.get("nonce")
        if nonce is None and self.require_nonce:
            raise fail("missing_nonce", "no nonce parameter", key_id)
        if nonce is not None and not 0 < len(nonce) <= _MAX_NONCE_LENGTH:
            raise fail("malformed_signature", "nonce is empty or too long", key_id)
        return _Candidate(
            label=label,
            components=tuple(components),
            identities=frozenset(identities),
            params=params,
            signature=signature,
            signature_input=http_sf.ser({label: member}),
            signature_field=http_sf.ser({label: sig_member}),
        )

    def _check_time(self, params: dict, now: float, fail) -> None:
        created = params["created"]
        if created > now + self.clock_skew:
            raise fail("created_in_future", f"created {created} is after now {int(now)}")
        if created < now - self.max_age - self.clock_skew:
            raise fail("signature_too_old", f"created {created} is older than {self.max_age} s")
        expires = params.get("expires")
        if expires is not None and expires < now - self.clock_skew:
            raise fail("expired", f"expired at {expires}")

    def _key_and_algorithm(self, key_id: str, params: dict, fail) -> tuple[str, Any]:
        try:
            resolved = self.resolve_key(key_id)
        except SignatureError as exc:
            if exc.key_id is None:
                exc.key_id = key_id
            raise
        except LookupError as exc:
            raise fail("unknown_key", f"unknown keyid {key_id!r}") from exc
        key, pinned = resolved if isinstance(resolved, tuple) else (resolved, None)
        if key is None:
            raise fail("unknown_key", f"unknown keyid {key_id!r}")
        try:
            derived = algorithm_for_key(key)
        except SignatureError as exc:
            raise fail(exc.code, exc.detail) from exc
        algorithm = pinned or derived
        compatible = algorithm == derived or (
            derived in _RSA_ALGORITHMS and algorithm in _RSA_ALGORITHMS
        )
        if not compatible:
            raise fail("algorithm_not_allowed", f"{algorithm} does not fit a {derived} key")
        if algorithm not in self.algorithms:
            raise fail("algorithm_not_allowed", f"algorithm {algorithm} is not allowed")
        if "alg" in params and params["alg"] != algorithm:
            raise fail("algorithm_not_allowed", f"alg {params['alg']!r} but the key is {algorithm}")
        return algorithm, key

    def _library_verify(self, method, url, pairs, candidate, algorithm, key, fail) -> str:
        # Only the selected label goes to the library (it refuses to choose among several
        # without a tag): the two signature fields are replaced by that single member.
        own = [(n, v) for n, v in pairs if n.lower() not in ("signature-input", "signature")]
        own += [
            ("Signature-Input", candidate.signature_input),
            ("Signature", candidate.signature_field),
        ]
        message = _Message(method=method, url=url, headers=_Fields(own))
        verifier = _LibraryVerifier(
            signature_algorithm=_RECORDING_ALGORITHMS[algorithm],
            key_resolver=_OneKeyResolver(candidate.params["keyid"], key),
        )
        sink: list[bytes] = []
        token = _verified_base.set(sink)
        try:
            verifier.verify(message, max_age=None, require_components=self.required_components)
        except Exception as exc:  # library and crypto errors alike: it does not verify
            raise fail("bad_signature", f"signature does not verify: {exc}") from exc
        finally:
            _verified_base.reset(token)
        if len(sink) != 1:  # cannot happen unless the library changes its flow
            raise fail("bad_signature", "signature base was not recorded")
        return sink[0].decode("ascii")


# --------------------------------------------------------------------------- nonce store


class MemoryNonceStore:
    """An in-process ``nonce_store`` (tests, single-process services). Thread-safe;
    entries expire after their TTL. Several processes need a shared store (Django's
    cache ``add`` on Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, key_id: str, nonce: str, ttl_seconds: int) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expiry = self._seen.get((key_id, nonce))
            if expiry is not None and expiry > now:
                return False
            self._seen[(key_id, nonce)] = now + ttl_seconds
            return True
