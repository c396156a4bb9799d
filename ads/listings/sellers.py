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

logger = logging.getLogger(__name__)
PREVIEWS_PATH = "api/v1/users/previews"


def _build_client() -> ServiceClient:
    """Over https, ads presents its own certificate (mTLS); plain http is the
    "trust the network" baseline, kept for comparison."""
    url, timeout = settings.USERS_SERVICE_URL, settings.USERS_SERVICE_TIMEOUT
    if url.startswith("https://"):
        return mtls_client(url, timeout=timeout)
    return ServiceClient(url, timeout=timeout)


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
