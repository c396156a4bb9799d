"""The report from stored figures: the chart by matplotlib, and the page without it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def sample_results() -> dict:
    """The stored run, with the figures of the newer cases added."""
    results = json.loads(STORED.read_text())
    cases = results["cases"]
    cases["cold_issuer"] = {
        "label": "cold start of users",
        "group": "cold start",
        "unit": "req/s",
        "rps": 300.0,
        "p50_ms": 5.0,
        "p99_ms": 50.0,
        "errors": 0,
        "non_2xx": 0,
        "answers": {},
        "first_connect_s": 2.5,
        "first_ok_s": 3.1,
    }
    cases["cold_resource"] = {
        **cases["cold_issuer"],
        "label": "cold start of ads",
        "errors": 12,
        "non_2xx": 12,
        "answers": {"503 jwks_unavailable": 12},
    }
    cases["access_token_pg_pinned"] = {
        **cases["access_token"],
        "affinity": {
            "app_cpus": [0],
            "db_cpus": [1],
            "backends_pinned": 8,
            "refused": "",
            "postmaster": "not pinned",
        },
    }
    results["crypto_floor"] = {"sha256_token": 1.0, "jwt_decode_service": 200.0}
    return results


def test_the_targets_say_met_or_by_how_much_they_are_missed():
    from bench.floor import add_floors
    from bench.report import TARGETS, evaluate_targets

    results = sample_results()
    results["cases"]["access_token"]["ratio"] = 0.80
    results["cases"]["mtls"]["ratio"] = 0.90
    add_floors(results)
    rows = {row["case"]: row for row in evaluate_targets(results)}
    assert len(rows) == len(TARGETS)
    assert rows["access_token"]["met"] is False
    assert rows["access_token"]["missed_by"] == pytest.approx(0.05)
    assert rows["mtls"]["met"] is True and rows["mtls"]["missed_by"] is None
    assert rows["cold_issuer"]["met"] is True  # at most 0 non-2xx
    assert rows["cold_resource"]["met"] is False and rows["cold_resource"]["missed_by"] == 12

    results["targets"] = list(rows.values())
    page = markdown(results)
    row = "| access token, cache on, SQLite audit (`access_token`) | 0.38 | ≥ 0.85 | 0.80 |"
    assert row in page
    assert "**missed** by 0.05 (94% of it)" in page
    assert "**missed** by 12 non-2xx answers" in page
    assert "12 x 503 jwks_unavailable" in page  # the cold-start section
    assert "## Crypto floor" in page and "| `access_token` | sha256_token | 1.0 |" in page
    assert "## Database on its own core" in page and "| `access_token_pg_pinned` | CPU 0 |" in page


def test_a_stored_run_without_the_newer_figures_still_renders():
    """A results.json from before the cold-start cases and the crypto floor."""
    results = json.loads(STORED.read_text())
    assert "## Crypto floor" in markdown(results) and "## Cold start" in markdown(results)
    for key in ("crypto_floor", "crypto_floor_error", "profiled"):
        results.pop(key, None)
    results["cases"] = {k: v for k, v in results["cases"].items() if "non_2xx" not in v}
    page = markdown(results)
    assert "## Targets" in page and "## Crypto floor" not in page and "## Cold start" not in page
