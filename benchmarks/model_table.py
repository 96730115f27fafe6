"""Issue 16 Build 2: every zoo model's recipe, measured, and the variants tried to improve them.

Each (model, variant) is trained with :func:`digitlens.training.recipes.train_rung` (the one way
a zoo model is trained, as ``digitlens train --model NAME --seed S`` does) on the 4,000 bundled
training digits, for each seed, and tested on

- the 1,000 bundled test digits (mean over the seeds, spread = max - min),
- optdigits: 1,797 digits by other writers (scikit-learn's ``load_digits`` through the one
  pre-processing path; the column is left out without scikit-learn),
- MNIST's official 10,000 test digits, only when the IDX files are in ``--mnist-dir`` or the
  download cache (``digitlens data download mnist``); the column is left out otherwise.

"ECE" is the expected calibration error on the bundled test digits (what the Evaluation tab's
calibration panel shows).  "train s" is the wall time of ``fit`` (run it under ``taskset -c 1``
to measure one core).  A
variant is kept only if it pays on the bundled test digits; when two means differ by under 0.3
points, ``--cv`` runs 5-fold cross-validation on all 5,000 bundled digits (class-balanced folds,
seed 0) for the named variants.

    python benchmarks/model_table.py [--models logistic,lab,mlp,cnn] [--variants recipe]
        [--seeds 0,1,2] [--cv VARIANT,...] [--jsonl results.jsonl] [--mnist-dir DIR] [--list]
    python benchmarks/model_table.py --render a.jsonl,b.jsonl [--pick mlp:recipe,cnn:ls+80ep]

``recipe`` is each model's current recipe (:data:`digitlens.training.recipes.RECIPES`); the
other variant names are in :func:`variants`.  Prints a Markdown table; ``--jsonl`` appends one
line per run (so a long measurement keeps what it finished).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import digitlens as dl
from digitlens.training import recipes
from digitlens.training.augment import AugmentConfig
from digitlens.training.fit import TrainConfig, evaluate

#: the augmentation the cnn recipe had before issue 16 (tilt, size, shift)
BASE_AUG = AugmentConfig(rotation=10, scale=0.1, shift=2)
#: ... plus pen width (up to a whole pixel thicker or thinner) and a gentle elastic warp
STROKE_AUG = dataclasses.replace(BASE_AUG, thickness=0.5)
ELASTIC_AUG = dataclasses.replace(BASE_AUG, elastic=1.0, elastic_sigma=4.0)
FULL_AUG = dataclasses.replace(BASE_AUG, thickness=0.5, elastic=1.0, elastic_sigma=4.0)


def variants() -> dict[str, dict[str, tuple]]:
    """``{variant: {model: (config, augment[, layers])}}``; ``recipe`` is filled in from
    RECIPES; ``layers``, when given, replaces the zoo model's architecture for that variant."""
    out: dict[str, dict] = {"recipe": {m: (r.config, r.augment)
                                       for m, r in recipes.RECIPES.items()}}
    cnn = TrainConfig(epochs=20, batch_size=64, lr=3e-3, schedule="onecycle")
    mlp = TrainConfig(epochs=15, batch_size=64, lr=1e-3, schedule="cosine")

    has_ls = "label_smoothing" in {f.name for f in dataclasses.fields(TrainConfig)}

    def ls(c: TrainConfig, eps: float) -> TrainConfig:  # (before label smoothing existed: c)
        return dataclasses.replace(c, label_smoothing=eps) if has_ls else c

    def ep(c: TrainConfig, n: int) -> TrainConfig:
        return dataclasses.replace(c, epochs=n)

    for name, cfg in (("cnn", cnn), ("mlp", mlp)):
        out.setdefault("plain", {})[name] = (cfg, None)  # no augmentation at all
        out.setdefault("base", {})[name] = (cfg, BASE_AUG)
        out.setdefault("stroke", {})[name] = (cfg, STROKE_AUG)
        out.setdefault("elastic", {})[name] = (cfg, ELASTIC_AUG)
        out.setdefault("full", {})[name] = (cfg, FULL_AUG)
        out.setdefault("ls", {})[name] = (ls(cfg, 0.1), BASE_AUG)
        out.setdefault("full+ls", {})[name] = (ls(cfg, 0.1), FULL_AUG)
        out.setdefault("full+ls+30ep", {})[name] = (ep(ls(cfg, 0.1), 30), FULL_AUG)
        out.setdefault("full+30ep", {})[name] = (ep(cfg, 30), FULL_AUG)
        out.setdefault("30ep", {})[name] = (ep(cfg, 30), BASE_AUG)
        out.setdefault("40ep", {})[name] = (ep(cfg, 40), BASE_AUG)
        out.setdefault("60ep", {})[name] = (ep(cfg, 60), BASE_AUG)
        out.setdefault("ls+40ep", {})[name] = (ep(ls(cfg, 0.1), 40), BASE_AUG)
        out.setdefault("ls+60ep", {})[name] = (ep(ls(cfg, 0.1), 60), BASE_AUG)
        out.setdefault("80ep", {})[name] = (ep(cfg, 80), BASE_AUG)
        out.setdefault("ls+80ep", {})[name] = (ep(ls(cfg, 0.1), 80), BASE_AUG)
        out.setdefault("full+ls+80ep", {})[name] = (ep(ls(cfg, 0.1), 80), FULL_AUG)
        out.setdefault("full+60ep", {})[name] = (ep(cfg, 60), FULL_AUG)
        out.setdefault("full+80ep", {})[name] = (ep(cfg, 80), FULL_AUG)
        out.setdefault("full+ls+40ep", {})[name] = (ep(ls(cfg, 0.1), 40), FULL_AUG)
        out.setdefault("full+ls+60ep", {})[name] = (ep(ls(cfg, 0.1), 60), FULL_AUG)
    # a wider cnn (32 then 64 filters), measured before deciding whether the zoo's changes
    out["wide+ls"] = {"cnn": (ls(cnn, 0.1), BASE_AUG, wide_cnn)}
    out["wide+full+ls"] = {"cnn": (ls(cnn, 0.1), FULL_AUG, wide_cnn)}
    out["wide+full+ls+40ep"] = {"cnn": (ep(ls(cnn, 0.1), 40), FULL_AUG, wide_cnn)}
    out["wide+full+40ep"] = {"cnn": (ep(cnn, 40), FULL_AUG, wide_cnn)}
    out["wide+full+80ep"] = {"cnn": (ep(cnn, 80), FULL_AUG, wide_cnn)}
    # issue "99.2% on MNIST's test digits": deeper cnns with the shipped recipe (80 epochs, pen +
    # warp), and recipe changes on the zoo's cnn (screened on seed 0 first)
    full80 = ep(cnn, 80)
    for arch in (cnn3, cnn3_pool, cnn3_wide, cnn4, ccp, ccp8):
        out[f"{arch.__name__}+full+80ep"] = {"cnn": (full80, FULL_AUG, arch)}
        out[f"{arch.__name__}+full+40ep"] = {"cnn": (ep(cnn, 40), FULL_AUG, arch)}
        out[f"{arch.__name__}+full+120ep"] = {"cnn": (ep(cnn, 120), FULL_AUG, arch)}
    out["full+160ep"] = {"cnn": (ep(cnn, 160), FULL_AUG)}
    out["full+120ep"] = {"cnn": (ep(cnn, 120), FULL_AUG)}
    out["bs32+full+80ep"] = {"cnn": (dataclasses.replace(full80, batch_size=32, lr=2e-3),
                                     FULL_AUG)}
    out["l2+full+80ep"] = {"cnn": (dataclasses.replace(full80, l2=1e-4), FULL_AUG)}
    out["ema+full+80ep"] = {"cnn": (dataclasses.replace(full80, ema=0.999), FULL_AUG)}
    # SGD with (heavy-ball) momentum 0.9 and an L2 penalty instead of Adam, same onecycle schedule
    for lr, l2 in ((0.05, 5e-4), (0.1, 5e-4), (0.05, 1e-3), (0.05, 2e-4), (0.1, 1e-3)):
        sgd = dataclasses.replace(full80, optimizer="sgd", momentum=0.9, lr=lr, l2=l2)
        tag = f"sgd{lr:g}+l2{l2:g}"
        out[f"{tag}+full+80ep"] = {"cnn": (sgd, FULL_AUG)}
        out[f"{tag}+full+120ep"] = {"cnn": (ep(sgd, 120), FULL_AUG)}
        out[f"cnn3+{tag}+full+80ep"] = {"cnn": (sgd, FULL_AUG, cnn3)}
        out[f"cnn3+{tag}+full+120ep"] = {"cnn": (ep(sgd, 120), FULL_AUG, cnn3)}
        out[f"cnn3_pool+{tag}+full+80ep"] = {"cnn": (sgd, FULL_AUG, cnn3_pool)}
    return out


def wide_cnn():
    """The zoo's cnn with twice the filters in both convolutions (an architecture to measure)."""
    from digitlens.nn.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D

    return [Conv2D(32, 3, padding=1), Activation("relu"), MaxPool2D(2),
            Conv2D(64, 3, padding=1), Activation("relu"), MaxPool2D(2), Flatten(),
            Dropout(0.25), Dense(128), Activation("relu"), Dropout(0.5), Dense(10)]


def _layers():
    from digitlens.nn import layers

    return layers


def cnn3(filters: int = 64, pool: bool = False):
    """The zoo's cnn plus a third convolution, ``filters`` filters of 3x3 on the 7x7 maps of the
    second pooling (no third pooling unless ``pool``): 7x7x64 = 3,136 features into the 128-unit
    layer."""
    L = _layers()
    return [L.Conv2D(16, 3, padding=1), L.Activation("relu"), L.MaxPool2D(2),
            L.Conv2D(32, 3, padding=1), L.Activation("relu"), L.MaxPool2D(2),
            L.Conv2D(filters, 3, padding=1), L.Activation("relu"),
            *([L.MaxPool2D(2)] if pool else []), L.Flatten(),
            L.Dropout(0.25), L.Dense(128), L.Activation("relu"), L.Dropout(0.5), L.Dense(10)]


def cnn3_pool():
    """:func:`cnn3` with a third 2x2 pooling: 3x3x64 = 576 features into the 128-unit layer."""
    return cnn3(pool=True)


def cnn3_wide():
    """:func:`cnn3` with 128 filters in the third convolution (7x7x128 = 6,272 features)."""
    return cnn3(filters=128)


def cnn4():
    """Four convolutions: 16, pool, 32, 32, pool, 64 (the 14x14 stage doubled, then
    :func:`cnn3`'s third convolution on the 7x7 maps)."""
    L = _layers()
    return [L.Conv2D(16, 3, padding=1), L.Activation("relu"), L.MaxPool2D(2),
            L.Conv2D(32, 3, padding=1), L.Activation("relu"),
            L.Conv2D(32, 3, padding=1), L.Activation("relu"), L.MaxPool2D(2),
            L.Conv2D(64, 3, padding=1), L.Activation("relu"), L.Flatten(),
            L.Dropout(0.25), L.Dense(128), L.Activation("relu"), L.Dropout(0.5), L.Dense(10)]


def ccp(first: tuple[int, int] = (16, 16)):
    """Two convolutions before each pooling (``first`` filters, pool, 32, 32, pool), VGG-style."""
    L = _layers()
    return [L.Conv2D(first[0], 3, padding=1), L.Activation("relu"),
            L.Conv2D(first[1], 3, padding=1), L.Activation("relu"), L.MaxPool2D(2),
            L.Conv2D(32, 3, padding=1), L.Activation("relu"), L.Conv2D(32, 3, padding=1),
            L.Activation("relu"), L.MaxPool2D(2), L.Flatten(),
            L.Dropout(0.25), L.Dense(128), L.Activation("relu"), L.Dropout(0.5), L.Dense(10)]


def ccp8():
    """:func:`ccp` with a cheaper first stage (8 then 16 filters at 28x28)."""
    return ccp((8, 16))


@contextlib.contextmanager
def recipe_as(model: str, config: TrainConfig, aug: AugmentConfig | None, layers=None):
    """Within the block, ``model``'s recipe is ``(config, aug)`` and, given ``layers`` (a
    function returning a fresh layer list), its architecture too (both restored afterwards)."""
    from digitlens.nn.zoo import MODELS

    saved, saved_entry = recipes.RECIPES.get(model), MODELS[model]
    recipes.RECIPES[model] = recipes.Recipe(config, aug)
    if layers is not None:
        MODELS[model] = dataclasses.replace(saved_entry, layers=layers)
    try:
        yield
    finally:
        MODELS[model] = saved_entry
        if saved is None:
            del recipes.RECIPES[model]
        else:
            recipes.RECIPES[model] = saved


def accuracy(model, x, y) -> float:
    return float(evaluate(model, x, y)[1])


def expected_calibration_error(model, x, y) -> float:
    """ECE of the model's answers on ``x`` (10 bins of its top probability,
    :func:`digitlens.evaluation.calibration.calibration`): how far "p% sure" is from "right p%
    of the time", on average -- the number the Evaluation tab's calibration panel shows."""
    from digitlens.evaluation.calibration import calibration

    p = model.predict_proba(x)  # (N, 10)
    return float(calibration(p.max(axis=1), p.argmax(axis=1) == y).ece)


def cross_validate(model: str, config, aug, layers=None, seed: int = 0,
                   folds: int = 5) -> list[float]:
    """Accuracy on each of ``folds`` class-balanced folds of the 5,000 bundled digits."""
    d = dl.load_digits()
    x = np.concatenate([d.x_train, d.x_test])  # (5000, 1, 28, 28)
    y = np.concatenate([d.y_train, d.y_test])
    rng = np.random.default_rng(1234)
    fold_of = np.empty(len(y), np.int64)
    for c in range(10):  # each fold gets a fifth of every digit
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    accs = []
    with recipe_as(model, config, aug, layers):
        for k in range(folds):
            te, tr = fold_of == k, fold_of != k
            row = recipes.train_rung(model, x[tr], y[tr], x[te], y[te], seed=seed)
            accs.append(row.test_accuracy)
    return accs


def load_extra_sets(mnist_dir: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """optdigits and MNIST's official test set, each only when available."""
    from digitlens.data.mnist import load_mnist
    from digitlens.evaluation.datasets import load_eval_set

    sets = {}
    try:
        s = load_eval_set("optdigits")
        sets["optdigits"] = (s.x, s.y)
    except ImportError:
        pass
    try:
        m = load_mnist(mnist_dir)
        sets["mnist"] = (m.x_test, m.y_test)  # the official 10,000 test digits
    except FileNotFoundError:
        pass
    return sets


def markdown(runs: list[dict], extra: list[str]) -> str:
    """One row per (model, variant): bundled mean (spread), each extra set's mean, seconds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["variant"]), []).append(r)
    head = ["model", "variant", "seeds", "bundled test: mean (spread)"] + \
        [f"{e} mean" for e in extra] + ["ECE (bundled)", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (model, variant), rs in groups.items():
        b = [r["bundled"] for r in rs]
        cells = [model, variant, ",".join(str(r["seed"]) for r in rs),
                 f"{np.mean(b):.2%} ({np.ptp(b):.2%})"]
        cells += [f"{np.mean([r[e] for r in rs]):.2%}" for e in extra]
        eces = [r["ece"] for r in rs if "ece" in r]  # (runs recorded before the column: none)
        cells.append(f"{np.mean(eces):.1%}" if eces else "-")
        cells.append(f"{np.mean([r['seconds'] for r in rs]):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(files: list[str], pick: str) -> str:
    """The Markdown table of runs recorded by ``--jsonl`` (cross-validation lines are skipped);
    ``pick`` = ``model:variant,...`` keeps those groups, in that order."""
    runs = [json.loads(line) for f in files for line in Path(f).read_text().splitlines()
            if line.strip()]
    runs = [r for r in runs if "seed" in r]
    if pick:
        order = [tuple(p.split(":", 1)) for p in pick.split(",")]
        runs = [r for key in order for r in runs if (r["model"], r["variant"]) == key]
    extra = [k for k in ("optdigits", "mnist") if runs and all(k in r for r in runs)]
    return markdown(runs, extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="logistic,lab,mlp,cnn")
    ap.add_argument("--variants", default="recipe")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cv", default="", help="variants to cross-validate (5 folds, seed 0)")
    ap.add_argument("--jsonl", default=None, help="append one JSON line per run to this file")
    ap.add_argument("--mnist-dir", default=None,
                    help="MNIST IDX files (default: digitlens's download cache)")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--render", default=None, help="print the table of runs already measured in "
                    "these comma-separated .jsonl files instead of training (with --pick)")
    ap.add_argument("--pick", default="", help="with --render: model:variant,... to show, in "
                    "this order (default: every run)")
    args = ap.parse_args()
    if args.render:
        print(render(args.render.split(","), args.pick))
        return
    table = variants()
    if args.list:
        for v, per_model in table.items():
            for m, (c, a, *layers) in per_model.items():
                print(f"{v:14s} {m:9s} {c} {a}" + (" (other layers)" if layers else ""))
        return
    models, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    chosen = [v for v in args.variants.split(",") if v]
    d = dl.load_digits()
    extra = load_extra_sets(args.mnist_dir)
    out = Path(args.jsonl) if args.jsonl else None
    runs = []
    for variant in chosen:
        for model in models:
            if model not in table[variant]:
                continue
            config, aug, *layers = table[variant][model]
            for seed in seeds:
                with recipe_as(model, config, aug, *layers):
                    row = recipes.train_rung(model, d.x_train, d.y_train, d.x_test, d.y_test,
                                             seed=seed)
                run = {"model": model, "variant": variant, "seed": seed,
                       "n_params": row.n_params,
                       "bundled": row.test_accuracy, "seconds": row.seconds,
                       "ece": expected_calibration_error(row.model, d.x_test, d.y_test),
                       "config": config.to_dict(), "augment": None if aug is None
                       else aug.to_dict()}
                for name, (x, y) in extra.items():
                    run[name] = accuracy(row.model, x, y)
                runs.append(run)
                print(f"  {model} {variant} seed {seed}: " + ", ".join(
                    f"{k} {run[k]:.2%}" for k in ("bundled", *extra)) +
                    f", {run['seconds']:.1f} s", flush=True)
                if out is not None:
                    with out.open("a") as f:
                        f.write(json.dumps(run) + "\n")
    if runs:
        print()
        print(markdown(runs, list(extra)))
    for variant in [v for v in args.cv.split(",") if v]:
        for model in models:
            if model not in table[variant]:
                continue
            t = time.perf_counter()
            accs = cross_validate(model, *table[variant][model])
            line = {"model": model, "variant": variant, "cv_folds": accs,
                    "cv_mean": float(np.mean(accs)), "seconds": time.perf_counter() - t}
            print(f"\n5-fold CV {model} {variant}: {np.mean(accs):.2%} "
                  f"(folds {' '.join(f'{a:.2%}' for a in accs)})", flush=True)
            if out is not None:
                with out.open("a") as f:
                    f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
