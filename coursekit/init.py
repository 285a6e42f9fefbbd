r"""Weight initialization with the variances of ``torch.nn.init``.

A layer's pre-activations are sums of ``fan_in`` products :math:`w\,x`. With independent
zero-mean weights of variance :math:`\sigma_w^2` their variance is
:math:`\text{fan\_in}\,\sigma_w^2\,\mathbb E[x^2]`, so the scale of the weights decides whether
signals shrink, stay put or grow from layer to layer:

================  ==================================================================  ==========
function          weight variance                                                     source
================  ==================================================================  ==========
``normal``        :math:`\text{std}^2` (e.g. ``0.01``: fine for small nets only)
``xavier_*``      :math:`\text{gain}^2 \cdot 2 / (\text{fan\_in} + \text{fan\_out})`     Glorot & Bengio, 2010
``kaiming_*``     :math:`\text{gain}^2 / \text{fan}` (``fan_in`` or ``fan_out``)          He et al., 2015
================  ==================================================================  ==========

The gain comes from :func:`calculate_gain` (:math:`\sqrt 2` for ReLU, which zeroes half of its
inputs and so halves the second moment). A uniform distribution on :math:`[-a, a]` has
variance :math:`a^2/3`, so the ``*_uniform`` variants use :math:`a = \sqrt 3\,\text{std}`.

**Layout.** coursekit's affine layers compute ``x @ W + b``, so a weight matrix has shape
``(fan_in, fan_out)``: ``fan_in = shape[0]`` and ``fan_out = shape[1]``. PyTorch's
``nn.Linear`` stores ``(out_features, in_features)``; a coursekit weight of shape ``(a, b)``
corresponds to a PyTorch weight of shape ``(b, a)`` (its transpose) with the same fans. For more
than two dimensions, the product of the trailing dimensions multiplies both fans, as in
PyTorch.

Every random function takes an explicit ``rng`` (``numpy.random.Generator``) or ``seed`` and a
``dtype`` (default float64). Scales (``std``, ``gain``) must be finite and non-negative and the
slope ``a`` finite: PyTorch refuses NaN and negative scales too (its sampler rejects the
resulting standard deviation), and it turns an infinite one into infinite weights, which
coursekit refuses as well.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from coursekit._validation import make_rng

__all__ = [
    "calculate_gain",
    "zeros",
    "normal",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "init_weight",
    "INIT_KINDS",
    "NONLINEARITIES",
]

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
NONLINEARITIES = (*_LINEAR, "tanh", "relu", "leaky_relu", "selu")


def _check_scale(value, name: str) -> float:
    """A finite, non-negative real (``std`` or ``gain``); NaN fails the ``>= 0`` test."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a non-negative number, got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _check_slope(a) -> None:
    if isinstance(a, bool) or not isinstance(a, Real):
        raise TypeError(f"a (the negative slope) must be a number, got {type(a).__name__}")
    if not math.isfinite(a):
        raise ValueError(f"a (the negative slope) must be finite, got {a}")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a nonlinearity, equal to ``torch.nn.init.calculate_gain``.

    ==============================  ==========================================
    nonlinearity                    gain
    ==============================  ==========================================
    linear, conv*, sigmoid          :math:`1`
    tanh                            :math:`5/3`
    relu                            :math:`\sqrt 2`
    leaky_relu                      :math:`\sqrt{2 / (1 + \text{slope}^2)}`
    selu                            :math:`3/4`
    ==============================  ==========================================

    Parameters
    ----------
    nonlinearity : str
        One of the names above (PyTorch's functional names).
    param : float, optional
        The negative slope for ``"leaky_relu"`` (default 0.01); ignored otherwise.
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, Real) and not isinstance(param, bool):
            slope = float(param)
            if math.isnan(slope):
                # torch.nn.init returns a NaN gain, which its samplers then refuse.
                raise ValueError("param (the negative slope) must be a number, got nan")
        else:
            raise TypeError(f"param (the negative slope) must be a number, got {param!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"nonlinearity must be one of {', '.join(NONLINEARITIES)}; got {nonlinearity!r}"
    )


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"shape must be an int or a tuple of ints, got {type(shape).__name__}"
        ) from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"shape must contain ints, got {dims}")
        if d < 0:
            raise ValueError(f"shape must have non-negative sizes, got {dims}")
    return tuple(int(d) for d in dims)


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dtype must be a floating dtype (float32 or float64), got {dtype}")
    return dtype


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` for coursekit's ``(fan_in, fan_out, *receptive)`` layout."""
    if len(shape) < 2:
        raise ValueError(
            f"shape must have at least 2 dimensions (fan_in, fan_out) to compute fans, got {shape}"
        )
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[0] * receptive, shape[1] * receptive
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"shape must have non-zero fans, got {shape}")
    return fan_in, fan_out


def _fan(shape: tuple[int, ...], mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def _gaussian(shape, std: float, dtype: np.dtype, rng, seed) -> np.ndarray:
    rng = make_rng(rng, seed)
    if dtype in (np.float32, np.float64):
        w = rng.standard_normal(shape, dtype=dtype)
    else:
        w = rng.standard_normal(shape).astype(dtype)
    w *= dtype.type(std)
    return w


def _uniform(shape, bound: float, dtype: np.dtype, rng, seed) -> np.ndarray:
    """Uniform on ``[-bound, bound)``."""
    rng = make_rng(rng, seed)
    if dtype in (np.float32, np.float64):
        w = rng.random(shape, dtype=dtype)
    else:
        w = rng.random(shape).astype(dtype)
    w *= dtype.type(2.0 * bound)
    w -= dtype.type(bound)
    return w


def zeros(shape, *, dtype=np.float64) -> np.ndarray:
    """All-zero weights (fine for biases; for weights every unit would compute the same thing)."""
    return np.zeros(_check_shape(shape), dtype=_check_dtype(dtype))


def normal(shape, std: float = 1.0, *, dtype=np.float64, rng=None, seed=None) -> np.ndarray:
    r"""Weights drawn from :math:`\mathcal N(0, \text{std}^2)`.

    The lecture's first attempt is ``normal(shape, 0.01)``: adequate for shallow nets, but in
    deep ones the activations shrink towards zero layer after layer.
    """
    std = _check_scale(std, "std")
    return _gaussian(_check_shape(shape), std, _check_dtype(dtype), rng, seed)


def xavier_normal(shape, gain: float = 1.0, *, dtype=np.float64, rng=None, seed=None):
    r"""Glorot/Xavier normal: :math:`\mathcal N(0, \sigma^2)` with
    :math:`\sigma = \text{gain}\sqrt{2 / (\text{fan\_in} + \text{fan\_out})}`.

    Keeps the variance of both the forward signal and the backward gradient roughly constant
    for linear (or tanh near 0) units. For a square layer this is the lecture's
    ``randn(fan_in, fan_out) / sqrt(fan_in)``. ``fan_in = shape[0]`` (see the module notes).
    """
    shape = _check_shape(shape)
    gain = _check_scale(gain, "gain")
    fan_in, fan_out = _fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _gaussian(shape, std, _check_dtype(dtype), rng, seed)


def xavier_uniform(shape, gain: float = 1.0, *, dtype=np.float64, rng=None, seed=None):
    r"""Glorot/Xavier uniform: :math:`U(-a, a)` with
    :math:`a = \text{gain}\sqrt{6 / (\text{fan\_in} + \text{fan\_out})}` (same variance as
    :func:`xavier_normal`)."""
    shape = _check_shape(shape)
    gain = _check_scale(gain, "gain")
    fan_in, fan_out = _fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(shape, bound, _check_dtype(dtype), rng, seed)


def kaiming_normal(
    shape,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    dtype=np.float64,
    rng=None,
    seed=None,
):
    r"""He/Kaiming normal: :math:`\mathcal N(0, \sigma^2)` with
    :math:`\sigma = \text{gain} / \sqrt{\text{fan}}`.

    ``gain = calculate_gain(nonlinearity, a)``; with the defaults (leaky ReLU of slope
    ``a = 0``, i.e. ReLU) :math:`\sigma^2 = 2/\text{fan\_in}`, the lecture's
    ``randn(fan_in, fan_out) / sqrt(fan_in / 2)``. ``mode="fan_in"`` preserves the forward
    variance, ``"fan_out"`` the backward one. ``fan_in = shape[0]`` (see the module notes).
    """
    shape = _check_shape(shape)
    _check_slope(a)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return _gaussian(shape, std, _check_dtype(dtype), rng, seed)


def kaiming_uniform(
    shape,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    dtype=np.float64,
    rng=None,
    seed=None,
):
    r"""He/Kaiming uniform: :math:`U(-b, b)` with
    :math:`b = \text{gain}\sqrt{3 / \text{fan}}` (same variance as :func:`kaiming_normal`)."""
    shape = _check_shape(shape)
    _check_slope(a)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return _uniform(shape, bound, _check_dtype(dtype), rng, seed)


INIT_KINDS = ("zeros", "xavier", "he")


def init_weight(
    kind, shape, *, nonlinearity: str = "relu", dtype=np.float64, rng=None, seed=None
) -> np.ndarray:
    r"""One weight matrix by name, for the ``init=`` argument of models and experiments.

    Parameters
    ----------
    kind : {"zeros", "xavier", "he"} or float
        * ``"zeros"``: :func:`zeros` (no randomness needed).
        * ``"xavier"``: :func:`xavier_normal` with gain 1, variance
          :math:`2/(\text{fan\_in} + \text{fan\_out})`.
        * ``"he"``: :func:`kaiming_normal` on ``fan_in`` with the gain of ``nonlinearity``;
          for ReLU the variance is :math:`2/\text{fan\_in}`.
        * a float: :func:`normal` with that standard deviation (e.g. ``0.01``).
    shape : tuple of int
        ``(fan_in, fan_out)``.
    nonlinearity : str, default "relu"
        The activation after the layer, as a :func:`calculate_gain` name (used by ``"he"``).
    dtype, rng, seed
        As for the other functions.
    """
    if isinstance(kind, str):
        if kind == "zeros":
            return zeros(shape, dtype=dtype)
        if kind == "xavier":
            return xavier_normal(shape, dtype=dtype, rng=rng, seed=seed)
        if kind == "he":
            return kaiming_normal(shape, nonlinearity=nonlinearity, dtype=dtype, rng=rng, seed=seed)
    elif isinstance(kind, Real) and not isinstance(kind, bool):
        return normal(shape, float(kind), dtype=dtype, rng=rng, seed=seed)
    raise ValueError(
        f"init must be one of {', '.join(map(repr, INIT_KINDS))} or a float standard "
        f"deviation, got {kind!r}"
    )
