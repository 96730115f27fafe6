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
    dx = dz @ W.T  # (N, D_out) @ (D_out, D_in) -> (N, D_in)
    return dx, dW, db


def linear_param_grads(dz: np.ndarray, x: np.ndarray):
    """``(dW, db)`` of ``z = x @ W + b`` without ``dx`` (for the first layer while training)."""
    dW = x.T @ dz  # (D_in, N) @ (N, D_out) -> (D_in, D_out)
    db = dz.sum(axis=0)  # (D_out,)
    return dW, db


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

    ``exp(z)`` overflows float32 for z > 88; ``softmax(z) == softmax(z - max(z))`` exactly, and after
    the shift the largest exponent is ``exp(0) = 1``, so nothing overflows.
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


def softmax_cross_entropy(z: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of ``softmax(z)`` against integer labels ``y``.

    Parameters
    ----------
    z : (N, K) logits.
    y : (N,) integer class labels in ``[0, K)``.

    Returns
    -------
    loss : float
    dz : (N, K) gradient of the mean loss w.r.t. ``z``: ``(softmax(z) - onehot(y)) / N``.
    """
    n = z.shape[0]
    logp = log_softmax(z)  # (N, K)
    loss = -logp[np.arange(n), y].mean()
    dz = np.exp(logp)  # softmax, reusing the stable log
    dz[np.arange(n), y] -= 1
    dz /= n
    return float(loss), dz


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray):
    """Mean binary cross-entropy of ``sigmoid(z)`` against 0/1 targets (the logistic-regression loss).

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
