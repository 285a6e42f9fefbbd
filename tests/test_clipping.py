"""Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import named_param_dicts

from coursekit.clipping import clip_grad_norm_, clip_grad_value_

RTOL = 1e-10
LARGE = st.floats(min_value=-200.0, max_value=200.0, allow_nan=False, width=64)


def _torch_params(grads):
    params = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.tensor(g)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, 0.5, math.inf, "inf"])
@given(
    grads=named_param_dicts(elements=LARGE),
    max_norm=st.floats(min_value=0.0, max_value=300.0, width=64),
)
def test_clip_grad_norm_matches_torch(norm_type, grads, max_norm):
    params = _torch_params(grads)
    expected_total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    total = clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected_total.item(), rtol=RTOL, atol=0)
    for g, p in zip(grads.values(), params):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=RTOL, atol=1e-300)


@given(
    grads=named_param_dicts(elements=LARGE),
    clip_value=st.floats(min_value=0.0, max_value=300.0, width=64),
)
def test_clip_grad_value_matches_torch(grads, clip_value):
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    assert clip_grad_value_(grads, clip_value) is None
    for g, p in zip(grads.values(), params):
        np.testing.assert_array_equal(g, p.grad.numpy())


def test_seed_example_to_the_printed_digits():
    by_value = np.array([0.9, 100.0])
    clip_grad_value_(by_value, 1.0)
    np.testing.assert_array_equal(by_value, [0.9, 1.0])

    by_norm = np.array([0.9, 100.0])
    total = clip_grad_norm_(by_norm, 1.0)
    assert total == math.sqrt(0.9**2 + 100.0**2)  # returned before clipping
    assert round(by_norm[0], 8) == 0.00899964
    assert round(by_norm[1], 7) == 0.9999595

    # clipping by norm keeps the direction, clipping by value does not
    g = np.array([0.9, 100.0])

    def cosine(u):
        return u @ g / (np.linalg.norm(u) * np.linalg.norm(g))

    assert cosine(by_norm) == pytest.approx(1.0, abs=1e-15)
    assert cosine(by_value) == pytest.approx((0.81 + 100.0) / (math.sqrt(1.81) * total), rel=1e-12)
    assert cosine(by_value) < 0.75


@given(
    grads=named_param_dicts(elements=LARGE),
    max_norm=st.floats(min_value=1e-3, max_value=300.0, width=64),
)
def test_clip_by_norm_keeps_direction_and_caps_the_norm(grads, max_norm):
    before = np.concatenate([g.ravel() for g in grads.values()])
    total = clip_grad_norm_(grads, max_norm)
    after = np.concatenate([g.ravel() for g in grads.values()])
    assert total == pytest.approx(np.linalg.norm(before), rel=1e-12, abs=1e-300)
    assert np.linalg.norm(after) <= max_norm * (1 + 1e-12)
    if total > 0:
        scale = min(max_norm / (total + 1e-6), 1.0)
        np.testing.assert_allclose(after, scale * before, rtol=1e-14, atol=1e-300)


def test_clip_by_value_changes_direction_on_random_gradients():
    rng = np.random.default_rng(3)
    grads = {"W": rng.standard_cauchy(size=(20, 5)), "b": rng.standard_cauchy(size=5)}
    flat = np.concatenate([g.ravel() for g in grads.values()])
    by_value = {k: v.copy() for k, v in grads.items()}
    by_norm = {k: v.copy() for k, v in grads.items()}
    clip_grad_value_(by_value, 1.0)
    clip_grad_norm_(by_norm, 1.0)

    def cosine(d):
        u = np.concatenate([g.ravel() for g in d.values()])
        return u @ flat / (np.linalg.norm(u) * np.linalg.norm(flat))

    assert cosine(by_norm) == pytest.approx(1.0, abs=1e-12)
    assert cosine(by_value) < 0.99


def test_single_array_in_place_and_float32_like_torch():
    g32 = np.array([[3.0, -4.0], [12.0, 0.5]], dtype=np.float32)
    t = torch.zeros(2, 2, requires_grad=True)
    t.grad = torch.tensor(g32)
    expected = torch.nn.utils.clip_grad_norm_([t], 2.0)
    total = clip_grad_norm_(g32, 2.0)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(total, expected.item(), rtol=1e-6)
    np.testing.assert_allclose(g32, t.grad.numpy(), rtol=1e-6)


def test_empty_dict_and_zero_gradients():
    assert clip_grad_norm_({}, 1.0) == 0.0
    zeros = {"W": np.zeros(3)}
    assert clip_grad_norm_(zeros, 1.0) == 0.0
    np.testing.assert_array_equal(zeros["W"], 0.0)


def test_nonfinite_norm():
    g = {"W": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match="total norm of order 2.0 of the gradients is inf"):
        clip_grad_norm_(g, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(g["W"], [1.0, np.inf])  # untouched when raising
    t = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g["W"])
    torch.nn.utils.clip_grad_norm_([t], 1.0)
    with pytest.warns(RuntimeWarning, match="invalid value"):  # inf * 0
        assert clip_grad_norm_(g, 1.0) == math.inf
    np.testing.assert_array_equal(g["W"], t.grad.numpy())  # [0, nan], as torch


def test_usable_as_the_trainer_clip_callable():
    clip = functools.partial(clip_grad_norm_, max_norm=1.0)
    grads = {"W": np.array([3.0, 4.0])}
    assert clip(grads) == 5.0
    np.testing.assert_allclose(grads["W"], [3.0 / (5 + 1e-6), 4.0 / (5 + 1e-6)], rtol=1e-15)


def test_bad_input():
    g = {"W": np.ones(3)}
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1.0"):
        clip_grad_norm_(g, -1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -0.5"):
        clip_grad_value_(g, -0.5)
    with pytest.raises(TypeError, match="clip_value must be a non-negative number, got NoneType"):
        clip_grad_value_(g, None)
    with pytest.raises(ValueError, match="norm_type must be > 0 or inf, got -1"):
        clip_grad_norm_(g, 1.0, norm_type=-1)
    with pytest.raises(TypeError, match="norm_type must be a number > 0 or inf, got 'two'"):
        clip_grad_norm_(g, 1.0, norm_type="two")
    with pytest.raises(TypeError, match="grads must be a numpy array or a dict"):
        clip_grad_norm_([np.ones(3)], 1.0)
    with pytest.raises(TypeError, match=r"grads\['b'\] must have a floating dtype"):
        clip_grad_value_({"b": np.ones(2, dtype=np.int32)}, 1.0)
    np.testing.assert_array_equal(g["W"], 1.0)
