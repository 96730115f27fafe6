"""Atomic file writes: readers see the old file or the complete new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, then rename it over
    ``path``.  If anything fails (even Ctrl-C) the temporary file is removed and ``path`` is
    untouched: readers see either the old file or the complete new one, never half of one.

    ``os.replace`` is atomic only within one file system, hence the temporary file lives in the
    target's directory rather than in ``/tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file private (0600); give the result the permissions the target had,
    # or the usual 0644 for a new file
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
