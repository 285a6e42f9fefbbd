"""BatchNorm and LayerNorm against torch.nn.functional and the gradient check."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import float64_arrays, normalization_inputs

from coursekit.gradcheck import GradientCheckError, check_layer_gradients
from coursekit.normalization import (
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

RTOL = 1e-10
POSITIVE = st.floats(min_value=0.1, max_value=5.0, width=64)


def assert_matches_torch(ours, expected: torch.Tensor, rtol: float = RTOL):
    """Elementwise rtol, plus an absolute floor at rtol times the array's scale.

    Entries that cancel to about zero (a constant column after centering, say) carry
    round-off of the size of the whole array, which no elementwise relative bound can absorb.
    """
    expected = expected.detach().numpy()
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=rtol * scale)


def torch_batchnorm(x, gamma, beta, running_mean, running_var, dout, *, training, **kw):
    """Output, running statistics (updated in place on copies) and gradients from torch."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm, rv = torch.tensor(running_mean), torch.tensor(running_var)
    out = F.batch_norm(xt, rm, rv, gt, bt, training=training, **kw)
    out.backward(torch.tensor(dout))
    return out, rm, rv, (xt.grad, gt.grad, bt.grad)


# -- BatchNorm ----------------------------------------------------------------------------


@given(
    normalization_inputs(min_batch=2),
    st.data(),
    st.sampled_from([0.1, 0.0, 1.0, 0.37]),
    st.sampled_from([1e-5, 1e-3]),
)
def test_batchnorm_train_matches_torch(inputs, data, momentum, eps):
    x, gamma, beta, dout = inputs
    d = x.shape[1]
    running_mean = data.draw(float64_arrays((d,)))
    running_var = data.draw(float64_arrays((d,), POSITIVE))
    t_out, t_rm, t_rv, t_grads = torch_batchnorm(
        x, gamma, beta, running_mean, running_var, dout, training=True, momentum=momentum, eps=eps
    )
    rm, rv = running_mean.copy(), running_var.copy()
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode="train", momentum=momentum, eps=eps)
    assert_matches_torch(out, t_out)
    assert_matches_torch(rm, t_rm)
    assert_matches_torch(rv, t_rv)
    for backward in (batchnorm_backward, batchnorm_backward_graph):
        for ours, theirs in zip(backward(dout, cache), t_grads):
            assert_matches_torch(ours, theirs)


@given(normalization_inputs(min_batch=1), st.data())
def test_batchnorm_test_mode_matches_torch_and_leaves_running_stats(inputs, data):
    x, gamma, beta, dout = inputs
    d = x.shape[1]
    running_mean = data.draw(float64_arrays((d,)))
    running_var = data.draw(float64_arrays((d,), POSITIVE))
    t_out, _, _, t_grads = torch_batchnorm(
        x, gamma, beta, running_mean, running_var, dout, training=False
    )
    rm, rv = running_mean.copy(), running_var.copy()
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode="test")
    assert_matches_torch(out, t_out)
    np.testing.assert_array_equal(rm, running_mean)
    np.testing.assert_array_equal(rv, running_var)
    for backward in (batchnorm_backward, batchnorm_backward_graph):
        for ours, theirs in zip(backward(dout, cache), t_grads):
            assert_matches_torch(ours, theirs)


def test_running_statistics_follow_torch_over_50_steps_then_test_mode():
    rng = np.random.default_rng(7)
    d = 6
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    rm, rv = np.zeros(d), np.ones(d)
    t_rm, t_rv = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    for step in range(50):
        # Batches change in size, location and scale so the averages keep moving.
        n = int(rng.integers(2, 17))
        x = rng.standard_normal((n, d)) * (1 + step % 5) + np.sin(step)
        batchnorm_forward(x, gamma, beta, rm, rv, mode="train")
        F.batch_norm(torch.tensor(x), t_rm, t_rv, training=True, momentum=0.1, eps=1e-5)
        np.testing.assert_allclose(rm, t_rm.numpy(), rtol=RTOL, atol=1e-14)
        np.testing.assert_allclose(rv, t_rv.numpy(), rtol=RTOL)
    # After 50 steps the averages are far from their start (0 and 1).
    assert np.abs(rv - 1).max() > 1

    x = rng.standard_normal((5, d)) * 3
    dout = rng.standard_normal((5, d))
    t_out, _, _, t_grads = torch_batchnorm(x, gamma, beta, rm, rv, dout, training=False)
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode="test")
    assert_matches_torch(out, t_out)
    for ours, theirs in zip(batchnorm_backward(dout, cache), t_grads):
        assert_matches_torch(ours, theirs)


def test_test_mode_output_of_a_sample_does_not_depend_on_the_batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    args = (np.ones(4), np.zeros(4), rng.standard_normal(4), rng.uniform(0.5, 2, 4))
    full, _ = batchnorm_forward(x, *args, mode="test")
    alone, _ = batchnorm_forward(x[:1], *args, mode="test")
    np.testing.assert_array_equal(full[:1], alone)
    train, _ = batchnorm_forward(x, *args[:2], np.zeros(4), np.ones(4), mode="train")
    # In train mode the batch statistics give every column mean 0 and variance ~1.
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train.var(axis=0), 1, rtol=1e-3)


@given(normalization_inputs(min_batch=2))
def test_graph_and_closed_form_backward_agree(inputs):
    x, gamma, beta, dout = inputs
    _, cache = batchnorm_forward(
        x, gamma, beta, np.zeros_like(gamma), np.ones_like(gamma), mode="train"
    )
    closed, graph = batchnorm_backward(dout, cache), batchnorm_backward_graph(dout, cache)
    for a, b in zip(closed, graph):
        scale = max(1.0, np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_graph])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_backward_passes_gradient_check(backward, mode):
    rng = np.random.default_rng(3)
    n, d = 6, 4
    inputs = {
        "x": rng.standard_normal((n, d)) * 2 + 1,
        "gamma": rng.standard_normal(d),
        "beta": rng.standard_normal(d),
    }
    errors = check_layer_gradients(
        batchnorm_forward,
        backward,
        inputs,
        verbose=False,
        running_mean=rng.standard_normal(d),
        running_var=rng.uniform(0.5, 2, d),
        mode=mode,
    )
    assert max(errors.values()) < 1e-7


def test_gradient_check_catches_a_batchnorm_backward_without_the_mean_path():
    def forgets_the_mean(dout, cache):
        dx, dgamma, dbeta = batchnorm_backward(dout, cache)
        return dx + dout.mean(axis=0) * cache["gamma"] * cache["inv_std"], dgamma, dbeta

    rng = np.random.default_rng(4)
    inputs = {"x": rng.standard_normal((5, 3)), "gamma": np.ones(3), "beta": np.zeros(3)}
    with pytest.raises(GradientCheckError, match="x"):
        check_layer_gradients(
            batchnorm_forward,
            forgets_the_mean,
            inputs,
            verbose=False,
            running_mean=np.zeros(3),
            running_var=np.ones(3),
            mode="train",
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)).astype(dtype)
    dout = rng.standard_normal((6, 3)).astype(dtype)
    # float64 parameters do not promote float32 activations.
    out, cache = batchnorm_forward(
        x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), mode="train"
    )
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in batchnorm_backward(dout, cache))
    out, cache = layernorm_forward(x, np.ones(3), np.zeros(3))
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in layernorm_backward(dout, cache))


def test_float32_agrees_with_float64_to_single_precision():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 16)) * 3 + 2
    args = (rng.standard_normal(16), rng.standard_normal(16))
    out64, _ = batchnorm_forward(x, *args, np.zeros(16), np.ones(16), mode="train")
    out32, _ = batchnorm_forward(
        x.astype(np.float32), *args, np.zeros(16, np.float32), np.ones(16, np.float32), mode="train"
    )
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)


# -- LayerNorm ----------------------------------------------------------------------------


@given(normalization_inputs(min_batch=1), st.sampled_from([1e-5, 1e-2]))
def test_layernorm_matches_torch(inputs, eps):
    x, gamma, beta, dout = inputs
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_out = F.layer_norm(xt, (x.shape[1],), gt, bt, eps)
    t_out.backward(torch.tensor(dout))
    out, cache = layernorm_forward(x, gamma, beta, eps)
    assert_matches_torch(out, t_out)
    for ours, theirs in zip(layernorm_backward(dout, cache), (xt.grad, gt.grad, bt.grad)):
        assert_matches_torch(ours, theirs)


def test_layernorm_normalizes_each_sample_and_passes_gradient_check():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 7)) * np.array([[1.0], [10.0], [0.1], [3.0]]) + 5
    out, _ = layernorm_forward(x, np.ones(7), np.zeros(7))
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=1), 1, rtol=1e-2)
    inputs = {"x": x, "gamma": rng.standard_normal(7), "beta": rng.standard_normal(7)}
    errors = check_layer_gradients(layernorm_forward, layernorm_backward, inputs, verbose=False)
    assert max(errors.values()) < 1e-7


# -- bad input ------------------------------------------------------------------------------


def bn_args(n=4, d=3):
    return np.ones((n, d)), np.ones(d), np.zeros(d), np.zeros(d), np.ones(d)


@pytest.mark.parametrize(
    "position, name", [(1, "gamma"), (2, "beta"), (3, "running_mean"), (4, "running_var")]
)
def test_batchnorm_parameter_shape_mismatch_names_shapes(position, name):
    args = list(bn_args())
    args[position] = np.ones(5)
    with pytest.raises(
        ValueError, match=rf"{name} must have shape \(3,\) to match x of shape \(4, 3\), got \(5,\)"
    ):
        batchnorm_forward(*args, mode="train")


def test_batchnorm_single_sample_in_train_mode_is_rejected():
    with pytest.raises(ValueError, match=r"at least 2 samples.*\(1, 3\)"):
        batchnorm_forward(*bn_args(n=1), mode="train")
    out, _ = batchnorm_forward(*bn_args(n=1), mode="test")
    assert out.shape == (1, 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "eval"}, ValueError, "mode must be 'train' or 'test', got 'eval'"),
        ({"mode": "train", "momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\], got 1.5"),
        ({"mode": "train", "momentum": None}, TypeError, "momentum must be a number"),
        ({"mode": "train", "eps": 0.0}, ValueError, "eps must be > 0, got 0.0"),
    ],
)
def test_batchnorm_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        batchnorm_forward(*bn_args(), **kwargs)


def test_bad_arrays_are_rejected_with_their_names():
    x, gamma, beta, rm, rv = bn_args()
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        batchnorm_forward(x.astype(int), gamma, beta, rm, rv, mode="train")
    with pytest.raises(ValueError, match=r"x must be 2-D, got shape \(3,\)"):
        layernorm_forward(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match="running_var must be a numpy array"):
        batchnorm_forward(x, gamma, beta, rm, [1.0, 1.0, 1.0], mode="train")
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\).*got \(2,\)"):
        layernorm_forward(x, np.ones(2), np.zeros(3))
    _, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode="train")
    with pytest.raises(
        ValueError, match=r"dout has shape \(4, 2\) but the forward input x has shape \(4, 3\)"
    ):
        batchnorm_backward(np.ones((4, 2)), cache)


def test_layernorm_on_two_threads_is_bit_for_bit_the_single_thread_result(monkeypatch):
    # Large enough for the two-thread path; the halves' partial sums are the same either way.
    import coursekit.normalization as normalization

    rng = np.random.default_rng(7)
    x = rng.standard_normal((700, 400)) * 2 + 1
    gamma, beta, dout = (
        rng.standard_normal(400),
        rng.standard_normal(400),
        rng.standard_normal(x.shape),
    )
    assert x.size >= normalization._PARALLEL_MIN_ELEMENTS
    results, threads_started = {}, []
    start = normalization.threading.Thread.start

    def counting_start(self):
        threads_started.append(self.name)
        return start(self)

    monkeypatch.setattr(normalization.threading.Thread, "start", counting_start)
    monkeypatch.setattr(normalization.os, "cpu_count", lambda: 2)
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        out, cache = layernorm_forward(x, gamma, beta)
        results[threads] = (out, *layernorm_backward(dout, cache))
    assert threads_started == ["coursekit-layernorm"] * 2  # forward and backward, with "2" only
    for single, double in zip(results["1"], results["2"]):
        np.testing.assert_array_equal(single, double)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_out = F.layer_norm(xt, (400,), gt, bt, 1e-5)
    t_out.backward(torch.tensor(dout))
    for ours, theirs in zip(results["2"], (t_out, xt.grad, gt.grad, bt.grad)):
        assert_matches_torch(ours, theirs)


def test_layernorm_errors_in_the_second_thread_reach_the_caller(monkeypatch):
    import coursekit.normalization as normalization

    monkeypatch.setattr(normalization.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    calls = []

    def work(blocks):
        calls.append(blocks[0].start)
        if blocks[0].start > 0:
            raise FloatingPointError("in the second half")
        return "first"

    blocks = [slice(i, i + 1) for i in range(4)]
    with pytest.raises(FloatingPointError, match="in the second half"):
        normalization._in_two_halves(work, blocks, size=1 << 20)
    assert sorted(calls) == [0, 2]
