"""The report from stored figures: the chart by matplotlib, and the page without it."""

import json
import subprocess
import sys
from pathlib import Path

from bench.chart import CHART_NEEDS_EXTRA
from bench.report import markdown, write_reports

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "bench" / "results.json"


def test_the_chart_is_a_matplotlib_png_one_bar_per_ratio(tmp_path):
    from matplotlib.image import imread

    results = json.loads(STORED.read_text())
    files = write_reports(results, tmp_path)

    assert set(files) == {"json", "markdown", "chart"}
    png = files["chart"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    height, width, _ = imread(files["chart"]).shape
    bars = sum("ratio" in entry for entry in results["cases"].values())
    assert width >= 900 and height >= 20 * bars
    assert "![ratios to the baseline](benchmarks.png)" in files["markdown"].read_text()
    # The same figures give the same file (no date or version inside).
    again = write_reports(results, tmp_path / "again")
    assert again["chart"].read_bytes() == png


def test_without_matplotlib_the_figures_and_the_page_are_still_written(tmp_path):
    """``python -S``: no site-packages, so matplotlib is really absent, as in an
    install without the ``bench`` extra (the report needs only the standard library)."""
    script = (
        "import importlib.util, json, sys\n"
        "from pathlib import Path\n"
        "assert importlib.util.find_spec('matplotlib') is None\n"
        "from bench.report import write_reports\n"
        f"results = json.loads(Path({str(STORED)!r}).read_text())\n"
        f"files = write_reports(results, Path({str(tmp_path)!r}))\n"
        "print(sorted(files))\n"
    )
    run = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["['json',", "'markdown']"]
    assert not (tmp_path / "benchmarks.png").exists()
    page = (tmp_path / "benchmarks.md").read_text()
    assert f"No chart: {CHART_NEEDS_EXTRA}." in page and "](benchmarks.png)" not in page
    assert json.loads((tmp_path / "results.json").read_text())["cases"]


def test_the_page_of_the_stored_run_shows_the_stored_chart():
    results = json.loads(STORED.read_text())
    page = markdown(results)
    assert "![ratios to the baseline](benchmarks.png)" in page
    assert (ROOT / "docs" / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
