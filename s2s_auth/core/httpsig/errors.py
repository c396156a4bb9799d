"""The reason codes of HTTP signature checks and their one exception."""

from __future__ import annotations

from s2s_auth.errors import S2SError

__all__ = ["REASON_CODES", "SignatureError"]

REASON_CODES = frozenset(
    {
        "missing_signature",  # no Signature-Input / Signature header (or no label in it)
        "malformed_signature",  # not parseable, wrong member types, unknown parameters
        "unknown_key",  # keyid not known to resolve_key
        "algorithm_not_allowed",  # alg param / key type not in the allow-list or inconsistent
        "missing_component",  # a required component is not covered
        "bad_signature",  # the signature does not verify over this message
        "digest_mismatch",  # Content-Digest does not match the body (or is malformed)
        "missing_digest",  # Content-Digest absent, or no supported algorithm in it
        "created_missing",  # no ``created`` parameter
        "created_in_future",  # created > now + clock_skew
        "signature_too_old",  # created < now - max_age - clock_skew
        "expired",  # expires < now - clock_skew
        "replayed_nonce",  # nonce already seen for this keyid
        "missing_nonce",  # require_nonce and no ``nonce`` parameter
        "replayed_signature",  # no nonce, and this signature value was already accepted
    }
)


class SignatureError(S2SError):
    """Every HTTP signature failure: a reason ``code`` (see :data:`REASON_CODES`) and a
    human-readable ``detail``. Library errors are chained (``__cause__``). ``key_id`` and
    ``label`` are set when known, for the audit entry."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        key_id: str | None = None,
        label: str | None = None,
    ):
        if code not in REASON_CODES:  # a typo here would silently change an audit reason
            raise ValueError(f"unknown SignatureError code {code!r}")
        super().__init__(code, detail or code.replace("_", " "))
        self.key_id = key_id
        self.label = label
