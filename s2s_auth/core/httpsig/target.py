"""``@target-uri``: the URL a client signs and the one a server rebuilds must agree.

See the package docstring for where scheme, host and path must come from on a server.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["normalised_url", "parse_origin", "target_uri"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.vV%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::([0-9]*))?")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def _encode_uri_part(value: str, safe: str) -> str:
    # Keep existing %XX escapes (a raw path passes through unchanged), escape a lone "%"
    # and everything not allowed in a URI (spaces, controls, non-ASCII as UTF-8).
    return quote(_LONE_PERCENT.sub("%25", value), safe=safe)


def _authority(scheme: str, host: str) -> str:
    match = _HOST_RE.fullmatch(host.strip())
    if match is None:
        raise ValueError(f"invalid host {host!r}")
    name, port = match.group(1).lower(), match.group(2)
    if port is not None and (port == "" or port.lstrip("0") == _DEFAULT_PORTS[scheme]):
        port = None
    return f"{name}:{port}" if port else name


def target_uri(scheme: str, host: str, path: str, query: str = "") -> str:
    """The ``@target-uri`` a server compares a request signature against.

    ``scheme`` and ``host`` (``name[:port]``) must come from trusted configuration when a
    proxy terminates TLS (see the module docstring). ``path`` is preferably the raw path
    as sent (existing ``%XX`` escapes are kept); a decoded path is re-encoded. ``query``
    is the raw query string (``QUERY_STRING``), with or without a leading ``?``; empty
    means none. Scheme and host are lowercased and a default port dropped, matching
    :func:`sign_request`, which signs the URL in the same form.
    """
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r}")
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = query[1:] if query.startswith("?") else query
    uri = f"{scheme}://{_authority(scheme, host)}{_encode_uri_part(path, _PATH_SAFE)}"
    return f"{uri}?{_encode_uri_part(query, _QUERY_SAFE)}" if query else uri


def normalised_url(url: str) -> str:
    """``url`` with scheme/host lowercased and a default port dropped, as the server
    rebuilds it with :func:`target_uri` from its Host (clients omit a default port in
    ``Host``). Only the authority changes; path, query and fragment stay as they are."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    try:
        authority = _authority(scheme, hostport)
    except ValueError:
        return url  # the library will refuse it with a clear error
    netloc = f"{userinfo}@{authority}" if userinfo else authority
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_origin(origin: str) -> tuple[str, str]:
    """``(scheme, authority)`` of ``scheme://host[:port]`` (a trailing ``/`` allowed), in
    the form :func:`target_uri` builds: lowercase, default port dropped, any other port
    kept. ``ValueError`` for anything else (a path, a query, user info, no host)."""
    if not isinstance(origin, str):
        raise ValueError(f"an origin is a string, not {type(origin).__name__}")
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        raise ValueError(f"{origin!r} is not scheme://host[:port] (http or https)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{origin!r} has a path, query or fragment: give the origin only")
    return scheme, _authority(scheme, parts.netloc)
