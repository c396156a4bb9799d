"""Verifying RFC 9421 request signatures under a fixed policy (the server side)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import http_sf
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
)
from http_message_signatures.algorithms import HTTPSignatureAlgorithm
from http_message_signatures.structures import get_header_fields

from s2s_auth.core.httpsig.algorithms import (
    DEFAULT_ALGORITHMS,
    DEFAULT_COMPONENTS,
    RSA_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    algorithm_for_key,
)
from s2s_auth.core.httpsig.coverage import missing_components
from s2s_auth.core.httpsig.digest import check_content_digest, reject_duplicate
from s2s_auth.core.httpsig.errors import SignatureError
from s2s_auth.core.httpsig.replay import signature_replay_key

__all__ = ["SignatureVerifier", "VerifiedSignature"]

_MAX_NONCE_LENGTH = 256
_SIGNATURE_FIELDS = frozenset({"signature-input", "signature"})
_OWN_FIELDS = _SIGNATURE_FIELDS | {"content-digest"}
#: The key of the ``@signature-params`` line in VerifyResult.covered_components.
_PARAMS_ID = '"@signature-params"'
_SIGNATURE_PARAMETERS = {
    "alg": str,
    "created": int,
    "expires": int,
    "keyid": str,
    "nonce": str,
    "tag": str,
}


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
    member: Any  # the parsed Signature-Input member (re-serialized when not alone)
    sig_member: Any  # the parsed Signature member
    alone: bool  # the only label in both fields: the library can take them as they came


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

    A signature without a nonce is single-use too: ``signature_store(key_id, value,
    ttl_seconds)`` (same contract; default: ``nonce_store``) records its value in canonical
    form (:func:`~s2s_auth.core.httpsig.replay.signature_replay_key`, ECDSA low-S), so
    its replay, re-encoded or not, is ``replayed_signature``. With no store at all,
    nothing is remembered (a deliberate opt-out: tests, the audit re-check).

    Required components: ``@authority`` + ``@path`` + ``@query`` stand for
    ``@target-uri`` (and the reverse), and ``content-digest`` is required only of a
    request with a body (:func:`~s2s_auth.core.httpsig.coverage.missing_components`).

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
        require_nonce: bool = False,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        signature_store: Callable[[str, str, int], bool] | None = None,
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
        self.signature_store = signature_store or nonce_store
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
        url: str | Sequence[str],
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        now: float | dt.datetime | None = None,
    ) -> VerifiedSignature:
        """Verify the request's signature or raise :class:`SignatureError`.

        ``url`` is the full target URI as the server reconstructs it (:func:`target_uri`),
        or several (one per origin of this server): the signature must hold for one of them,
        ``headers`` any mapping of header names (any case) to values, e.g. Django's
        ``request.headers``, ``body`` the raw body bytes (``request.body``).
        """
        if isinstance(now, dt.datetime):
            current = now.timestamp()
        else:
            current = float(self._now() if now is None else now)
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("url: at least one target URI")
        body = b"" if body is None else bytes(body)
        pairs = _header_pairs(headers)
        # Combined (and normalised as the library does) only for the fields read here.
        fields = get_header_fields(_Fields([(n, v) for n, v in pairs if n.lower() in _OWN_FIELDS]))
        candidate = self._select(fields, has_body=bool(body))
        key_id, params = candidate.params["keyid"], candidate.params

        def fail(code: str, detail: str = "") -> SignatureError:
            return SignatureError(code, detail, key_id=key_id, label=candidate.label)

        self._check_time(params, current, fail)
        algorithm, key = self._key_and_algorithm(key_id, params, fail)
        digest_covered = ("content-digest", frozenset()) in candidate.identities
        if digest_covered and "content-digest" not in fields:
            raise fail("missing_digest", "content-digest is covered but the header is absent")

        result, signature_base = self._library_verify(
            method,
            urls,
            self._library_fields(pairs, fields, candidate),
            candidate,
            algorithm,
            key,
            fail,
        )

        if digest_covered or "content-digest" in fields:
            try:
                check_content_digest(fields.get("content-digest"), body)
            except SignatureError as exc:
                raise fail(exc.code, exc.detail) from exc
        nonce = params.get("nonce")
        if nonce is not None and self.nonce_store is not None:
            if not self.nonce_store(key_id, nonce, self.nonce_ttl):
                raise fail("replayed_nonce", "nonce already used with this key")
        elif nonce is None and self.signature_store is not None:
            value = signature_replay_key(algorithm, candidate.signature)
            if not self.signature_store(key_id, value, self.nonce_ttl):
                raise fail("replayed_signature", "this signature was already accepted")
        return VerifiedSignature(
            key_id=key_id,
            label=candidate.label,
            algorithm=algorithm,
            covered_components=candidate.components,
            created=params["created"],
            nonce=nonce,
            signature=candidate.signature,
            # The library's own serialization of what it verified (no second one here).
            signature_input=f"{candidate.label}={result.covered_components[_PARAMS_ID]}",
            signature_base=signature_base,
            expires=params.get("expires"),
            tag=params.get("tag"),
        )

    # -- steps

    @staticmethod
    def _parse_dictionary(name: str, value: str) -> dict:
        try:
            parsed = http_sf.parse(
                value.encode("ascii"), tltype="dictionary", on_duplicate_key=reject_duplicate
            )
        except Exception as exc:  # untrusted input: any parser failure is "malformed"
            raise SignatureError(
                "malformed_signature", f"{name} is not a valid dictionary"
            ) from exc
        if not isinstance(parsed, dict):
            raise SignatureError("malformed_signature", f"{name} is not a dictionary")
        return parsed

    def _select(self, fields, *, has_body: bool) -> _Candidate:
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
        alone = len(inputs) == 1
        for label in inputs:
            try:
                return self._candidate(label, inputs[label], signatures[label], has_body, alone)
            except SignatureError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _candidate(
        self, label: str, member: Any, sig_member: Any, has_body: bool, alone: bool
    ) -> _Candidate:
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
        missing = missing_components(self._required, identities, has_body=has_body)
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
            member=member,
            sig_member=sig_member,
            alone=alone,
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
            derived in RSA_ALGORITHMS and algorithm in RSA_ALGORITHMS
        )
        if not compatible:
            raise fail("algorithm_not_allowed", f"{algorithm} does not fit a {derived} key")
        if algorithm not in self.algorithms:
            raise fail("algorithm_not_allowed", f"algorithm {algorithm} is not allowed")
        if "alg" in params and params["alg"] != algorithm:
            raise fail("algorithm_not_allowed", f"alg {params['alg']!r} but the key is {algorithm}")
        return algorithm, key

    @staticmethod
    def _library_fields(pairs, fields, candidate: _Candidate) -> _Fields:
        """The field lines the library reads: those the signature covers (every line, in
        order, as sent) and the two signature fields holding the selected label only.

        The library refuses to choose among several labels without a tag, so when there are
        several, the selected member is serialized alone; when it is the only one, the fields
        go as they came. Other header lines would only be copied and indexed for nothing.
        """
        covered = {name for name, _ in candidate.identities if not name.startswith("@")}
        covered -= _SIGNATURE_FIELDS  # the library sees them as below, covered or not
        own = [(n, v) for n, v in pairs if n.lower() in covered]
        if candidate.alone:
            own += [
                ("Signature-Input", fields["signature-input"]),
                ("Signature", fields["signature"]),
            ]
        else:
            own += [
                ("Signature-Input", http_sf.ser({candidate.label: candidate.member})),
                ("Signature", http_sf.ser({candidate.label: candidate.sig_member})),
            ]
        return _Fields(own)

    def _library_verify(self, method, urls, headers, candidate, algorithm, key, fail):
        """``(VerifyResult, signature base)`` for the first of ``urls`` the signature holds for."""
        verifier = _LibraryVerifier(
            signature_algorithm=_RECORDING_ALGORITHMS[algorithm],
            key_resolver=_OneKeyResolver(candidate.params["keyid"], key),
        )
        failure: Exception | None = None
        for url in urls:  # the server's own target URIs: the signature names one of them
            message = _Message(method=method, url=url, headers=headers)
            sink: list[bytes] = []
            token = _verified_base.set(sink)
            try:
                # Coverage was checked by missing_components (with its equivalences).
                results = verifier.verify(message, max_age=None, require_components=())
            except Exception as exc:  # library and crypto errors alike: it does not verify
                failure = failure or exc
                continue
            finally:
                _verified_base.reset(token)
            if len(sink) != 1 or len(results) != 1:  # cannot happen unless the library changes
                raise fail("bad_signature", "signature base was not recorded")
            return results[0], sink[0].decode("ascii")
        where = "" if len(urls) == 1 else f" for any of this server's {len(urls)} origins"
        raise fail("bad_signature", f"signature does not verify{where}: {failure}") from failure
