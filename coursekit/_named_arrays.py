"""Dicts of named arrays: the currency of parameters, gradients and optimizer state.

Helpers shared by the regularization, clipping, averaging, early-stopping and training
modules: view one array or a dict uniformly, validate matching names and shapes, snapshot
and restore in place.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from coursekit._validation import check_float_array

# The key under which a single array is viewed as a dict.
SINGLE = "<array>"


def as_named_arrays(x, name: str) -> tuple[dict[str, np.ndarray], bool]:
    """View an array or a dict of arrays as a dict; the flag says whether it was one array.

    Every array must be a floating-point ``ndarray`` (the functions using this work in place
    or return gradients, neither of which makes sense for integers or lists).
    """
    if isinstance(x, np.ndarray):
        check_float_array(x, name)
        return {SINGLE: x}, True
    if not isinstance(x, Mapping):
        raise TypeError(
            f"{name} must be a numpy array or a dict of named numpy arrays, got {type(x).__name__}"
        )
    for k, v in x.items():
        check_float_array(v, f"{name}[{k!r}]")
    return dict(x), False


def check_matching_arrays(expected: Mapping, given: Mapping, name: str) -> None:
    """``given`` must be a dict with the same names and shapes as ``expected``."""
    if not isinstance(given, Mapping):
        raise TypeError(f"{name} must be a dict of named numpy arrays, got {type(given).__name__}")
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{name} must have the names {sorted(expected)}: missing {missing}, unexpected {extra}"
        )
    for k, ref in expected.items():
        v = given[k]
        if not isinstance(v, np.ndarray):
            raise TypeError(f"{name}[{k!r}] must be a numpy array, got {type(v).__name__}")
        if v.shape != np.shape(ref):
            raise ValueError(f"{name}[{k!r}] must have shape {np.shape(ref)}, got {v.shape}")


def copy_arrays(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Independent copies of every array (a snapshot)."""
    return {k: np.array(v, copy=True) for k, v in params.items()}


def copy_into(dst: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray]) -> None:
    """Copy ``src``'s values into ``dst``'s arrays in place (same names and shapes)."""
    for k, v in src.items():
        dst[k][...] = v


def norm_over_axes(x: np.ndarray, p: float, axes: tuple[int, ...]) -> np.ndarray:
    """The p-norm of ``x`` over ``axes`` (kept as size-1 axes), as ``torch.linalg.vector_norm``.

    Where a norm runs over a single value it is exactly ``|x|``, as in PyTorch;
    ``(|x|**p)**(1/p)`` would underflow to 0 for tiny values.
    """
    a = np.abs(x)
    if all(x.shape[ax] == 1 for ax in axes):
        return a
    if np.isinf(p):
        return np.max(a, axis=axes, keepdims=True, initial=0.0)
    if p == 2.0:
        return np.sqrt(np.sum(a * a, axis=axes, keepdims=True))
    return np.sum(a**p, axis=axes, keepdims=True) ** (1.0 / p)


def vector_norm(x: np.ndarray, p: float) -> float:
    """The p-norm of ``x`` viewed as one vector (``torch.linalg.vector_norm``)."""
    flat = np.ravel(x)
    return float(norm_over_axes(flat, p, (0,))[0]) if flat.size else 0.0
