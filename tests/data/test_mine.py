"""My digits: the SQLite store (round trip, concurrency, crash safety, schema version, deleting
for good) and the image-folder import and export."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from digitlens.data.idx import read_idx
from digitlens.data.mine import IDX_IMAGES, IDX_LABELS, DigitStore, export_folder
from digitlens.errors import DigitStoreError
from digitlens.training.mine_io import add_image, import_folder


def grid(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28)).astype(np.float32)


def png_digit(path, *, seven: bool = True) -> bytes:
    """A dark digit on white paper, 56x56, as a learner's scan would be."""
    a = np.full((56, 56), 255, np.uint8)
    if seven:
        a[10:14, 12:44] = 0      # the top bar
        for r in range(14, 48):  # the slanted stem
            c = 44 - (r - 14) // 2
            a[r, c - 2:c + 2] = 0
    else:
        a[8:48, 26:31] = 0       # a 1
    Image.fromarray(a).save(path)
    return path.read_bytes()


@pytest.fixture
def store(tmp_path):
    return DigitStore(tmp_path / "mine.sqlite")


def test_round_trip_keeps_every_field(store):
    g = grid(0)
    i = store.add(g, 7, original=b"\x89PNG fake", source="page", learner="ada", created=12.5)
    d = store.get(i)
    assert (d.label, d.source, d.learner, d.created, d.original) == (7, "page", "ada", 12.5,
                                                                       b"\x89PNG fake")
    assert d.grid.dtype == np.float32 and np.array_equal(d.grid, g)  # bit for bit
    x, y, ids = store.arrays()
    assert x.shape == (1, 1, 28, 28) and np.array_equal(x[0, 0], g)
    assert y.tolist() == [7] and ids.tolist() == [i]
    # a new object on the same file sees the same digit
    assert DigitStore(store.path).get(i).label == 7


def test_relabel_delete_and_ownership(store):
    a = store.add(grid(1), 1, learner="ada")
    b = store.add(grid(2), 2, learner="bo")
    assert not store.relabel(b, 5, learner="ada")      # not ada's
    assert not store.delete(b, learner="ada")
    with pytest.raises(DigitStoreError, match="no digit"):
        store.get(b, learner="ada")
    assert store.relabel(a, 4, learner="ada") and store.get(a).label == 4
    assert store.counts() == {"per_label": [0, 0, 1, 0, 1, 0, 0, 0, 0, 0],
                              "per_learner": {"ada": 1, "bo": 1}, "total": 2}
    assert store.delete(a, learner="ada") and store.count() == 1
    with pytest.raises(DigitStoreError, match="label must be a digit"):
        store.add(grid(3), 10)
    with pytest.raises(DigitStoreError, match="28x28"):
        store.add(np.zeros((20, 20)), 1)


def test_deleting_a_learner_leaves_no_trace_in_the_file(store):
    secret = b"ADA-SECRET-DRAWING-" * 50
    store.add(grid(4), 3, original=secret, learner="ada")
    keep = store.add(grid(5), 3, original=b"bo", learner="bo")
    assert store.delete_learner("ada") == 1
    assert [d.id for d in store.list()] == [keep]
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob("mine.sqlite*"))
    assert secret[:19] not in raw  # secure_delete + WAL checkpoint: the bytes are gone


def test_eight_threads_adding_at_once_lose_nothing(store):
    errors = []

    def work(t):
        try:
            for k in range(25):
                store.add(grid(t * 100 + k), (t + k) % 10, learner=f"t{t}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 200
    assert store.counts()["per_learner"] == {f"t{t}": 25 for t in range(8)}
    ids = [d.id for d in store.list()]
    assert len(set(ids)) == 200


_WRITER = """
import sys, numpy as np
from digitlens.data.mine import DigitStore
s = DigitStore(sys.argv[1])
print("ready", flush=True)
k = 0
while True:  # batches of 20 in one transaction each, until killed
    s.add_many([(np.full((28, 28), 0.5, np.float32), j % 10, b"x" * 2000) for j in range(20)])
    k += 1
"""


def test_a_writer_killed_mid_write_leaves_a_consistent_database(tmp_path):
    path = tmp_path / "mine.sqlite"
    DigitStore(path)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.time() + 20
        while DigitStore(path).count() < 100 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no clean-up, mid-transaction more often than not
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s = DigitStore(path)
    n = s.count()
    assert n >= 100 and n % 20 == 0  # whole transactions only
    assert s.add(grid(9), 9) > 0     # and it still takes writes


def test_a_schema_version_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / "mine.sqlite"
    DigitStore(path).add(grid(0), 1)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(DigitStoreError, match="schema version 99.*reads version 1"):
        DigitStore(path)


def test_import_and_export_round_trip(tmp_path, store):
    src = tmp_path / "in"
    for label, seven in ((7, True), (1, False)):
        (src / str(label)).mkdir(parents=True)
        for k in range(2):
            png_digit(src / str(label) / f"d{k}.png", seven=seven)
    ids = import_folder(store, src)
    assert len(ids) == 4 and sorted(d.label for d in store.list()) == [1, 1, 7, 7]
    d = store.get(ids[-1])
    assert d.source == "import" and d.original == (src / "7" / "d1.png").read_bytes()
    # the stored grid is exactly the one pre-processing path's
    from digitlens.preprocessing import preprocess

    assert np.array_equal(d.grid, preprocess(d.original).image)
    out = tmp_path / "out"
    assert export_folder(store, out)["digits"] == 4
    assert sorted(p.name for p in out.iterdir()) == ["1", "7", IDX_IMAGES, IDX_LABELS]
    assert (out / "7" / f"{d.id}.png").read_bytes() == d.original
    images, labels = read_idx(out / IDX_IMAGES), read_idx(out / IDX_LABELS)
    x, y, _ = store.arrays()
    assert images.shape == (4, 28, 28) and labels.tolist() == y.tolist()
    assert np.abs(images / 255.0 - x[:, 0]).max() <= 0.5 / 255 + 1e-6
    # the export is itself an importable folder (the IDX files beside it are skipped)
    other = DigitStore(tmp_path / "other.sqlite")
    assert len(import_folder(other, out)) == 4


@pytest.mark.parametrize("case, named", [
    ("bad_folder", "seven"), ("loose_file", "loose.png"), ("not_image", "notes.txt"),
    ("unreadable", "locked.png"), ("empty", "has no digits")])
def test_import_errors_name_the_file_and_add_nothing(tmp_path, store, case, named,
                                                    monkeypatch):
    src = tmp_path / "in"
    (src / "7").mkdir(parents=True)
    png_digit(src / "7" / "good.png")
    if case == "bad_folder":
        (src / "seven").mkdir()
    elif case == "loose_file":
        png_digit(src / "loose.png")
    elif case == "not_image":
        (src / "7" / "notes.txt").write_text("a seven")
    elif case == "unreadable":
        p = src / "7" / "locked.png"
        png_digit(p)
        p.chmod(0)
        if os.geteuid() == 0:  # root reads any file: make the read fail as it would for others
            import digitlens.data.images as images

            real = images.read_source_bytes

            def refuse(path, *a, **k):
                if str(path).endswith("locked.png"):
                    raise PermissionError(13, "Permission denied", str(path))
                return real(path, *a, **k)

            monkeypatch.setattr(images, "read_source_bytes", refuse)
    else:
        (src / "7" / "good.png").unlink()
    with pytest.raises(DigitStoreError, match=named):
        import_folder(store, src)
    assert store.count() == 0  # all or nothing


def test_add_image_uses_the_one_preprocessing(tmp_path, store):
    data = png_digit(tmp_path / "a.png")
    i = add_image(store, data, 7, learner="ada")
    from digitlens.preprocessing import preprocess

    assert np.array_equal(store.get(i).grid, preprocess(data).image)
