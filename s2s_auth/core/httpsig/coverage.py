"""Which covered components satisfy a verifier's required components.

RFC 9421 lets a signer name the request target two ways: ``@target-uri`` whole, or its
parts ``@authority``, ``@path`` and ``@query`` (the ``http-message-signatures`` npm
package and most examples do the latter). Both are rebuilt by the server from its own
origin, so both bind the signature to this service, port included (``@scheme`` is not
among the parts: an origin differing only in scheme is the same target for them).
``content-digest`` protects a body; a request without one has nothing for it to cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["TARGET_URI_PARTS", "missing_components"]

#: Covering all of these is equivalent to covering ``@target-uri`` (and the reverse).
TARGET_URI_PARTS = ("@authority", "@path", "@query")
_PLAIN = frozenset()


def _covered(name: str, covered: frozenset, *, has_body: bool) -> bool:
    if (name, _PLAIN) in covered:
        return True
    if name == "@target-uri":
        return all((part, _PLAIN) in covered for part in TARGET_URI_PARTS)
    if name in TARGET_URI_PARTS:
        return ("@target-uri", _PLAIN) in covered
    return name == "content-digest" and not has_body


def missing_components(
    required: Sequence[tuple[str, tuple[str, frozenset]]],
    covered: Iterable[tuple[str, frozenset]],
    *,
    has_body: bool,
) -> list[str]:
    """The required components (as configured) that ``covered`` does not satisfy.

    ``required`` pairs each configured name with its ``(name, parameters)`` identity;
    ``covered`` holds the identities the signature covers. Beyond an exact match:
    ``@target-uri`` is met by ``@authority`` + ``@path`` + ``@query`` and each of those
    by ``@target-uri``; ``content-digest`` is met by a request without a body.
    """
    covered = frozenset(covered)
    missing = []
    for configured, identity in required:
        if identity in covered:
            continue
        name, params = identity
        if params or not _covered(name, covered, has_body=has_body):
            missing.append(configured)
    return missing
