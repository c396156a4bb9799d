"""The default profile's attacks on what surrounds a call: the identity service (squatting,
lock-out) and the audit log (raw tokens, forged checkpoints). Mixed into
:class:`~.default.Default`; each method is named by its attack id."""

from __future__ import annotations

from s2s_auth.core.wire import END_USER_HASH_CLAIM, END_USER_TOKEN_HEADER, token_hash

from .. import audit_tamper, issuer_abuse
from ..results import Probe


class Hardening:
    lab: object

    def registration_squat(self):
        return issuer_abuse.registration_squat(self.lab)

    def lockout(self):
        return issuer_abuse.lockout(self.lab)

    def forged_checkpoint(self):
        return audit_tamper.forged_checkpoint(self.lab.deployment)

    def raw_token_exposure(self):
        """ads calls for a logged-in user (the token it exchanged for users beside its
        JWT, ``ath``); then every bearer token of the run (the user's own, the exchanged
        one, the services') is looked for in the table and the export."""
        lab = self.lab
        user_token = lab.user_token()
        exchanged = lab.exchanged("ads", user_token)
        token = lab.service_jwt(lab.ads, **{END_USER_HASH_CLAIM: token_hash(exchanged)})
        call = self.send(  # type: ignore[attr-defined]
            token,
            "ads' call for the logged-in user",
            cert=lab.ads,
            headers={END_USER_TOKEN_HEADER: exchanged},
        )
        if not call.accepted:
            raise RuntimeError(f"ads' call on behalf of the user was refused: {call}")
        live = {
            "the user's access token": user_token,
            "the token exchanged for users": exchanged,
            **lab.tokens,
        }
        wanted = {**live, **{f"{k} (signature)": v.rsplit(".", 1)[1] for k, v in live.items()}}
        table = audit_tamper.scan_table(lab.deployment, wanted)
        since = lab.started.isoformat()
        export = lab.deployment.manage("users", "s2s_audit", "export", "--since", since).stdout
        in_export = sorted(name for name, value in wanted.items() if value in export)
        searched = f"{len(live)} live tokens (the user's, {len(lab.tokens)} bearer)"
        return [
            _found(f"audit table ({table['rows']} records), {searched}", sorted(table["hits"])),
            _found(f"s2s_audit export, {searched}", in_export),
        ]


def _found(label: str, names: list[str]) -> Probe:
    if names:
        return Probe(label, True, "read", "token_found", ", ".join(names)[:160])
    return Probe(label, False, "read", "no_token_stored")


__all__ = ["Hardening"]
