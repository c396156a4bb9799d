"""``python -m fleamarket <command>``: the deployment's command line.

pki    create (or refresh) the dev PKI under var/pki
up     prepare and start both services on https://127.0.0.1:8001 and :8002, and the
       Celery worker and beat of the batch jobs (--no-jobs: without them)
demo   start everything, walk the example request and the attacks, verify
bench  measure each s2s_auth mechanism against a no-auth baseline (docs/benchmarks.md)
attack run the attack catalogue against every mechanism on a live UserService; writes
       docs/threat-matrix.md and bench/threats.json (--output DIR: both there instead)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time

from fleamarket import demo
from fleamarket.deployment import CERT_NAMES, Deployment, ensure_dev_pki
from fleamarket.devdata import dev_password
from fleamarket.processes import PortInUse


def cmd_pki(args) -> int:
    deployment = Deployment()
    ca = ensure_dev_pki(deployment.pki_dir, crl_url=deployment.crl_url)
    # The principals of the certificates (prometheus: metrics:read on every service).
    for service in deployment.ports:
        deployment.manage(service, "migrate", "--noinput", "-v0")
    deployment.register_principals()
    print(f"dev PKI in {deployment.pki_dir} (trust domain {ca.trust_domain})")
    print(f"  trust anchor   {ca.ca_path}")
    for name in CERT_NAMES:
        cert, key = ca.paths(name)
        print(f"  {name:<14} {cert.name}, {key.name} ({ca.spiffe_id(name)})")
    print(f"  CRL            {ca.crl_path}")
    print(f"  CRLs published {deployment.crl_url}/<CA key id>.crl (by users, once it runs)")
    return 0


def print_where(deployment: Deployment) -> None:
    pki = deployment.pki_dir
    print("\nRunning:")
    for service in deployment.ports:
        url = deployment.url(service)
        print(f"  {service:<6} {url}/api/v1/   admin: {url}/admin/")
    print(f"  admin login: admin / {dev_password('admin')}")
    print(
        "  try:   curl --cacert {0}/ca.pem --cert {0}/ads.pem --key {0}/ads.key "
        "'{1}/api/v1/users/previews?ids=1,2'".format(pki, deployment.url("users"))
    )
    if "worker" in deployment.children:
        broker = deployment.celery_app().conf.broker_url
        print(f"  jobs:  Celery worker and beat, broker {broker}; run a job now:")
        print("         python -m celery -A fleamarket.celery call jobs.expire_stale_ads")
    if deployment.crl_url:
        every = os.environ.get("S2S_CRL_REFRESH_SECONDS") or "30"
        print(f"  CRLs:  {deployment.crl_url}/<CA key id>.crl, fetched by ads every {every} s")
    print(f"  logs:  {deployment.var / 'logs'}")


def stop_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C, so every child is stopped on the way out.

    Installed before anything starts: a SIGTERM while the deployment is still
    starting must not leave orphaned servers and ports bound.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop_on_sigterm()
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def cmd_up(args) -> int:
    deployment = Deployment()
    print("preparing: dev PKI, migrations, demo data, principals ...", flush=True)
    deployment.prepare()
    with deployment:
        if not args.no_jobs:
            deployment.start_jobs()
        deployment.start_agents()  # the scraper's and the edge proxy's certificates
        print_where(deployment)
        print("\nCtrl-C stops everything.", flush=True)
        wait_for_stop()
    print("stopped.")
    return 0


def cmd_demo(args) -> int:
    ok = demo.run(Deployment(), keep_running=not args.ci)
    return 0 if ok else 1


def cmd_bench(args) -> int:
    import bench

    return bench.main(args)


def cmd_attack(args) -> int:
    from fleamarket import attacks

    return attacks.main(args.output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleamarket",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pki", help="create or refresh the dev PKI under var/pki")
    up_parser = sub.add_parser(
        "up", help="start users, ads and the jobs' worker and beat on loopback until Ctrl-C"
    )
    up_parser.add_argument(
        "--no-jobs", action="store_true", help="do not start the Celery worker and beat"
    )
    demo_parser = sub.add_parser("demo", help="walk the example request and the attacks")
    demo_parser.add_argument(
        "--ci", action="store_true", help="exit after the walk instead of keeping things running"
    )
    bench_parser = sub.add_parser(
        "bench", help="benchmark the mechanisms on loopback; writes docs/benchmarks.md"
    )
    import bench

    bench.add_arguments(bench_parser)
    attack_parser = sub.add_parser(
        "attack", help="run the attacks against each mechanism; writes the threat matrix"
    )
    attack_parser.add_argument(
        "--output",
        metavar="DIR",
        help="write threat-matrix.md and threats.json to DIR "
        "(default: docs/threat-matrix.md and bench/threats.json)",
    )
    args = parser.parse_args(argv)
    # Everything this command and its children create (databases, logs, keys, the
    # Celery queue) is for this user only.
    os.umask(0o077)
    stop_on_sigterm()
    try:
        return {
            "pki": cmd_pki,
            "up": cmd_up,
            "demo": cmd_demo,
            "bench": cmd_bench,
            "attack": cmd_attack,
        }[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted: everything this command started is stopped.", file=sys.stderr)
        return 130
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
