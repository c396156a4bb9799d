"""What a profile provides: one method per applicable attack, named by the attack's id.

A profile class (one per :data:`~fleamarket.attacks.catalogue.PROFILES` entry, same
``id``) is built on a running :class:`~fleamarket.attacks.lab.Lab`. For each attack of the
catalogue it either has a method of that name, returning the probes it made (one
:class:`~fleamarket.attacks.results.Probe` or a list), or it does not apply: no such
method, or the attack's id in ``not_applicable`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar
from urllib.parse import quote

from ..lab import Lab
from ..results import Probe

ONE_MB = 1024 * 1024


class NotApplicable(Exception):
    """The attack does not apply to this mechanism (the message says why)."""


class Mechanism:
    """One profile: a method per applicable attack, each returning its probes."""

    id: ClassVar[str] = ""
    #: attack id → why it does not apply (a method of that name is then ignored).
    not_applicable: ClassVar[dict[str, str]] = {}

    def __init__(self, lab: Lab):
        self.lab = lab

    def run(self, attack_id: str) -> list[Probe]:
        method: Callable[[], Probe | list[Probe]] | None = getattr(self, attack_id, None)
        if attack_id in self.not_applicable:
            method = None
        if method is None:
            raise NotApplicable(self.not_applicable.get(attack_id, ""))
        result = method()
        return result if isinstance(result, list) else [result]


def proxy_headers(lab: Lab) -> dict[str, str]:
    """ads' certificate as a TLS-terminating proxy would pass it (both header styles)."""
    pem = quote(lab.ads.chain_pem, safe="")
    return {"X-SSL-Client-Cert": pem, "X-Forwarded-Client-Cert": f'Cert="{pem}"'}


__all__ = ["ONE_MB", "Mechanism", "NotApplicable", "proxy_headers"]
