"""The ratio chart of a run, drawn by matplotlib: the optional ``bench`` extra.

Without matplotlib the run still writes its figures (JSON and markdown); only the
chart is left out, and ``CHART_NEEDS_EXTRA`` says how to get it.
"""

from __future__ import annotations

from pathlib import Path

CHART_NEEDS_EXTRA = (
    "the chart needs the `bench` extra (matplotlib): "
    "`pip install 's2s-auth[bench]'` or `pip install -r requirements-dev.txt`"
)

BLUE, GREEN, RED, INK = "#4670be", "#3c9650", "#c83c32", "#282828"


def write_chart(results: dict, path: Path) -> bool:
    """Draw each case's throughput ratio to the baseline; False when matplotlib is missing."""
    bars = []
    for key, entry in results["cases"].items():
        if "ratio" not in entry:
            continue
        target, met = _target_of(results, key)
        bars.append((key, entry["ratio"], target, met))
    return bar_chart(
        path,
        "Throughput / plain-HTTP baseline (same run)",
        bars,
        subtitle=(
            f"{results['date']}  {results['mode']} run, {results['duration_s']:g} s per case, "
            f"{results['machine'].get('nproc')} CPUs shared by server and load generator.\n"
            "Green: target met, red: missed, blue: no target; black tick: target."
        ),
    )


def _target_of(results: dict, case: str) -> tuple[float | None, bool | None]:
    for row in results.get("targets", []):
        if row["case"] == case and row["measure"] == "ratio":
            return row["threshold"], row["met"]
    return None, None


def bar_chart(
    path: Path,
    title: str,
    bars: list[tuple[str, float, float | None, bool | None]],
    subtitle: str = "",
) -> bool:
    """Horizontal bars ``(label, value, target or None, met or None)``, first on top,
    with a line at 1.0; the format follows ``path``'s suffix (``.png``, ``.svg``)."""
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot, no global state
    except ImportError:
        return False
    labels = [label for label, *_ in bars]
    values = [value for _, value, *_ in bars]
    colors = [BLUE if met is None else (GREEN if met else RED) for *_, met in bars]
    figure = Figure(figsize=(9.5, 1.4 + 0.3 * len(bars)), layout="constrained")
    axes = figure.add_subplot()
    rows = axes.barh(range(len(bars)), values, color=colors, height=0.65)
    axes.bar_label(rows, fmt="%.2f", padding=3)
    for row, (*_, target, _met) in enumerate(bars):
        if target is not None:
            axes.vlines(target, row - 0.45, row + 0.45, colors=INK, linewidth=2.5)
    axes.axvline(1.0, color=INK, linewidth=1.2)
    axes.set_yticks(range(len(bars)), labels)
    axes.set_xlabel("throughput / baseline throughput")
    axes.invert_yaxis()
    axes.set_xlim(0, max([1.2, *values]) * 1.08)
    axes.grid(axis="x", color="#c8c8c8", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(subtitle, loc="left", fontsize=8, color="#5a5a5a")
    figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No version or date inside: the same figures give the same PNG.
    metadata = {"Software": None} if path.suffix == ".png" else {"Creator": None, "Date": None}
    figure.savefig(path, dpi=100, metadata=metadata)
    return True
