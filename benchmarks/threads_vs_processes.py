"""Does Python's global lock slow ``fit``'s two slice threads?  Two threads against two processes.

Each worker runs the zoo ``cnn``'s ``loss_and_grads`` on a slice of 32 bundled digits (one BLAS
thread), ``--steps`` times, and reports milliseconds per slice: alone, as two threads of one
process (what ``fit`` does, sharing the lock), and as two processes (no shared lock).  If the
threads were slower than the processes, the lock would be the cost; if both are equally slower
than one worker alone, the cores' shared caches and memory are.  Not a test: run it by hand.

    python benchmarks/threads_vs_processes.py [--steps 40]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

import digitlens as dl
from digitlens.nn.zoo import build_model


def worker(seed: int, steps: int) -> float:
    """Milliseconds per ``loss_and_grads`` of 32 images: the mean of ``steps`` steps after one
    warm-up step."""
    d = dl.load_digits()
    x, y = d.x_train[:32], d.y_train[:32]
    with threadpool_limits(limits=1, user_api="blas"):
        model = build_model("cnn", np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        model.loss_and_grads(x, y, rng=rng)  # warm-up
        t = time.perf_counter()
        for _ in range(steps):
            model.loss_and_grads(x, y, rng=rng)
        return (time.perf_counter() - t) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    run = partial(worker, steps=args.steps)
    print(f"cnn loss_and_grads on 32 images, ms per slice (mean of {args.steps} steps)")
    print(f"  one worker alone       {run(0):6.2f}")
    with ThreadPoolExecutor(2) as pool:
        print("  two threads, one proc  " + " ".join(f"{v:6.2f}" for v in pool.map(run, [1, 2])))
    with ProcessPoolExecutor(2) as pool:
        print("  two processes          " + " ".join(f"{v:6.2f}" for v in pool.map(run, [1, 2])))
    print(f"  one worker alone again {run(0):6.2f}")


if __name__ == "__main__":
    main()
