"""How well does a model read *me*?  Accuracy on the learner's own digits beside the bundled test
digits (MNIST's writers), the confusion matrix, and the misread digits.

The issue-16 ``digitlens.evaluate`` package had not landed when this was written, so the small
confusion computation lives here (:func:`confusion_matrix`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.model import Sequential


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts: row = the true digit, column = the answer.

    Examples
    --------
    >>> confusion_matrix(np.array([7, 7, 1]), np.array([7, 2, 1]))[7].tolist()
    [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and "
                         f"{y_pred.shape}")
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (y_true, y_pred), 1)  # (n_classes, n_classes)
    return m


def reads_ten_digits(model: Sequential) -> bool:
    """Only a model that answers 0–9 can be scored on a learner's digits (not ``binary``)."""
    return [int(c) for c in model.classes] == list(range(10))


def worst_confusion(m: np.ndarray) -> tuple[int, int, int] | None:
    """``(true digit, answer, count)`` of the most frequent mistake (None if there is none)."""
    off = m.copy()
    np.fill_diagonal(off, 0)
    if off.max() == 0:
        return None
    t, p = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(t), int(p), int(off[t, p])


def sentence(bundled: float | None, mine: float | None, worst) -> str:
    """"94.8% on MNIST's writers, 71% on yours: your 7s are read as 2s"."""
    if mine is None:
        return "No digits of yours yet: draw some on the My digits tab."
    head = (f"{bundled:.1%} on MNIST's writers, " if bundled is not None else "") + \
        f"{mine:.1%} on yours"
    if worst is None:
        return head + ": it read every one of your digits correctly."
    t, p, n = worst
    if n == 1:
        return head + f": one of your {t}s was read as a {p}."
    return head + f": your {t}s are read as {p}s ({n} times)."


def read_me(model: Sequential, x: np.ndarray, y: np.ndarray, ids: np.ndarray | None = None, *,
            x_test: np.ndarray | None = None, y_test: np.ndarray | None = None
            ) -> dict[str, Any]:
    """Score ``model`` on the learner's digits ``x`` (N, 1, 28, 28), labels ``y`` (N,), and on
    the bundled test digits if given.

    Returns plain data: ``accuracy`` (None with no digits), ``bundled_accuracy``, ``n``,
    ``confusion`` (10×10 list, rows = true digit), ``per_digit`` (accuracy per true digit, None
    where there are none), ``misread`` (``{"id", "label", "answer", "probability"}`` for each
    mistake, most confident first), ``worst`` and ``sentence``.
    """
    if not reads_ten_digits(model):
        raise ValueError("this model does not read all ten digits")
    y = np.asarray(y, np.int64)
    ids = np.arange(len(y)) if ids is None else np.asarray(ids, np.int64)
    bundled = None
    if x_test is not None and len(x_test):
        bundled = float(np.mean(model.predict(x_test) == np.asarray(y_test)))
    if len(y) == 0:
        return {"n": 0, "accuracy": None, "bundled_accuracy": bundled, "confusion": None,
                "per_digit": [None] * 10, "misread": [], "worst": None,
                "sentence": sentence(bundled, None, None)}
    p = model.predict_proba(x)                  # (N, 10)
    answer = np.argmax(p, axis=1)               # (N,)
    m = confusion_matrix(y, answer)
    rows = m.sum(axis=1)
    wrong = np.flatnonzero(answer != y)
    wrong = wrong[np.argsort(-p[wrong, answer[wrong]], kind="stable")]
    worst = worst_confusion(m)
    acc = float(np.mean(answer == y))
    return {"n": int(len(y)), "accuracy": acc, "bundled_accuracy": bundled,
            "confusion": m.tolist(),
            "per_digit": [float(m[k, k] / rows[k]) if rows[k] else None for k in range(10)],
            "misread": [{"id": int(ids[i]), "label": int(y[i]), "answer": int(answer[i]),
                         "probability": float(p[i, answer[i]])} for i in wrong],
            "worst": list(worst) if worst else None,
            "sentence": sentence(bundled, acc, worst)}


def saved_models() -> dict[str, Any]:
    """``{name: path}`` of the saved models that read all ten digits: the trained zoo models
    (zoo order), then the fine-tuned and custom ones in ``<models_dir>/custom/``."""
    from .._util import paths
    from ..nn.zoo import MODELS

    found = {n: paths.model_path(n) for n, e in MODELS.items()
             if tuple(e.classes) == tuple(range(10)) and paths.model_path(n).is_file()}
    custom = paths.models_dir() / "custom"
    if custom.is_dir():
        from .custom import NAME_RULE

        for p in sorted(custom.glob("*.npz")):
            if NAME_RULE.match(p.stem) and p.stem not in MODELS:
                found[p.stem] = p
    return found


def read_me_all(models: dict[str, Sequential], x: np.ndarray, y: np.ndarray, ids=None, *,
                digits=None) -> list[dict[str, Any]]:
    """:func:`read_me` for every model of ``models`` that reads all ten digits, each row with
    its ``model`` name (``digits``: the bundled split whose test part is the comparison)."""
    rows = []
    for name, model in models.items():
        if not reads_ten_digits(model):
            continue
        r = read_me(model, x, y, ids, x_test=None if digits is None else digits.x_test,
                    y_test=None if digits is None else digits.y_test)
        rows.append({"model": name, **r})
    return rows


def hardest(rows: list[dict[str, Any]], ids: np.ndarray, y: np.ndarray, k: int = 12
            ) -> dict[str, Any]:
    """The class's hardest digits from :func:`read_me_all`'s ``rows``: ``per_digit`` (each digit
    0–9: how many there are and the models' mean accuracy on them, hardest first) and
    ``examples`` (up to ``k`` digits misread by the most models: ``{"id", "label", "models"}``)."""
    y = np.asarray(y, np.int64)
    n = np.bincount(y, minlength=10)
    per = []
    for d in range(10):
        accs = [r["per_digit"][d] for r in rows if r["per_digit"][d] is not None]
        if n[d]:
            per.append({"label": d, "n": int(n[d]), "accuracy": float(np.mean(accs))})
    per.sort(key=lambda e: (e["accuracy"], -e["n"]))
    label = {int(i): int(t) for i, t in zip(ids, y)}
    misses: dict[int, list[str]] = {}
    for r in rows:
        for m in r["misread"]:
            misses.setdefault(m["id"], []).append(r["model"])
    top = sorted(misses.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:k]
    return {"per_digit": per,
            "examples": [{"id": i, "label": label[i], "models": ms} for i, ms in top]}
