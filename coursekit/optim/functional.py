"""One step of each optimizer as a plain function: arrays in, arrays out.

These are the update rules, written once. A lecture or an assignment can read them line by
line; the optimizer classes (:class:`~coursekit.optim.SGD` and friends) call them, so the
two can never disagree. Each function takes the parameter, its gradient and the optimizer's
state arrays for that parameter, and returns the new parameter and the new state arrays::

    p, m, v, _ = adam(p, g, m, v, step=1, lr=1e-3)

By default the inputs are left untouched and new arrays are returned. With
``inplace=True`` the parameter and state arrays are overwritten and returned (the classes
do this); ``grad`` is never modified. The gradient may be any real floating array of the
parameter's shape; the arithmetic keeps the parameter's dtype, and a narrower gradient
(float16 on float64 parameters) is converted to it first (see :func:`effective_grad`).

The rules follow ``torch.optim`` exactly (its single-tensor code path). Hyperparameters are
**not** validated here; the classes validate them. ``step`` is the number of the update
being made, starting at 1.

Every rule is elementwise, which the classes use to run it on cache-sized blocks. For the
same reason each rule works with a single scratch array ``tmp`` and NumPy's ``out=``: a
readable expression such as ``p - lr * m / (np.sqrt(v) + eps)`` would allocate four
parameter-sized temporaries.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["effective_grad", "sgd", "adagrad", "rmsprop", "adam", "adamw"]


def _copies(inplace: bool, *arrays):
    if inplace:
        return arrays
    return tuple(None if a is None else a.copy() for a in arrays)


def effective_grad(
    param: np.ndarray, grad: np.ndarray, weight_decay: float = 0.0, maximize: bool = False
) -> np.ndarray:
    """The gradient the update rules use: ``g = ±grad + weight_decay * param``.

    ``weight_decay`` here is the L2 penalty folded into the gradient (PyTorch's
    ``weight_decay`` for every optimizer but AdamW): the gradient of
    ``(weight_decay / 2) * ||param||^2`` is added. ``maximize=True`` negates ``grad`` first.

    A gradient of a narrower float type than the parameter (float16 or float32 gradients on
    float64 parameters) is first converted to the parameter's dtype, which is exact: the
    rules then square it in the parameter's precision, where float16 would overflow above
    256 (PyTorch's RMSprop and Adagrad promote the same way; its Adam refuses mixed dtypes).
    A wider gradient is left as it is; the results are stored in the parameter's dtype.
    Returns ``grad`` itself when there is nothing to change, otherwise a new array.
    """
    if grad.dtype != param.dtype and np.promote_types(grad.dtype, param.dtype) != grad.dtype:
        grad = grad.astype(param.dtype)
    if weight_decay == 0 and not maximize:
        return grad
    if weight_decay == 0:
        return np.negative(grad, dtype=param.dtype)
    g = np.multiply(param, weight_decay)
    if maximize:
        g -= grad
    else:
        g += grad
    return g


def sgd(
    param,
    grad,
    momentum_buffer=None,
    *,
    lr=1e-3,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
    inplace=False,
):
    r"""One step of SGD with momentum (PyTorch's form); see :class:`coursekit.optim.SGD`.

    .. math::

        g &\leftarrow \nabla + \lambda p \\
        b &\leftarrow g \ \text{(first step)}, \quad
            b \leftarrow \mu b + (1 - \tau) g \ \text{(later)} \\
        d &= g + \mu b \ \text{(nesterov)}, \quad d = b \ \text{(otherwise)} \\
        p &\leftarrow p - \gamma d

    Parameters
    ----------
    param, grad : numpy.ndarray
        The parameter and its gradient (same shape).
    momentum_buffer : numpy.ndarray or None
        ``b`` from the previous step; ``None`` before the first step (or without momentum).

    Returns
    -------
    (param, momentum_buffer)
        ``momentum_buffer`` is ``None`` when ``momentum == 0``.
    """
    param, momentum_buffer = _copies(inplace, param, momentum_buffer)
    g = effective_grad(param, grad, weight_decay, maximize)
    tmp = np.empty_like(param)
    if momentum != 0:
        if momentum_buffer is None:
            # The first step starts the buffer at g, without dampening.
            momentum_buffer = np.array(g, dtype=param.dtype, copy=True)
        else:
            # b ← μ b + (1 − τ) g
            momentum_buffer *= momentum
            np.multiply(g, 1 - dampening, out=tmp)
            momentum_buffer += tmp
        if nesterov:
            # d = g + μ b
            np.multiply(momentum_buffer, momentum, out=tmp)
            tmp += g
            g = tmp
        else:
            g = momentum_buffer
    # p ← p − γ d
    np.multiply(g, lr, out=tmp)
    param -= tmp
    return param, momentum_buffer


def adagrad(
    param,
    grad,
    state_sum,
    *,
    step,
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    eps=1e-10,
    maximize=False,
    inplace=False,
):
    r"""One step of Adagrad (PyTorch's form); see :class:`coursekit.optim.Adagrad`.

    .. math::

        g &\leftarrow \nabla + \lambda p \\
        \tilde\gamma &= \gamma / (1 + (t - 1)\,\eta) \\
        G &\leftarrow G + g^2 \\
        p &\leftarrow p - \tilde\gamma\, g / (\sqrt{G} + \epsilon)

    Returns
    -------
    (param, state_sum)
    """
    param, state_sum = _copies(inplace, param, state_sum)
    g = effective_grad(param, grad, weight_decay, maximize)
    tmp = np.empty_like(param)
    clr = lr / (1 + (step - 1) * lr_decay)
    # G ← G + g²
    np.multiply(g, g, out=tmp)
    state_sum += tmp
    # p ← p − γ̃ g / (√G + ε)
    np.sqrt(state_sum, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= clr
    param -= tmp
    return param, state_sum


def rmsprop(
    param,
    grad,
    square_avg,
    grad_avg=None,
    momentum_buffer=None,
    *,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
    inplace=False,
):
    r"""One step of RMSprop (PyTorch's form); see :class:`coursekit.optim.RMSprop`.

    .. math::

        g &\leftarrow \nabla + \lambda p \\
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g, \quad
            \tilde v = v - \bar g^2 \ \text{(centered)}, \quad \tilde v = v \ \text{(otherwise)} \\
        b &\leftarrow \mu b + g / (\sqrt{\tilde v} + \epsilon), \quad
            p \leftarrow p - \gamma b \ \text{(momentum > 0)} \\
        p &\leftarrow p - \gamma g / (\sqrt{\tilde v} + \epsilon) \ \text{(otherwise)}

    ``grad_avg`` is needed when ``centered``, ``momentum_buffer`` (zeros before the first
    step) when ``momentum > 0``; otherwise pass ``None``.

    Returns
    -------
    (param, square_avg, grad_avg, momentum_buffer)
    """
    param, square_avg, grad_avg, momentum_buffer = _copies(
        inplace, param, square_avg, grad_avg, momentum_buffer
    )
    g = effective_grad(param, grad, weight_decay, maximize)
    tmp = np.empty_like(param)
    # v ← α v + (1 − α) g²
    square_avg *= alpha
    np.multiply(g, g, out=tmp)
    tmp *= 1 - alpha
    square_avg += tmp
    if centered:
        # ḡ ← α ḡ + (1 − α) g, and the denominator uses v − ḡ²
        grad_avg *= alpha
        np.multiply(g, 1 - alpha, out=tmp)
        grad_avg += tmp
        np.multiply(grad_avg, grad_avg, out=tmp)
        np.subtract(square_avg, tmp, out=tmp)
        np.sqrt(tmp, out=tmp)
    else:
        np.sqrt(square_avg, out=tmp)
    tmp += eps
    # tmp = g / (√ṽ + ε)
    np.divide(g, tmp, out=tmp)
    if momentum > 0:
        # b ← μ b + g / (√ṽ + ε);  p ← p − γ b
        momentum_buffer *= momentum
        momentum_buffer += tmp
        np.multiply(momentum_buffer, lr, out=tmp)
    else:
        tmp *= lr
    param -= tmp
    return param, square_avg, grad_avg, momentum_buffer


def adam(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq=None,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    bias_correction=True,
    inplace=False,
):
    r"""One step of Adam (PyTorch's form, ``weight_decay`` as L2); see :class:`coursekit.optim.Adam`.

    .. math::

        g &\leftarrow \nabla + \lambda p \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        v_{max} &\leftarrow \max(v_{max}, v) \ \text{(amsgrad; then used in place of v)} \\
        \hat m &= m / (1 - \beta_1^t), \quad \hat v = v / (1 - \beta_2^t) \\
        p &\leftarrow p - \gamma\, \hat m / (\sqrt{\hat v} + \epsilon)

    ``step`` is ``t``, starting at 1. ``bias_correction=False`` (not in PyTorch) uses
    ``m`` and ``v`` themselves instead of ``m̂`` and ``v̂``. ``max_exp_avg_sq`` (zeros before
    the first step) is needed when ``amsgrad``; otherwise pass ``None``.

    Returns
    -------
    (param, exp_avg, exp_avg_sq, max_exp_avg_sq)
    """
    param, exp_avg, exp_avg_sq, max_exp_avg_sq = _copies(
        inplace, param, exp_avg, exp_avg_sq, max_exp_avg_sq
    )
    g = effective_grad(param, grad, weight_decay, maximize)
    tmp = np.empty_like(param)
    # m ← β1 m + (1 − β1) g
    exp_avg *= beta1
    np.multiply(g, 1 - beta1, out=tmp)
    exp_avg += tmp
    # v ← β2 v + (1 − β2) g²
    exp_avg_sq *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    exp_avg_sq += tmp
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    if bias_correction:
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
    else:
        bias_correction1 = bias_correction2 = 1.0
    # tmp = √v̂ + ε = √v / √(1 − β2^t) + ε
    np.sqrt(second_moment, out=tmp)
    tmp /= math.sqrt(bias_correction2)
    tmp += eps
    # p ← p − γ m̂ / (√v̂ + ε), with m̂ = m / (1 − β1^t)
    np.divide(exp_avg, tmp, out=tmp)
    tmp *= lr / bias_correction1
    param -= tmp
    return param, exp_avg, exp_avg_sq, max_exp_avg_sq


def adamw(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq=None,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=1e-2,
    amsgrad=False,
    maximize=False,
    bias_correction=True,
    inplace=False,
):
    r"""One step of AdamW: decoupled weight decay, then Adam without L2; see :class:`coursekit.optim.AdamW`.

    .. math::

        p &\leftarrow p\,(1 - \gamma \lambda) \\
        p &\leftarrow \text{adam}(p, \nabla; \lambda = 0)

    The decay shrinks the parameter directly; it never enters ``m`` or ``v``.

    Returns
    -------
    (param, exp_avg, exp_avg_sq, max_exp_avg_sq)
    """
    param, exp_avg, exp_avg_sq, max_exp_avg_sq = _copies(
        inplace, param, exp_avg, exp_avg_sq, max_exp_avg_sq
    )
    param *= 1 - lr * weight_decay
    return adam(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        step=step,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=0.0,
        amsgrad=amsgrad,
        maximize=maximize,
        bias_correction=bias_correction,
        inplace=True,
    )
