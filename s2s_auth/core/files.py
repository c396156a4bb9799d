"""Writing key and certificate files: atomically, with their mode from the start.

A reader (a TLS server reloading its certificate, a verifier re-reading the CRL) sees
the old file or the new one, never half of one; a private key is never readable by
others, not even for a moment.

A key and its certificate are two files, so replacing both cannot be one atomic step.
:func:`write_pair` replaces the key first and the chain second; :func:`read_pair`
reads the chain first and the key second and retries while they do not match. A
reader can then only catch the old chain with the new key (between the two
replaces), never the new chain with the old key, and its retry sees the new pair a
moment later. A reader that cannot retry (OpenSSL loading both files itself) fails
that one load: the TLS worker keeps its previous context then
(:func:`s2s_auth.tls.gunicorn.ssl_context`). Two files rather than one combined PEM
because every TLS server and client takes them so (``TLS_CERT``/``TLS_KEY``,
``curl --cert/--key``), and the chain stays world-readable while the key is 0600.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "PUBLIC_FILE",
    "PairMismatch",
    "read_pair",
    "same_key",
    "write_atomic",
    "write_pair",
]

#: Mode of private keys and the CA's index.
PRIVATE_FILE = 0o600
#: Mode of certificates, bundles and CRLs.
PUBLIC_FILE = 0o644
#: Mode of directories holding private material.
PRIVATE_DIR = 0o700


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically; the file is created with ``mode``.

    The temp file (same directory, then ``os.replace``) is created by
    ``os.open(..., mode)`` and never chmod'ed afterwards.
    """
    path = Path(path)
    directory = path.parent
    for _ in range(100):
        tmp = directory / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        break
    else:  # pragma: no cover
        raise FileExistsError(f"Could not create a temporary file in {directory}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class PairMismatch(ValueError):
    """A certificate file and a key file that stayed mismatched over every retry."""


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


def write_pair(cert_path: Path, key_path: Path, chain_pem: bytes, key_pem: bytes) -> None:
    """Replace a key (0600) and its chain (0644): the key first, the chain second."""
    write_atomic(Path(key_path), key_pem, PRIVATE_FILE)
    write_atomic(Path(cert_path), chain_pem, PUBLIC_FILE)
    _fsync_dir(Path(cert_path).parent)


def read_pair(
    cert_path: Path, key_path: Path, *, attempts: int = 50, pause: float = 0.02
) -> tuple[bytes, bytes, list, object]:
    """``(chain_pem, key_pem, chain, private_key)`` of a matching pair.

    Reads the chain, then the key (see the module docstring for why that order) and
    retries while the key is not the leaf's. Raises :class:`PairMismatch` when they
    never match, OSError when a file is missing, ValueError when one is not PEM.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    for attempt in range(attempts):
        chain_pem = Path(cert_path).read_bytes()
        key_pem = Path(key_path).read_bytes()
        chain = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if same_key(chain[0].public_key(), key.public_key()):
            return chain_pem, key_pem, chain, key
        if attempt + 1 < attempts:
            time.sleep(pause)
    raise PairMismatch(f"{key_path} is not the key of {cert_path}")


def same_key(a, b) -> bool:
    """Whether two public keys are the same key (their SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization

    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*spki) == b.public_bytes(*spki)
