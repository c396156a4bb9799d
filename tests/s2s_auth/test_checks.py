"""s2s_auth's system checks: a misconfiguration fails ``manage.py check``."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.s2s_auth import settings as test_settings

AUDIT = "s2s_auth.audit.middleware.AuditMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


@pytest.fixture
def pki_dir(ca):
    return str(ca.directory)


def ids(**s2s) -> set[str]:
    """The s2s_auth check ids raised with ``S2S_AUTH = s2s``."""
    with override_settings(S2S_AUTH=s2s):
        return {m.id for m in run_checks(tags=["s2s_auth"]) if m.id.startswith("s2s_auth.")}


ORIGIN = "https://users.example.test:8001"


def good(pki_dir, **extra) -> dict:
    return {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "example.test",
        "PKI_DIR": pki_dir,
        "HTTPSIG_ORIGIN": ORIGIN,
        **extra,
    }


def test_the_test_project_is_clean(pki_dir):
    assert ids(**good(pki_dir)) == set()
    # Nothing set: the default mechanisms need a CA, which is not there yet.
    assert ids(PKI_DIR=pki_dir, HTTPSIG_ORIGIN=ORIGIN) == set()


def test_defaults_without_a_ca_only_warn(tmp_path):
    with override_settings(BASE_DIR=tmp_path):
        assert ids(HTTPSIG_ORIGIN=ORIGIN) == {"s2s_auth.W004"}


def test_unknown_key(pki_dir):
    assert ids(**good(pki_dir, TRUST_DOMIAN="x")) == {"s2s_auth.E001"}


def test_not_a_dict():
    with override_settings(S2S_AUTH=["SERVICE_NAME"]):
        errors = [m for m in run_checks(tags=["s2s_auth"]) if m.is_serious()]
    assert [m.id for m in errors] == ["s2s_auth.E001"]


@pytest.mark.parametrize(
    "mechanisms",
    [["mtls", "kerberos"], ["tests.s2s_auth.views.NoSuchClass"], ["os.path"], "mtls"],
)
def test_unresolvable_mechanisms(pki_dir, mechanisms):
    assert ids(**good(pki_dir, MECHANISMS=mechanisms)) == {"s2s_auth.E002"}


def test_third_party_mechanism_passes(pki_dir):
    path = "tests.s2s_auth.views.PartnerAuthentication"
    assert ids(**good(pki_dir, MECHANISMS=["mtls", path])) == set()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JWT_ALGORITHMS", ["ES256", "none"]),
        ("JWT_ALGORITHMS", ["HS256"]),
        ("JWT_ALGORITHMS", ["ES512"]),
        ("JWT_ALGORITHMS", []),
        ("HTTPSIG_ALGORITHMS", ["hmac-sha256"]),
    ],
)
def test_algorithms_outside_the_allow_list(pki_dir, name, value):
    assert ids(**good(pki_dir, **{name: value})) == {"s2s_auth.E003"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDIT_WRITE", "batched"),
        ("AUDIT_WRITE", None),
        ("AUDIT_FLUSH_INTERVAL", 0),
        ("AUDIT_BATCH_SIZE", "100"),
        ("AUDIT_QUEUE_SIZE", -1),
        ("AUDIT_QUEUE_TIMEOUT", True),
    ],
)
def test_audit_writer_settings(pki_dir, name, value):
    assert ids(**good(pki_dir, **{name: value})) == {"s2s_auth.E010"}
    for mode in ("group_commit", "background", "sync"):
        assert ids(**good(pki_dir, AUDIT_WRITE=mode, AUDIT_FLUSH_INTERVAL=0.1)) == set()


def test_rsa_where_configured_is_allowed(pki_dir):
    conf = good(pki_dir, JWT_ALGORITHMS=["ES256", "PS256"], HTTPSIG_ALGORITHMS=["rsa-pss-sha512"])
    assert ids(**conf) == set()


def test_missing_anchors_and_crl_warn_when_certificates_are_used(tmp_path):
    empty = str(tmp_path)
    assert ids(**good(empty)) == {"s2s_auth.W004"}  # no CA at all: one warning
    assert ids(**good(empty, REQUIRE_CRL=False)) == {"s2s_auth.W004"}
    assert ids(**good(empty, MECHANISMS=["access_token", "api_key"])) == set()


def test_crl_elsewhere_is_checked(pki_dir, tmp_path):
    assert ids(**good(pki_dir, CRL_FILE=str(tmp_path / "gone.pem"))) == {"s2s_auth.W005"}


def test_no_crl_file_needed_when_the_crls_are_fetched(pki_dir, tmp_path):
    gone = str(tmp_path / "gone.pem")
    fetched = good(pki_dir, CRL_FILE=gone, CRL_URL="https://users.internal:8001/pki/crl")
    assert ids(**fetched) == set()


def test_audit_middleware_missing_or_misplaced(pki_dir):
    others = [m for m in test_settings.MIDDLEWARE if m != AUDIT]
    with override_settings(MIDDLEWARE=others):
        assert ids(**good(pki_dir)) == {"s2s_auth.W006"}
        assert ids(**good(pki_dir, AUDIT_ENABLED=False)) == set()
    with override_settings(MIDDLEWARE=[AUDIT, *others]):
        assert ids(**good(pki_dir)) == {"s2s_auth.W007"}


def test_receiving_service_without_trust_domain(pki_dir):
    conf = good(pki_dir)
    del conf["TRUST_DOMAIN"]
    with override_settings(S2S_AUTH=conf):
        messages = [m for m in run_checks(tags=["s2s_auth"]) if m.id == "s2s_auth.E008"]
    assert len(messages) == 1
    assert "S2S_AUTH['TRUST_DOMAIN']" in messages[0].msg
    assert "s2s_auth.E008" not in ids(PKI_DIR=pki_dir, HTTPSIG_ORIGIN=ORIGIN)  # a caller


@pytest.mark.django_db  # Django 6's check command also checks JSON field support in the database
def test_manage_py_check_fails_on_an_error(pki_dir):
    conf = good(pki_dir, MECHANISMS=["kerberos"])
    with override_settings(S2S_AUTH=conf), pytest.raises(SystemCheckError, match=r"s2s_auth\.E002"):
        call_command("check")


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
FILES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"}}
REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "x"}}
TABLE = {
    "default": {"BACKEND": "s2s_auth.credentials.dbcache.ReplayDatabaseCache", "LOCATION": "t"}
}
DJANGO_TABLE = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"}
}


def store_ids(pki_dir, caches, *, debug=False, **extra) -> set[str]:
    with override_settings(CACHES=caches, DEBUG=debug):
        return ids(**good(pki_dir, **extra))


def test_a_per_process_replay_store_with_debug_off_is_an_error(pki_dir):
    assert store_ids(pki_dir, LOCMEM) == {"s2s_auth.E020"}
    assert store_ids(pki_dir, LOCMEM, debug=True) == set()  # runserver: one process
    assert store_ids(pki_dir, DUMMY, debug=True) == {"s2s_auth.E020"}  # remembers nothing
    assert store_ids(pki_dir, FILES) == {"s2s_auth.W021"}  # shared, add() not atomic
    assert store_ids(pki_dir, REDIS) == set()
    assert store_ids(pki_dir, TABLE) == set()  # s2s_auth's database cache
    assert store_ids(pki_dir, DJANGO_TABLE) == {"s2s_auth.W022"}  # culls live entries
    assert store_ids(pki_dir, {**REDIS, "local": LOCMEM["default"]}) == set()
    two = {**REDIS, "local": LOCMEM["default"]}
    assert store_ids(pki_dir, two, REPLAY_CACHE="local") == {"s2s_auth.E020"}
    assert store_ids(pki_dir, REDIS, REPLAY_CACHE="missing") == {"s2s_auth.E020"}


def test_the_error_names_the_setting(pki_dir):
    with override_settings(CACHES=LOCMEM, DEBUG=False, S2S_AUTH=good(pki_dir)):
        (error,) = [m for m in run_checks(tags=["s2s_auth"]) if m.id == "s2s_auth.E020"]
    assert "CACHES['default']" in error.msg and "REPLAY_CACHE" in error.msg
    assert "LocMemCache" in error.msg
    with (
        override_settings(CACHES=LOCMEM, DEBUG=False, S2S_AUTH=good(pki_dir)),
        pytest.raises(SystemCheckError, match=r"s2s_auth\.E020"),
    ):
        call_command("check")


def test_the_test_project_store_is_shared():
    assert test_settings.CACHES["default"]["BACKEND"] in (
        "s2s_auth.credentials.dbcache.ReplayDatabaseCache",
        "django.core.cache.backends.redis.RedisCache",
    )


@pytest.mark.parametrize(
    "cache",
    [
        {"PRINCIPAL_CACHE_SECONDS": -1},
        {"PRINCIPAL_CACHE_SECONDS": "2"},
        {"PRINCIPAL_CACHE_CHECK_SECONDS": None},
        {"PRINCIPAL_CACHE_MAX_ENTRIES": True},
        # Checking less often than entries expire: the bound would be the max age alone.
        {"PRINCIPAL_CACHE_SECONDS": 2, "PRINCIPAL_CACHE_CHECK_SECONDS": 5},
    ],
)
def test_principal_cache_settings(pki_dir, cache):
    assert ids(**good(pki_dir, **cache)) == {"s2s_auth.E031"}


def test_principal_cache_off_or_tighter_is_fine(pki_dir):
    assert ids(**good(pki_dir, PRINCIPAL_CACHE_SECONDS=0, PRINCIPAL_CACHE_CHECK_SECONDS=5)) == set()
    assert ids(**good(pki_dir, PRINCIPAL_CACHE_SECONDS=0.5, PRINCIPAL_CACHE_CHECK_SECONDS=0.2)) == (
        set()
    )
