"""Elementwise activation functions as forward/backward pairs.

``*_forward(x, ...) -> (out, cache)`` and ``*_backward(dout, cache) -> dx`` (PReLU also
returns the gradient of its slope). At the kink of the ReLU family the derivative follows
PyTorch: the ``x > 0`` branch is taken only for strictly positive ``x``, so at exactly 0
ReLU passes 0, Leaky ReLU and PReLU pass their slope, and ELU passes ``alpha``.

:data:`ACTIVATIONS` maps a name to the parameter-free pairs, for models that choose
their nonlinearity by name.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array

__all__ = [
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "prelu_forward",
    "prelu_backward",
    "elu_forward",
    "elu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "identity_forward",
    "identity_backward",
    "ACTIVATIONS",
]


def _check_dout(dout, x_shape: tuple) -> np.ndarray:
    dout = as_array(dout, "dout")
    if dout.shape != x_shape:
        raise ValueError(f"dout must have the input's shape {x_shape}, got {dout.shape}")
    return dout


def _check_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def relu_forward(x):
    r"""Rectified linear unit.

    .. math:: f(x) = \max(0, x), \qquad f'(x) = [x > 0]

    Does not saturate for ``x > 0`` and is cheap, but is not zero-centered, and a unit
    whose input is always negative gets no gradient at all: a dead unit.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : ndarray
        ``x``.
    """
    x = as_array(x, "x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward pass of :func:`relu_forward`: ``dx = dout * [x > 0]`` (0 at ``x = 0``)."""
    x = cache
    return _check_dout(dout, x.shape) * (x > 0)


def leaky_relu_forward(x, negative_slope: float = 0.01):
    r"""Leaky ReLU, ``torch.nn.LeakyReLU(negative_slope)``.

    .. math::

        f(x) = \begin{cases} x & x > 0 \\ a x & x \le 0 \end{cases}, \qquad
        f'(x) = \begin{cases} 1 & x > 0 \\ a & x \le 0 \end{cases}

    The small slope ``a`` for negative inputs keeps a gradient flowing, so units cannot
    die; outputs are closer to zero-centered than ReLU's.

    Returns
    -------
    out : ndarray
    cache : tuple
        ``(x, negative_slope)``.
    """
    x = as_array(x, "x")
    a = _check_number(negative_slope, "negative_slope")
    return np.where(x > 0, x, a * x), (x, a)


def leaky_relu_backward(dout, cache):
    """Backward pass of :func:`leaky_relu_forward`: ``dx = dout * (1 if x > 0 else a)``."""
    x, a = cache
    return _check_dout(dout, x.shape) * np.where(x > 0, 1.0, a)


def _prelu_weight_view(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``weight`` reshaped to broadcast along the channel axis 1 of ``x``."""
    if weight.ndim != 1 or weight.shape[0] < 1:
        raise ValueError(f"weight must have shape (1,) or (C,), got {weight.shape}")
    if weight.shape[0] == 1:
        return weight.reshape(())
    if x.ndim < 2 or x.shape[1] != weight.shape[0]:
        channels = x.shape[1] if x.ndim >= 2 else 1
        raise ValueError(
            f"weight of shape {weight.shape} needs x with {weight.shape[0]} channels on axis 1, "
            f"got x of shape {x.shape}: pass weight of shape (1,) or ({channels},)"
        )
    return weight.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu_forward(x, weight):
    r"""Parametric ReLU, ``torch.nn.PReLU``: a Leaky ReLU whose slope is learned.

    .. math::

        f(x) = \begin{cases} x & x > 0 \\ a\, x & x \le 0 \end{cases}, \qquad
        \frac{\partial f}{\partial x} = \begin{cases} 1 & x > 0 \\ a & x \le 0 \end{cases},
        \qquad
        \frac{\partial f}{\partial a} = \begin{cases} 0 & x > 0 \\ x & x \le 0 \end{cases}

    Parameters
    ----------
    x : ndarray, shape (N, C, ...)
        Channels are on axis 1, as in PyTorch.
    weight : ndarray, shape (1,) or (C,)
        One slope shared by all units (``num_parameters=1``) or one per channel
        (``num_parameters=C``). PyTorch initializes it to 0.25.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : tuple
        ``(x, weight)``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    a = _prelu_weight_view(x, weight)
    return np.where(x > 0, x, a * x), (x, weight)


def prelu_backward(dout, cache):
    r"""Backward pass of :func:`prelu_forward`.

    .. math::

        dx = \text{dout} \cdot \begin{cases} 1 & x > 0 \\ a & x \le 0 \end{cases},
        \qquad
        da_c = \sum_{\text{all but the channel axis}} \text{dout} \cdot [x \le 0]\, x

    Returns
    -------
    dx : ndarray, shape of ``x``
    dweight : ndarray, shape of ``weight``
    """
    x, weight = cache
    dout = _check_dout(dout, x.shape)
    a = _prelu_weight_view(x, weight)
    positive = x > 0
    dx = dout * np.where(positive, 1.0, a)
    contrib = np.where(positive, 0.0, dout * x)
    if weight.shape[0] == 1:
        dweight = np.sum(contrib).reshape(1)
    else:
        axes = (0,) + tuple(range(2, x.ndim))
        dweight = np.sum(contrib, axis=axes)
    return dx, dweight.astype(np.result_type(weight, dout), copy=False)


def elu_forward(x, alpha: float = 1.0):
    r"""Exponential linear unit, ``torch.nn.ELU(alpha)``.

    .. math::

        f(x) = \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases},
        \qquad
        f'(x) = \begin{cases} 1 & x > 0 \\ \alpha e^{x} & x \le 0 \end{cases}

    Does not die, and its negative outputs (down to ``-alpha``) push the mean activation
    toward 0; it saturates only for large negative inputs. Costs an ``exp``.

    Returns
    -------
    out : ndarray
    cache : tuple
        ``(x, alpha)``.
    """
    x = as_array(x, "x")
    alpha = _check_number(alpha, "alpha")
    # expm1 of min(x, 0): exact near 0 and never overflows on the branch np.where discards.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), (x, alpha)


def elu_backward(dout, cache):
    """Backward pass of :func:`elu_forward`: ``dx = dout * (1 if x > 0 else alpha * exp(x))``."""
    x, alpha = cache
    dout = _check_dout(dout, x.shape)
    return dout * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def sigmoid_forward(x):
    r"""Logistic sigmoid, computed without overflow for large ``|x|``.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma'(x) = \sigma(x)(1 - \sigma(x))

    For ``x < 0`` it uses the equal form :math:`e^{x} / (1 + e^{x})` so ``exp`` only ever
    sees non-positive arguments. Saturated units (``|x|`` large) have a vanishing
    gradient, and outputs in (0, 1) are not zero-centered.

    Returns
    -------
    out : ndarray
    cache : ndarray
        ``out`` (the derivative needs only the output).
    """
    x = as_array(x, "x")
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out, out


def sigmoid_backward(dout, cache):
    """Backward pass of :func:`sigmoid_forward`: ``dx = dout * s * (1 - s)``."""
    s = cache
    return _check_dout(dout, s.shape) * s * (1.0 - s)


def tanh_forward(x):
    r"""Hyperbolic tangent.

    .. math:: f(x) = \tanh(x), \qquad f'(x) = 1 - \tanh^2(x)

    Zero-centered with outputs in (-1, 1), but it still saturates: for large ``|x|``
    the gradient vanishes.

    Returns
    -------
    out : ndarray
    cache : ndarray
        ``out``.
    """
    x = as_array(x, "x")
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """Backward pass of :func:`tanh_forward`: ``dx = dout * (1 - t**2)``."""
    t = cache
    return _check_dout(dout, t.shape) * (1.0 - t * t)


def identity_forward(x):
    """No nonlinearity: :math:`f(x) = x`, :math:`f'(x) = 1` (a purely linear network)."""
    x = as_array(x, "x")
    return x, x.shape


def identity_backward(dout, cache):
    """Backward pass of :func:`identity_forward`: ``dx = dout``."""
    return _check_dout(dout, cache)


# Parameter-free activations by name (PReLU has a learned weight, so it is not here).
# "linear" is the name torch.nn.init.calculate_gain uses for the identity.
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "elu": (elu_forward, elu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "identity": (identity_forward, identity_backward),
    "linear": (identity_forward, identity_backward),
}
