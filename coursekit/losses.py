"""Classification losses on a batch of scores, each returning ``(loss, dscores)``.

Both average over the batch, so ``dscores`` already carries the factor ``1/N``.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array, check_labels, check_ndim
from coursekit.ops import _as_float, _max_shift

__all__ = ["softmax_loss", "svm_loss"]


def _check_scores(scores, y) -> tuple[np.ndarray, np.ndarray]:
    scores = check_ndim(as_array(scores, "scores"), 2, "scores")
    n, c = scores.shape
    if n == 0:
        raise ValueError(f"scores must hold at least one row, got shape {scores.shape}")
    if c == 0:
        raise ValueError(f"scores must hold at least one class (column), got shape {scores.shape}")
    y = check_labels(y, n, c, "y")
    return scores, y


def softmax_loss(scores, y):
    r"""Softmax cross-entropy, averaged over the batch (``torch.nn.functional.cross_entropy``).

    .. math::

        L = -\frac{1}{N} \sum_n \log \operatorname{softmax}(s_n)_{y_n},
        \qquad
        \frac{\partial L}{\partial s_{nj}} =
        \frac{1}{N}\bigl(\operatorname{softmax}(s_n)_j - [j = y_n]\bigr)

    Computed with the max-shift of :func:`coursekit.ops.log_softmax`, so logits of any size
    give a finite loss. With random small scores the loss starts near :math:`\ln C`.

    Parameters
    ----------
    scores : ndarray, shape (N, C)
        Unnormalized class scores (logits).
    y : ndarray of int, shape (N,)
        Labels in ``[0, C)``.

    Returns
    -------
    loss : float
    dscores : ndarray, shape (N, C)
    """
    scores, y = _check_scores(scores, y)
    n, c = scores.shape
    rows = np.arange(n)
    # One pass for each step, and a single (N, C) array that goes from the shifted scores to
    # their exponentials to the gradient: log softmax(s)_y = (s_y - m) - log sum_j e^(s_j - m).
    with np.errstate(invalid="ignore"):  # inf - inf: a row holding +inf is NaN, as in torch
        z = _as_float(scores, "scores") - _max_shift(scores, axis=1, keep_inf=True)
    picked = z[rows, y]
    np.exp(z, out=z)
    sum_exp = z @ np.ones(c, dtype=z.dtype)  # row sums by BLAS
    # a row of all -inf scores has no softmax: its loss and gradient are NaN, without warnings
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.sum(np.log(sum_exp) - picked) / n
        z *= (1.0 / (n * sum_exp))[:, None]  # softmax / N
    z[rows, y] -= 1.0 / n
    return float(loss), z


def svm_loss(scores, y, margin: float = 1.0):
    r"""Multiclass hinge (SVM) loss, averaged over the batch.

    .. math::

        L = \frac{1}{N} \sum_n \sum_{j \ne y_n} \max(0,\; s_{nj} - s_{n y_n} + \Delta),
        \qquad
        \frac{\partial L}{\partial s_{nj}} = \frac{1}{N}
        \begin{cases}
        [s_{nj} - s_{n y_n} + \Delta > 0] & j \ne y_n \\
        -\sum_{k \ne y_n} [s_{nk} - s_{n y_n} + \Delta > 0] & j = y_n
        \end{cases}

    with :math:`\Delta` = ``margin``. This is the CS231n definition. PyTorch's
    ``torch.nn.functional.multi_margin_loss(scores, y, p=1, margin=margin)`` also divides
    each sample's sum by the number of classes :math:`C`, so

    ``svm_loss(scores, y)[0] == C * multi_margin_loss(scores, y)``

    (and the same factor ``C`` between the gradients). At a hinge's kink (margin violation
    exactly 0) the gradient is 0, as in PyTorch.

    Parameters
    ----------
    scores : ndarray, shape (N, C)
    y : ndarray of int, shape (N,)
    margin : float, default 1.0
        :math:`\Delta`, finite.

    Returns
    -------
    loss : float
    dscores : ndarray, shape (N, C)
    """
    scores, y = _check_scores(scores, y)
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.integer, np.floating)):
        raise TypeError(f"margin must be a number, got {type(margin).__name__}")
    if not np.isfinite(margin):
        # torch's multi_margin_loss returns 0 for a NaN margin; every violation is NaN.
        raise ValueError(f"margin must be a finite number, got {margin}")
    n = scores.shape[0]
    rows = np.arange(n)
    # (margin - s_y) + s_j: the same order of operations as PyTorch, so both agree on
    # which margins are violated even when a violation rounds to exactly 0.
    violations = (margin - scores[rows, y])[:, None] + scores
    violations[rows, y] = 0.0
    active = violations > 0
    loss = np.sum(violations, where=active) / n
    dscores = active.astype(np.result_type(scores.dtype, np.float32))
    dscores[rows, y] = -np.sum(active, axis=1)
    dscores /= n
    return float(loss), dscores
