"""Issue 16 Build 2 (the mlp part): does the cnn's augmentation pay for the ``mlp``?

Each variant is trained with :func:`digitlens.training.recipes.train_rung` (the one way a zoo
model is trained) on the 4,000 bundled training digits, for 3 seeds, and tested on the 1,000
bundled test digits and on optdigits (1,797 digits by other writers, scikit-learn's
``load_digits`` through the one pre-processing path).  A change is kept only if it pays: the
mean over the seeds, with the spread (max - min); when the two means differ by under 0.3 points,
5-fold cross-validation on all 5,000 bundled digits decides (``--cv``, on by default then).

    python benchmarks/recipes.py [--seeds 0,1,2] [--no-cv] [--no-optdigits]

Prints one table.  scikit-learn is a bench dependency only (for optdigits).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def variants():
    """``{label: (config, augment)}``: the plain mlp recipe, and the cnn's augmentation on it."""
    from digitlens.training.augment import AugmentConfig
    from digitlens.training.fit import TrainConfig
    from digitlens.training.recipes import CNN_AUGMENT

    plain = TrainConfig(epochs=15, batch_size=64, lr=1e-3, schedule="cosine")
    return {
        "mlp (no augmentation)": (plain, None),
        "mlp + cnn augmentation": (plain, CNN_AUGMENT),
        "mlp + cnn augmentation, 25 ep": (dataclasses.replace(plain, epochs=25), CNN_AUGMENT),
        "mlp + milder augmentation": (plain, AugmentConfig(rotation=8, scale=0.08, shift=1)),
    }


def train(x_tr, y_tr, x_te, y_te, config, aug, seed):
    """One mlp run with ``aug`` as its recipe's augmentation; returns the LadderRow."""
    from digitlens.training import recipes

    saved = recipes.RECIPES["mlp"]
    recipes.RECIPES["mlp"] = recipes.Recipe(config, aug)  # this run only; restored below
    try:
        return recipes.train_rung("mlp", x_tr, y_tr, x_te, y_te, seed=seed, config=config)
    finally:
        recipes.RECIPES["mlp"] = saved


def cross_validate(config, aug, seed: int = 0, folds: int = 5) -> tuple[float, float]:
    """Mean and spread of accuracy over ``folds`` class-balanced folds of the 5,000 digits."""
    import digitlens as dl

    d = dl.load_digits()
    x = np.concatenate([d.x_train, d.x_test])  # (5000, 1, 28, 28)
    y = np.concatenate([d.y_train, d.y_test])
    rng = np.random.default_rng(1234)
    fold_of = np.empty(len(y), np.int64)
    for c in range(10):  # each fold gets a fifth of every digit
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    accs = []
    for k in range(folds):
        te, tr = fold_of == k, fold_of != k
        accs.append(train(x[tr], y[tr], x[te], y[te], config, aug, seed).test_accuracy)
    return float(np.mean(accs)), float(np.ptp(accs))


def main() -> None:
    import digitlens as dl

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-cv", action="store_true")
    ap.add_argument("--no-optdigits", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated variant numbers, e.g. 0,1")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    d = dl.load_digits()
    opt = None
    if not args.no_optdigits:
        from digitlens.evaluation.datasets import load_eval_set

        opt = load_eval_set("optdigits")
    table = []
    chosen = list(variants().items())
    if args.only:
        chosen = [chosen[int(i)] for i in args.only.split(",")]
    for label, (config, aug) in chosen:
        accs, others, secs = [], [], []
        for seed in seeds:
            t = time.perf_counter()
            row = train(d.x_train, d.y_train, d.x_test, d.y_test, config, aug, seed)
            secs.append(time.perf_counter() - t)
            accs.append(row.test_accuracy)
            if opt is not None:
                others.append(float(np.mean(row.model.predict(opt.x) == opt.y)))
        table.append((label, config, aug, accs, others, secs))
        print(f"  {label}: {' '.join(f'{a:.2%}' for a in accs)}", flush=True)
    base = np.mean(table[0][3])
    print()
    print(f"{'variant':32s} {'bundled test: mean (max-min, vs plain)':>38s} {'optdigits':>28s} "
          f"{'train s':>8s}  seeds {seeds}")
    for label, config, aug, accs, others, secs in table:
        m, s = np.mean(accs), np.ptp(accs)
        o = (f"{np.mean(others):.2%} (spread {np.ptp(others):.2%})" if others else "-")
        print(f"{label:32s} {m:>8.2%} (spread {s:.2%}, {m - base:+.2%}) {o:>28s} "
              f"{np.mean(secs):8.1f}")
    if args.no_cv:
        return
    for label, config, aug, accs, *_ in table[1:]:
        if abs(np.mean(accs) - base) < 0.003:
            print(f"\n{label} is within 0.3 points of the plain mlp: 5-fold cross-validation")
            for lab, cfg, a in ((table[0][0], table[0][1], table[0][2]), (label, config, aug)):
                m, s = cross_validate(cfg, a)
                print(f"  {lab:32s} {m:.2%} (folds spread {s:.2%})")


if __name__ == "__main__":
    main()
