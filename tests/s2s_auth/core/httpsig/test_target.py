"""``@target-uri`` as a server rebuilds it (s2s_auth.core.httpsig.target)."""

from __future__ import annotations

import pytest

from s2s_auth.core.httpsig import (
    parse_origin,
    target_uri,
)

# --------------------------------------------------------------------------- target URI


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("https", "users.local", "/a", ""), "https://users.local/a"),
        (("HTTPS", "Users.Local:443", "/a", "x=1"), "https://users.local/a?x=1"),
        (("http", "h:80", "", "?x=1"), "http://h/?x=1"),
        (("https", "h:8001", "/a%2Fb", ""), "https://h:8001/a%2Fb"),
        (("https", "h", "/caf\u00e9 x", "q=a b"), "https://h/caf%C3%A9%20x?q=a%20b"),
        (("https", "h", "/100%", ""), "https://h/100%25"),
        (("https", "[::1]:8001", "/p", "a=%20&b"), "https://[::1]:8001/p?a=%20&b"),
    ],
)
def test_target_uri(args, expected):
    assert target_uri(*args) == expected


@pytest.mark.parametrize(
    "args", [("ftp", "h", "/", ""), ("https", "h/x", "/", ""), ("https", "a@b", "/", "")]
)
def test_target_uri_refuses(args):
    with pytest.raises(ValueError):
        target_uri(*args)


# ------------------------------------------------------------------------------ origins


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://users.local", ("https", "users.local")),
        ("HTTPS://Users.Local:443/", ("https", "users.local")),
        ("https://127.0.0.1:8001", ("https", "127.0.0.1:8001")),
        ("http://h:80", ("http", "h")),
        ("https://[::1]:8002", ("https", "[::1]:8002")),
    ],
)
def test_parse_origin(origin, expected):
    assert parse_origin(origin) == expected
    assert target_uri(*expected, "/a", "") == f"{expected[0]}://{expected[1]}/a"


@pytest.mark.parametrize(
    "origin",
    [
        "users.local",
        "127.0.0.1:8001",
        "ftp://h",
        "https://",
        "https://h/api",
        "https://h?x=1",
        "https://h#f",
        "https://u@h",
        "https://h:80x",
        None,
        ["https://h"],
    ],
)
def test_parse_origin_refuses(origin):
    with pytest.raises(ValueError):
        parse_origin(origin)
