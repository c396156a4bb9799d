"""Run every test suite, each under its own Django settings, and sum the results.

Django settings are global to a process, so each project is tested in its own
pytest process: s2s_auth under a minimal test project, users and ads under their
own settings, and the end-to-end suite (real processes on loopback) last.

    python tests/run.py [--suite NAME ...] [--skip NAME ...] [pytest arguments]

``--suite`` runs only the named suites, ``--skip`` leaves suites out (both repeatable).
Other arguments are passed to every pytest run, e.g. ``-x`` or ``-k mtls``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "test-results"
SUITES = [
    ("s2s_auth", ["tests/s2s_auth"], "tests.s2s_auth.settings"),
    ("users", ["tests/users"], "users.settings"),
    ("ads", ["tests/ads"], "ads.settings"),
    ("jobs", ["tests/jobs"], "ads.settings"),
    ("docker", ["tests/docker"], "tests.s2s_auth.settings"),
    ("docs", ["tests/docs"], "tests.s2s_auth.settings"),
    # The wheel in a fresh virtualenv, running docs/quickstart.md (needs the package index).
    ("package", ["tests/package"], "tests.s2s_auth.settings"),
    ("e2e", ["tests/e2e"], "ads.settings"),
    # Certificates renewing themselves under traffic for three 60 s lifetimes (~4 min):
    # the SQLite pass of .ci/run only.
    ("lifecycle", ["tests/lifecycle"], "ads.settings"),
    # The audit admin in headless Chromium (Debian's chromium + chromium-driver).
    ("browser", ["tests/browser"], "ads.settings"),
    # Schemathesis against both live services and their /api/schema/ (bounded).
    ("contract", ["tests/contract"], "ads.settings"),
    ("attacks", ["tests/attacks"], "tests.s2s_auth.settings"),
    # Third-party implementations against a live deployment (python -m tests.interop.table).
    ("interop", ["tests/interop"], "tests.s2s_auth.settings"),
    ("bench", ["tests/bench"], "ads.settings"),
]


def counts(junit: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not junit.exists():
        return totals
    for suite in ET.parse(junit).getroot().iter("testsuite"):  # noqa: S314 - our own file
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    names = [name for name, _, _ in SUITES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--suite", action="append", choices=names, help="run only this suite")
    parser.add_argument("--skip", action="append", choices=names, default=[], help="leave it out")
    return parser.parse_known_args(argv)


def main(argv: list[str]) -> int:
    options, extra = parse(argv)
    RESULTS.mkdir(exist_ok=True)
    failed_suites = []
    passed = failed = skipped = 0
    timings: list[str] = []
    for name, paths, settings in SUITES:
        if (options.suite and name not in options.suite) or name in options.skip:
            continue
        if not any((ROOT / p).exists() for p in paths):
            continue
        junit = RESULTS / f"{name}.xml"
        junit.unlink(missing_ok=True)
        print(f"\n=== {name} (settings: {settings}) ===", flush=True)
        started = time.monotonic()
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                *paths,
                f"--ds={settings}",
                f"--junitxml={junit}",
                *extra,
            ],
            cwd=ROOT,
        )
        timings.append(f"{name} {time.monotonic() - started:.0f} s")
        c = counts(junit)
        passed += c["tests"] - c["failures"] - c["errors"] - c["skipped"]
        failed += c["failures"] + c["errors"]
        skipped += c["skipped"]
        if code != 0:
            failed_suites.append(f"{name} (exit {code})")
    print()
    print(f"wall time per suite: {', '.join(timings)}")
    if failed_suites:
        print(f"failing suites: {', '.join(failed_suites)}")
        failed = max(failed, 1)
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed_suites else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
