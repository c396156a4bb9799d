"""The crypto floor: what each mechanism's unavoidable cryptography costs, in-process.

A mechanism cannot be cheaper than its cryptography: an ES256 verify for a signed
request, a PyJWT decode for a service JWT, a TLS handshake per new connection, a hash
for an API key. ``measure`` times each raw operation on one core (the best of a few
rounds: a floor, not an average), and ``add_floors`` turns them into a ceiling per
case: the throughput the case would reach if authentication cost only its
cryptography, on top of the transport it runs over, measured in the same run::

    per-request CPU of the transport  = CPUs / transport throughput
    ceiling throughput                = 1 / (1 / transport + floor / CPUs)

The floor counts the client's cryptography too (minting a service JWT, signing a
request): the load clients share the CPUs with the server, as in the measured cases.

    python -m bench.floor PKI_DIR SECONDS     # one JSON line: operation -> µs
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import sys
import time
import uuid
from pathlib import Path

#: operation -> what it is (the page prints it).
OPERATIONS: dict[str, str] = {
    "es256_sign": "ECDSA P-256 / SHA-256 sign of a 300-byte message (cryptography)",
    "es256_verify": "ECDSA P-256 / SHA-256 verify of a 300-byte message (cryptography)",
    "jwt_decode_service": "PyJWT decode of an ES256 service JWT (signature, aud, exp, iat)",
    "jwt_decode_access": "PyJWT decode of an ES256 access token (at+jwt, scope, client_id)",
    "x509_verify": "X.509 certificate signature checked against its CA (cryptography)",
    "sha256_token": "SHA-256 of an access token (the verified-token cache key)",
    "api_key_hash": "SHA-256 of an API key and a constant-time compare",
    "hmac_secret": "HMAC-SHA256 of a client secret and a constant-time compare",
    "tls_full_handshake": "TLS 1.3 handshake with a client certificate, both ends, in memory",
    "tls_resumed_handshake": "TLS 1.3 resumed handshake (session ticket), both ends, in memory",
}

#: case -> (transport case it runs over, server operations, client operations).
FLOORS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "api_key": ("https", ("api_key_hash",), ()),
    "mtls": ("mtls_transport", (), ()),  # the certificate was checked in the handshake
    "service_jwt_mtls": ("mtls_transport", ("jwt_decode_service",), ("es256_sign",)),
    "service_jwt_mtls_pg": ("mtls_transport", ("jwt_decode_service",), ("es256_sign",)),
    "service_jwt_x5c": ("https", ("jwt_decode_service", "x509_verify"), ("es256_sign",)),
    "access_token": ("https", ("sha256_token",), ()),  # a cache hit: no signature check
    "access_token_pg": ("https", ("sha256_token",), ()),
    "access_token_nocache": ("https", ("jwt_decode_access",), ()),
    "mtls_bg": ("mtls_transport", (), ()),
    "service_jwt_mtls_bg": ("mtls_transport", ("jwt_decode_service",), ("es256_sign",)),
    "access_token_bg": ("https", ("sha256_token",), ()),
    "bound_token": ("mtls_transport", ("sha256_token",), ()),
    "http_signature": ("mtls_transport", ("es256_verify",), ("es256_sign",)),
    "token_client_secret_basic": ("https", ("hmac_secret", "es256_sign"), ()),
    "token_client_secret_post": ("https", ("hmac_secret", "es256_sign"), ()),
    "token_private_key_jwt": ("https", ("jwt_decode_service", "es256_sign"), ("es256_sign",)),
    "token_tls_client_auth": ("mtls_transport", ("es256_sign",), ()),
    "handshake_full": ("plain_http", ("tls_full_handshake",), ()),
    "handshake_resumed": ("plain_http", ("tls_resumed_handshake",), ()),
    "nearby_s2s": ("nearby_plain", ("jwt_decode_service",), ("es256_sign",)),
}

MESSAGE = b"x" * 300
ROUNDS = 5


def _operations(pki: Path) -> dict:
    """operation -> a callable doing it once."""
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    signature = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    now = int(time.time())
    service = jwt.encode(
        {
            "iss": "spiffe://fleamarket.local/service/bench",
            "sub": "spiffe://fleamarket.local/service/bench",
            "aud": "spiffe://fleamarket.local/service/users",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        },
        key,
        algorithm="ES256",
        headers={"kid": "k1"},
    )
    access = jwt.encode(
        {
            "iss": "https://127.0.0.1:8001",
            "sub": "spiffe://fleamarket.local/service/bench",
            "aud": "spiffe://fleamarket.local/service/users",
            "client_id": "bench",
            "scope": "users:read",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        },
        key,
        algorithm="ES256",
        headers={"kid": "k1", "typ": "at+jwt"},
    )
    options = {"require": ["exp", "iat", "aud", "iss", "sub"]}
    chain = x509.load_pem_x509_certificates((pki / "bench.pem").read_bytes())
    leaf = chain[0]
    candidates = chain[1:] + x509.load_pem_x509_certificates((pki / "ca.pem").read_bytes())
    ca = next(c for c in candidates if c.subject == leaf.issuer)
    api_key = "sk_" + "a" * 40
    stored = hashlib.sha256(api_key.encode()).hexdigest()
    secret, hmac_key = "s" * 43, b"k" * 32
    digest = hmac.new(hmac_key, secret.encode(), "sha256").hexdigest()
    handshakes = _Handshakes(pki)
    return {
        "es256_sign": lambda: key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())),
        "es256_verify": lambda: public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256())),
        "jwt_decode_service": lambda: jwt.decode(
            service,
            public,
            algorithms=["ES256"],
            audience="spiffe://fleamarket.local/service/users",
            options=options,
        ),
        "jwt_decode_access": lambda: jwt.decode(
            access,
            public,
            algorithms=["ES256"],
            audience="spiffe://fleamarket.local/service/users",
            issuer="https://127.0.0.1:8001",
            options=options,
        ),
        "x509_verify": lambda: leaf.verify_directly_issued_by(ca),
        "sha256_token": lambda: hashlib.sha256(access.encode()).digest(),
        "api_key_hash": lambda: hmac.compare_digest(
            hashlib.sha256(api_key.encode()).hexdigest(), stored
        ),
        "hmac_secret": lambda: hmac.compare_digest(
            hmac.new(hmac_key, secret.encode(), "sha256").hexdigest(), digest
        ),
        "tls_full_handshake": handshakes.full,
        "tls_resumed_handshake": handshakes.resumed,
    }


class _Handshakes:
    """TLS handshakes between two in-memory ends: the dev PKI's users certificate on
    the server (client certificates requested), bench's certificate on the client."""

    def __init__(self, pki: Path):
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.load_cert_chain(pki / "users.pem", pki / "users.key")
        self.server.load_verify_locations(pki / "ca.pem")
        self.server.verify_mode = ssl.CERT_OPTIONAL
        self.client = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        self.client.load_cert_chain(pki / "bench.pem", pki / "bench.key")
        self.session = None
        self.session = self._connect(None)
        if not self._connect(self.session, check_resumed=True):
            raise RuntimeError("the in-memory TLS session was not resumed")

    def _connect(self, session, check_resumed: bool = False):
        s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
        server = self.server.wrap_bio(s_in, s_out, server_side=True)
        client = self.client.wrap_bio(c_in, c_out, server_hostname="localhost", session=session)
        client_done = server_done = False
        while not (client_done and server_done):
            if not client_done:
                try:
                    client.do_handshake()
                    client_done = True
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            if not server_done:
                try:
                    server.do_handshake()
                    server_done = True
                except ssl.SSLWantReadError:
                    pass
            c_in.write(s_out.read())
        server.write(b"ok")  # TLS 1.3: the session ticket travels after the handshake
        c_in.write(s_out.read())
        client.read(2)
        if check_resumed:
            return client.session_reused
        return client.session

    def full(self) -> None:
        self._connect(None)

    def resumed(self) -> None:
        self._connect(self.session)


def measure(pki: Path, seconds: float = 1.0) -> dict[str, float]:
    """operation -> µs, the best of ``ROUNDS`` rounds of about ``seconds / ROUNDS``."""
    result = {}
    perf = time.perf_counter
    for name, operation in _operations(pki).items():
        operation()
        best = float("inf")
        for _ in range(ROUNDS):
            count, start = 0, perf()
            end = start + seconds / ROUNDS
            while True:
                operation()
                count += 1
                now = perf()
                if now >= end:
                    break
            best = min(best, (now - start) / count)
        result[name] = best * 1e6
    return result


def add_floors(results: dict) -> None:
    """Each case with a known floor gets ``floor_us``, ``floor_ops``, ``ceiling_rps``
    (the throughput if authentication cost only its cryptography) and
    ``ceiling_ratio`` (that, to the baseline)."""
    micro = results.get("crypto_floor") or {}
    cases = results["cases"]
    cpus = (results.get("machine") or {}).get("usable_cpus") or 1
    base = cases.get(results["baseline"], {}).get("rps")
    for key, (transport, server_ops, client_ops) in FLOORS.items():
        entry = cases.get(key)
        if not entry or "rps" not in entry or not micro:
            continue
        ops = (*server_ops, *client_ops)
        if any(op not in micro for op in ops):
            continue
        floor_us = sum(micro[op] for op in ops)
        entry["floor_ops"] = list(ops)
        entry["floor_us"] = floor_us
        entry["floor_transport"] = transport
        transport_rps = cases.get(transport, {}).get("rps")
        if transport_rps:
            ceiling = 1 / (1 / transport_rps + floor_us / 1e6 / cpus)
            entry["ceiling_rps"] = ceiling
            entry["ceiling_share"] = entry["rps"] / ceiling
            if base:
                entry["ceiling_ratio"] = ceiling / base


def main(pki: str, seconds: float) -> int:
    print(json.dumps(measure(Path(pki), seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
