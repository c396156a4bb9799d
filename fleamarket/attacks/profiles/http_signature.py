"""RFC 9421 HTTP message signatures, key from a registered certificate."""

from __future__ import annotations

import datetime as dt

import requests

from .. import audit_tamper, forge, races
from ..lab import PREVIEWS, PREVIEWS_TAMPERED, ads_authority
from ..results import Probe
from .base import ONE_MB, Mechanism


def host_confused(lab) -> Probe:
    """The signer's request signed for AdService's URL, sent to UserService with ``Host``
    naming ads (``ALLOWED_HOSTS`` ignores ports; ``HTTPSIG_ORIGIN`` must not)."""
    ads = ads_authority(lab)
    with lab.session() as session:
        prepared = forge.signed_request(
            session,
            "GET",
            f"https://{ads}{PREVIEWS}",
            key_id=lab.signer.fingerprint,
            private_key=lab.signer.private_key,
        )
    return lab.send(
        prepared,
        label=f"signed for https://{ads} (ads), sent to users with Host: {ads}",
        url=lab.url(PREVIEWS),
        headers={"Host": ads},
    )


class HTTPSignature(Mechanism):
    """RFC 9421 signed requests by attack-signer, whose certificate is registered."""

    id = "http_signature"
    not_applicable = {
        "proxy_header": "the key comes from the registered certificate (see mTLS, default)",
        "forged_end_user": "signed requests carry no end-user context",
        "nested_json": "no JSON in an RFC 9421 signature",
        "tampered_claims": "no claims: see tampered body, method or path",
    }

    def victim_call(self) -> requests.PreparedRequest:
        prepared = self.lab.signed(self.lab.signer)
        probe = self.lab.send(prepared, label="the signer's own call")
        if not probe.accepted:
            raise RuntimeError(f"the signer's own call was refused: {probe}")
        return prepared

    def handmade(self, label: str, **kw) -> Probe:
        headers = forge.signature_headers("GET", self.lab.url(PREVIEWS), **kw)
        return self.lab.call(label=label, headers=headers)

    def no_credentials(self):
        return self.lab.call(label="no signature")

    def impersonate_key(self):
        prepared = self.lab.signed(self.lab.signer, key=self.lab.intruder.private_key)
        return self.lab.send(prepared, label="keyid = the signer's, signed by the intruder")

    def impersonate_claim(self):
        prepared = self.lab.signed(self.lab.ads, key=self.lab.intruder.private_key)
        return self.lab.send(prepared, label="keyid = ads' certificate, signed by the intruder")

    def rogue_ca(self):
        return [
            self.lab.send(
                self.lab.signed(self.lab.rogue_ads), label="keyid = a rogue CA's certificate"
            ),
            self.lab.send(
                self.lab.signed(self.lab.rogue_ads),
                label="the same over mTLS with that certificate",
                cert=self.lab.rogue_ads,
            ),
        ]

    def expired_cert(self):
        return self.lab.send(
            self.lab.signed(self.lab.expired),
            label="signed with an expired certificate, over mTLS with it",
            cert=self.lab.expired,
        )

    def revoked_cert(self):
        return self.lab.send(
            self.lab.signed(self.lab.revoked), label="keyid = a registered, revoked certificate"
        )

    def stolen_replay(self):
        prepared = self.victim_call()
        return self.lab.send(prepared, label="the signer's used request, from another machine")

    def intercepted_unused(self):
        return self.lab.send(
            self.lab.signed(self.lab.signer), label="the signer's request, taken before use"
        )

    def replay(self):
        prepared = self.victim_call()
        return self.lab.send(prepared, label="the same signed request again")

    def replay_workers(self):
        prepared = self.lab.signed(self.lab.signer)
        return races.copies_at_once(self.lab, lambda label: self.lab.send(prepared, label=label))

    def host_confusion(self):
        return host_confused(self.lab)

    def malleated_signature(self):
        prepared = self.victim_call()
        value = prepared.headers["Signature"]
        copy = forge.malleate_signature_value(value)
        return [
            self.lab.send(
                prepared,
                label="the signer's used request, signature re-encoded (r, n - s)",
                headers={"Signature": copy},
            ),
            audit_tamper.malleated_copy(
                self.lab.deployment,
                value,
                copy,
                "the copy forged into the audit log as a second call (method and path are signed)",
            ),
        ]

    def tampered_request(self):
        lab = self.lab
        return [
            lab.send(lab.signed(lab.signer), label="a body added", body=b'{"ids": [3]}'),
            lab.send(lab.signed(lab.signer), label="method changed to POST", method="POST"),
            lab.send(
                lab.signed(lab.signer),
                label="path changed (ids=1,2,3)",
                url=lab.url(PREVIEWS_TAMPERED),
            ),
        ]

    def alg_none(self):
        return self.handmade(
            'alg="none"', key_id=self.lab.signer.fingerprint, alg="none", signature=b"none"
        )

    def hs256_public_key(self):
        return self.handmade(
            'alg="hmac-sha256" keyed with the signer\'s public key',
            key_id=self.lab.signer.fingerprint,
            alg="hmac-sha256",
            key=self.lab.signer.public_pem,
        )

    def ecdsa_zero(self):
        return self.handmade(
            "ecdsa-p256-sha256 with r = s = 0",
            key_id=self.lab.signer.fingerprint,
            alg="ecdsa-p256-sha256",
            signature=b"\x00" * 64,
        )

    def kid_injection(self):
        return [
            self.handmade(
                "keyid ../../../../etc/passwd",
                key_id="../../../../etc/passwd",
                alg="hmac-sha256",
                key=b"",
            ),
            self.handmade(
                "keyid x' OR '1'='1",
                key_id="x' OR '1'='1",
                alg="ecdsa-p256-sha256",
                signature=b"\x00" * 64,
            ),
        ]

    def header_keys(self):
        prepared = self.lab.signed(self.lab.signer, key=self.lab.intruder.private_key)
        value = prepared.headers["Signature-Input"] + ';jku="https://attacker.example/jwks"'
        return self.lab.send(
            prepared,
            label="a jku parameter naming the attacker's key",
            headers={"Signature-Input": value},
        )

    def oversized_token(self):
        prepared = self.lab.signed(self.lab.signer)
        return self.lab.send(
            prepared,
            label="1 MB Signature header",
            headers={"Signature": "sig1=:" + "A" * ONE_MB + ":"},
        )

    def unscoped(self):
        return self.lab.send(
            self.lab.signed(self.lab.intruder), label="the intruder's own signature (no scope)"
        )

    def repudiation(self):
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        prepared = self.victim_call()
        signature = prepared.headers["Signature"]
        return self.lab.audit_proof(
            since, signature, "the signer's request, exported and verified with ca.pem"
        )
