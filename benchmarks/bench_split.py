"""Why ``fit`` cuts a CNN's batch into slices on threads instead of giving BLAS more threads.

One training step of the zoo's ``cnn`` (``loss_and_grads`` on a batch of 64 bundled digits) is
timed several ways, interleaved in one run so that each sees the same machine:

- ``whole, BLAS 1``: the whole batch in the calling thread, one BLAS thread;
- ``whole, BLAS T``: the whole batch, ``T`` BLAS threads inside every matrix product;
- ``slices of S on T``: :class:`digitlens.training.split.SplitStep` with ``T`` threads and slices
  of ``S`` images (one BLAS thread each): what ``fit`` does, with ``S = 32``.

Each variant's time is the sum over ``--batches`` batches of that batch's best time across
``--repeats`` rounds (a burst of load during one round does not count), printed per batch and as
a ratio to ``whole, BLAS 1``.  Not a test: run it by hand, on a quiet machine.

    python benchmarks/bench_split.py [--threads 2] [--slices 16 32 64] [--repeats 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import digitlens as dl
from digitlens.nn.zoo import build_model
from digitlens.training.split import SplitStep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slices", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--batches", type=int, default=30)
    args = ap.parse_args()
    d = dl.load_digits()
    model = build_model("cnn", np.random.default_rng(0))
    rng = np.random.default_rng(1)
    idx = [rng.permutation(len(d.x_train))[:64] for _ in range(args.batches)]

    def whole(blas):
        def step(x, y, r):
            with threadpool_limits(limits=blas, user_api="blas"):
                model.loss_and_grads(x, y, training=True, rng=r)
        return step

    def sliced(size):
        split = SplitStep(model, args.threads, slice_size=size)

        def step(x, y, r):
            with threadpool_limits(limits=1, user_api="blas"):
                split(x, y, training=True, rng=r)
        step.close = split.close
        return step

    variants = {"whole, BLAS 1": whole(1), f"whole, BLAS {args.threads}": whole(args.threads)}
    variants.update({f"slices of {s} on {args.threads}": sliced(s) for s in args.slices})
    best = {name: np.full(args.batches, np.inf) for name in variants}
    for _ in range(args.repeats):
        for name, step in variants.items():
            for b, i in enumerate(idx):
                x, y, r = d.x_train[i], d.y_train[i], np.random.default_rng(b)
                t = time.perf_counter()
                step(x, y, r)
                best[name][b] = min(best[name][b], time.perf_counter() - t)
    for step in variants.values():
        getattr(step, "close", lambda: None)()
    base = best["whole, BLAS 1"].mean()
    print(f"cnn, one training step on 64 digits, best of {args.repeats} per batch, "
          f"{args.batches} batches")
    for name, t in best.items():
        print(f"  {name:<22} {t.mean() * 1e3:7.2f} ms   {t.mean() / base:5.2f}x")


if __name__ == "__main__":
    main()
