"""Inverted and vanilla dropout: statistics, modes, masks, reproducibility, bad input."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import batched_shapes, float64_arrays, seeded_rngs

from coursekit.dropout import (
    dropout_backward,
    dropout_forward,
    vanilla_dropout_backward,
    vanilla_dropout_forward,
)
from coursekit.gradcheck import check_layer_gradients

PROBS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8, 0.95])
SHAPE = (400, 500)  # 200,000 units: binomial noise of the kept fraction is ~1e-3


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_train_mode_keeps_the_mean_and_drops_about_p(p):
    x = np.full(SHAPE, 2.0)
    out, _ = dropout_forward(x, p, mode="train", seed=1)
    n = out.size
    # Each unit is 2/(1-p) with probability 1-p and 0 otherwise: mean 2, variance 4p/(1-p).
    mean_tol = 5 * np.sqrt(4 * p / (1 - p) / n)
    assert abs(out.mean() - 2.0) < mean_tol
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 2.0 / (1 - p), rtol=1e-15)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_kept_units_are_scaled_like_torch(p):
    x = np.random.default_rng(0).standard_normal((50, 40))
    ours, _ = dropout_forward(x, p, mode="train", seed=3)
    theirs = F.dropout(torch.tensor(x), p, training=True).numpy()
    # The masks differ (different generators), the scaling of kept units must not.
    np.testing.assert_allclose(ours[ours != 0], x[ours != 0] / (1 - p), rtol=1e-15)
    np.testing.assert_allclose(theirs[theirs != 0], x[theirs != 0] / (1 - p), rtol=1e-15)


@given(batched_shapes(), PROBS, st.data())
def test_test_mode_is_the_identity(shape, p, data):
    x = data.draw(float64_arrays(shape))
    out, cache = dropout_forward(x, p, mode="test")
    np.testing.assert_array_equal(out, x)
    assert out is not x
    dout = data.draw(float64_arrays(shape))
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_p_zero_is_the_identity_in_train_mode():
    x = np.random.default_rng(0).standard_normal((5, 6))
    out, cache = dropout_forward(x, 0.0, mode="train", seed=0)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


@given(batched_shapes(), PROBS, seeded_rngs(), st.data())
def test_backward_uses_the_forward_mask(shape, p, rng, data):
    x = data.draw(float64_arrays(shape))
    dout = data.draw(float64_arrays(shape))
    out, cache = dropout_forward(x, p, mode="train", rng=rng)
    dx = dropout_backward(dout, cache)
    mask = cache["mask"] if p > 0 else np.ones(shape)
    np.testing.assert_array_equal(dx, dout * mask)
    np.testing.assert_array_equal(out, x * mask)
    assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - p)}


def test_seeded_runs_reproduce_and_generators_advance():
    x = np.ones((30, 30))
    a, _ = dropout_forward(x, 0.5, mode="train", seed=11)
    b, _ = dropout_forward(x, 0.5, mode="train", seed=11)
    c, _ = dropout_forward(x, 0.5, mode="train", seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rng = np.random.default_rng(11)
    first, _ = dropout_forward(x, 0.5, mode="train", rng=rng)
    second, _ = dropout_forward(x, 0.5, mode="train", rng=rng)
    np.testing.assert_array_equal(first, a)  # same stream as seed=11
    assert not np.array_equal(first, second)


def test_dropout_passes_the_gradient_check():
    x = np.random.default_rng(2).standard_normal((6, 5))
    # A fixed seed gives every forward call of the check the same mask. (The check's own
    # seed= keyword draws dout, so the dropout seed is bound with partial.)
    forward = functools.partial(dropout_forward, seed=5)
    errors = check_layer_gradients(
        forward, dropout_backward, {"x": x}, verbose=False, p=0.4, mode="train"
    )
    assert errors["x"] < 1e-9
    errors = check_layer_gradients(
        vanilla_dropout_forward,
        vanilla_dropout_backward,
        {"x": x},
        verbose=False,
        p=0.4,
        mode="test",
    )
    assert errors["x"] < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.ones((4, 4), dtype=dtype)
    out, cache = dropout_forward(x, 0.3, mode="train", seed=0)
    assert out.dtype == dtype and cache["mask"].dtype == dtype
    assert dropout_backward(np.ones_like(x), cache).dtype == dtype
    out, _ = vanilla_dropout_forward(x, 0.3, mode="test")
    assert out.dtype == dtype


# -- vanilla dropout ------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_vanilla_dropout_scales_at_test_time(p):
    x = np.full(SHAPE, 2.0)
    train, cache = vanilla_dropout_forward(x, p, mode="train", seed=4)
    assert set(np.unique(train)) == {0.0, 2.0}  # no rescaling during training
    n = train.size
    assert abs(train.mean() - 2.0 * (1 - p)) < 5 * 2.0 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(vanilla_dropout_backward(np.ones(SHAPE), cache), train / 2.0)

    test, cache = vanilla_dropout_forward(x, p, mode="test")
    np.testing.assert_array_equal(test, np.full(SHAPE, 2.0 * (1 - p)))
    np.testing.assert_array_equal(vanilla_dropout_backward(np.ones(SHAPE), cache), 1 - p)


def test_vanilla_and_inverted_differ_only_by_the_factor_one_minus_p():
    x = np.random.default_rng(0).standard_normal((20, 20))
    inverted, _ = dropout_forward(x, 0.3, mode="train", seed=9)
    vanilla, _ = vanilla_dropout_forward(x, 0.3, mode="train", seed=9)
    np.testing.assert_allclose(vanilla, inverted * 0.7, rtol=1e-15)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("forward", [dropout_forward, vanilla_dropout_forward])
@pytest.mark.parametrize(
    "p, error, match",
    [
        (1.0, ValueError, r"p must be in \[0, 1\), got 1.*nothing to rescale"),
        (1, ValueError, r"p must be in \[0, 1\), got 1"),
        (-0.1, ValueError, r"p must be in \[0, 1\), got -0.1"),
        (1.5, ValueError, r"p must be in \[0, 1\), got 1.5"),
        ("0.5", TypeError, "p must be a number"),
        (True, TypeError, "p must be a number"),
    ],
)
def test_bad_p(forward, p, error, match):
    with pytest.raises(error, match=match):
        forward(np.ones(3), p, mode="train", seed=0)


@pytest.mark.parametrize("forward", [dropout_forward, vanilla_dropout_forward])
def test_bad_mode_randomness_and_input(forward):
    with pytest.raises(ValueError, match="mode must be 'train' or 'test', got 'eval'"):
        forward(np.ones(3), 0.5, mode="eval", seed=0)
    with pytest.raises(ValueError, match="pass rng="):
        forward(np.ones(3), 0.5, mode="train")
    with pytest.raises(ValueError, match="either rng or seed"):
        forward(np.ones(3), 0.5, mode="train", rng=np.random.default_rng(0), seed=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        forward(np.ones(3), 0.5, mode="test", rng=0)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        forward(np.ones(3, dtype=int), 0.5, mode="train", seed=0)


def test_backward_shape_mismatch_is_named():
    _, cache = dropout_forward(np.ones((2, 3)), 0.5, mode="train", seed=0)
    with pytest.raises(
        ValueError, match=r"dout has shape \(3, 2\) but the dropout mask has shape \(2, 3\)"
    ):
        dropout_backward(np.ones((3, 2)), cache)
