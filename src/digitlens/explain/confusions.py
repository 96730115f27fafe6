"""Which digits a model confuses with which, measured on the bundled test digits: the contrast a
learner probably means.

When a model is sure (the runner-up has 0.1%), "why 9 and not 7" answers a question nobody asked;
the digit the learner has in mind is the one people and networks mix up with a 9: a 4.  Which
digits those are is measured, not assumed: the model's confusion counts on the 1,000 bundled
test digits (how often a true ``a`` was read as ``b``, and a true ``b`` as ``a``), with the
probability it gives ``b`` on true ``a``s as the tie-break (a model that makes few mistakes still
leans towards some digits more than others).  Computed once per model
(:meth:`digitlens.recognizer.Recognizer.confusions` caches it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.model import Sequential
from .attribution import class_logits, class_probabilities

#: below this probability the runner-up is not a real rival: suggest the usual confusions
RUNNER_UP_FLOOR = 0.05


@dataclass
class Confusions:
    """A model's mistakes on labelled digits.

    Attributes
    ----------
    classes : the model's labels, in output order.
    counts : (K, K) ints, ``counts[i, j]`` = digits of class ``classes[i]`` read as
        ``classes[j]`` (the diagonal: read correctly).
    mean_p : (K, K) floats, ``mean_p[i, j]`` = the mean probability given to ``classes[j]`` on
        the digits of class ``classes[i]``.
    n : how many digits were read.
    """

    classes: list[int]
    counts: np.ndarray
    mean_p: np.ndarray
    n: int

    def rivals(self, a: int, k: int = 3) -> list[tuple[int, int]]:
        """The ``k`` digits most often confused with ``a``: ``[(digit, times), ...]``, where
        ``times`` counts both directions (a read as it, it read as a), most first; ties are
        broken by the mean probabilities, both ways."""
        i = self.classes.index(int(a))
        both = self.counts[i] + self.counts[:, i]  # (K,)
        soft = self.mean_p[i] + self.mean_p[:, i]  # (K,)
        order = sorted((j for j in range(len(self.classes)) if j != i),
                       key=lambda j: (-int(both[j]), -float(soft[j]), j))
        return [(int(self.classes[j]), int(both[j])) for j in order[:k]]

    def to_dict(self) -> dict:
        return {"classes": [int(c) for c in self.classes], "counts": self.counts.tolist(),
                "n": int(self.n)}


def confusions(model: Sequential, x: np.ndarray, y: np.ndarray, *,
               batch_size: int = 500) -> Confusions:
    """Read every digit of ``x`` ``(N, 1, 28, 28)`` with labels ``y`` ``(N,)`` once and count.

    Examples
    --------
    >>> import numpy as np, digitlens as dl
    >>> m = dl.build_model("logistic", np.random.default_rng(0))
    >>> c = confusions(m, np.zeros((4, 1, 28, 28)), np.array([0, 1, 2, 3]))
    >>> int(c.counts.sum())
    4
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be (N, 1, 28, 28) with N = len(y) > 0, got {x.shape} and "
                         f"{y.shape}")
    classes = [int(c) for c in model.classes]
    k = len(classes)
    counts = np.zeros((k, k), dtype=np.int64)
    p_sum = np.zeros((k, k), dtype=np.float64)
    seen = np.zeros(k, dtype=np.int64)
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size].reshape((-1,) + model.input_shape).astype(model.dtype)
        z = model.forward(xb)  # (n, outputs)
        pred = np.argmax(class_logits(model, z), axis=1)  # (n,)
        p = class_probabilities(model, z)  # (n, K)
        for yi, pi, prob in zip(y[s:s + batch_size], pred, p):
            if int(yi) not in classes:
                continue  # a digit this model does not know (the binary model's 2..9)
            i = classes.index(int(yi))
            counts[i, pi] += 1
            p_sum[i] += prob
            seen[i] += 1
    mean_p = p_sum / np.maximum(seen, 1)[:, None]
    return Confusions(classes, counts, mean_p, int(seen.sum()))


def choose_contrast(pred: int, runner: int, p_runner: float, table: Confusions | None,
                    k: int = 3) -> tuple[int, str, list[tuple[int, int]]]:
    """The digit to compare the answer ``pred`` with when the learner has not chosen one:
    ``(b, reason, suggestions)``.

    The runner-up (``reason = "runner-up"``) when it has at least :data:`RUNNER_UP_FLOOR`;
    otherwise the digit most often confused with ``pred`` on the test digits
    (``"usual confusion"``), with the ``k`` usual confusions as ``suggestions`` for the learner
    to choose from (``[(digit, times)]``; also given, for the page, when the runner-up is kept).
    """
    suggestions = table.rivals(pred, k) if table is not None else []
    if p_runner >= RUNNER_UP_FLOOR or not suggestions:
        return int(runner), "runner-up", suggestions
    return int(suggestions[0][0]), "usual confusion", suggestions


def contrast_for(ans, vs: int | None, table: Confusions | None
                 ) -> tuple[str, list[tuple[int, int]]]:
    """Settle ``ans.b`` (an :class:`~digitlens.explain.steps.Answer`): the learner's ``vs``, else
    :func:`choose_contrast`'s pick.  Returns ``(reason, suggestions)`` for the contrast."""
    if vs is not None:
        return "chosen", (table.rivals(ans.pred) if table is not None else [])
    b, reason, suggestions = choose_contrast(ans.pred, ans.runner, ans.p_of(ans.runner), table)
    ans.b = b
    return reason, suggestions
