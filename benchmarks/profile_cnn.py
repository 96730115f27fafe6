"""Where a training step of the zoo's ``cnn`` spends its time, layer by layer.

Runs the real training step (``Sequential.forward_with_caches`` in training mode, the loss, and
the backward pass that ``fit`` uses, without the image's own gradient) on batches of the
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
    """Best time per layer and direction over ``repeats`` training steps: {(i, dir): seconds}."""
    n_layers = len(model.layers)
    first = next(i for i, layer in enumerate(model.layers) if layer.params)
    best: dict[tuple[int, str], float] = {}
    loss_fn = LOSSES[model.loss][0]
    for _ in range(repeats):
        a, caches = model.as_input(x), []
        for i, layer in enumerate(model.layers):
            t = time.perf_counter()
            a, cache = layer.forward(a, training=True, rng=rng)
            best[i, "fwd"] = min(best.get((i, "fwd"), np.inf), time.perf_counter() - t)
            caches.append(cache)
        t = time.perf_counter()
        _, d = loss_fn(a, model.targets(y, a.shape[1]))
        best[n_layers, "fwd"] = min(best.get((n_layers, "fwd"), np.inf), time.perf_counter() - t)
        for i in range(n_layers - 1, first - 1, -1):
            layer = model.layers[i]
            t = time.perf_counter()
            if i == first:
                layer.param_grads(d, caches[i])
            else:
                d, _ = layer.backward(d, caches[i])
            best[i, "bwd"] = min(best.get((i, "bwd"), np.inf), time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 32, 16])
    args = ap.parse_args()
    d = dl.load_digits()
    model = build_model("cnn", np.random.default_rng(0))
    names = [f"{i}:{layer.type}" for i, layer in enumerate(model.layers)] + ["loss"]
    results = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for bs in args.batch_sizes:
            results[bs] = profile(model, d.x_train[:bs], d.y_train[:bs], args.repeats,
                                  np.random.default_rng(0))
    print(f"cnn, one training step, 1 BLAS thread, best of {args.repeats}: ms per batch "
          "(µs per image)")
    head = "".join(f"{f'batch {bs} fwd':>20}{f'bwd':>18}" for bs in args.batch_sizes)
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
