"""Does a stored record's evidence still hold, with nothing but what the row stores?

A self-signed credential re-verified with the stored certificate's public key (a JWT's
signature; an RFC 9421 signature over the stored signature base), the certificate
naming the recorded principal, and its path to the trust anchors at the record's time.
Used by :mod:`s2s_auth.audit.verify` and the admin's detail page.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import http_sf
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from s2s_auth.audit.canonical import iso_time
from s2s_auth.core import httpsig, jose, jwk

__all__ = [
    "AnchorCheck",
    "certificate_names",
    "decode_jwt_unverified",
    "signature_members",
    "signature_params",
    "verify_credential",
]


def decode_jwt_unverified(token: str) -> tuple[dict, dict] | None:
    """(header, payload) of a compact JWS, decoded without trusting it; None if it is
    not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except (ValueError, RecursionError):  # hostile JSON: nested thousands deep
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


def signature_members(credential: str) -> list[bytes]:
    """The signatures in a stored RFC 9421 ``Signature`` field (or a bare base64 one)."""
    try:
        parsed = http_sf.parse(credential.encode("ascii"), tltype="dictionary")
    except Exception:  # not a dictionary: maybe bare base64
        parsed = None
    if isinstance(parsed, dict) and parsed:
        return [m[0] for m in parsed.values() if isinstance(m, tuple) and isinstance(m[0], bytes)]
    try:
        return [base64.b64decode(credential.strip().strip(":"), validate=True)]
    except ValueError:
        return []


def signature_params(signature_base: str) -> dict | None:
    """The parameters (``created``, ``keyid``, ``nonce``, ``alg``, ...) on the last line
    of an RFC 9421 signature base; None when it has none or they are malformed."""
    last = signature_base.rsplit("\n", 1)[-1]
    prefix = '"@signature-params": '
    if not last.startswith(prefix):
        return None
    try:
        ((_, params),) = http_sf.parse(last[len(prefix) :].encode("ascii"), tltype="list")
    except Exception:  # malformed: no parameters to read
        return None
    return dict(params) if isinstance(params, dict) else None


def _signature_params_alg(signature_base: str) -> str | None:
    alg = (signature_params(signature_base) or {}).get("alg")
    return alg if isinstance(alg, str) else None


def verify_credential(credential: str, signature_base: str, certificate_pem: str) -> str | None:
    """Does the stored credential verify with the stored certificate's public key?

    An RFC 9421 signature (``signature_base`` given) over that base; a JWT's signature
    otherwise (claims such as ``exp`` are not re-checked: they were checked when the
    request came in). None when it verifies, else the reason.
    """
    if not credential:
        return "no credential stored"
    if not certificate_pem:
        return "no certificate stored"
    try:
        leaf = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))[0]
        public_key = leaf.public_key()
    except (ValueError, UnicodeError) as exc:
        return f"stored certificate unreadable: {exc}"
    if signature_base:
        try:
            alg = _signature_params_alg(signature_base) or httpsig.algorithm_for_key(public_key)
        except httpsig.SignatureError as exc:
            return f"key not usable: {exc.detail}"
        algorithm = httpsig.SUPPORTED_ALGORITHMS.get(alg)
        if algorithm is None:
            return f"unsupported signature algorithm {alg!r}"
        try:
            verifier = algorithm(public_key=public_key)
        except Exception as exc:  # the library refuses this key type
            return f"key does not fit {alg}: {exc}"
        message = signature_base.encode("ascii", "replace")
        for signature in signature_members(credential):
            try:
                verifier.verify(signature, message)
                return None
            except Exception:  # noqa: S112 - any failure: try the next member
                continue
        return "RFC 9421 signature does not verify over the stored signature base"
    try:
        jose.verify_jws(credential, public_key, algorithms=sorted(jwk.SUPPORTED_ALGORITHMS))
    except jose.TokenError as exc:
        return f"JWT signature does not verify: {exc.code}"
    except (TypeError, ValueError) as exc:
        return f"JWT cannot be checked: {exc}"
    return None


def certificate_names(certificate_pem: str, principal: str) -> str | None:
    """Does the stored leaf carry ``principal`` as a URI SAN? None if so, else why not."""
    try:
        leaf = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, UnicodeError, x509.ExtensionNotFound):
        uris = []
    if principal not in uris:
        return f"certificate does not name principal {principal}"
    return None


class AnchorCheck:
    """Path validation of stored certificates to trust anchors at the record's time
    (``cryptography.x509.verification``). A validated path is remembered with the time
    window in which all its certificates are valid."""

    def __init__(self, anchors: list[x509.Certificate]):
        if not anchors:
            raise ValueError("no trust anchors")
        self.store = Store(anchors)
        self._ok: dict[str, tuple[dt.datetime, dt.datetime]] = {}

    @classmethod
    def from_file(cls, path) -> AnchorCheck:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
        return cls([c for c in certs if c.issuer == c.subject])

    def __call__(self, certificate_pem: str, when: dt.datetime) -> str | None:
        window = self._ok.get(certificate_pem)
        if window and window[0] <= when <= window[1]:
            return None
        try:
            certs = x509.load_pem_x509_certificates(certificate_pem.encode("ascii"))
        except (ValueError, UnicodeError) as exc:
            return f"stored certificate unreadable: {exc}"
        try:
            verifier = PolicyBuilder().store(self.store).time(when).build_client_verifier()
            verified = verifier.verify(certs[0], certs[1:])
        except VerificationError as exc:
            return f"certificate does not chain to the trust anchors at {iso_time(when)}: {exc}"
        path = list(verified.chain)
        self._ok[certificate_pem] = (
            max(c.not_valid_before_utc for c in path),
            min(c.not_valid_after_utc for c in path),
        )
        return None
