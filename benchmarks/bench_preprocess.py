"""Pre-processing speed (and photo robustness), measured against a plain Pillow resize in one run.

Inputs, all encoded files so decoding is included (as in ``digitlens predict`` and the web page):

- ``page 140``: the 140x140 opaque RGBA PNG the web page sends on every stroke;
- ``canvas 280``: a 280x280 RGBA PNG like a drawing app's canvas (anti-aliased black strokes on
  transparent pixels) — the target is under 10 ms;
- ``ruled 320``: a 320x320 JPEG photo of a digit on ruled notebook paper (the lines are removed);
- ``photo 1000``: a 1000x1000 JPEG "photo" of a digit (``synthetic_photo``: lighting gradient,
  noise, blur, dust);
- ``photo 12MP``: a 4000x3000 JPEG, a phone camera's size;
- ``mnist 28``: one bundled digit as a (28, 28) array (the training-data path).

For each: ``digitlens`` is ``preprocess(data)``, every step; ``plain`` is what a naive app
does — Pillow decode, grayscale, ``resize((28, 28))``; ``decode`` is Pillow's decode and
grayscale conversion alone, the floor any pipeline pays.  Rounds are interleaved and the best
and median of ``--repeats`` are reported; ratios (digitlens / plain) are from the same run.

It also times ``Preprocessed.to_dict()`` (the JSON the web page gets, step images as PNGs).

``--robustness N`` also trains the ``mlp`` zoo model (default recipe, seed 0) and reports its
accuracy on N bundled test digits: clean, as synthetic photos through the pipeline, and as the
same photos through the plain resize.

    python benchmarks/bench_preprocess.py [--repeats 30] [--robustness 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
from PIL import Image

import digitlens as dl
from digitlens.data.images import synthetic_photo
from digitlens.preprocessing import plain_resize, preprocess


def canvas_png(digit: np.ndarray) -> bytes:
    """A bundled digit drawn as a 280x280 canvas: black ink whose alpha is the MNIST intensity,
    on fully transparent (0, 0, 0, 0) pixels, placed off-centre as people draw."""
    alpha = Image.fromarray(np.uint8(np.rint(digit * 255))).resize((200, 200), Image.BICUBIC)
    a = np.zeros((280, 280), np.uint8)
    a[30:230, 60:260] = np.asarray(alpha)
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = a
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG")
    return buf.getvalue()


def page_png(digit: np.ndarray) -> bytes:
    """What the web page sends now: its board at half size, 140x140, white ink on black, as
    Chromium exports a canvas (RGBA, every pixel opaque)."""
    im = Image.fromarray(np.uint8(np.rint(digit * 255))).resize((140, 140), Image.BILINEAR)
    buf = io.BytesIO()
    im.convert("RGBA").save(buf, format="PNG")
    return buf.getvalue()


def big_jpeg(digit: np.ndarray, rng, size) -> bytes:
    return synthetic_photo(digit, rng, page=size, quality=85)


def plain(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        im = Image.fromarray(np.uint8(np.rint(data * 255)))
    else:
        im = Image.open(io.BytesIO(data))
    return np.asarray(im.convert("L").resize((28, 28), Image.BILINEAR), np.float32) / 255


def decode_only(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L"))


def timeit(fn, data) -> float:
    t = time.perf_counter()
    fn(data)
    return time.perf_counter() - t


def bench_speed(repeats: int) -> None:
    d = dl.load_digits()
    rng = np.random.default_rng(0)
    digit = d.x_test[0, 0]
    inputs = {
        "page 140": page_png(digit),
        "canvas 280": canvas_png(digit),
        "ruled 320": synthetic_photo(digit, rng, page=(320, 320), quality=85, ruled="lines"),
        "photo 1000": big_jpeg(digit, rng, (1000, 1000)),
        "photo 12MP": big_jpeg(digit, rng, (3000, 4000)),
        "mnist 28": digit,
    }
    methods = {"digitlens": preprocess, "plain": plain, "decode": decode_only}
    times = {(k, m): [] for k in inputs for m in methods}
    for k, data in inputs.items():           # warm up (imports, caches)
        for m, fn in methods.items():
            fn(data)
    for _ in range(repeats):
        for k, data in inputs.items():
            for m, fn in methods.items():
                times[k, m].append(timeit(fn, data))
    print(f"pre-processing time per image, ms (best / median of {repeats}; interleaved)")
    print(f"{'input':<12} {'bytes':>9} {'digitlens':>16} {'plain resize':>16} {'decode only':>16}"
          f" {'ratio':>7}")
    for k, data in inputs.items():
        size = len(data) if isinstance(data, bytes) else data.nbytes
        cells = []
        for m in methods:
            t = np.array(times[k, m]) * 1000
            cells.append(f"{t.min():7.2f} / {np.median(t):6.2f}")
        ratio = np.median(times[k, "digitlens"]) / np.median(times[k, "plain"])
        print(f"{k:<12} {size:>9,} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {ratio:>6.1f}x")
    print("ratio = digitlens median / plain-resize median (same run)")
    for k in ("canvas 280", "photo 1000"):
        pre = preprocess(inputs[k])
        t = [timeit(lambda p: json.dumps(p.to_dict()), pre) for _ in range(repeats)]
        print(f"{k}: Preprocessed.to_dict() + json.dumps for the web page (one PNG per step): "
              f"{np.median(t) * 1000:.2f} ms median")


def bench_robustness(n: int) -> None:
    from digitlens.training.recipes import default_recipe

    d = dl.load_digits()
    rng = np.random.default_rng(0)
    model = dl.build_model("mlp", rng)
    t = time.perf_counter()
    dl.fit(model, d.x_train, d.y_train, default_recipe("mlp"), rng=rng)
    print(f"\ntrained mlp in {time.perf_counter() - t:.1f}s")
    rng = np.random.default_rng(20241126)
    idx = rng.choice(len(d.y_test), min(n, len(d.y_test)), replace=False)
    x, y = d.x_test[idx], d.y_test[idx]
    photos = [synthetic_photo(x[i, 0], rng) for i in range(len(idx))]
    t = time.perf_counter()
    through = np.stack([preprocess(p).image for p in photos])[:, None]
    per = (time.perf_counter() - t) / len(photos) * 1000
    naive = np.stack([plain_resize(p) for p in photos])[:, None]
    acc = {k: float(np.mean(model.predict(v) == y))
           for k, v in (("clean", x), ("pipeline", through), ("plain resize", naive))}
    print(f"photo robustness, {len(idx)} bundled test digits as synthetic photos "
          f"({per:.1f} ms each through the pipeline):")
    for k, v in acc.items():
        print(f"  {k:<13} {v:.1%}  (drop of {100 * (acc['clean'] - v):.1f} points)" if k != "clean"
              else f"  {k:<13} {v:.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--robustness", type=int, default=0, metavar="N",
                    help="also measure photo robustness on N test digits (trains the mlp)")
    args = ap.parse_args()
    bench_speed(args.repeats)
    if args.robustness:
        bench_robustness(args.robustness)


if __name__ == "__main__":
    main()
