"""Issue 17's closing numbers: scikit-learn's ``load_digits`` (UCI optdigits, writers other than
MNIST's) as "another writer".  10 digits per class fine-tune each model (the learner's digits);
the other 1,697 are held out.  Prints accuracy before/after on the held-out optdigits and on the
bundled test digits, and the fine-tuning time.

    DIGITLENS_HOME=... python benchmarks/finetune_optdigits.py [--models cnn,mlp,logistic]

Needs the models trained in ``$DIGITLENS_HOME`` (``digitlens ladder``) and scikit-learn (a
test/bench dependency only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import digitlens as dl
    from digitlens._util import paths
    from digitlens.nn.checkpoint import load_model
    from digitlens.training.finetune import finetune
    from digitlens.evaluation.datasets import load_eval_set

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="cnn")
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    opt = load_eval_set("optdigits")  # the one optdigits path (issue 16's evaluation package)
    x, y = opt.x, opt.y
    print(f"optdigits: {len(x)} digits through the pre-processing in "
          f"{time.perf_counter() - t:.1f}s")
    rng = np.random.default_rng(args.seed)
    tune = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:args.per_class]
                           for c in range(10)])
    rest = np.setdiff1d(np.arange(len(y)), tune)
    digits = dl.load_digits()
    for name in args.models.split(","):
        model = load_model(paths.model_path(name))
        # the reference, measured in this run: one epoch of plain training on the 4,000 bundled
        # training digits (the same fit, threads and batch size)
        t = time.perf_counter()
        dl.fit(model.copy(), digits.x_train, digits.y_train, dl.TrainConfig(epochs=1),
               rng=np.random.default_rng(0))
        epoch = time.perf_counter() - t
        before_rest = float(np.mean(model.predict(x[rest]) == y[rest]))
        r = finetune(model, x[tune], y[tune], digits, rng=np.random.default_rng(args.seed),
                     held=np.zeros(0, np.int64))
        after_rest = float(np.mean(r.model.predict(x[rest]) == y[rest]))
        print(f"{name:9s} optdigits held-out ({len(rest)}): {before_rest:.2%} -> {after_rest:.2%}"
              f"  (error {1 - before_rest:.2%} -> {1 - after_rest:.2%}, "
              f"x{(1 - before_rest) / max(1e-9, 1 - after_rest):.2f} smaller)   "
              f"bundled test: {r.before['bundled_test']:.2%} -> {r.after['bundled_test']:.2%}   "
              f"fine-tune {r.seconds:.1f}s = {r.seconds / epoch:.1f}x one training epoch "
              f"({epoch:.1f}s) (repeat x{r.repeat}, {r.config.epochs} epochs)")


if __name__ == "__main__":
    main()
