from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from ads.listings.models import Ad
from fleamarket import devdata


class Command(BaseCommand):
    help = "Create the demo ads around a few cities (idempotent) and the dev superuser 'admin'."

    @transaction.atomic
    def handle(self, *args, **options):
        now = timezone.now()
        created = 0
        for number, data in enumerate(devdata.ads(), start=1):
            _, new = Ad.objects.get_or_create(
                id=number,
                defaults={
                    "title": data.title,
                    "description": data.description,
                    "price": data.price,
                    "kind": data.kind,
                    "latitude": data.latitude,
                    "longitude": data.longitude,
                    "seller_id": data.seller_index,
                    "expires_at": now + timedelta(days=data.expires_in_days),
                },
            )
            created += new
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Ad]):
                cursor.execute(sql)
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", password=devdata.dev_password("admin"))
        self.stdout.write(
            self.style.SUCCESS(f"ads: {created} created, {Ad.objects.count()} in total")
        )
