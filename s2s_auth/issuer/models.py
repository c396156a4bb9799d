"""The identity service's own rows: client secrets and the signing-key register."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from s2s_auth.models import ServicePrincipal


class ClientSecretQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ClientSecret(models.Model):
    """A client secret of a service principal, stored only as a keyed hash.

    ``algorithm`` says how ``digest`` was made:

    * ``hmac-sha256``: generated 256-bit random secrets. HMAC-SHA256 keyed from
      ``SECRET_KEY`` (``django.utils.crypto.salted_hmac``); fast, which is what a
      token endpoint needs, and enough because the secret itself has 256 bits.
    * ``django``: a password chosen by a registering service (``/register/service``).
      It may have little entropy, so it gets Django's slow password hasher.

    Several secrets may be valid at once (rotation with a grace period).
    """

    HMAC = "hmac-sha256"
    DJANGO = "django"
    ALGORITHMS = [(HMAC, "HMAC-SHA256 (generated secret)"), (DJANGO, "Django password hasher")]

    principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="client_secrets"
    )
    algorithm = models.CharField(max_length=16, choices=ALGORITHMS, default=HMAC)
    digest = models.CharField(max_length=255, help_text="Keyed hash of the secret, never it.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="No longer accepted after this time (rotation)."
    )

    objects = ClientSecretQuerySet.as_manager()

    class Meta:
        ordering = ["principal", "-created_at"]
        indexes = [models.Index(fields=["principal", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.principal.name} {self.hash_prefix}…"

    @property
    def hash_prefix(self) -> str:
        """A short, harmless identifier for humans: the start of the hash."""
        return self.digest.rsplit("$", 1)[-1][:12]

    def is_active(self, now=None) -> bool:
        return self.expires_at is None or self.expires_at > (now or timezone.now())


class SigningKey(models.Model):
    """Register of the issuer's signing keys, for the admin.

    The keys themselves are PEM files under ``SIGNING_KEYS_DIR`` (the source of
    truth); ``s2s_keys`` and the admin's list page copy their public facts here.
    """

    kid = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="When a newer key became current."
    )
    published_until = models.DateTimeField(
        null=True, blank=True, help_text="Kept in the JWKS until its last token expired."
    )
    pruned_at = models.DateTimeField(null=True, blank=True, help_text="Key file deleted.")
    public_jwk = models.JSONField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.kid

    @property
    def status(self) -> str:
        if self.pruned_at:
            return "pruned"
        if self.retired_at is None:
            return "current"
        if self.published_until and self.published_until <= timezone.now():
            return "expired"
        return "retired (published)"
