"""Mutual TLS alone: the client certificate is the identity."""

from __future__ import annotations

from ..forge import spiffe
from ..results import Probe
from .base import Mechanism, proxy_headers


class MTLS(Mechanism):
    id = "mtls"
    not_applicable = {
        "stolen_replay": "nothing reusable leaves the TLS session; the key never travels",
        "intercepted_unused": "nothing reusable leaves the TLS session",
        "replay": "TLS records cannot be replayed",
        "tampered_request": "TLS protects the request's integrity",
    }

    def no_credentials(self):
        return self.lab.call(label="no client certificate")

    def impersonate_key(self):
        return self.lab.call(
            label="ads' certificate with the intruder's key", cert=self.lab.ads_cert_intruder_key
        )

    def impersonate_claim(self):
        return self.lab.call(
            label="intruder's certificate, headers saying it is ads",
            cert=self.lab.intruder,
            headers={"X-Service-Name": "ads", "X-Forwarded-User": spiffe("ads")},
        )

    def rogue_ca(self):
        return self.lab.call(label="rogue CA's certificate for ads", cert=self.lab.rogue_ads)

    def expired_cert(self):
        return self.lab.call(label="expired certificate", cert=self.lab.expired)

    def revoked_cert(self):
        return self.lab.call(label="revoked certificate", cert=self.lab.revoked)

    def proxy_header(self):
        return self.lab.call(
            label="ads' certificate in proxy headers", headers=proxy_headers(self.lab)
        )

    def unscoped(self):
        return self.lab.call(label="intruder's certificate (no scope)", cert=self.lab.intruder)

    def repudiation(self):
        return Probe(
            "audit", True, "-", "no_signed_credential", "the record keeps the fingerprint only"
        )
