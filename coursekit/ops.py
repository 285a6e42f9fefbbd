r"""Vectorized array operations: pairwise distances, stable softmax and friends, one-hot.

Pairwise Euclidean distances come in three versions so students can time them side by
side: two Python loops, one loop over the rows of ``X``, and no loops at all. The
vectorized version expands the square of the distance,

.. math::

    \|x_i - y_j\|^2 = \|x_i\|^2 + \|y_j\|^2 - 2\, x_i^\top y_j ,

so that the only ``O(N M D)`` work is one matrix product, done by BLAS.

The softmax family subtracts the maximum along the reduced axis before exponentiating:
:math:`\operatorname{softmax}(x) = \operatorname{softmax}(x - c)` for any constant
:math:`c`, and with :math:`c = \max_j x_j` the largest exponent is :math:`e^0 = 1`, so
nothing overflows and the denominator is at least 1. The results stay finite for inputs
of size ``1e4`` where ``np.exp`` alone overflows at about 709.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array, check_labels, check_ndim

__all__ = [
    "pairwise_distances",
    "pairwise_distances_two_loops",
    "pairwise_distances_one_loop",
    "softmax",
    "log_softmax",
    "logsumexp",
    "one_hot",
]


def _as_float(x, name: str) -> np.ndarray:
    """``x`` as a floating ndarray; integer and boolean input become float64."""
    x = as_array(x, name)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _check_pair(X, Y, *, allow_none: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate the two point sets: ``X`` is ``(N, D)``, ``Y`` is ``(M, D)``, same ``D``."""
    X = check_ndim(as_array(X, "X"), 2, "X")
    if Y is None and allow_none:
        Y = X
    Y = check_ndim(as_array(Y, "Y"), 2, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X has shape {X.shape} and Y has shape {Y.shape}: the feature dimensions "
            f"(axis 1) must match, got {X.shape[1]} and {Y.shape[1]}"
        )
    # int -> float64, float32 stays float32 (as torch.cdist does), float64 stays float64.
    dtype = np.result_type(X.dtype, Y.dtype, np.float32)
    return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)


def pairwise_distances_two_loops(X, Y) -> np.ndarray:
    r"""Euclidean distances between the rows of ``X`` and ``Y``, one pair at a time.

    .. math:: D_{ij} = \sqrt{\textstyle\sum_k (X_{ik} - Y_{jk})^2}

    The teaching version with two Python loops: easy to read, and slow (the lecture times
    it against the other two). Works on the differences directly, so it has no round-off
    trouble for nearby points.

    Parameters
    ----------
    X : array_like, shape (N, D)
    Y : array_like, shape (M, D)

    Returns
    -------
    ndarray, shape (N, M)
    """
    X, Y = _check_pair(X, Y)
    dists = np.zeros((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            dists[i, j] = np.sqrt(np.sum((X[i] - Y[j]) ** 2))
    return dists


def pairwise_distances_one_loop(X, Y) -> np.ndarray:
    r"""Euclidean distances between the rows of ``X`` and ``Y``, one row of ``X`` at a time.

    .. math:: D_{i,:} = \sqrt{\textstyle\sum_k (X_{ik} - Y_{:,k})^2}

    Broadcasting ``X[i]`` of shape ``(D,)`` against ``Y`` of shape ``(M, D)`` removes the
    inner loop; each iteration still builds an ``(M, D)`` array of differences.

    Parameters
    ----------
    X : array_like, shape (N, D)
    Y : array_like, shape (M, D)

    Returns
    -------
    ndarray, shape (N, M)
    """
    X, Y = _check_pair(X, Y)
    dists = np.zeros((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        dists[i] = np.sqrt(np.sum((X[i] - Y) ** 2, axis=1))
    return dists


def pairwise_distances(X, Y=None) -> np.ndarray:
    r"""Euclidean distances between the rows of ``X`` and ``Y``, with no Python loop.

    .. math::

        D_{ij} = \sqrt{\max\bigl(0,\; \|x_i\|^2 + \|y_j\|^2 - 2\, x_i^\top y_j\bigr)}

    The only ``O(N M D)`` work is one BLAS matrix product :math:`X Y^\top`, written
    straight into the result; the two squared norms are added to it in place and the square
    root is taken in place. The result is the only large array: no ``(N, M, D)`` array of
    differences and no ``(N, M)`` temporary is ever built (each extra large temporary costs
    fresh memory pages, which at the seed's 300×400 sizes take as long as the product).

    **Why the clamp at 0.** The expansion subtracts numbers of size
    :math:`\|x\|^2 + \|y\|^2` to get :math:`\|x - y\|^2`. For two equal or very close
    points the exact answer is 0 or tiny, while the round-off of the three terms is about
    ``eps * (||x||^2 + ||y||^2)``, so the computed square can come out slightly *negative*
    and ``np.sqrt`` would return NaN. Clamping at 0 removes that; the price is an absolute
    error of about ``sqrt(eps) * ||x||`` for nearly coincident points (the loop versions,
    which subtract first, do not have it). For data far from the origin, center it first.

    Parameters
    ----------
    X : array_like, shape (N, D)
    Y : array_like, shape (M, D), optional
        Defaults to ``X``. When ``Y`` is omitted or is the very same object as ``X``, the
        diagonal (each point's distance to itself) is set to exactly 0.

    Returns
    -------
    ndarray, shape (N, M)
        float64 for integer or float64 input, float32 when both inputs are float32.

    Raises
    ------
    ValueError
        If ``X`` or ``Y`` is not 2-D or their feature dimensions differ.
    """
    same = Y is None or Y is X
    X, Y = _check_pair(X, Y, allow_none=True)
    x_sq = np.einsum("ij,ij->i", X, X)[:, None]
    y_sq = np.einsum("ij,ij->i", Y, Y)
    dists = X @ Y.T
    dists *= -2.0
    dists += x_sq
    dists += y_sq
    # The clamp against a row of zeros, not the scalar 0: numpy's maximum with a scalar
    # operand takes a slow path, about 3x slower here.
    np.maximum(dists, np.zeros_like(y_sq), out=dists)
    np.sqrt(dists, out=dists)
    if same:
        np.fill_diagonal(dists, 0.0)
    return dists


def _max_shift(x: np.ndarray, axis, *, keep_inf: bool) -> np.ndarray:
    """The maximum along ``axis`` (kept), the shift that makes the exponentials safe.

    A slice whose maximum is ``-inf`` (all ``-inf``, or empty) is shifted by 0 instead:
    shifting by ``-inf`` would give NaN. A ``+inf`` maximum is kept with ``keep_inf`` (then
    ``inf - inf`` makes the slice NaN, as PyTorch's softmax does) and replaced by 0
    otherwise (then ``logsumexp`` is ``+inf``, as PyTorch's is). NaN propagates.
    """
    shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    bad = np.isneginf(shift) if keep_inf else np.isinf(shift)
    return np.where(bad, 0.0, shift)


def logsumexp(x, axis=-1, keepdims: bool = False) -> np.ndarray:
    r"""Stable :math:`\log \sum_j e^{x_j}` along ``axis``.

    .. math:: \operatorname{logsumexp}(x) = c + \log \sum_j e^{x_j - c},\quad c = \max_j x_j

    Parameters
    ----------
    x : array_like
    axis : int or tuple of int or None, default -1
    keepdims : bool, default False

    Returns
    -------
    ndarray
        As ``torch.logsumexp``: a slice of all ``-inf`` gives ``-inf`` (not NaN), a slice
        holding ``+inf`` gives ``+inf``, one holding NaN gives NaN, and an empty slice (a
        sum of no terms) gives ``log 0 = -inf``.
    """
    x = _as_float(x, "x")
    shift = _max_shift(x, axis, keep_inf=False)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True))
    out += shift
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    r"""Stable logarithm of the softmax along ``axis``.

    .. math:: \log \operatorname{softmax}(x)_i = (x_i - c) - \log \sum_j e^{x_j - c},
              \quad c = \max_j x_j

    Computing it this way, rather than ``np.log(softmax(x))``, keeps very negative
    log-probabilities exact instead of rounding them to ``log(0) = -inf``. Non-finite
    slices behave as in :func:`softmax`.
    """
    x = _as_float(x, "x")
    shift = _max_shift(x, axis, keep_inf=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 and inf - inf, as torch
        shifted = x - shift
        shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Stable softmax along ``axis``.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i - c}}{\sum_j e^{x_j - c}},
              \quad c = \max_j x_j

    Each slice along ``axis`` of finite values is non-negative and sums to 1.

    Non-finite values, as in ``torch.softmax``: ``-inf`` entries get probability 0 (an
    excluded class) as long as the slice has a finite or ``+inf`` entry; a slice holding
    ``+inf`` or NaN, or only ``-inf``, is NaN throughout (the limit ``[1, 0, 0]`` of
    ``[+inf, 0, 0]`` is not what PyTorch returns, and two ``+inf`` would have no limit). An
    empty slice gives an empty result.
    """
    x = _as_float(x, "x")
    shift = _max_shift(x, axis, keep_inf=True)
    with np.errstate(invalid="ignore"):  # inf - inf and 0 / 0 give torch's NaN
        e = np.exp(x - shift)
        e /= np.sum(e, axis=axis, keepdims=True)
    return e


def one_hot(y, num_classes: int = -1, dtype=np.float64) -> np.ndarray:
    r"""One-hot encoding of integer labels, like ``torch.nn.functional.one_hot``.

    .. math:: \operatorname{one\_hot}(y)_{\dots, c} = [\,y_{\dots} = c\,]

    Parameters
    ----------
    y : array_like of int, any shape
        Labels in ``[0, num_classes)``.
    num_classes : int, default -1
        Number of classes; ``-1`` (PyTorch's default) means ``y.max() + 1``.
    dtype : numpy dtype, default float64
        PyTorch returns int64; float64 is what losses and models here consume.

    Returns
    -------
    ndarray, shape ``y.shape + (num_classes,)``
    """
    y = as_array(y, "y")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be an integer, got {type(num_classes).__name__}")
    if num_classes == -1:
        if y.size == 0:
            raise ValueError("num_classes=-1 needs at least one label to infer the class count")
        num_classes = int(np.max(y)) + 1
    if num_classes <= 0:
        raise ValueError(f"num_classes must be a positive integer or -1, got {num_classes}")
    flat = check_labels(y.reshape(-1), y.size, num_classes, "y")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), flat] = 1
    return out.reshape(y.shape + (num_classes,))
