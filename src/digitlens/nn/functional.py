"""Forward/backward pairs for every operation the network uses, side by side.

Notation (the same as the lessons):

- ``x`` / ``a`` : a layer's input (the previous layer's activation), shape ``(N, D_in)``
- ``W``, ``b``  : weights ``(D_in, D_out)`` and bias ``(D_out,)``
- ``z``         : pre-activation ``z = a @ W + b``, shape ``(N, D_out)``
- ``a``         : activation ``a = g(z)``
- ``dz``, ``da``: gradients of the loss with respect to ``z`` and ``a``

Each ``*_backward`` receives the upstream gradient and whatever its forward kept, and applies
the local chain rule in a few lines. Nothing here keeps state; the layers decide what to keep.
Every function works in the dtype it is given (float32 for training, float64 for gradient checks).

The last section holds a plain *reference* convolution and max-pooling: the definitions, one window
at a time, that the fast versions in :mod:`digitlens.nn.conv` are tested against.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------------------- linear


def linear(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``z = x @ W + b``.  x: (N, D_in), W: (D_in, D_out), b: (D_out,) -> z: (N, D_out)."""
    z = x @ W  # (N, D_out)
    z += b
    return z


def linear_backward(dz: np.ndarray, x: np.ndarray, W: np.ndarray):
    """Gradients of ``z = x @ W + b``: returns ``(dx, dW, db)``.

    Each weight ``W[i, j]`` multiplies input ``i`` into output ``j``, so its gradient sums
    ``x[n, i] * dz[n, j]`` over the batch; each input feeds every output, so ``dx`` sums
    ``dz[n, j] * W[i, j]`` over the outputs.
    """
    dW, db = linear_param_grads(dz, x)
    return linear_input_grad(dz, x, W), dW, db


def linear_input_grad(dz: np.ndarray, x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Only ``dx = dz @ Wᵀ`` of :func:`linear_backward`, stored in memory like ``x``.

    After a convolution, ``x`` is the flattened image stored batch-last (column-major ``(N, D)``,
    see :mod:`digitlens.nn.conv`).  ``dx`` is then computed as ``(W @ dzᵀ)ᵀ``: the same numbers
    (each ``dx[n, i] = Σ_j dz[n, j]·W[i, j]``), already in the layout the layers below work in,
    so their element-wise steps never mix a row-major and a column-major array, which NumPy walks
    against the grain of one of them (``benchmarks/profile_cnn.py``, 32 images of the ``cnn``: the
    ReLU before the flatten went from 0.24 to 0.04 ms backward, the dense layer from 0.85 to
    0.65 ms; ``benchmarks/results/profile_cnn_s6_*.txt``).
    """
    if x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous:
        return (W @ dz.T).T  # (D_in, D_out) @ (D_out, N) -> (D_in, N), seen as (N, D_in)
    return dz @ W.T  # (N, D_out) @ (D_out, D_in) -> (N, D_in)


def linear_param_grads(dz: np.ndarray, x: np.ndarray):
    """``(dW, db)`` of ``z = x @ W + b`` without ``dx`` (for the first layer while training)."""
    dW = x.T @ dz  # (D_in, N) @ (N, D_out) -> (D_in, D_out)
    db = dz.sum(axis=0)  # (D_out,)
    return dW, db


def in_layout_of(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``a``'s values (same shape as ``like``) copied into an array stored in memory like ``like``.

    Layouts matter only for speed: an element-wise step over a row-major and a column-major array
    at once walks one of them against its grain."""
    out = np.empty_like(like, dtype=a.dtype)  # keeps like's memory order
    np.copyto(out, a)
    return out


# ---------------------------------------------------------------------------------- activations
# Each activation is a pair: forward(z) -> a, and backward(da, z, a) -> dz.  The backward gets both
# z and a so each can use whichever is cheaper (sigmoid's derivative is a(1-a), no exp needed).


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def relu_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    # ReLU is not differentiable at exactly 0; like PyTorch we use the subgradient 0 there, so a
    # unit sitting at z == 0 passes no gradient (one way a unit "dies").
    return da * (z > 0)


LEAKY_SLOPE = 0.01


def leaky_relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.where(z > 0, da, LEAKY_SLOPE * da)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)) overflows exp for z << 0.  0.5 * (1 + tanh(z / 2)) is the same function,
    # never overflows, and is exact at both tails.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da * a * (1 - a)


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def tanh_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da * (1 - a * a)


def identity(z: np.ndarray) -> np.ndarray:
    return z


def identity_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da


def elu(z: np.ndarray) -> np.ndarray:
    # expm1 on min(z, 0) keeps exp from overflowing on the positive side that np.where discards.
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def elu_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    # for z <= 0, a = e^z - 1, so the derivative e^z is a + 1 (no second exp)
    return np.where(z > 0, da, da * (a + 1.0))


# A Python float, not np.sqrt's NumPy float64 scalar: under NumPy 2's promotion rules (NEP 50) a
# float64 *scalar* times a float32 array gives float64, silently doubling the cost of every GELU.
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(z: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (as in GPT-2 and ``torch.nn.GELU(approximate='tanh')``)."""
    # z * z * z, not z**3: NumPy's float32 power with an integer exponent goes through the general
    # pow routine and is ~150x slower than two multiplications.
    u = _SQRT_2_OVER_PI * (z + 0.044715 * (z * z * z))
    return 0.5 * z * (1.0 + np.tanh(u))


def gelu_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    u = _SQRT_2_OVER_PI * (z + 0.044715 * (z * z * z))
    t = np.tanh(u)
    du_dz = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * z * z)
    return da * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du_dz)


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "identity": (identity, identity_backward),
    "elu": (elu, elu_backward),
    "gelu": (gelu, gelu_backward),
}
"""name -> (forward, backward).  ``softmax`` is an output function, see :func:`softmax`."""


# ------------------------------------------------------------------------------ softmax & losses


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax with the max subtracted first.

    ``exp(z)`` overflows float32 for z > 88; ``softmax(z) == softmax(z - max(z))`` exactly, and
    after the shift the largest exponent is ``exp(0) = 1``, so nothing overflows.
    """
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Vector-Jacobian product of softmax: ``dz = a * (da - sum(da * a))`` row by row."""
    return a * (da - (da * a).sum(axis=-1, keepdims=True))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)``, computed with the max shift (no ``log(p + eps)`` fudge)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(z: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0):
    """Mean cross-entropy of ``softmax(z)`` against integer labels ``y``.

    With ``label_smoothing`` ε > 0 the target of each example is no longer the one-hot vector
    but ``t = (1-ε)·onehot(y) + ε/K``: the right digit gets ``1-ε+ε/K``, every digit ``ε/K``.
    The loss ``-Σ_k t_k·log p_k`` then stops rewarding ever larger logits once ``p`` matches
    ``t``, so the network is pushed less towards 100%-sure answers (Szegedy et al., 2016).
    It equals PyTorch's ``cross_entropy(z, y, label_smoothing=ε)``.

    Parameters
    ----------
    z : (N, K) logits.
    y : (N,) integer class labels in ``[0, K)``.
    label_smoothing : ε in ``[0, 1)``; 0 is the plain cross-entropy.

    Returns
    -------
    loss : float
    dz : (N, K) gradient of the mean loss w.r.t. ``z``: ``(softmax(z) - t) / N``
        (``t = onehot(y)`` when ε = 0).

    Examples
    --------
    >>> z = np.array([[2.0, 0.0]]); y = np.array([0])
    >>> round(softmax_cross_entropy(z, y)[0], 4)          # -log(e²/(e²+1))
    0.1269
    >>> round(softmax_cross_entropy(z, y, 0.2)[0], 4)     # t = (0.9, 0.1): + 0.1·2
    0.3269
    """
    if not (0.0 <= label_smoothing < 1.0):
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    n, k = z.shape
    logp = log_softmax(z)  # (N, K)
    dz = np.exp(logp)  # softmax, reusing the stable log
    if label_smoothing == 0.0:  # the plain loss, computed exactly as before smoothing existed
        loss = -logp[np.arange(n), y].mean()
        dz[np.arange(n), y] -= 1
    else:
        eps = label_smoothing
        # -Σ_k t_k log p_k = (1-ε)·(-log p_y) + (ε/K)·Σ_k(-log p_k), averaged over the batch
        loss = -((1.0 - eps) * logp[np.arange(n), y] + (eps / k) * logp.sum(axis=1)).mean()
        dz -= np.asarray(eps / k, dz.dtype)  # - ε/K for every class ...
        dz[np.arange(n), y] -= np.asarray(1.0 - eps, dz.dtype)  # ... and - (1-ε) for the label
    dz /= n
    return float(loss), dz


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray):
    """Mean binary cross-entropy of ``sigmoid(z)`` against 0/1 targets (the logistic-regression
    loss).

    ``y`` has the same shape as ``z`` (one column per output unit) or is (N,) for a single unit.
    Uses ``BCE = max(z, 0) - z*y + log(1 + exp(-|z|))``, which never takes ``log(0)``.
    """
    y = y.reshape(z.shape).astype(z.dtype)
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    dz = (sigmoid(z) - y) / z.size
    return float(loss.mean()), dz


def mean_squared_error(z: np.ndarray, y: np.ndarray):
    """``mean((z - y)^2)`` over all entries; ``y`` has z's shape.  Returns ``(loss, dz)``."""
    y = y.reshape(z.shape).astype(z.dtype)
    diff = z - y
    return float((diff * diff).mean()), (2.0 / z.size) * diff


def one_hot(y: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    out = np.zeros((y.shape[0], k), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


# ----------------------------------------------------------- reference convolution and pooling
# The definitions, one window at a time: slow, plainly right, and what the fast im2col convolution
# and separable max-pooling of :mod:`digitlens.nn.conv` are tested against.  The layers never call
# them.  Shapes are ``(N, C, H, W)``; ``stride`` and ``padding`` are (rows, columns) pairs.


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions a window of ``kernel`` pixels takes along an axis: ``(size + 2p - k) // s + 1``.

    >>> output_size(28, 3, 1, 1), output_size(28, 5, 1, 0), output_size(28, 2, 2, 0)
    (28, 24, 14)
    """
    return (size + 2 * padding - kernel) // stride + 1


def _windows(h: int, w: int, kernel, stride, padding=(0, 0)):
    """Every window position ``(r, q)`` with its row and column slices of the (padded) input."""
    (kh, kw), (sh, sw) = kernel, stride
    for r in range(output_size(h, kh, sh, padding[0])):
        for q in range(output_size(w, kw, sw, padding[1])):
            yield r, q, slice(r * sh, r * sh + kh), slice(q * sw, q * sw + kw)


def _zero_pad(x: np.ndarray, padding) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)


def conv2d_reference(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride=(1, 1),
                     padding=(0, 0)) -> np.ndarray:
    """``z[n, o, r, q] = b[o] + Σ_c Σ_ij W[o, c, i, j] · x_padded[n, c, r·s + i, q·s + j]``,
    one output position at a time (cross-correlation, as in PyTorch).

    x : (N, C_in, H, W); W : (C_out, C_in, kh, kw); b : (C_out,) -> z : (N, C_out, H_out, W_out).

    >>> x = np.zeros((1, 1, 3, 4)); x[..., 2:] = 1.0       # the right half is ink
    >>> W = np.array([[[[-1.0, 1.0]]]])                      # right pixel minus left pixel
    >>> conv2d_reference(x, W, np.zeros(1))[0, 0]            # fires only on the edge
    array([[0., 1., 0.],
           [0., 1., 0.],
           [0., 1., 0.]])
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = W.shape
    xp = _zero_pad(x, padding)
    z = np.zeros((n, c_out, output_size(h, kh, stride[0], padding[0]),
                  output_size(w, kw, stride[1], padding[1])), dtype=np.result_type(x, W))
    for r, q, rows, cols in _windows(h, w, (kh, kw), stride, padding):
        # (N, C_in, kh, kw) · (C_out, C_in, kh, kw), summed over C_in, kh, kw -> (N, C_out)
        z[:, :, r, q] = np.tensordot(xp[:, :, rows, cols], W, axes=([1, 2, 3], [1, 2, 3])) + b
    return z


def conv2d_reference_backward(dz: np.ndarray, x: np.ndarray, W: np.ndarray, stride=(1, 1),
                              padding=(0, 0)):
    """Gradients of :func:`conv2d_reference`, ``(dx, dW, db)``, one output position at a time:
    the window's pixels get ``dz · W``, the filter gets ``dz · window``, the bias ``dz``."""
    n, _, h, w = x.shape
    xp = _zero_pad(x, padding)
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for r, q, rows, cols in _windows(h, w, W.shape[2:], stride, padding):
        d = dz[:, :, r, q]  # (N, C_out)
        dW += np.tensordot(d, xp[:, :, rows, cols], axes=(0, 0))  # (C_out, C_in, kh, kw)
        dxp[:, :, rows, cols] += np.tensordot(d, W, axes=(1, 0))  # (N, C_in, kh, kw)
    ph, pw = padding
    return dxp[:, :, ph:ph + h, pw:pw + w], dW, dz.sum(axis=(0, 2, 3))


def maxpool2d_reference(x: np.ndarray, kernel=(2, 2), stride=(2, 2)) -> np.ndarray:
    """The largest value of each ``kh×kw`` window, one window at a time: (N, C, H_out, W_out).
    Windows that would run past the edge are dropped (as in PyTorch)."""
    n, c, h, w = x.shape
    y = np.zeros((n, c, output_size(h, kernel[0], stride[0], 0),
                  output_size(w, kernel[1], stride[1], 0)), dtype=x.dtype)
    for r, q, rows, cols in _windows(h, w, kernel, stride):
        y[:, :, r, q] = x[:, :, rows, cols].max(axis=(2, 3))
    return y


def maxpool2d_reference_backward(dy: np.ndarray, x: np.ndarray, kernel=(2, 2),
                                 stride=(2, 2)) -> np.ndarray:
    """Each window's gradient goes to its maximum -- on ties the first in reading order, as in
    PyTorch -- and an input that is the maximum of several overlapping windows gets their sum."""
    n, c, h, w = x.shape
    dx = np.zeros(x.shape, dtype=dy.dtype)
    img, chan = np.indices((n, c))  # (N, C) each: the image and channel of every window
    for r, q, rows, cols in _windows(h, w, kernel, stride):
        first = x[:, :, rows, cols].reshape(n, c, -1).argmax(axis=2)  # (N, C), first maximum
        i, j = np.divmod(first, kernel[1])
        np.add.at(dx, (img, chan, rows.start + i, cols.start + j), dy[:, :, r, q])
    return dx
