"""The issuer's ES256 signing keys: PEM files in ``SIGNING_KEYS_DIR``.

Layout: one file per key, ``<created UTC>.<kid>.pem`` (PKCS#8, mode 0600, the
directory 0700), e.g. ``20250101T120000000000Z.<kid>.pem``. The ``kid`` is the RFC
7638 thumbprint of the public key. The newest key is *current* (it signs); an older
key is *retired* from the moment the next one was created and stays published in
the JWKS until every token it could have signed has expired (``retention()``: the
longest token lifetime plus the clock skew). ``prune()`` then deletes its file.

Everything is derived from the file names: no state file to keep consistent
between processes. Each process parses the keys once and re-lists the directory
only when it changed (one ``stat`` per use, no file reads). The first key is
created on first use, under an advisory lock so concurrent workers make one key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from s2s_auth.conf import s2s_settings
from s2s_auth.core.files import PRIVATE_FILE, write_atomic
from s2s_auth.core.jwk import public_jwk, thumbprint

try:  # advisory cross-process lock (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "IssuerKey",
    "KeyRing",
    "KeyStore",
    "key_store",
    "retention",
    "sync_registry",
]

logger = logging.getLogger("s2s_auth.issuer")

_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_KEY_FILE_RE = re.compile(r"^(\d{8}T\d{12}Z)\.([A-Za-z0-9_-]{43})\.pem$")
_LOCK_FILE = ".lock"


@dataclass(frozen=True)
class IssuerKey:
    kid: str
    created: dt.datetime
    path: Path
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    jwk: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """The keys of the directory at one moment, oldest first."""

    keys: tuple[IssuerKey, ...]

    @property
    def current(self) -> IssuerKey:
        return self.keys[-1]

    def retired_at(self, key: IssuerKey) -> dt.datetime | None:
        """When ``key`` stopped signing: the creation of the next key."""
        index = self.keys.index(key)
        return self.keys[index + 1].created if index + 1 < len(self.keys) else None

    def published_until(self, key: IssuerKey, window: dt.timedelta) -> dt.datetime | None:
        retired = self.retired_at(key)
        return None if retired is None else retired + window

    def published(self, now: dt.datetime, window: dt.timedelta) -> list[IssuerKey]:
        """Keys to publish: the current one and retired ones still within ``window``."""
        result = []
        for key in self.keys:
            until = self.published_until(key, window)
            if until is None or until > now:
                result.append(key)
        return result

    def jwks(self, now: dt.datetime, window: dt.timedelta) -> dict[str, Any]:
        return {"keys": [dict(key.jwk) for key in reversed(self.published(now, window))]}


def retention() -> dt.timedelta:
    """How long a retired key stays published: longest token lifetime + clock skew."""
    conf = s2s_settings()
    longest = max(int(conf.ACCESS_TOKEN_LIFETIME), int(conf.USER_TOKEN_LIFETIME))
    return dt.timedelta(seconds=longest + int(conf.CLOCK_SKEW))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_key(path: Path, created: dt.datetime, kid: str) -> IssuerKey:
    st = path.stat()
    if st.st_mode & 0o077:
        logger.warning("signing key %s is readable by others (mode %o)", path, st.st_mode & 0o777)
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Signing key {path} cannot be read: {exc}") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise ImproperlyConfigured(f"Signing key {path} is not an EC P-256 key.")
    public = private_key.public_key()
    if thumbprint(public) != kid:
        raise ImproperlyConfigured(f"Signing key {path}: the file name's kid is not its key's.")
    return IssuerKey(
        kid=kid,
        created=created,
        path=path,
        private_key=private_key,
        jwk=public_jwk(public, kid, alg="ES256"),
    )


class KeyStore:
    """The signing keys of one directory, parsed once per change of the directory."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._state: tuple[tuple[int, int, int], KeyRing] | None = None

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r})"

    # -- reading -----------------------------------------------------------------
    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _scan(self) -> KeyRing:
        keys = []
        for entry in sorted(os.listdir(self.directory)):
            match = _KEY_FILE_RE.match(entry)
            if not match:
                continue
            created = dt.datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=dt.UTC)
            keys.append(_load_key(self.directory / entry, created, match.group(2)))
        keys.sort(key=lambda k: (k.created, k.kid))
        return KeyRing(tuple(keys))

    def ring(self, *, create: bool = True) -> KeyRing:
        """The current key ring; creates the first key when there is none."""
        state = self._state
        if state is not None and state[0] == self._stat_key() and (state[1].keys or not create):
            return state[1]
        with self._lock:
            if create and not self._has_key():
                with self._exclusive():
                    if not self._has_key():
                        self._create_key()
            stat_key = self._stat_key()  # before the scan: a later change rescans
            if stat_key is None:
                return KeyRing(())
            ring = self._scan()
            self._state = (stat_key, ring)
            return ring

    def _has_key(self) -> bool:
        try:
            return any(_KEY_FILE_RE.match(name) for name in os.listdir(self.directory))
        except FileNotFoundError:
            return False

    def current(self) -> IssuerKey:
        ring = self.ring()
        if not ring.keys:  # pragma: no cover - ring() creates one
            raise ImproperlyConfigured(f"No signing key in {self.directory}.")
        return ring.current

    def jwks(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return self.ring().jwks(now or _now(), retention())

    # -- changing ----------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / _LOCK_FILE, "a") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _create_key(self, now: dt.datetime | None = None) -> Path:
        now = now or _now()
        existing = [
            dt.datetime.strptime(m.group(1), _TIME_FORMAT).replace(tzinfo=dt.UTC)
            for m in map(_KEY_FILE_RE.match, os.listdir(self.directory))
            if m
        ]
        if existing and now <= max(existing):  # keep "newest is current" unambiguous
            now = max(existing) + dt.timedelta(microseconds=1)
        key = ec.generate_private_key(ec.SECP256R1())
        kid = thumbprint(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / f"{now.strftime(_TIME_FORMAT)}.{kid}.pem"
        write_atomic(path, pem, PRIVATE_FILE)
        logger.info("created signing key %s", kid)
        return path

    def rotate(self, now: dt.datetime | None = None) -> IssuerKey:
        """Create a new key and make it current; the old ones stay published."""
        with self._exclusive():
            path = self._create_key(now)
        ring = self.ring()
        return next(k for k in ring.keys if k.path == path)

    def prune(self, now: dt.datetime | None = None) -> list[IssuerKey]:
        """Delete the files of retired keys whose last token has expired."""
        now = now or _now()
        window = retention()
        pruned = []
        with self._exclusive():
            ring = self._scan()
            for key in ring.keys:
                until = ring.published_until(key, window)
                if until is not None and until <= now:
                    key.path.unlink(missing_ok=True)
                    pruned.append(key)
                    logger.info("pruned signing key %s", key.kid)
        return pruned


_stores: dict[Path, KeyStore] = {}
_stores_lock = threading.Lock()


def keys_directory() -> Path:
    conf = s2s_settings()
    if conf.SIGNING_KEYS_DIR:
        path = Path(conf.SIGNING_KEYS_DIR)
        if not path.is_absolute():
            path = Path(getattr(settings, "BASE_DIR", Path.cwd())) / path
        return path
    return conf.pki_dir / "issuer"


_current: tuple[object, KeyStore] | None = None


def key_store() -> KeyStore:
    """The KeyStore of the configured directory (one per directory and process)."""
    global _current
    conf = s2s_settings()
    current = _current
    if current is not None and current[0] is conf:  # hot path: no path arithmetic
        return current[1]
    directory = keys_directory()
    with _stores_lock:
        store = _stores.setdefault(directory, KeyStore(directory))
        _current = (conf, store)
    return store


def sync_registry(store: KeyStore | None = None, now: dt.datetime | None = None) -> None:
    """Copy the keys' public facts into the ``SigningKey`` table (for the admin)."""
    from s2s_auth.issuer.models import SigningKey

    store = store or key_store()
    now = now or _now()
    ring = store.ring(create=False)
    window = retention()
    present = set()
    for key in ring.keys:
        present.add(key.kid)
        SigningKey.objects.update_or_create(
            kid=key.kid,
            defaults={
                "created_at": key.created,
                "retired_at": ring.retired_at(key),
                "published_until": ring.published_until(key, window),
                "pruned_at": None,
                "public_jwk": key.jwk,
            },
        )
    SigningKey.objects.exclude(kid__in=present).filter(pruned_at__isnull=True).update(pruned_at=now)


def _reload(*, setting, **kwargs):
    if setting in ("S2S_AUTH", "BASE_DIR"):
        global _current
        with _stores_lock:
            _stores.clear()
            _current = None


setting_changed.connect(_reload)
