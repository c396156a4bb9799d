"""The services' request body parsers: DRF's, bounded, so no body is ever a 500.

DRF's ``JSONParser`` lets three hostile bodies through to a 500: JSON nested deeper
than the recursion limit (``RecursionError``), a lone surrogate (``"\\ud800"`` parses,
then fails wherever it is encoded: a database, a rendered error echoing the value),
and a body of any size. :class:`BoundedJSONParser` keeps DRF's parsing and turns each
into a 400 ``ParseError`` with a reason code (``too_deep``, ``invalid_encoding``,
``body_too_large``, ``malformed_json``). Set in ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``
by ``fleamarket.settings``, so every view of both services uses it.
"""

from __future__ import annotations

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

__all__ = ["MAX_DEPTH", "BoundedJSONParser", "check_json_value"]

#: Deepest nesting accepted: the services' bodies are flat objects.
MAX_DEPTH = 32


def check_json_value(value, max_depth: int = MAX_DEPTH) -> None:
    """ParseError when ``value`` nests deeper than ``max_depth`` or holds a string
    (a key or a value) that is not valid Unicode. Iterative: no recursion to exhaust."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise ParseError(
                    f"The JSON is nested more than {max_depth} levels deep.", code="too_deep"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("The JSON holds a lone surrogate.", code="invalid_encoding") from None


class BoundedJSONParser(JSONParser):
    """``application/json`` of at most :attr:`max_bytes` UTF-8 bytes, nested at most
    :data:`MAX_DEPTH` levels, every string valid Unicode."""

    max_bytes = 65536

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(self.max_bytes + 1) if stream is not None else b""
        if len(raw) > self.max_bytes:
            raise ParseError(f"The body is larger than {self.max_bytes} bytes.", "body_too_large")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8.", code="invalid_encoding") from None
        context = {**(parser_context or {}), "encoding": "utf-8"}  # RFC 8259 §8.1
        try:
            data = super().parse(io.BytesIO(raw), media_type, context)
        except RecursionError:
            raise ParseError("The JSON is nested too deeply.", code="too_deep") from None
        except ParseError as exc:
            raise ParseError("The body is not valid JSON.", code="malformed_json") from exc
        check_json_value(data)
        return data
