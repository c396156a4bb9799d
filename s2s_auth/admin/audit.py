"""Read-only Django admin for the audit log: nobody adds, changes or deletes records here.

The list shows no large column and reads no related table (records have no foreign
keys), so it costs a fixed number of queries whatever the page size. The detail page
decodes the stored credential without trusting it and re-verifies it with the stored
certificate.
"""

from __future__ import annotations

import json

from cryptography import x509
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from s2s_auth import audit
from s2s_auth.audit.binding import Binding, check_binding
from s2s_auth.models import AuditAcknowledgement, AuditCheckpoint, AuditRecord

_LARGE_FIELDS = ("certificate", "credential", "signature_base", "claims", "detail")


def _pre(value) -> str:
    if not isinstance(value, str):
        value = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', value)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(_ReadOnlyAdmin):
    list_display = (
        "time",
        "outcome",
        "mechanism",
        "principal",
        "method",
        "path",
        "reason",
        "client_address",
    )
    # reason: token_issued, principal_disabled, scopes_changed, ... (issuer and operators)
    list_filter = ("outcome", "mechanism", "reason", "principal")
    date_hierarchy = "time"
    search_fields = ("principal", "path", "reason", "end_user", "fingerprint", "=chain_id")
    list_select_related = False  # no relations: nothing to join, no per-row query
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "time",
                    "outcome",
                    "reason",
                    "detail",
                    "mechanism",
                    "principal",
                    "end_user",
                    "method",
                    "path",
                    "client_address",
                    "body_digest",
                )
            },
        ),
        (
            "Evidence",
            {
                "fields": (
                    "signature_check",
                    "decoded_credential",
                    "credential",
                    "signature_base_display",
                    "credential_hash",
                    "claims_display",
                    "fingerprint",
                    "certificate_summary",
                    "certificate",
                )
            },
        ),
        ("Chain", {"fields": ("chain_check", "chain_id", "seq", "prev_hash", "hash")}),
    )
    # Every field shown is read-only: the audit log is never edited by hand.
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and (match.url_name or "").endswith("_changelist"):
            queryset = queryset.defer(*_LARGE_FIELDS)
        return queryset

    @admin.display(description="Credential (decoded, not trusted)")
    def decoded_credential(self, obj: AuditRecord) -> str:
        if not obj.credential:
            return "-"
        if obj.signature_base:
            return "RFC 9421 signature: the signature base is shown below."
        decoded = audit.decode_jwt_unverified(obj.credential)
        if decoded is None:
            return "(not a decodable JWT)"
        header, payload = decoded
        return _pre({"header": header, "payload": payload})

    @admin.display(description="Signature base")
    def signature_base_display(self, obj: AuditRecord) -> str:
        return _pre(obj.signature_base) if obj.signature_base else "-"

    @admin.display(description="Claims")
    def claims_display(self, obj: AuditRecord) -> str:
        return _pre(obj.claims) if obj.claims else "-"

    @admin.display(description="Signature still verifies?")
    def signature_check(self, obj: AuditRecord) -> str:
        if not obj.credential:
            return "no self-signed credential stored"
        failure = audit.verify_credential(obj.credential, obj.signature_base, obj.certificate)
        if failure is None and obj.outcome == AuditRecord.ACCEPTED:
            failure = check_binding(audit.row_dict(obj), Binding.from_settings())
        if failure is None and obj.principal and obj.certificate:
            failure = audit.certificate_names(obj.certificate, obj.principal)
        if failure is None:
            return format_html(
                '<strong style="color: green">{}</strong>: {}',
                "yes",
                "verifies with the stored certificate's public key and signed this request",
            )
        return format_html('<strong style="color: #ba2121">no</strong>: {}', failure)

    @admin.display(description="Record hash")
    def chain_check(self, obj: AuditRecord) -> str:
        if audit.compute_hash(audit.row_dict(obj)) == obj.hash:
            return "matches the content (run `s2s_audit verify` to walk the chains)"
        return format_html('<strong style="color: #ba2121">{}</strong>', "does NOT match")

    @admin.display(description="Certificate")
    def certificate_summary(self, obj: AuditRecord) -> str:
        if not obj.certificate:
            return "-"
        try:
            certs = x509.load_pem_x509_certificates(obj.certificate.encode("ascii"))
        except ValueError as exc:
            return f"unreadable: {exc}"
        rows = []
        for cert in certs:
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                uris = ", ".join(san.value.get_values_for_type(x509.UniformResourceIdentifier))
            except x509.ExtensionNotFound:
                uris = ""
            rows.append(
                (
                    cert.subject.rfc4514_string(),
                    uris or "-",
                    cert.issuer.rfc4514_string(),
                    cert.not_valid_before_utc.isoformat(),
                    cert.not_valid_after_utc.isoformat(),
                )
            )
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} (SAN {}), issued by {}, valid {} to {}</li>",
                rows,
            ),
        )


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnlyAdmin):
    list_display = ("chain_id", "seq", "hash", "pruned", "updated_at")
    search_fields = ("=chain_id",)


@admin.register(AuditAcknowledgement)
class AuditAcknowledgementAdmin(_ReadOnlyAdmin):
    """Incidents closed with ``s2s_audit ack`` (who, when, why); written there only."""

    list_display = ("acknowledged_at", "kind", "record_id", "acknowledged_by", "reason")
    list_filter = ("kind",)
    search_fields = ("=record_hash", "=original_hash", "acknowledged_by", "reason")
