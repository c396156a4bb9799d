"""The third party: check ``s2s_audit export`` lines with nothing but ``ca.pem``.

Written against the export format documented in ``s2s_audit export --help``, not against
``s2s_auth.audit``: a judge who doubts the service must not need its code. Each check
uses a maintained library (``cryptography.x509.verification`` for the certificate path,
PyJWT for JWS, ``http_message_signatures`` for RFC 9421, ``http_sf`` for Structured
Fields) and fails with :class:`EvidenceError` naming what does not hold.

    records = parse_export(stdout)
    check_links(records)                      # consecutive records of a chain link up
    summary = verify_exported_record(records[-1], Path("ca.pem").read_bytes())
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import http_sf
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from http_message_signatures import algorithms as rfc9421

#: ``prev_hash`` of a chain's first record.
GENESIS = "0" * 64
#: Exported fields that describe the record rather than being part of it.
META_FIELDS = frozenset({"id", "hash", "hash_input", "hash_version"})
#: RFC 9421 algorithms with a public key (no HMAC: a shared secret proves nothing).
SIGNATURE_ALGORITHMS = {
    cls.algorithm_id: cls
    for cls in (
        rfc9421.ECDSA_P256_SHA256,
        rfc9421.ECDSA_P384_SHA384,
        rfc9421.ED25519,
        rfc9421.RSA_PSS_SHA512,
        rfc9421.RSA_V1_5_SHA256,
    )
}


class EvidenceError(ValueError):
    """An exported record does not prove what it says."""


def parse_export(text: str) -> list[dict[str, Any]]:
    """The records of ``s2s_audit export`` output (one JSON object per line)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------- hash and chain


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise EvidenceError("hash_input repeats a key")
    return dict(pairs)


def check_hash(record: dict[str, Any]) -> None:
    """``hash`` is SHA-256 of ``hash_input``, and ``hash_input`` holds exactly the
    record's fields: nothing exported is left outside the hash."""
    digest = hashlib.sha256(record["hash_input"].encode("utf-8")).hexdigest()
    if digest != record["hash"]:
        raise EvidenceError("hash_input does not hash to the record's hash")
    hashed = json.loads(record["hash_input"], object_pairs_hook=_no_duplicates)
    if hashed.pop("v", None) != record.get("hash_version"):
        raise EvidenceError("hash_input is not of the record's hash_version")
    fields = {k: v for k, v in record.items() if k not in META_FIELDS}
    if set(hashed) != set(fields):
        raise EvidenceError(
            f"hashed and exported fields differ: {sorted(set(hashed) ^ set(fields))}"
        )
    changed = sorted(k for k in fields if fields[k] != hashed[k])
    if changed:
        raise EvidenceError(f"exported fields differ from what was hashed: {changed}")


def check_links(records: Iterable[dict[str, Any]]) -> int:
    """Consecutive records of one ``chain_id`` link by ``prev_hash`` (an export is a
    selection: gaps are not checked). Returns the number of links checked."""
    by_place: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        place = (record["chain_id"], int(record["seq"]))
        if place in by_place and by_place[place]["hash"] != record["hash"]:
            raise EvidenceError(f"two different records at chain {place[0]}, seq {place[1]}")
        by_place[place] = record
    links = 0
    for (chain, seq), record in by_place.items():
        if seq == 1:
            expected = GENESIS
        elif (chain, seq - 1) in by_place:
            expected = by_place[(chain, seq - 1)]["hash"]
        else:
            continue  # the previous record is not in this selection (or was pruned)
        if record["prev_hash"] != expected:
            raise EvidenceError(f"record {record['id']} does not link to seq {seq - 1}")
        links += 1
    return links


# ----------------------------------------------------------------- the certificate


def check_certificate(record: dict[str, Any], ca_pem: bytes) -> x509.Certificate:
    """The leaf's path to ``ca_pem`` was valid at the record's time, and the leaf names
    the recorded principal. Returns the leaf."""
    try:
        chain = x509.load_pem_x509_certificates(record["certificate"].encode("ascii"))
    except ValueError as exc:
        raise EvidenceError(f"no readable certificate: {exc}") from exc
    leaf, intermediates = chain[0], chain[1:]
    when = dt.datetime.fromisoformat(record["time"])
    store = Store(x509.load_pem_x509_certificates(ca_pem))
    verifier = PolicyBuilder().store(store).time(when).build_client_verifier()
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise EvidenceError(f"no valid path to ca.pem at {record['time']}: {exc}") from exc
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    if record["principal"] not in san.get_values_for_type(x509.UniformResourceIdentifier):
        raise EvidenceError("the certificate does not name the recorded principal")
    return leaf


# ----------------------------------------------------------------- the credential


def _jws_algorithms(public_key) -> list[str]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": ["ES256"], "secp384r1": ["ES384"]}.get(public_key.curve.name, [])
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ["EdDSA"]
    if isinstance(public_key, rsa.RSAPublicKey):
        return ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512"]
    return []


def check_jwt(record: dict[str, Any], leaf: x509.Certificate) -> str:
    """The JWT's signature verifies with the leaf's key; ``iss``/``sub`` are the
    principal; stored ``claims`` are what was signed. Time claims are not re-checked:
    the token has expired since."""
    try:
        claims = jwt.decode(
            record["credential"],
            leaf.public_key(),
            algorithms=_jws_algorithms(leaf.public_key()),
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise EvidenceError(f"JWT does not verify: {exc}") from exc
    if claims.get("iss") != record["principal"] or claims.get("sub") != record["principal"]:
        raise EvidenceError("iss/sub are not the recorded principal")
    if record.get("claims") and record["claims"] != claims:
        raise EvidenceError("the stored claims are not the signed ones")
    return f"JWT signature (jti {claims.get('jti')})"


def _signature_field(credential: str) -> str:
    """The ``Signature`` field (older records: ``Signature-Input: …\\nSignature: …``)."""
    for line in credential.splitlines():
        if line.startswith("Signature: "):
            return line.removeprefix("Signature: ")
    return credential


def _base_lines(base: str) -> dict[str, str]:
    """Component identifier (as written) → value, for each line of a signature base."""
    lines = {}
    for line in base.split("\n"):
        name, sep, value = line.partition(": ")
        if sep:
            lines[name] = value
    return lines


def _algorithm(params_value: str, public_key) -> str:
    # An inner list of the covered components, with the parameters: a one-member List.
    ((_, params),) = http_sf.parse(params_value.encode("ascii"), tltype="list")
    alg = params.get("alg")
    if isinstance(alg, str):
        return alg
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256-sha256", "secp384r1": "ecdsa-p384-sha384"}.get(
            public_key.curve.name, ""
        )
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "rsa-pss-sha512" if isinstance(public_key, rsa.RSAPublicKey) else ""


def _check_covered_request(record: dict[str, Any], lines: dict[str, str]) -> None:
    """What the signature covers is what the record says was requested."""
    if '"@method"' in lines and lines['"@method"'] != record["method"]:
        raise EvidenceError("the signed method is not the recorded one")
    signed_paths = []
    if '"@target-uri"' in lines:
        signed_paths.append(unquote(urlsplit(lines['"@target-uri"']).path))
    if '"@path"' in lines:
        signed_paths.append(unquote(lines['"@path"']))
    if any(path != record["path"] for path in signed_paths):
        raise EvidenceError("the signed path is not the recorded one")
    if '"content-digest"' in lines and record["body_digest"]:
        signed = http_sf.parse(lines['"content-digest"'].encode("ascii"), tltype="dictionary")
        recorded = http_sf.parse(record["body_digest"].encode("ascii"), tltype="dictionary")
        common = set(signed) & set(recorded)
        if not common or any(signed[a][0] != recorded[a][0] for a in common):
            raise EvidenceError("the signed content digest is not the recorded body's")


def check_http_signature(record: dict[str, Any], leaf: x509.Certificate) -> str:
    """An RFC 9421 signature in ``credential`` over ``signature_base`` with the leaf's
    key, by the algorithm its ``@signature-params`` name; the covered method, path and
    body digest are the recorded ones."""
    base = record["signature_base"]
    lines = _base_lines(base)
    if '"@signature-params"' not in lines:
        raise EvidenceError("the signature base has no @signature-params line")
    public_key = leaf.public_key()
    alg = _algorithm(lines['"@signature-params"'], public_key)
    if alg not in SIGNATURE_ALGORITHMS:
        raise EvidenceError(f"not a public-key RFC 9421 algorithm: {alg!r}")
    try:
        verifier = SIGNATURE_ALGORITHMS[alg](public_key=public_key)
    except Exception as exc:  # the library refuses this key for this algorithm
        raise EvidenceError(f"the certificate's key does not fit {alg}: {exc}") from exc
    field_value = _signature_field(record["credential"])
    members = http_sf.parse(field_value.encode("ascii"), tltype="dictionary")
    message = base.encode("ascii")
    for value, _params in members.values():
        if not isinstance(value, bytes):
            continue
        try:
            verifier.verify(value, message)
        except Exception:  # noqa: S112 - a member that does not verify: try the next
            continue
        _check_covered_request(record, lines)
        return "RFC 9421 signature over the stored signature base"
    raise EvidenceError("no RFC 9421 signature verifies over the stored signature base")


# ----------------------------------------------------------------- one record


def verify_exported_record(record: dict[str, Any], ca_pem: bytes) -> str:
    """What a third party does with one accepted ``s2s_audit export`` line and the CA
    certificate: the certificate path at the record's time, the signature over the
    credential, the principal, and the record's hash. Raises :class:`EvidenceError`
    on any mismatch; returns a summary."""
    if record.get("outcome") != "accepted":
        raise EvidenceError("not an accepted record")
    if not record.get("credential"):
        raise EvidenceError("no signed credential stored")
    check_hash(record)
    leaf = check_certificate(record, ca_pem)
    if record["signature_base"]:
        what = check_http_signature(record, leaf)
    else:
        what = check_jwt(record, leaf)
    return (
        f"{what} verified with the certificate of {record['principal']}, whose path to "
        "ca.pem was valid at the record's time; the record's hash checks"
    )


__all__ = [
    "EvidenceError",
    "check_certificate",
    "check_hash",
    "check_http_signature",
    "check_jwt",
    "check_links",
    "parse_export",
    "verify_exported_record",
]
