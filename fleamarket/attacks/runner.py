"""Run every attack of the catalogue against a live UserService, per mechanism profile.

:func:`run` starts the lab (:mod:`.lab`), runs every (profile, attack) cell of the
catalogue with the profile's class (:mod:`.profiles`) and returns the cells
(:mod:`.results`) for :mod:`.report`. A cell is *accepted* when any of its probes got
through.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from fleamarket.deployment import DEFAULT_PORTS, Deployment

from .catalogue import ATTACKS, PROFILES, Profile
from .lab import Lab, running_lab
from .profiles import MECHANISMS, NotApplicable
from .results import Cell, Run


def run_cell(lab: Lab, profile: Profile, attack_id: str) -> Cell:
    started = time.monotonic()
    expected = "accept" if attack_id in profile.expected_accept else "refuse"
    note = profile.expected_accept.get(attack_id, "")
    mechanism = MECHANISMS[profile.id](lab)
    try:
        probes = mechanism.run(attack_id)
    except NotApplicable as exc:
        return Cell(profile.id, attack_id, "n/a", "-", note=str(exc))
    except Exception as exc:  # the harness failed: reported, and fails the run
        return Cell(
            profile.id,
            attack_id,
            "error",
            expected,
            note=f"{type(exc).__name__}: {str(exc)[:300]}",
            seconds=time.monotonic() - started,
        )
    outcome = "accepted" if any(p.accepted for p in probes) else "refused"
    return Cell(profile.id, attack_id, outcome, expected, probes, note, time.monotonic() - started)


def run(deployment: Deployment | None = None, *, out=print) -> Run:
    """Start UserService, run every (profile, attack) cell, stop; return the results."""
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    # Refused token requests are the point here, not news: keep the client quiet.
    logging.getLogger("s2s_auth.client.token_manager").setLevel(logging.CRITICAL)
    deployment = deployment or Deployment(ports={"users": DEFAULT_PORTS["users"]})
    cells: list[Cell] = []
    with running_lab(deployment, out) as lab:
        for profile in PROFILES:
            for attack in ATTACKS:
                cell = run_cell(lab, profile, attack.id)
                cells.append(cell)
                if cell.outcome != "n/a":
                    out(_line(cell))
    return Run(cells, time.monotonic() - started, started_at.isoformat(timespec="seconds"))


def _line(cell: Cell) -> str:
    mark = "FAIL " if cell.violation else "ok   "
    shown = cell.outcome + (
        " (EXPECTED)" if cell.outcome == "accepted" and not cell.violation else ""
    )
    reasons = ", ".join(f"{p.status} {p.reason}" for p in cell.probes) or cell.note
    return f"{mark} {cell.profile:<14} {cell.attack:<19} {shown:<20} {reasons}"[:220]


__all__ = ["run", "run_cell"]
