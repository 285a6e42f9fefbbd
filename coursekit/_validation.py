"""Input checks shared by every module.

Each helper raises ``TypeError`` for the wrong kind of object and ``ValueError`` for the
right kind with a wrong value, with a message that names the argument, what was expected
and what was given.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

MODES = ("train", "test")


def as_array(x, name: str) -> np.ndarray:
    """Return ``x`` as an ndarray, rejecting objects numpy cannot turn into numbers."""
    try:
        arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got an object array")
    return arr


def check_float_array(x, name: str) -> np.ndarray:
    """Require a floating-point ndarray (gradients of integer arrays are meaningless)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64), got {x.dtype}; "
            f"convert it with {name}.astype(np.float64)"
        )
    return x


def check_finite(x: np.ndarray, name: str) -> np.ndarray:
    """Reject NaN and infinity with a message that counts them."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return x


def check_ndim(x: np.ndarray, ndim: int | Sequence[int], name: str) -> np.ndarray:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    return x


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}")


def check_labels(y, n: int, num_classes: int | None, name: str = "y") -> np.ndarray:
    """Integer class labels of shape ``(n,)`` in ``[0, num_classes)``."""
    y = as_array(y, name)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the {n} rows, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        raise ValueError(
            f"{name} must hold labels in [0, {num_classes}), got min {y.min()} and max {y.max()}"
        )
    return y


def check_probability(p: float, name: str = "p") -> float:
    """A drop probability in ``[0, 1)``."""
    if not isinstance(p, (int, float, np.floating)) or isinstance(p, bool):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(p).__name__}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")
    return float(p)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    return mode


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def make_rng(
    rng: np.random.Generator | None = None, seed: int | None = None
) -> np.random.Generator:
    """The explicit source of randomness: an existing Generator, or a new one from ``seed``.

    Passing both is an error, and so is passing neither: coursekit never falls back to a
    hidden global random state.
    """
    if rng is not None and seed is not None:
        raise ValueError("pass either rng or seed, not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    if seed is None:
        raise ValueError("pass rng=np.random.default_rng(...) or seed=... (no global random state)")
    return np.random.default_rng(seed)


def check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number, got {type(value).__name__}")
    check_positive(value, name, allow_zero=True)  # also rejects NaN
    return float(value)


def check_norm_type(norm_type) -> float:
    """``p`` of a p-norm: a number ``> 0`` or ``inf`` (``"inf"`` accepted, as PyTorch does)."""
    try:
        p = float(norm_type)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"norm_type must be a number > 0 or inf, got {norm_type!r}") from exc
    if not p > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type!r}")
    return p
