"""My digits: the learner's own labelled digits (and a class's), in one SQLite database.

The database is ``<DIGITLENS_HOME>/mine.sqlite`` (the standard library's :mod:`sqlite3`: an
embedded database, nothing to start).  Each digit keeps

- ``original``: the bytes that were uploaded or drawn (a PNG from the page, a file imported),
- ``grid``: its 28×28 pre-processed image, float32 in [0, 1] (ink bright on dark, as in MNIST),
- ``label`` (0–9), ``source`` (``"page"``, ``"import"``, ``"class"``...), ``learner`` (a
  nickname in class mode, ``""`` for the one learner at this computer) and ``created`` (Unix
  seconds).

This module sits in the data layer, *below* the pre-processing: it stores grids it is given.
The one pre-processing path runs above it (:mod:`digitlens.training.mine_io`).

Safety and durability:

- every write is one transaction (``with conn:``): a crash leaves either all of it or none;
- WAL journal mode, so readers never block the writer and a killed writer leaves a consistent
  database; ``busy_timeout`` lets concurrent writers (threads or processes) wait their turn;
- ``secure_delete`` is on and the WAL is checkpointed after a delete, so a deleted digit's bytes
  are overwritten in the file: deleting a learner deletes their digits for good;
- a ``schema_version`` table; a database written by another schema is refused with a clear
  :class:`~digitlens.errors.DigitStoreError` rather than misread.

Each call opens its own connection, so one :class:`DigitStore` may be shared by any number of
threads.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import DigitStoreError

SCHEMA_VERSION = 1
GRID_SHAPE = (28, 28)
MAX_ORIGINAL_BYTES = 2 * 1024 * 1024
"""Largest original image kept with a digit (bytes)."""
MAX_NICKNAME = 24

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE digits (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    label    INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    grid     BLOB    NOT NULL CHECK (length(grid) = 3136),
    original BLOB    NOT NULL,
    source   TEXT    NOT NULL,
    learner  TEXT    NOT NULL DEFAULT '',
    created  REAL    NOT NULL
);
CREATE INDEX digits_learner ON digits (learner);
"""


def default_path() -> Path:
    """``<DIGITLENS_HOME>/mine.sqlite`` (computed when called, never at import)."""
    from .._util import paths

    return paths.home() / "mine.sqlite"


@dataclass(frozen=True)
class Digit:
    """One stored digit.  ``grid`` is (28, 28) float32 in [0, 1]; ``original`` is None when a
    listing left the bytes out."""

    id: int
    label: int
    grid: np.ndarray
    source: str
    learner: str
    created: float
    original: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data without the bytes (the page draws ``grid`` itself)."""
        return {"id": self.id, "label": self.label, "source": self.source,
                "learner": self.learner, "created": round(self.created, 3)}


def check_label(label: Any) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
            or not 0 <= int(label) <= 9:
        raise DigitStoreError(f"label must be a digit 0-9, got {label!r}")
    return int(label)


def check_grid(grid: Any) -> np.ndarray:
    """``grid`` as a (28, 28) float32 array in [0, 1]; raises DigitStoreError otherwise."""
    a = np.asarray(grid, dtype=np.float32)
    if a.shape == (1, 28, 28):
        a = a[0]
    if a.shape != GRID_SHAPE:
        raise DigitStoreError(f"a digit's grid must be 28x28, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
        raise DigitStoreError("a digit's grid must hold finite values in [0, 1]")
    return np.ascontiguousarray(a)


def check_nickname(learner: Any) -> str:
    """A class nickname: 1-24 printable characters (``""`` is the single learner)."""
    if not isinstance(learner, str):
        raise DigitStoreError(f"learner must be text, got {type(learner).__name__}")
    s = learner.strip()
    if len(s) > MAX_NICKNAME or not all(c.isprintable() for c in s):
        raise DigitStoreError(f"a nickname has at most {MAX_NICKNAME} printable characters, "
                              f"got {learner!r}")
    return s


class DigitStore:
    """The digits database at ``path`` (default :func:`default_path`), created on first use.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> store = DigitStore(os.path.join(tempfile.mkdtemp(), "mine.sqlite"))
    >>> i = store.add(np.zeros((28, 28)), 7, original=b"png...", source="page")
    >>> [(d.id, d.label) for d in store.list()]
    [(1, 7)]
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.timeout = float(timeout)
        self._init()

    # ------------------------------------------------------------------ connections, schema
    @contextlib.contextmanager
    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level="DEFERRED")
        try:
            conn.execute("PRAGMA secure_delete = ON")
            # WAL + NORMAL: a killed process never loses or half-writes a committed transaction;
            # only a power cut may lose the last few (SQLite's documented trade-off for WAL)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            yield conn
        finally:
            conn.close()

    def _init(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            with conn:  # one transaction: the tables and the version appear together
                conn.execute("BEGIN IMMEDIATE")
                names = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "schema_version" not in names:
                    if "digits" in names:
                        raise DigitStoreError(f"{self.path} has a digits table but no schema "
                                              "version: it was not written by digitlens")
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            row = conn.execute("SELECT version FROM schema_version").fetchone()
        found = row[0] if row else None
        if found != SCHEMA_VERSION:
            raise DigitStoreError(
                f"{self.path} was written with digit-database schema version {found}, but this "
                f"digitlens reads version {SCHEMA_VERSION}: use the digitlens that wrote it to "
                "`digitlens mine export` the digits, then move the file away and import them")

    # ------------------------------------------------------------------ writing
    def add(self, grid, label: int, *, original: bytes = b"", source: str = "page",
            learner: str = "", created: float | None = None) -> int:
        """Store one digit; returns its id."""
        return self.add_many([(grid, label, original)], source=source, learner=learner,
                             created=created)[0]

    def add_many(self, items: Iterable[tuple], *, source: str = "import", learner: str = "",
                 created: float | None = None) -> list[int]:
        """Store ``(grid, label, original)`` items in one transaction (all or none); returns the
        new ids in order."""
        learner = check_nickname(learner)
        if not isinstance(source, str) or not 0 < len(source) <= 32:
            raise DigitStoreError(f"source must be a short text, got {source!r}")
        rows = []
        for grid, label, original in items:
            original = bytes(original or b"")
            if len(original) > MAX_ORIGINAL_BYTES:
                raise DigitStoreError(f"an original image of {len(original):,} bytes is over the "
                                      f"limit of {MAX_ORIGINAL_BYTES:,}")
            rows.append((check_label(label), check_grid(grid).tobytes(), original, source,
                         learner, time.time() if created is None else float(created)))
        ids = []
        with self._connect() as conn, conn:
            for r in rows:
                cur = conn.execute("INSERT INTO digits (label, grid, original, source, learner, "
                                   "created) VALUES (?, ?, ?, ?, ?, ?)", r)
                ids.append(int(cur.lastrowid))
        return ids

    def relabel(self, digit_id: int, label: int, *, learner: str | None = None) -> bool:
        """Give digit ``digit_id`` a new label; with ``learner``, only if it is theirs.
        Returns whether a digit changed."""
        label = check_label(label)
        sql, args = "UPDATE digits SET label = ? WHERE id = ?", [label, int(digit_id)]
        if learner is not None:
            sql, args = sql + " AND learner = ?", args + [check_nickname(learner)]
        with self._connect() as conn, conn:
            return conn.execute(sql, args).rowcount > 0

    def delete(self, digit_id: int, *, learner: str | None = None) -> bool:
        """Delete digit ``digit_id`` for good; with ``learner``, only if it is theirs."""
        sql, args = "DELETE FROM digits WHERE id = ?", [int(digit_id)]
        if learner is not None:
            sql, args = sql + " AND learner = ?", args + [check_nickname(learner)]
        return self._delete(sql, args) > 0

    def delete_learner(self, learner: str) -> int:
        """Delete every digit of ``learner`` for good; returns how many."""
        return self._delete("DELETE FROM digits WHERE learner = ?", [check_nickname(learner)])

    def clear(self) -> int:
        """Delete every digit for good; returns how many."""
        return self._delete("DELETE FROM digits", [])

    def _delete(self, sql: str, args: list) -> int:
        with self._connect() as conn:
            with conn:
                n = conn.execute(sql, args).rowcount
            # secure_delete zeroes the freed pages; the checkpoint moves them into the main file
            # and truncates the WAL, so no copy of the deleted rows is left in the log either
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    # ------------------------------------------------------------------ reading
    def _where(self, learner: str | None, label: int | None,
               class_only: bool = False) -> tuple[str, list]:
        clauses, args = [], []
        if class_only:  # the class's digits: every learner with a nickname
            clauses.append("learner != ''")
        if learner is not None:
            clauses.append("learner = ?")
            args.append(check_nickname(learner))
        if label is not None:
            clauses.append("label = ?")
            args.append(check_label(label))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def list(self, *, learner: str | None = None, label: int | None = None,
             with_original: bool = False, class_only: bool = False) -> list[Digit]:
        """The stored digits in the order they were added (optionally one learner's / one
        label's / only the class's, i.e. those with a nickname)."""
        where, args = self._where(learner, label, class_only)
        cols = "id, label, grid, source, learner, created" + (", original" if with_original
                                                               else "")
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {cols} FROM digits{where} ORDER BY id", args).fetchall()
        return [_digit(r) for r in rows]

    def get(self, digit_id: int, *, learner: str | None = None) -> Digit:
        """One digit with its original bytes; with ``learner``, only if it is theirs."""
        where, args = self._where(learner, None)
        where = (where + " AND" if where else " WHERE") + " id = ?"
        with self._connect() as conn:
            row = conn.execute("SELECT id, label, grid, source, learner, created, original "
                               f"FROM digits{where}", args + [int(digit_id)]).fetchone()
        if row is None:
            raise DigitStoreError(f"there is no digit {digit_id}"
                                  + (" of yours" if learner is not None else ""))
        return _digit(row)

    def arrays(self, *, learner: str | None = None, class_only: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (N, 1, 28, 28) float32, y (N,) int64, ids (N,) int64)``: the digits ready for a
        model."""
        digits = self.list(learner=learner, class_only=class_only)
        x = np.zeros((len(digits), 1, 28, 28), np.float32)
        for i, d in enumerate(digits):
            x[i, 0] = d.grid
        return (x, np.array([d.label for d in digits], np.int64),
                np.array([d.id for d in digits], np.int64))

    def next_label(self, *, learner: str | None = None) -> int:
        """The digit to ask for next: the one after the last digit added (0 when there is
        none), so the prompt cycles through 0–9."""
        where, args = self._where(learner, None)
        with self._connect() as conn:
            row = conn.execute(f"SELECT label FROM digits{where} ORDER BY id DESC LIMIT 1",
                               args).fetchone()
        return 0 if row is None else (int(row[0]) + 1) % 10

    def count(self, *, learner: str | None = None) -> int:
        where, args = self._where(learner, None)
        with self._connect() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM digits{where}", args).fetchone()[0])

    def counts(self) -> dict[str, Any]:
        """How many digits per label (a list of ten) and per learner (a dict)."""
        with self._connect() as conn:
            per_label = dict(conn.execute("SELECT label, COUNT(*) FROM digits GROUP BY label"))
            per_learner = dict(conn.execute(
                "SELECT learner, COUNT(*) FROM digits GROUP BY learner ORDER BY learner"))
        return {"per_label": [int(per_label.get(k, 0)) for k in range(10)],
                "per_learner": {k: int(v) for k, v in per_learner.items()},
                "total": int(sum(per_label.values()))}


def _digit(row) -> Digit:
    grid = np.frombuffer(row[2], dtype=np.float32).reshape(GRID_SHAPE).copy()
    return Digit(id=int(row[0]), label=int(row[1]), grid=grid, source=row[3], learner=row[4],
                 created=float(row[5]), original=bytes(row[6]) if len(row) > 6 else None)


# ---------------------------------------------------------------------- export
IDX_IMAGES = "mine-images-idx3-ubyte"
IDX_LABELS = "mine-labels-idx1-ubyte"

_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp"), (b"GIF8", ".gif"),
          (b"RIFF", ".webp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _suffix(data: bytes) -> str:
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    return ".png"


def export_folder(store: DigitStore, folder: str | os.PathLike, *,
                  learner: str | None = None, class_only: bool = False) -> dict[str, Any]:
    """Write the digits to ``folder`` in the image-folder layout and as IDX files.

    ``folder/<label>/<id>.png`` holds each digit's original image (a digit without one gets its
    28×28 grid as a PNG, ink bright on dark); ``folder/mine-images-idx3-ubyte`` (N, 28, 28) uint8
    and ``folder/mine-labels-idx1-ubyte`` (N,) uint8 hold the pre-processed grids, MNIST-style.
    Every file is written atomically.  Returns ``{"digits": N, "folder": str}``.
    """
    from .._util.files import atomic_write
    from .._util.png import gray_png
    from .idx import write_idx

    folder = Path(folder)
    digits = store.list(learner=learner, with_original=True, class_only=class_only)
    grids = np.zeros((len(digits), 28, 28), np.uint8)
    for i, d in enumerate(digits):
        grids[i] = np.round(d.grid * 255).astype(np.uint8)
        data = d.original or gray_png(grids[i])
        target = folder / str(d.label) / f"{d.id}{_suffix(data)}"
        atomic_write(target, lambda f, b=data: f.write(b))
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / IDX_IMAGES, grids)
    write_idx(folder / IDX_LABELS, np.array([d.label for d in digits], np.uint8))
    return {"digits": len(digits), "folder": str(folder)}
