"""Tell a torch tensor from a numpy array without importing torch.

Code that `labelwise inspect` and `predict --backend onnx` run takes tensors or arrays; importing torch only to ask
``isinstance(x, torch.Tensor)`` would cost those commands a second and 600 MB. A value can only be a tensor if
torch is already imported, so the check looks in ``sys.modules`` instead.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["as_numpy", "is_tensor"]


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a ``torch.Tensor``; never imports torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def as_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array: a tensor is detached and copied to the CPU, anything else goes to ``np.asarray``.

    Example:
        >>> as_numpy([1, 2]).tolist()
        [1, 2]
    """
    if is_tensor(value):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)
