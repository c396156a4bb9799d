"""``manage.py s2s_pki``: the private CA in ``S2S_AUTH["PKI_DIR"]``.

    s2s_pki init [--force]
    s2s_pki issue NAME [--hours H] [--dns D ...] [--ip IP ...]
    s2s_pki renew NAME [--hours H] [--dns D ...] [--ip IP ...]
    s2s_pki revoke NAME_OR_SERIAL
    s2s_pki revoke --intermediate
    s2s_pki crl [--days N]
    s2s_pki agent [--name NAME] [--now]

``agent`` runs the certificate renewal agent in the foreground (what the TLS gunicorn
master runs in a thread): it renews ``PKI_DIR/NAME.pem``/``.key`` at the identity
service's renewal endpoint at ``RENEW_AT_FRACTION`` of their lifetime, until stopped;
``--now`` renews once, at once, and exits (non-zero if that failed).

With ``S2S_AUTH["CRL_URL"]`` set, certificates issued name their CRL there (CRL
Distribution Points) and the identity service publishes every new CRL at once: a
revocation reaches the services that fetch it within CRL_REFRESH_SECONDS
(docs/revocation.md). CRLs are valid for ``CRL_VALIDITY`` unless ``crl --days`` says.

Prints paths, serials and fingerprints; never key material.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from s2s_auth.conf import s2s_settings
from s2s_auth.core.ca import CertificateAuthority, IssuedCertificate, PKIError
from s2s_auth.core.x509 import fingerprint
from s2s_auth.management.subcommands import accept_global_options


class Command(BaseCommand):
    help = (
        "Manage the private CA for service identities (init, issue, renew, revoke, crl) "
        "and run the renewal agent."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        init = sub.add_parser("init", help="Create the root and intermediate CA.")
        init.add_argument(
            "--force", action="store_true", help="Replace an existing CA (invalidates it)."
        )

        for action, text in (
            ("issue", "Issue a key and certificate for a service."),
            ("renew", "New key and certificate for an issued name (the old stays valid)."),
        ):
            p = sub.add_parser(action, help=text)
            p.add_argument("name", help="Service name (lowercase letters, digits, hyphens).")
            p.add_argument(
                "--hours",
                type=float,
                default=None,
                help="Lifetime in hours (default: S2S_AUTH CERT_LIFETIME or CERT_LIFETIME_HOURS).",
            )
            p.add_argument(
                "--dns",
                nargs="+",
                action="extend",
                default=None,
                metavar="D",
                help="DNS SANs (default: localhost; renew: those of the last certificate).",
            )
            p.add_argument(
                "--ip",
                nargs="+",
                action="extend",
                default=None,
                metavar="IP",
                help="IP SANs (default: 127.0.0.1; renew: those of the last certificate).",
            )

        revoke = sub.add_parser(
            "revoke",
            help="Revoke a name's unexpired certificates, one serial, or the intermediate CA.",
        )
        revoke.add_argument(
            "target",
            metavar="NAME_OR_SERIAL",
            nargs="?",
            help="Service name, or serial (decimal or 0x..).",
        )
        revoke.add_argument(
            "--intermediate",
            action="store_true",
            help="Revoke the intermediate CA (the root's CRL lists it): every certificate "
            "it issued is refused; the CA issues nothing more until `init --force`.",
        )

        agent = sub.add_parser(
            "agent",
            help="Renew this service's certificate at the identity service whenever due.",
        )
        agent.add_argument("--name", help="Service name (default: S2S_AUTH SERVICE_NAME).")
        agent.add_argument("--now", action="store_true", help="Renew once now, then exit.")

        crl = sub.add_parser("crl", help="Rewrite the CRL (do it before nextUpdate passes).")
        crl.add_argument(
            "--days",
            type=float,
            default=None,
            help="CRL validity in days (default: S2S_AUTH CRL_VALIDITY).",
        )
        accept_global_options(sub)

    def handle(self, *args, action, **options):
        conf = s2s_settings()
        ca = CertificateAuthority(
            conf.pki_dir,
            conf.TRUST_DOMAIN,
            crl_url=conf.CRL_URL,
            crl_validity=conf.crl_validity,
        )
        try:
            getattr(self, f"_{action}")(ca, conf, options)
        except PKIError as exc:
            raise CommandError(str(exc)) from exc

    # -- actions -------------------------------------------------------------------
    def _init(self, ca: CertificateAuthority, conf, options) -> None:
        root = ca.init(
            force=options["force"],
            root_days=int(conf.ROOT_CA_LIFETIME_DAYS),
            intermediate_days=int(conf.INTERMEDIATE_CA_LIFETIME_DAYS),
        )
        self.stdout.write(self.style.SUCCESS(f"Created CA for trust domain {ca.trust_domain}"))
        self.stdout.write(f"  trust anchor  {ca.ca_path}")
        self.stdout.write(f"  fingerprint   {fingerprint(root)}")
        self.stdout.write(f"  expires       {root.not_valid_after_utc.isoformat()}")
        self.stdout.write(f"  CRL           {ca.crl_path}")
        self.stdout.write(f"  private files {ca.private_dir}")

    def _issue(self, ca: CertificateAuthority, conf, options) -> None:
        kwargs = self._leaf_options(conf, options)
        self._report("Issued", ca.issue(options["name"], **kwargs))

    def _renew(self, ca: CertificateAuthority, conf, options) -> None:
        kwargs = self._leaf_options(conf, options)
        self._report("Renewed", ca.renew(options["name"], **kwargs))

    def _revoke(self, ca: CertificateAuthority, conf, options) -> None:
        if options["intermediate"] == (options["target"] is not None):
            raise CommandError("Give NAME_OR_SERIAL or --intermediate (one of them).")
        if options["intermediate"]:
            serial = ca.revoke_intermediate()
            self.stdout.write(self.style.WARNING(f"Revoked the intermediate CA {serial:#x}"))
            self.stdout.write(f"  CRL           {ca.crl_path}")
            self._published(ca, conf)
            return
        serials = ca.revoke(options["target"])
        for serial in serials:
            self.stdout.write(self.style.WARNING(f"Revoked serial {serial:#x} ({serial})"))
        self.stdout.write(f"  CRL           {ca.crl_path}")
        self._published(ca, conf)

    def _published(self, ca: CertificateAuthority, conf) -> None:
        if conf.CRL_URL:
            self.stdout.write(
                f"  published     {conf.CRL_URL.rstrip('/')}/<CA key id>.crl; services "
                f"fetching it refuse the certificate within {conf.CRL_REFRESH_SECONDS} s"
            )

    def _crl(self, ca: CertificateAuthority, conf, options) -> None:
        path = ca.write_crl(days=options["days"])
        self.stdout.write(self.style.SUCCESS(f"Wrote CRL {path}"))

    def _agent(self, ca: CertificateAuthority, conf, options) -> None:
        from s2s_auth.agent import AgentNotConfigured, RenewalAgent, RenewalError

        try:
            agent = RenewalAgent.from_settings(options["name"])
        except AgentNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["now"]:
            try:
                leaf = agent.renew()
            except RenewalError as exc:
                raise CommandError(f"Renewal failed: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"Renewed {agent.cert_path}"))
            self.stdout.write(f"  serial        {leaf.serial_number:#x}")
            self.stdout.write(f"  fingerprint   {fingerprint(leaf)}")
            self.stdout.write(f"  expires       {leaf.not_valid_after_utc.isoformat()}")
            return
        self.stdout.write(f"Renewing {agent.cert_path} at {agent.url}; Ctrl-C stops.")
        try:
            agent.run()
        except KeyboardInterrupt:
            agent.stop()

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _leaf_options(conf, options) -> dict:
        kwargs: dict = {
            "hours": (
                options["hours"]
                if options["hours"] is not None
                else conf.cert_lifetime.total_seconds() / 3600
            )
        }
        if options["dns"] is not None:
            kwargs["dns_names"] = options["dns"]
        if options["ip"] is not None:
            kwargs["ip_addresses"] = options["ip"]
        return kwargs

    def _report(self, verb: str, issued: IssuedCertificate) -> None:
        self.stdout.write(self.style.SUCCESS(f"{verb} {issued.spiffe_id}"))
        self.stdout.write(f"  certificate   {issued.cert_path}")
        self.stdout.write(f"  key           {issued.key_path}")
        self.stdout.write(f"  serial        {issued.serial:#x}")
        self.stdout.write(f"  fingerprint   {issued.fingerprint}")
        self.stdout.write(f"  expires       {issued.not_after.isoformat()}")
