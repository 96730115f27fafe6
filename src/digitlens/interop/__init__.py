"""Models that leave digitlens, and models that come in: ONNX and PyTorch.

- :func:`digitlens.interop.onnx.to_onnx` builds an ONNX graph of a
  :class:`~digitlens.nn.model.Sequential` with the ``onnx`` package's helper API (no PyTorch
  needed) and checks it with ``onnx.checker``; :func:`~digitlens.interop.onnx.save_onnx` writes it.
- :func:`digitlens.interop.torch.torch_state_dict` and :func:`~digitlens.interop.torch.torch_code`
  give the same network as a PyTorch ``state_dict`` (weights only) and the few lines of PyTorch
  that define it; :func:`~digitlens.interop.torch.load_torch` reads such a file back (with
  ``torch.load(..., weights_only=True)``: never a pickle) into a digitlens model.

This layer sits beside :mod:`digitlens.training`: it imports the engine (:mod:`digitlens.nn`),
``_util`` and ``errors`` only.  ``onnx`` and ``torch`` are optional (``pip install
'digitlens[export]'`` brings ONNX and ONNX Runtime); each is imported on first use, and a missing
one raises ``ImportError`` saying what to install.  A file that cannot be imported raises
:class:`~digitlens.errors.CheckpointError` naming what is wrong (a pickle, a layer digitlens does
not have, a shape that does not fit the architecture).
"""

from __future__ import annotations

__all__ = ["onnx", "torch"]
