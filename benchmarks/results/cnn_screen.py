"""(The driver of benchmarks/results/cnn_screen*.jsonl; it ran from /tmp/acc as screen.py.)
Screen cnn recipe variants on one seed; from ONE training run, evaluate the final weights and
weight averages (EMA of several decays, uniform average of epoch-end weights over the last
fraction of epochs).  Usage: screen.py NAME --epochs 80 [--lr ..] [--bs ..] [--l2 ..]
[--aug JSON] [--arch NAME] [--seed 0] --out FILE"""
import argparse
import json
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import numpy as np

import digitlens as dl
import model_table as mt
from digitlens.training import recipes
from digitlens.training.augment import AugmentConfig
from digitlens.training.fit import TrainConfig

ap = argparse.ArgumentParser()
ap.add_argument("name")
ap.add_argument("--epochs", type=int, default=80)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--bs", type=int, default=64)
ap.add_argument("--l2", type=float, default=0.0)
ap.add_argument("--aug", default="{}")
ap.add_argument("--arch", default=None)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--warmup", type=float, default=0.3)
ap.add_argument("--opt", default="adam")
ap.add_argument("--momentum", type=float, default=0.9)
ap.add_argument("--emas", default="0.999,0.9995,0.998")
ap.add_argument("--swa", default="0.25,0.5")
ap.add_argument("--out", required=True)
a = ap.parse_args()

base = {"rotation": 10, "scale": 0.1, "shift": 2, "thickness": 0.5, "elastic": 1.0,
        "elastic_sigma": 4.0}
base.update(json.loads(a.aug))
aug = AugmentConfig(**base)
cfg = TrainConfig(epochs=a.epochs, batch_size=a.bs, lr=a.lr, schedule="onecycle", l2=a.l2,
                  warmup=a.warmup, optimizer=a.opt, momentum=a.momentum)
emas = [float(e) for e in a.emas.split(",") if e]
swas = [float(s) for s in a.swa.split(",") if s]



class Avg:
    def set_model(self, m):
        self.m, self.p, self.t, self.ep = m, m.params(), 0, 0
        self.ema = {d: {k: v.astype(np.float64) for k, v in self.p.items()} for d in emas}
        self.swa = {f: None for f in swas}
        self.nswa = {f: 0 for f in swas}

    def on_batch_end(self, log):
        self.t += 1
        for d, e in self.ema.items():
            dd = min(d, (1 + self.t) / (10 + self.t))  # warm start (TF-style)
            for k, v in self.p.items():
                e[k] *= dd
                e[k] += (1 - dd) * v

    def on_epoch_end(self, log):
        self.ep += 1
        for f in swas:
            if self.ep > round(a.epochs * (1 - f)):
                if self.swa[f] is None:
                    self.swa[f] = {k: v.astype(np.float64) for k, v in self.p.items()}
                else:
                    for k, v in self.p.items():
                        self.swa[f][k] += v
                self.nswa[f] += 1


d = dl.load_digits()
extra = mt.load_extra_sets(__import__("os").path.expanduser("~/.digitlens/mnist"))
ALIAS = {"cnn3p": "cnn3_pool"}  # the name the screen used for model_table's cnn3_pool
layers = getattr(mt, ALIAS.get(a.arch, a.arch)) if a.arch else None
cb = Avg()
with mt.recipe_as("cnn", cfg, aug, layers):
    row = recipes.train_rung("cnn", d.x_train, d.y_train, d.x_test, d.y_test, seed=a.seed,
                             callbacks=[cb])
m = row.model
final = {k: v.copy() for k, v in m.params().items()}
sets = {"final": final}
for dcy, e in cb.ema.items():
    sets[f"ema{dcy}"] = {k: v.astype(np.float32) for k, v in e.items()}
for f, s in cb.swa.items():
    sets[f"swa{f}"] = {k: (v / cb.nswa[f]).astype(np.float32) for k, v in s.items()}
with open(a.out, "a") as fh:
    for wname, w in sets.items():
        m.set_params(w)
        r = {"name": a.name, "weights": wname, "seed": a.seed, "seconds": row.seconds,
             "bundled": mt.accuracy(m, d.x_test, d.y_test),
             "ece": mt.expected_calibration_error(m, d.x_test, d.y_test),
             "train_loss": row.history.epochs[-1]["loss"],
             "train_acc": row.history.epochs[-1]["accuracy"], "config": cfg.to_dict(),
             "augment": aug.to_dict(), "arch": a.arch}
        for n, (x, y) in extra.items():
            r[n] = mt.accuracy(m, x, y)
        fh.write(json.dumps(r) + "\n")
        print(f"{a.name:22s} s{a.seed} {wname:10s} bundled {r['bundled']:.2%} "
              f"opt {r.get('optdigits', 0):.2%} mnist {r.get('mnist', 0):.2%} "
              f"tr {r['train_acc']:.2%}/{r['train_loss']:.3f} ece {r['ece']:.2%} "
              f"{row.seconds:.0f}s", flush=True)
