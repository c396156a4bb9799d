"""``python -m fleamarket attack``: every attack of the catalogue against every mechanism.

    from fleamarket.attacks import main
    main(output=None)  # docs/threat-matrix.md and bench/threats.json; exit status

See :mod:`.catalogue` (attacks and mechanism profiles), :mod:`.runner` (the live runs:
:mod:`.lab` and its :mod:`.cast`, one module per profile in :mod:`.profiles`, the
crafted credentials in :mod:`.forge`), :mod:`.evidence` (the audit proof, checked as a
third party with nothing but ca.pem) and :mod:`.report` (the matrix).
"""

from __future__ import annotations

from pathlib import Path

from fleamarket.processes import ROOT

from .catalogue import ATTACKS, PROFILES
from .report import JSON_NAME, MATRIX_NAME, write
from .results import Cell, Probe, Run
from .runner import run

__all__ = ["ATTACKS", "PROFILES", "Cell", "Probe", "Run", "main", "output_paths", "run"]


def output_paths(output: str | Path | None) -> tuple[Path, Path]:
    """Where the matrix and the JSON go: ``output/`` for both, else docs/ and bench/."""
    if output is not None:
        directory = Path(output)
        return directory / MATRIX_NAME, directory / JSON_NAME
    return ROOT / "docs" / MATRIX_NAME, ROOT / "bench" / JSON_NAME


def main(output: str | Path | None = None, *, out=print) -> int:
    """Run, write the reports, print the verdict; 0 only if nothing must-refuse got in."""
    result = run(out=out)
    markdown, data = output_paths(output)
    write(result, markdown, data)
    out(f"\nmatrix: {markdown}\njson:   {data}")
    if result.ok:
        out(f"every attack refused where it must be ({result.seconds:.1f} s)")
        return 0
    out(f"FAILED: {', '.join(f'{c.profile}/{c.attack}' for c in result.violations)}")
    return 1
