#!/usr/bin/env python
"""The compose deployment's one-shot ``init`` job and its ``pki`` keeper.

    python docker/bin/deploy_init.py all            PKI, migrations, principals (the init job)
    python docker/bin/deploy_init.py pki            CA + certificates, copied out per service
    python docker/bin/deploy_init.py pki --watch 300   the same every 300 s (the pki service)
    python docker/bin/deploy_init.py check          exit 1 if a copied certificate is missing
                                                    or expires within RENEW_BEFORE (healthcheck)
    python docker/bin/deploy_init.py migrate | principals

Environment:
  S2S_PKI_DIR         the CA's own directory (volume ``pki-ca``: root and intermediate keys)
  PKI_OUT_DIR         where each service's directory is written: PKI_OUT_DIR/<name>/ with
                      ca.pem, intermediates.pem, crl.pem, <name>.pem, <name>.key; each
                      service mounts only its own (volumes pki-users, pki-ads, ...)
  S2S_TRUST_DOMAIN    default fleamarket.local
  USERS_SECRET_KEY_FILE, ADS_SECRET_KEY_FILE   SECRET_KEY_FILE of each manage.py run
  USERS_DATABASE_URL, ADS_DATABASE_URL         (or *_FILE, resolved by docker/entrypoint.sh)
  FLEAMARKET_SEED_DEMO=1  also load the demo data (seed_demo) after migrating

The certificates are the ones ``python -m fleamarket pki`` makes (fleamarket.deployment:
CERT_NAMES, PRINCIPALS), but with the compose DNS names as SANs, so that ads can call
``https://users:8000`` and the proxy ``https://users:8000`` with host name verification.
A certificate issued earlier without them is re-issued. ensure_dev_pki() issues
``localhost`` only; see docs/deployment.md for the proposed ``dns_names`` parameter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402

from fleamarket.deployment import (  # noqa: E402
    CERT_NAMES,
    EVERY_SERVICE,
    PRINCIPALS,
    RENEW_BEFORE,
    cert_lifetime,
    renew_before,
)
from s2s_auth.core.ca import CertificateAuthority  # noqa: E402

#: DNS SANs per certificate: the compose service name (what peers dial) and localhost
#: (what the container's own healthcheck dials).
DNS_NAMES: dict[str, tuple[str, ...]] = {
    "users": ("users", "localhost"),
    "ads": ("ads", "localhost"),
    "worker": ("worker",),
    "proxy": ("proxy", "localhost"),
    "prometheus": ("prometheus",),
}
IP_ADDRESSES = ("127.0.0.1",)
#: Files every service gets: the trust anchor, the intermediate (path building for
#: peers that send their leaf alone, e.g. through nginx) and the CRL.
SHARED_FILES = ("ca.pem", "intermediates.pem", "crl.pem")
#: Rewrite the CRL when less than this is left of its (7-day) validity.
CRL_REFRESH_BEFORE = dt.timedelta(days=6)
SERVICES = ("users", "ads")


def log(message: str) -> None:
    print(f"[deploy_init] {message}", flush=True)


def dns_names_of(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName))


def ensure_pki(ca_dir: Path, trust_domain: str, names=CERT_NAMES) -> CertificateAuthority:
    """CA, a current certificate with the compose DNS names for each name, a fresh CRL."""
    ca = CertificateAuthority(ca_dir, trust_domain)
    if not ca.initialized:
        ca.init()
        log(f"created CA in {ca_dir} (trust domain {trust_domain})")
    now = dt.datetime.now(dt.UTC)
    for name in names:
        wanted = DNS_NAMES.get(name, (name,))
        cert_path, key_path = ca.paths(name)
        kwargs = {
            "dns_names": wanted,
            "ip_addresses": IP_ADDRESSES,
            "hours": cert_lifetime().total_seconds() / 3600,  # S2S_CERT_LIFETIME
        }
        if not (cert_path.exists() and key_path.exists()):
            ca.issue(name, **kwargs)
            log(f"issued {name} ({', '.join(wanted)})")
            continue
        cert = ca.load_certificate(name)
        if not set(wanted) <= dns_names_of(cert):
            ca.renew(name, **kwargs)
            log(f"re-issued {name} with DNS names {', '.join(wanted)}")
        elif cert.not_valid_after_utc - now < renew_before(cert_lifetime()):
            ca.renew(name, **kwargs)
            log(f"renewed {name}")
    crl_stale = True
    if ca.crl_path.exists():
        crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
        next_update = crl.next_update_utc
        crl_stale = next_update is None or next_update - now < CRL_REFRESH_BEFORE
    if crl_stale:
        ca.write_crl()
        log("wrote CRL")
    return ca


def _copy_if_changed(source: Path, target: Path, mode: int) -> bool:
    data = source.read_bytes()
    if target.exists() and target.read_bytes() == data:
        return False
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, target)  # atomic: readers see the old or the new file
    return True


def distribute(ca: CertificateAuthority, out_dir: Path, names=CERT_NAMES) -> list[str]:
    """Copy each service's own material into out_dir/<name>/ (never the CA keys).

    Every file is replaced atomically and only when it changed, so verifiers (which
    reload ca.pem/crl.pem on change) and the TLS worker (which reloads its certificate
    and key on change) do not reload for nothing. Key and certificate are two files:
    between the two renames a reader can see a mismatched pair for an instant; the
    TLS worker then fails that one handshake and rebuilds on the next connection.
    """
    changed = []
    for name in names:
        target = out_dir / name
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        cert_path, key_path = ca.paths(name)
        for file in SHARED_FILES:
            if _copy_if_changed(ca.directory / file, target / file, 0o644):
                changed.append(f"{name}/{file}")
        if _copy_if_changed(key_path, target / key_path.name, 0o600):
            changed.append(f"{name}/{key_path.name}")
        if _copy_if_changed(cert_path, target / cert_path.name, 0o644):
            changed.append(f"{name}/{cert_path.name}")
    return changed


def check(out_dir: Path, names=CERT_NAMES) -> list[str]:
    """Problems of the distributed certificates (empty: healthy)."""
    problems = []
    now = dt.datetime.now(dt.UTC)
    for name in names:
        path = out_dir / name / f"{name}.pem"
        try:
            cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        left = cert.not_valid_after_utc - now
        if left < min(RENEW_BEFORE, renew_before(cert_lifetime())) / 2:
            problems.append(f"{path}: expires in {left}")
    return problems


def _env_dir(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} must be set")
    return Path(value)


def cmd_pki(watch: float | None) -> int:
    ca_dir, out_dir = _env_dir("S2S_PKI_DIR"), _env_dir("PKI_OUT_DIR")
    trust_domain = os.environ.get("S2S_TRUST_DOMAIN") or "fleamarket.local"
    while True:
        ca = ensure_pki(ca_dir, trust_domain)
        changed = distribute(ca, out_dir)
        if changed:
            log(f"updated {', '.join(changed)}")
        if not watch:
            return 0
        time.sleep(watch)


def manage(service: str, *args: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_FILE"}
    env["DJANGO_SETTINGS_MODULE"] = f"{service}.settings"
    key_file = os.environ.get(f"{service.upper()}_SECRET_KEY_FILE")
    if key_file:
        env["SECRET_KEY_FILE"] = key_file
    log(f"{service}: manage.py {' '.join(args)}")
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    subprocess.run(command, cwd=ROOT, env=env, check=True)  # noqa: S603 - fixed arguments


def cmd_migrate() -> int:
    for service in SERVICES:
        manage(service, "migrate", "--noinput")
        if os.environ.get("FLEAMARKET_SEED_DEMO", "").strip() in {"1", "true", "yes"}:
            manage(service, "seed_demo")
    return 0


def cmd_principals() -> int:
    # --no-secret: ads and the worker authenticate with their certificates (mTLS,
    # service JWTs, tls_client_auth), so no client secret is created and none is
    # printed into the container log.
    # The metrics scraper is known to every service it scrapes, not only to users.
    for name, scopes in PRINCIPALS.items():
        args = [arg for scope in scopes for arg in ("--scope", scope)]
        for service in SERVICES if name in EVERY_SERVICE else ("users",):
            manage(service, "s2s_service", "add", name, *args, "--no-secret")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["all", "pki", "check", "migrate", "principals"])
    parser.add_argument("--watch", type=float, default=None, metavar="SECONDS")
    args = parser.parse_args(argv)
    if args.action == "check":
        problems = check(_env_dir("PKI_OUT_DIR"))
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if args.action == "pki":
        return cmd_pki(args.watch)
    if args.action == "migrate":
        return cmd_migrate()
    if args.action == "principals":
        return cmd_principals()
    cmd_pki(None)
    cmd_migrate()
    return cmd_principals()


if __name__ == "__main__":
    sys.exit(main())
