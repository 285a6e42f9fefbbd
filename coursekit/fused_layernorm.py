r"""LayerNorm forward and backward as fused kernels compiled with numba.

:func:`coursekit.normalization.layernorm_forward` and
:func:`~coursekit.normalization.layernorm_backward` hand large arrays to these kernels when
numba is installed (the optional extra ``fast``); their numpy code stays the readable
reference and computes the same formulas. Each kernel sweeps the rows once: a row (a few
KiB) is read from memory, its sums are taken, and it is written back while it is still in
the CPU's L1 cache, where numpy needs one pass over the whole array per operation.

Importing this module imports numba and compiles the kernels for float32 and float64 (or
loads them from numba's on-disk cache), which is why :mod:`coursekit.normalization` imports
it only the first time an array is large enough to need it.

**Same result on any number of threads.** The rows are split into :data:`CHUNKS` chunks,
however many threads run them; each row's sums are taken inside one thread, and each chunk
sums its own part of ``dgamma`` and ``dbeta``, which are then added chunk after chunk.
Every number is therefore computed by the same operations in the same order whatever the
thread count. Sums are accumulated in float64, also for float32 arrays.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import prange, types

__all__ = ["CHUNKS", "forward", "backward"]

#: Row chunks per call, fixed so that no result depends on the number of threads.
CHUNKS = 16

# Reductions may be reordered so that LLVM vectorizes them (the row sums are then split into
# per-lane partial sums); no other fast-math liberty is taken, so inf and NaN propagate.
_FASTMATH = {"reassoc"}

# numba's "workqueue" threading layer (the one left where neither OpenMP nor TBB is
# installed) aborts the process when two threads launch parallel kernels at once.
_launch_lock = threading.Lock()


def _forward_kernel(x, gamma, beta, eps, out, xhat, inv_std):
    n, d = x.shape
    inv_d = 1.0 / max(d, 1)  # D = 0: no features, a variance of 0
    for chunk in prange(CHUNKS):
        for i in range(chunk * n // CHUNKS, (chunk + 1) * n // CHUNKS):
            row = x[i]
            total = 0.0
            for j in range(d):
                total += row[j]
            mean = total * inv_d
            squares = 0.0  # around the mean: no cancellation as in E[x^2] - mean^2
            for j in range(d):
                centered = row[j] - mean
                squares += centered * centered
            r = 1.0 / np.sqrt(squares * inv_d + eps)
            inv_std[i, 0] = r
            for j in range(d):
                h = (row[j] - mean) * r
                xhat[i, j] = h
                out[i, j] = h * gamma[j] + beta[j]


def _backward_kernel(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    n, d = dout.shape
    inv_d = 1.0 / max(d, 1)
    partial_dgamma = np.zeros((CHUNKS, d))
    partial_dbeta = np.zeros((CHUNKS, d))
    for chunk in prange(CHUNKS):
        chunk_dgamma, chunk_dbeta = partial_dgamma[chunk], partial_dbeta[chunk]
        for i in range(chunk * n // CHUNKS, (chunk + 1) * n // CHUNKS):
            g, xh = dout[i], xhat[i]
            sum_h = 0.0
            sum_h_xhat = 0.0
            for j in range(d):
                h = g[j] * gamma[j]
                sum_h += h
                sum_h_xhat += h * xh[j]
            mean_h, xhat_coef, r = sum_h * inv_d, sum_h_xhat * inv_d, inv_std[i, 0]
            for j in range(d):
                dx[i, j] = r * (g[j] * gamma[j] - mean_h - xh[j] * xhat_coef)
                chunk_dgamma[j] += g[j] * xh[j]
                chunk_dbeta[j] += g[j]
    for j in range(d):
        total_dgamma = 0.0
        total_dbeta = 0.0
        for chunk in range(CHUNKS):
            total_dgamma += partial_dgamma[chunk, j]
            total_dbeta += partial_dbeta[chunk, j]
        dgamma[j] = total_dgamma
        dbeta[j] = total_dbeta


def _array_types(dtype):
    """Matrix and vector types, read-only for inputs (which also accept writable arrays)."""
    return (
        types.Array(dtype, 2, "C", readonly=True),
        types.Array(dtype, 1, "C", readonly=True),
        types.Array(dtype, 2, "C"),
        types.Array(dtype, 1, "C"),
    )


def _forward_signature(dtype):
    """``(x, gamma, beta, eps, out, xhat, inv_std)``"""
    matrix_in, vector_in, matrix_out, _ = _array_types(dtype)
    return types.void(
        matrix_in, vector_in, vector_in, types.float64, matrix_out, matrix_out, matrix_out
    )


def _backward_signature(dtype):
    """``(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)``"""
    matrix_in, vector_in, matrix_out, vector_out = _array_types(dtype)
    return types.void(
        matrix_in, matrix_in, vector_in, matrix_in, matrix_out, vector_out, vector_out
    )


_DTYPES = (types.float32, types.float64)

# Explicit signatures compile both dtypes now (or load them from the cache) and forbid any
# compilation later, so a call never stops to compile, or to warn.
_forward_compiled = numba.njit(
    [_forward_signature(t) for t in _DTYPES], parallel=True, cache=True, fastmath=_FASTMATH
)(_forward_kernel)
_backward_compiled = numba.njit(
    [_backward_signature(t) for t in _DTYPES], parallel=True, cache=True, fastmath=_FASTMATH
)(_backward_kernel)


def _launch(kernel, args, one_thread: bool) -> None:
    with _launch_lock:
        if not one_thread:
            kernel(*args)
            return
        # numba's thread count is per calling thread: restore it for the caller's own kernels.
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            kernel(*args)
        finally:
            numba.set_num_threads(before)


def accepts(direction: str, arrays: tuple) -> bool:
    """Whether the shapes of ``arrays`` are the ones :func:`forward` or :func:`backward`
    (``direction``) takes. The compiled loops check no bounds, so anything else, such as a
    cache from another shape, must go to the numpy code, which raises a clear error."""
    if direction == "forward":
        x, gamma, beta = arrays
        shapes = [np.shape(gamma), np.shape(beta)]
        return np.ndim(x) == 2 and shapes == [np.shape(x)[1:]] * 2
    dout, xhat, gamma, inv_std = arrays
    n, *d = np.shape(xhat)
    return (
        np.ndim(xhat) == 2
        and np.shape(dout) == np.shape(xhat)
        and list(np.shape(gamma)) == d
        and np.shape(inv_std) == (n, 1)
    )


def forward(x, gamma, beta, eps: float, *, one_thread: bool = False):
    r"""LayerNorm forward pass over the rows of ``x`` in one sweep.

    For each row :math:`i` of ``x`` (shape ``(N, D)``):

    .. math::

        \mu_i = \frac1D \sum_j x_{ij}, \qquad
        \sigma_i^2 = \frac1D \sum_j (x_{ij} - \mu_i)^2, \qquad
        \hat x_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
        y_{ij} = \gamma_j \hat x_{ij} + \beta_j .

    The variance is taken around the mean in a second sweep of the row, which is still in
    the cache: ``x`` is read from memory once, ``xhat`` and ``out`` are written once.

    Parameters
    ----------
    x : ndarray of shape (N, D), C-contiguous, float32 or float64
    gamma, beta : ndarray of shape (D,), C-contiguous, of the dtype of ``x``
    eps : float
        Added to the variance before the square root.
    one_thread : bool, default False
        Run on the calling thread only (the result is the same).

    Returns
    -------
    out, xhat : ndarray of shape (N, D)
    inv_std : ndarray of shape (N, 1)
        :math:`1/\sqrt{\sigma_i^2 + \epsilon}`.
    """
    out, xhat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty((x.shape[0], 1), dtype=x.dtype)
    _launch(_forward_compiled, (x, gamma, beta, float(eps), out, xhat, inv_std), one_thread)
    return out, xhat, inv_std


def backward(dout, xhat, gamma, inv_std, *, one_thread: bool = False):
    r"""LayerNorm backward pass over the rows in one sweep.

    With :math:`g` = ``dout``, :math:`h_{ij} = g_{ij}\gamma_j` and
    :math:`\sigma_i^{-1}` = ``inv_std``:

    .. math::

        \frac{\partial L}{\partial x_{ij}} = \frac{1}{\sigma_i}
            \Big(h_{ij} - \frac1D \sum_k h_{ik} - \hat x_{ij} \frac1D \sum_k h_{ik} \hat x_{ik}\Big),
        \qquad
        \frac{\partial L}{\partial \gamma_j} = \sum_i g_{ij} \hat x_{ij}, \qquad
        \frac{\partial L}{\partial \beta_j} = \sum_i g_{ij}.

    Each row is swept twice while it is in the cache, once for its two sums and once for
    ``dx`` and its contribution to the chunk's ``dgamma`` and ``dbeta``: ``dout`` and
    ``xhat`` are read from memory once and ``dx`` is written once.

    Parameters
    ----------
    dout, xhat : ndarray of shape (N, D), C-contiguous, float32 or float64
    gamma : ndarray of shape (D,), C-contiguous
    inv_std : ndarray of shape (N, 1), C-contiguous
        All four of one dtype.
    one_thread : bool, default False
        Run on the calling thread only (the result is the same).

    Returns
    -------
    dx : ndarray of shape (N, D)
    dgamma, dbeta : ndarray of shape (D,)
    """
    dx = np.empty_like(dout)
    dgamma = np.empty(dout.shape[1], dtype=dout.dtype)
    dbeta = np.empty_like(dgamma)
    _launch(_backward_compiled, (dout, xhat, gamma, inv_std, dx, dgamma, dbeta), one_thread)
    return dx, dgamma, dbeta
