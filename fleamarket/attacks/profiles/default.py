"""The deployment's default: a service JWT without ``x5c`` over mTLS."""

from __future__ import annotations

from .. import forge, idle
from .base import proxy_headers
from .hardening import Hardening
from .http_signature import host_confused
from .service_jwt import ServiceJWT


class Default(Hardening, ServiceJWT):
    """What ads does: a service JWT without x5c over mTLS with its certificate.

    Forged tokens go over ads' own TLS connection (a sidecar or proxy that holds the
    connection but not the key): a bad token must be refused, never fall back to mTLS.
    """

    id = "default"
    with_x5c = False
    not_applicable: dict = {}

    @property
    def channel(self):  # type: ignore[override]
        return self.lab.ads

    def victim_channel(self):
        return self.lab.ads

    def forged_header(self) -> dict:
        return {"typ": forge.SERVICE_JWT_TYPE}

    def impersonate_key(self):
        return [
            self.lab.call(
                label="ads' certificate with the intruder's key (TLS)",
                cert=self.lab.ads_cert_intruder_key,
            ),
            self.send(
                self.lab.service_jwt(self.lab.intruder, x5c=self.lab.ads, caller="ads"),
                "over the intruder's mTLS: claims ads, x5c = ads, signed by the intruder",
                cert=self.lab.intruder,
            ),
            self.send(
                self.lab.service_jwt(self.lab.intruder, caller="ads"),
                "over ads' connection: claims ads, signed by the intruder",
            ),
        ]

    def impersonate_claim(self):
        token = self.lab.service_jwt(self.lab.intruder, caller="ads")
        return self.send(token, "over the intruder's mTLS: sub = ads", cert=self.lab.intruder)

    def rogue_ca(self):
        token = self.lab.service_jwt(self.lab.rogue_ads)
        return self.send(token, "rogue CA's certificate for ads", cert=self.lab.rogue_ads)

    def expired_cert(self):
        token = self.lab.service_jwt(self.lab.expired)
        return self.send(token, "expired certificate", cert=self.lab.expired)

    def revoked_cert(self):
        token = self.lab.service_jwt(self.lab.revoked)
        return self.send(token, "revoked certificate", cert=self.lab.revoked)

    def proxy_header(self):
        return self.lab.call(
            label="ads' unused token, ads' certificate in proxy headers, no client certificate",
            headers={**self.auth(self.victim_token()), **proxy_headers(self.lab)},
        )

    def host_confusion(self):
        # The default MECHANISMS accept RFC 9421 signatures too: both must be bound.
        return [super().host_confusion(), host_confused(self.lab)]

    def idle_connections(self):
        port = int(self.lab.url("").rsplit(":", 1)[1])
        return idle.flood_and_call(
            port,
            self.lab.ca_file,
            lambda: self.send(self.victim_token(), "ads' call", cert=self.lab.ads),
        )

    def unscoped(self):
        token = self.lab.service_jwt(self.lab.intruder)
        return self.send(
            token, "intruder's mTLS and its own token (no scope)", cert=self.lab.intruder
        )
