"""Renews this service's certificate before it expires, through the identity service.

At ``RENEW_AT_FRACTION`` (default 2/3) of the current certificate's lifetime the agent
makes a fresh P-256 key, a CSR signed with it, and posts the CSR to the identity
service's ``POST /api/v1/pki/renew`` over mTLS with the *current* certificate (the
proof of who it is). It checks the answer (the new leaf carries the new key and the
same SPIFFE ID) and writes key and chain in place (:func:`s2s_auth.core.files.write_pair`:
atomic, 0600, key first). The servers and clients of every process of the service
pick the files up by themselves (:mod:`s2s_auth.tls.gunicorn`,
:mod:`s2s_auth.client.tls`).

When the identity service is down or refuses, the agent retries with exponential
backoff and jitter (1 s doubling up to ``RENEWAL_RETRY_MAX_SECONDS``, honouring a
``Retry-After``); the current certificate keeps working until it expires, so with
the default fraction an outage of up to a third of the lifetime costs nothing.
After expiry no renewal can succeed (the proof is gone): an operator issues a new
certificate (``s2s_pki issue``), which the agent then picks up and renews again.

The identity service renews its own certificate the same way, through its own
endpoint: one audited, throttled path for every renewal, and the agent in its
gunicorn master needs no database and no access to the CA key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
from pathlib import Path

import requests
from cryptography import x509

from s2s_auth.core import issuance
from s2s_auth.core.files import read_pair, same_key, write_pair
from s2s_auth.core.renewal import build_csr, renewal_due
from s2s_auth.core.x509 import spiffe_uris

__all__ = [
    "AgentNotConfigured",
    "RenewalAgent",
    "RenewalError",
    "start_agent",
    "start_for_gunicorn",
]

logger = logging.getLogger("s2s_auth.agent")

#: Longest sleep before the files are looked at again (an operator may replace them).
MAX_SLEEP = 3600.0
MAX_RESPONSE_BYTES = 65536


class AgentNotConfigured(RuntimeError):
    """The settings say nothing about where to renew (no RENEWAL_URL, no issuer)."""


class RenewalError(Exception):
    """One failed renewal attempt: ``reason`` (the endpoint's, or a local one),
    ``status`` (HTTP, None if there was no answer) and ``retry_after`` (seconds)."""

    def __init__(self, reason: str, detail: str, status: int | None = None, retry_after=None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RenewalAgent:
    """Keeps ``cert_path``/``key_path`` renewed at ``url`` (see the module docstring)."""

    def __init__(
        self,
        cert_path,
        key_path,
        *,
        url: str,
        ca_bundle=None,
        fraction: float = 2 / 3,
        retry_max: float = 60.0,
        timeout: tuple[float, float] = (5.0, 15.0),
        on_renewed=None,
    ):
        if not 0 < fraction < 1:
            raise ValueError("fraction must be between 0 and 1")
        self.cert_path = Path(cert_path)
        self.key_path = Path(key_path)
        self.url = url
        self.ca_bundle = str(ca_bundle) if ca_bundle else None
        self.fraction = fraction
        self.retry_max = max(1.0, float(retry_max))
        self.timeout = timeout
        #: Called (no arguments) after the new files are in place.
        self.on_renewed = on_renewed
        self.renewals = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, name: str | None = None, *, cert_path=None, key_path=None):
        """The agent for service ``name`` (default SERVICE_NAME) in ``PKI_DIR``, or for
        the given files; AgentNotConfigured when there is no renewal URL."""
        from s2s_auth.conf import s2s_settings

        conf = s2s_settings()
        url = conf.renewal_url
        if not url:
            raise AgentNotConfigured(
                "no renewal URL: set S2S_AUTH['RENEWAL_URL'] (or ISSUER/ACCESS_TOKEN_ISSUER)"
            )
        if cert_path is None or key_path is None:
            name = name or conf.SERVICE_NAME
            if not name:
                raise AgentNotConfigured("no service name: give one or set SERVICE_NAME")
            cert_path = conf.pki_dir / f"{name}.pem"
            key_path = conf.pki_dir / f"{name}.key"
        return cls(
            cert_path,
            key_path,
            url=url,
            ca_bundle=conf.trust_anchors_path,
            fraction=conf.renew_at_fraction,
            retry_max=float(conf.RENEWAL_RETRY_MAX_SECONDS),
        )

    # -- one renewal -----------------------------------------------------------------
    def current(self) -> x509.Certificate:
        """The leaf in ``cert_path`` now."""
        return x509.load_pem_x509_certificates(self.cert_path.read_bytes())[0]

    def due(self) -> dt.datetime:
        return renewal_due(self.current(), self.fraction)

    def renew(self) -> x509.Certificate:
        """Renew now: a new key, a CSR, the endpoint, the files. RenewalError if not."""
        try:
            _, _, chain, _ = read_pair(self.cert_path, self.key_path)
        except (OSError, ValueError) as exc:
            raise RenewalError("certificate_unreadable", str(exc)) from exc
        ids = spiffe_uris(chain[0])
        if len(ids) != 1:
            raise RenewalError("certificate_unreadable", "not exactly one SPIFFE ID")
        key = issuance.new_key()
        csr = build_csr(key, ids[0])
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace `verify`
        try:
            response = session.post(
                self.url,
                data=csr,
                headers={"Content-Type": "application/pkcs10", "Accept": "application/json"},
                # The current pair, the proof. The agent is the only writer of these
                # files, so requests may read them itself here.
                cert=(str(self.cert_path), str(self.key_path)),
                verify=self.ca_bundle or True,
                timeout=self.timeout,
                allow_redirects=False,
            )
            body = response.content[:MAX_RESPONSE_BYTES]
        except requests.RequestException as exc:
            raise RenewalError("unreachable", f"{self.url}: {type(exc).__name__}") from exc
        finally:
            session.close()
        payload = _json(body)
        if response.status_code != 200:
            reason = str(payload.get("reason") or payload.get("error") or "http_error")[:64]
            detail = str(payload.get("error_description") or "")[:300]
            raise RenewalError(
                reason,
                f"HTTP {response.status_code} {detail}".strip(),
                status=response.status_code,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        new_chain = self._check(payload, key, ids[0])
        write_pair(
            self.cert_path, self.key_path, issuance.certs_pem(*new_chain), issuance.key_pem(key)
        )
        self.renewals += 1
        leaf = new_chain[0]
        if self.on_renewed is not None:
            try:
                self.on_renewed()
            except Exception:
                logger.exception("renewal agent: the on_renewed hook failed")
        logger.info(
            "renewed %s: serial %x -> %x, valid until %s",
            ids[0],
            chain[0].serial_number,
            leaf.serial_number,
            leaf.not_valid_after_utc.isoformat(),
        )
        return leaf

    @staticmethod
    def _check(payload: dict, key, spiffe_id: str) -> list[x509.Certificate]:
        """The answer's chain, if its leaf is for our new key and the same identity."""
        try:
            chain = x509.load_pem_x509_certificates(
                str(payload.get("certificate_chain", "")).encode("ascii")
            )
        except (ValueError, UnicodeEncodeError) as exc:
            raise RenewalError("invalid_response", f"no certificate chain: {exc}") from exc
        leaf = chain[0]
        if not same_key(leaf.public_key(), key.public_key()):
            raise RenewalError("invalid_response", "the new certificate is not for our key")
        if spiffe_uris(leaf) != [spiffe_id]:
            raise RenewalError("invalid_response", "the new certificate names another identity")
        if leaf.not_valid_after_utc <= _now():
            raise RenewalError("invalid_response", "the new certificate has expired")
        return chain

    # -- the loop ----------------------------------------------------------------------
    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter: 1 s doubling, up to ``retry_max``."""
        ceiling = min(self.retry_max, 2.0 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto
        if retry_after:
            delay = max(delay, min(float(retry_after), self.retry_max))
        return delay

    def run(self) -> None:
        """Renew whenever due, until :meth:`stop`."""
        attempt = 0
        logger.info(
            "renewal agent for %s started: renews at %.0f%% of the lifetime at %s",
            self.cert_path.name,
            self.fraction * 100,
            self.url,
        )
        while not self._stop.is_set():
            try:
                leaf = self.current()
            except (OSError, ValueError) as exc:
                attempt += 1
                logger.error("renewal agent: cannot read %s: %s", self.cert_path, exc)
                self._stop.wait(self.backoff(attempt))
                continue
            wait = (renewal_due(leaf, self.fraction) - _now()).total_seconds()
            if wait > 0:
                attempt = 0
                self._stop.wait(min(wait, MAX_SLEEP))
                continue
            try:
                self.renew()
                attempt = 0
            except RenewalError as exc:
                attempt += 1
                self.failures += 1
                delay = self.backoff(attempt, exc.retry_after)
                left = (leaf.not_valid_after_utc - _now()).total_seconds()
                log = logger.warning if left > 0 else logger.error
                log(
                    "renewal of %s (serial %x, %s) failed, attempt %d: %s; retrying in %.1fs",
                    self.cert_path.name,
                    leaf.serial_number,
                    f"valid {left:.0f}s more" if left > 0 else "EXPIRED",
                    attempt,
                    exc,
                    delay,
                )
                self._stop.wait(delay)
            except Exception:  # never let the thread die silently
                attempt += 1
                logger.exception("renewal agent crashed in an attempt; retrying")
                self._stop.wait(self.backoff(attempt))

    def start(self) -> threading.Thread:
        """Run in a daemon thread of this process."""
        thread = threading.Thread(
            target=self.run, name=f"s2s-renewal-{self.cert_path.stem}", daemon=True
        )
        self._thread = thread
        thread.start()
        return thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _json(body: bytes) -> dict:
    import json

    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _disabled() -> bool:
    return os.environ.get("S2S_RENEWAL_AGENT", "1").strip().lower() in ("0", "false", "no", "off")


def start_agent(name: str | None = None, *, start: bool = True, **files) -> RenewalAgent | None:
    """Start the agent for ``name`` (or ``cert_path``/``key_path``) from the settings
    in a daemon thread; None (logged) when the settings name no renewal URL, and
    None when ``S2S_RENEWAL_AGENT=0`` (something else renews the files)."""
    if _disabled():
        logger.info("certificate renewal agent off (S2S_RENEWAL_AGENT)")
        return None
    try:
        agent = RenewalAgent.from_settings(name, **files)
    except AgentNotConfigured as exc:
        logger.warning("certificate renewal agent not started: %s", exc)
        return None
    if start:
        agent.start()
    return agent


def start_for_gunicorn(arbiter) -> RenewalAgent | None:
    """The ``when_ready`` hook: one agent in the master for the server's own
    certificate (``TLS_CERT``/``TLS_KEY``), which is also the service's client
    certificate. Off with ``S2S_RENEWAL_AGENT=0``, without TLS, without a separate
    key file, or without Django settings (``DJANGO_SETTINGS_MODULE``)."""
    cfg = arbiter.cfg
    if _disabled():
        return None
    if not cfg.certfile or not cfg.keyfile:
        return None
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        arbiter.log.info("s2s_auth: no DJANGO_SETTINGS_MODULE, certificate renewal agent off")
        return None
    if not logger.handlers:  # Django's LOGGING is not applied in the master: gunicorn's log
        logger.handlers = list(getattr(arbiter.log, "error_log", logging.getLogger()).handlers)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        agent = start_agent(cert_path=cfg.certfile, key_path=cfg.keyfile, start=False)
        if agent is not None:
            # The master's own TLS context too: a worker forked later inherits the new
            # certificate (and the master's session-ticket keys).
            from gunicorn import sock as gunicorn_sock

            agent.on_renewed = lambda: gunicorn_sock.ssl_context(cfg)
            agent.start()
        return agent
    except Exception:  # the server must start even if the agent cannot
        arbiter.log.exception("s2s_auth: certificate renewal agent not started")
        return None
