"""Layers with parameters: affine (fully connected) and maxout.

Every layer follows the same pattern: ``*_forward(inputs...) -> (out, cache)`` computes the
output and keeps what the backward pass needs; ``*_backward(dout, cache)`` turns the
upstream gradient ``dout = dL/dout`` into one gradient per input, in the inputs' order.
Weights are stored ``(fan_in, fan_out)`` because the layers compute ``x @ w + b``
(``torch.nn.Linear`` stores the transpose, ``(out_features, in_features)``).
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array

__all__ = ["affine_forward", "affine_backward", "maxout_forward", "maxout_backward"]


def _flatten_rows(x, w_rows: int, w_shape: tuple) -> np.ndarray:
    """``x`` of shape ``(N, d1, ..., dk)`` as ``(N, D)``, checking ``D`` against ``w``."""
    x = as_array(x, "x")
    if x.ndim < 1:
        raise ValueError(f"x must have a leading batch axis, got shape {x.shape}")
    n = x.shape[0]
    d = int(np.prod(x.shape[1:], dtype=np.int64))
    if d != w_rows:
        raise ValueError(
            f"x of shape {x.shape} flattens to ({n}, {d}) but w has shape {w_shape}: "
            f"w.shape[0] must equal {d}"
        )
    return x.reshape(n, d)


def _check_dout(dout, shape: tuple) -> np.ndarray:
    dout = as_array(dout, "dout")
    if dout.shape != shape:
        raise ValueError(f"dout must have the output's shape {shape}, got {dout.shape}")
    return dout


def affine_forward(x, w, b):
    r"""Affine (fully connected) layer.

    .. math:: \text{out} = \tilde{x} W + b, \qquad \tilde{x} = x \text{ reshaped to } (N, D)

    Parameters
    ----------
    x : ndarray, shape (N, d1, ..., dk)
        A batch of ``N`` inputs, each flattened to ``D = d1 * ... * dk`` features.
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w, b)`` for :func:`affine_backward`.
    """
    w = as_array(w, "w")
    b = as_array(b, "b")
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (D, M), got shape {w.shape}")
    if b.shape != (w.shape[1],):
        raise ValueError(f"b must have shape ({w.shape[1]},) to match w {w.shape}, got {b.shape}")
    x2 = _flatten_rows(x, w.shape[0], w.shape)
    out = x2 @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    r"""Backward pass of :func:`affine_forward`.

    .. math::

        \frac{\partial L}{\partial x} = \text{dout}\, W^\top \text{ (reshaped to x)},\quad
        \frac{\partial L}{\partial W} = \tilde{x}^\top \text{dout},\quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n \text{dout}_{n,:}

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple from :func:`affine_forward`

    Returns
    -------
    dx : ndarray, shape of ``x``
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dout = _check_dout(dout, (x2.shape[0], w.shape[1]))
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def maxout_forward(x, w, b):
    r"""Maxout layer: the maximum of ``K`` affine pieces per output unit.

    .. math:: \text{out}_{nm} = \max_k \bigl(\tilde{x} W_{:,:,k} + b_{:,k}\bigr)_{nm}

    With ``K = 2`` and one piece fixed at 0 it is a ReLU; it generalizes ReLU and Leaky
    ReLU, is linear in each region, so it neither saturates nor dies, at the price of
    ``K`` times the parameters of an affine layer.

    Parameters
    ----------
    x : ndarray, shape (N, d1, ..., dk)
        Flattened to ``(N, D)``.
    w : ndarray, shape (D, M, K)
    b : ndarray, shape (M, K)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w, argmax)``; ``argmax`` of shape ``(N, M)`` is the winning piece.
    """
    w = as_array(w, "w")
    b = as_array(b, "b")
    if w.ndim != 3:
        raise ValueError(f"w must be 3-D (D, M, K), got shape {w.shape}")
    d, m, k = w.shape
    if b.shape != (m, k):
        raise ValueError(f"b must have shape ({m}, {k}) to match w {w.shape}, got {b.shape}")
    x2 = _flatten_rows(x, d, w.shape)
    z = (x2 @ w.reshape(d, m * k) + b.reshape(m * k)).reshape(-1, m, k)
    # Ties go to the first piece, as in torch.max(dim=...).
    argmax = np.argmax(z, axis=2)
    out = np.take_along_axis(z, argmax[..., None], axis=2)[..., 0]
    return out, (x, w, argmax)


def maxout_backward(dout, cache):
    r"""Backward pass of :func:`maxout_forward`.

    The upstream gradient flows only through the winning piece
    :math:`k^*(n, m)`; with :math:`G_{nmk} = \text{dout}_{nm} [k = k^*(n, m)]`,

    .. math::

        \frac{\partial L}{\partial x} = G_{(N, MK)}\, W_{(D, MK)}^\top,\quad
        \frac{\partial L}{\partial W_{:,:,k}} = \tilde{x}^\top G_{:,:,k},\quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n G_{n}

    Returns
    -------
    dx : ndarray, shape of ``x``
    dw : ndarray, shape (D, M, K)
    db : ndarray, shape (M, K)
    """
    x, w, argmax = cache
    d, m, k = w.shape
    x2 = x.reshape(x.shape[0], -1)
    dout = _check_dout(dout, argmax.shape)
    dz = np.zeros(argmax.shape + (k,), dtype=np.result_type(dout, w))
    np.put_along_axis(dz, argmax[..., None], dout[..., None], axis=2)
    dz2 = dz.reshape(-1, m * k)
    dx = (dz2 @ w.reshape(d, m * k).T).reshape(x.shape)
    dw = (x2.T @ dz2).reshape(d, m, k)
    db = dz.sum(axis=0)
    return dx, dw, db
