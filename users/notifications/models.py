from django.conf import settings
from django.db import models


class Notification(models.Model):
    """A message for a user, sent by a service.

    ``sender`` is the SPIFFE ID of the authenticated caller and ``on_behalf_of`` the
    end user whose verified token it forwarded (never taken from the body).
    ``idempotency_key`` is the caller's ``Idempotency-Key``: unique per sender, so a
    repeated request (a retry, a re-run of a batch) finds the notification it already
    created instead of making a second one. ``request_digest`` (SHA-256 of
    the user id and the body) tells a repeat from a different request reusing the key.
    """

    class Kind(models.TextChoices):
        AD_EXPIRED = "ad_expired", "Ad expired"
        MESSAGE = "message", "Message"
        # About a deal (AdService): sent on behalf of the user who acted.
        DEAL_REQUESTED = "deal_requested", "Deal requested"
        DEAL_ACCEPTED = "deal_accepted", "Deal accepted"
        DEAL_DECLINED = "deal_declined", "Deal declined"
        DEAL_CANCELLED = "deal_cancelled", "Deal cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField(max_length=2000)
    ad_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The ad in AdService it is about, if any."
    )
    sender = models.CharField(max_length=255, help_text="SPIFFE ID of the service that sent it.")
    on_behalf_of = models.CharField(
        max_length=255,
        blank=True,
        help_text="The end user the service acted for (verified nested token); empty: none.",
    )
    idempotency_key = models.CharField(
        max_length=255, blank=True, help_text="The sender's Idempotency-Key; empty: none."
    )
    request_digest = models.CharField(max_length=64, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            # A request without a key is never deduplicated.
            models.UniqueConstraint(
                fields=["sender", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="notification_sender_idempotency_key",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created"], name="notification_user_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user_id}"
