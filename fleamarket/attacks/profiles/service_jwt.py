"""Self-signed service JWTs with ``x5c``, without a client certificate."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import jwt
from jwt.algorithms import ECAlgorithm

from s2s_auth.core.wire import END_USER_TOKEN_HEADER, token_hash

from .. import audit_tamper, forge, races
from ..forge import Identity, spiffe
from ..lab import PREVIEWS, PREVIEWS_TAMPERED, ads_authority
from ..results import Probe
from .base import ONE_MB, Mechanism

#: ``cert=`` default of the token mechanisms' ``send``: the profile's own channel.
CHANNEL = Identity("channel", Path("/nonexistent"), Path("/nonexistent"))


class ServiceJWT(Mechanism):
    """Self-signed JWTs with x5c, no client certificate."""

    id = "service_jwt"
    keyword = "ServiceJWT"
    not_applicable = {
        "proxy_header": "the certificate comes from x5c here; see mTLS and the default",
    }
    #: Where forged tokens are sent from: nowhere special (no client certificate).
    channel: Identity | None = None
    #: Whether ads' own tokens carry x5c.
    with_x5c = True

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"{self.keyword} {token}"}

    def send(
        self, token: str, label: str, *, cert=CHANNEL, path=PREVIEWS, headers=None, **kw
    ) -> Probe:
        """Send ``token``; ``cert`` None: without a client certificate; by default over
        the profile's channel."""
        cert = self.channel if cert is CHANNEL else cert
        headers = {**self.auth(token), **(headers or {})}
        return self.lab.call(path, label=label, headers=headers, cert=cert, **kw)

    def victim_token(self) -> str:
        return self.lab.service_jwt(self.lab.ads, x5c=self.lab.ads if self.with_x5c else None)

    def victim_call(self) -> str:
        """ads makes a normal call; returns the (now used) token."""
        token = self.victim_token()
        probe = self.lab.call(headers=self.auth(token), cert=self.victim_channel())
        if not probe.accepted:
            raise RuntimeError(f"the victim's own call was refused: {probe}")
        return token

    def victim_channel(self) -> Identity | None:
        return None

    def forged_header(self) -> dict:
        return {"typ": forge.SERVICE_JWT_TYPE, "x5c": self.lab.ads.x5c}

    # -- attacks ---------------------------------------------------------------------
    def no_credentials(self):
        return self.lab.call(label="no Authorization, no certificate")

    def impersonate_key(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.ads, caller="ads")
        return self.send(token, "claims ads, x5c = ads' chain, signed by the intruder")

    def impersonate_claim(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.intruder, caller="ads")
        return self.send(token, "sub = ads, signed by the intruder with its own x5c")

    def rogue_ca(self):
        token = self.lab.service_jwt(self.lab.rogue_ads, x5c=self.lab.rogue_ads)
        return self.send(token, "x5c from a rogue CA for ads")

    def expired_cert(self):
        token = self.lab.service_jwt(self.lab.expired, x5c=self.lab.expired)
        return self.send(token, "x5c = an expired certificate")

    def revoked_cert(self):
        token = self.lab.service_jwt(self.lab.revoked, x5c=self.lab.revoked)
        return self.send(token, "x5c = a revoked certificate")

    def stolen_replay(self):
        token = self.victim_call()
        return self.send(
            token, "ads' used token, from a machine without its certificate", cert=None
        )

    def intercepted_unused(self):
        return self.send(self.victim_token(), "ads' unused token, from another machine", cert=None)

    def replay(self):
        token = self.victim_call()
        return self.send(token, "the same token again", cert=self.victim_channel())

    def replay_workers(self):
        token = self.victim_token()
        channel = self.victim_channel()
        return races.copies_at_once(self.lab, lambda label: self.send(token, label, cert=channel))

    def host_confusion(self):
        token = self.lab.service_jwt(
            self.lab.ads, x5c=self.lab.ads if self.with_x5c else None, audience="ads"
        )
        return self.send(
            token,
            "ads' JWT for AdService (aud ads), Host naming ads",
            cert=self.victim_channel(),
            headers={"Host": ads_authority(self.lab)},
        )

    def malleated_signature(self):
        token = self.victim_call()
        copy = forge.malleate_jwt(token)
        return [
            self.send(copy, "ads' used JWT re-encoded (r, n - s)", cert=self.victim_channel()),
            audit_tamper.malleated_copy(
                self.lab.deployment,
                token,
                copy,
                "the copy forged into the audit log as DELETE /api/v1/users/1",
                method="DELETE",
                path="/api/v1/users/1",
            ),
        ]

    def tampered_request(self):
        token = self.victim_call()
        channel = self.victim_channel()
        return [
            self.send(token, "another path", cert=channel, path=PREVIEWS_TAMPERED),
            self.send(token, "another method (POST)", cert=channel, method="POST"),
            self.send(token, "a body added", cert=channel, data=b'{"ids": [3]}'),
        ]

    def tampered_claims(self):
        token = self.victim_token()
        channel = self.victim_channel()
        return [
            self.send(
                forge.tamper_payload(token, exp=int(time.time()) + 3000),
                "exp extended",
                cert=channel,
            ),
            self.send(forge.tamper_payload(token, aud=spiffe("ads")), "aud changed", cert=channel),
        ]

    def alg_none(self):
        claims = forge.service_claims("ads")
        return self.send(
            forge.alg_none_jwt(self.forged_header(), claims),
            "alg none, claims ads",
            cert=self.victim_channel(),
        )

    def hs256_public_key(self):
        token = forge.hmac_jwt(
            self.forged_header(), forge.service_claims("ads"), self.lab.ads.public_pem
        )
        return self.send(token, "HS256 keyed with ads' public key", cert=self.victim_channel())

    def ecdsa_zero(self):
        token = forge.zero_signature_jwt(self.forged_header(), forge.service_claims("ads"))
        return self.send(token, "ES256 with r = s = 0", cert=self.victim_channel())

    def kid_injection(self):
        header = self.forged_header()
        claims = forge.service_claims
        return [
            self.send(
                forge.hmac_jwt({**header, "kid": "../../../../../../dev/null"}, claims("ads"), b""),
                "kid ../../../../dev/null, HS256 with an empty key",
                cert=self.victim_channel(),
            ),
            self.send(
                forge.hmac_jwt({**header, "kid": "x' UNION SELECT 'k' --"}, claims("ads"), b"k"),
                "kid x' UNION SELECT 'k' --, HS256 keyed 'k'",
                cert=self.victim_channel(),
            ),
        ]

    def header_keys(self):
        attacker = forge.fresh_key()
        jwk = json.loads(ECAlgorithm.to_jwk(attacker.public_key()))
        base = {"typ": forge.SERVICE_JWT_TYPE, "x5c": self.lab.ads.x5c}
        probes = []
        for name, value in (
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", jwk),
        ):
            token = jwt.encode(
                forge.service_claims("ads"),
                attacker,
                algorithm="ES256",
                headers={**base, name: value},
            )
            probes.append(self.send(token, f"{name} → attacker's key", cert=self.victim_channel()))
        return probes

    def oversized_token(self):
        return self.send("a" * ONE_MB, "1 MB token", cert=self.victim_channel())

    def nested_json(self):
        """Nested JSON in the header (parsed before any signature check) and in a payload
        the intruder signed validly (parsed after it)."""
        signer = self.lab.intruder
        via_mtls = self.channel is not None
        header = {"typ": forge.SERVICE_JWT_TYPE, **({} if via_mtls else {"x5c": signer.x5c})}
        signed = jwt.api_jws.encode(
            forge.nested_payload(), signer.private_key, algorithm="ES256", headers=header
        )
        cert = signer if via_mtls else None
        return [
            self.send(
                forge.nested_header_jwt(header),
                f"header nested {forge.NESTING} deep",
                cert=cert,
            ),
            self.send(signed, f"validly signed payload nested {forge.NESTING} deep", cert=cert),
        ]

    def unscoped(self):
        token = self.lab.service_jwt(self.lab.intruder, x5c=self.lab.intruder)
        return self.send(token, "the intruder's own valid token (no scope)")

    def forged_end_user(self):
        lab = self.lab
        user_claims = lab.access_claims(
            sub="1", client_id="users", aud="fleamarket", scope="ads:read ads:write"
        )
        forged_sig = forge.fresh_key()
        forgeries = {
            "user token signed by the attacker (issuer's kid)": jwt.encode(
                user_claims,
                forged_sig,
                algorithm="ES256",
                headers={"typ": forge.ACCESS_TOKEN_TYPE, "kid": lab.issuer_kid},
            ),
            "user token with alg none": forge.alg_none_jwt(
                {"typ": forge.ACCESS_TOKEN_TYPE, "kid": lab.issuer_kid}, user_claims
            ),
        }
        probes = []
        for label, user_token in forgeries.items():
            token = forge.service_jwt(
                lab.ads.private_key,
                forge.service_claims("ads", end_user_token=user_token),
                x5c=lab.ads.x5c if self.with_x5c else None,
            )
            probes.append(self.send(token, label, cert=self.victim_channel()))
        return probes

    def lifted_user_context(self):
        """A user context presented where it was not issued for: refused at any hop."""
        lab = self.lab
        user = lab.user_token()
        for_users = lab.exchanged("ads", user)
        worker_channel = lab.worker if self.channel is not None else None
        cases = (
            ("the user's own token, forwarded by ads", lab.ads, self.victim_channel(), user),
            ("ads' exchanged token, presented by worker", lab.worker, worker_channel, for_users),
        )
        probes = []
        for label, signer, channel, context in cases:
            token = forge.service_jwt(
                signer.private_key,
                forge.service_claims(signer.name, ath=token_hash(context)),
                x5c=signer.x5c if channel is None else None,
            )
            headers = {**self.auth(token), END_USER_TOKEN_HEADER: context}
            probes.append(lab.call(label=label, headers=headers, cert=channel))
        return probes

    def repudiation(self):
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        token = self.victim_call()
        return self.lab.audit_proof(since, token, "ads' call, exported and verified with ca.pem")
