"""Gradient clipping by value and by global norm, in place, as ``torch.nn.utils`` does it.

Both functions take one gradient array or a dict of named gradient arrays and modify them in
place, so either can be handed to the trainer as its ``clip`` callable::

    Trainer(..., clip=functools.partial(clip_grad_norm_, max_norm=1.0))

The difference, on the lecture's example gradient ``g = [0.9, 100.0]``:

- by value 1.0, each component is clamped to ``[-1, 1]``: ``[0.9, 1.0]``. The large component
  is cut and the small one is not, so the direction changes: from almost along the second
  axis (0.5 degrees away from it) to 42 degrees away from it (cosine 0.749 with ``g``);
- by norm 1.0, the whole vector is multiplied by ``1 / (‖g‖ + 1e-6)`` with
  ``‖g‖ = 100.00405``: ``[0.00899964, 0.9999595]`` (to the lecture's printed digits). One
  common factor for every component keeps the direction of the gradient and only shortens
  the step.
"""

from __future__ import annotations

import numpy as np

from coursekit._named_arrays import as_named_arrays, vector_norm
from coursekit._validation import check_nonnegative, check_norm_type

__all__ = ["clip_grad_value_", "clip_grad_norm_"]


def clip_grad_value_(grads, clip_value: float) -> None:
    r"""Clamp every gradient component to ``[-clip_value, clip_value]`` in place.

    .. math:: g_i \leftarrow \min(\max(g_i, -c), c)

    Same semantics as ``torch.nn.utils.clip_grad_value_``.

    Parameters
    ----------
    grads : ndarray or dict of str -> ndarray
        Floating-point gradients, modified in place.
    clip_value : float
        :math:`c \ge 0`.

    Examples
    --------
    >>> g = np.array([0.9, 100.0])
    >>> clip_grad_value_(g, 1.0)
    >>> g
    array([0.9, 1. ])
    """
    named, _ = as_named_arrays(grads, "grads")
    c = check_nonnegative(clip_value, "clip_value")
    for g in named.values():
        np.clip(g, -c, c, out=g)


def clip_grad_norm_(
    grads,
    max_norm: float,
    norm_type: float = 2.0,
    eps: float = 1e-6,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    r"""Rescale all gradients together so that their global norm is at most ``max_norm``.

    .. math::

        \|g\|_p = \Big\| \big(\|g^{(1)}\|_p, \dots, \|g^{(K)}\|_p\big) \Big\|_p, \qquad
        g^{(k)} \leftarrow g^{(k)} \cdot \min\Big(1, \frac{m}{\|g\|_p + \epsilon}\Big)

    where :math:`g^{(k)}` are the arrays of ``grads`` and :math:`m` is ``max_norm``: the norm
    of all gradients concatenated into one vector, computed as PyTorch does (the norm of the
    per-array norms; ``norm_type=inf`` gives the largest absolute component). Every array is
    multiplied by the same factor, so the direction of the whole gradient is kept. Same
    semantics as ``torch.nn.utils.clip_grad_norm_`` (whose ``eps`` is fixed at ``1e-6``).

    Parameters
    ----------
    grads : ndarray or dict of str -> ndarray
        Floating-point gradients, modified in place.
    max_norm : float
        :math:`m \ge 0`.
    norm_type : float or "inf"
        The ``p`` of the norm, ``> 0`` or ``inf``.
    eps : float
        Added to the norm before dividing (PyTorch: ``1e-6``).
    error_if_nonfinite : bool
        Raise ``ValueError`` if the total norm is NaN or infinite (instead of scaling by it).

    Returns
    -------
    float
        The total norm **before** clipping (log it: it is the quantity clipping acts on).

    Examples
    --------
    >>> g = np.array([0.9, 100.0])
    >>> round(clip_grad_norm_(g, 1.0), 5)
    100.00405
    >>> g.round(8)  # the lecture prints [0.00899964, 0.9999595] (7 digits)
    array([0.00899964, 0.99995949])
    """
    named, _ = as_named_arrays(grads, "grads")
    max_norm = check_nonnegative(max_norm, "max_norm")
    p = check_norm_type(norm_type)
    eps = check_nonnegative(eps, "eps")
    if not named:
        return 0.0
    total = vector_norm(np.array([vector_norm(g, p) for g in named.values()]), p)
    if error_if_nonfinite and not np.isfinite(total):
        raise ValueError(
            f"the total norm of order {p} of the gradients is {total}; "
            "pass error_if_nonfinite=False to scale by it anyway"
        )
    coef = min(max_norm / (total + eps), 1.0)
    for g in named.values():
        g *= coef
    return total
