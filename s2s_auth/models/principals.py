"""Service principals: who may call, with which scopes and credentials."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from s2s_auth.identity import SERVICE_NAME_RE

# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'.
SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def validate_service_name(value: str) -> None:
    if not isinstance(value, str) or not SERVICE_NAME_RE.fullmatch(value):
        raise ValidationError(
            "A service name is 1-63 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit."
        )


def validate_scopes(value: str) -> None:
    bad = [token for token in value.split() if not SCOPE_TOKEN_RE.fullmatch(token)]
    if bad:
        raise ValidationError(f"Not valid scope tokens: {', '.join(bad)}")


class ServicePrincipal(models.Model):
    """A calling service. Starts with no scopes: no scope, no access."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_service_name])
    spiffe_id = models.CharField(
        "SPIFFE ID",
        max_length=255,
        unique=True,
        help_text="spiffe://<trust-domain>/service/<name>: the URI SAN of its certificates "
        "and the iss/sub of the JWTs it signs.",
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled principal is refused by every mechanism."
    )
    scopes = models.CharField(
        max_length=1000,
        blank=True,
        validators=[validate_scopes],
        help_text="Granted scopes, separated by spaces, e.g. 'users:read users:notify'.",
    )
    description = models.CharField(max_length=200, blank=True)
    self_registered = models.BooleanField(
        default=False,
        editable=False,
        help_text="Created by the service itself at the registration endpoint, not by an "
        "operator: anyone could have taken the name.",
    )
    approved_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When an operator approved a self-registered service for scopes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "service principal"

    def __str__(self) -> str:
        return self.name

    @property
    def awaiting_approval(self) -> bool:
        """Self-registered and not approved: no scope may be granted to it yet."""
        return self.self_registered and self.approved_at is None

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def grant(self, *scopes: str) -> None:
        self.scopes = " ".join(sorted(self.scope_set | set(scopes)))
        validate_scopes(self.scopes)

    def revoke(self, *scopes: str) -> None:
        self.scopes = " ".join(sorted(self.scope_set - set(scopes)))


class ServiceCertificate(models.Model):
    """A certificate registered for a principal (fingerprint pinning, JWT key lookup)."""

    principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="certificates"
    )
    fingerprint = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    serial = models.CharField(max_length=64)
    not_after = models.DateTimeField()
    pem = models.TextField(help_text="The certificate (public), PEM.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-not_after"]

    def __str__(self) -> str:
        return f"{self.principal.name} {self.fingerprint[:16]}…"


class ClientKey(models.Model):
    """A public key registered for a principal (``s2s_service register-key``): verifies
    its private_key_jwt client assertions without a certificate. Either one public JWK
    (``jwk``, identified by its RFC 7638 ``thumbprint``) or a ``jwks_uri`` the client
    publishes its keys at."""

    principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="client_keys"
    )
    thumbprint = models.CharField(
        "RFC 7638 thumbprint", max_length=64, unique=True, null=True, blank=True, editable=False
    )
    kid = models.CharField(
        max_length=200, blank=True, help_text="The key's kid (default: its thumbprint)."
    )
    jwk = models.TextField(blank=True, help_text="The public key as a JWK (JSON).")
    jwks_uri = models.URLField(
        "JWKS URI", max_length=500, blank=True, help_text="Or: where the client publishes keys."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "client key"

    def __str__(self) -> str:
        return f"{self.principal.name} {self.kid or self.jwks_uri}"
