"""Signing a request (RFC 9421) with a private key: any client, any request object."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

import http_sf
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    PreparedSignature,
)

from s2s_auth.core.httpsig.algorithms import (
    DEFAULT_COMPONENTS,
    SUPPORTED_ALGORITHMS,
    algorithm_for_key,
)
from s2s_auth.core.httpsig.digest import content_digest
from s2s_auth.core.httpsig.errors import SignatureError
from s2s_auth.core.httpsig.target import normalised_url

__all__ = ["sign_request"]

_SIGNATURE_FIELDS = frozenset({"signature-input", "signature"})


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")  # what urllib3 2 sends for a str body
    raise TypeError(
        f"cannot sign a {type(body).__name__} body (streaming/file bodies are not supported); "
        "pass the body as bytes"
    )


def _timestamp(value: int | float | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def _replace_fields(headers: Any, names: frozenset[str]) -> None:
    """Remove every line of these fields, whatever the case of its name."""
    for name in list(headers):
        if name.lower() in names:
            del headers[name]


def _set_signature_fields(headers: Any, prepared: PreparedSignature, signature: bytes) -> None:
    """What ``HTTPMessageSigner.apply()`` writes, without its re-check.

    ``apply()`` rebuilds the whole signature base to catch a message that changed while an
    external signer worked; here the signature was just made in-process from ``prepare()``'s
    base, so that second build would only repeat the first. A Dictionary member is
    ``key=value`` (RFC 8941 §4.1.2): ``prepare()`` has validated the label as a key and
    serialized the inner list; the byte sequence is serialized by ``http_sf``.
    """
    _replace_fields(headers, _SIGNATURE_FIELDS)
    headers["Signature-Input"] = f"{prepared.label}={prepared.signature_params}"
    headers["Signature"] = http_sf.ser({prepared.label: (signature, {})})


def sign_request(
    request: Any,
    *,
    key_id: str,
    private_key: Any,
    components: Sequence[str] = DEFAULT_COMPONENTS,
    label: str = "sig1",
    nonce: bool | str | None = True,
    created: int | dt.datetime | None = None,
    expires: int | dt.datetime | None = None,
    tag: str | None = None,
    include_alg: bool = True,
) -> Any:
    """Sign ``request`` in place (RFC 9421) and return it.

    ``request`` is a ``requests.PreparedRequest`` or any object with ``method`` (upper
    case), ``url`` (encoded, absolute), ``headers`` (mutable mapping) and ``body`` (bytes,
    str (sent as UTF-8) or None). Sets ``Content-Digest`` (sha-256 of the body, also of an
    empty one; an existing one is replaced), ``Signature-Input`` and ``Signature``
    (replacing earlier signatures). A default port in the URL is dropped (the server
    rebuilds ``@target-uri`` from ``Host``, where clients omit it).

    The algorithm follows from the key (:func:`algorithm_for_key`) and is sent as ``alg``
    unless ``include_alg=False``. ``nonce=True`` generates a random nonce, a string is used
    as is, ``False``/``None`` sends none. ``created`` defaults to now (Unix seconds or an
    aware datetime); ``expires`` is optional. ``components`` are names (``"@method"``,
    ``"content-type"``) or serialized component identifiers
    (``'"@query-param";name="id"'``). Raises ``SignatureError`` (``algorithm_not_allowed``
    for an unsupported key, ``malformed_signature`` when the library cannot sign, e.g. a
    covered header is missing) and ``TypeError`` for a streaming body.
    """
    algorithm = algorithm_for_key(private_key)
    body = _body_bytes(request.body)
    request.url = normalised_url(request.url)
    _replace_fields(request.headers, frozenset({"content-digest"}))
    request.headers["Content-Digest"] = content_digest(body)
    if nonce is True:
        nonce_value: str | None = secrets.token_urlsafe(24)
    elif nonce:
        nonce_value = str(nonce)
    else:
        nonce_value = None
    signer = HTTPMessageSigner(signature_algorithm=SUPPORTED_ALGORITHMS[algorithm])
    try:
        prepared = signer.prepare(
            request,
            key_id=key_id,
            created=_timestamp(created) or dt.datetime.now(dt.UTC),
            expires=_timestamp(expires),
            nonce=nonce_value,
            label=label,
            tag=tag,
            include_alg=include_alg,
            covered_component_ids=tuple(components),
            use_existing_digest=True,  # ours, just computed from the body
        )
    except HTTPMessageSignaturesException as exc:
        raise SignatureError("malformed_signature", f"cannot sign: {exc}", key_id=key_id) from exc
    signature = SUPPORTED_ALGORITHMS[algorithm](private_key=private_key).sign(
        prepared.signature_base
    )
    _set_signature_fields(request.headers, prepared, signature)
    return request
