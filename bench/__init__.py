"""Benchmarks of s2s_auth's mechanisms against live servers: ``python -m fleamarket bench``.

``harness`` runs a benchmark (``servers`` starts gunicorn processes the way the
deployment does, ``plain`` is users' no-auth configuration for ``nearby_plain``,
``cases`` says what each case sends, ``load`` drives the load from separate client
processes, ``affinity`` gives PostgreSQL its own core for the pinned cases, ``micro``
measures in-process token validation, ``floor`` the raw cryptography of each mechanism,
``profiling`` with ``profile_conf`` where a server's CPU time goes under ``--profile``)
and ``report`` writes ``bench/results.json``, ``docs/benchmarks.md`` and
``docs/benchmarks.png`` (``chart``: with matplotlib, the optional ``bench`` extra).
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="about a second per case: proves the harness works"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds measured per case (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="warm-up seconds per case (default 2)"
    )
    parser.add_argument(
        "--cases", default=None, help="comma-separated case keys or groups (default: all)"
    )
    parser.add_argument(
        "--clients", type=int, default=4, help="load-generator processes (default 4)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run each case against its server under cProfile and report where "
        "the CPU time goes (TLS, JWT verify, principal lookup, audit, logging, the rest)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="directory for results.json, benchmarks.md and benchmarks.png "
        "(default: bench/results.json, docs/benchmarks.md, docs/benchmarks.png)",
    )


def main(args) -> int:
    from .harness import run

    results = run(
        output=args.output,
        quick=args.quick,
        duration=args.duration,
        warmup=args.warmup,
        case_names=args.cases,
        clients=args.clients,
        profile=args.profile,
    )
    bad = [
        key
        for key, entry in results["cases"].items()
        if "failed" in entry or ("rps" in entry and (entry["errors"] or entry["rps"] <= 0))
    ]
    print()
    for row in results["targets"]:
        state = "-" if row["met"] is None else ("met" if row["met"] else "MISSED")
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        print(f"  target {state:<6} {value:>8}  {row['target']}")
    print("\nwrote " + ", ".join(results["files"].values()))
    if "chart" not in results["files"]:
        from .chart import CHART_NEEDS_EXTRA

        print(f"no chart: {CHART_NEEDS_EXTRA}")
    if bad:
        print(f"cases with failures or errors: {', '.join(bad)}")
        return 1
    return 0
