"""Writing key and certificate files: atomically, with their mode from the start.

A reader (a TLS server reloading its certificate, a verifier re-reading the CRL) sees
the old file or the new one, never half of one; a private key is never readable by
others, not even for a moment.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "PUBLIC_FILE", "write_atomic"]

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
