"""Weight penalties (L2, L1) and max-norm projection.

A penalty is added to the data loss, ``J(w) = L(w) + R(w)``, so its gradient is added to
the data gradient before the optimizer step::

    loss, grads = model.loss(X, y)
    pen, pen_grads = l2_penalty(model.params, 1e-3, keys=lambda name: name.startswith("W"))
    loss += pen
    for name, g in pen_grads.items():
        grads[name] += g

Both penalties accept a single array (and return a single gradient array) or a dict of named
arrays (and return a dict of gradients for the penalized names only). Biases are usually left
out of the penalty: choose the penalized names with ``keys``.

Max-norm regularization is not a penalty but a projection applied after each step:
:func:`max_norm_`.

The helpers at the bottom (``as_named_arrays``, ``check_matching_arrays``, ``copy_arrays``,
``copy_into``) are shared by :mod:`coursekit.clipping`, :mod:`coursekit.averaging` and
:mod:`coursekit.early_stopping`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from coursekit._named_arrays import SINGLE, as_named_arrays, norm_over_axes
from coursekit._validation import check_float_array, check_nonnegative, check_norm_type

__all__ = ["l2_penalty", "l1_penalty", "max_norm_"]

KeySelection = Iterable[str] | Callable[[str], bool] | None


def l2_penalty(params, strength: float, *, keys: KeySelection = None):
    r"""L2 penalty ("weight decay") and its gradient.

    .. math::

        R(w) = \frac{\lambda}{2} \sum_i w_i^2, \qquad \nabla R(w) = \lambda w

    with :math:`\lambda` = ``strength``. With this convention the gradient is exactly what
    ``torch.optim.SGD(weight_decay=λ)`` adds to the gradient, so SGD on ``L + R`` and SGD with
    ``weight_decay=strength`` take identical steps.

    The course material writes the same penalty with other constants; convert as follows:

    - :math:`\frac{\lambda}{2}\sum_l \|\theta_l\|^2` (the regularization slides):
      ``strength = λ``.
    - :math:`\frac{\lambda}{2m}\|w\|_2^2` next to a data loss averaged over ``m`` examples
      (the handwritten notes, gradient :math:`\frac{\lambda}{m} w`): ``strength = λ / m``.
    - :math:`\lambda \sum_i w_i^2` (CS231n-style slides and Keras ``l2(λ)``, gradient
      :math:`2\lambda w`): ``strength = 2 λ``.

    Parameters
    ----------
    params : ndarray or dict of str -> ndarray
        The weights (floating point).
    strength : float
        :math:`\lambda \ge 0`.
    keys : iterable of str or callable, optional
        For a dict: the names to penalize, or a predicate on the name (for example
        ``lambda name: name.startswith("W")`` to leave biases alone). Default: every name.

    Returns
    -------
    value : float
        :math:`R(w)`, summed over the penalized arrays.
    grads : ndarray or dict of str -> ndarray
        :math:`\lambda w`; for a dict, only the penalized names appear.
    """
    strength = _check_strength(strength)
    return _penalty(params, keys, lambda w: 0.5 * strength * np.sum(w * w), lambda w: strength * w)


def l1_penalty(params, strength: float, *, keys: KeySelection = None):
    r"""L1 penalty and a subgradient.

    .. math::

        R(w) = \lambda \sum_i |w_i|, \qquad g(w) = \lambda\,\operatorname{sign}(w)

    with :math:`\operatorname{sign}(0) = 0`. :math:`|w|` has no derivative at 0; any value in
    :math:`[-\lambda, \lambda]` is a valid subgradient there, and 0 is the choice PyTorch's
    autograd makes for ``w.abs().sum()`` (a weight that is exactly zero feels no pull from the
    penalty).

    Keras ``l1(λ)`` and the slides using it have the same :math:`\lambda\sum|w_i|`
    (``strength = λ``). Other slides write :math:`\frac{\lambda}{2}\sum\|\theta\|` but
    update with :math:`\lambda\,\eta\,\theta/|\theta|`, which is this function's gradient
    with ``strength = λ``.

    Parameters and return values are as in :func:`l2_penalty`.
    """
    strength = _check_strength(strength)
    return _penalty(
        params, keys, lambda w: strength * np.sum(np.abs(w)), lambda w: strength * np.sign(w)
    )


def max_norm_(W: np.ndarray, max_norm: float, axis=0, norm_type: float = 2.0) -> np.ndarray:
    r"""Max-norm projection, in place: rescale every unit whose weight norm exceeds ``max_norm``.

    .. math::

        w_j \leftarrow w_j \cdot \frac{r}{\|w_j\|_p + 10^{-7}} \quad \text{if } \|w_j\|_p > r,
        \qquad \text{else unchanged}

    Affine weights are stored ``(fan_in, fan_out)``, so unit ``j``'s incoming weight vector is
    the column ``W[:, j]`` and its norm is taken over ``axis=0`` (the default; Keras'
    ``max_norm(axis=0)`` uses the same convention). This equals
    ``torch.renorm(W, p=norm_type, dim=1, maxnorm=max_norm)``: ``renorm``'s ``dim`` names the
    axis that indexes the units, ``axis`` here names the axes the norm runs over. For PyTorch's
    ``nn.Linear`` weights, stored ``(out, in)``, use ``axis=1``. The :math:`10^{-7}` is
    PyTorch's and Keras' guard; it leaves the projected norms just below ``r``.

    Parameters
    ----------
    W : ndarray
        Floating-point weights, modified in place.
    max_norm : float
        :math:`r \ge 0`.
    axis : int or tuple of int
        Axes the norm is computed over (the fan-in axes); the remaining axes index the units.
    norm_type : float
        The ``p`` of the norm (``> 0`` or ``inf``).

    Returns
    -------
    ndarray
        ``W`` itself.
    """
    check_float_array(W, "W")
    max_norm = check_nonnegative(max_norm, "max_norm")
    p = check_norm_type(norm_type)
    axes = _normalize_axes(axis, W.ndim)
    norms = norm_over_axes(W, p, axes)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    W *= scale.astype(W.dtype, copy=False)
    return W


# -- helpers ----------------------------------------------------------------------------------


def _check_strength(strength) -> float:
    strength = check_nonnegative(strength, "strength")  # NaN refused here
    if np.isinf(strength):
        raise ValueError("strength must be finite, got inf (the penalty would be inf or NaN)")
    return strength


def _normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis must be in [{-ndim}, {ndim}) for a {ndim}-D W, got {a}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis must not repeat an axis, got {axis!r}")
    return tuple(out)


def _penalty(params, keys, value_fn, grad_fn):
    named, single = as_named_arrays(params, "params")
    selected = _select(named, keys)
    value = float(sum(value_fn(named[k]) for k in selected))
    grads = {k: grad_fn(named[k]) for k in selected}
    return (value, grads[SINGLE]) if single else (value, grads)


def _select(named: Mapping[str, np.ndarray], keys: KeySelection) -> list[str]:
    if keys is None:
        return list(named)
    if callable(keys):
        return [k for k in named if keys(k)]
    if isinstance(keys, str):
        raise TypeError(
            f"keys must be an iterable of names or a predicate, got the string {keys!r}"
        )
    wanted = list(keys)
    unknown = sorted(set(wanted) - set(named))
    if unknown:
        raise ValueError(f"keys names {unknown}, which are not in params (it has {sorted(named)})")
    return [k for k in named if k in set(wanted)]
