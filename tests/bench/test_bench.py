"""``python -m fleamarket bench --quick`` as CI runs it: the harness works end to end.

It checks that every case ran with positive figures and that the report files were
written, not how fast anything is (a CI machine is no benchmark machine).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cases import BASELINE, CASES
from bench.profiling import GROUPS, OTHER
from bench.report import TARGETS

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_produces_every_case_and_the_files(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "fleamarket", "bench", "--quick", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "quick"
    assert results["baseline"] == BASELINE
    for key in ("nproc", "memory_gib", "cpu_model"):
        assert results["machine"].get(key), key
    for name in ("python", "Django", "gunicorn", "cryptography", "openssl"):
        assert results["versions"].get(name), name

    assert set(results["cases"]) == {case.key for case in CASES}
    for case in CASES:
        entry = results["cases"][case.key]
        if "skipped" in entry:
            # Only the PostgreSQL cases may be skipped, and only without a PostgreSQL.
            assert case.server == "pg", (case.key, entry["skipped"])
            continue
        assert "failed" not in entry, (case.key, entry)
        assert entry["requests"] > 0, case.key
        assert entry["errors"] == 0, (case.key, entry.get("first_error"))
        assert entry["rps"] > 0 and entry["p50_ms"] > 0 and entry["p99_ms"] >= entry["p50_ms"]
        if case.kind == "http":
            assert entry["ratio"] > 0, case.key
    assert results["cases"]["handshake_resumed"]["resumed"] > 0
    assert results["cases"]["nearby_s2s"]["sellers_present"] is True
    # A fair comparison: without s2s auth users still answers ads' previews call.
    assert results["cases"]["nearby_plain"]["sellers_present"] is True
    for key in ("cold_issuer", "cold_resource"):  # started under load: nothing refused
        assert results["cases"][key]["non_2xx"] == 0, results["cases"][key]["answers"]
        assert results["cases"][key]["first_ok_s"] is not None
    for key, entry in results["cases"].items():
        if key.endswith("_pinned") and "rps" in entry:
            assert entry["affinity"]["refused"] == "", entry["affinity"]
            if entry["server"] == "pg":
                assert entry["affinity"]["backends_pinned"] > 0, key
    assert set(results["crypto_floor"]) >= {"es256_verify", "jwt_decode_service"}
    assert results["cases"]["service_jwt_mtls"]["ceiling_ratio"] > 0
    assert len(results["targets"]) == len(TARGETS)

    markdown = (out / "benchmarks.md").read_text()
    assert "ratio to baseline" in markdown and "## Targets" in markdown
    for section in ("## Cold start", "## Crypto floor"):
        assert section in markdown
    for case in CASES:
        assert f"`{case.key}`" in markdown
    png = (out / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_profile_mode_says_where_the_time_goes(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "fleamarket", "bench", "--quick", "--profile"),
            *("--cases", "access_token", "--output", str(out)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((out / "results.json").read_text())
    profile = results["cases"]["access_token"]["profile"]
    assert profile["requests"] > 0 and profile["cpu_ms_per_request"] > 0
    groups = {row["group"]: row["ms_per_request"] for row in profile["groups"]}
    # The caller's principal is looked up (a cache too is code of that group) and
    # Django runs: both show; every group is there, even at zero.
    assert groups["principal lookup"] > 0 and groups[OTHER] > 0
    assert set(groups) == {group for group, _ in GROUPS} | {OTHER}
    assert "## Where the time goes" in (out / "benchmarks.md").read_text()
