"""Convolution and pooling: the same small detector slid over every position of an image.

Notation (the lessons' names, with image shapes):

- ``x``  : a layer's input, ``(N, C, H, W)`` — N images, C channels (feature maps), H×W pixels
- ``W``  : convolution weights ``(C_out, C_in, kh, kw)`` — one ``C_in×kh×kw`` filter per output
  channel, the same layout as PyTorch's ``Conv2d.weight``; ``b`` : biases ``(C_out,)``
- ``z``  : the convolution's output ``(N, C_out, H_out, W_out)``, one map per filter, with
  ``H_out = (H + 2·pad - kh) // stride + 1`` (likewise ``W_out``)
- ``dz``, ``dx``, ``dW`` : gradients of the loss with respect to those arrays

**How the convolution is computed (im2col).**  At each output position a filter takes a weighted sum
of the ``C_in·kh·kw`` input numbers under it.  Copying every such patch into one column of a matrix
``cols`` ``(C_in·kh·kw, N·H_out·W_out)`` turns all filters at all positions into *one* matrix
product: ``z = W_mat @ cols`` with ``W_mat = W.reshape(C_out, C_in·kh·kw)``.  The patches are read
through a strided *view* of the input (:func:`numpy.lib.stride_tricks.as_strided`, no Python loop),
and the copy into ``cols`` happens once, in the reshape.  The backward pass is the same product
transposed (``dW = dz_mat @ cols.T``), and ``col2im`` adds each column's gradient back onto the
pixels it was copied from — one vectorised slice-add per kernel offset (kh·kw of them), which is
much faster than ``np.add.at``.

**Memory layout.**  Shapes are always ``(N, C, H, W)`` as in PyTorch.  Internally, ``z = W_mat @
cols`` naturally comes out channel-major, i.e. laid out in memory as ``(C, N, H, W)``; the layers
return it as an ``(N, C, H, W)`` *view* (a transpose, no copy) and the next convolution reads it
through its strides.  Only the memory order differs, never the numbers or the indexing, so callers
can treat every array as an ordinary ``(N, C, H, W)`` array (``np.ascontiguousarray`` if they need
C order).

Everything works in the dtype it is given (float32 to train, float64 for gradient checks).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .layers import Layer, init_weights, register, resolve_init

# ----------------------------------------------------------------------------------- helpers


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; validates integers >= ``minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions a window of ``kernel`` pixels takes along an axis: ``(size + 2p - k) // s + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def channel_major_zeros(shape: tuple[int, int, int, int], dtype) -> np.ndarray:
    """Zeros of shape ``(N, C, H, W)`` laid out in memory as ``(C, N, H, W)`` (see module doc)."""
    n, c, h, w = shape
    return np.zeros((c, n, h, w), dtype=dtype).transpose(1, 0, 2, 3)  # (N, C, H, W) view


def pad2d(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """Surround each image with ``padding`` rows/columns of zeros: ``(N, C, H+2ph, W+2pw)``.

    The result is channel-major in memory, which makes :func:`im2col`'s copy read memory in order.
    """
    ph, pw = padding
    n, c, h, w = x.shape
    if ph == 0 and pw == 0:
        return x
    xp = channel_major_zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


# ------------------------------------------------------------------------------- im2col pair


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Every ``kh×kw`` patch of every image as one column.

    Parameters
    ----------
    x : (N, C, H, W) images (any memory layout).
    kernel, stride, padding : (rows, columns) pairs.

    Returns
    -------
    cols : (C·kh·kw, N·H_out·W_out) array; row ``(c, i, j)`` holds, for every image and output
        position ``(r, s)``, the padded input pixel ``x[n, c, r·stride + i, s·stride + j]``.
    (H_out, W_out) : the output map size.
    """
    kh, kw = kernel
    sh, sw = stride
    n, c, h, w = x.shape
    h_out = output_size(h, kh, sh, padding[0])
    w_out = output_size(w, kw, sw, padding[1])
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {kh}x{kw} kernel with padding {padding} does not fit a {h}x{w} "
                         "image")
    xp = pad2d(x, padding)  # (N, C, H+2ph, W+2pw)
    s_n, s_c, s_h, s_w = xp.strides
    # A 6-D view, no copy: patches[c, i, j, n, r, s] = xp[n, c, r*sh + i, s*sw + j]
    patches = as_strided(xp, shape=(c, kh, kw, n, h_out, w_out),
                         strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw), writeable=False)
    cols = patches.reshape(c * kh * kw, n * h_out * w_out)  # the one copy: (C*kh*kw, N*Ho*Wo)
    return cols, (h_out, w_out)


def col2im(dcols: np.ndarray, x_shape: tuple[int, int, int, int], kernel: tuple[int, int],
           stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each column entry back onto the pixel it came from.

    A pixel that sat under several patches receives the sum of their gradients.  Looping over the
    ``kh·kw`` kernel offsets (each a vectorised strided slice-add over all images and positions) is
    exact and far faster than a scatter with ``np.add.at``.

    Parameters
    ----------
    dcols : (C·kh·kw, N·H_out·W_out) gradient with respect to ``cols``.
    x_shape : (N, C, H, W) of the input that :func:`im2col` read.

    Returns
    -------
    dx : (N, C, H, W), channel-major in memory.
    """
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    n, c, h, w = x_shape
    h_out = output_size(h, kh, sh, ph)
    w_out = output_size(w, kw, sw, pw)
    d = dcols.reshape(c, kh, kw, n, h_out, w_out)  # (C, kh, kw, N, Ho, Wo)
    dxp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=dcols.dtype)  # (C, N, Hp, Wp)
    for i in range(kh):
        for j in range(kw):
            # the pixels that kernel offset (i, j) read: rows i, i+sh, ..., columns j, j+sw, ...
            dxp[:, :, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw] += d[:, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)  # (N, C, H, W) view


# ------------------------------------------------------------------------------- convolution


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride=(1, 1), padding=(0, 0)):
    """``z[n, o] = b[o] + Σ_c Σ_ij W[o, c, i, j] · x_padded[n, c, r·s + i, q·s + j]``.

    This is cross-correlation (the filter is not flipped), as in PyTorch and every deep-learning
    library.

    Parameters
    ----------
    x : (N, C_in, H, W); W : (C_out, C_in, kh, kw); b : (C_out,).
    stride, padding : (rows, columns) pairs.

    Returns
    -------
    z : (N, C_out, H_out, W_out), channel-major in memory.
    cols : (C_in·kh·kw, N·H_out·W_out), what :func:`conv2d_backward` needs.
    """
    c_out, c_in, kh, kw = W.shape
    if x.shape[1] != c_in:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels, weights expect {c_in}")
    cols, (h_out, w_out) = im2col(x, (kh, kw), stride, padding)  # (C_in*kh*kw, N*Ho*Wo)
    z = W.reshape(c_out, -1) @ cols  # (C_out, C_in*kh*kw) @ (C_in*kh*kw, N*Ho*Wo) -> (C_out, N*Ho*Wo)
    z += b[:, None]
    z = z.reshape(c_out, x.shape[0], h_out, w_out)  # (C_out, N, Ho, Wo)
    return z.transpose(1, 0, 2, 3), cols  # (N, C_out, Ho, Wo) view, no copy


def conv2d_backward(dz: np.ndarray, cols: np.ndarray, x_shape, W: np.ndarray, stride=(1, 1),
                    padding=(0, 0)):
    """Gradients of :func:`conv2d`: returns ``(dx, dW, db)``.

    ``z = W_mat @ cols + b`` is a matrix product, so its backward is the dense layer's:
    ``dW_mat = dz_mat @ colsᵀ``, ``dcols = W_matᵀ @ dz_mat``, ``db = Σ dz``; then :func:`col2im`
    sends ``dcols`` back to the pixels.  Because a filter is reused at every position, its gradient
    is the sum of its gradients at all positions (that sum is inside the matrix product).
    """
    c_out = W.shape[0]
    dz_mat = dz.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (C_out, N*Ho*Wo); free if channel-major
    dW, db = _conv2d_param_grads(dz_mat, cols, W.shape)
    dcols = W.reshape(c_out, -1).T @ dz_mat  # (C_in*kh*kw, C_out) @ (C_out, N*Ho*Wo)
    dx = col2im(dcols, x_shape, W.shape[2:], stride, padding)  # (N, C_in, H, W)
    return dx, dW, db


def conv2d_param_grads(dz: np.ndarray, cols: np.ndarray, w_shape) -> tuple[np.ndarray, np.ndarray]:
    """Only ``(dW, db)`` of :func:`conv2d_backward` (training skips the image's own gradient)."""
    dz_mat = dz.transpose(1, 0, 2, 3).reshape(w_shape[0], -1)  # (C_out, N*Ho*Wo)
    return _conv2d_param_grads(dz_mat, cols, w_shape)


def _conv2d_param_grads(dz_mat, cols, w_shape):
    dW = (dz_mat @ cols.T).reshape(w_shape)  # (C_out, N*Ho*Wo) @ (N*Ho*Wo, C_in*kh*kw)
    db = dz_mat.sum(axis=1)  # (C_out,)
    return dW, db


# ----------------------------------------------------------------------------------- pooling


def _window_slices(kernel, stride, out_hw):
    """For each kernel offset (i, j): the (rows, cols) slices of the input it covers."""
    kh, kw = kernel
    sh, sw = stride
    h_out, w_out = out_hw
    for i in range(kh):
        for j in range(kw):
            yield (i * kw + j, slice(i, i + sh * (h_out - 1) + 1, sh),
                   slice(j, j + sw * (w_out - 1) + 1, sw))


def maxpool2d(x: np.ndarray, kernel=(2, 2), stride=(2, 2)):
    """The largest value in each ``kh×kw`` window.

    Parameters
    ----------
    x : (N, C, H, W).  Windows that would run past the edge are dropped (as in PyTorch).

    Returns
    -------
    y : (N, C, H_out, W_out).
    arg : (N, C, H_out, W_out) uint8, which offset ``i·kw + j`` of the window held the maximum.
        On ties the first offset wins (PyTorch does the same), so exactly one input per window
        receives the gradient.
    """
    n, c, h, w = x.shape
    out_hw = (output_size(h, kernel[0], stride[0], 0), output_size(w, kernel[1], stride[1], 0))
    if min(out_hw) < 1:
        raise ValueError(f"a {kernel[0]}x{kernel[1]} pooling window does not fit a {h}x{w} image")
    y = arg = None
    # One vectorised pass per kernel offset: compare that offset's values with the best so far.
    for k, rows, cols in _window_slices(kernel, stride, out_hw):
        v = x[:, :, rows, cols]  # (N, C, Ho, Wo) strided view
        if y is None:
            y = v.copy()
            arg = np.zeros(y.shape, dtype=np.uint8)
            continue
        better = v > y  # strict: an equal later value does not take over (first max wins)
        np.copyto(y, v, where=better)
        arg[better] = k
    return y, arg


def maxpool2d_backward(dy: np.ndarray, arg: np.ndarray, x_shape, kernel=(2, 2), stride=(2, 2)):
    """Route each window's gradient to the one input that was its maximum; the others get 0."""
    dx = channel_major_zeros(x_shape, dy.dtype)  # (N, C, H, W)
    for k, rows, cols in _window_slices(kernel, stride, arg.shape[2:]):
        dx[:, :, rows, cols] += np.where(arg == k, dy, 0)  # += handles overlapping windows
    return dx


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """The mean of each feature map: (N, C, H, W) -> (N, C)."""
    return x.mean(axis=(2, 3))


def global_avg_pool_backward(dy: np.ndarray, x_shape) -> np.ndarray:
    """Each of a map's ``H·W`` pixels contributed ``1/(H·W)`` of the mean: (N, C) -> (N, C, H, W)."""
    n, c, h, w = x_shape
    dx = channel_major_zeros(x_shape, dy.dtype)
    dx += (dy / (h * w))[:, :, None, None]
    return dx


# ------------------------------------------------------------------------------------ layers


@register
class Conv2D(Layer):
    """A bank of small filters, each slid across the image: ``z = W ⋆ x + b``.

    Parameters
    ----------
    filters : number of output channels ``C_out`` (one feature map per filter).
    kernel_size : filter size, ``k`` or ``(kh, kw)``.
    stride : step between positions, ``s`` or ``(sh, sw)``.
    padding : zero rows/columns added on each side, ``p`` or ``(ph, pw)``; ``k // 2`` with stride 1
        keeps the image size.
    init : ``"auto"`` (He before ReLU-like activations, Xavier otherwise), ``"he"``, ``"xavier"``.

    Parameters are ``W`` ``(C_out, C_in, kh, kw)`` and ``b`` ``(C_out,)``, as in PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2D(8, 3, padding=1)
    >>> conv.build((1, 28, 28), np.random.default_rng(0))
    (8, 28, 28)
    >>> z, cache = conv.forward(np.zeros((2, 1, 28, 28), np.float32))
    >>> z.shape
    (2, 8, 28, 28)
    """

    type = "conv2d"
    decay_params = ("W",)

    def __init__(self, filters: int, kernel_size=3, stride=1, padding=0, init: str = "auto"):
        super().__init__()
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"Conv2D filters must be an integer >= 1, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "Conv2D kernel_size", 1)
        self.stride = _pair(stride, "Conv2D stride", 1)
        self.padding = _pair(padding, "Conv2D padding", 0)
        if init not in ("auto", "he", "xavier"):
            raise ValueError(f"Conv2D init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.init = init

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"Conv2D expects images (C, H, W), got per-sample shape {in_shape}")
        _, h, w = in_shape
        h_out = output_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        w_out = output_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        if h_out < 1 or w_out < 1:
            raise ValueError(f"Conv2D kernel {self.kernel_size} with padding {self.padding} does "
                             f"not fit a {h}x{w} input")
        return (self.filters, h_out, w_out)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        out = self.output_shape(in_shape)
        c_in = in_shape[0]
        kh, kw = self.kernel_size
        self.init = resolve_init(self.init, next_activation)
        # Each output sums C_in*kh*kw inputs (fan-in); each input feeds C_out*kh*kw outputs
        # (fan-out, PyTorch's convention), so the dense-layer initialisations carry over.
        self.params = {
            "W": init_weights(rng, c_in * kh * kw, self.filters * kh * kw,
                              (self.filters, c_in, kh, kw), self.init, dtype),
            "b": np.zeros(self.filters, dtype=dtype),
        }
        return out

    def config(self):
        return {"type": self.type, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding), "init": self.init}

    def describe(self):
        kh, kw = self.kernel_size
        step = "" if self.stride == (1, 1) else f", moving {self.stride[0]} pixels at a time"
        c_in = self.params["W"].shape[1] if "W" in self.params else 1
        if c_in == 1:
            return (f"{self.filters} filters of {kh}×{kw} weights, each slid across the image"
                    f"{step}: at every position it takes a weighted sum of the pixels under it, so "
                    "each filter makes a map of where its pattern (an edge, a curve, a stroke end) "
                    "appears — the same detector everywhere in the image")
        return (f"{self.filters} filters, each reading a {kh}×{kw} patch of all {c_in} maps below "
                f"it{step}: every filter combines simpler patterns into a bigger one (strokes that "
                "meet, a loop, a corner) and maps where it appears")

    def forward(self, x, *, training=False, rng=None):
        z, cols = conv2d(x, self.params["W"], self.params["b"], self.stride, self.padding)
        return z, (x.shape, cols)  # z: (N, C_out, H_out, W_out)

    def backward(self, dz, cache):
        x_shape, cols = cache
        dx, dW, db = conv2d_backward(dz, cols, x_shape, self.params["W"], self.stride,
                                     self.padding)
        return dx, {"W": dW, "b": db}

    def param_grads(self, dz, cache):
        dW, db = conv2d_param_grads(dz, cache[1], self.params["W"].shape)
        return {"W": dW, "b": db}


@register
class MaxPool2D(Layer):
    """Keeps the largest value in each window (default 2×2, stride 2: halves height and width).

    Parameters
    ----------
    pool_size : window ``k`` or ``(kh, kw)``.
    stride : step between windows; defaults to the window size (non-overlapping windows).
    """

    type = "maxpool2d"

    def __init__(self, pool_size=2, stride=None) -> None:
        super().__init__()
        self.pool_size = _pair(pool_size, "MaxPool2D pool_size", 1)
        self.stride = self.pool_size if stride is None else _pair(stride, "MaxPool2D stride", 1)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"MaxPool2D expects images (C, H, W), got per-sample shape {in_shape}")
        c, h, w = in_shape
        h_out = output_size(h, self.pool_size[0], self.stride[0], 0)
        w_out = output_size(w, self.pool_size[1], self.stride[1], 0)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"MaxPool2D window {self.pool_size} does not fit a {h}x{w} input")
        return (c, h_out, w_out)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        return self.output_shape(in_shape)

    def config(self):
        return {"type": self.type, "pool_size": list(self.pool_size), "stride": list(self.stride)}

    def describe(self):
        kh, kw = self.pool_size
        return (f"keeps only the strongest response in each {kh}×{kw} block, shrinking every map: "
                "what matters is that a pattern is present nearby, not its exact pixel")

    def forward(self, x, *, training=False, rng=None):
        y, arg = maxpool2d(x, self.pool_size, self.stride)
        return y, (x.shape, arg)  # y: (N, C, H_out, W_out)

    def backward(self, dy, cache):
        x_shape, arg = cache
        return maxpool2d_backward(dy, arg, x_shape, self.pool_size, self.stride), {}


@register
class GlobalAvgPool2D(Layer):
    """Averages each feature map into one number: ``(C, H, W) -> (C,)``."""

    type = "global_avg_pool2d"

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"GlobalAvgPool2D expects images (C, H, W), got per-sample shape "
                             f"{in_shape}")
        return (in_shape[0],)

    def build(self, in_shape, rng, dtype=np.float32, next_activation=None):
        return self.output_shape(in_shape)

    def describe(self):
        return ("averages each feature map into a single number: how strongly its pattern shows up "
                "anywhere in the image")

    def forward(self, x, *, training=False, rng=None):
        return global_avg_pool(x), x.shape  # (N, C)

    def backward(self, dy, x_shape):
        return global_avg_pool_backward(dy, x_shape), {}


__all__ = ["Conv2D", "MaxPool2D", "GlobalAvgPool2D", "conv2d", "conv2d_backward",
           "conv2d_param_grads", "im2col",
           "col2im", "maxpool2d", "maxpool2d_backward", "global_avg_pool",
           "global_avg_pool_backward", "pad2d", "output_size"]
