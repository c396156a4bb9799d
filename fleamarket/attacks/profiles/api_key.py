"""API keys, on the second UserService that has ``api_key`` enabled."""

from __future__ import annotations

import secrets

from ..lab import PREVIEWS, PREVIEWS_TAMPERED
from ..results import Probe
from .base import ONE_MB, Mechanism


class APIKey(Mechanism):
    id = "api_key"
    not_applicable = {
        "impersonate_claim": "a key carries no identity claim but its id (see wrong key)",
        "rogue_ca": "no certificate involved",
    }

    def call(self, key: str, label: str, path: str = PREVIEWS) -> Probe:
        return self.lab.call(
            path, label=label, headers={"Authorization": f"ApiKey {key}"}, keyserver=True
        )

    def no_credentials(self):
        return self.lab.call(keyserver=True)

    def impersonate_key(self):
        key_id = self.lab.api_keys["ads"].split("_")[1]
        forged = f"s2s_{key_id}_{secrets.token_urlsafe(32)}"
        return self.call(forged, "ads' key id with a guessed secret")

    def expired_cert(self):
        return self.call(self.lab.api_keys["expired"], "an expired API key of ads")

    def revoked_cert(self):
        return self.call(self.lab.api_keys["revoked"], "a revoked API key of ads")

    def stolen_replay(self):
        return self.call(self.lab.api_keys["ads"], "ads' key, from another machine")

    def intercepted_unused(self):
        return self.call(self.lab.api_keys["ads"], "ads' key, taken before use")

    def replay(self):
        self.call(self.lab.api_keys["ads"], "first")
        return self.call(self.lab.api_keys["ads"], "the same request again")

    def tampered_request(self):
        return self.call(self.lab.api_keys["ads"], "another query", PREVIEWS_TAMPERED)

    def kid_injection(self):
        return [
            self.call("s2s_../../../../etc/passwd_" + "A" * 43, "key id ../../../../etc/passwd"),
            self.call("s2s_' OR '1'='1' --_" + "A" * 43, "key id ' OR '1'='1' --"),
        ]

    def oversized_token(self):
        return self.call("s2s_" + "A" * ONE_MB, "1 MB API key")

    def unscoped(self):
        return self.call(self.lab.api_keys["intruder"], "the intruder's own key (no scope)")

    def repudiation(self):
        return Probe("audit", True, "-", "no_signed_credential", "the record keeps the key id only")
