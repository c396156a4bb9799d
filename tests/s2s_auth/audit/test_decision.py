"""``Decision``: the one record type; what it refuses and what it never keeps."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import pytest
from django.test import RequestFactory

from s2s_auth.audit import Decision
from s2s_auth.audit.canonical import HASHED_FIELDS
from s2s_auth.audit.rows import build_row
from s2s_auth.core import jose as tokens
from tests.s2s_auth.audit.helpers import mint

CHAIN_FIELDS = {"chain_id", "seq", "prev_hash"}


def access_token(caller) -> str:
    now = int(time.time())
    claims = {"iss": "https://users.local", "sub": caller.spiffe_id, "scope": "users:read"}
    return tokens.sign({**claims, "iat": now, "exp": now + 600}, caller.key, typ="at+jwt")


def test_an_unknown_field_is_refused():
    with pytest.raises(TypeError, match="signature_bas"):
        Decision(mechanism="mtls", outcome="accepted", signature_bas="typo")


def test_fields_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        Decision("mtls", "accepted")
    decision = Decision(mechanism="mtls", outcome="accepted")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.principal = "spiffe://x/service/evil"


@pytest.mark.parametrize("outcome", ["", "ok", "Accepted", None])
def test_an_outcome_is_accepted_or_refused(outcome):
    with pytest.raises(ValueError, match="outcome"):
        Decision(mechanism="mtls", outcome=outcome)


def test_a_bearer_token_is_kept_as_its_hash_never_raw(caller, caplog):
    token = access_token(caller)
    decision = Decision(mechanism="access_token", outcome="accepted", credential=token)
    assert decision.credential == ""
    assert decision.credential_hash == hashlib.sha256(token.encode()).hexdigest()
    assert "raw" in caplog.text and token not in caplog.text

    row = build_row(RequestFactory().get("/x"), decision)
    assert row["credential"] == ""
    assert row["credential_hash"] == decision.credential_hash
    assert token not in repr(row)


def test_a_given_hash_of_a_bearer_token_is_kept(caller):
    token = access_token(caller)
    decision = Decision(
        mechanism="access_token", outcome="accepted", credential=token, credential_hash="ab" * 32
    )
    assert (decision.credential, decision.credential_hash) == ("", "ab" * 32)


def test_a_self_signed_credential_is_kept_raw_and_not_shown_in_repr(caller):
    token = mint(caller)
    decision = Decision(
        mechanism="service_jwt",
        outcome="accepted",
        credential=token,
        certificate_pem=caller.chain_pem,
    )
    assert decision.credential == token
    assert decision.credential_hash == ""
    assert token not in repr(decision)
    assert "BEGIN CERTIFICATE" not in repr(decision)


def test_every_field_reaches_the_stored_row(caller):
    """A field added to Decision must be stored (and hashed): build_row is the only
    other place that names the fields."""
    decision = Decision(
        mechanism="m",
        outcome="refused",
        reason="r",
        detail="d",
        principal="p",
        end_user="u",
        fingerprint="f" * 64,
        credential="c",
        signature_base="b",
        certificate_pem=caller.chain_pem,
        claims={"k": "v"},
        credential_hash="h" * 64,
    )
    row = build_row(RequestFactory().get("/x"), decision)
    assert set(row) == set(HASHED_FIELDS) - CHAIN_FIELDS
    for field in dataclasses.fields(Decision):
        stored_as = "certificate" if field.name == "certificate_pem" else field.name
        assert stored_as in row, field.name
        assert row[stored_as], field.name
    assert row["fingerprint"] == "f" * 64  # the mechanism's own, not recomputed


def test_claims_without_a_token_are_kept_as_they_are(caller):
    claims = {"sub": caller.spiffe_id, "scope": "a b", "aud": ["x", "eyJ-not-a-token"], "n": 1}
    decision = Decision(mechanism="access_token", outcome="accepted", claims=claims)
    assert decision.claims is claims


def test_a_token_anywhere_in_the_claims_is_kept_as_its_hash(caller):
    token = access_token(caller)
    digest = hashlib.sha256(token.encode()).hexdigest()
    claims = {"n": 1, "deep": [{"k": ["x", f"Bearer {token}"]}], "t": ("a",)}
    decision = Decision(mechanism="access_token", outcome="accepted", claims=claims)
    assert decision.claims == {
        "n": 1,
        "deep": [{"k": ["x", f"Bearer [token sha-256={digest}]"]}],
        "t": ["a"],  # a tuple comes out a list, as it always did
    }
    assert claims["deep"][0]["k"][1] == f"Bearer {token}"  # the caller's dict is not changed


@pytest.mark.parametrize("cls", ["Decision", "ServiceIdentity"])
def test_the_hand_written_init_takes_exactly_the_fields(cls):
    """Decision and ServiceIdentity set their fields in one step (not a frozen
    dataclass's setattr per field): their __init__ must name every field, in order,
    with its default and kind, and nothing else."""
    import inspect

    from s2s_auth.identity import ServiceIdentity

    klass = {"Decision": Decision, "ServiceIdentity": ServiceIdentity}[cls]
    params = list(inspect.signature(klass.__init__).parameters.values())[1:]
    fields = dataclasses.fields(klass)
    assert [p.name for p in params] == [f.name for f in fields]
    for param, field in zip(params, fields, strict=True):
        default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert param.default == default, field.name
        kind = (
            inspect.Parameter.KEYWORD_ONLY
            if field.kw_only
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        assert param.kind == kind, field.name
    values = {f.name: f"value-{f.name}" for f in fields}
    if klass is Decision:
        values["outcome"] = "refused"
    made = klass(**values)
    assert dataclasses.asdict(made) == values
    assert dataclasses.replace(made, mechanism="other").mechanism == "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.mechanism = "changed"
