"""Client certificates passed on by a TLS-terminating proxy, and when to believe them.

A proxy header is only evidence when the TCP peer *is* that proxy: the address
must be in ``TRUSTED_PROXIES``. From anyone else it is ignored, however it looks.
Formats: nginx's ``$ssl_client_escaped_cert`` (URL-escaped PEM) and Envoy's
``X-Forwarded-Client-Cert`` (``Key=value;...`` elements, one per proxy hop, with
``Cert``/``Chain`` URL-escaped PEM).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import unquote

from s2s_auth.errors import S2SError

MAX_HEADER_BYTES = 32 * 1024


class ProxyHeaderError(S2SError, ValueError):
    """The header came from a trusted proxy but cannot be read (``malformed_proxy_header``)."""

    def __init__(self, detail: str):
        super().__init__("malformed_proxy_header", detail)


@lru_cache(maxsize=32)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def is_trusted_proxy(remote_addr: str | None, trusted: list[str] | tuple[str, ...]) -> bool:
    if not remote_addr or not trusted:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(trusted)))


def pem_from_nginx(value: str) -> str:
    if len(value) > MAX_HEADER_BYTES:
        raise ProxyHeaderError("client certificate header too large")
    pem = unquote(value)
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ProxyHeaderError("client certificate header holds no PEM certificate")
    return pem


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ProxyHeaderError("unbalanced quotes in X-Forwarded-Client-Cert")
    parts.append("".join(current))
    return parts


def parse_xfcc(value: str) -> list[dict[str, str]]:
    """All elements of an XFCC header, in order (the last was added by the nearest proxy)."""
    if len(value) > MAX_HEADER_BYTES:
        raise ProxyHeaderError("X-Forwarded-Client-Cert too large")
    elements = []
    for raw_element in _split_outside_quotes(value, ","):
        element: dict[str, str] = {}
        for pair in _split_outside_quotes(raw_element, ";"):
            if not pair.strip():
                continue
            key, sep, val = pair.partition("=")
            if not sep:
                raise ProxyHeaderError(f"X-Forwarded-Client-Cert pair without '=': {pair[:40]!r}")
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1].replace('\\"', '"')
            element[key.strip().lower()] = val
        elements.append(element)
    return elements


def pem_from_xfcc(value: str) -> str:
    """The client chain (PEM) from the element the nearest (trusted) proxy added."""
    element = parse_xfcc(value)[-1]
    pem = unquote(element.get("chain") or element.get("cert") or "")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ProxyHeaderError("X-Forwarded-Client-Cert has no Cert or Chain")
    return pem
