"""Request bodies that broke DRF's JSONParser (issue 17, item 8), with the reason code
each must get instead of a 500. Shared by the ads and users suites."""

DEEP_ARRAY = ("[" * 7000 + "]" * 7000).encode()
DEEP_OBJECT = ('{"a":' * 7000 + "1" + "}" * 7000).encode()
AD = '"title": "Lamp", "price": "1.00", "latitude": 1, "longitude": 1'

#: name -> (body, reason code)
HOSTILE_BODIES = {
    "7000 deep": (DEEP_ARRAY, "too_deep"),
    "7000 deep object": (DEEP_OBJECT, "too_deep"),
    "40 deep": (("[" * 40 + "]" * 40).encode(), "too_deep"),
    "lone surrogate in a choice": (
        ('{"kind": "\\ud800", ' + AD + "}").encode(),
        "invalid_encoding",
    ),
    "lone surrogate in a key": (('{"\\udfff": 1, ' + AD + "}").encode(), "invalid_encoding"),
    "lone surrogate in a message": (
        b'{"kind": "message", "message": "\\ud800"}',
        "invalid_encoding",
    ),
    "not UTF-8": (b'{"title": "\xff"}', "invalid_encoding"),
    "truncated": (b'{"title": ', "malformed_json"),
    "too large": (b'{"description": "' + b"x" * 70000 + b'"}', "body_too_large"),
}
