"""One gradient step computed on slices of the batch, on several cores at once.

The loss of a mini-batch is the *mean* of the examples' losses, so its gradient is the mean of
their gradients.  That mean can be taken in pieces: cut the batch of ``n`` images into slices of
``n_1, n_2, ...`` images, let each slice compute its own mean loss ``L_i`` and gradients ``g_i``,
and combine them weighted by size::

    L = Σ_i (n_i / n) · L_i          g = Σ_i (n_i / n) · g_i

which is the whole batch's loss and gradient, up to float32 rounding (only the order of the
additions changes).  The weights cost nothing: each slice passes its share ``n_i / n`` as
``loss_and_grads(..., scale=n_i / n)``, which multiplies ``∂L/∂z`` (a few numbers per image) before
the backward pass, so the slices' gradients come out weighted and are simply added up.  Nothing
else changes either: the slices use the same weights, and the dropout masks are drawn for the
whole batch, from the same generator in the same order as
:meth:`~digitlens.nn.model.Sequential.loss_and_grads` would draw them, then cut like the batch.

Why bother (measured with ``benchmarks/profile_cnn.py`` and ``benchmarks/bench_cnn.py``):

- **Two cores.**  NumPy releases Python's global lock inside its matrix products and element-wise
  loops, so slices given to a small pool of threads run truly in parallel, each thread with one
  BLAS thread.  A second BLAS thread *inside* each matrix product does worse on these small
  products: OpenBLAS splits one product into two halves and the threads busy-wait for each other
  at every product, hundreds of times per batch; when the machine is busy, one of them waits for
  a core while the other spins.
- **Small arrays.**  A slice of 32 images keeps every intermediate array (the largest is
  ``cols`` of the second convolution, 144 × 6,272 numbers, 3.6 MB) small enough that memory is
  reused from one slice to the next.  A whole batch of 64 images makes arrays big enough that the
  allocator hands them back to the operating system after each batch and faults them in again
  (measured: ~5,000 page faults per batch, and 1.4-1.8x the CPU time of two slices of 32).
  Slices of 8, 16 and 32 cost about the same; 32 was the cheapest by a few percent.

- **Augmentation.**  ``fit`` draws a batch's augmentation numbers in the calling thread and hands
  each slice's thread the work of transforming its own images (``prepare``): the same numbers, so
  the same images, but the resampling runs on every core too instead of in one thread while the
  others wait (it is ~12% of a one-thread epoch of the ``cnn``).

Randomness stays explicit and deterministic: the draws happen in the calling thread (while the
other slices already compute their convolutions, which draw nothing; a slice waits for the draws
at its first Dropout layer), and the slices' results are added up in slice order, whatever order
the threads finish in.  So the same seed gives the same model, with any number of threads.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._util.checks import check_int
from ..nn.layers import Dropout
from ..nn.model import Sequential

#: images per slice: small enough to keep the arrays small (see the module docstring)
SLICE = 32

#: layer types whose forward pass draws no random numbers (Dropout is handled here)
_DETERMINISTIC = {"dense", "activation", "flatten", "conv2d", "maxpool2d", "global_avg_pool2d"}


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(model: Sequential) -> int:
    """``fit``'s default: every available core (up to 4) for a model with convolutions, one
    thread otherwise.

    A dense network's batch is a few small matrix products (a quarter of a millisecond for the
    ``mlp``), too little work to share: handing slices to threads costs about as much as it
    saves.  A convolutional network's batch is tens of milliseconds of work.
    """
    if not any(layer.type == "conv2d" for layer in model.layers):
        return 1
    return max(1, min(available_cores(), 4))


class _Draws:
    """A batch's dropout draws, made by the calling thread while the other slices already run
    their first layers (the convolutions come before any Dropout layer): a slice waits for the
    draws only when its first Dropout layer asks for them."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._values: list[np.ndarray] | None = None
        self._error: BaseException | None = None

    def set(self, values: list[np.ndarray] | None, error: BaseException | None = None) -> None:
        self._values, self._error = values, error
        self._ready.set()

    def get(self) -> list[np.ndarray]:
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("the batch's dropout draws failed") from self._error
        assert self._values is not None
        return self._values


class _Replay:
    """Stands in for the generator in one slice's forward pass: hands each Dropout layer its rows
    of the uniform numbers drawn for the whole batch (see :func:`_draw_dropout`)."""

    def __init__(self, draws: _Draws, rows: slice) -> None:
        self._draws, self._rows = draws, rows
        self._next = None

    def random(self, shape, dtype=np.float64) -> np.ndarray:
        if self._next is None:  # the first Dropout layer of this slice: wait for the draws
            self._next = iter([u[self._rows] for u in self._draws.get()])
        u = next(self._next, None)
        if u is None or u.shape != tuple(shape) or u.dtype != np.dtype(dtype):
            raise RuntimeError("a slice asked for random numbers the whole batch would not have "
                               f"drawn (shape {tuple(shape)}, {np.dtype(dtype)})")
        return u


def _draws(layer) -> bool:
    """Whether ``layer`` draws random numbers in a training forward pass (a Dropout with p > 0)."""
    return isinstance(layer, Dropout) and layer.p > 0.0


def _draw_dropout(model: Sequential, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The uniform numbers every Dropout layer of ``model`` draws for a batch of ``n`` examples, in
    layer order: exactly the draws (same shapes, dtype and order) of the whole batch's forward."""
    dtype = np.float32 if model.dtype == np.float32 else np.float64
    draws = []
    shape = model.input_shape
    for layer, out_shape in zip(model.layers, model.shapes):
        if _draws(layer):
            draws.append(rng.random((n, *shape), dtype=dtype))  # (n, *layer input shape)
        shape = out_shape
    return draws


def can_split(model: Sequential) -> bool:
    """Whether a batch of ``model`` may be cut into slices with the same result: every layer
    either draws no random numbers or is a Dropout layer (whose draws are replayed)."""
    return all(layer.type in _DETERMINISTIC or isinstance(layer, Dropout)
               for layer in model.layers)


class SplitStep:
    """``loss_and_grads`` of a batch, computed slice by slice on ``threads`` threads.

    Parameters
    ----------
    model : the model (its weights are read, never written).
    threads : worker threads (1: the slices run one after another in the calling thread).
    slice_size : images per slice (:data:`SLICE`).

    Use it as a context manager, or call :meth:`close`, to stop the threads.

    Examples
    --------
    >>> import numpy as np
    >>> from digitlens.nn.zoo import build_model
    >>> m = build_model("cnn_tiny", np.random.default_rng(0))
    >>> x, y = np.random.default_rng(1).random((40, 1, 28, 28), np.float32), np.arange(40) % 10
    >>> with SplitStep(m, threads=2) as step:
    ...     loss, grads, z = step(x, y, rng=np.random.default_rng(2))
    >>> whole, _ = m.loss_and_grads(x, y, rng=np.random.default_rng(2))
    >>> bool(np.isclose(loss, whole, rtol=1e-5)), z.shape
    (True, (40, 10))
    """

    def __init__(self, model: Sequential, threads: int = 2, slice_size: int = SLICE) -> None:
        check_int("threads", threads, 1)
        check_int("slice_size", slice_size, 1)
        if not can_split(model):
            odd = sorted({la.type for la in model.layers if la.type not in _DETERMINISTIC})
            raise ValueError(f"cannot split batches of a model with layers of type {odd}: their "
                             "random draws could not be replayed slice by slice")
        self.model, self.threads, self.slice_size = model, threads, slice_size
        self._has_dropout = any(map(_draws, model.layers))
        # the calling thread computes the first slice itself, the pool's threads the others
        self._pool = ThreadPoolExecutor(threads - 1, "digitlens-fit") if threads > 1 else None

    def __enter__(self) -> SplitStep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def map(self, fn: Callable, items) -> list:
        """``[fn(item) for item in items]``, computed on every thread of the step, the calling
        one included: each thread takes the next item not yet taken until none is left, so a
        thread that drew small items takes more of them.  ``fit`` runs the optimizer's updates
        through it (:meth:`~digitlens.nn.optim.Optimizer.step`'s ``map``); the items must not
        depend on each other.  The first exception raised by ``fn`` is re-raised, once every
        thread has stopped."""
        items = list(items)
        if self._pool is None or len(items) < 2:
            return [fn(item) for item in items]
        results: list = [None] * len(items)
        taken = itertools.count()  # next() on it is atomic: no item is taken twice

        def work() -> None:
            while (i := next(taken)) < len(items):
                results[i] = fn(items[i])

        helpers = [self._pool.submit(work) for _ in range(self.threads - 1)]
        try:
            work()
        finally:
            errors = [f.exception() for f in helpers]  # waits for every helper
        for e in errors:
            if e is not None:
                raise e
        return results

    def __call__(self, x: np.ndarray, y: np.ndarray, *, l2: float = 0.0, training: bool = True,
                 rng: np.random.Generator | None = None,
                 prepare: Callable[[np.ndarray, slice], np.ndarray] | None = None,
                 label_smoothing: float = 0.0):
        """``(loss, grads, logits)`` of the batch, as ``model.loss_and_grads(x, y, l2=l2,
        training=training, rng=rng, return_logits=True, label_smoothing=label_smoothing)``
        returns them.

        Parameters
        ----------
        x : (n, *input_shape) images; y : (n,) labels.
        l2, training, rng, label_smoothing : as in
            :meth:`~digitlens.nn.model.Sequential.loss_and_grads`.
        prepare : ``prepare(x[rows], rows)`` turns each slice's images into what the model is
            trained on, inside that slice's thread (``fit`` augments there, with numbers drawn
            beforehand); None: the images as they are.
        """
        n = len(x)
        k = -(-n // self.slice_size)  # number of slices
        bounds = np.linspace(0, n, k + 1).round().astype(int)  # sizes differ by at most one
        rows = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        draws = _Draws() if training and rng is not None and self._has_dropout else None

        def run(r: slice):
            sub_rng = _Replay(draws, r) if draws is not None else rng
            xs = x[r] if prepare is None else prepare(x[r], r)
            # each slice's loss and gradients come weighted by its share of the batch, n_i / n
            return self.model.loss_and_grads(xs, y[r], training=training, rng=sub_rng,
                                              return_logits=True,
                                              label_smoothing=label_smoothing,
                                              scale=(r.stop - r.start) / n)

        others = [self._pool.submit(run, r) for r in rows[1:]] \
            if self._pool is not None else []
        if draws is not None:  # while the other slices start on their convolutions
            try:
                draws.set(_draw_dropout(self.model, n, rng))
            except BaseException as e:  # release the waiting slices, then report
                draws.set(None, e)
                for f in others:
                    f.exception()
                raise
        if others:
            parts = [run(rows[0])] + [f.result() for f in others]
        else:
            parts = list(map(run, rows))
        loss = float(sum(p[0] for p in parts))
        grads = parts[0][1]  # the first slice's own new arrays: the others are added in place
        for p in parts[1:]:
            for key, g in p[1].items():
                grads[key] += g
        z = np.concatenate([p[2] for p in parts])  # (n, K) logits, in batch order
        if l2:  # the penalty belongs to the batch once, not to every slice
            for i, layer in enumerate(self.model.layers):
                for name in layer.decay_params:
                    W = layer.params[name]
                    loss += 0.5 * l2 * float(np.vdot(W, W))
                    grads[f"{i}.{name}"] = grads[f"{i}.{name}"] + l2 * W
        return loss, grads, z
