"""Seller previews from UserService: one call per page of ads, never one per ad.

If UserService is down, slow or refuses, the ads are still shown, with the preview
stored on each ad (``Ad.seller_preview``: refreshed by every successful call here and
by the nightly job), marked ``stale`` with its age; ``seller: null`` only when there is
none. After repeated failures a circuit breaker (:mod:`.breaker`) stops calling
UserService for ``USERS_BREAKER_RESET_SECONDS``, so a request does not wait for a
timeout it can predict. Failures and degraded answers are logged and counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import requests
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Case, JSONField, Value, When
from django.utils import timezone

from s2s_auth.client import ServiceClient, mtls_client, per_thread_client
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
from s2s_auth.client.exchange import TokenExchanger
from s2s_auth.conf import s2s_settings

from .breaker import CircuitBreaker
from .models import Ad

logger = logging.getLogger(__name__)
PREVIEWS_PATH = "api/v1/users/previews"
#: The ads whose stored preview is kept current (those shown to buyers).
SHOWN = (Ad.Status.ACTIVE, Ad.Status.RESERVED)


def user_context_exchanger() -> TokenExchanger:
    """One per process (and configuration): exchanges end users' tokens at the identity
    service for tokens for users alone (RFC 8693), authenticating with ads' certificate."""
    conf = s2s_settings()
    token_url = settings.USERS_TOKEN_URL or (
        settings.USERS_SERVICE_URL.rstrip("/") + "/oauth/token"
    )
    return _exchanger(
        token_url,
        conf.SERVICE_NAME,
        conf.pki_dir,
        conf.trust_anchors_path,
        tuple(settings.USERS_SERVICE_TIMEOUT),
    )


@functools.lru_cache(maxsize=4)
def _exchanger(token_url, name, pki, ca_bundle, timeout) -> TokenExchanger:
    return TokenExchanger(
        token_url,
        client_id=name,
        cert=(pki / f"{name}.pem", pki / f"{name}.key"),
        auth_method="tls_client_auth",
        ca_bundle=ca_bundle,
        timeout=timeout,
    )


def _user_context() -> TokenExchanger | None:
    """USERS_SERVICE_USER_CONTEXT: "exchange" (default), or "forward" (the user's own
    token, nested by the service JWT hook: for a UserService that cannot exchange)."""
    mode = getattr(settings, "USERS_SERVICE_USER_CONTEXT", "exchange")
    if mode not in ("exchange", "forward"):
        raise ValueError(f"USERS_SERVICE_USER_CONTEXT {mode!r}: exchange, forward")
    return user_context_exchanger() if mode == "exchange" else None


def _build_client() -> ServiceClient:
    """Over https, ads presents its own certificate (mTLS) and, by default, a
    fresh service JWT per call, and an end user's context as a token exchanged for
    users; plain http is the "trust the network" baseline, kept for comparison."""
    url, timeout = settings.USERS_SERVICE_URL, settings.USERS_SERVICE_TIMEOUT
    if not url.startswith("https://"):
        return ServiceClient(url, timeout=timeout)
    mechanism = settings.USERS_SERVICE_MECHANISM
    auth = None
    if mechanism == "service_jwt":
        auth = ServiceJWTAuth(ServiceCredentials.from_pki(), audience="users", send_x5c=False)
    elif mechanism == "http_signature":
        auth = signature_auth(ServiceCredentials.from_pki())
    elif mechanism != "mtls":
        raise ValueError(
            f"USERS_SERVICE_MECHANISM {mechanism!r}: mtls, service_jwt, http_signature"
        )
    user_context = _user_context()
    return mtls_client(
        url,
        timeout=timeout,
        auth=auth,
        user_context=user_context,
        audience="users" if user_context else None,
    )


users_client = per_thread_client(_build_client)


def _breaker_settings() -> tuple[int, float]:
    return (
        int(getattr(settings, "USERS_BREAKER_FAILURES", 3)),
        float(getattr(settings, "USERS_BREAKER_RESET_SECONDS", 30.0)),
    )


#: Stops calling UserService for a while after repeated failures (per process).
users_breaker = CircuitBreaker("users", _breaker_settings)
#: Degraded answers given by this process: ``stale`` (stored previews shown),
#: ``missing`` (sellers shown without any preview).
degraded: Counter[str] = Counter()


def fetch_previews(seller_ids: Iterable[int]) -> dict[int, dict] | None:
    """Previews keyed by seller id, or None when UserService could not answer (or the
    circuit breaker says it is down and no call was made)."""
    ids = sorted(set(seller_ids))
    if not ids:
        return {}
    if not users_breaker.allow():
        logger.info("seller previews not asked: circuit users is open")
        return None
    try:
        response = users_client().get(PREVIEWS_PATH, params={"ids": ",".join(map(str, ids))})
    except requests.RequestException as exc:
        users_breaker.failure()
        logger.warning("seller previews unavailable: %s: %s", type(exc).__name__, exc)
        return None
    if response.status_code != 200:
        # A 4xx is a refusal from a service that is up; 429 and 5xx: it is not well.
        if response.status_code == 429 or response.status_code >= 500:
            users_breaker.failure()
        else:
            users_breaker.success()
        logger.warning(
            "seller previews refused: HTTP %s %s", response.status_code, response.text[:200]
        )
        return None
    try:
        previews = {int(item["id"]): item for item in response.json()["results"]}
    except (ValueError, KeyError, TypeError) as exc:
        users_breaker.failure()
        logger.warning("seller previews unreadable: %s", exc)
        return None
    users_breaker.success()
    return previews


def previews_for(ads: Sequence[Ad]) -> dict[int, dict]:
    """The seller previews to show with ``ads``, keyed by seller id.

    Fresh from UserService when it answers (and then stored on the sellers' ads, so
    the copy is as new as the last successful call); otherwise each seller's stored
    copy, marked ``stale`` with ``as_of`` and ``age_seconds``; a seller with neither
    is absent (shown as ``seller: null``).
    """
    now = timezone.now()
    fresh = fetch_previews(ad.seller_id for ad in ads)
    if fresh is not None:
        store_previews(fresh, {ad.seller_id for ad in ads}, now)
        return {sid: _shown(preview, now, now, stale=False) for sid, preview in fresh.items()}
    stored: dict[int, tuple[dict, dt.datetime]] = {}
    for ad in ads:
        if ad.seller_preview and ad.seller_preview_at:
            known = stored.get(ad.seller_id)
            if known is None or known[1] < ad.seller_preview_at:
                stored[ad.seller_id] = (ad.seller_preview, ad.seller_preview_at)
    missing = len({ad.seller_id for ad in ads} - set(stored))
    degraded["stale"] += len(stored)
    degraded["missing"] += missing
    if stored or missing:
        oldest = max((now - at).total_seconds() for _, at in stored.values()) if stored else 0
        logger.warning(
            "seller previews degraded: %d stored (oldest %d s), %d missing",
            len(stored),
            oldest,
            missing,
        )
    return {sid: _shown(preview, at, now, stale=True) for sid, (preview, at) in stored.items()}


def _shown(preview: dict, as_of: dt.datetime, now: dt.datetime, *, stale: bool) -> dict:
    return {
        **preview,
        "stale": stale,
        "as_of": as_of.isoformat().replace("+00:00", "Z"),
        "age_seconds": max(0, int((now - as_of).total_seconds())),
    }


def store_previews(previews: dict[int, dict], seller_ids: set[int], now: dt.datetime) -> None:
    """Keep what UserService just said as the sellers' stored previews (one UPDATE).

    A seller UserService no longer knows gets ``None``, as the nightly job does. A
    failure to write costs the copy, never the answer."""
    if not seller_ids:
        return
    cases = [
        When(seller_id=sid, then=Value(previews.get(sid), output_field=JSONField()))
        for sid in sorted(seller_ids)
    ]
    try:
        with transaction.atomic():
            Ad.objects.filter(seller_id__in=seller_ids, status__in=SHOWN).update(
                seller_preview=Case(*cases, output_field=JSONField()), seller_preview_at=now
            )
    except DatabaseError as exc:
        logger.warning("stored seller previews not refreshed: %s", exc)
