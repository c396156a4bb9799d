from django.core.management.base import BaseCommand, CommandError

from s2s_auth.credentials import principals as services
from s2s_auth.management.subcommands import accept_global_options
from s2s_auth.models import ServicePrincipal


class Command(BaseCommand):
    help = (
        "Manage service principals: add, grant, revoke, disable, enable, list, "
        "rotate-secret, add-key, revoke-key, register-key."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser(
            "add",
            help="Register a service (no scopes unless given); prints its client secret once.",
        )
        add.add_argument("name")
        add.add_argument("--scope", action="append", default=[], dest="scopes")
        add.add_argument(
            "--no-secret",
            action="store_true",
            help="Do not create a client secret (certificate-only service).",
        )
        approve_help = (
            "Grant scopes even though the service registered itself (anyone could have "
            "taken its name): marks it approved."
        )
        add.add_argument("--approve-self-registered", action="store_true", help=approve_help)
        for action in ("grant", "revoke"):
            p = sub.add_parser(action, help=f"{action.title()} scopes.")
            p.add_argument("name")
            p.add_argument("scopes", nargs="+")
            if action == "grant":
                p.add_argument("--approve-self-registered", action="store_true", help=approve_help)
        for action in ("disable", "enable"):
            sub.add_parser(action, help=f"{action.title()} a service.").add_argument("name")
        sub.add_parser("list", help="List principals with their scopes.")
        rotate = sub.add_parser(
            "rotate-secret",
            help="Create a new client secret (printed once); old ones expire after a grace period.",
        )
        rotate.add_argument("name")
        rotate.add_argument(
            "--grace-hours",
            type=float,
            default=None,
            help="How long the previous secrets stay valid, hours (default: "
            "S2S_AUTH['SECRET_ROTATION_GRACE'], 5 minutes unless set; 0 = now).",
        )
        key = sub.add_parser("add-key", help="Create an API key (printed once).")
        key.add_argument("name")
        key.add_argument("--expires", type=int, default=None, metavar="DAYS")
        sub.add_parser("revoke-key", help="Revoke an API key by id or prefix.").add_argument(
            "key_id"
        )
        register = sub.add_parser(
            "register-key",
            help="Register a client's public key for private_key_jwt: FILE is a PEM "
            "certificate, a PEM public key, a JWK or a JWKS (or use --jwks-uri).",
        )
        register.add_argument("name")
        register.add_argument("file", nargs="?", default=None)
        register.add_argument("--jwks-uri", default=None, help="An https URL of the client's JWKS.")
        accept_global_options(sub)

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action.replace('-', '_')}")(**options)
        except services.PrincipalError as exc:
            raise CommandError(str(exc)) from exc

    def _print_secret(self, name, secret):
        self.stdout.write(f"client_id: {name}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(
            self.style.WARNING("The secret is shown only now; it is stored as a keyed hash.")
        )

    def do_add(self, name, scopes, no_secret=False, approve_self_registered=False, **_):
        principal, created = services.ensure_principal(
            name, scopes, approve=approve_self_registered
        )
        verb = "registered" if created else "already registered"
        self.stdout.write(self.style.SUCCESS(f"{principal.name} {verb}: {principal.spiffe_id}"))
        if principal.self_registered:
            self.stdout.write(self.style.WARNING(f"origin: {_origin(principal)}"))
        self.stdout.write(f"scopes: {principal.scopes or '(none)'}")
        has_secrets = services.secret_backend() is not None
        if not created or no_secret:
            if not created and not no_secret and has_secrets:
                self.stdout.write("no new secret (use rotate-secret for one)")
            return
        if has_secrets:
            self._print_secret(principal.name, services.create_client_secret(principal.name))
        else:
            self.stdout.write("no client secret: no secret backend is installed")

    def do_grant(self, name, scopes, approve_self_registered=False, **_):
        principal = services.set_scopes(name, grant=scopes, approve=approve_self_registered)
        self.stdout.write(self.style.SUCCESS(f"{name} scopes: {principal.scopes or '(none)'}"))

    def do_revoke(self, name, scopes, **_):
        principal = services.set_scopes(name, revoke=scopes)
        self.stdout.write(self.style.SUCCESS(f"{name} scopes: {principal.scopes or '(none)'}"))

    def do_disable(self, name, **_):
        services.set_enabled(name, False)
        self.stdout.write(self.style.WARNING(f"{name} disabled"))

    def do_enable(self, name, **_):
        services.set_enabled(name, True)
        self.stdout.write(self.style.SUCCESS(f"{name} enabled"))

    def do_list(self, **_):
        for p in ServicePrincipal.objects.all():
            state = "enabled" if p.enabled else "DISABLED"
            count = services.active_secret_count(p)
            secrets = "" if count is None else f"  secrets={count}"
            origin = f"  {_origin(p)}" if p.self_registered else ""
            self.stdout.write(
                f"{p.name:<16} {state:<9} {p.spiffe_id}  [{p.scopes}]{secrets}{origin}"
            )

    def do_rotate_secret(self, name, grace_hours, **_):
        grace = services.rotation_grace(grace_hours)
        secret = services.rotate_client_secret(name, grace_hours=grace_hours)
        self._print_secret(name, secret)
        self.stdout.write(f"previous secrets stay valid for at most {_duration(grace)}")

    def do_add_key(self, name, expires, **_):
        try:
            from s2s_auth.credentials.apikeys import create_key
        except ImportError as exc:
            raise CommandError(
                "API keys are not available (s2s_auth.credentials.apikeys)."
            ) from exc
        if expires is not None and expires <= 0:
            raise CommandError("--expires must be a positive number of days.")
        key, raw = create_key(services.get_principal(name), expires_days=expires)
        self.stdout.write(f"api key for {name}: {raw}")
        expiry = getattr(key, "expires_at", None)
        self.stdout.write(f"expires: {expiry.isoformat() if expiry else 'never'}")
        self.stdout.write(self.style.WARNING("The key is shown only now; it is stored hashed."))

    def do_revoke_key(self, key_id, **_):
        try:
            from s2s_auth.credentials.apikeys import revoke_key
        except ImportError as exc:
            raise CommandError(
                "API keys are not available (s2s_auth.credentials.apikeys)."
            ) from exc
        count = revoke_key(key_id)
        if not count:
            raise CommandError(f"No active API key {key_id!r}.")
        self.stdout.write(self.style.WARNING(f"revoked {count} key(s)"))

    def do_register_key(self, name, file, jwks_uri, **_):
        from s2s_auth.credentials.certificates import register_jwks_uri, register_key

        if (file is None) == (jwks_uri is None):
            raise CommandError("Give either FILE or --jwks-uri.")
        principal = services.get_principal(name)
        try:
            if jwks_uri is not None:
                register_jwks_uri(principal, jwks_uri)
                self.stdout.write(self.style.SUCCESS(f"{name}: keys from {jwks_uri}"))
                return
            with open(file, "rb") as fh:
                rows = register_key(principal, fh.read(64 * 1024 + 1))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CommandError(f"Not registered: {exc}") from exc
        for row in rows:
            self.stdout.write(self.style.SUCCESS(f"{name}: key {row.kid} registered"))


def _origin(principal) -> str:
    if principal.awaiting_approval:
        return "SELF-REGISTERED, not approved (grant needs --approve-self-registered)"
    return f"self-registered, approved {principal.approved_at:%Y-%m-%d %H:%M} UTC"


def _duration(delta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
