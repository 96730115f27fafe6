"""Where a training step of the zoo's ``cnn`` spends its time, layer by layer.

Runs the real training step (the steps ``Sequential.loss_and_grads`` runs in training mode, where
a ReLU and the max-pooling after it are one step; the loss; and the backward pass that ``fit``
uses, without the image's own gradient) on batches of the
bundled digits, with one BLAS thread, and times every layer's forward and backward separately.
Each layer's time is the best over ``--repeats`` steps (a shared machine is noisy), reported in
milliseconds per batch and in microseconds per image, for each ``--batch-sizes``: comparing the
per-image times of a batch of 64 with a batch of 16 shows which layers suffer from working on
arrays too big for the processor's caches.  Not a test: run it by hand.

    python benchmarks/profile_cnn.py [--repeats 30] [--batch-sizes 64 32 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import digitlens as dl
from digitlens.nn import LOSSES
from digitlens.nn.zoo import build_model


def profile(model, x, y, repeats, rng):
    """Best time per training step and direction over ``repeats`` steps: {(k, dir): seconds},
    ``k`` indexing ``model._training_steps()`` (what ``loss_and_grads`` runs: every layer, a ReLU
    and its max-pooling as one step), ``k = len(steps)`` the loss."""
    steps = model._training_steps()
    first = next(k for k, (_, op) in enumerate(steps) if op.params)
    best: dict[tuple[int, str], float] = {}
    loss_fn = LOSSES[model.loss][0]
    for _ in range(repeats):
        a, caches = model.as_input(x), []
        for k, (_, op) in enumerate(steps):
            t = time.perf_counter()
            a, cache = op.forward(a, training=True, rng=rng)
            best[k, "fwd"] = min(best.get((k, "fwd"), np.inf), time.perf_counter() - t)
            caches.append(cache)
        t = time.perf_counter()
        _, d = loss_fn(a, model.targets(y, a.shape[1]))
        best[len(steps), "fwd"] = min(best.get((len(steps), "fwd"), np.inf),
                                      time.perf_counter() - t)
        for k in range(len(steps) - 1, first - 1, -1):
            op = steps[k][1]
            t = time.perf_counter()
            if k == first:
                op.param_grads(d, caches[k])
            else:
                d, _ = op.backward(d, caches[k])
            best[k, "bwd"] = min(best.get((k, "bwd"), np.inf), time.perf_counter() - t)
    return best


def _step_name(i: int, op) -> str:
    if hasattr(op, "relu"):  # PoolThenReLU
        return f"{i}-{i + 1}:maxpool2d+relu"
    return f"{i}:{op.type}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 32, 16])
    args = ap.parse_args()
    d = dl.load_digits()
    model = build_model("cnn", np.random.default_rng(0))
    names = [_step_name(i, op) for i, op in model._training_steps()] + ["loss"]
    results = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for bs in args.batch_sizes:
            results[bs] = profile(model, d.x_train[:bs], d.y_train[:bs], args.repeats,
                                  np.random.default_rng(0))
    print(f"cnn, one training step, 1 BLAS thread, best of {args.repeats}: ms per batch "
          "(µs per image)")
    head = "".join(f"{f'batch {bs} fwd':>20}{'bwd':>18}" for bs in args.batch_sizes)
    print(f"  {'layer':<22}{head}")
    totals = {bs: 0.0 for bs in args.batch_sizes}
    for i, name in enumerate(names):
        cells = ""
        for bs in args.batch_sizes:
            for direction in ("fwd", "bwd"):
                s = results[bs].get((i, direction))
                if s is None:
                    cells += f"{'-':>18}" if direction == "bwd" else f"{'-':>20}"
                    continue
                totals[bs] += s
                cell = f"{s * 1e3:7.3f} ({s / bs * 1e6:5.1f})"
                cells += f"{cell:>20}" if direction == "fwd" else f"{cell:>18}"
        print(f"  {name:<22}{cells}")
    print("  total: " + ", ".join(f"batch {bs}: {t * 1e3:.2f} ms = {t / bs * 1e6:.1f} µs per image"
                                  for bs, t in totals.items()))


if __name__ == "__main__":
    main()
