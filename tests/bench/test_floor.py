"""The crypto floor: every raw operation is really done and timed, and the ceiling
follows from the floor and the transport measured in the same run."""

import pytest

from bench.floor import FLOORS, OPERATIONS, _Handshakes, add_floors, measure
from fleamarket.deployment import ensure_dev_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("floor") / "pki"
    ca = ensure_dev_pki(folder)
    ca.issue("bench", dns_names=("bench", "localhost"))
    return folder


def test_every_operation_is_timed(pki):
    figures = measure(pki, seconds=0.05)
    assert set(figures) == set(OPERATIONS)
    assert all(micros > 0 for micros in figures.values())
    # A handshake costs more than a hash; a full one at least what a resumed one does
    # less the certificates: order only, no timing thresholds.
    assert figures["tls_full_handshake"] > figures["api_key_hash"]
    assert figures["jwt_decode_service"] > figures["sha256_token"]


def test_the_resumed_handshake_really_resumes(pki):
    handshakes = _Handshakes(pki)  # raises when the session was not resumed
    assert handshakes._connect(handshakes.session, check_resumed=True) is True
    assert handshakes._connect(None, check_resumed=True) is False


def test_every_floor_names_known_operations():
    for transport, server_ops, client_ops in FLOORS.values():
        assert set(server_ops) | set(client_ops) <= set(OPERATIONS)
        assert transport


def test_the_ceiling_adds_the_floor_to_the_transport():
    results = {
        "baseline": "plain_http",
        "machine": {"usable_cpus": 2},
        "crypto_floor": {"jwt_decode_service": 150.0, "es256_sign": 50.0},
        "cases": {
            "plain_http": {"rps": 2000.0},
            "mtls_transport": {"rps": 1000.0},
            "service_jwt_mtls": {"rps": 400.0},
            "api_key": {"rps": 500.0},  # api_key_hash not measured: no floor
        },
    }
    add_floors(results)
    entry = results["cases"]["service_jwt_mtls"]
    assert entry["floor_us"] == 200.0
    assert entry["floor_ops"] == ["jwt_decode_service", "es256_sign"]
    # 1 ms of CPU per request on 2 CPUs at 1000/s, plus 0.2 ms of crypto: 2.2 ms.
    assert entry["ceiling_rps"] == pytest.approx(2 / 0.0022)
    assert entry["ceiling_ratio"] == pytest.approx(entry["ceiling_rps"] / 2000)
    assert entry["ceiling_share"] == pytest.approx(400 / entry["ceiling_rps"])
    assert "floor_us" not in results["cases"]["api_key"]
