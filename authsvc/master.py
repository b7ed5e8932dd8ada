"""The master secret and the subkeys derived from it.

The master secret comes from ``AUTHSVC_SECRET_KEY`` or, in embedded mode, from
``<data_dir>/master.key`` (created on first start with mode 0600, in a 0700 directory if it
creates the directory). It is never used directly:
each purpose gets its own subkey through HKDF-SHA256 with a distinct ``info`` label, so a leak
of one subkey says nothing about the others.

Rotation: the former secrets (``AUTHSVC_PREVIOUS_SECRET_KEYS``) derive the same subkeys, so data
protected under them stays readable while it is moved under the current secret.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authsvc.private_paths import FILE_MODE, make_private_dir
from authsvc.settings import Settings

MASTER_FILE = "master.key"
KEY_HASH_LABEL = "authsvc api-key hmac v1"


def derive(master: bytes, label: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label.encode()).derive(
        master
    )


@dataclass(frozen=True, slots=True)
class MasterSecrets:
    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def key_hash_secret(self) -> bytes:
        """The subkey that hashes API and operator keys, from the current master secret."""
        return derive(self.current, KEY_HASH_LABEL)

    @property
    def key_hash_secrets(self) -> tuple[bytes, ...]:
        """The key-hash subkeys of the current master secret, then of each previous one.

        A key stored under a previous secret's subkey still verifies (and can be re-hashed under
        the first). A previous secret equal to the current one, or listed twice, counts once.
        """
        masters = dict.fromkeys((self.current, *self.previous))
        return tuple(derive(master, KEY_HASH_LABEL) for master in masters)


def load_master_secrets(settings: Settings) -> MasterSecrets:
    previous = tuple(s.encode() for s in settings.previous_secret_keys)
    if settings.secret_key:
        return MasterSecrets(settings.secret_key.encode(), previous)
    path = settings.data_dir / MASTER_FILE
    return MasterSecrets(_read_or_create(path), previous)


def _read_or_create(path: Path) -> bytes:
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path.read_text().strip().encode()
