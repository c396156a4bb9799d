from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from s2s_auth.issuer.keys import key_store, retention, sync_registry
from s2s_auth.management.subcommands import accept_global_options


class Command(BaseCommand):
    help = "Manage the identity service's signing keys: rotate, prune, list."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        rotate = sub.add_parser("rotate", help="Make a new key current (old ones stay published).")
        rotate.add_argument(
            "--prune", action="store_true", help="Also delete keys whose tokens have expired."
        )
        sub.add_parser("prune", help="Delete retired keys whose last token has expired.")
        sub.add_parser("list", help="List keys: kid, created, status.")
        accept_global_options(sub)

    def handle(self, *args, action, **options):
        store = key_store()
        try:
            getattr(self, f"do_{action}")(store, **options)
        except OSError as exc:
            raise CommandError(f"{store.directory}: {exc}") from exc
        try:
            sync_registry(store)
        except DatabaseError as exc:  # the keys are files; the register is a convenience
            self.stderr.write(self.style.WARNING(f"key register not updated: {exc}"))

    def do_rotate(self, store, prune=False, **_):
        before = store.ring(create=False).keys
        key = store.rotate()
        self.stdout.write(self.style.SUCCESS(f"current key: {key.kid}"))
        if before:
            self.stdout.write(
                f"previous keys stay in the JWKS for {int(retention().total_seconds())} s"
            )
        if prune:
            self.do_prune(store)

    def do_prune(self, store, **_):
        pruned = store.prune()
        for key in pruned:
            self.stdout.write(self.style.WARNING(f"pruned {key.kid}"))
        if not pruned:
            self.stdout.write("nothing to prune")

    def do_list(self, store, **_):
        import datetime as dt

        ring = store.ring(create=False)
        if not ring.keys:
            self.stdout.write(f"no keys in {store.directory} (one is made on first use)")
            return
        now = dt.datetime.now(dt.UTC)
        window = retention()
        for key in reversed(ring.keys):
            until = ring.published_until(key, window)
            if until is None:
                status = "current"
            elif until > now:
                status = f"retired, published until {until:%Y-%m-%dT%H:%M:%SZ}"
            else:
                status = "expired (prune)"
            self.stdout.write(f"{key.kid}  created {key.created:%Y-%m-%dT%H:%M:%SZ}  {status}")
