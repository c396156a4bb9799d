"""API keys: the simple baseline mechanism (DESIGN §3.5).

A key is shown once, as ``<API_KEY_PREFIX>_<key_id>_<secret>``. Only ``key_id`` (public:
it identifies the row, appears in admin and logs) and SHA-256 of the secret are stored.

Why a fast, unsalted hash is right here: the secret is 256 random bits from
``secrets``, so guessing it from the hash is infeasible however fast the hash is;
slow, salted hashes (PBKDF2, Argon2) exist to protect *low-entropy* human passwords
and would add tens of milliseconds to every request. Secrets are unique, so a salt
adds nothing either.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from s2s_auth.models.principals import ServicePrincipal


class APIKey(models.Model):
    principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="api_keys"
    )
    key_id = models.CharField(
        "key id",
        max_length=32,
        unique=True,
        editable=False,
        help_text="The public part of the key, after the prefix. Not a secret.",
    )
    secret_hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the secret, hex."
    )
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated at most once a minute."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.key_id} ({self.principal.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and (now or timezone.now()) >= self.expires_at

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"
