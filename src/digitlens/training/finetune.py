"""Teach it my handwriting: fine-tune a trained model on the bundled digits plus the learner's.

The recipe (:class:`FinetuneConfig`): start from the trained model's weights, keep a part of the
learner's digits aside (:func:`hold_out`, per digit, chosen by the ``rng``), and train a few
epochs at a small learning rate on a sample of the bundled training digits plus the learner's
remaining digits, repeated (oversampled) so they are about a quarter of what the network sees, and
varied by random tilts, resizes and shifts (:mod:`digitlens.training.augment`).  Training goes
through :func:`digitlens.training.fit.fit`, the one training loop.

The bundled digits are there so the network does not forget MNIST's writers while it learns the
learner's.  :func:`finetune` reports both sides, before and after: accuracy on the learner's
held-out digits (the gain) and on the bundled test digits (what was forgotten).

The result is a new model; the original is never changed, and :func:`save_finetuned` refuses to
write over a zoo model's file.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.checks import check_int, check_number
from ..nn.model import Sequential
from .augment import AugmentConfig
from .fit import History, TrainConfig, fit


@dataclass(frozen=True)
class FinetuneConfig:
    """How a model is fine-tuned on the learner's digits.

    Parameters
    ----------
    epochs : passes over the mixed training set.
    lr : Adam's learning rate (small: the weights start trained).
    batch_size : examples per step.
    held_out : fraction of the learner's digits of each digit kept aside for the report
        (at least one per digit that has two or more).
    share : the learner's (oversampled) digits make about this fraction of each epoch.
    n_bundled : bundled training digits mixed in (drawn by the rng; None: all 4,000).
    max_repeat : at most this many copies of each of the learner's digits per epoch.
    augment : random tilt, resize and shift of every batch.
    """

    epochs: int = 4
    lr: float = 5e-4
    batch_size: int = 64
    held_out: float = 0.25
    share: float = 0.25
    n_bundled: int | None = 2000
    max_repeat: int = 40
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(rotation=10, scale=0.1,
                                                                         shift=2))

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, 50)
        check_int("batch_size", self.batch_size, 1)
        check_int("max_repeat", self.max_repeat, 1)
        if self.n_bundled is not None:
            check_int("n_bundled", self.n_bundled, 0)
        check_number("lr", self.lr, "a positive number", lambda v: v > 0)
        check_number("held_out", self.held_out, "in [0, 1)", lambda v: 0 <= v < 1)
        check_number("share", self.share, "in (0, 1)", lambda v: 0 < v < 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hold_out(y: np.ndarray, fraction: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, held_idx)``: per digit, ``round(fraction * n)`` of its ``n`` examples kept
    aside (at least one when ``n >= 2`` and ``fraction > 0``), chosen by ``rng``."""
    y = np.asarray(y)
    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(idx[:k])
        train.append(idx[k:])
    def cat(parts):
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    return cat(train), cat(held)


def _accuracy(model: Sequential, x: np.ndarray, y: np.ndarray) -> float | None:
    return float(np.mean(model.predict(x) == y)) if len(y) else None


@dataclass
class FinetuneResult:
    """What :func:`finetune` did: the new model and the before/after numbers."""

    model: Sequential
    before: dict[str, float | None]
    after: dict[str, float | None]
    n_train: int
    n_held: int
    held_ids: list[int]
    repeat: int
    seconds: float
    history: History
    config: FinetuneConfig

    def to_dict(self) -> dict[str, Any]:
        return {"before": dict(self.before), "after": dict(self.after), "n_train": self.n_train,
                "n_held": self.n_held, "held_ids": list(self.held_ids), "repeat": self.repeat,
                "seconds": round(self.seconds, 3), "config": self.config.to_dict(),
                "history": self.history.to_dict()}


def finetune(model: Sequential, x_mine: np.ndarray, y_mine: np.ndarray, digits, *,
             rng: np.random.Generator, config: FinetuneConfig | None = None,
             ids: np.ndarray | None = None, held: np.ndarray | None = None,
             callbacks=()) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on ``digits``' training part plus the learner's digits.

    Parameters
    ----------
    model : a trained model reading 0–9 (left untouched).
    x_mine : (N, 1, 28, 28) float32, the learner's pre-processed digits; y_mine : (N,) labels.
    digits : :class:`~digitlens.data.bundled.Digits` (train part mixed in, test part reported).
    rng : the only randomness (held-out choice, bundled sample, shuffling, augmentation).
    ids : the learner's digits' ids (reported for the held-out ones; default 0..N-1).
    held : indices into ``x_mine`` to keep aside instead of choosing them with :func:`hold_out`.

    Returns
    -------
    FinetuneResult : ``before`` / ``after`` hold ``mine_held`` (accuracy on the held-out digits,
    None if none were kept) and ``bundled_test``.
    """
    config = config or FinetuneConfig()
    x_mine = np.asarray(x_mine, np.float32)
    y_mine = np.asarray(y_mine, np.int64)
    if x_mine.ndim != 4 or x_mine.shape[1:] != (1, 28, 28) or len(x_mine) != len(y_mine):
        raise ValueError(f"x_mine must be (N, 1, 28, 28) with N labels, got {x_mine.shape} and "
                         f"{y_mine.shape}")
    ids = np.arange(len(y_mine)) if ids is None else np.asarray(ids, np.int64)
    if held is None:
        train_idx, held_idx = hold_out(y_mine, config.held_out, rng)
    else:
        held_idx = np.asarray(held, np.int64)
        train_idx = np.setdiff1d(np.arange(len(y_mine)), held_idx)
    if len(train_idx) == 0:
        raise ValueError("fine-tuning needs at least one of your digits to learn from "
                         f"(got {len(y_mine)}, {len(held_idx)} kept aside)")
    x_held, y_held = x_mine[held_idx], y_mine[held_idx]
    start = time.perf_counter()
    before = {"mine_held": _accuracy(model, x_held, y_held),
              "bundled_test": _accuracy(model, digits.x_test, digits.y_test)}
    nb = len(digits.x_train) if config.n_bundled is None else min(config.n_bundled,
                                                                   len(digits.x_train))
    pick = rng.choice(len(digits.x_train), size=nb, replace=False) if nb else np.zeros(0, int)
    # repeat the learner's digits so they are ~`share` of an epoch: k*n / (k*n + nb) = share
    n = len(train_idx)
    repeat = int(np.clip(np.ceil(config.share * nb / ((1 - config.share) * n)), 1,
                         config.max_repeat))
    x = np.concatenate([digits.x_train[pick]] + [x_mine[train_idx]] * repeat)  # (nb+k*n, 1, 28, 28)
    y = np.concatenate([digits.y_train[pick]] + [y_mine[train_idx]] * repeat)
    new = model.copy()
    history = fit(new, x, y, TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                                         lr=config.lr, schedule="cosine"),
                  rng=rng, augment=config.augment if not config.augment.is_identity else None,
                  callbacks=callbacks)
    after = {"mine_held": _accuracy(new, x_held, y_held),
             "bundled_test": _accuracy(new, digits.x_test, digits.y_test)}
    return FinetuneResult(model=new, before=before, after=after, n_train=int(n),
                          n_held=int(len(held_idx)), held_ids=[int(i) for i in ids[held_idx]],
                          repeat=repeat, seconds=time.perf_counter() - start, history=history,
                          config=config)


def finetuned_name(base: str, suffix: str = "mine") -> str:
    """The fine-tuned model's own name: ``cnn`` -> ``cnn_mine`` (``cnn_class`` for a class)."""
    if suffix not in ("mine", "class"):
        raise ValueError(f"suffix must be 'mine' or 'class', got {suffix!r}")
    return f"{base}_{suffix}"


def default_path(base: str, suffix: str = "mine") -> Path:
    """Where ``digitlens finetune`` saves: ``<models_dir>/custom/<base>_mine.npz``, beside the
    learner's own networks (so the page offers it), never over the zoo's file."""
    from .._util import paths

    return paths.models_dir() / "custom" / f"{finetuned_name(base, suffix)}.npz"


def save_finetuned(result: FinetuneResult, path, *, base: str) -> Path:
    """Save the fine-tuned model to ``path`` with its before/after numbers in the meta; refuses
    any zoo model's file (the original is kept)."""
    from .._util import paths
    from ..nn.checkpoint import save_model
    from ..nn.zoo import model_names

    path = Path(path)
    zoo_files = {paths.model_path(n).resolve() for n in model_names()}
    if path.resolve() in zoo_files:
        raise ValueError(f"{path} is a zoo model's file; the fine-tuned model is saved under its "
                         f"own name (e.g. {default_path(base)}) so the original is kept")
    meta = {"finetuned_from": base, "test_accuracy": result.after["bundled_test"],
            "finetune": {k: v for k, v in result.to_dict().items() if k != "history"},
            "description": f"the {base} model fine-tuned on your digits"}
    return save_model(result.model, path, meta=meta)
