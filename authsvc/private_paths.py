"""Private paths of the embedded mode: the data directory (0700) and its files (0600).

The data directory holds the master secret and the SQLite database (key hashes, encrypted
signing keys, audit log), so only the service's own user should list or read it. Modes are set
when authsvc creates a path and never changed afterwards: an operator who chose other modes for
an existing directory keeps that choice. The requested modes go through the process umask, which
can only remove bits.

SQLite creates its database file with mode 0644 (less the umask), and gives the ``-wal``,
``-shm`` and ``-journal`` companions the mode of the database file. So the database file is
created here first, empty (a valid empty database) and 0600, before any connection opens it.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; a directory created here is 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=DIR_MODE, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600, unless it exists (then it is left as it is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
