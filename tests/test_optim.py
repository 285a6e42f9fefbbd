"""coursekit.optim against torch.optim: trajectories, state, weight decay and bad input."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import float64_arrays, matrix_shapes

from coursekit.optim import SGD, Adagrad, Adam, AdamW, RMSprop

CLASSES = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}
TORCH_CLASSES = {
    "SGD": torch.optim.SGD,
    "Adagrad": torch.optim.Adagrad,
    "RMSprop": torch.optim.RMSprop,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}

# Several arrays of different shapes, including a scalar, so per-parameter state is exercised.
SHAPES = {"W1": (4, 3), "b1": (3,), "W2": (3, 2, 2), "scale": ()}


def make_quadratic(seed: int):
    """Random parameters and, per parameter, a fixed quadratic 0.5 p'Ap + b'p (A SPD)."""
    rng = np.random.default_rng(seed)
    params, quad = {}, {}
    for name, shape in SHAPES.items():
        n = int(np.prod(shape))
        q = rng.standard_normal((n, n))
        quad[name] = (q @ q.T / n + 0.1 * np.eye(n), rng.standard_normal(n))
        params[name] = rng.standard_normal(shape)
    return params, quad


def quadratic_grads(params, quad):
    return {k: (quad[k][0] @ p.ravel() + quad[k][1]).reshape(p.shape) for k, p in params.items()}


def set_torch_quadratic_grads(tparams, quad):
    for k, t in tparams.items():
        a, b = (torch.from_numpy(x) for x in quad[k])
        t.grad = (a @ t.detach().reshape(-1) + b).reshape(t.shape)


def to_torch(params):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}


def build_torch(name, tparams, kwargs):
    kwargs = dict(kwargs)
    kwargs.pop("bias_correction", None)
    return TORCH_CLASSES[name](list(tparams.values()), foreach=False, **kwargs)


def assert_close(ours, theirs, what):
    # 1e-10 relative, with an absolute floor far below any coordinate's scale (1e-14)
    # for coordinates that pass near zero.
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14, err_msg=what)


def flat(params):
    return np.concatenate([np.ravel(p) for p in params.values()])


def assert_same_trajectory(ours, theirs, what):
    """Compare two lists of per-step flat parameter vectors, naming the first bad step."""
    ours, theirs = np.array(ours), np.array(theirs)
    bad = ~np.isclose(ours, theirs, rtol=1e-10, atol=1e-14)
    first = int(np.argmax(bad.any(axis=1))) if bad.any() else None
    assert_close(ours, theirs, f"{what}: first differs at step {first}")


def run_against_torch(name, kwargs, steps=100, seed=0):
    params, quad = make_quadratic(seed)
    tparams = to_torch(params)
    opt = CLASSES[name](params, **kwargs)
    topt = build_torch(name, tparams, kwargs)
    ours, theirs = [], []
    for _ in range(steps):
        opt.step(quadratic_grads(params, quad))
        set_torch_quadratic_grads(tparams, quad)
        topt.step()
        ours.append(flat(params))
        theirs.append(flat({k: t.detach().numpy() for k, t in tparams.items()}))
    assert_same_trajectory(ours, theirs, f"{name} {kwargs}")
    # The state has PyTorch's names and values.
    for k, tp in tparams.items():
        tstate = topt.state[tp]
        assert {key for key, v in opt.state[k].items() if v is not None} == set(tstate)
        for key, value in opt.state[k].items():
            if key == "step":
                assert value == int(tstate["step"])
            elif value is not None:
                assert_close(value, tstate[key].numpy(), f"{name} state {k}[{key!r}]")
    return params


def _grid(**axes):
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


SGD_GRID = [
    kw
    for kw in _grid(
        lr=[0.05],
        momentum=[0.0, 0.9],
        dampening=[0.0, 0.3],
        nesterov=[False, True],
        weight_decay=[0.0, 0.1],
    )
    if not (kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0))
] + [{"lr": 0.01, "momentum": 0.9, "maximize": True}]
ADAGRAD_GRID = _grid(
    lr=[0.1], lr_decay=[0.0, 0.05], initial_accumulator_value=[0.0, 0.5], weight_decay=[0.0, 0.1]
) + [{"lr": 0.1, "eps": 1e-3, "maximize": True}]
RMSPROP_GRID = _grid(lr=[0.002], alpha=[0.99, 0.9], centered=[False, True], momentum=[0.0, 0.9]) + [
    {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-4}
]
ADAM_GRID = _grid(
    lr=[0.02], betas=[(0.9, 0.999), (0.8, 0.99)], weight_decay=[0.0, 0.1], amsgrad=[False, True]
) + [{"lr": 0.01, "eps": 1e-3, "maximize": True}]
ADAMW_GRID = _grid(lr=[0.02], weight_decay=[0.0, 1e-2, 0.1, 1.0], amsgrad=[False, True]) + [
    {"lr": 0.02, "betas": (0.8, 0.99), "maximize": True}
]

CASES = [
    pytest.param(name, kw, id=f"{name}-" + "-".join(f"{k}={v}" for k, v in kw.items()))
    for name, grid in [
        ("SGD", SGD_GRID),
        ("Adagrad", ADAGRAD_GRID),
        ("RMSprop", RMSPROP_GRID),
        ("Adam", ADAM_GRID),
        ("AdamW", ADAMW_GRID),
    ]
    for kw in grid
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_trajectory_matches_torch(name, kwargs):
    final = run_against_torch(name, kwargs)
    start, _ = make_quadratic(0)
    # The run went somewhere: a no-op optimizer would not pass.
    assert max(np.max(np.abs(final[k] - start[k])) for k in final) > 1e-3


def _mlp_problem(seed):
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.standard_normal((3, 5)) * 0.5,
        "b1": np.zeros(5),
        "W2": rng.standard_normal((5, 2)) * 0.5,
    }
    X = torch.from_numpy(rng.standard_normal((16, 3)))
    Y = torch.from_numpy(rng.standard_normal((16, 2)))

    def loss(p):
        return ((torch.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] - Y) ** 2).mean()

    return params, loss


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
        ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
        ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9}),
        ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 1e-2}),
        ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ],
)
def test_trajectory_matches_torch_on_autograd_loss(name, kwargs):
    params, loss = _mlp_problem(1)
    tparams = to_torch(params)
    opt = CLASSES[name](params, **kwargs)
    topt = build_torch(name, tparams, kwargs)
    losses, ours_traj, theirs_traj = [], [], []
    for _ in range(100):
        ours = to_torch(params)
        loss(ours).backward()
        opt.step({k: t.grad.numpy() for k, t in ours.items()})
        topt.zero_grad()
        value = loss(tparams)
        value.backward()
        topt.step()
        losses.append(value.item())
        ours_traj.append(flat(params))
        theirs_traj.append(flat({k: t.detach().numpy() for k, t in tparams.items()}))
    assert_same_trajectory(ours_traj, theirs_traj, name)
    assert losses[-1] < 0.9 * losses[0]


# -- seeds' forms of momentum -------------------------------------------------------------
def test_momentum_velocity_forms_give_pytorch_trajectory():
    """CS231n's v = rho v + g and Sutskever's v = rho v - lr g give SGD(momentum)'s path."""
    params, quad = make_quadratic(3)
    lr, rho = 0.05, 0.9
    x1 = {k: v.copy() for k, v in params.items()}
    x2 = {k: v.copy() for k, v in params.items()}
    v1 = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    opt = SGD(params, lr=lr, momentum=rho)
    for _ in range(100):
        opt.step(quadratic_grads(params, quad))
        g1, g2 = quadratic_grads(x1, quad), quadratic_grads(x2, quad)
        for k in params:
            v1[k] = rho * v1[k] + g1[k]
            x1[k] = x1[k] - lr * v1[k]
            v2[k] = rho * v2[k] - lr * g2[k]
            x2[k] = x2[k] + v2[k]
    for k in params:
        np.testing.assert_allclose(params[k], x1[k], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(params[k], x2[k], rtol=1e-10, atol=1e-14)
        # Sutskever's velocity is -lr times PyTorch's buffer.
        np.testing.assert_allclose(v2[k], -lr * opt.state[k]["momentum_buffer"], rtol=1e-10)


def test_nesterov_is_the_seed_change_of_variables():
    """x~ += -rho v_old + (1 + rho) v_new (gradient at x~) is SGD(nesterov=True)."""
    params, quad = make_quadratic(4)
    lr, rho = 0.05, 0.9
    x = {k: v.copy() for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    opt = SGD(params, lr=lr, momentum=rho, nesterov=True)
    for _ in range(100):
        opt.step(quadratic_grads(params, quad))
        g = quadratic_grads(x, quad)
        for k in x:
            old_v = v[k]
            v[k] = rho * v[k] - lr * g[k]
            x[k] = x[k] - rho * old_v + (1 + rho) * v[k]
    for k in params:
        np.testing.assert_allclose(params[k], x[k], rtol=1e-10, atol=1e-14)


# -- state_dict ---------------------------------------------------------------------------
FULL_STATE = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "bias_correction": False}),
]


@pytest.mark.parametrize(("name", "kwargs"), FULL_STATE)
def test_state_dict_round_trip_is_bitwise(name, kwargs):
    params_a, quad = make_quadratic(5)
    params_b = copy.deepcopy(params_a)
    opt_a = CLASSES[name](params_a, **kwargs)
    for t in range(100):
        if t == 30:
            opt_a.lr = opt_a.lr / 2  # a schedule's change is part of the saved state
        opt_a.step(quadratic_grads(params_a, quad))

    opt_b = CLASSES[name](params_b, **kwargs)
    for t in range(50):
        if t == 30:
            opt_b.lr = opt_b.lr / 2
        opt_b.step(quadratic_grads(params_b, quad))
    saved = opt_b.state_dict()
    fresh = CLASSES[name](params_b)  # default hyperparameters: the load brings them back
    fresh.load_state_dict(saved)
    assert fresh.hyperparams == opt_b.hyperparams
    for _ in range(50):
        fresh.step(quadratic_grads(params_b, quad))
    for k in params_a:
        np.testing.assert_array_equal(params_b[k], params_a[k])
        for key, value in opt_a.state[k].items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(fresh.state[k][key], value)
            else:
                assert fresh.state[k][key] == value


@pytest.mark.parametrize(("name", "kwargs"), FULL_STATE)
def test_state_dict_is_a_deep_copy(name, kwargs):
    params, quad = make_quadratic(6)
    opt = CLASSES[name](params, **kwargs)
    for _ in range(3):
        opt.step(quadratic_grads(params, quad))
    before = copy.deepcopy(opt.state)
    saved = opt.state_dict()
    for entries in saved["state"].values():
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                value += 1.0
            else:
                entries[key] = -7
    saved["hyperparams"]["lr"] = 123.0
    assert opt.lr == kwargs["lr"]
    for k, entries in before.items():
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(opt.state[k][key], value)
            else:
                assert opt.state[k][key] == value
    # and loading copies too: later steps do not write into the loaded dict
    other = opt.state_dict()
    opt.load_state_dict(other)
    opt.step(quadratic_grads(params, quad))
    for k, entries in before.items():
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(other["state"][k][key], value)


def test_load_state_dict_rejects_foreign_state():
    params, _ = make_quadratic(0)
    saved = Adam(params).state_dict()
    with pytest.raises(ValueError, match="parameters"):
        Adam({"W1": params["W1"]}).load_state_dict(saved)
    saved["state"]["W1"]["exp_avg"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"'W1'.*'exp_avg'.*\(2, 2\).*\(4, 3\)"):
        Adam(params).load_state_dict(saved)
    with pytest.raises(ValueError, match="hyperparams"):
        Adam(params).load_state_dict({"state": {}})
    with pytest.raises(ValueError, match="state_dict hyperparams .* are not Adam's"):
        Adam(params).load_state_dict(SGD(params).state_dict())
    bad = Adam(params).state_dict()
    bad["hyperparams"]["betas"] = (1.5, 0.9)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        Adam(params).load_state_dict(bad)


MALFORMED_STATES = [
    # (optimizer, kwargs, change to the saved state of "W1", error, message)
    ("Adam", {}, lambda e: e.pop("exp_avg"), ValueError, r"missing \['exp_avg'\], unexpected \[\]"),
    (
        "Adam",
        {},
        lambda e: e.update(velocity=np.zeros((4, 3))),
        ValueError,
        r"unexpected \['velocity'\]",
    ),
    (
        "Adam",
        {},
        lambda e: e.update(step="3"),
        TypeError,
        r"\['W1'\]\['step'\] must be an int, got str",
    ),
    ("Adam", {}, lambda e: e.update(step=-1), ValueError, r"\['step'\] must be >= 0, got -1"),
    ("Adam", {}, lambda e: e.update(step=2.0), TypeError, r"\['step'\] must be an int, got float"),
    (
        "Adam",
        {},
        lambda e: e.update(exp_avg_sq=[[0.0] * 3] * 4),
        TypeError,
        r"\['exp_avg_sq'\] must be a floating-point array, got list",
    ),
    (
        "Adam",
        {},
        lambda e: e.update(exp_avg=np.zeros((4, 3), dtype=np.int64)),
        TypeError,
        r"\['exp_avg'\] must be a floating-point array, got int64",
    ),
    (
        "Adam",
        {"amsgrad": True},
        lambda e: e.update(max_exp_avg_sq=np.zeros(3)),
        ValueError,
        r"\['max_exp_avg_sq'\] has shape \(3,\)",
    ),
    (
        "SGD",
        {"momentum": 0.9},
        lambda e: e.update(momentum_buffer=0.0),
        TypeError,
        r"\['momentum_buffer'\] must be a floating-point array, got float",
    ),
    ("Adagrad", {}, lambda e: e.pop("sum"), ValueError, r"missing \['sum'\]"),
    (
        "RMSprop",
        {"centered": True},
        lambda e: e.pop("square_avg"),
        ValueError,
        r"missing \['square_avg'\]",
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "change", "error", "pattern"), MALFORMED_STATES)
def test_load_state_dict_checks_the_state_at_load_time(name, kwargs, change, error, pattern):
    params, quad = make_quadratic(0)
    opt = CLASSES[name](params, lr=0.01, **kwargs)
    opt.step(quadratic_grads(params, quad))
    saved = opt.state_dict()
    change(saved["state"]["W1"])
    fresh = CLASSES[name](params, lr=0.5, **kwargs)
    before = fresh.state_dict()
    with pytest.raises(error, match=pattern):
        fresh.load_state_dict(saved)
    # Nothing was half-loaded, and the optimizer still steps.
    assert fresh.hyperparams == before["hyperparams"]
    assert fresh.state.keys() == before["state"].keys()
    fresh.step(quadratic_grads(params, quad))


def test_state_saved_before_an_option_was_switched_on_still_loads():
    # Buffers of options switched on later are created at the next step, so a state without
    # them is complete: what state_dict() returns always loads.
    params, quad = make_quadratic(0)
    for opt in (RMSprop(params, lr=0.01), Adam(params, lr=0.01)):
        opt.step(quadratic_grads(params, quad))
        switched = "momentum" if isinstance(opt, RMSprop) else "amsgrad"
        opt.hyperparams[switched] = 0.9 if switched == "momentum" else True
        saved = opt.state_dict()
        again = type(opt)(params, lr=0.01)
        again.load_state_dict(saved)
        again.step(quadratic_grads(params, quad))
        opt.step(quadratic_grads(params, quad))


# -- weight decay: L2 in the gradient vs decoupled ----------------------------------------
def _decoupled_run(opt_cls, kwargs, decay, seed=7, steps=100):
    """opt_cls without weight decay, the weights shrunk by (1 - decay) before each step."""
    params, quad = make_quadratic(seed)
    opt = opt_cls(params, **kwargs)
    for _ in range(steps):
        grads = quadratic_grads(params, quad)
        for p in params.values():
            p *= 1 - decay
        opt.step(grads)
    return params


def _l2_run(opt_cls, kwargs, seed=7, steps=100):
    params, quad = make_quadratic(seed)
    opt = opt_cls(params, **kwargs)
    for _ in range(steps):
        opt.step(quadratic_grads(params, quad))
    return params


def test_sgd_l2_equals_decoupled_decay_of_lr_times_lambda():
    lr, lam = 0.05, 0.3
    l2 = _l2_run(SGD, {"lr": lr, "weight_decay": lam})
    decoupled = _decoupled_run(SGD, {"lr": lr}, decay=lr * lam)
    unscaled = _decoupled_run(SGD, {"lr": lr}, decay=lam)  # forgetting the lr scaling
    for k in l2:
        np.testing.assert_allclose(l2[k], decoupled[k], rtol=1e-12, atol=1e-15)
    assert max(np.max(np.abs(l2[k] - unscaled[k])) for k in l2) > 1e-2


def test_sgd_momentum_l2_differs_from_decoupled_decay():
    """With momentum the L2 term is accumulated in the buffer, decoupled decay is not."""
    lr, lam = 0.05, 0.3
    l2 = _l2_run(SGD, {"lr": lr, "momentum": 0.9, "weight_decay": lam})
    decoupled = _decoupled_run(SGD, {"lr": lr, "momentum": 0.9}, decay=lr * lam)
    assert max(np.max(np.abs(l2[k] - decoupled[k])) for k in l2) > 1e-3


def test_adam_l2_differs_from_adamw():
    lr, lam = 0.02, 0.5
    l2 = _l2_run(Adam, {"lr": lr, "weight_decay": lam})
    adamw = _l2_run(AdamW, {"lr": lr, "weight_decay": lam})
    assert max(np.max(np.abs(l2[k] - adamw[k])) for k in l2) > 0.05
    # AdamW is exactly "shrink by lr * lambda, then a plain Adam step".
    by_hand = _decoupled_run(Adam, {"lr": lr}, decay=lr * lam)
    for k in adamw:
        np.testing.assert_array_equal(adamw[k], by_hand[k])


# -- dtype and aliasing -------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CLASSES))
def test_float32_parameters_stay_float32(name):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((40, 30)).astype(np.float32)}
    kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    opt = CLASSES[name](params, lr=0.01, **kwargs)
    w = params["w"]
    for grad_dtype in (np.float32, np.float64):
        opt.step({"w": rng.standard_normal((40, 30)).astype(grad_dtype)})
    assert params["w"] is w and w.dtype == np.float32
    for value in opt.state["w"].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32


@pytest.mark.parametrize("name", list(CLASSES))
def test_float16_gradients_on_float64_parameters_match_torch(name):
    # Gradients up to 1e4: their squares overflow float16 (largest value 65504).
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(60)}
    start = params["w"].copy()
    tparams = to_torch(params)
    kwargs = {"lr": 0.01, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    opt = CLASSES[name](params, **kwargs)
    topt = build_torch(name, tparams, kwargs)
    t = tparams["w"]
    for _ in range(5):
        g16 = (rng.standard_normal(60) * 3e3).astype(np.float16)
        opt.step({"w": g16})
        if name in ("RMSprop", "Adagrad"):
            # torch refuses a float16 gradient on a float64 tensor unless told to accept it,
            # and then these two promote to float64 themselves.
            t.grad_dtype = None
            t.grad = torch.from_numpy(g16)
        else:
            # Its Adam cannot mix dtypes at all (and its SGD would keep a float16 buffer):
            # the float64 copy of the gradient is what they compute with.
            t.grad = torch.from_numpy(g16).to(torch.float64)
        topt.step()
    assert_close(params["w"], t.detach().numpy(), f"{name} with float16 gradients")
    assert np.all(params["w"] != start), "every coordinate moves"
    assert params["w"].dtype == np.float64


@given(
    shape=matrix_shapes(max_rows=6, max_cols=6),
    name=st.sampled_from(list(CLASSES)),
    data=st.data(),
)
def test_step_never_touches_grads_and_updates_params_in_place(shape, name, data):
    param = data.draw(float64_arrays(shape))
    grad = data.draw(float64_arrays(shape))
    params = {"p": param}
    grad_before = grad.copy()
    kwargs = {"lr": 0.1, "weight_decay": 0.5, "maximize": True}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    opt = CLASSES[name](params, **kwargs)
    opt.step({"p": grad})
    opt.step({"p": grad})
    np.testing.assert_array_equal(grad, grad_before)
    assert params["p"] is param
    assert np.all(np.isfinite(param))


# -- bad input ----------------------------------------------------------------------------
TORCH_MESSAGES = [
    ("SGD", {"lr": -1}),
    ("SGD", {"lr": -0.5}),
    ("SGD", {"momentum": -0.1}),
    ("SGD", {"weight_decay": -1e-4}),
    ("SGD", {"nesterov": True}),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("Adagrad", {"lr": -1}),
    ("Adagrad", {"lr_decay": -1.0}),
    ("Adagrad", {"weight_decay": -1.0}),
    ("Adagrad", {"initial_accumulator_value": -0.1}),
    ("Adagrad", {"eps": -1e-10}),
    ("RMSprop", {"lr": -1}),
    ("RMSprop", {"eps": -1.0}),
    ("RMSprop", {"momentum": -0.9}),
    ("RMSprop", {"weight_decay": -1.0}),
    ("RMSprop", {"alpha": -0.5}),
    ("Adam", {"lr": -1e-3}),
    ("Adam", {"eps": -1e-8}),
    ("Adam", {"betas": (1.0, 0.999)}),
    ("Adam", {"betas": (-0.1, 0.999)}),
    ("Adam", {"betas": (0.9, 1.0)}),
    ("Adam", {"betas": (0.9, -1e-3)}),
    ("Adam", {"weight_decay": -0.1}),
    ("AdamW", {"betas": (0.9, 1.5)}),
    ("AdamW", {"weight_decay": -0.01}),
]


NAN = float("nan")
# Every non-negative hyperparameter torch.optim checks with ``not 0.0 <= value`` refuses NaN.
TORCH_NAN_MESSAGES = [
    ("Adam", {"lr": NAN}),
    ("Adam", {"eps": NAN}),
    ("Adam", {"betas": (NAN, 0.999)}),
    ("Adam", {"betas": (0.9, NAN)}),
    ("Adam", {"weight_decay": NAN}),
    ("AdamW", {"lr": NAN}),
    ("AdamW", {"weight_decay": NAN}),
    ("RMSprop", {"lr": NAN}),
    ("RMSprop", {"alpha": NAN}),
    ("RMSprop", {"eps": NAN}),
    ("RMSprop", {"momentum": NAN}),
    ("Adagrad", {"lr": NAN}),
    ("Adagrad", {"lr_decay": NAN}),
    ("Adagrad", {"initial_accumulator_value": NAN}),
    ("Adagrad", {"eps": NAN}),
]


@pytest.mark.parametrize(("name", "kwargs"), TORCH_NAN_MESSAGES)
def test_nan_hyperparameters_are_refused_as_torch_refuses_them(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        TORCH_CLASSES[name]([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        CLASSES[name]({"w": np.zeros(2)}, **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": NAN}, "Invalid learning rate: nan"),
        ({"momentum": NAN}, "Invalid momentum value: nan"),
        ({"momentum": 0.9, "dampening": NAN}, "Invalid dampening value: nan"),
        ({"weight_decay": NAN}, "Invalid weight_decay value: nan"),
    ],
)
def test_sgd_refuses_nan_although_torch_does_not(kwargs, message):
    # torch.optim.SGD checks ``value < 0``, which NaN passes; its first step then turns
    # every parameter into NaN. coursekit refuses with the message torch uses for -1.
    params = {"w": np.ones(2)}
    with pytest.raises(ValueError, match=f"^{message}$"):
        SGD(params, **kwargs)
    tparam = torch.ones(2, requires_grad=True)
    topt = torch.optim.SGD([tparam], **{"lr": 0.1, **kwargs})
    tparam.grad = torch.ones(2)
    topt.step()
    topt.step()
    assert torch.isnan(tparam).all()


def test_infinite_hyperparameters_are_accepted_where_torch_accepts_them():
    # torch.optim accepts lr = inf and eps = inf (0 <= inf); so does coursekit.
    for kwargs in ({"lr": float("inf")}, {"eps": float("inf")}):
        TORCH_CLASSES["Adam"]([torch.zeros(2, requires_grad=True)], **kwargs)
        Adam({"w": np.zeros(2)}, **kwargs)
    opt = Adam({"w": np.zeros(2)})
    with pytest.raises(ValueError, match="^Invalid learning rate: nan$"):
        opt.lr = NAN
    assert opt.lr == 1e-3


@pytest.mark.parametrize(("name", "kwargs"), TORCH_MESSAGES)
def test_invalid_hyperparameters_raise_torchs_message(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        TORCH_CLASSES[name]([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        CLASSES[name]({"w": np.zeros(2)}, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_invalid_learning_rate_message_is_torchs():
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1$"):
        SGD({"w": np.zeros(2)}, lr=-1)
    opt = Adam({"w": np.zeros(2)})
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -0.1$"):
        opt.lr = -0.1
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        opt.lr = "0.1"
    assert opt.lr == 1e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"betas": 0.9}, TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
        ({"betas": (0.9, 0.99, 0.999)}, TypeError, "betas must be a pair"),
        ({"betas": (0.9, "0.999")}, TypeError, r"betas\[1\] must be a real number, got str"),
        ({"eps": None}, TypeError, "eps must be a real number, got NoneType"),
        ({"amsgrad": 1}, TypeError, "amsgrad must be True or False, got 1"),
    ],
)
def test_badly_typed_hyperparameters(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Adam({"w": np.zeros(2)}, **kwargs)


def test_params_must_be_a_nonempty_dict_of_float_arrays():
    with pytest.raises(TypeError, match="params must be a dict of named numpy arrays, got list"):
        SGD([np.zeros(2)])
    with pytest.raises(ValueError, match="params is empty"):
        SGD({})
    with pytest.raises(TypeError, match=r"parameter 'w' must be a numpy array, got list"):
        SGD({"w": [1.0, 2.0]})
    with pytest.raises(TypeError, match=r"parameter 'w' must have a floating dtype.*int64"):
        Adam({"w": np.arange(3)})


def test_gradient_keys_must_match():
    params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
    opt = SGD(params, lr=0.1)
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \[\]"):
        opt.step({"W": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['c'\]"):
        opt.step({"W": np.ones((2, 3)), "b": np.ones(3), "c": np.ones(1)})
    with pytest.raises(TypeError, match="grads must be a dict of named numpy arrays, got list"):
        opt.step([np.ones((2, 3)), np.ones(3)])
    np.testing.assert_array_equal(params["W"], 0.0)  # nothing was half-applied


def test_gradient_shapes_and_dtypes_must_match():
    params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
    opt = Adam(params)
    with pytest.raises(ValueError, match=r"grads\['W'\] must have shape \(2, 3\), got \(3, 2\)"):
        opt.step({"W": np.ones((3, 2)), "b": np.ones(3)})
    with pytest.raises(TypeError, match=r"grads\['b'\] must have a floating dtype.*int64"):
        opt.step({"W": np.ones((2, 3)), "b": np.ones(3, dtype=np.int64)})
    with pytest.raises(TypeError, match=r"grads\['b'\] must be a numpy array, got list"):
        opt.step({"W": np.ones((2, 3)), "b": [1.0, 1.0, 1.0]})
    assert opt.state["W"]["step"] == 0


def test_importing_optim_and_schedules_does_not_import_torch():
    code = "import sys, coursekit.optim, coursekit.schedules; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
