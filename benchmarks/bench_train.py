"""One training epoch over 60,000 digits: digitlens vs PyTorch CPU vs scikit-learn, in one run.

The same network everywhere: 784 -> 128 (ReLU) -> 10, softmax cross-entropy, Adam (lr 1e-3,
no weight decay), shuffled mini-batches of 64 and 256, float32.  The data are the 4,000 bundled
training digits tiled 15 times (60,000 images, the size of full MNIST's training set).

- ``digitlens``: the real user path, ``digitlens.fit`` for one epoch (it also records the
  per-batch history and accuracy, as every training run does);
- ``dl 2 BLAS``: the same with ``blas_threads=2`` (``fit`` uses one BLAS thread by default);
- ``numpy loop``: the same maths written as one bare NumPy loop (one BLAS thread, like
  ``fit``), no abstractions — the floor the engine's layers, caches and optimizer objects
  should stay close to;
- ``pytorch``: ``torch.nn.Sequential`` + ``torch.optim.Adam`` with ``torch.set_num_threads(2)``;
- ``torch 1 thr``: the same with one thread, for a like-for-like view of the engine's default
  (the ratios stay relative to the 2-thread PyTorch run);
- ``sklearn``: ``MLPClassifier(solver="adam", alpha=0).partial_fit`` (one pass).

"test acc" is each network's accuracy on the 1,000 bundled test digits after its epoch: a check
that all of them trained the same network equally well.  Timings on a shared machine are noisy,
so each framework runs ``--repeats`` times (interleaved) and the best time is reported; ratios
are throughput relative to PyTorch (2 threads) in the same run (> 1 means faster than PyTorch).
On a busy machine multi-threaded runs (``dl 2 BLAS``, ``pytorch``) slow down far more than
single-threaded ones: their threads spin waiting for each other.  Not a test: run it by hand
(``make bench``).

    python benchmarks/bench_train.py [--repeats 3] [--batch-sizes 64 256]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

import digitlens as dl
from digitlens.nn import Activation, Dense, Flatten, Sequential

N_IMAGES = 60_000
HIDDEN = 128
LR = 1e-3


def tiled_digits() -> tuple[np.ndarray, np.ndarray]:
    d = dl.load_digits()
    reps = -(-N_IMAGES // len(d.x_train))
    x = np.concatenate([d.x_train] * reps)[:N_IMAGES]  # (60000, 1, 28, 28) float32
    y = np.concatenate([d.y_train] * reps)[:N_IMAGES]  # (60000,)
    return x, y


def run_digitlens(x, y, bs, seed, blas_threads=1):
    rng = np.random.default_rng(seed)
    model = Sequential([Flatten(), Dense(HIDDEN), Activation("relu"), Dense(10)], rng=rng)
    config = dl.TrainConfig(epochs=1, batch_size=bs, optimizer="adam", lr=LR)
    t = time.perf_counter()
    dl.fit(model, x, y, config, rng=rng, blas_threads=blas_threads)
    sec = time.perf_counter() - t
    return sec, model.predict


def run_numpy_loop(x, y, bs, seed):
    """The same epoch as one bare NumPy loop (He init, Adam), for reference."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _numpy_loop(x, y, bs, seed)


def _numpy_loop(x, y, bs, seed):
    rng = np.random.default_rng(seed)
    xf = x.reshape(len(x), -1)  # (N, 784)
    W1 = (rng.standard_normal((784, HIDDEN)) * np.sqrt(2 / 784)).astype(np.float32)
    b1 = np.zeros(HIDDEN, np.float32)
    W2 = (rng.standard_normal((HIDDEN, 10)) * np.sqrt(2 / (HIDDEN + 10))).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    params = [W1, b1, W2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    t0 = time.perf_counter()
    perm = rng.permutation(len(x))
    for t, i in enumerate(range(0, len(x), bs), start=1):
        idx = perm[i:i + bs]
        xb, yb = xf[idx], y[idx]
        n = len(idx)
        h = xb @ W1 + b1  # (n, H)
        a = np.maximum(h, 0)
        z = a @ W2 + b2  # (n, 10)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), yb] -= 1
        p /= n  # dz
        gW2 = a.T @ p
        gb2 = p.sum(axis=0)
        da = p @ W2.T
        da *= h > 0
        gW1 = xb.T @ da
        gb1 = da.sum(axis=0)
        step = LR * math.sqrt(1 - b2_**t) / (1 - b1_**t)  # Python floats: no float64 upcast
        e = eps * math.sqrt(1 - b2_**t)
        for P, g, mm, vv in zip(params, (gW1, gb1, gW2, gb2), m, v):
            mm *= b1_
            mm += (1 - b1_) * g
            vv *= b2_
            vv += (1 - b2_) * g * g
            P -= step * mm / (np.sqrt(vv) + e)
    sec = time.perf_counter() - t0
    return sec, lambda xs: (np.maximum(xs.reshape(len(xs), -1) @ W1 + b1, 0) @ W2 + b2).argmax(1)


def run_torch(x, y, bs, seed, threads=2):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, 10))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    perm = torch.randperm(len(xt))
    for i in range(0, len(xt), bs):
        idx = perm[i:i + bs]
        xb, yb = xt[idx], yt[idx]
        opt.zero_grad(set_to_none=True)
        z = net(xb)
        loss = loss_fn(z, yb)
        loss.backward()
        opt.step()
    sec = time.perf_counter() - t0

    def predict(xs):
        with torch.no_grad():
            return net(torch.from_numpy(xs)).argmax(1).numpy()

    return sec, predict


def run_sklearn(x, y, bs, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    xf = x.reshape(len(x), -1)  # (N, 784) float32
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam",
                        alpha=0.0, batch_size=bs, learning_rate_init=LR, shuffle=True,
                        random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(xf, y, classes=np.arange(10))
    sec = time.perf_counter() - t0
    return sec, lambda xs: clf.predict(xs.reshape(len(xs), -1))


def run_torch_1(x, y, bs, seed):
    return run_torch(x, y, bs, seed, threads=1)


def run_digitlens_2(x, y, bs, seed):
    return run_digitlens(x, y, bs, seed, blas_threads=2)


RUNNERS = {"digitlens": run_digitlens, "dl 2 BLAS": run_digitlens_2, "numpy loop": run_numpy_loop,
           "pytorch": run_torch, "torch 1 thr": run_torch_1, "sklearn": run_sklearn}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per framework (best is kept)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--skip", nargs="*", default=[], choices=list(RUNNERS))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    x, y = tiled_digits()
    test = dl.load_digits()
    print(f"one epoch over {len(x):,} images, 784-{HIDDEN}-10 ReLU, Adam lr {LR}, float32; "
          f"best of {args.repeats}; numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    names = [n for n in RUNNERS if n not in args.skip]
    for bs in args.batch_sizes:
        times: dict[str, list[float]] = {n: [] for n in names}
        accs: dict[str, float] = {}
        for r in range(args.repeats):
            for n in names:  # interleaved, so a noisy neighbour hurts everyone alike
                sec, predict = RUNNERS[n](x, y, bs, seed=r)
                times[n].append(sec)
                accs[n] = float((predict(test.x_test) == test.y_test).mean())
        print(f"\nbatch size {bs}")
        print(f"  {'':<11} {'seconds':>8} {'images/s':>10} {'vs pytorch':>11} "
              f"{'all runs (s)':>22}  test acc")
        ref = min(times["pytorch"]) if "pytorch" in times else None
        for n in names:
            best = min(times[n])
            ratio = f"{ref / best:10.2f}x" if ref else "          -"
            runs = " ".join(f"{t:.2f}" for t in times[n])
            print(f"  {n:<11} {best:8.2f} {len(x) / best:10,.0f} {ratio} {runs:>22}  "
                  f"{accs[n]:.3f}")


if __name__ == "__main__":
    main()
