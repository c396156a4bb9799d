from datetime import timedelta
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

AD_LIFETIME = timedelta(days=30)


def default_expiry():
    return timezone.now() + AD_LIFETIME


class Ad(models.Model):
    class Kind(models.TextChoices):
        SELL = "sell", "Sell"
        RENT = "rent", "Rent"
        SWAP = "swap", "Swap"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RESERVED = "reserved", "Reserved"
        SOLD = "sold", "Sold"
        EXPIRED = "expired", "Expired"

    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code such as EUR.")],
    )
    kind = models.CharField(max_length=4, choices=Kind.choices, default=Kind.SELL)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    # The seller's user id in UserService: another database, so no foreign key.
    seller_id = models.PositiveBigIntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(default=default_expiry)
    # Set by the nightly job (ads.jobs) when it expires the ad; the seller's notice is
    # then pending until ``expiry_notified_at`` (delivered to UserService, or given up
    # because the seller no longer exists there).
    expired_at = models.DateTimeField(null=True, blank=True, editable=False)
    expiry_notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The seller's preview as UserService last gave it (ads.jobs refreshes it): what
    # ads can still show when UserService cannot answer. None: not fetched (yet).
    seller_preview = models.JSONField(null=True, blank=True, editable=False)
    seller_preview_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "latitude", "longitude"]),
            models.Index(fields=["status", "expires_at"], name="listings_ad_status_expiry"),
        ]

    def __str__(self) -> str:
        return self.title


class Deal(models.Model):
    """A buyer's request for an ad: reserve it (a sale), rent it for a period, or swap
    one of their own ads for it. The seller accepts or declines; the buyer may cancel
    while it is pending. Buyer and seller are UserService user ids, taken from
    verified tokens (the seller's copied from the ad when the deal is made)."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserve (buy)"
        RENT = "rent", "Rent"
        SWAP = "swap", "Swap"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    ad = models.ForeignKey(Ad, on_delete=models.PROTECT, related_name="deals")
    kind = models.CharField(max_length=7, choices=Kind.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    buyer_id = models.PositiveBigIntegerField(db_index=True)
    seller_id = models.PositiveBigIntegerField(db_index=True)
    offered_ad = models.ForeignKey(
        Ad, on_delete=models.PROTECT, null=True, blank=True, related_name="offered_in"
    )
    rent_from = models.DateField(null=True, blank=True)
    rent_until = models.DateField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # When UserService took the notice for the other party (None: not delivered).
    seller_notified_at = models.DateTimeField(null=True, blank=True)
    buyer_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ad", "status"], name="listings_deal_ad_status")]

    def __str__(self) -> str:
        return f"{self.kind} of ad {self.ad_id} by {self.buyer_id}: {self.status}"


class DealEvent(models.Model):
    """One state change of a deal and who made it: the deal's history, beside the
    audit log's record of the authenticated request that made it."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="events")
    actor_id = models.PositiveBigIntegerField()
    action = models.CharField(max_length=16)
    from_status = models.CharField(max_length=9, blank=True)
    to_status = models.CharField(max_length=9)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"deal {self.deal_id} {self.action} by {self.actor_id}"
