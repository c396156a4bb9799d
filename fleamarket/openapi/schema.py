"""The services' ``AutoSchema``: every operation documents the errors it can answer with
(``{"error": code, "detail": text}``, or DRF's per-field shape for a 400) and says in
its description which credentials it accepts."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from . import library_views, schemes  # noqa: F401 - register the extensions

ERROR = {
    "type": "object",
    "description": "A refusal: a reason code and a text; a 400 for fields maps each "
    "field to its messages instead.",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
ANSWERS = {
    "400": "Bad input: the body or a parameter (reason code, or a message per field).",
    "401": "No usable credential (WWW-Authenticate names the scheme).",
    "403": "A credential was presented and is invalid or not allowed (reason code).",
    "404": "No such object, or not yours to see.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state (reason code).",
    "415": "Unsupported media type.",
    "429": "Too many requests.",
    "503": "A dependency (e.g. the issuer's keys) is unavailable; Retry-After.",
}


#: Answered by the HTTP server (gunicorn) before the application sees the request.
SERVER_ANSWERS = {
    "414": "The request line (URL) is too long.",
    "431": "The request's header fields are too large.",
}


class ServiceAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for status, text in ANSWERS.items():
            responses.setdefault(
                status,
                {"description": text, "content": {"application/json": {"schema": ERROR}}},
            )
        for status, text in SERVER_ANSWERS.items():
            responses.setdefault(status, {"description": text})
        accepted = [name for requirement in self.get_auth() for name in requirement]
        scopes = sorted({s for r in self.get_auth() for v in r.values() for s in v})
        line = "Accepts: " + (", ".join(dict.fromkeys(accepted)) or "anyone")
        if scopes:
            line += f". Scopes: {', '.join(scopes)}"
        if any(not r for r in self.get_auth()) and accepted:
            line += " (or no credential)"
        operation["description"] = (operation.get("description", "") + f"\n\n{line}.").strip()
        return operation
