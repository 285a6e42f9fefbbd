"""coursekit.optim.functional: the one-step rules equal the classes, and behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import float64_arrays, matrix_shapes

from coursekit.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from coursekit.optim import functional as F


def _problem(seed, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    target = rng.standard_normal(shape)
    # gradient of sum(a * (p - target)^2 / 2): an axis-aligned quadratic with varied curvature
    scale = np.abs(a) + 0.1
    return rng.standard_normal(shape), lambda p: scale * (p - target)


# Each case: the class and kwargs, and a function running the functional rule for one step
# from an explicit state dict (PyTorch's names), returning the new param and state.
def _sgd(p, g, s, t, kw):
    p, s["momentum_buffer"] = F.sgd(p, g, s["momentum_buffer"], **kw)
    return p, s


def _adagrad(p, g, s, t, kw):
    kw = {k: v for k, v in kw.items() if k != "initial_accumulator_value"}  # it is s["sum"]
    p, s["sum"] = F.adagrad(p, g, s["sum"], step=t, **kw)
    return p, s


def _rmsprop(p, g, s, t, kw):
    p, s["square_avg"], s["grad_avg"], s["momentum_buffer"] = F.rmsprop(
        p, g, s["square_avg"], s["grad_avg"], s["momentum_buffer"], **kw
    )
    return p, s


def _adam_like(rule):
    def run(p, g, s, t, kw):
        kw = dict(kw)
        beta1, beta2 = kw.pop("betas", (0.9, 0.999))
        p, s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"] = rule(
            p, g, s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"],
            step=t, beta1=beta1, beta2=beta2, **kw,
        )  # fmt: skip
        return p, s

    return run


def _zeros_state(keys, shape):
    return {k: np.zeros(shape) for k in keys}


CASES = [
    ("sgd", SGD, {"lr": 0.1}, _sgd, lambda sh: {"momentum_buffer": None}),
    (
        "sgd-nesterov",
        SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        _sgd,
        lambda sh: {"momentum_buffer": None},
    ),
    (
        "sgd-dampening",
        SGD,
        {"lr": 0.1, "momentum": 0.5, "dampening": 0.5, "maximize": True},
        _sgd,
        lambda sh: {"momentum_buffer": None},
    ),
    (
        "adagrad",
        Adagrad,
        {"lr": 0.3, "lr_decay": 0.1, "weight_decay": 0.01, "initial_accumulator_value": 0.2},
        _adagrad,
        lambda sh: {"sum": np.full(sh, 0.2)},
    ),
    (
        "rmsprop",
        RMSprop,
        {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1},
        _rmsprop,
        lambda sh: _zeros_state(["square_avg", "grad_avg", "momentum_buffer"], sh),
    ),
    (
        "rmsprop-plain",
        RMSprop,
        {"lr": 0.01, "alpha": 0.9},
        _rmsprop,
        lambda sh: {"square_avg": np.zeros(sh), "grad_avg": None, "momentum_buffer": None},
    ),
    (
        "adam",
        Adam,
        {"lr": 0.05, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.1},
        _adam_like(F.adam),
        lambda sh: _zeros_state(["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], sh),
    ),
    (
        "adam-uncorrected",
        Adam,
        {"lr": 0.05, "bias_correction": False},
        _adam_like(F.adam),
        lambda sh: {**_zeros_state(["exp_avg", "exp_avg_sq"], sh), "max_exp_avg_sq": None},
    ),
    (
        "adamw",
        AdamW,
        {"lr": 0.05, "weight_decay": 0.5, "amsgrad": True},
        _adam_like(F.adamw),
        lambda sh: _zeros_state(["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], sh),
    ),
]
IDS = [c[0] for c in CASES]


def _run_both(cls, kwargs, rule, init, shape, steps, seed=0):
    p0, grad_fn = _problem(seed, shape)
    params = {"p": p0.copy()}
    opt = cls(params, **kwargs)
    p, state = p0.copy(), init(shape)
    for t in range(1, steps + 1):
        g_cls, g_fn = grad_fn(params["p"]), grad_fn(p)
        opt.step({"p": g_cls})
        p, state = rule(p, g_fn, state, t, kwargs)
        yield params["p"], p, opt.state["p"], state


@pytest.mark.parametrize(("label", "cls", "kwargs", "rule", "init"), CASES, ids=IDS)
def test_functional_equals_class_step_by_step(label, cls, kwargs, rule, init):
    for ours_cls, ours_fn, state_cls, state_fn in _run_both(cls, kwargs, rule, init, (5, 4), 30):
        np.testing.assert_array_equal(ours_cls, ours_fn)
        for key, value in state_cls.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, state_fn[key], err_msg=key)


@pytest.mark.parametrize(("label", "cls", "kwargs", "rule", "init"), CASES, ids=IDS)
def test_blockwise_update_of_large_parameters_is_exact(label, cls, kwargs, rule, init):
    """The classes update big arrays block by block; that must equal one whole-array call."""
    shape = (301, 233)  # 70133 elements: several blocks and a ragged last one
    for ours_cls, ours_fn, state_cls, state_fn in _run_both(cls, kwargs, rule, init, shape, 3):
        np.testing.assert_array_equal(ours_cls, ours_fn)
        for key, value in state_cls.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, state_fn[key], err_msg=key)


def test_non_contiguous_parameters_are_updated_through_the_view():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((400, 300))
    view = base.T  # not C-contiguous: no flat view to write through
    params = {"w": view}
    grad = rng.standard_normal(view.shape)
    expected, *_ = F.adam(view, grad, np.zeros(view.shape), np.zeros(view.shape), step=1)
    Adam(params).step({"w": grad})
    np.testing.assert_array_equal(base.T, expected)


@pytest.mark.parametrize("inplace", [False, True])
def test_inplace_flag(inplace):
    rng = np.random.default_rng(1)
    p, g = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    m, v = np.zeros_like(p), np.zeros_like(p)
    before = [x.copy() for x in (p, g, m, v)]
    p2, m2, v2, vmax = F.adam(p, g, m, v, step=1, lr=0.1, inplace=inplace)
    assert vmax is None
    np.testing.assert_array_equal(g, before[1])  # the gradient is never written
    if inplace:
        assert p2 is p and m2 is m and v2 is v
        assert not np.array_equal(p, before[0])
    else:
        assert p2 is not p and m2 is not m and v2 is not v
        for x, x0 in zip((p, m, v), (before[0], before[2], before[3])):
            np.testing.assert_array_equal(x, x0)


def test_sgd_first_step_starts_the_buffer_at_the_gradient_without_dampening():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    p1, buf = F.sgd(p, g, None, lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_array_equal(buf, g)
    np.testing.assert_allclose(p1, p - 0.1 * g)
    p2, buf2 = F.sgd(p1, g, buf, lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(buf2, 0.9 * g + 0.5 * g)
    np.testing.assert_allclose(p2, p1 - 0.1 * buf2)


def test_adamw_is_decay_then_adam():
    rng = np.random.default_rng(2)
    p, g = rng.standard_normal(6), rng.standard_normal(6)
    m, v = rng.standard_normal(6), rng.random(6)
    lr, wd = 0.01, 0.3
    got = F.adamw(p, g, m, v, step=4, lr=lr, weight_decay=wd)
    expected = F.adam(p * (1 - lr * wd), g, m, v, step=4, lr=lr)
    for a, b in zip(got, expected):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
    # and it is not Adam with L2 in the gradient
    l2 = F.adam(p, g, m, v, step=4, lr=lr, weight_decay=wd)
    assert np.max(np.abs(l2[0] - got[0])) > 1e-4


def test_adam_hand_computed_first_step():
    """t = 1: m = (1-b1) g, v = (1-b2) g^2, and the corrected step is lr * g / (|g| + eps)."""
    p, g = np.array([0.5, -1.0, 2.0]), np.array([3.0, -0.25, 1e-3])
    new_p, m, v, _ = F.adam(p, g, np.zeros(3), np.zeros(3), step=1, lr=0.1, eps=1e-8)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(v, 0.001 * g**2, rtol=1e-15)
    np.testing.assert_allclose(new_p, p - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-14)


@given(
    shape=matrix_shapes(max_rows=5, max_cols=5),
    data=st.data(),
    rule=st.sampled_from(["sgd", "adagrad", "rmsprop", "adam", "adamw"]),
)
def test_rules_keep_dtype_shape_and_never_write_the_gradient(shape, data, rule):
    p = data.draw(float64_arrays(shape)).astype(np.float32)
    g = data.draw(float64_arrays(shape))
    g_before = g.copy()
    zeros = np.zeros_like(p)
    if rule == "sgd":
        out = F.sgd(p, g, None, lr=0.1, momentum=0.9, weight_decay=0.1)
    elif rule == "adagrad":
        out = F.adagrad(p, g, zeros, step=1, weight_decay=0.1)
    elif rule == "rmsprop":
        out = F.rmsprop(p, g, zeros, zeros.copy(), zeros.copy(), centered=True, momentum=0.5)
    else:
        out = getattr(F, rule)(p, g, zeros, zeros.copy(), zeros.copy(), step=1, amsgrad=True)
    np.testing.assert_array_equal(g, g_before)
    for array in out:
        assert array.shape == p.shape and array.dtype == np.float32
        assert np.all(np.isfinite(array))
