"""DRF's JSON and form parsers, bounded for endpoints any anonymous caller can reach.

What they add to DRF's: a size cap read from the stream (DRF reads the whole body),
UTF-8 always (RFC 8259 §8.1; a ``charset`` parameter cannot pick another codec), and
every way a hostile body can break the standard library turned into a
:class:`~rest_framework.exceptions.ParseError` with a reason code: nesting deep
enough to exhaust the recursion limit, a lone surrogate (``"\\ud800"`` decodes to a
string that cannot be encoded again), too many form fields.
"""

from __future__ import annotations

import io
import json

from django.core.exceptions import TooManyFieldsSent
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser

__all__ = ["BoundedFormParser", "BoundedJSONParser", "read_bounded"]


def read_bounded(stream, limit: int) -> bytes:
    """The body, or ParseError(``body_too_large``) when it has more than ``limit`` bytes."""
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise ParseError(f"The body is larger than {limit} bytes.", code="body_too_large")
    return raw


def _utf8_context(parser_context) -> dict:
    return {**(parser_context or {}), "encoding": "utf-8"}


class BoundedJSONParser(JSONParser):
    """``application/json`` up to :attr:`max_bytes`, a value that can be encoded again."""

    max_bytes = 16384

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_bounded(stream, self.max_bytes)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8.", code="invalid_encoding") from None
        try:
            data = super().parse(io.BytesIO(raw), media_type, _utf8_context(parser_context))
            # A lone surrogate ("\ud800") parses, but fails wherever it is encoded later.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ParseError("The JSON is nested too deeply.", code="too_deep") from None
        except UnicodeEncodeError:
            raise ParseError("The JSON holds a lone surrogate.", code="invalid_encoding") from None
        except ParseError as exc:
            raise ParseError("The body is not valid JSON.", code="malformed_json") from exc
        return data


class BoundedFormParser(FormParser):
    """``application/x-www-form-urlencoded`` up to :attr:`max_bytes`."""

    #: A client assertion carrying an x5c chain is a few kilobytes.
    max_bytes = 65536

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_bounded(stream, self.max_bytes)
        try:
            return super().parse(io.BytesIO(raw), media_type, _utf8_context(parser_context))
        except TooManyFieldsSent:
            raise ParseError("The form has too many fields.", code="too_many_fields") from None
