"""L1/L2 penalties and max-norm projection, against PyTorch autograd, torch.renorm and
central differences."""

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from strategies import (
    FLOATS,
    away_from_zero,
    float64_arrays,
    matrix_shapes,
    named_param_dicts,
    small_dim,
)

from coursekit.gradcheck import numerical_gradient
from coursekit.regularization import l1_penalty, l2_penalty, max_norm_

RTOL = 1e-10
# λ = 0 or well above the subnormal range (products like λ·w must not underflow)
STRENGTHS = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=10.0, width=64))


def _torch_penalty(params, strength, kind):
    """Value and autograd gradients of the same penalty written in torch."""
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    if kind == "l2":
        value = sum(0.5 * strength * (w * w).sum() for w in leaves.values())
    else:
        value = sum(strength * w.abs().sum() for w in leaves.values())
    value.backward()
    return value.item(), {k: w.grad.numpy() for k, w in leaves.items()}


@pytest.mark.parametrize("penalty,kind", [(l2_penalty, "l2"), (l1_penalty, "l1")])
@given(params=named_param_dicts(), strength=STRENGTHS)
def test_penalty_matches_torch_autograd(penalty, kind, params, strength):
    value, grads = penalty(params, strength)
    ref_value, ref_grads = _torch_penalty(params, strength, kind)
    np.testing.assert_allclose(value, ref_value, rtol=RTOL, atol=1e-300)
    assert set(grads) == set(params)
    for k in params:
        # atol: autograd halves and re-doubles w (d(w*w) = w + w, times 0.5), which rounds
        # subnormal weights like 5e-324 to 0; λ·w is exact there.
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("penalty", [l2_penalty, l1_penalty])
@given(w=float64_arrays(matrix_shapes(max_rows=4, max_cols=4)), strength=STRENGTHS)
def test_penalty_gradient_matches_central_differences(penalty, w, strength):
    w = away_from_zero(w, margin=1e-2)  # |w| has a kink at 0
    _, grad = penalty(w, strength)
    numeric = numerical_gradient(lambda x: penalty(x, strength)[0], w)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


def test_l2_values_by_hand():
    value, grad = l2_penalty(np.array([3.0, -4.0]), 0.1)
    assert value == pytest.approx(0.5 * 0.1 * 25.0, rel=1e-15)
    np.testing.assert_array_equal(grad, [0.1 * 3.0, 0.1 * -4.0])


def test_l1_subgradient_is_zero_at_zero_like_torch():
    w = np.array([-2.0, 0.0, -0.0, 3.0])
    value, grad = l1_penalty(w, 0.5)
    assert value == 2.5
    np.testing.assert_array_equal(grad, [-0.5, 0.0, 0.0, 0.5])
    t = torch.tensor(w, requires_grad=True)
    (0.5 * t.abs().sum()).backward()
    np.testing.assert_array_equal(grad, t.grad.numpy())


def test_l2_gradient_is_torch_sgd_weight_decay():
    """strength = λ gives exactly what SGD(weight_decay=λ) adds to the gradient."""
    rng = np.random.default_rng(0)
    w, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    lam, lr = 0.3, 0.1
    t = torch.tensor(w, requires_grad=True)
    t.grad = torch.tensor(g)
    torch.optim.SGD([t], lr=lr, weight_decay=lam).step()
    _, pen_grad = l2_penalty(w, lam)
    np.testing.assert_allclose(w - lr * (g + pen_grad), t.detach().numpy(), rtol=1e-14)


@given(params=named_param_dicts(), strength=STRENGTHS)
def test_keys_select_the_penalized_arrays(params, strength):
    only_w, grads_w = l2_penalty(params, strength, keys=lambda k: k.startswith("W"))
    listed, grads_l = l2_penalty(params, strength, keys=["W2", "W1"])
    w1, _ = l2_penalty(params["W1"], strength)
    w2, _ = l2_penalty(params["W2"], strength)
    assert set(grads_w) == set(grads_l) == {"W1", "W2"}
    assert only_w == listed
    assert only_w == pytest.approx(w1 + w2, rel=1e-12, abs=1e-300)
    total, _ = l2_penalty(params, strength)
    bias, _ = l2_penalty(params["b1"], strength)
    assert total == pytest.approx(only_w + bias, rel=1e-12, abs=1e-300)


def test_penalty_returns_new_arrays_and_leaves_params_alone():
    w = np.array([1.0, -2.0])
    _, grad = l2_penalty(w, 1.0)
    grad += 5.0
    np.testing.assert_array_equal(w, [1.0, -2.0])


# -- max-norm -----------------------------------------------------------------------------------

MAX_NORMS = st.floats(min_value=0.0, max_value=6.0, allow_nan=False, width=64)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, math.inf])
@given(W=float64_arrays(matrix_shapes()), r=MAX_NORMS)
@example(W=np.array([[3.84693766e-268]]), r=0.0)  # |w|**3 underflows; the norm is |w|
def test_max_norm_equals_torch_renorm(p, W, r):
    expected = torch.renorm(torch.tensor(W), p=p, dim=1, maxnorm=r).numpy()
    out = max_norm_(W, r, axis=0, norm_type=p)
    assert out is W
    np.testing.assert_allclose(W, expected, rtol=RTOL, atol=0)


def _unit_norms(W):
    # PyTorch's vector norm is the reference: a single weight's norm is exactly |w|,
    # where np.linalg.norm squares it first and underflows to 0 below about 1e-162.
    return torch.linalg.vector_norm(torch.tensor(W), dim=0).numpy()


@given(W=float64_arrays(matrix_shapes()), r=MAX_NORMS)
@example(W=np.array([[6.33453599e-220]]), r=0.0)  # |w| > 0 = r: projected to 0, not "inside"
def test_max_norm_caps_units_and_leaves_small_units_untouched(W, r):
    before = W.copy()
    norms_before = _unit_norms(before)
    max_norm_(W, r)
    norms_after = _unit_norms(W)
    assert np.all(norms_after <= r * (1 + 1e-12))
    inside = norms_before <= r
    np.testing.assert_array_equal(W[:, inside], before[:, inside])
    # projected units keep their direction
    out = ~inside
    np.testing.assert_allclose(
        W[:, out] * norms_before[out], before[:, out] * norms_after[out], rtol=1e-9, atol=1e-12
    )


@given(W=float64_arrays(st.tuples(small_dim(), small_dim(), small_dim())), r=MAX_NORMS)
def test_max_norm_other_axes_match_renorm(W, r):
    rows = W[0].copy()
    expected_rows = torch.renorm(torch.tensor(rows), p=2, dim=0, maxnorm=r).numpy()
    max_norm_(rows, r, axis=1)  # PyTorch's (out, in) layout: a unit is a row
    np.testing.assert_allclose(rows, expected_rows, rtol=RTOL, atol=0)

    expected = torch.renorm(torch.tensor(W), p=2, dim=2, maxnorm=r).numpy()
    max_norm_(W, r, axis=(0, 1))
    np.testing.assert_allclose(W, expected, rtol=RTOL, atol=0)


def test_max_norm_by_hand():
    W = np.array([[3.0, 0.3], [4.0, 0.4]])  # unit norms 5 and 0.5
    max_norm_(W, 1.0)
    np.testing.assert_allclose(W[:, 0], [3.0 / (5 + 1e-7), 4.0 / (5 + 1e-7)], rtol=1e-15)
    np.testing.assert_array_equal(W[:, 1], [0.3, 0.4])


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("penalty", [l2_penalty, l1_penalty])
def test_penalty_bad_input(penalty):
    w = np.ones(3)
    with pytest.raises(ValueError, match="strength must be >= 0, got -0.1"):
        penalty(w, -0.1)
    with pytest.raises(ValueError, match="strength must be >= 0, got nan"):
        penalty(w, float("nan"))
    with pytest.raises(ValueError, match="strength must be finite, got inf"):
        penalty(w, float("inf"))
    with pytest.raises(TypeError, match="strength must be a non-negative number, got str"):
        penalty(w, "0.1")
    with pytest.raises(TypeError, match="params must be a numpy array or a dict"):
        penalty([1.0, 2.0], 0.1)
    with pytest.raises(TypeError, match=r"params\['W'\] must have a floating dtype"):
        penalty({"W": np.ones(3, dtype=int)}, 0.1)
    with pytest.raises(ValueError, match=r"keys names \['W9'\], which are not in params"):
        penalty({"W": w}, 0.1, keys=["W9"])
    with pytest.raises(TypeError, match="keys must be an iterable of names or a predicate"):
        penalty({"W": w}, 0.1, keys="W")


def test_max_norm_bad_input():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1"):
        max_norm_(W, -1.0)
    with pytest.raises(TypeError, match="W must be a numpy array"):
        max_norm_([[1.0]], 1.0)
    with pytest.raises(TypeError, match="W must have a floating dtype"):
        max_norm_(np.ones((2, 2), dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for a 2-D W, got 2"):
        max_norm_(W, 1.0, axis=2)
    with pytest.raises(ValueError, match="norm_type must be > 0 or inf, got 0"):
        max_norm_(W, 1.0, norm_type=0)
    np.testing.assert_array_equal(W, np.ones((3, 2)))


@given(W=float64_arrays(matrix_shapes(), elements=FLOATS))
@example(W=np.array([[5.42783235e-227]]))
@example(W=np.array([[3e-200], [4e-200]]))
def test_max_norm_zero_radius_zeroes_nonzero_units(W):
    before = W.copy()
    # tiny units can underflow to norm 0, as in PyTorch (a single weight's norm is exact)
    positive = torch.linalg.vector_norm(torch.from_numpy(W), dim=0).numpy() > 0
    max_norm_(W, 0.0)
    assert np.all(W[:, positive] == 0.0)
    np.testing.assert_array_equal(W[:, ~positive], before[:, ~positive])
