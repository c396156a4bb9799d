"""Rate limits (s2s_auth.issuer.throttling): DRF throttles on Django's cache, keyed per
client, per (username, IP) and per IP, on a clock the tests drive."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from s2s_auth.credentials import principals as services
from s2s_auth.issuer.throttling import (
    LoginFailures,
    RegistrationRateThrottle,
    TokenRateThrottle,
    retry_after,
)
from s2s_auth.models import ServicePrincipal

from .support import (
    ASSERTION_TYPE,
    STRONG,
    assert_error,
    assertion,
    login,
    pem,
    post_token,
    register,
    service_token,
)

GRANT = {"grant_type": "client_credentials"}


def limit(settings, **values):
    settings.S2S_AUTH = {**settings.S2S_AUTH, **values}


# ------------------------------------------------------------------ /oauth/token


def test_token_requests_are_limited_per_authenticated_client(client, ads, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=3)
    name, secret = ads
    for _ in range(5):  # someone else's failures do not use up the client's budget
        assert post_token(client, GRANT, auth=(name, secret + "x")).status_code == 401
    for _ in range(3):
        assert post_token(client, GRANT, auth=ads).status_code == 200
    response = post_token(client, GRANT, auth=ads)
    assert_error(response, 429, "slow_down")
    assert response["Retry-After"] == "60"
    # other clients are not affected
    services.ensure_principal("other", ["users:read"])
    other = services.create_client_secret("other")
    assert post_token(client, GRANT, auth=("other", other)).status_code == 200


def test_someone_elses_failures_never_lock_out_a_certificate_client(
    client, tls_client, ads, throttle_clock
):
    """The campaign's lock-out: `Basic mtlsclient:wrong` from one address, then the real
    client with its certificate from the same address. Default limits."""
    statuses = [
        post_token(client, GRANT, auth=("mtlsclient", "wrong")).status_code for _ in range(80)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429  # the guessing source is held back
    for _ in range(6):
        response = post_token(client, GRANT, SSL_CLIENT_CERT=pem(tls_client))
        assert response.status_code == 200, response.content
    # nor is another client with its secret, from another address or this one
    assert post_token(client, GRANT, auth=ads, REMOTE_ADDR="10.9.9.9").status_code == 200
    assert post_token(client, GRANT, auth=ads).status_code == 200


def test_failures_are_counted_per_client_and_address(client, ads, settings, throttle_clock):
    limit(settings, TOKEN_FAILURE_LIMIT_PER_MINUTE=3, TOKEN_ADDRESS_FAILURE_LIMIT_PER_MINUTE=5)
    name = ads[0]
    for _ in range(3):
        assert post_token(client, GRANT, auth=(name, "wrong")).status_code == 401
    assert_error(post_token(client, GRANT, auth=ads), 429, "slow_down")  # (ads, this address)
    services.ensure_principal("other", ["users:read"])
    other = services.create_client_secret("other")
    assert post_token(client, GRANT, auth=("other", other)).status_code == 200
    for _ in range(2):
        assert post_token(client, GRANT, auth=("nobody", "x")).status_code == 401
    response = post_token(client, GRANT, auth=("other", other))  # the address: 5 failures
    assert_error(response, 429, "slow_down")
    json_endpoint = service_token(client, {"serviceName": "other", "password": other})
    assert_error(json_endpoint, 429, "slow_down")
    throttle_clock.advance(60)
    assert post_token(client, GRANT, auth=ads).status_code == 200


def test_token_limit_is_a_sliding_window(client, ads, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=2)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    throttle_clock.advance(40)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    throttle_clock.advance(10)
    response = post_token(client, GRANT, auth=ads)
    assert_error(response, 429, "slow_down")
    assert response["Retry-After"] == "10"  # when the first request leaves the window
    throttle_clock.advance(10)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    assert post_token(client, GRANT, auth=ads).status_code == 429


def test_refused_requests_do_not_extend_the_wait(client, ads, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=1)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    for _ in range(5):
        throttle_clock.advance(11)
        assert post_token(client, GRANT, auth=ads).status_code == 429
    throttle_clock.advance(5)
    assert post_token(client, GRANT, auth=ads).status_code == 200


def test_the_limit_is_read_when_the_request_comes(client, ads, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=1)
    assert post_token(client, GRANT, auth=ads).status_code == 200
    assert post_token(client, GRANT, auth=ads).status_code == 429
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=0)  # off
    assert post_token(client, GRANT, auth=ads).status_code == 200
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=5)
    assert post_token(client, GRANT, auth=ads).status_code == 200


def test_the_history_lives_in_djangos_cache(issuer_conf, settings, throttle_clock):
    """What one worker counted, another (a new throttle, the same cache) sees."""
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=2)
    assert TokenRateThrottle("svc").allow_request(None, None)
    throttle_clock.advance(1)
    assert TokenRateThrottle("svc").allow_request(None, None)
    refused = TokenRateThrottle("svc")
    assert not refused.allow_request(None, None)
    assert retry_after(refused) == 59
    assert refused.key.startswith("s2s:window:token:")
    now = throttle_clock.now
    assert cache.get(refused.key) == [[now, now, 1], [now - 1, now - 1, 1]]
    cache.clear()
    assert TokenRateThrottle("svc").allow_request(None, None)


def test_the_window_keeps_one_bucket_per_second_however_high_the_limit(
    issuer_conf, settings, throttle_clock
):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=10**6)
    for _ in range(200):  # 200 requests in one second: one bucket
        throttle_clock.advance(0.004)
        assert TokenRateThrottle("svc").allow_request(None, None)
    throttle = TokenRateThrottle("svc")
    assert throttle.allow_request(None, None)
    assert len(cache.get(throttle.key)) == 1
    assert cache.get(throttle.key)[0][2] == 201
    for _ in range(120):  # two minutes, a request a second: a minute's buckets stay
        throttle_clock.advance(1)
        assert TokenRateThrottle("svc").allow_request(None, None)
    assert len(cache.get(throttle.key)) == 60


def test_a_bucket_counts_until_its_last_request_leaves_the_window(
    issuer_conf, settings, throttle_clock
):
    """Never more than the limit in any minute: a bucket errs on the strict side."""
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=3)
    for _ in range(3):  # three requests within one bucket (0.0, 0.4, 0.8 s)
        assert TokenRateThrottle("svc").allow_request(None, None)
        throttle_clock.advance(0.4)
    throttle_clock.advance(60 - 1.2)  # the first left the window, the last one not yet
    refused = TokenRateThrottle("svc")
    assert not refused.allow_request(None, None)
    assert retry_after(refused) == 1
    throttle_clock.advance(0.9)
    assert TokenRateThrottle("svc").allow_request(None, None)


def test_a_history_of_another_layout_counts_as_empty(issuer_conf, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=1)
    throttle = TokenRateThrottle("svc")
    cache.set(throttle.get_cache_key(None, None), [throttle_clock.now, "x"], 60)
    assert throttle.allow_request(None, None)
    assert not TokenRateThrottle("svc").allow_request(None, None)


def test_only_well_formed_live_buckets_count(issuer_conf, settings, throttle_clock):
    """A bucket is a list of three numbers whose last request is in the window; anything
    else stored under the key counts as nothing (and is dropped at the next write)."""
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=3)
    now = throttle_clock.now
    throttle = TokenRateThrottle("svc")
    junk = [
        (now, now, 5),  # a tuple
        [now, now],
        [now, now, 5, 5],
        [now, "x", 5],
        ["x", now, 5],
        [now, now, None],
        [now - 90, now - 61, 5],  # left the window
        "bucket",
    ]
    cache.set(throttle.get_cache_key(None, None), [[now - 2, now - 1, 1], *junk], 60)
    assert throttle.allow_request(None, None)  # 1 stored + this one
    assert cache.get(throttle.key) == [[now, now, 1], [now - 2, now - 1, 1]]
    assert TokenRateThrottle("svc").allow_request(None, None)
    assert not TokenRateThrottle("svc").allow_request(None, None)


def test_keys_are_hashed_so_any_client_id_fits(issuer_conf, settings, throttle_clock):
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=1)
    for ident in ("a b\n", "\ud800", "x" * 5000):
        throttle = TokenRateThrottle(ident)
        assert throttle.allow_request(None, None)
        assert len(throttle.key) < 100
        assert not TokenRateThrottle(ident).allow_request(None, None)


@pytest.mark.parametrize("client_id", [None, "pkjwt"])
def test_assertion_clients_are_limited_by_their_verified_name(
    client, pk_client, settings, throttle_clock, client_id
):
    """Read ahead by the assertion's (unverified) ``sub`` or counted after, the window
    is the authenticated client's, with or without client_id in the form."""
    limit(settings, TOKEN_RATE_LIMIT_PER_MINUTE=2)
    extra = {"client_id": client_id} if client_id else {}

    def request(**claims):
        form = {
            **GRANT,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(pk_client, "pkjwt", **claims),
            **extra,
        }
        return post_token(client, form)

    for _ in range(2):
        assert request().status_code == 200
    assert_error(request(), 429, "slow_down")
    assert TokenRateThrottle("pkjwt").allow_request(None, None) is False
    garbled = {**GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": "x.y"}
    assert_error(post_token(client, garbled), 401, "invalid_client")


# ------------------------------------------------------------------ registration


def test_register_is_limited_per_ip(client, issuer_conf, db, settings, throttle_clock):
    limit(settings, REGISTRATION_RATE_LIMIT_PER_HOUR=2, REGISTRATION_OPEN=True)
    assert register(client, {"serviceName": "one", "password": STRONG}).status_code == 201
    assert register(client, {"serviceName": "bad"}).status_code == 400  # counts too
    response = register(client, {"serviceName": "three", "password": STRONG})
    assert_error(response, 429, "slow_down")
    assert response["Retry-After"] == "3600"
    assert not ServicePrincipal.objects.filter(name="three").exists()
    # a forwarded-for header is anyone's to write: it does not make a new key
    spoofed = register(
        client, {"serviceName": "three", "password": STRONG}, HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert spoofed.status_code == 429
    other_ip = register(
        client, {"serviceName": "three", "password": STRONG}, REMOTE_ADDR="10.0.0.9"
    )
    assert other_ip.status_code == 201
    throttle_clock.advance(3600)
    assert register(client, {"serviceName": "four", "password": STRONG}).status_code == 201


def test_registration_throttle_is_keyed_by_peer_address(rf, issuer_conf, settings):
    request = rf.post("/", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert RegistrationRateThrottle().get_ident(request) == "192.0.2.7"


# ------------------------------------------------------------------------ login


def test_login_failures_are_limited_per_username(client, alice, settings, throttle_clock):
    limit(settings, LOGIN_RATE_LIMIT_PER_MINUTE=2)
    for address in ("10.0.0.1", "10.0.0.2"):  # from any address
        response = login(client, {"username": "alice", "password": "bad"}, REMOTE_ADDR=address)
        assert response.status_code == 401
    # even the right password is refused now, from any address, under any spelling
    for username, address in (("alice", "10.0.0.3"), ("ALICE", "10.0.0.4")):
        response = login(
            client, {"username": username, "password": "alice-password-1"}, REMOTE_ADDR=address
        )
        assert_error(response, 429, "slow_down")
        assert response["Retry-After"] == "60"
    other_user = login(client, {"username": "bob", "password": "whatever"})
    assert_error(other_user, 401, "invalid_grant")
    throttle_clock.advance(60)
    assert login(client, {"username": "alice", "password": "alice-password-1"}).status_code == 200


def test_successful_logins_do_not_count_against_the_username(
    client, alice, settings, throttle_clock
):
    limit(settings, LOGIN_RATE_LIMIT_PER_MINUTE=2)
    for _ in range(4):
        good = {"username": "alice", "password": "alice-password-1"}
        assert login(client, good, REMOTE_ADDR=f"10.0.0.{_}").status_code == 200


def test_login_attempts_are_limited_per_address(client, alice, settings, throttle_clock):
    """Random usernames from one address: each would cost a password hash."""
    limit(settings, LOGIN_ADDRESS_RATE_LIMIT_PER_MINUTE=3)
    for i in range(3):
        response = login(client, {"username": f"random{i}", "password": "x"})
        assert response.status_code == 401
    response = login(client, {"username": "random99", "password": "x"})
    assert_error(response, 429, "slow_down")
    assert login(client, {"username": "random99", "password": "x"}, REMOTE_ADDR="10.2.2.2")
    ok = login(
        client, {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="10.2.2.3"
    )
    assert ok.status_code == 200


def test_login_failure_key_is_the_casefolded_username(issuer_conf):
    assert LoginFailures.of("Alice").ident == "alice"
