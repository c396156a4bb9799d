from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from fleamarket import devdata
from users.people.models import Profile


class Command(BaseCommand):
    help = "Create the demo people (idempotent) and the dev superuser 'admin'."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        today = timezone.localdate()
        created = 0
        # Explicit ids: AdService's seed refers to sellers by the same numbers.
        for user_id, person in enumerate(devdata.people(), start=1):
            user, new = User.objects.get_or_create(
                id=user_id, defaults={"username": person.username}
            )
            if new:
                # seller01 is the demo's end user; the others cannot sign in.
                if person.username == devdata.DEMO_USER:
                    user.set_password(devdata.dev_password(devdata.DEMO_USER))
                else:
                    user.set_unusable_password()
                user.save(update_fields=["password"])
                created += 1
            Profile.objects.update_or_create(
                user=user,
                defaults={
                    "display_name": person.display_name,
                    "city": person.city,
                    "rating": person.rating,
                    "member_since": today - timedelta(days=person.member_since_days_ago),
                },
            )
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [User]):
                cursor.execute(sql)
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", password=devdata.dev_password("admin"))
        self.stdout.write(
            self.style.SUCCESS(f"people: {created} created, {Profile.objects.count()} in total")
        )
