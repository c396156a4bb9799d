from django.core.management.base import BaseCommand, CommandError

from s2s_auth import services
from s2s_auth.models import ServicePrincipal


class Command(BaseCommand):
    help = "Manage service principals: add, grant, revoke, disable, enable, list."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Register a service (no scopes unless given).")
        add.add_argument("name")
        add.add_argument("--scope", action="append", default=[], dest="scopes")
        for action in ("grant", "revoke"):
            p = sub.add_parser(action, help=f"{action.title()} scopes.")
            p.add_argument("name")
            p.add_argument("scopes", nargs="+")
        for action in ("disable", "enable"):
            sub.add_parser(action, help=f"{action.title()} a service.").add_argument("name")
        sub.add_parser("list", help="List principals with their scopes.")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except services.PrincipalError as exc:
            raise CommandError(str(exc)) from exc

    def do_add(self, name, scopes, **_):
        principal, created = services.ensure_principal(name, scopes)
        verb = "registered" if created else "already registered"
        self.stdout.write(self.style.SUCCESS(f"{principal.name} {verb}: {principal.spiffe_id}"))
        self.stdout.write(f"scopes: {principal.scopes or '(none)'}")

    def do_grant(self, name, scopes, **_):
        principal = services.set_scopes(name, grant=scopes)
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
            self.stdout.write(f"{p.name:<16} {state:<9} {p.spiffe_id}  [{p.scopes}]")
