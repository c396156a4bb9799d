"""``UnreadableBodyMiddleware``: a request body that never arrives is the client's fault.

The TLS worker bounds how long a thread waits for a body (``GUNICORN_BODY_TIMEOUT``,
:class:`s2s_auth.tls.gunicorn_admission.BoundedReader`): past the deadline
``wsgi.input.read()`` raises ``TimeoutError``, Django turns it into
:class:`~django.http.UnreadablePostError`, and nothing catches that, so the client got a
500 and the operator a server error for a slow or vanished client. This middleware
answers it as a client error with a reason code instead:

- ``408 body_timeout`` when the body did not arrive in time;
- ``400 body_unreadable`` when the connection broke while it was read.

The response is marked as a handled exception (``response.exception``), so
:class:`~s2s_auth.audit.middleware.AuditMiddleware` rolls the request's transaction back
(an accepted record of a request whose view never ran does not stand). No
``Connection: close`` header (WSGI forbids hop-by-hop headers): gunicorn closes the
connection itself when it cannot read the rest of the body. Put it anywhere in
``MIDDLEWARE``; it only acts on an exception raised by a view.
"""

from __future__ import annotations

from django.http import JsonResponse, UnreadablePostError

__all__ = ["UnreadableBodyMiddleware", "unreadable_body_response"]


def _caused_by_timeout(exc: BaseException) -> bool:
    """Is a ``TimeoutError`` in the chain? ``request.body`` wraps ``request.read()``'s
    ``UnreadablePostError`` in another one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def unreadable_body_response(exc: UnreadablePostError) -> JsonResponse:
    """The 4xx for a body that could not be read (see the module docstring)."""
    if _caused_by_timeout(exc):
        status, error, detail = 408, "body_timeout", "The request body did not arrive in time."
    else:
        status, error, detail = 400, "body_unreadable", "The request body could not be read."
    response = JsonResponse({"error": error, "detail": detail}, status=status)
    response.exception = True
    return response


class UnreadableBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, UnreadablePostError):
            return unreadable_body_response(exception)
        return None
