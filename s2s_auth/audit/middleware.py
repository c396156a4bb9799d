"""``AuditMiddleware``: the audit record of a request follows the request's transaction.

For a view protected by s2s_auth (a DRF view whose authentication classes include a
:class:`~s2s_auth.mechanisms.base.ServiceAuthentication` subclass) it, for a request
that may change state (not GET, HEAD or OPTIONS: those run without a transaction and
their records are written after the view, the accepted one only if the view succeeded),

1. wraps the rest of the request in ``transaction.atomic()`` on the audit database —
   from the moment Django has resolved the view (``process_view``: the URL is resolved
   once, by Django) to the end of the inner middleware's response phase — so the
   "accepted" record written while authenticating commits with the view's own writes,
   or not at all. The block is rolled back when the view raised (a 500), returned a
   5xx, or DRF handled an exception (``response.exception``) — what DRF does under
   ``ATOMIC_REQUESTS``;
2. collects refusals on the request instead of writing them in that transaction (DRF
   marks it for rollback when it handles the authentication error), and writes them
   after the block has ended;
3. writes a refusal for a 401/403 that no mechanism recorded, e.g. DRF's
   ``NotAuthenticated`` for a request without any credential (mechanism ``none``,
   reason ``not_authenticated``), or a permission refusal after a rolled-back
   acceptance (the mechanism and principal of ``request.user``, the reason from the
   response's ``error`` code).

It works with ``ATOMIC_REQUESTS`` on: Django's per-view atomic block then runs inside
this one, as a savepoint. Put it before any middleware whose database writes (in the
response phase, or in ``process_view``) should not be part of the request's
transaction; other views are passed through untouched. The records it stores after
the view go through :func:`s2s_auth.audit.writer.store` (the writer thread, unless
``AUDIT_WRITE = "sync"``).
"""

from __future__ import annotations

import functools
import sys

from django.db import router, transaction

from s2s_auth import metrics
from s2s_auth.audit import chain, writer
from s2s_auth.audit.decision import ACCEPTED, REFUSED, Decision
from s2s_auth.audit.events import DEFER_ACCEPTED_ATTR, PENDING_ATTR, WRITTEN_ATTR
from s2s_auth.audit.rows import build_row
from s2s_auth.conf import s2s_settings

__all__ = ["AuditMiddleware", "is_s2s_view"]

#: Requests that must not change state (RFC 9110 §9.2.1): run without a transaction.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@functools.lru_cache(maxsize=1024)
def is_s2s_view(view_func) -> bool:
    """Does this view (as resolved from a URL) authenticate with s2s_auth mechanisms?

    Yes for a class with ``s2s_audit = True`` (``False`` opts out), a
    :class:`s2s_auth.views.ServiceAPIView`, and a DRF view whose
    ``authentication_classes`` include a ``ServiceAuthentication`` subclass. Asked per
    request, answered once per view function (a class's answer does not change).
    """
    from s2s_auth.mechanisms.base import ServiceAuthentication

    cls = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    if cls is None:
        return False
    explicit = getattr(cls, "s2s_audit", None)
    if explicit is not None:
        return bool(explicit)
    from s2s_auth.views import ServiceAPIView

    if isinstance(cls, type) and issubclass(cls, ServiceAPIView):
        return True
    initkwargs = getattr(view_func, "initkwargs", None) or {}
    classes = initkwargs.get("authentication_classes") or getattr(cls, "authentication_classes", ())
    return any(isinstance(c, type) and issubclass(c, ServiceAuthentication) for c in classes)


@functools.cache
def _audit_model() -> type:
    """``AuditRecord``, imported once (the models cannot be imported with this module,
    and an import statement costs every request a lookup through the import system)."""
    from s2s_auth.models import AuditRecord

    return AuditRecord


def _refusal_from_response(response) -> Decision:
    """The refusal for a 401/403 that no mechanism recorded."""
    drf_request = (getattr(response, "renderer_context", None) or {}).get("request")
    user = getattr(drf_request, "_user", None) if drf_request is not None else None
    data = getattr(response, "data", None)
    reason = ""
    detail = ""
    if isinstance(data, dict):
        error = data.get("error")
        raw_detail = data.get("detail", "")
        if isinstance(error, str):
            reason = error
        elif hasattr(raw_detail, "code") and isinstance(raw_detail.code, str):
            reason = raw_detail.code
        detail = str(raw_detail)
    if not reason:
        reason = "not_authenticated" if response.status_code == 401 else "permission_denied"
    if not getattr(user, "is_service", False):
        return Decision(mechanism="none", outcome=REFUSED, reason=reason, detail=detail)
    end_user = getattr(user, "end_user", None)
    return Decision(
        mechanism=getattr(user, "mechanism", "") or "none",
        outcome=REFUSED,
        reason=reason,
        detail=detail,
        principal=getattr(user, "spiffe_id", ""),
        end_user=getattr(end_user, "id", "") if end_user else "",
    )


class _Audit:
    """What :meth:`AuditMiddleware.process_view` set up for one s2s request."""

    __slots__ = ("alias", "atomic", "pending", "written")

    def __init__(self, alias: str, atomic, pending: list, written: list):
        self.alias, self.atomic, self.pending, self.written = alias, atomic, pending, written


_AUDIT_ATTR = "_s2s_audit_state"


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not s2s_settings().AUDIT_ENABLED:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException:
            audit = getattr(request, _AUDIT_ATTR, None)
            if audit is not None and audit.atomic is not None:
                audit.atomic.__exit__(*sys.exc_info())  # rolled back
            raise
        audit = getattr(request, _AUDIT_ATTR, None)
        if audit is None:  # not an s2s view, or not resolved at all
            return response
        if audit.atomic is not None:
            try:
                if _failed(response):
                    transaction.set_rollback(True, using=audit.alias)
            finally:
                audit.atomic.__exit__(None, None, None)
        # No more deferral: anything recorded from here on is stored at once.
        setattr(request, PENDING_ATTR, None)
        setattr(request, DEFER_ACCEPTED_ATTR, False)
        if audit.atomic is None:
            rows, unrecorded = _read_only_rows(audit.pending, response)
        else:
            rows = audit.pending
            unrecorded = not rows and not chain.survived(audit.written, audit.alias)
        if unrecorded and response.status_code in (401, 403):
            refusal = _refusal_from_response(response)
            metrics.decision(refusal.mechanism, REFUSED, refusal.reason, None)
            rows.append(build_row(request, refusal))
        for row in rows:
            writer.store(row)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        """Django has resolved the URL (once, for everyone): for an s2s view, collect the
        request's records and, when it may change state, open its transaction."""
        if not s2s_settings().AUDIT_ENABLED or not is_s2s_view(view_func):
            return None
        alias = router.db_for_write(_audit_model())
        pending: list[dict] = []
        written: list = []
        setattr(request, PENDING_ATTR, pending)
        setattr(request, WRITTEN_ATTR, written)
        atomic = None
        if request.method in READ_ONLY_METHODS:
            # No writes of its own to share a transaction with: the view runs without
            # one (on SQLite an open write transaction would hold the database lock for
            # the whole request), and its records are stored after it.
            setattr(request, DEFER_ACCEPTED_ATTR, True)
        else:
            atomic = transaction.atomic(using=alias)
            atomic.__enter__()
        setattr(request, _AUDIT_ATTR, _Audit(alias, atomic, pending, written))
        return None


def _read_only_rows(pending: list[dict], response) -> tuple[list[dict], bool]:
    """The rows of a read-only request: its refusals, and its acceptance only if the
    view did not fail; and whether nothing was recorded at all."""
    if len(pending) == 1 and pending[0]["outcome"] == ACCEPTED and not _failed(response):
        return [pending[0]], False  # (every successful call: one acceptance, kept)
    refused = [row for row in pending if row["outcome"] != ACCEPTED]
    accepted = [] if _failed(response) else [r for r in pending if r["outcome"] == ACCEPTED]
    return refused + accepted, not refused and not accepted


def _failed(response) -> bool:
    """A 5xx, or an exception DRF handled: the view's work does not stand."""
    return response.status_code >= 500 or bool(getattr(response, "exception", False))
