"""Access tokens bound to the client certificate (RFC 8705 ``tls_client_auth``)."""

from __future__ import annotations

from .. import forge
from ..lab import PREVIEWS_TAMPERED
from .access_token import AccessToken
from .base import proxy_headers


class BoundToken(AccessToken):
    """Tokens bound to ads' certificate (tls_client_auth), used over mTLS.

    Forged tokens are sent over the intruder's own mTLS connection and bound (``cnf``)
    to the intruder's certificate: were the signature not checked, they would pass.
    """

    id = "bound_token"
    not_applicable = {
        "replay": "only the certificate holder can present it (from anyone else: see theft)",
        "forged_end_user": "a service token carries no end-user context",
    }
    victim = "ads_bound"
    replay = None  # not applicable (see not_applicable)

    @property
    def channel(self):  # type: ignore[override]
        return self.lab.intruder

    def victim_channel(self):
        return self.lab.ads

    def forged_claims(self, **overrides) -> dict:
        return self.lab.access_claims(cnf={"x5t#S256": self.lab.intruder.x5t_s256}, **overrides)

    def no_credentials(self):
        return self.lab.call(label="no token, no certificate")

    def impersonate_key(self):
        return self.send(
            self.lab.tokens[self.victim],
            "ads' bound token over the intruder's mTLS",
            cert=self.lab.intruder,
        )

    def impersonate_claim(self):
        return self.lab.token_request(self.lab.intruder, "ads", "tls_client_auth", "users:read")

    def rogue_ca(self):
        return self.lab.token_request(self.lab.rogue_ads, "ads", "tls_client_auth", "users:read")

    def expired_cert(self):
        return self.lab.token_request(
            self.lab.expired, "attack-expired", "tls_client_auth", "users:read"
        )

    def revoked_cert(self):
        return self.send(
            self.lab.tokens["revoked_bound"],
            "token bound to a certificate revoked since, over that certificate",
            cert=self.lab.revoked,
        )

    def tampered_request(self):
        return self.send(
            self.lab.tokens[self.victim],
            "ads' token on another query, from the attacker's machine",
            path=PREVIEWS_TAMPERED,
        )

    def tampered_claims(self):
        token = self.lab.tokens[self.victim]
        return self.send(
            forge.tamper_payload(token, cnf={"x5t#S256": self.lab.intruder.x5t_s256}),
            "ads' token rebound (cnf) to the intruder's certificate",
            cert=self.lab.intruder,
        )

    def proxy_header(self):
        return self.lab.call(
            label="ads' token with ads' certificate in proxy headers",
            headers={
                "Authorization": f"Bearer {self.lab.tokens[self.victim]}",
                **proxy_headers(self.lab),
            },
        )

    def unscoped(self):
        return self.send(
            self.lab.tokens["worker_notify_bound"],
            "worker's bound token for users:notify only",
            cert=self.lab.worker,
        )
