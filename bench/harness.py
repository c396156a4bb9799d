"""One benchmark run: start the servers, run every case, compute ratios, write the report.

python -m fleamarket bench [--quick] [--duration S] [--cases a,b] [--profile] [--output DIR]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from fleamarket import processes

from . import affinity, commit_latency, profiling
from . import cases as bench_cases
from .floor import add_floors
from .load import run_load
from .report import TARGETS, default_paths, evaluate_targets, write_reports
from .servers import Fleet

QUICK_DURATION, QUICK_WARMUP = 1.0, 0.3
FULL_DURATION, FULL_WARMUP = 10.0, 2.0
DEFAULT_CLIENTS = 4


def machine() -> dict:
    info: dict = {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    info.setdefault("cpu_model", platform.processor() or "unknown")
    return info


def versions() -> dict:
    result = {"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION}
    for dist in ("Django", "djangorestframework", "gunicorn", "cryptography", "PyJWT", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            result[dist] = metadata.version(dist)
    return result


def _micro(fleet: Fleet, case, duration: float, warmup: float) -> dict:
    server = fleet.servers[case.server]
    env = {
        **server.deployment.env("users"),
        "DJANGO_SETTINGS_MODULE": "users.settings",
        "BENCH_TOKEN": bench_cases.token_for_micro(fleet),
        "S2S_CACHE_VERIFIED_TOKENS": "1" if case.key == "validate_cached" else "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.micro", str(duration), str(warmup)],
        cwd=processes.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + warmup + 120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.micro failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cold(fleet: Fleet, case, duration: float, clients: int) -> dict:
    """Stop the case's service, get the clients knocking, start it: every answer counts."""
    deployment = fleet.servers[case.server].deployment
    service = case.options["service"]
    spec = bench_cases.build(case, fleet)  # the token is fetched while all is up
    deployment.stop_service(service)
    return run_load(
        spec,
        clients=clients,
        duration=duration,
        warmup=0,
        after_go=lambda: deployment.spawn(service),
    )


def _crypto_floor(fleet: Fleet, seconds: float) -> dict[str, float]:
    """bench.floor in its own process: µs of each raw cryptographic operation."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.floor", str(fleet.pki), str(seconds)],
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=seconds * 20 + 120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.floor failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pinned(fleet: Fleet, case, spec, clients: int, duration: float, warmup: float) -> dict:
    """A load case with the database on its own core (bench.affinity)."""
    cpus = affinity.split()
    if isinstance(cpus, str):
        raise RuntimeError(f"no CPU for the database: {cpus}")
    server = fleet.servers[case.server]
    database = server.deployment.database_urls["users"] if server.database == "PostgreSQL" else None
    with affinity.Pinning(server.deployment.children["users"].pid, database, cpus) as pins:
        figures = run_load(spec, clients=clients, duration=duration, warmup=warmup)
    return {**figures, "affinity": pins.summary()}


def _profile(fleet: Fleet, case, clients: int, duration: float, warmup: float) -> dict:
    """The case once more against its server restarted under cProfile; the grouped
    CPU time of its workers (bench.profiling). The server is restarted plain after."""
    server = fleet.servers[case.server]
    service = "ads" if case.key.startswith("nearby_") else "users"
    folder = fleet.workdir / "profiles" / case.key
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    deployment = server.deployment
    deployment.restart(service, profile_dir=folder)
    try:
        spec = bench_cases.build(case, fleet)
        # Long enough for every worker to pass its unprofiled first requests.
        run_load(spec, clients=clients, duration=max(duration, 3.0), warmup=warmup)
    finally:
        deployment.restart(service)  # the workers dump their profiles as they exit
    return {"service": service, **profiling.summarize(folder)}


def run(
    *,
    output: Path | None = None,
    quick: bool = False,
    duration: float | None = None,
    warmup: float | None = None,
    case_names: str | None = None,
    clients: int = DEFAULT_CLIENTS,
    workdir: Path | None = None,
    profile: bool = False,
    log=print,
) -> dict:
    selected = bench_cases.select(case_names)
    duration = duration or (QUICK_DURATION if quick else FULL_DURATION)
    warmup = warmup if warmup is not None else (QUICK_WARMUP if quick else FULL_WARMUP)
    started = time.monotonic()
    load_before = os.getloadavg()
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "duration_s": duration,
        "warmup_s": warmup,
        "client_processes": clients,
        "server": {
            "workers": 2,
            "threads": int(os.environ.get("GUNICORN_THREADS") or 4),
            "worker_class": "s2s_auth.tls.gunicorn.TLSWorker (gthread, keep-alive)",
        },
        "machine": machine(),
        "versions": versions(),
        "baseline": bench_cases.BASELINE,
        "cases": {},
        "profiled": profile,
    }
    with tempfile.TemporaryDirectory(prefix="fleamarket-bench-") as tmp:
        fleet = Fleet(Path(workdir or tmp), workers=2)
        with fleet:
            kinds = {case.server for case in selected}
            log(f"preparing servers ({', '.join(sorted(kinds))}): PKI, databases, principals ...")
            fleet.prepare(kinds, log=log)
            try:
                results["commit_ms"] = commit_latency.measure(fleet.workdir, fleet.postgres_url)
            except Exception as exc:  # the figures stand without it
                log(f"  commit latency not measured: {type(exc).__name__}: {exc}")
            fleet.start()
            try:
                results["crypto_floor"] = _crypto_floor(fleet, 0.5 if quick else 2.0)
            except Exception as exc:  # the figures stand without it; the page says so
                results["crypto_floor_error"] = f"{type(exc).__name__}: {exc}"[:500]
                log(f"  crypto floor not measured: {results['crypto_floor_error']}")
            log(
                f"running {len(selected)} cases, {duration:g} s each after {warmup:g} s "
                f"warm-up, {clients} client processes"
            )
            for case in selected:
                entry: dict = {
                    "label": case.label,
                    "group": case.group,
                    "unit": case.unit,
                    "server": case.server,
                    "versus": case.versus,
                }
                if case.server not in fleet.servers:
                    entry["skipped"] = f"no {case.server} server: {fleet.postgres_error}"
                    log(f"  {case.key:<28} skipped ({entry['skipped']})")
                    results["cases"][case.key] = entry
                    continue
                try:
                    if case.kind == "micro":
                        figures = _micro(fleet, case, duration, warmup)
                    elif case.kind == "cold":
                        figures = _cold(fleet, case, duration, clients)
                    else:
                        spec = bench_cases.build(case, fleet)
                        if case.options.get("pin"):
                            figures = _pinned(fleet, case, spec, clients, duration, warmup)
                        else:
                            figures = run_load(
                                spec, clients=clients, duration=duration, warmup=warmup
                            )
                except Exception as exc:
                    entry["failed"] = f"{type(exc).__name__}: {exc}"
                    log(f"  {case.key:<28} FAILED {entry['failed'][:500]}")
                    results["cases"][case.key] = entry
                    continue
                entry.update(figures)
                if case.key.startswith("nearby_"):
                    server = fleet.servers[case.server]
                    entry["sellers_present"] = bench_cases.nearby_sellers_present(fleet, server)
                results["cases"][case.key] = entry
                log(
                    f"  {case.key:<28} {entry['rps']:>10.1f} {case.unit:<13} "
                    f"p50 {entry['p50_ms']:7.2f} ms  p99 {entry['p99_ms']:7.2f} ms"
                    + (f"  errors {entry['errors']}" if entry.get("errors") else "")
                    + (
                        f"  non-2xx {entry['non_2xx']} {entry['answers']}"
                        if case.kind == "cold"
                        else ""
                    )
                )
                if case.key == bench_cases.BASELINE:
                    baseline_spec = spec
            if profile:
                log("profiling each case's server (cProfile per worker) ...")
                for case in selected:
                    entry = results["cases"].get(case.key, {})
                    if case.kind != "http" or "rps" not in entry or case.options.get("pin"):
                        continue
                    try:
                        entry["profile"] = _profile(fleet, case, clients, duration, warmup)
                    except Exception as exc:
                        entry["profile_failed"] = f"{type(exc).__name__}: {exc}"[:500]
                        log(f"  {case.key:<28} profile FAILED {entry['profile_failed']}")
                        continue
                    shares = ", ".join(
                        f"{row['group']} {row['share']:.0%}" for row in entry["profile"]["groups"]
                    )
                    log(
                        f"  {case.key:<28} {entry['profile']['cpu_ms_per_request']:.2f} ms CPU"
                        f"/request: {shares}"
                    )
            base = results["cases"].get(bench_cases.BASELINE, {})
            if "rps" in base and len(selected) > 1:
                # Measured again at the end: the ratios use the mean of both, and the
                # difference says how steady the machine was during the run.
                again = run_load(baseline_spec, clients=clients, duration=duration, warmup=warmup)
                base["rps_first"], base["rps_last"] = base["rps"], again["rps"]
                base["rps"] = (base["rps_first"] + again["rps"]) / 2
                base["drift"] = again["rps"] / base["rps_first"] - 1
                log(
                    f"  {'baseline again':<28} {again['rps']:>10.1f} req/s "
                    f"(drift {base['drift']:+.1%})"
                )
    add_ratios(results)
    add_floors(results)
    results["targets"] = evaluate_targets(results)
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["files"] = {
        name: str(path)
        for name, path in write_reports(results, output or default_paths(processes.ROOT)).items()
    }
    return results


def add_ratios(results: dict) -> None:
    """``ratio``: to the baseline measured in this run; ``ratio_versus``: to ``versus``."""
    all_cases = results["cases"]
    base = all_cases.get(results["baseline"], {}).get("rps")
    for entry in all_cases.values():
        if "rps" not in entry:
            continue
        # Cold starts count refusals; their throughput includes a starting server.
        if base and entry["unit"] != "validations/s" and "non_2xx" not in entry:
            entry["ratio"] = entry["rps"] / base
        other = all_cases.get(entry.get("versus") or "", {}).get("rps")
        if other:
            entry["ratio_versus"] = entry["rps"] / other


__all__ = ["TARGETS", "run"]
