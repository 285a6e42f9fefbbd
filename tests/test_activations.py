import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import away_from_zero, batched_shapes, float64_arrays

from coursekit import activations as A
from coursekit.gradcheck import GradientCheckError, check_layer_gradients

TOL = {"rtol": 1e-10, "atol": 1e-12}

# name, forward kwargs, torch function, has a kink at 0
CASES = [
    ("relu", {}, torch.relu, True),
    ("leaky_relu", {}, F.leaky_relu, True),
    (
        "leaky_relu",
        {"negative_slope": 0.2},
        functools.partial(F.leaky_relu, negative_slope=0.2),
        True,
    ),
    ("elu", {}, F.elu, False),
    ("elu", {"alpha": 0.5}, functools.partial(F.elu, alpha=0.5), True),
    ("sigmoid", {}, torch.sigmoid, False),
    ("tanh", {}, torch.tanh, False),
    ("identity", {}, lambda t: t * 1.0, False),
]
IDS = [f"{name}{kwargs or ''}" for name, kwargs, _, _ in CASES]


def pair(name):
    return getattr(A, f"{name}_forward"), getattr(A, f"{name}_backward")


def torch_reference(fn, x, dout):
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), t.grad.numpy()


arrays = batched_shapes(min_dims=1, max_dims=4).flatmap(
    lambda shape: st.tuples(float64_arrays(shape), float64_arrays(shape))
)


@pytest.mark.parametrize("name, kwargs, torch_fn, kink", CASES, ids=IDS)
@given(case=arrays)
def test_activation_matches_torch(name, kwargs, torch_fn, kink, case):
    x, dout = case
    if kink:
        x = away_from_zero(x)
    forward, backward = pair(name)
    out, cache = forward(x, **kwargs)
    expected_out, expected_dx = torch_reference(torch_fn, x, dout)
    np.testing.assert_allclose(out, expected_out, **TOL)
    np.testing.assert_allclose(backward(dout, cache), expected_dx, **TOL)


@pytest.mark.parametrize("name, kwargs, torch_fn, kink", CASES, ids=IDS)
def test_derivative_at_exactly_zero_follows_torch(name, kwargs, torch_fn, kink):
    x = np.array([0.0, -0.0])
    forward, backward = pair(name)
    out, cache = forward(x, **kwargs)
    expected_out, expected_dx = torch_reference(torch_fn, x, np.ones(2))
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(backward(np.ones(2), cache), expected_dx)


def test_documented_values_at_zero():
    ones = np.ones(1)
    assert A.relu_backward(ones, A.relu_forward(np.zeros(1))[1])[0] == 0.0
    assert A.leaky_relu_backward(ones, A.leaky_relu_forward(np.zeros(1), 0.1)[1])[0] == 0.1
    assert A.elu_backward(ones, A.elu_forward(np.zeros(1), 0.5)[1])[0] == 0.5
    dx, dw = A.prelu_backward(
        np.ones((1, 1)), A.prelu_forward(np.zeros((1, 1)), np.array([0.25]))[1]
    )
    assert dx[0, 0] == 0.25 and dw[0] == 0.0


@st.composite
def prelu_cases(draw):
    shape = draw(batched_shapes(min_dims=2, max_dims=4))
    per_channel = draw(st.booleans())
    x = away_from_zero(draw(float64_arrays(shape)))
    weight = draw(float64_arrays((shape[1] if per_channel else 1,)))
    dout = draw(float64_arrays(shape))
    return x, weight, dout


@given(prelu_cases())
def test_prelu_matches_torch(case):
    x, weight, dout = case
    out, cache = A.prelu_forward(x, weight)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    expected = F.prelu(tx, tw)
    expected.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, expected.detach().numpy(), **TOL)
    dx, dweight = A.prelu_backward(dout, cache)
    assert dweight.shape == weight.shape
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)
    np.testing.assert_allclose(dweight, tw.grad.numpy(), **TOL)


def test_prelu_on_1d_input_with_a_shared_slope():
    x = np.array([-2.0, 3.0])
    out, cache = A.prelu_forward(x, np.array([0.25]))
    np.testing.assert_array_equal(out, [-0.5, 3.0])
    dx, dw = A.prelu_backward(np.ones(2), cache)
    np.testing.assert_array_equal(dx, [0.25, 1.0])
    np.testing.assert_array_equal(dw, [-2.0])


def test_saturating_functions_are_stable_for_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, s_cache = A.sigmoid_forward(x)
        e, e_cache = A.elu_forward(x)
        t, _ = A.tanh_forward(x)
    np.testing.assert_allclose(s, torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[1] == pytest.approx(np.exp(-50.0), rel=1e-14)
    np.testing.assert_array_equal(e, [-1.0, -1.0 + np.exp(-50.0), 0.0, 50.0, 1000.0])
    np.testing.assert_array_equal(t, [-1.0, -1.0, 0.0, 1.0, 1.0])
    # Saturation: the gradient vanishes at both ends.
    assert np.all(A.sigmoid_backward(np.ones(5), s_cache)[[0, -1]] == 0.0)


KINK_FREE = {"sigmoid", "tanh", "identity"}


@pytest.mark.parametrize("name", sorted({name for name, *_ in CASES}))
def test_backward_passes_the_gradient_check(name):
    x = np.random.default_rng(0).standard_normal((6, 4))
    if name not in KINK_FREE:
        x = away_from_zero(x, margin=1e-2)
    forward, backward = pair(name)
    errors = check_layer_gradients(forward, backward, {"x": x}, verbose=False)
    assert errors["x"] < 1e-7


@pytest.mark.parametrize(
    "shape, weight_shape", [((5, 3), (3,)), ((4, 3, 2, 2), (3,)), ((5, 3), (1,))]
)
def test_prelu_backward_passes_the_gradient_check(shape, weight_shape):
    rng = np.random.default_rng(1)
    inputs = {
        "x": away_from_zero(rng.standard_normal(shape), margin=1e-2),
        "weight": rng.uniform(0.05, 0.5, weight_shape),
    }
    errors = check_layer_gradients(A.prelu_forward, A.prelu_backward, inputs, verbose=False)
    assert max(errors.values()) < 1e-7


def relu_backward_flipped(dout, cache):
    return -A.relu_backward(dout, cache)


def sigmoid_backward_wrong(dout, cache):
    return dout * cache * (1.0 + cache)


def prelu_backward_unsummed(dout, cache):
    # Planted bug: the slope gradient is not summed over the batch.
    x, weight = cache
    dx, _ = A.prelu_backward(dout, cache)
    return dx, np.where(x > 0, 0.0, dout * x)


@pytest.mark.parametrize(
    "forward, backward, x",
    [
        (A.relu_forward, relu_backward_flipped, away_from_zero(np.linspace(-2, 2, 8))),
        (A.sigmoid_forward, sigmoid_backward_wrong, np.linspace(-2, 2, 8)),
    ],
)
def test_gradient_check_catches_planted_activation_bugs(forward, backward, x):
    with pytest.raises(GradientCheckError, match=r"gradient check failed for x \(tol=1e-07\)"):
        check_layer_gradients(forward, backward, {"x": x.copy()}, verbose=False)


def test_gradient_check_catches_unsummed_prelu_slope():
    rng = np.random.default_rng(2)
    inputs = {"x": rng.standard_normal((4, 3)), "weight": np.full(3, 0.25)}
    with pytest.raises(
        GradientCheckError, match=r"weight: gradient has shape \(4, 3\) but weight has \(3,\)"
    ):
        check_layer_gradients(A.prelu_forward, prelu_backward_unsummed, inputs, verbose=False)


def test_activations_registry():
    assert {"relu", "leaky_relu", "elu", "sigmoid", "tanh", "identity", "linear"} <= set(
        A.ACTIVATIONS
    )
    x = np.linspace(-3, 3, 7)
    for forward, backward in A.ACTIVATIONS.values():
        out, cache = forward(x)
        assert out.shape == x.shape and backward(np.ones_like(x), cache).shape == x.shape
    assert A.ACTIVATIONS["relu"] == (A.relu_forward, A.relu_backward)
    np.testing.assert_array_equal(A.ACTIVATIONS["linear"][0](x)[0], x)


def test_bad_input():
    with pytest.raises(
        ValueError,
        match=r"weight of shape \(4,\) needs x with 4 channels on axis 1, got x of shape \(2, 3\)",
    ):
        A.prelu_forward(np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"weight must have shape \(1,\) or \(C,\), got \(\)"):
        A.prelu_forward(np.zeros((2, 3)), np.float64(0.25))
    _, cache = A.relu_forward(np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"dout must have the input's shape \(2, 3\), got \(3, 2\)"
    ):
        A.relu_backward(np.zeros((3, 2)), cache)
    with pytest.raises(TypeError, match="negative_slope must be a number, got str"):
        A.leaky_relu_forward(np.zeros(2), "0.1")
