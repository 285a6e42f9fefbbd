"""Grading tasks of assignment A3: one-step optimizer rules and learning-rate schedules.

Students write each optimizer as a function ``rule(param, grad, state, **hyperparams) ->
(param, state)`` with PyTorch's semantics, where ``state`` is a dict that starts empty and
holds what the rule carries from one step to the next (as ``torch.optim``'s per-parameter
``state``). A rule is graded on a *trajectory*: from a seeded starting point it takes several
steps on a noisy quadratic bowl, each gradient evaluated at the current parameter, and the
parameters after every step are compared with :mod:`coursekit.optim.functional`'s rule.
Only the parameters are compared, so any layout of ``state`` is accepted.
"""

from __future__ import annotations

import math

import numpy as np

from coursekit import schedules
from coursekit.grading.core import Case, Mistake, Task, register
from coursekit.optim import functional as F


# -- references in the students' signature ------------------------------------------------
def sgd(param, grad, state, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    p, buf = F.sgd(
        param,
        grad,
        state.get("momentum_buffer"),
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        nesterov=nesterov,
    )
    return p, {"momentum_buffer": buf}


def adagrad(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    step = state.get("step", 0) + 1
    total = state.get("sum", np.zeros_like(param))
    p, total = F.adagrad(param, grad, total, step=step, lr=lr, weight_decay=weight_decay, eps=eps)
    return p, {"step": step, "sum": total}


def rmsprop(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    square_avg = state.get("square_avg", np.zeros_like(param))
    p, square_avg, _, _ = F.rmsprop(
        param, grad, square_avg, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay
    )
    return p, {"square_avg": square_avg}


def _adam_like(rule, param, grad, state, *, lr, betas, eps, weight_decay, **extra):
    step = state.get("step", 0) + 1
    m = state.get("exp_avg", np.zeros_like(param))
    v = state.get("exp_avg_sq", np.zeros_like(param))
    p, m, v, _ = rule(
        param,
        grad,
        m,
        v,
        step=step,
        lr=lr,
        beta1=betas[0],
        beta2=betas[1],
        eps=eps,
        weight_decay=weight_decay,
        **extra,
    )
    return p, {"step": step, "exp_avg": m, "exp_avg_sq": v}


def adam(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    return _adam_like(
        F.adam, param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )


def adamw(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return _adam_like(
        F.adamw, param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )


# -- cases: trajectories on a noisy quadratic bowl ----------------------------------------
def _trajectory_case(rng, label, shape, steps, hyper, *, grad_scale=1.0):
    start = rng.standard_normal(shape)
    curvature = rng.uniform(0.2, 3.0, shape) * grad_scale
    noise = rng.standard_normal((steps, *shape)) * grad_scale
    return Case(label, (start, curvature, noise), dict(hyper))


# Tolerance of every rule (rtol 1e-9, atol 1e-12): equivalent spellings of one step
# ((1 - b) * g vs g - b * g, sqrt(v / (1 - b2^t)) vs sqrt(v) / sqrt(1 - b2^t), in-place or
# not) differ by a few eps, and 20 steps on the bowl amplify that to about 1e-13; a float32
# rule (6e-8) or a wrong constant fails.
def _run_trajectory(fn, case: Case):
    """Take ``len(noise)`` steps; gradient ``curvature * param + noise[t]`` at the current param.

    Like a training loop that keeps one gradient array per parameter, every step's gradient
    is written into the SAME array: a rule that keeps ``grad`` itself in its state (a
    momentum buffer that aliases the gradient instead of copying it) sees it overwritten.
    """
    start, curvature, noise = case.args
    param, state = start.copy(), {}
    grad = np.empty_like(start)
    trajectory = []
    for t in range(noise.shape[0]):
        grad[...] = curvature * param + noise[t]
        param, state = fn(param, grad, state, **case.kwargs)
        trajectory.append(np.array(param, dtype=np.float64, copy=True))
    return np.stack(trajectory)


def _cases(specs):
    def make(rng: np.random.Generator) -> list[Case]:
        return [
            _trajectory_case(rng, *spec[:4], **(spec[4] if len(spec) > 4 else {})) for spec in specs
        ]

    return make


_SGD_CASES = _cases(
    [
        ("one step (t = 1)", (4,), 1, {"lr": 0.1, "momentum": 0.9}),
        ("vector, 12 steps", (7,), 12, {"lr": 0.05, "momentum": 0.9}),
        (
            "matrix, momentum 0.5, weight decay 0.1",
            (3, 4),
            8,
            {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1},
        ),
        ("single parameter, 20 steps", (1,), 20, {"lr": 0.02, "momentum": 0.99}),
        ("large gradients", (5,), 6, {"lr": 1e-4, "momentum": 0.9}, {"grad_scale": 1e3}),
        (
            "momentum 0 (plain SGD), weight decay 1",
            (5,),
            6,
            {"lr": 0.1, "momentum": 0.0, "weight_decay": 1.0},
        ),
    ]
)
_NESTEROV_CASES = _cases(
    [
        ("one step (t = 1)", (4,), 1, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ("vector, 12 steps", (6,), 12, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        (
            "matrix, weight decay 0.05",
            (2, 5),
            8,
            {"lr": 0.1, "momentum": 0.7, "weight_decay": 0.05, "nesterov": True},
        ),
        ("single parameter", (1,), 15, {"lr": 0.02, "momentum": 0.95, "nesterov": True}),
        (
            "weight decay 1",
            (3,),
            6,
            {"lr": 0.05, "momentum": 0.9, "weight_decay": 1.0, "nesterov": True},
        ),
    ]
)
_ADAGRAD_CASES = _cases(
    [
        ("one step (t = 1)", (5,), 1, {"lr": 0.1}),
        ("vector, 12 steps", (8,), 12, {"lr": 0.5}),
        ("matrix, weight decay 0.1", (3, 3), 8, {"lr": 0.3, "weight_decay": 0.1}),
        ("tiny gradients, eps 1e-3", (6,), 5, {"lr": 0.1, "eps": 1e-3}, {"grad_scale": 1e-4}),
        ("large gradients", (4,), 6, {"lr": 0.1}, {"grad_scale": 1e4}),
        ("weight decay 1", (4,), 6, {"lr": 0.1, "weight_decay": 1.0}),
    ]
)
_RMSPROP_CASES = _cases(
    [
        ("one step (t = 1)", (5,), 1, {"lr": 0.01}),
        ("vector, 12 steps, alpha 0.9", (8,), 12, {"lr": 0.05, "alpha": 0.9}),
        ("matrix, weight decay 0.1", (3, 3), 8, {"lr": 0.01, "weight_decay": 0.1}),
        ("tiny gradients, eps 1e-3", (6,), 5, {"lr": 0.01, "eps": 1e-3}, {"grad_scale": 1e-4}),
        ("large gradients", (4,), 6, {"lr": 0.01, "alpha": 0.5}, {"grad_scale": 1e4}),
        ("weight decay 1", (4,), 6, {"lr": 0.01, "weight_decay": 1.0}),
    ]
)
_ADAM_CASES = _cases(
    [
        ("one step (t = 1)", (5,), 1, {"lr": 0.1}),
        ("vector, 15 steps", (8,), 15, {"lr": 0.05}),
        (
            "matrix, betas (0.5, 0.9), weight decay 0.1",
            (3, 3),
            8,
            {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.1},
        ),
        ("tiny gradients, eps 1e-3", (6,), 5, {"lr": 0.01, "eps": 1e-3}, {"grad_scale": 1e-4}),
        ("large gradients", (4,), 6, {"lr": 0.01}, {"grad_scale": 1e4}),
        ("weight decay 1", (4,), 6, {"lr": 0.05, "weight_decay": 1.0}),
    ]
)
_ADAMW_CASES = _cases(
    [
        ("one step (t = 1)", (5,), 1, {"lr": 0.1, "weight_decay": 0.5}),
        ("vector, 15 steps, default decay", (8,), 15, {"lr": 0.05}),
        (
            "matrix, betas (0.5, 0.9), decay 0.3",
            (3, 3),
            8,
            {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.3},
        ),
        (
            "large gradients, decay 0.2",
            (4,),
            6,
            {"lr": 0.01, "weight_decay": 0.2},
            {"grad_scale": 1e4},
        ),
        (
            "tiny gradients, eps 1e-3",
            (6,),
            5,
            {"lr": 0.01, "eps": 1e-3, "weight_decay": 0.1},
            {"grad_scale": 1e-4},
        ),
    ]
)


# -- known mistakes -----------------------------------------------------------------------
def _sgd_ema_momentum(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    g = grad + weight_decay * param
    buf = state.get("momentum_buffer")
    buf = (1 - momentum) * g if buf is None else momentum * buf + (1 - momentum) * g
    d = g + momentum * buf if nesterov else buf
    return param - lr * d, {"momentum_buffer": buf}


def _sgd_no_memory(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    return sgd(
        param, grad, {}, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )


def _sgd_ascent(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    p, new_state = sgd(
        param, grad, state, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )
    return 2 * param - p, new_state


def _sgd_decay_after_momentum(
    param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False
):
    p, new_state = sgd(param, grad, state, lr=lr, momentum=momentum, nesterov=nesterov)
    return p - lr * weight_decay * param, new_state


def _nesterov_ignored(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    return sgd(param, grad, state, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _nesterov_terms_swapped(
    param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False
):
    g = grad + weight_decay * param
    buf = state.get("momentum_buffer")
    buf = g.copy() if buf is None else momentum * buf + g
    d = buf + momentum * g if nesterov else buf
    return param - lr * d, {"momentum_buffer": buf}


def _nesterov_always(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    return sgd(
        param, grad, state, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True
    )


def _sgd_decay_ignored(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    return sgd(param, grad, state, lr=lr, momentum=momentum, nesterov=nesterov)


def _sgd_decay_sign(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    return sgd(
        param, grad, state, lr=lr, momentum=momentum, weight_decay=-weight_decay, nesterov=nesterov
    )


def _sgd_decay_without_param(
    param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False
):
    return sgd(param, grad + weight_decay, state, lr=lr, momentum=momentum, nesterov=nesterov)


def _sgd_buffer_sign(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    g = grad + weight_decay * param
    buf = state.get("momentum_buffer")
    buf = g.copy() if buf is None else g - momentum * buf
    d = g + momentum * buf if nesterov else buf
    return param - lr * d, {"momentum_buffer": buf}


def _nesterov_old_buffer(param, grad, state, *, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    g = grad + weight_decay * param
    old = state.get("momentum_buffer")
    buf = g.copy() if old is None else momentum * old + g
    d = g + momentum * (np.zeros_like(g) if old is None else old) if nesterov else buf
    return param - lr * d, {"momentum_buffer": buf}


_MOMENTUM_MISTAKES = (
    Mistake(
        "matches momentum written as an exponential moving average, b = μ·b + (1 − μ)·g: "
        "PyTorch's SGD accumulates b = μ·b + g (no (1 − μ) factor on the gradient).",
        _sgd_ema_momentum,
    ),
    Mistake(
        "matches plain SGD: the momentum buffer is not carried from one step to the next. "
        "Store it in state and return that state.",
        _sgd_no_memory,
    ),
    Mistake("the parameters move uphill: subtract lr times the update.", _sgd_ascent),
    Mistake(
        "weight decay was applied to the parameter after the momentum step: PyTorch adds "
        "weight_decay * param to the gradient *before* it enters the momentum buffer.",
        _sgd_decay_after_momentum,
    ),
    Mistake(
        "matches SGD without weight decay: weight_decay was accepted but never used; add "
        "weight_decay * param to the gradient.",
        _sgd_decay_ignored,
    ),
    Mistake(
        "matches subtracting weight_decay * param from the gradient: the L2 term ADDS it, "
        "g = grad + weight_decay * param.",
        _sgd_decay_sign,
    ),
    Mistake(
        "matches adding weight_decay itself to the gradient: the L2 term is weight_decay * "
        "param (it pulls each weight toward 0 in proportion to its size).",
        _sgd_decay_without_param,
    ),
    Mistake(
        "matches a buffer that SUBTRACTS the old one, b = g − μ·b: momentum adds it, b = μ·b + g.",
        _sgd_buffer_sign,
    ),
)


def _adagrad_no_sqrt(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    g = grad + weight_decay * param
    total = state.get("sum", 0.0) + g * g
    return param - lr * g / (total + eps), {"sum": total}


def _adagrad_no_memory(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    return adagrad(param, grad, {}, lr=lr, weight_decay=weight_decay, eps=eps)


def _adagrad_eps_inside(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    g = grad + weight_decay * param
    total = state.get("sum", 0.0) + g * g
    return param - lr * g / np.sqrt(total + eps), {"sum": total}


def _adagrad_decay_ignored(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    return adagrad(param, grad, state, lr=lr, eps=eps)


def _rmsprop_decay_ignored(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    return rmsprop(param, grad, state, lr=lr, alpha=alpha, eps=eps)


def _rmsprop_no_memory(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    return rmsprop(param, grad, {}, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)


def _adagrad_abs(param, grad, state, *, lr=1e-2, weight_decay=0.0, eps=1e-10):
    g = grad + weight_decay * param
    total = state.get("sum", 0.0) + np.abs(g)
    return param - lr * g / (np.sqrt(total) + eps), {"sum": total}


def _rmsprop_abs(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = alpha * state.get("square_avg", 0.0) + (1 - alpha) * np.abs(g)
    return param - lr * g / (np.sqrt(v) + eps), {"square_avg": v}


def _rmsprop_unsquared(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g
    return param - lr * g / (np.sqrt(v) + eps), {"square_avg": v}


def _rmsprop_eps_inside(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
    return param - lr * g / np.sqrt(v + eps), {"square_avg": v}


def _rmsprop_no_sqrt(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
    return param - lr * g / (v + eps), {"square_avg": v}


def _rmsprop_swapped_alpha(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = (1 - alpha) * state.get("square_avg", 0.0) + alpha * g * g
    return param - lr * g / (np.sqrt(v) + eps), {"square_avg": v}


def _rmsprop_no_leak(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    g = grad + weight_decay * param
    v = state.get("square_avg", 0.0) + (1 - alpha) * g * g
    return param - lr * g / (np.sqrt(v) + eps), {"square_avg": v}


def _adam_variant(
    *,
    correct_m=True,
    correct_v=True,
    shift=0,
    decoupled=False,
    eps_inside=False,
    swap_betas=False,
    first_step_only=False,
    fixed_eps=None,
    v_without_1_minus_beta2=False,
    no_sqrt=False,
    store_corrected=False,
    no_power=False,
    v_unsquared=False,
):
    def rule(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas[::-1] if swap_betas else betas
        eps = eps if fixed_eps is None else fixed_eps
        t = 1 if first_step_only else state.get("step", 0) + 1
        if decoupled:
            param = param * (1 - lr * weight_decay)
            g = grad
        else:
            g = grad + weight_decay * param
        m = b1 * state.get("exp_avg", 0.0) + (1 - b1) * g
        g2 = g if v_unsquared else g * g
        v = b2 * state.get("exp_avg_sq", 0.0) + (1.0 if v_without_1_minus_beta2 else 1 - b2) * g2
        m_hat = m / (1 - b1 ** (1 if no_power else t + shift)) if correct_m else m
        v_hat = v / (1 - b2 ** (1 if no_power else t + shift)) if correct_v else v
        if no_sqrt:
            denom = v_hat + eps
        else:
            denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        if store_corrected:
            m, v = m_hat, v_hat
        return param - lr * m_hat / denom, {"step": t, "exp_avg": m, "exp_avg_sq": v}

    return rule


def _adamw_decay_on_grad(
    param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    return adam(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _adamw_decay_without_lr(
    param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    p, new_state = adam(param, grad, state, lr=lr, betas=betas, eps=eps)
    return p - weight_decay * param, new_state


def _adamw_subtracts_constant(
    param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    return adam(param - lr * weight_decay, grad, state, lr=lr, betas=betas, eps=eps)


def _adamw_decay_twice(
    param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    return adam(
        param * (1 - lr * weight_decay),
        grad,
        state,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
    )


def _adamw_decay_after_step(
    param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    p, new_state = adam(param, grad, state, lr=lr, betas=betas, eps=eps)
    return p * (1 - lr * weight_decay), new_state


_ADAM_COMMON_MISTAKES = (
    Mistake(
        "matches Adam without bias correction: m and v start at zero, so early on they are "
        "too small; divide them by (1 − β1^t) and (1 − β2^t).",
        _adam_variant(correct_m=False, correct_v=False),
    ),
    Mistake(
        "matches Adam with the bias correction of m only: v needs its own, 1 − β2^t.",
        _adam_variant(correct_v=False),
    ),
    Mistake(
        "matches Adam with the bias correction of v only: m needs its own, 1 − β1^t.",
        _adam_variant(correct_m=False),
    ),
    Mistake(
        "matches Adam with the step counter off by one: t is the number of the update being "
        "made, 1 on the first call (increment it before using it).",
        _adam_variant(shift=1),
    ),
    Mistake(
        "matches Adam with the step counter off by one: t is the number of the update being "
        "made, 1 on the first call (increment it before using it).",
        _adam_variant(shift=-1),
    ),
    Mistake(
        "eps was added inside the square root: PyTorch divides by sqrt(v_hat) + eps.",
        _adam_variant(eps_inside=True),
    ),
    Mistake(
        "matches Adam with β1 and β2 swapped: betas = (β1, β2) = (decay of m, decay of v).",
        _adam_variant(swap_betas=True),
    ),
    Mistake(
        "matches a step counter that stays at 1: store t in state and increment it at every "
        "call, or the bias correction never fades.",
        _adam_variant(first_step_only=True),
    ),
    Mistake(
        "matches eps = 1e-8 whatever eps is passed: use the argument eps.",
        _adam_variant(fixed_eps=1e-8),
    ),
    Mistake(
        "matches a bias correction without the power t, m / (1 − β1) and v / (1 − β2): "
        "divide by (1 − β1^t) and (1 − β2^t), t the number of this step.",
        _adam_variant(no_power=True),
    ),
    Mistake(
        "matches v averaging g instead of g**2 (NaN once it turns negative): the second "
        "moment is a running average of SQUARED gradients.",
        _adam_variant(v_unsquared=True),
    ),
    Mistake(
        "matches v = β2·v + g² without the factor (1 − β2) on the new squared gradient.",
        _adam_variant(v_without_1_minus_beta2=True),
    ),
    Mistake(
        "matches dividing by v_hat + eps: divide by its square root, sqrt(v_hat) + eps.",
        _adam_variant(no_sqrt=True),
    ),
    Mistake(
        "matches storing the bias-CORRECTED m_hat and v_hat in state: keep the raw averages m "
        "and v there; the correction is applied anew at every step.",
        _adam_variant(store_corrected=True),
    ),
)

register(
    Task(
        name="a3.sgd_momentum",
        reference=sgd,
        cases=_SGD_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="SGD with momentum (PyTorch form)",
        mistakes=(
            *_MOMENTUM_MISTAKES,
            Mistake(
                "matches the Nesterov step with nesterov=False: step along the buffer b "
                "unless nesterov is True.",
                _nesterov_always,
            ),
        ),
        library_functions=("coursekit.optim.functional.sgd", "coursekit.optim.SGD"),
    )
)
register(
    Task(
        name="a3.nesterov",
        reference=sgd,
        cases=_NESTEROV_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="SGD with Nesterov momentum (PyTorch form)",
        mistakes=(
            Mistake(
                "matches plain momentum: with nesterov=True the step uses g + μ·b (the "
                "gradient plus the *new* buffer scaled by μ), not b.",
                _nesterov_ignored,
            ),
            Mistake(
                "matches stepping along b + μ·g: Nesterov's step is g + μ·b (the gradient plus "
                "μ times the new buffer).",
                _nesterov_terms_swapped,
            ),
            Mistake(
                "matches a Nesterov step with the buffer from BEFORE this step: update the "
                "buffer first, then step along g + μ·b with the new b.",
                _nesterov_old_buffer,
            ),
            *_MOMENTUM_MISTAKES,
        ),
        library_functions=("coursekit.optim.functional.sgd", "coursekit.optim.SGD"),
    )
)
register(
    Task(
        name="a3.adagrad",
        reference=adagrad,
        cases=_ADAGRAD_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="AdaGrad",
        mistakes=(
            Mistake(
                "the step divides by the sum of squared gradients itself: divide by its "
                "square root (plus eps).",
                _adagrad_no_sqrt,
            ),
            Mistake(
                "the sum of squared gradients restarts at every step: keep it in state.",
                _adagrad_no_memory,
            ),
            Mistake(
                "eps was added inside the square root: use sqrt(sum) + eps.", _adagrad_eps_inside
            ),
            Mistake(
                "matches AdaGrad without weight decay: weight_decay was accepted but never "
                "used; add weight_decay * param to the gradient.",
                _adagrad_decay_ignored,
            ),
            Mistake(
                "matches accumulating |g| instead of g**2: AdaGrad sums squared gradients and "
                "divides by the square root of that sum.",
                _adagrad_abs,
            ),
        ),
        library_functions=("coursekit.optim.functional.adagrad", "coursekit.optim.Adagrad"),
    )
)
register(
    Task(
        name="a3.rmsprop",
        reference=rmsprop,
        cases=_RMSPROP_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="RMSProp",
        mistakes=(
            Mistake(
                "matches RMSProp without the square root: divide by sqrt(square_avg) + eps.",
                _rmsprop_no_sqrt,
            ),
            Mistake(
                "alpha weights the new squared gradient: it is the decay of the *old* average, "
                "square_avg = alpha * square_avg + (1 - alpha) * g**2.",
                _rmsprop_swapped_alpha,
            ),
            Mistake(
                "the squared gradients are summed without decaying the old average (that is "
                "AdaGrad's accumulation): multiply the old average by alpha.",
                _rmsprop_no_leak,
            ),
            Mistake(
                "the average of squared gradients restarts at every step: keep it in state "
                "and return that state.",
                _rmsprop_no_memory,
            ),
            Mistake(
                "matches RMSProp without weight decay: weight_decay was accepted but never "
                "used; add weight_decay * param to the gradient.",
                _rmsprop_decay_ignored,
            ),
            Mistake(
                "matches averaging |g| instead of g**2: RMSProp keeps a running average of "
                "SQUARED gradients and divides by its square root.",
                _rmsprop_abs,
            ),
            Mistake(
                "matches averaging g instead of g**2 (NaN once the average turns negative): "
                "RMSProp averages SQUARED gradients.",
                _rmsprop_unsquared,
            ),
            Mistake(
                "eps was added inside the square root: use sqrt(square_avg) + eps.",
                _rmsprop_eps_inside,
            ),
        ),
        library_functions=("coursekit.optim.functional.rmsprop", "coursekit.optim.RMSprop"),
    )
)
register(
    Task(
        name="a3.adam",
        reference=adam,
        cases=_ADAM_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="Adam (weight_decay as an L2 term added to the gradient)",
        mistakes=(
            *_ADAM_COMMON_MISTAKES,
            Mistake(
                "weight decay was applied AdamW-style, to the parameter: in Adam (as in "
                "torch.optim.Adam) weight_decay * param is added to the gradient.",
                _adam_variant(decoupled=True),
            ),
        ),
        library_functions=("coursekit.optim.functional.adam", "coursekit.optim.Adam"),
    )
)
register(
    Task(
        name="a3.adamw",
        reference=adamw,
        cases=_ADAMW_CASES,
        run=_run_trajectory,
        rtol=1e-9,
        atol=1e-12,
        description="AdamW (decoupled weight decay)",
        mistakes=(
            Mistake(
                "matches Adam with L2: the decay was added to the gradient, where m and v "
                "rescale it. AdamW shrinks the parameter directly, param * (1 - lr * weight_decay).",
                _adamw_decay_on_grad,
            ),
            Mistake(
                "the decay is not scaled by the learning rate: shrink by (1 - lr * weight_decay).",
                _adamw_decay_without_lr,
            ),
            Mistake(
                "the decay was applied after the Adam step: PyTorch shrinks the parameter "
                "first, then takes the Adam step.",
                _adamw_decay_after_step,
            ),
            Mistake(
                "matches subtracting lr * weight_decay from every weight: the decay is "
                "proportional to the weight, param * (1 - lr * weight_decay).",
                _adamw_subtracts_constant,
            ),
            Mistake(
                "the weights are decayed twice: shrinking by (1 - lr * weight_decay) AND adding "
                "weight_decay * param to the gradient; AdamW does only the first.",
                _adamw_decay_twice,
            ),
            *_ADAM_COMMON_MISTAKES,
        ),
        library_functions=("coursekit.optim.functional.adamw", "coursekit.optim.AdamW"),
    )
)


# -- learning-rate schedules --------------------------------------------------------------
def warmup_cosine_lr(step, base_lr, warmup_steps, T_max, eta_min=0.0):
    def cosine(t):
        return schedules.cosine_annealing_lr(t, base_lr, T_max, eta_min)

    return schedules.warmup(cosine, warmup_steps)(step)


def _schedule_cases(specs):
    def make(rng: np.random.Generator) -> list[Case]:
        del rng  # the schedules are deterministic; the cases are the interesting settings
        return [Case(label, (steps,), dict(kwargs)) for label, steps, kwargs in specs]

    return make


def _run_schedule(fn, case: Case):
    """The learning rate at steps 0, 1, ..., steps - 1."""
    (steps,) = case.args
    return np.array([float(fn(t, **case.kwargs)) for t in range(steps)])


def _step_lr_continuous(step, base_lr, step_size, gamma=0.1):
    return base_lr * gamma ** (step / step_size)


def _step_lr_fixed_gamma(step, base_lr, step_size, gamma=0.1):
    return base_lr * 0.1 ** (step // step_size)


def _step_lr_early(step, base_lr, step_size, gamma=0.1):
    return base_lr * gamma ** ((step + 1) // step_size)


def _cosine_no_half(step, base_lr, T_max, eta_min=0.0):
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max))


def _cosine_without_pi(step, base_lr, T_max, eta_min=0.0):
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(step / T_max))


def _cosine_ignores_eta_min(step, base_lr, T_max, eta_min=0.0):
    return 0.5 * base_lr * (1 + math.cos(math.pi * step / T_max))


def _warmup_not_shifted(step, base_lr, warmup_steps, T_max, eta_min=0.0):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    return schedules.cosine_annealing_lr(step, base_lr, T_max, eta_min)


def _warmup_ramp_early(step, base_lr, warmup_steps, T_max, eta_min=0.0):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return schedules.cosine_annealing_lr(step - warmup_steps, base_lr, T_max, eta_min)


register(
    Task(
        name="a3.step_lr",
        reference=schedules.step_lr,
        cases=_schedule_cases(
            [
                ("ResNet-style, 100 steps", 100, {"base_lr": 0.1, "step_size": 30}),
                ("decay every step", 10, {"base_lr": 1.0, "step_size": 1, "gamma": 0.5}),
                ("gamma 0.9", 40, {"base_lr": 0.05, "step_size": 7, "gamma": 0.9}),
            ]
        ),
        run=_run_schedule,
        rtol=1e-12,
        atol=1e-15,
        description="step decay",
        mistakes=(
            Mistake(
                "the rate decays a little at every step: it should stay constant for step_size "
                "steps and then drop (integer division, step // step_size).",
                _step_lr_continuous,
            ),
            Mistake(
                "each drop happens one step early: the first drop is at step == step_size.",
                _step_lr_early,
            ),
            Mistake(
                "the rate drops by 0.1 whatever gamma is: multiply by the argument gamma.",
                _step_lr_fixed_gamma,
            ),
            Mistake(
                "the rate is multiplied by gamma at EVERY step: it drops only every step_size "
                "steps, base_lr * gamma ** (step // step_size).",
                lambda step, base_lr, step_size, gamma=0.1: base_lr * gamma**step,
            ),
        ),
        library_functions=("coursekit.schedules.step_lr", "coursekit.schedules.StepLR"),
    )
)
register(
    Task(
        name="a3.cosine_annealing_lr",
        reference=schedules.cosine_annealing_lr,
        cases=_schedule_cases(
            [
                ("100 steps to 0", 101, {"base_lr": 0.1, "T_max": 100}),
                ("eta_min 0.1, past T_max", 25, {"base_lr": 1.0, "T_max": 10, "eta_min": 0.1}),
                ("T_max = 1", 3, {"base_lr": 0.3, "T_max": 1}),
            ]
        ),
        run=_run_schedule,
        rtol=1e-12,
        atol=1e-15,
        description="cosine annealing",
        mistakes=(
            Mistake(
                "the curve starts at 2 * base_lr: the cosine term needs a factor 1/2.",
                _cosine_no_half,
            ),
            Mistake(
                "the cosine's argument is missing pi: it must reach pi at step T_max.",
                _cosine_without_pi,
            ),
            Mistake(
                "the curve ignores eta_min: it runs from base_lr down to eta_min.",
                _cosine_ignores_eta_min,
            ),
            Mistake(
                "matches the cosine without the + 1: (1 + cos(pi * step / T_max)) / 2 runs from "
                "1 to 0; cos alone runs from 1 to -1.",
                lambda step, base_lr, T_max, eta_min=0.0: (
                    eta_min + 0.5 * (base_lr - eta_min) * math.cos(math.pi * step / T_max)
                ),
            ),
            Mistake(
                "the curve rises from eta_min to base_lr: it falls, eta_min + (base_lr - eta_min) "
                "* (1 + cos(pi * step / T_max)) / 2.",
                lambda step, base_lr, T_max, eta_min=0.0: (
                    eta_min + 0.5 * (base_lr - eta_min) * (1 - math.cos(math.pi * step / T_max))
                ),
            ),
        ),
        library_functions=(
            "coursekit.schedules.cosine_annealing_lr",
            "coursekit.schedules.CosineAnnealingLR",
        ),
    )
)
register(
    Task(
        name="a3.warmup_cosine_lr",
        reference=warmup_cosine_lr,
        cases=_schedule_cases(
            [
                ("warmup 4, cosine 10", 20, {"base_lr": 1.0, "warmup_steps": 4, "T_max": 10}),
                (
                    "warmup 1, eta_min 0.01",
                    8,
                    {"base_lr": 0.1, "warmup_steps": 1, "T_max": 5, "eta_min": 0.01},
                ),
                ("no warmup", 6, {"base_lr": 0.5, "warmup_steps": 0, "T_max": 5}),
                # Ramp values 0.1, 0.2 are not exact in float32 (those of base_lr 1 are).
                ("warmup 3 to 0.3", 10, {"base_lr": 0.3, "warmup_steps": 3, "T_max": 6}),
            ]
        ),
        run=_run_schedule,
        rtol=1e-12,
        atol=1e-15,
        description="linear warmup followed by cosine annealing",
        mistakes=(
            Mistake(
                "after the warmup the cosine continues from step warmup_steps instead of "
                "starting from its own step 0 (use step - warmup_steps).",
                _warmup_not_shifted,
            ),
            Mistake(
                "the ramp is one step ahead: it starts at 0 at step 0 and reaches base_lr at "
                "step warmup_steps.",
                _warmup_ramp_early,
            ),
            Mistake(
                "there is no warmup: for step < warmup_steps the rate ramps linearly from 0, "
                "base_lr * step / warmup_steps.",
                lambda step, base_lr, warmup_steps, T_max, eta_min=0.0: (
                    schedules.cosine_annealing_lr(
                        max(step - warmup_steps, 0), base_lr, T_max, eta_min
                    )
                ),
            ),
        ),
        library_functions=("coursekit.schedules.warmup", "coursekit.schedules.WarmupLR"),
    )
)
