import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import batched_shapes, float64_arrays, small_dim

from coursekit.gradcheck import GradientCheckError, check_layer_gradients
from coursekit.layers import affine_backward, affine_forward, maxout_backward, maxout_forward

TOL = {"rtol": 1e-10, "atol": 1e-12}


def torch_grads(fn, arrays, dout):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


@st.composite
def affine_cases(draw, pieces: int | None = None):
    x_shape = draw(batched_shapes())
    d = int(np.prod(x_shape[1:]))
    m = draw(small_dim(1, 6))
    w_shape, b_shape = ((d, m), (m,)) if pieces is None else ((d, m, pieces), (m, pieces))
    x = draw(float64_arrays(x_shape))
    w = draw(float64_arrays(w_shape))
    b = draw(float64_arrays(b_shape))
    dout = draw(float64_arrays((x_shape[0], m)))
    return x, w, b, dout


@given(affine_cases())
def test_affine_matches_torch(case):
    x, w, b, dout = case
    out, cache = affine_forward(x, w, b)
    expected, grads = torch_grads(lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b, case[:3], dout)
    np.testing.assert_allclose(out, expected, **TOL)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape
    for got, want in zip((dx, dw, db), grads):
        np.testing.assert_allclose(got, want, **TOL)


def torch_maxout(x, w, b):
    z = torch.einsum("nd,dmk->nmk", x.reshape(x.shape[0], -1), w) + b
    return z.max(dim=2).values


@given(st.integers(2, 4).flatmap(lambda k: affine_cases(pieces=k)))
def test_maxout_matches_torch(case):
    x, w, b, dout = case
    z = np.einsum("nd,dmk->nmk", x.reshape(x.shape[0], -1), w) + b
    top2 = np.sort(z, axis=2)[..., -2:]
    # A near tie can be broken differently by two summation orders; exact ties and the
    # first-piece convention are tested separately.
    assume(np.all(top2[..., 1] - top2[..., 0] > 1e-9))
    out, cache = maxout_forward(x, w, b)
    expected, grads = torch_grads(torch_maxout, case[:3], dout)
    np.testing.assert_allclose(out, expected, **TOL)
    for got, want in zip(maxout_backward(dout, cache), grads):
        np.testing.assert_allclose(got, want, **TOL)


def test_maxout_ties_go_to_the_first_piece_like_torch():
    x = np.zeros((2, 3))
    w = np.ones((3, 2, 3))
    b = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])
    out, cache = maxout_forward(x, w, b)
    np.testing.assert_array_equal(out, [[1.0, 2.0], [1.0, 2.0]])
    _, _, db = maxout_backward(dout, cache)
    _, (_, _, expected_db) = torch_grads(torch_maxout, (x, w, b), dout)
    np.testing.assert_array_equal(db, [[4.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    np.testing.assert_array_equal(db, expected_db)


def test_maxout_with_a_zero_piece_is_relu_of_the_other():
    rng = np.random.default_rng(0)
    x, w1, b1 = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    w = np.stack([w1, np.zeros_like(w1)], axis=2)
    b = np.stack([b1, np.zeros_like(b1)], axis=1)
    np.testing.assert_allclose(maxout_forward(x, w, b)[0], np.maximum(x @ w1 + b1, 0), rtol=1e-15)


def layer_inputs(seed, pieces=None, x_shape=(4, 2, 3), m=5):
    rng = np.random.default_rng(seed)
    d = int(np.prod(x_shape[1:]))
    w_shape, b_shape = ((d, m), (m,)) if pieces is None else ((d, m, pieces), (m, pieces))
    return {
        "x": rng.standard_normal(x_shape),
        "w": rng.standard_normal(w_shape),
        "b": rng.standard_normal(b_shape),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_affine_and_maxout_pass_the_gradient_check(seed):
    errors = check_layer_gradients(
        affine_forward, affine_backward, layer_inputs(seed), verbose=False
    )
    assert max(errors.values()) < 1e-7
    errors = check_layer_gradients(
        maxout_forward, maxout_backward, layer_inputs(seed, pieces=3), verbose=False
    )
    assert max(errors.values()) < 1e-7


def maxout_backward_every_piece(dout, cache):
    # Planted bug: the gradient flows into every piece, not only the winning one.
    x, w, _ = cache
    k = w.shape[2]
    dz = np.repeat(dout[..., None], k, axis=2)
    x2 = x.reshape(x.shape[0], -1)
    dx = (dz.reshape(len(x), -1) @ w.reshape(w.shape[0], -1).T).reshape(x.shape)
    return dx, np.einsum("nd,nmk->dmk", x2, dz), dz.sum(axis=0)


def test_gradient_check_catches_planted_maxout_bug():
    with pytest.raises(GradientCheckError, match="gradient check failed for x, w, b"):
        check_layer_gradients(
            maxout_forward, maxout_backward_every_piece, layer_inputs(0, pieces=2), verbose=False
        )


def affine_backward_no_transpose_dx(dout, cache):
    # Planted bug: dx = dout @ w instead of dout @ w.T (shapes agree when w is square).
    x, w, b = cache
    _, dw, db = affine_backward(dout, cache)
    return (dout @ w).reshape(x.shape), dw, db


def test_gradient_check_catches_planted_affine_bug():
    inputs = layer_inputs(1, x_shape=(3, 5), m=5)
    with pytest.raises(GradientCheckError, match=r"failed for x \(tol"):
        check_layer_gradients(
            affine_forward, affine_backward_no_transpose_dx, inputs, verbose=False
        )


def test_affine_bad_shapes_name_both_shapes():
    x, w, b = np.zeros((2, 3, 4)), np.zeros((10, 5)), np.zeros(5)
    with pytest.raises(
        ValueError, match=r"x of shape \(2, 3, 4\) flattens to \(2, 12\) but w has shape \(10, 5\)"
    ):
        affine_forward(x, w, b)
    with pytest.raises(
        ValueError, match=r"b must have shape \(5,\) to match w \(12, 5\), got \(4,\)"
    ):
        affine_forward(x, np.zeros((12, 5)), np.zeros(4))
    with pytest.raises(ValueError, match=r"w must be 2-D \(D, M\), got shape \(12,\)"):
        affine_forward(x, np.zeros(12), b)
    _, cache = affine_forward(x, np.zeros((12, 5)), b)
    with pytest.raises(
        ValueError, match=r"dout must have the output's shape \(2, 5\), got \(5, 2\)"
    ):
        affine_backward(np.zeros((5, 2)), cache)


def test_maxout_bad_shapes_name_both_shapes():
    x = np.zeros((2, 6))
    with pytest.raises(ValueError, match=r"w must be 3-D \(D, M, K\), got shape \(6, 4\)"):
        maxout_forward(x, np.zeros((6, 4)), np.zeros((4, 2)))
    with pytest.raises(
        ValueError, match=r"b must have shape \(4, 2\) to match w \(6, 4, 2\), got \(4,\)"
    ):
        maxout_forward(x, np.zeros((6, 4, 2)), np.zeros(4))
    with pytest.raises(
        ValueError, match=r"x of shape \(2, 6\) flattens to \(2, 6\) but w has shape"
    ):
        maxout_forward(x, np.zeros((5, 4, 2)), np.zeros((4, 2)))
