r"""Batch normalization and layer normalization for fully connected layers.

Both layers standardize their input and then apply a learnable per-feature scale
:math:`\gamma` and shift :math:`\beta`:

.. math::

    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta .

They differ in *which* values the statistics are taken over. For ``x`` of shape ``(N, D)``
BatchNorm takes :math:`\mu, \sigma^2` per feature over the ``N`` samples of the batch (a
column of ``x``); LayerNorm takes them per sample over its ``D`` features (a row of ``x``).

The functions follow the layer pattern of the package: ``*_forward`` returns
``(out, cache)`` and ``*_backward(dout, cache)`` returns ``(dx, dgamma, dbeta)``. The dtype of
``x`` is kept: float32 in gives float32 out (``gamma`` and ``beta`` are cast to it).

Speed comes from touching memory as few times as possible (numpy pays one pass over the
array per operation, where PyTorch fuses a whole direction into one kernel): each kernel's
docstring states its passes over memory. Where numba is installed (the optional extra
``fast``), LayerNorm hands arrays of 2**18 elements or more to the fused kernels of
:mod:`coursekit.fused_layernorm`; the environment variable ``COURSEKIT_NUMBA=0`` keeps numpy.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings

import numpy as np

from coursekit._validation import (
    as_array,
    check_float_array,
    check_mode,
    check_ndim,
    check_positive,
    check_same_shape,
)

__all__ = [
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_graph",
    "layernorm_forward",
    "layernorm_backward",
]


# Row blocks of about this many bytes per array fit, with their temporaries, in a core's L2 cache.
_BLOCK_BYTES = 256 * 1024


def _check_input(x) -> np.ndarray:
    x = check_float_array(x, "x")
    return check_ndim(x, 2, "x")


def _check_feature_vector(v, name: str, x: np.ndarray) -> np.ndarray:
    """A per-feature parameter of shape ``(D,)`` for ``x`` of shape ``(N, D)``."""
    v = as_array(v, name)
    if v.shape != (x.shape[1],):
        raise ValueError(
            f"{name} must have shape ({x.shape[1]},) to match x of shape {x.shape}, got {v.shape}"
        )
    return v


def _check_running(v, name: str, x: np.ndarray) -> np.ndarray:
    # Running statistics are updated in place, so they must already be float arrays.
    v = check_float_array(v, name)
    return _check_feature_vector(v, name, x)


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)):
        raise TypeError(f"eps must be a positive number, got {type(eps).__name__}")
    check_positive(eps, "eps")
    return float(eps)


def _check_momentum(momentum) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)):
        raise TypeError(
            f"momentum must be a number in [0, 1], got {type(momentum).__name__} "
            "(the cumulative average of momentum=None is not supported)"
        )
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    return float(momentum)


def _check_dout(dout, like: np.ndarray) -> np.ndarray:
    dout = check_float_array(dout, "dout")
    check_same_shape(dout, like, "dout", "the forward input x")
    return dout


def _column_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=0)`` without the ``(N, D)`` temporary."""
    return np.einsum("ij,ij->j", a, b)


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=1)`` without the ``(N, D)`` temporary."""
    return np.einsum("ij,ij->i", a, b)


def _column_sum(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=0)`` as one BLAS matrix-vector product (faster than numpy's reduction)."""
    return np.ones(a.shape[0], dtype=a.dtype) @ a


# LayerNorm arrays of at least this many elements are processed by two threads (numpy
# releases the GIL inside each operation), as PyTorch's kernels split the rows across threads.
_PARALLEL_MIN_ELEMENTS = 1 << 18


def _threads_allowed() -> bool:
    """A second thread helps only with a second core, and not where threads are ruled out.

    ``OMP_NUM_THREADS=1`` (what the test suite and many batch systems set to keep each
    process on one core) keeps everything on the calling thread.
    """
    return (os.cpu_count() or 1) > 1 and os.environ.get("OMP_NUM_THREADS", "").strip() != "1"


def _in_two_halves(work, blocks: list, size: int) -> list:
    """``[work(first half of blocks), work(second half)]``, on two threads for large arrays.

    There are always two halves when there are two blocks or more, whether or not a thread
    runs one of them, so that sums accumulated per half (and therefore the results, bit for
    bit) do not depend on the machine. If no thread can be started (a process limit), both
    halves run here.
    """
    if len(blocks) < 2:
        return [work(blocks)]
    half = len(blocks) // 2
    first, second = blocks[:half], blocks[half:]
    if size < _PARALLEL_MIN_ELEMENTS or not _threads_allowed():
        return [work(first), work(second)]
    outcome: dict = {}

    def run_second():
        try:
            outcome["value"] = work(second)
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=run_second, name="coursekit-layernorm", daemon=True)
    try:
        thread.start()
    except RuntimeError:
        return [work(first), work(second)]
    try:
        head = work(first)
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return [head, outcome["value"]]


# -- the fused LayerNorm kernels (numba) ------------------------------------------------------

# LayerNorm arrays this large run the fused kernels of coursekit.fused_layernorm when numba is
# installed; smaller ones (notebooks, student kernels) never wait for numba to compile.
_FUSED_MIN_ELEMENTS = _PARALLEL_MIN_ELEMENTS
_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# coursekit.fused_layernorm once loaded; None before the first try, False where it cannot
# run here (numba missing, or compiling or caching failed): numpy for the rest of the process.
_fused = None
_fused_lock = threading.Lock()


def _load_fused():
    """coursekit.fused_layernorm, imported (and so compiled) by the first caller; or False."""
    global _fused
    if _fused is None:
        with _fused_lock:
            if _fused is None:
                try:
                    # numba's warnings (a cache it cannot write, say) must not reach a user.
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        _fused = importlib.import_module("coursekit.fused_layernorm")
                except Exception:
                    _fused = False
    return _fused


def _no_fused_after_fork() -> None:
    # A child forked after numba's OpenMP threads started aborts at its first parallel kernel.
    global _fused
    if _fused:
        _fused = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_no_fused_after_fork)


def _try_fused(direction: str, arrays: tuple, *scalars):
    """``coursekit.fused_layernorm.<direction>(*arrays, *scalars)``, or None to run numpy.

    The fused kernels run on large float32 or float64 arrays all of one dtype (made
    C-contiguous here), unless ``COURSEKIT_NUMBA=0``; on one thread where
    :func:`_threads_allowed` says so (the result is the same). A kernel that fails turns
    the fused path off for the rest of the process.
    """
    global _fused
    first = arrays[0]
    if (
        first.size < _FUSED_MIN_ELEMENTS
        or first.dtype not in _FUSED_DTYPES
        or any(getattr(a, "dtype", None) != first.dtype for a in arrays)
        or os.environ.get("COURSEKIT_NUMBA", "").strip() == "0"
    ):
        return None
    fused = _load_fused()
    if not fused or not fused.accepts(direction, arrays):
        return None
    kernel = getattr(fused, direction)
    try:
        return kernel(
            *(np.ascontiguousarray(a) for a in arrays), *scalars, one_thread=not _threads_allowed()
        )
    except MemoryError:
        raise
    except Exception:
        _fused = False
        return None


def _row_blocks(n: int, d: int, itemsize: int):
    """Slices of consecutive rows of an ``(n, d)`` array, each about ``_BLOCK_BYTES`` big.

    Running several elementwise passes on one block before moving to the next keeps the
    block in the CPU cache, so memory is read and written once instead of once per pass.
    """
    rows = max(1, _BLOCK_BYTES // max(1, d * itemsize))
    return [slice(start, start + rows) for start in range(0, n, rows)]


def batchnorm_forward(
    x,
    gamma,
    beta,
    running_mean,
    running_var,
    *,
    mode: str,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    r"""Batch normalization of a fully connected layer's activations.

    In ``mode="train"`` each feature :math:`j` is standardized with the statistics of the
    current batch of :math:`N` samples,

    .. math::

        \mu_j = \frac1N \sum_i x_{ij}, \qquad
        \sigma_j^2 = \frac1N \sum_i (x_{ij} - \mu_j)^2, \qquad
        \hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}}, \qquad
        y_{ij} = \gamma_j \hat x_{ij} + \beta_j ,

    and the running averages are updated **in place** exactly as
    ``torch.nn.functional.batch_norm`` does:

    .. math::

        \text{running\_mean} \leftarrow (1 - m)\,\text{running\_mean} + m\,\mu, \qquad
        \text{running\_var} \leftarrow (1 - m)\,\text{running\_var} + m\,\frac{N}{N-1}\sigma^2 ,

    with :math:`m` = ``momentum`` weighting the *new* batch and the unbiased batch variance
    in the variance average (the normalization itself uses the biased :math:`\sigma^2`).

    In ``mode="test"`` the running averages replace the batch statistics and are not
    changed, so each sample's output no longer depends on the rest of the batch.

    **Passes over memory** (one numpy operation over an ``(N, D)`` array each): 5 in train
    mode (column sum, centering, column sum of squares, scaling, shift) and 3 in test mode.
    A column's statistics need every row, so the normalization cannot start before a whole
    pass; :func:`layernorm_forward` needs 1.

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Floating-point input.
    gamma, beta : array_like of shape (D,)
        Learnable scale and shift.
    running_mean, running_var : ndarray of shape (D,)
        Running averages; updated in place in train mode.
    mode : {"train", "test"}
        Which statistics to normalize with.
    momentum : float, default 0.1
        Weight of the new batch in the running averages (PyTorch's convention). Some lecture
        sources write the update as ``running = rho * running + (1 - rho) * batch`` with
        ``rho = 0.9`` on the *old* value; that is the same rule with ``momentum = 1 - rho = 0.1``.
    eps : float, default 1e-5
        Added to the variance before the square root.

    Returns
    -------
    out : ndarray of shape (N, D)
    cache : dict
        What the backward passes need: ``centered`` (:math:`x - \mu`), ``inv_std``
        (:math:`1/\sqrt{\sigma^2 + \epsilon}`, shape ``(D,)``), ``gamma`` and ``mode``.

    Raises
    ------
    ValueError
        For ``N == 1`` in train mode: one sample per feature has no spread to normalize by
        (PyTorch raises too), and for parameter shapes that do not match ``x``.
    """
    x = _check_input(x)
    check_mode(mode)
    gamma = _check_feature_vector(gamma, "gamma", x).astype(x.dtype, copy=False)
    beta = _check_feature_vector(beta, "beta", x).astype(x.dtype, copy=False)
    running_mean = _check_running(running_mean, "running_mean", x)
    running_var = _check_running(running_var, "running_var", x)
    momentum = _check_momentum(momentum)
    eps = _check_eps(eps)
    n = x.shape[0]

    if mode == "train":
        if n < 2:
            raise ValueError(
                f"batchnorm_forward in train mode needs at least 2 samples per feature to "
                f"compute a batch variance, got x of shape {x.shape}; use a larger batch or "
                f"mode='test'"
            )
        mean = _column_sum(x) / n
        centered = x - mean
        var = _column_dot(centered, centered) / n
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += (momentum * n / (n - 1)) * var
    else:
        centered = x - running_mean.astype(x.dtype, copy=False)
        var = running_var.astype(x.dtype, copy=False)

    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
    out = centered * (gamma * inv_std)
    out += beta
    cache = {"centered": centered, "inv_std": inv_std, "gamma": gamma, "mode": mode}
    return out, cache


def batchnorm_backward(dout, cache):
    r"""Backward pass of :func:`batchnorm_forward` in the simplified closed form.

    Collapsing the computation graph of the forward pass gives, per feature (sums over the
    batch, :math:`\sigma = \sqrt{\sigma^2 + \epsilon}`):

    .. math::

        \frac{\partial L}{\partial \beta} = \sum_i g_i, \qquad
        \frac{\partial L}{\partial \gamma} = \sum_i g_i \hat x_i, \qquad
        \frac{\partial L}{\partial x_i} = \frac{\gamma}{N \sigma}
            \Big(N g_i - \sum_k g_k - \hat x_i \sum_k g_k \hat x_k\Big),

    where :math:`g = \partial L / \partial y` is ``dout``. The two sums are exactly
    ``dbeta`` and ``dgamma``, so they are computed once and reused. In test mode the
    statistics are constants and :math:`\partial L/\partial x_i = \gamma g_i / \sigma`.

    **Passes over memory**: 3, in both modes: the two column reductions (``dbeta``, then
    ``dgamma``), then ``dx``, computed in cache-sized blocks of rows (4 operations per
    block while it is in the cache). :func:`layernorm_backward` needs 1.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient.
    cache : dict
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray of shape (N, D)
    dgamma, dbeta : ndarray of shape (D,)
    """
    centered, inv_std, gamma = cache["centered"], cache["inv_std"], cache["gamma"]
    dout = _check_dout(dout, centered)
    dbeta = _column_sum(dout)
    dgamma = _column_dot(dout, centered) * inv_std
    if cache["mode"] == "test":
        return dout * (gamma * inv_std), dgamma, dbeta
    n, d = centered.shape
    scale = gamma * inv_std
    xhat_coef = -inv_std * dgamma / n  # centered * inv_std = x-hat
    mean_dout = dbeta / n
    dx = np.empty(centered.shape, dtype=np.result_type(dout, centered))
    for rows in _row_blocks(n, d, dx.itemsize):
        block = dx[rows]
        np.multiply(centered[rows], xhat_coef, out=block)
        block += dout[rows]
        block -= mean_dout
        block *= scale
    return dx, dgamma, dbeta


def batchnorm_backward_graph(dout, cache):
    r"""Backward pass of :func:`batchnorm_forward`, one node of the graph at a time.

    The forward pass in train mode is the chain of nodes

    .. math::

        \mu = \tfrac1N \textstyle\sum_i x_i \;\to\; c = x - \mu \;\to\;
        v = \tfrac1N \textstyle\sum_i c_i^2 \;\to\; s = \sqrt{v + \epsilon} \;\to\;
        r = 1/s \;\to\; \hat x = c\,r \;\to\; z = \gamma \hat x \;\to\; y = z + \beta ,

    and this function applies the chain rule to each node in reverse order. It is slower
    than :func:`batchnorm_backward` and exists to show where the closed form comes from;
    both give the same gradients. The forward pass cached :math:`c` and :math:`r`; the other
    node values are rebuilt from them (:math:`s = 1/r`, :math:`\hat x = c\,r`).

    **Passes over memory**: 14 in train mode (one or two numpy operations per node, each
    over the whole ``(N, D)`` array) and 6 in test mode, against 3 for
    :func:`batchnorm_backward`: the price of writing the chain rule node by node.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient.
    cache : dict
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray of shape (N, D)
    dgamma, dbeta : ndarray of shape (D,)
    """
    centered, inv_std, gamma = cache["centered"], cache["inv_std"], cache["gamma"]
    dout = _check_dout(dout, centered)
    n = centered.shape[0]
    std = 1.0 / inv_std
    xhat = centered * inv_std

    # y = z + beta
    dbeta = dout.sum(axis=0)
    dz = dout
    # z = gamma * xhat
    dgamma = (dz * xhat).sum(axis=0)
    dxhat = dz * gamma
    # xhat = centered * inv_std
    dcentered = dxhat * inv_std
    if cache["mode"] == "test":
        # The running statistics are constants: the graph ends at the centering.
        return dcentered, dgamma, dbeta
    dinv_std = (dxhat * centered).sum(axis=0)
    # inv_std = 1 / std
    dstd = -dinv_std / std**2
    # std = sqrt(var + eps)
    dvar = dstd * 0.5 / std
    # var = mean(centered ** 2): the second path into `centered`
    dcentered += 2.0 * centered * dvar / n
    # centered = x - mean: x reaches the output directly and through the mean
    dmean = -dcentered.sum(axis=0)
    # mean = sum(x) / N
    dx = dcentered + dmean / n
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, eps: float = 1e-5):
    r"""Layer normalization: standardize each sample over its features.

    For each row :math:`i` of ``x`` (shape ``(N, D)``):

    .. math::

        \mu_i = \frac1D \sum_j x_{ij}, \qquad
        \sigma_i^2 = \frac1D \sum_j (x_{ij} - \mu_i)^2, \qquad
        y_{ij} = \gamma_j \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}} + \beta_j .

    The statistics come from the sample itself, so LayerNorm behaves the same in training
    and at test time (there is no ``mode`` and no running average) and works for ``N == 1``.
    Matches ``torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)``.

    **One pass over memory**: ``x`` is read once, ``xhat`` and ``out`` are written once (3
    arrays of shape ``(N, D)`` streamed), because a row's statistics need only that row.
    :func:`batchnorm_forward` makes 5 passes, because a column's statistics need every row
    first. Which code runs:

    * float32 or float64 arrays of 2**18 elements or more, where numba is installed (the
      extra ``fast``): the fused kernel of :func:`coursekit.fused_layernorm.forward`, one
      sweep of each row while it is in the L1 cache (sum, sum of squares around the mean,
      then ``xhat`` and ``out``), with the rows split over numba's threads. The first such
      call in a process imports numba and loads the kernels from numba's cache (compiling
      them, a few seconds, the first time). ``COURSEKIT_NUMBA=0``, or numba missing or
      unable to compile, leaves numpy.
    * Otherwise the numpy code below, the reference: the rows are processed in blocks of
      about 256 KiB that stay in the CPU cache while the mean (a BLAS matrix-vector
      product), the centering, the sum of squares, the scaling by
      :math:`1/\sqrt{\sigma_i^2 + \epsilon}` and the affine map run on them (6 operations
      per element, all on cached data). For arrays of 2**18 elements or more the two halves
      of the rows run on two threads (numpy releases the GIL inside each operation).

    Both give the same result on any number of threads; ``OMP_NUM_THREADS=1`` or a single
    core keeps them on one.

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Floating-point input.
    gamma, beta : array_like of shape (D,)
        Learnable per-feature scale and shift.
    eps : float, default 1e-5
        Added to the variance before the square root.

    Returns
    -------
    out : ndarray of shape (N, D)
    cache : dict
        ``xhat``, ``gamma`` and ``inv_std`` (shape ``(N, 1)``) for :func:`layernorm_backward`.
        ``D == 0`` gives an empty output (the variance of no features counts as 0).
    """
    x = _check_input(x)
    gamma = _check_feature_vector(gamma, "gamma", x).astype(x.dtype, copy=False)
    beta = _check_feature_vector(beta, "beta", x).astype(x.dtype, copy=False)
    eps = _check_eps(eps)
    fused = _try_fused("forward", (x, gamma, beta), eps)
    if fused is not None:
        out, xhat, inv_std = fused
        return out, {"xhat": xhat, "gamma": gamma, "inv_std": inv_std}
    n, d = x.shape
    xhat, out = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty((n, 1), dtype=x.dtype)
    inv_d = x.dtype.type(1.0 / max(d, 1))  # D = 0: no features, a sum of squares of 0
    mean_weights = np.full(d, inv_d, dtype=x.dtype)

    def normalize(blocks):
        for rows in blocks:
            xh, s, o = xhat[rows], inv_std[rows], out[rows]
            np.subtract(x[rows], (x[rows] @ mean_weights)[:, None], out=xh)  # BLAS row means
            s[:, 0] = _row_dot(xh, xh)
            s *= inv_d
            s += x.dtype.type(eps)
            np.sqrt(s, out=s)
            np.divide(1.0, s, out=s)
            xh *= s
            np.multiply(xh, gamma, out=o)
            o += beta

    _in_two_halves(normalize, _row_blocks(n, d, x.itemsize), x.size)
    return out, {"xhat": xhat, "gamma": gamma, "inv_std": inv_std}


def layernorm_backward(dout, cache):
    r"""Backward pass of :func:`layernorm_forward`.

    With :math:`g = \partial L/\partial y` and :math:`h = g\gamma` (the gradient with respect
    to :math:`\hat x`), each row follows the same closed form as BatchNorm with the roles of
    samples and features swapped (sums over the ``D`` features of the row):

    .. math::

        \frac{\partial L}{\partial x_{ij}} = \frac{1}{D \sigma_i}
            \Big(D h_{ij} - \sum_k h_{ik} - \hat x_{ij} \sum_k h_{ik} \hat x_{ik}\Big),
        \qquad
        \frac{\partial L}{\partial \gamma_j} = \sum_i g_{ij} \hat x_{ij}, \qquad
        \frac{\partial L}{\partial \beta_j} = \sum_i g_{ij}.

    The row sums are :math:`\sum_k h_{ik} = (g \gamma)_i` and
    :math:`\sum_k h_{ik}\hat x_{ik} = ((g \odot \hat x)\gamma)_i`, matrix-vector products;
    the column sums for ``dgamma`` and ``dbeta`` are accumulated block by block.

    **One pass over memory**: ``dout`` and ``xhat`` are read once and ``dx`` is written once
    (3 arrays of shape ``(N, D)`` streamed). :func:`batchnorm_backward` makes 3 passes (two
    column reductions, then ``dx``). The code is chosen as in :func:`layernorm_forward`:

    * The fused kernel of :func:`coursekit.fused_layernorm.backward` sweeps each row twice
      while it is in the L1 cache (its two sums, then ``dx`` and its share of ``dgamma`` and
      ``dbeta``). The rows are split into 16 chunks whatever the number of threads; each
      chunk sums its own part of ``dgamma`` and ``dbeta`` and the chunks are added in a
      fixed order.
    * The numpy code below runs on cache-sized blocks of rows (6 elementwise operations and
      4 matrix-vector products per block, on cached data). Large arrays are split into two
      halves of rows on two threads; each half sums its own part of ``dgamma`` and
      ``dbeta`` and the halves are added in a fixed order.

    Either way the result is the same bit for bit with one thread or more. A ``cache`` from
    either forward path works with either backward path.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient.
    cache : dict
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : ndarray of shape (N, D)
    dgamma, dbeta : ndarray of shape (D,)
    """
    xhat, gamma, inv_std = cache["xhat"], cache["gamma"], cache["inv_std"]
    dout = _check_dout(dout, xhat)
    n, d = xhat.shape
    fused = _try_fused("backward", (dout, xhat, gamma, inv_std))
    if fused is not None:
        return fused
    dtype = np.result_type(dout, xhat)
    dx = np.empty((n, d), dtype=dtype)
    inv_d = 1.0 / max(d, 1)

    def backprop(blocks):
        """dx on these blocks; returns their contributions to dgamma and dbeta."""
        dgamma, dbeta = np.zeros(d, dtype=dtype), np.zeros(d, dtype=dtype)
        if not blocks:
            return dgamma, dbeta
        scratch = np.empty_like(dx[blocks[0]])  # one block's worth
        ones = np.ones(scratch.shape[0], dtype=dtype)
        for rows in blocks:
            g, xh, out = dout[rows], xhat[rows], dx[rows]
            k = g.shape[0]
            g_xhat = np.multiply(g, xh, out=scratch[:k])
            dgamma += ones[:k] @ g_xhat  # column sums by BLAS
            dbeta += ones[:k] @ g
            scale = inv_std[rows] * inv_d
            mean_term = (g @ gamma)[:, None] * scale  # sum_k h_k / (D sigma)
            xhat_coef = (g_xhat @ gamma)[:, None] * scale  # sum_k h_k xhat_k / (D sigma)
            # dx = (D h - sum_k h_k - xhat sum_k h_k xhat_k) / (D sigma)
            np.multiply(g, gamma, out=out)
            out *= inv_std[rows]
            out -= mean_term
            out -= np.multiply(xh, xhat_coef, out=g_xhat)
        return dgamma, dbeta

    parts = _in_two_halves(backprop, _row_blocks(n, d, dx.itemsize), dx.size)
    dgamma, dbeta = parts[0]
    for more_dgamma, more_dbeta in parts[1:]:
        dgamma += more_dgamma
        dbeta += more_dbeta
    return dx, dgamma, dbeta
