"""What a run produces: probes (one request each), cells (one attack on one profile), the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Probe:
    """One request of an attack and what UserService (or the TLS layer) answered."""

    label: str
    accepted: bool
    status: int | str  # HTTP status, or "tls"/"closed"/"proof"/"token endpoint"
    reason: str
    detail: str = ""


@dataclass
class Cell:
    profile: str
    attack: str
    outcome: str  # "refused" | "accepted" | "n/a" | "error"
    expected: str  # "refuse" | "accept" | "-"
    probes: list[Probe] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    @property
    def violation(self) -> bool:
        """Accepted where it must be refused, or the attack could not be run."""
        return self.outcome == "error" or (self.outcome == "accepted" and self.expected != "accept")

    def as_dict(self) -> dict:
        data = asdict(self)
        data["violation"] = self.violation
        return data


@dataclass
class Run:
    cells: list[Cell]
    seconds: float
    started: str

    @property
    def violations(self) -> list[Cell]:
        return [c for c in self.cells if c.violation]

    @property
    def ok(self) -> bool:
        return not self.violations


__all__ = ["Cell", "Probe", "Run"]
