"""How long one explanation takes, against Captum computing the same attributions in the same run.

For ``mlp`` and ``cnn``, over 200 bundled test digits drawn as 280x280 canvas PNGs (dark ink on
white, like the web page sends):

- **ours, core** (the timed path of the issue): pre-process the PNG, forward pass + trace,
  saliency, integrated gradients (32 Gauss-Legendre points, doubled while the completeness error
  is above 1%), contrast with the runner-up (integrated gradients of the logit gap + the exact
  split over the last hidden layer), occlusion (4x4 squares, stride 2).  No unit atlas, no
  nearest examples, no counterfactual.
- **ours, full**: core + gradient x input, first-layer units, hand-made kernels, unit
  prototypes and nearest training examples (from the atlas precomputed once per model, not
  timed).  The counterfactual search and ``to_json()`` (which encodes the pre-processing step
  images as PNGs) are timed on their own.
- **captum**: the same saliency, integrated gradients (32 points), integrated gradients of the
  gap and occlusion on the already pre-processed image, with the same weights in PyTorch
  (float32, its usual precision; ours runs in float64).  Attributions only: no pre-processing,
  trace or unit split, so the comparison flatters Captum.

Also printed: agreement with Captum in float64 (max |ours - captum|) and the integrated-gradients
completeness over all digits (n_steps needed, worst relative error).

With ``--completeness``, instead: for every zoo model, the integrated-gradients completeness over
``--n`` test digits at the default settings (class and gap targets, float64): how many points
were needed and the worst relative error.

Run:  python benchmarks/bench_explain.py [--n 200] [--threads 1] [--models mlp,cnn]
      python benchmarks/bench_explain.py --completeness [--n 200]
Trained models are read from the cache (``digitlens train --model cnn``); a model that is not
trained yet is trained here for ``--epochs`` epochs (timings barely depend on accuracy).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import time

import numpy as np


def to_torch(model, torch):
    """The same network in PyTorch (Dense W is (D_in, D_out): Linear.weight = W.T)."""
    mods = []
    for layer in model.layers:
        if layer.type == "flatten":
            mods.append(torch.nn.Flatten())
        elif layer.type == "dense":
            lin = torch.nn.Linear(*layer.params["W"].shape)
            lin.weight.data = torch.tensor(np.ascontiguousarray(layer.params["W"].T))
            lin.bias.data = torch.tensor(layer.params["b"])
            mods.append(lin)
        elif layer.type == "conv2d":
            c_out, c_in, kh, kw = layer.params["W"].shape
            conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), stride=layer.stride,
                                   padding=layer.padding)
            conv.weight.data = torch.tensor(np.ascontiguousarray(layer.params["W"]))
            conv.bias.data = torch.tensor(layer.params["b"])
            mods.append(conv)
        elif layer.type == "maxpool2d":
            mods.append(torch.nn.MaxPool2d(layer.pool_size, layer.stride))
        elif layer.type == "activation":
            mods.append({"relu": torch.nn.ReLU(), "identity": torch.nn.Identity()}[layer.fn])
        elif layer.type == "dropout":
            mods.append(torch.nn.Dropout(layer.p))
        else:
            raise NotImplementedError(layer.type)
    return torch.nn.Sequential(*mods).eval()


def canvas_png(digit: np.ndarray) -> bytes:
    from PIL import Image

    img = Image.fromarray((255 - digit * 255).astype(np.uint8)).resize((280, 280),
                                                                       Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def load_or_train(name: str, epochs: int):
    import digitlens as dl
    from digitlens._util import paths
    from digitlens.nn.checkpoint import load_model
    from digitlens.nn.zoo import MODELS
    from digitlens.training.recipes import default_recipe

    p = paths.model_path(name)
    if p.exists():
        return load_model(p), f"trained model from {p}"
    d = dl.load_digits()
    recipe = dataclasses.replace(default_recipe(name), epochs=epochs)
    rng = np.random.default_rng(0)
    m = dl.build_model(name, rng)
    augment = getattr(MODELS[name], "augment", None)
    kwargs = {"augment": augment(recipe)} if callable(augment) else {}
    dl.fit(m, d.x_train, d.y_train, recipe, rng=rng, **kwargs)
    return m, f"not in the cache: trained here for {epochs} epoch(s)"


def pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.2f} ms   p95 {np.percentile(a, 95):7.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="digits per model")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (same for both)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs for models not in the cache")
    ap.add_argument("--agreement", type=int, default=20, help="digits for the Captum agreement")
    ap.add_argument("--completeness", action="store_true", help="IG completeness census of the "
                    "whole zoo instead of timings")
    args = ap.parse_args()
    if args.completeness:
        return completeness(args)

    import torch
    from captum.attr import IntegratedGradients, Occlusion, Saliency
    from threadpoolctl import threadpool_limits

    import digitlens as dl
    from digitlens.explain import attribution as A
    from digitlens.explain import contrast as C
    from digitlens.recognizer import Recognizer

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    d = dl.load_digits()
    idx = np.arange(args.n) % len(d.x_test)
    pngs = [canvas_png(d.x_test[i, 0]) for i in idx]
    print(f"bench_explain: {args.n} canvas digits per model, {args.threads} thread(s) for NumPy's "
          f"BLAS and for torch; numpy {np.__version__}, torch {torch.__version__}")
    for name in args.models.split(","):
        model, origin = load_or_train(name, args.epochs)
        print(f"\n== {name} ({origin}) ==")
        rec = Recognizer({name: model}, digits=d)
        rec.atlas(name)  # precomputed once per model, not timed
        m64 = rec.exact_model(name)
        tm = to_torch(model, torch)
        core_kw = dict(methods=("saliency", "integrated_gradients", "occlusion"), trace=True,
                       contrast=True, counterfactual=False, units=False, nearest=False)
        # warm-up (imports, caches)
        for png in pngs[:3]:
            rec.explain(png, model=name, **core_kw)
            rec.explain(png, model=name, counterfactual=False)
        ours_core, ours_full, captum, cf_ms, pre_ms, json_ms = [], [], [], [], [], []
        steps_used, worst_rel, worst_gap_rel, flips = [], 0.0, 0.0, 0
        for png in pngs:
            t0 = time.perf_counter()
            e = rec.explain(png, model=name, **core_kw)
            ours_core.append((time.perf_counter() - t0) * 1e3)
            pre_ms.append(e.timings_ms["preprocess"])
            ig = e.attributions["integrated_gradients"][e.prediction]
            steps_used.append(ig.meta["n_steps"])
            worst_rel = max(worst_rel, ig.meta["relative_delta"] or 0.0)
            worst_gap_rel = max(worst_gap_rel, e.contrast.pixels.meta["relative_delta"] or 0.0)

            t0 = time.perf_counter()
            full = rec.explain(png, model=name, counterfactual=False)
            ours_full.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            full.to_json()
            json_ms.append((time.perf_counter() - t0) * 1e3)

            t0 = time.perf_counter()
            cf = C.counterfactual(m64, e.image, e.runner_up)
            cf_ms.append((time.perf_counter() - t0) * 1e3)
            flips += cf.found

            # Captum: the same four attributions on the same pre-processed image (float32)
            x = torch.tensor(e.image.reshape(1, 1, 28, 28), dtype=torch.float32)
            a, b = e.prediction, e.runner_up
            t0 = time.perf_counter()
            with torch.no_grad():
                tm(x)
            Saliency(tm).attribute(x.clone().requires_grad_(), target=a, abs=False)
            IntegratedGradients(tm).attribute(x, target=a, n_steps=32)
            IntegratedGradients(lambda inp: tm(inp)[:, a] - tm(inp)[:, b]).attribute(x, n_steps=32)
            Occlusion(tm).attribute(x, target=a, sliding_window_shapes=(1, 4, 4),
                                    strides=(1, 2, 2), baselines=0.0,
                                    perturbations_per_eval=169)
            captum.append((time.perf_counter() - t0) * 1e3)
        p95 = np.percentile(ours_core, 95)
        target = {"mlp": 20.0, "cnn": 100.0}.get(name)
        print(f"ours, core explanation   {pct(ours_core)}"
              + (f"   (target p95 < {target:.0f} ms: {'met' if p95 < target else 'NOT met'})"
                 if target else ""))
        print(f"  of which pre-processing {pct(pre_ms)}")
        print(f"ours, full explanation   {pct(ours_full)}   (+ grad x input, units, kernels, "
              f"prototypes, nearest)")
        print(f"  its JSON (to_json)     {pct(json_ms)}   (step PNGs encoded here, "
              f"{len(full.to_json()) / 1024:.0f} kB)")
        print(f"ours, counterfactual     {pct(cf_ms)}   (found for {flips}/{len(pngs)} digits)")
        print(f"captum, 4 attributions   {pct(captum)}")
        r50 = np.percentile(ours_core, 50) / np.percentile(captum, 50)
        r95 = p95 / np.percentile(captum, 95)
        print(f"ratio ours core / captum: p50 {r50:.2f}x, p95 {r95:.2f}x (below 1: ours faster)")
        u, c = np.unique(steps_used, return_counts=True)
        print("integrated gradients n_steps used: "
              + ", ".join(f"{int(k)}: {int(v)} digits" for k, v in zip(u, c))
              + f"; worst completeness error {worst_rel:.3%} (class), {worst_gap_rel:.3%} (gap)")

        # agreement with Captum in float64 on a few digits
        tm64 = to_torch(m64, torch).double()
        worst = {"saliency": 0.0, "integrated_gradients": 0.0, "occlusion": 0.0}
        for i in range(min(args.agreement, len(pngs))):
            xi = d.x_test[i:i + 1].astype(np.float64)
            t = int(m64.predict(xi)[0])
            xt = torch.tensor(xi)
            ref = {
                "saliency": Saliency(tm64).attribute(xt.clone().requires_grad_(), target=t,
                                                     abs=False),
                "integrated_gradients": IntegratedGradients(tm64).attribute(xt, target=t,
                                                                            n_steps=32),
                "occlusion": Occlusion(tm64).attribute(xt, target=t,
                                                       sliding_window_shapes=(1, 4, 4),
                                                       strides=(1, 2, 2), baselines=0.0,
                                                       perturbations_per_eval=169),
            }
            ours = {"saliency": A.saliency(m64, xi, t),
                    "integrated_gradients": A.integrated_gradients(m64, xi, t, n_steps=32,
                                                                   tolerance=None),
                    "occlusion": A.occlusion(m64, xi, t)}
            for k in worst:
                worst[k] = max(worst[k], float(np.abs(ours[k].map - ref[k].detach().numpy()[0, 0])
                                              .max()))
        print(f"agreement with Captum (float64, {min(args.agreement, len(pngs))} digits), "
              "max |ours - captum|: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


def completeness(args) -> None:
    """n_steps needed and worst |Σ map − (f(x) − f(0))| / |f(x) − f(0)| for every zoo model."""
    from threadpoolctl import threadpool_limits

    import digitlens as dl
    from digitlens.explain import attribution as A
    from digitlens.nn.zoo import MODELS

    threadpool_limits(args.threads)
    d = dl.load_digits()
    print(f"integrated gradients, black baseline, 32 Gauss-Legendre points doubled while the "
          f"error is above 1% (near-ties: 1% of 2% of Σ|map|), float64, {args.n} test digits")
    for name in MODELS:
        model, origin = load_or_train(name, args.epochs)
        m = model.astype(np.float64)
        keep = np.flatnonzero(np.isin(d.y_test, m.classes))[:args.n]
        rows = {"class": [], "gap": []}
        for i in keep:
            x = d.x_test[i, 0]
            z = A.class_logits(m, m.forward(x[None, None]))[0]
            a, b = (m.classes[int(k)] for k in np.argsort(-z)[:2])
            cls, gap = A.integrated_gradients_many(m, x, [a, (a, b)])
            rows["class"].append((cls.meta["n_steps"], cls.meta["relative_delta"] or 0.0))
            rows["gap"].append((gap.meta["n_steps"], gap.meta["relative_delta"] or 0.0))
        print(f"{name:9s} ({origin})")
        for k, r in rows.items():
            steps = np.array([s for s, _ in r])
            rel = np.array([e for _, e in r])
            u, c = np.unique(steps, return_counts=True)
            print(f"   {k:5s}: n_steps " + ", ".join(f"{int(a)}×{int(b)}" for a, b in zip(u, c))
                  + f"; relative error median {np.median(rel):.3%}, worst {rel.max():.3%}, "
                  f"above 1%: {int((rel > 0.01).sum())} digits")


if __name__ == "__main__":
    sys.exit(main())
