"""Seller previews from UserService: one call per page of ads, never one per ad.

If UserService is down, slow or refuses, the ads are still shown, with
``seller: null``; the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import requests
from django.conf import settings

from s2s_auth.client import ServiceClient, mtls_client, per_thread_client
from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth

logger = logging.getLogger(__name__)
PREVIEWS_PATH = "api/v1/users/previews"


def _build_client() -> ServiceClient:
    """Over https, ads presents its own certificate (mTLS) and, by default, a
    fresh service JWT per call; plain http is the "trust the network" baseline,
    kept for comparison."""
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
    return mtls_client(url, timeout=timeout, auth=auth)


users_client = per_thread_client(_build_client)


def fetch_previews(seller_ids: Iterable[int]) -> dict[int, dict] | None:
    """Previews keyed by seller id, or None when UserService could not answer."""
    ids = sorted(set(seller_ids))
    if not ids:
        return {}
    try:
        response = users_client().get(PREVIEWS_PATH, params={"ids": ",".join(map(str, ids))})
    except requests.RequestException as exc:
        logger.warning("seller previews unavailable: %s: %s", type(exc).__name__, exc)
        return None
    if response.status_code != 200:
        logger.warning(
            "seller previews refused: HTTP %s %s", response.status_code, response.text[:200]
        )
        return None
    try:
        return {int(item["id"]): item for item in response.json()["results"]}
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("seller previews unreadable: %s", exc)
        return None
