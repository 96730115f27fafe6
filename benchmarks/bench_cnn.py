"""One training epoch of the zoo's ``cnn`` over the 4,000 bundled digits: digitlens vs PyTorch CPU.

The same network in both (``build_model("cnn")``: conv 16@3×3 → ReLU → maxpool → conv 32@3×3 →
ReLU → maxpool → conv 64@3×3 → ReLU → maxpool → dropout → dense 128 → ReLU → dropout → dense 10;
the PyTorch twin is built from its layer list), the recipe's batch size, Adam,
float32, shuffled mini-batches, with and without the recipe's augmentation.  Each epoch is timed
phase by phase:

- ``augment`` : the recipe's NumPy augmentation of every batch (the same function for both: it is
  part of the data pipeline, not of the network);
- ``forward`` : logits from a batch, in training mode (dropout on);
- ``backward``: the loss and every parameter's gradient (digitlens skips the image's own gradient,
  like PyTorch does for an input that does not require grad);
- ``step``    : Adam's update;
- ``epoch``   : all of the above; and ``fit()``: the real user path (``digitlens.fit`` for one
  epoch, which also records per-batch history), timed as a whole.

The phases above are digitlens on whole batches with T *BLAS* threads (the engine's kernels, and
what a second BLAS thread does to them).  ``fit`` itself keeps BLAS at one thread and instead
cuts each batch into slices of 32 images computed on ``threads`` threads
(:mod:`digitlens.training.split`); ``fit(threads=T)`` is compared with ``pytorch/T``, and
``fit()`` with its default threads against PyTorch's default (``torch.get_num_threads()`` at
start-up, the number of cores) — the target is a ratio <= 1.0.

Timings on a shared machine are noisy, and the noise comes in bursts.  So every epoch is run
``--repeats`` times (the two frameworks interleaved), each batch's phases are timed separately,
and a phase's epoch time is the sum over batches of that batch's *best* time across the repeats:
a burst of load during one batch of one repeat does not count.  ``fit()`` can only be timed as a
whole, so it is compared two ways: with PyTorch's best whole epoch (like for like), and with
PyTorch's sum of best batches (stricter: no repeat of PyTorch's is ever that lucky).  Ratios are
digitlens time / PyTorch time.
Each thread count T in ``--threads`` (default 2 and 1) is compared like for like: PyTorch with
``torch.set_num_threads(T)`` against digitlens with T BLAS threads (phases) and
``fit(threads=T)`` (the user path).  Not a test: run it by hand, several times: the spread of
the ratios across runs is part of the answer.

    python benchmarks/bench_cnn.py [--repeats 5] [--threads 2 1]
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np
from threadpoolctl import threadpool_limits

import digitlens as dl
from digitlens.nn import LOSSES, Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from digitlens.nn.optim import make_optimizer
from digitlens.nn.zoo import build_model
from digitlens.training.recipes import default_recipe, recipe as recipe_of

PHASES = ("augment", "forward", "backward", "step", "epoch")


def batches(n, bs, rng):
    perm = rng.permutation(n)
    return [perm[i:i + bs] for i in range(0, n, bs)]


def epoch_digitlens(x, y, bs, augment, seed):
    rng = np.random.default_rng(seed)
    model = build_model("cnn", rng)
    opt = make_optimizer("adam", 1e-3)
    params = model.params()
    backward = getattr(model, "_backward", None)
    steps = model._training_steps() if hasattr(model, "_training_steps") else None
    loss_fn = LOSSES[model.loss][0]  # (loss function, output function)
    t = {k: [] for k in PHASES}
    for idx in batches(len(x), bs, rng):
        xb, yb = x[idx], y[idx]
        t0 = time.perf_counter()
        if augment is not None:
            xb = augment(xb, rng)
        t1 = time.perf_counter()
        if steps is not None:  # what loss_and_grads runs (a ReLU and its max-pooling as one)
            z, caches = model._run(steps, model.as_input(xb), caches=True, training=True,
                                   rng=rng)
        else:
            z, caches = model.forward_with_caches(xb, training=True, rng=rng)
        t2 = time.perf_counter()
        _, dz = loss_fn(z, model.targets(yb, z.shape[1]))
        if backward is not None and steps is not None:  # no gradient for the image itself
            _, grads = backward(dz, caches, need_input_grad=False, steps=steps)
        elif backward is not None:
            _, grads = backward(dz, caches, need_input_grad=False)
        else:
            _, grads = model.backward(dz, caches)
        t3 = time.perf_counter()
        opt.step(params, grads)
        t4 = time.perf_counter()
        for k, v in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            t[k].append(v)
    return {k: np.array(v) for k, v in t.items()}, model.predict


def torch_cnn(torch, model):
    """PyTorch twin of the zoo architecture (built from our layer list, so they cannot drift)."""
    mods, c_in = [], 1
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            mods.append(torch.nn.Conv2d(c_in, layer.filters, layer.kernel_size, layer.stride,
                                        layer.padding))
            c_in = layer.filters
        elif isinstance(layer, Activation):
            assert layer.fn == "relu", layer.fn
            mods.append(torch.nn.ReLU())
        elif isinstance(layer, MaxPool2D):
            mods.append(torch.nn.MaxPool2d(layer.pool_size, layer.stride))
        elif isinstance(layer, Flatten):
            mods.append(torch.nn.Flatten())
        elif isinstance(layer, Dropout):
            mods.append(torch.nn.Dropout(layer.p))
        elif isinstance(layer, Dense):
            mods.append(torch.nn.Linear(layer.params["W"].shape[0], layer.units))
        else:
            raise TypeError(f"no PyTorch twin for {layer!r}")
    return torch.nn.Sequential(*mods)


def epoch_torch(x, y, bs, augment, seed):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = torch_cnn(torch, build_model("cnn", np.random.default_rng(seed)))
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t = {k: [] for k in PHASES}
    for idx in batches(len(x), bs, rng):
        xb, yb = x[idx], y[idx]
        t0 = time.perf_counter()
        if augment is not None:
            xb = augment(xb, rng)
        xt, yt = torch.from_numpy(xb), torch.from_numpy(yb)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        z = net(xt)
        t2 = time.perf_counter()
        loss_fn(z, yt).backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        for k, v in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            t[k].append(v)

    def predict(xs):
        net.eval()
        with torch.no_grad():
            return net(torch.from_numpy(xs)).argmax(1).numpy()

    return t, predict


def fit_digitlens(x, y, bs, augment, seed, threads):
    """``digitlens.fit`` for one epoch, as a user calls it (``threads=None``: its default)."""
    rng = np.random.default_rng(seed)
    model = build_model("cnn", rng)
    cfg = dl.TrainConfig(epochs=1, batch_size=bs, lr=1e-3)
    kwargs = {}
    if "threads" in inspect.signature(dl.fit).parameters:
        kwargs["threads"] = threads
    t0 = time.perf_counter()
    dl.fit(model, x, y, cfg, rng=rng, augment=augment, **kwargs)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved runs (best is kept)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                    help="thread counts: PyTorch's torch.set_num_threads and digitlens' BLAS "
                         "threads (fit(blas_threads=...)); each count is compared like for like")
    args = ap.parse_args()

    import torch

    torch_default = torch.get_num_threads()
    d = dl.load_digits()
    x, y = d.x_train, d.y_train
    recipe = default_recipe("cnn")
    bs = recipe.batch_size
    aug = recipe_of("cnn").augment  # the cnn recipe's augmentation
    model = build_model("cnn", np.random.default_rng(0))
    print(f"cnn ({model.n_params:,} parameters), one epoch over {len(x):,} digits, batch {bs}, "
          f"Adam, float32; {args.repeats} repeats; numpy {np.__version__}, torch "
          f"{torch.__version__}; NAME/T = T threads (PyTorch threads, digitlens BLAS threads)")

    def with_threads(fn, threads):
        def run(*a, **k):
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                return fn(*a, **k)
        return run

    runners = [(f"{name}/{n}", with_threads(fn, n)) for n in args.threads
               for name, fn in (("digitlens", epoch_digitlens), ("pytorch", epoch_torch))]
    cases = [("no augmentation", None), ("with augmentation", aug)]
    for label, augment in cases:
        per_batch = {name: [] for name, _ in runners}
        fits = {n: [] for n in [None, *args.threads]}
        accs = {}
        for r in range(args.repeats):  # interleaved, so a noisy neighbour hurts all alike
            for name, run in runners:
                t, predict = run(x, y, bs, augment, seed=r)
                per_batch[name].append(t)
                accs[name.split("/")[0]] = float((predict(d.x_test) == d.y_test).mean())
            for n in fits:
                fits[n].append(fit_digitlens(x, y, bs, augment, r, n))
        best = {name: {k: float(np.min([t[k] for t in runs], axis=0).sum()) for k in PHASES}
                for name, runs in per_batch.items()}
        ratio_heads = " ".join(f"{'ratio/' + str(n):>8}" for n in args.threads)
        print(f"\n{label}  (seconds per epoch; ratio/T = digitlens/T ÷ pytorch/T)")
        print(f"  {'phase':<10} " + " ".join(f"{n:>12}" for n in per_batch) + f" {ratio_heads}")
        for k in PHASES:
            if augment is None and k == "augment":
                continue
            cells = " ".join(f"{best[n][k]:12.3f}" for n in per_batch)
            ratios = " ".join(f"{best[f'digitlens/{n}'][k] / best[f'pytorch/{n}'][k]:7.2f}x"
                              for n in args.threads)
            print(f"  {k:<10} {cells} {ratios}")
        whole = {name: [float(np.sum(t["epoch"])) for t in runs]
                 for name, runs in per_batch.items()}  # each repeat's whole epoch
        for n in args.threads:
            print(f"  pytorch/{n} whole epochs: best {min(whole[f'pytorch/{n}']):.3f}s (runs: "
                  f"{' '.join(f'{v:.2f}' for v in whole[f'pytorch/{n}'])})")
        for n, f in fits.items():
            t = torch_default if n is None else n
            if f"pytorch/{t}" in best:
                vs = (f"{min(f) / min(whole[f'pytorch/{t}']):.2f}x pytorch/{t}'s best whole "
                      f"epoch, {min(f) / best[f'pytorch/{t}']['epoch']:.2f}x its sum of best "
                      "batches")
            else:
                vs = "no pytorch run with as many threads"
            call = "fit() default" if n is None else f"fit(threads={n})"
            print(f"  {call}: best {min(f):.3f}s = {vs} (whole runs: "
                  f"{' '.join(f'{v:.2f}' for v in f)})")
        if augment is not None:
            n = args.threads[0]
            share = best[f"digitlens/{n}"]["augment"] / best[f"digitlens/{n}"]["epoch"]
            print(f"  augmentation is {share:.0%} of a digitlens/{n} epoch")
        print("  test accuracy after 1 epoch: " + ", ".join(f"{n} {a:.3f}"
                                                            for n, a in accs.items()))

if __name__ == "__main__":
    main()
