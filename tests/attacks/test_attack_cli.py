"""``python -m fleamarket attack`` as CI runs it: live UserService, every attack, and the
default configuration (service JWT over mTLS) refusing every one of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import jwt
import pytest

from fleamarket.attacks import forge, output_paths, races
from fleamarket.attacks.catalogue import ATTACK_IDS, ATTACKS, PROFILE_IDS, PROFILES
from fleamarket.attacks.profiles import MECHANISMS
from fleamarket.attacks.races import COPIES
from fleamarket.attacks.report import to_json, to_markdown
from fleamarket.attacks.results import Cell, Probe, Run
from fleamarket.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def _recreate_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="module")
def attack_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack")
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "VAR_DIR": str(tmp / "var"),
        "FLEAMARKET_USERS_PORT": str(free_port()),
        "FLEAMARKET_ADS_PORT": str(free_port()),
    }
    env.pop("S2S_PKI_DIR", None)
    env.pop("S2S_MECHANISMS", None)  # the default configuration is what is attacked
    databases = []
    if env.get("DATABASE_URL", "").startswith("postgres"):
        base = env.pop("DATABASE_URL").rsplit("/", 1)[0]
        for service in ("users", "ads"):
            name = f"attack_{service}_{os.getpid()}"
            env[f"{service.upper()}_DATABASE_URL"] = f"{base}/{name}"
            _recreate_database(base, name)
            databases.append((base, name))
    out = tmp / "out"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fleamarket", "attack", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    seconds = time.monotonic() - started
    yield result, out, seconds
    for base, name in databases:
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_attack_command_passes_and_writes_the_matrix(attack_run):
    result, out, seconds = attack_run
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "every attack refused where it must be" in result.stdout
    assert (out / "threat-matrix.md").is_file()
    assert (out / "threats.json").is_file()
    assert seconds < 150, f"attack took {seconds:.0f} s"


def test_default_configuration_refuses_every_attack(attack_run):
    _, out, _ = attack_run
    data = json.loads((out / "threats.json").read_text())
    assert data["ok"] is True
    assert data["violations"] == []
    default = [c for c in data["cells"] if c["profile"] == "default"]
    assert {c["attack"] for c in default} == set(ATTACK_IDS)
    applicable = [c for c in default if c["outcome"] != "n/a"]
    assert len(applicable) == len(ATTACK_IDS)  # every attack applies to the default
    assert all(c["outcome"] == "refused" for c in applicable), [
        (c["attack"], c["probes"]) for c in applicable if c["outcome"] != "refused"
    ]


def test_matrix_shows_expected_weaknesses_and_the_audit_proof(attack_run):
    _, out, _ = attack_run
    data = json.loads((out / "threats.json").read_text())
    cells = {(c["profile"], c["attack"]): c for c in data["cells"]}
    # trust the network: impersonation is trivially accepted, and that is expected
    assert cells[("network", "impersonate_claim")]["outcome"] == "accepted"
    assert cells[("network", "impersonate_claim")]["expected"] == "accept"
    # a plain bearer token is usable by a thief; a certificate-bound one is not
    assert cells[("access_token", "stolen_replay")]["outcome"] == "accepted"
    bound = cells[("bound_token", "stolen_replay")]
    assert bound["outcome"] == "refused"
    assert bound["probes"][0]["reason"] == "certificate_required"
    # API keys are tested on a server with api_key enabled, not marked n/a
    assert cells[("api_key", "unscoped")]["probes"][0]["reason"] == "insufficient_scope"
    # the audit proof: verified with nothing but the CA certificate
    for profile in ("default", "service_jwt", "http_signature"):
        proof = cells[(profile, "repudiation")]
        assert proof["outcome"] == "refused", proof
        assert proof["probes"][0]["reason"] == "denial_refuted"
    matrix = (out / "threat-matrix.md").read_text()
    assert "EXPECTED" in matrix
    assert "audit proof ✓" in matrix
    for p in PROFILES:
        assert p.title in matrix
    for a in ATTACKS:
        assert a.title in matrix


def test_issue_17_rows_are_refused_for_the_reason_that_matters(attack_run):
    """Each new row refused by the fix it tests, not by some earlier check."""
    _, out, _ = attack_run
    data = json.loads((out / "threats.json").read_text())
    cells = {(c["profile"], c["attack"]): c for c in data["cells"]}

    def reasons(profile, attack):
        cell = cells[(profile, attack)]
        assert cell["outcome"] == "refused", cell
        return [p["reason"] for p in cell["probes"]]

    # 12 copies at once over 2 worker processes: the 11 not accepted are replays.
    for profile, code in (("default", "replayed_jti"), ("http_signature", "replayed_nonce")):
        assert reasons(profile, "replay_workers") == [code] * (COPIES - 1)
    assert reasons("default", "host_confusion") == ["wrong_audience", "bad_signature"]
    assert reasons("http_signature", "host_confusion") == ["bad_signature"]
    assert reasons("default", "registration_squat") == [
        "access_denied",  # closed by default
        "approval_required",  # the operator's add does not hand over the scope
        "invalid_scope",  # so the squatter's password gets no users:read
    ]
    assert reasons("default", "lockout") == ["client_served", "client_served"]
    assert reasons("default", "raw_token_exposure") == ["no_token_stored"] * 2
    assert reasons("default", "forged_checkpoint") == ["verify_heads_failed"]
    for profile in ("default", "service_jwt", "http_signature"):
        assert reasons(profile, "malleated_signature")[1] == "replay_detected"


# -- fast checks of the pieces, no processes ---------------------------------------------


def test_a_malleated_jwt_still_verifies_and_differs():
    key = forge.fresh_key()
    token = forge.service_jwt(key, forge.service_claims("ads"))
    copy = forge.malleate_jwt(token)
    assert copy != token and forge.malleate_jwt(copy) == token
    jwt.decode(copy, key.public_key(), algorithms=["ES256"], options={"verify_aud": False})


def test_copies_at_once_counts_every_acceptance_but_the_victims():
    lab = types.SimpleNamespace(deployment=types.SimpleNamespace(workers=2))
    answers = iter([True, False, False])
    refused = races.copies_at_once(
        lab, lambda label: Probe(label, next(answers), 200, ""), copies=3
    )
    assert [p.accepted for p in refused] == [False, False]
    answers = iter([True, True, False])
    twice = races.copies_at_once(lab, lambda label: Probe(label, next(answers), 200, ""), copies=3)
    assert any(p.accepted for p in twice)


def test_every_profile_has_an_implementation_and_known_attacks():
    assert set(MECHANISMS) == set(PROFILE_IDS)
    for p in PROFILES:
        assert set(p.expected_accept) <= set(ATTACK_IDS), p.id
    assert [p.id for p in PROFILES if p.default] == ["default"]
    assert not next(p for p in PROFILES if p.default).expected_accept


def _run(*cells: Cell) -> Run:
    return Run(list(cells), 1.0, "2025-01-01T00:00:00+00:00")


def test_an_unexpected_acceptance_fails_the_run_and_is_shown():
    ok = Cell("network", "impersonate_claim", "accepted", "accept", [Probe("x", True, 200, "")])
    bad = Cell("default", "alg_none", "accepted", "refuse", [Probe("x", True, 200, "served")])
    broken = Cell("mtls", "rogue_ca", "error", "refuse", note="RuntimeError: boom")
    assert _run(ok).ok
    run = _run(ok, bad, broken)
    assert not run.ok
    assert [f"{c.profile}/{c.attack}" for c in run.violations] == [
        "default/alg_none",
        "mtls/rogue_ca",
    ]
    data = to_json(run)
    assert data["ok"] is False and data["violations"] == ["default/alg_none", "mtls/rogue_ca"]
    assert "**ACCEPTED**" in to_markdown(run)
    assert "FAILED" in to_markdown(run)


def test_output_paths():
    assert output_paths(None) == (
        ROOT / "docs" / "threat-matrix.md",
        ROOT / "bench" / "threats.json",
    )
    assert output_paths("/x") == (Path("/x/threat-matrix.md"), Path("/x/threats.json"))
