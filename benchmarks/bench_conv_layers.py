"""The zoo ``cnn``'s convolutions one at a time, one thread: digitlens, its matrix products alone,
and PyTorch (oneDNN), on the same 32 images (the slice ``fit`` computes), float32.

For each convolution (input channels, size, filters; 3×3, padding 1):

- ``forward``  : digitlens ``conv2d`` (im2col copy, one matrix product, the bias) against
  ``torch.nn.functional.conv2d``;
- ``backward`` : digitlens ``conv2d_backward`` (dW, db and dx: two matrix products, a sum and the
  col2im additions; the first convolution's dx is skipped, as in training) against PyTorch's
  autograd for the same gradients;
- ``products`` : the matrix products alone (``W_mat @ cols``; ``cols @ dzᵀ``, in the blocks of
  columns digitlens uses, with ``db``'s sum, and ``W_matᵀ @ dz``): what an im2col engine cannot
  go below, however well the copies around them are written.

Each time is the best of ``--repeats`` runs on warm arrays, in milliseconds; ratios are digitlens
time / PyTorch time.  Not a test: run it by hand.

    python benchmarks/bench_conv_layers.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from digitlens.nn import Conv2D
from digitlens.nn.conv import (_as_matrix, _conv2d_param_grads, as_batch_last, conv2d,
                               conv2d_backward, conv2d_param_grads)
from digitlens.nn.zoo import build_model

N = 32  # images per slice (training.split.SLICE)


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    model = build_model("cnn", rng)
    shapes = [(layer, shape) for layer, shape in zip(model.layers, [model.input_shape,
                                                                   *model.shapes])
              if isinstance(layer, Conv2D)]
    print(f"zoo cnn's convolutions, {N} images, 1 thread, float32, best of {args.repeats} "
          f"(ms); numpy {np.__version__}, torch {torch.__version__}")
    print(f"  {'layer':<22} {'step':<9} {'digitlens':>9} {'products':>9} {'pytorch':>9} "
          f"{'ratio':>7} {'products/pytorch':>17}")
    totals = np.zeros(3)
    with threadpool_limits(limits=1, user_api="blas"):
        for k, (layer, (c, h, w)) in enumerate(shapes):
            W, b = layer.params["W"], layer.params["b"]
            x = as_batch_last(rng.random((N, c, h, w), dtype=np.float32))
            z, cols = conv2d(x, W, b, layer.stride, layer.padding)
            dz = as_batch_last(rng.standard_normal(z.shape, dtype=np.float32))
            W_mat, dz_mat = W.reshape(W.shape[0], -1), _as_matrix(dz)
            first = k == 0  # training skips the image's own gradient

            xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(not first)
            Wt = torch.from_numpy(W.copy()).requires_grad_()
            bt = torch.from_numpy(b.copy()).requires_grad_()
            dzt = torch.from_numpy(np.ascontiguousarray(dz))
            inputs = (Wt, bt) if first else (xt, Wt, bt)

            def t_forward():
                with torch.no_grad():
                    torch.nn.functional.conv2d(xt, Wt, bt, layer.stride, layer.padding)

            zt = torch.nn.functional.conv2d(xt, Wt, bt, layer.stride, layer.padding)

            def t_backward():
                torch.autograd.grad(zt, inputs, dzt, retain_graph=True)

            if first:
                def d_backward():
                    conv2d_param_grads(dz, cols, W.shape)

                def d_products():  # dW in blocks of columns, as conv2d_param_grads runs it
                    _conv2d_param_grads(dz_mat, cols, W.shape)
            else:
                def d_backward():
                    conv2d_backward(dz, cols, x.shape, W, layer.stride, layer.padding)

                def d_products():
                    _conv2d_param_grads(dz_mat, cols, W.shape)
                    W_mat.T @ dz_mat

            name = f"{c}x{h}x{w} -> {layer.filters}"
            rows = [("forward", lambda: conv2d(x, W, b, layer.stride, layer.padding),
                     lambda: W_mat @ cols, t_forward),
                    ("backward", d_backward, d_products, t_backward)]
            for step, ours, products, theirs in rows:
                t = np.array([best(ours, args.repeats), best(products, args.repeats),
                              best(theirs, args.repeats)])
                totals += t
                print(f"  {name:<22} {step:<9} {t[0]:9.3f} {t[1]:9.3f} {t[2]:9.3f} "
                      f"{t[0] / t[2]:6.2f}x {t[1] / t[2]:16.2f}x")
    print(f"  {'all convolutions':<32} {totals[0]:9.3f} {totals[1]:9.3f} {totals[2]:9.3f} "
          f"{totals[0] / totals[2]:6.2f}x {totals[1] / totals[2]:16.2f}x")


if __name__ == "__main__":
    main()
