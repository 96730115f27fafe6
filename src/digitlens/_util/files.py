"""Atomic file writes: readers see the old file or the complete new one, never half of one."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

#: a temporary file beside a target untouched for this long belongs to a save that was killed
#: (kill -9, a power cut): a save in progress writes to its file all the time
STALE_SECONDS = 600.0


def remove_stale_temporaries(path: str | os.PathLike, age_s: float = STALE_SECONDS) -> int:
    """Delete the temporary files that killed saves of ``path`` left beside it
    (``.<name>.*.tmp``, untouched for ``age_s`` seconds); returns how many.  A process that is
    interrupted removes its own; only SIGKILL or a crash leaves one behind, and it would
    otherwise stay for ever (hundreds of MB for a big download)."""
    path = Path(path)
    now, removed = time.time(), 0
    try:
        candidates = list(path.parent.glob(f".{path.name}.*.tmp"))
    except OSError:
        return 0
    for p in candidates:
        try:
            if now - p.stat().st_mtime > age_s:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, then rename it over
    ``path``.  If anything fails (even Ctrl-C) the temporary file is removed and ``path`` is
    untouched: readers see either the old file or the complete new one, never half of one.

    Temporary files an earlier, killed save of ``path`` left behind are removed first
    (:func:`remove_stale_temporaries`).

    ``os.replace`` is atomic only within one file system, hence the temporary file lives in the
    target's directory rather than in ``/tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # left by an earlier save of this file that was killed
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
