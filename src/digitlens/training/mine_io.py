"""My digits in and out: every image goes through the one pre-processing path
(:func:`digitlens.preprocessing.preprocess`) before it is stored in
:class:`~digitlens.data.mine.DigitStore` (which sits below the pre-processing and stores the grids
it is given).

- :func:`add_image`: one drawing or upload -> its grid -> the store.
- :func:`read_folder` / :func:`import_folder`: the usual image-folder layout, ``DIR/0/*.png`` …
  ``DIR/9/*.png``.  Everything is read and pre-processed first, and stored in one transaction:
  a folder with one bad file adds nothing, and the error names that file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data import images as _images
from ..data.mine import IDX_IMAGES, IDX_LABELS, DigitStore, check_label
from ..errors import DigitStoreError, PreprocessError

#: files an image folder may hold beside the digit folders (ours, written by ``mine export``)
_IGNORED = {IDX_IMAGES, IDX_LABELS, ".DS_Store", "Thumbs.db", "desktop.ini"}
MAX_FILES = 20_000


def grid_of(source, **switches):
    """The 28×28 grid of ``source`` (bytes, a path, an array...) through the one pre-processing
    path; returns ``(grid (28, 28) float32, Preprocessed)``."""
    from ..preprocessing import preprocess

    p = preprocess(source, **switches)
    return p.image, p


def add_image(store: DigitStore, data: bytes, label: int, *, source: str = "page",
              learner: str = "") -> int:
    """Pre-process ``data`` (an encoded image) and store it with ``label``; returns its id.

    Raises :class:`~digitlens.errors.PreprocessError` (not an image, no ink...) or
    :class:`~digitlens.errors.DigitStoreError` (bad label or nickname)."""
    check_label(label)
    grid, _ = grid_of(bytes(data))
    return store.add(grid, label, original=bytes(data), source=source, learner=learner)


def _folder_files(folder: Path) -> list[tuple[Path, int]]:
    if not folder.is_dir():
        raise DigitStoreError(f"{folder} is not a folder; expected {folder}/0/*.png … "
                              f"{folder}/9/*.png")
    found: list[tuple[Path, int]] = []
    for entry in sorted(folder.iterdir()):
        if entry.name in _IGNORED or entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name not in {str(k) for k in range(10)}:
                raise DigitStoreError(f"{entry}: a folder inside {folder} must be named after its "
                                      "digit, 0 to 9")
            for f in sorted(entry.iterdir()):
                if f.name.startswith(".") or f.name in _IGNORED:
                    continue
                if f.is_dir():
                    raise DigitStoreError(f"{f}: a digit folder holds image files only, not "
                                          "folders")
                found.append((f, int(entry.name)))
        else:
            raise DigitStoreError(f"{entry}: files go inside a digit folder "
                                  f"({folder}/0/ … {folder}/9/), not directly in {folder}")
    if not found:
        raise DigitStoreError(f"{folder} has no digits: expected {folder}/0/*.png … "
                              f"{folder}/9/*.png")
    if len(found) > MAX_FILES:
        raise DigitStoreError(f"{folder} has {len(found):,} files; the limit is {MAX_FILES:,}")
    return found


def read_folder(folder: str | os.PathLike) -> list[tuple]:
    """Read and pre-process every image of an image folder; returns ``(grid, label, bytes)``
    items.  A bad layout, a file that is not an image, an unreadable file or one with no ink
    raises :class:`~digitlens.errors.DigitStoreError` naming the file."""
    items = []
    for path, label in _folder_files(Path(folder)):
        try:
            data = _images.read_source_bytes(path)
        except OSError as e:
            raise DigitStoreError(f"{path}: cannot be read ({e.strerror or e})") from None
        except PreprocessError as e:
            raise DigitStoreError(f"{path}: {e}") from None
        try:
            grid, _ = grid_of(data)
        except PreprocessError as e:
            raise DigitStoreError(f"{path}: {e}") from None
        items.append((grid, label, data))
    return items


def import_folder(store: DigitStore, folder: str | os.PathLike, *, learner: str = "") -> list[int]:
    """Add every digit of an image folder to ``store`` in one transaction; returns the new ids."""
    return store.add_many(read_folder(folder), source="import", learner=learner)

