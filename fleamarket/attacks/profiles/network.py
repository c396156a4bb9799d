"""Trust the network: the unauthenticated baseline (``/api/v1/ping``)."""

from __future__ import annotations

from ..forge import spiffe
from ..lab import PING
from ..results import Probe
from .base import Mechanism


class Network(Mechanism):
    """The unauthenticated baseline: /api/v1/ping takes whoever connects."""

    id = "network"

    def no_credentials(self):
        return self.lab.call(PING)

    def impersonate_claim(self):
        return self.lab.call(
            PING,
            label="GET /api/v1/ping saying X-Service-Name: ads",
            headers={"X-Service-Name": "ads", "X-Forwarded-User": spiffe("ads")},
        )

    def replay(self):
        self.lab.call(PING)
        return self.lab.call(PING, label="the same request again")

    def tampered_request(self):
        return self.lab.call(PING + "?tampered=1", label="GET /api/v1/ping?tampered=1")

    def unscoped(self):
        return self.lab.call(PING, cert=self.lab.intruder)

    def forged_end_user(self):
        return self.lab.call(PING, label="X-End-User: 1", headers={"X-End-User": "1"})

    def repudiation(self):
        return Probe("audit", True, "-", "no_record_of_caller", "nothing identifies the caller")
