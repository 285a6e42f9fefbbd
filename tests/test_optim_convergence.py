"""Every optimizer converges on an ill-conditioned quadratic and on Rosenbrock's function.

The table states, per optimizer and problem, the hyperparameters, the step budget and the
distance to the minimizer that must be reached. The numbers are tuned honestly: each
budget is roughly 1.5x what the run needs, and each tolerance is the accuracy the method
reaches there, not a loose bound (plain RMSprop, for example, ends in an oscillation of
about its learning rate, so its tolerance is that). AdamW's decoupled decay pulls towards 0
and leaves it about ``3 * weight_decay`` (here ~3e-3) away from the minimizer, which its
tolerance says. Centered RMSprop reaches machine precision, then divides round-off by the round-off left
in ``v - g_avg**2`` and is kicked back out by up to about its learning rate; its tolerance
allows for that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coursekit.optim import SGD, Adagrad, Adam, AdamW, RMSprop

# f(x) = 1/2 (x - x*)' A (x - x*), A with eigenvalues 1 and 100 (condition number 100),
# its axes rotated by 30 degrees so no optimizer gets them for free.
_THETA = math.radians(30)
_ROT = np.array([[math.cos(_THETA), -math.sin(_THETA)], [math.sin(_THETA), math.cos(_THETA)]])
QUAD_A = _ROT @ np.diag([1.0, 100.0]) @ _ROT.T
QUAD_MIN = np.array([1.0, 0.5])
QUAD_START = QUAD_MIN + np.array([2.0, -1.5])


def quadratic_grad(x):
    return QUAD_A @ (x - QUAD_MIN)


# Rosenbrock: f(a, b) = (1 - a)^2 + 100 (b - a^2)^2, minimum at (1, 1), classic start.
ROSEN_MIN = np.array([1.0, 1.0])
ROSEN_START = np.array([-1.2, 1.0])


def rosenbrock_grad(x):
    a, b = x
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


PROBLEMS = {
    "quadratic": (quadratic_grad, QUAD_START, QUAD_MIN),
    "rosenbrock": (rosenbrock_grad, ROSEN_START, ROSEN_MIN),
}

# (label, class, hyperparameters, problem, steps, tolerance on ||x - x*||)
TABLE = [
    ("sgd", SGD, {"lr": 0.019}, "quadratic", 1000, 1e-6),
    ("sgd-momentum", SGD, {"lr": 0.01, "momentum": 0.9}, "quadratic", 400, 1e-6),
    ("sgd-nesterov", SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}, "quadratic", 350, 1e-6),
    ("adagrad", Adagrad, {"lr": 2.0}, "quadratic", 1300, 1e-6),
    ("rmsprop", RMSprop, {"lr": 0.005}, "quadratic", 2500, 1e-2),
    (
        "rmsprop-centered-momentum",
        RMSprop,
        {"lr": 0.001, "momentum": 0.9, "centered": True},
        "quadratic",
        1800,
        1e-3,
    ),
    ("adam", Adam, {"lr": 0.1}, "quadratic", 2000, 1e-6),
    ("adam-amsgrad", Adam, {"lr": 0.1, "amsgrad": True}, "quadratic", 2750, 1e-6),
    ("adamw", AdamW, {"lr": 0.1, "weight_decay": 1e-3}, "quadratic", 1500, 1e-2),
    ("sgd", SGD, {"lr": 0.002}, "rosenbrock", 8000, 1e-2),
    ("sgd-momentum", SGD, {"lr": 0.001, "momentum": 0.9}, "rosenbrock", 5000, 1e-6),
    (
        "sgd-nesterov",
        SGD,
        {"lr": 0.001, "momentum": 0.9, "nesterov": True},
        "rosenbrock",
        5000,
        1e-6,
    ),
    ("adagrad", Adagrad, {"lr": 1.0}, "rosenbrock", 10000, 1e-2),
    ("rmsprop", RMSprop, {"lr": 0.001}, "rosenbrock", 9000, 1e-2),
    (
        "rmsprop-centered-momentum",
        RMSprop,
        {"lr": 1e-4, "momentum": 0.9, "centered": True},
        "rosenbrock",
        4000,
        1e-3,
    ),
    ("adam", Adam, {"lr": 0.05}, "rosenbrock", 4000, 1e-6),
    ("adam-amsgrad", Adam, {"lr": 0.05, "amsgrad": True}, "rosenbrock", 4000, 1e-3),
    ("adamw", AdamW, {"lr": 0.05, "weight_decay": 1e-3}, "rosenbrock", 7000, 1e-2),
]


def run(cls, kwargs, problem, steps):
    grad_fn, start, _ = PROBLEMS[problem]
    params = {"x": start.copy()}
    opt = cls(params, **kwargs)
    for _ in range(steps):
        opt.step({"x": grad_fn(params["x"])})
    return params["x"]


@pytest.mark.parametrize(
    ("label", "cls", "kwargs", "problem", "steps", "tol"),
    TABLE,
    ids=[f"{row[3]}-{row[0]}" for row in TABLE],
)
def test_converges_within_the_stated_budget(label, cls, kwargs, problem, steps, tol):
    _, start, minimizer = PROBLEMS[problem]
    x = run(cls, kwargs, problem, steps)
    distance = float(np.linalg.norm(x - minimizer))
    assert distance <= tol, f"{label} on {problem}: {distance:.3g} after {steps} steps"
    assert np.linalg.norm(start - minimizer) > 100 * tol


def test_momentum_beats_plain_sgd_on_the_ill_conditioned_quadratic():
    """The seeds' point: momentum cuts the zig-zag; same learning rate, far fewer steps."""
    plain = np.linalg.norm(run(SGD, {"lr": 0.01}, "quadratic", 200) - QUAD_MIN)
    heavy = np.linalg.norm(run(SGD, {"lr": 0.01, "momentum": 0.9}, "quadratic", 200) - QUAD_MIN)
    assert heavy < 1e-3 * plain


def test_adagrad_steps_shrink_for_good():
    """Adagrad's accumulated G only grows: its steps decay even on a constant gradient."""
    params = {"x": np.zeros(3)}
    opt = Adagrad(params, lr=1.0)
    moves = []
    for _ in range(100):
        before = params["x"].copy()
        opt.step({"x": np.ones(3)})
        moves.append(np.abs(params["x"] - before).max())
    np.testing.assert_allclose(moves, 1 / np.sqrt(np.arange(1, 101)), rtol=1e-8)


# -- Adam's bias correction at t = 1 ------------------------------------------------------
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99), (0.5, 0.9)])
def test_adam_without_bias_correction_takes_a_different_first_step(betas):
    beta1, beta2 = betas
    lr = 1e-3
    rng = np.random.default_rng(0)
    grad = rng.choice([-1.0, 1.0], size=20) * rng.uniform(1.0, 10.0, size=20)
    start = rng.standard_normal(20)

    moves = {}
    for corrected in (True, False):
        params = {"w": start.copy()}
        Adam(params, lr=lr, betas=betas, bias_correction=corrected).step({"w": grad})
        moves[corrected] = params["w"] - start
    # corrected: lr * sign(g) per coordinate (up to eps / |g|)
    np.testing.assert_allclose(moves[True], -lr * np.sign(grad), rtol=1e-6)
    # uncorrected: lr * (1 - beta1) / sqrt(1 - beta2) * sign(g)
    ratio = moves[False] / moves[True]
    np.testing.assert_allclose(ratio, (1 - beta1) / math.sqrt(1 - beta2), rtol=1e-6)
    if betas == (0.9, 0.999):
        assert np.all(ratio > 3.1)  # the default betas: a first step 3.16x too large


def test_adam_without_bias_correction_overshoots_on_step_one():
    """With the correction a first step of lr lands exactly on the minimum of a quadratic
    started lr away in every coordinate; without it the step is 3.16x longer and lands
    2.16 lr beyond, with a loss 4.7x the starting one."""
    curvature = np.array([1.0, 10.0, 100.0])
    minimizer = np.array([0.5, -1.0, 2.0])
    lr = 0.25
    start = minimizer + lr

    def loss(x):
        return 0.5 * np.sum(curvature * (x - minimizer) ** 2)

    after = {}
    for corrected in (True, False):
        params = {"x": start.copy()}
        Adam(params, lr=lr, bias_correction=corrected).step({"x": curvature * (start - minimizer)})
        after[corrected] = loss(params["x"])
    assert after[True] < 1e-12 * loss(start)
    assert after[False] > 4.5 * loss(start)
