"""BatchNorm and LayerNorm against torch.nn.functional and the gradient check."""

import contextlib
import os
import subprocess
import sys
import textwrap
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import float64_arrays, normalization_inputs, seeded_rngs

import coursekit.normalization as normalization
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


def layernorm_round_trip(x, gamma, beta, dout, eps=1e-5):
    """``(out, dx, dgamma, dbeta)`` of :func:`layernorm_forward` then :func:`layernorm_backward`."""
    out, cache = layernorm_forward(x, gamma, beta, eps)
    return (out, *layernorm_backward(dout, cache))


def torch_layernorm(x, gamma, beta, dout, eps=1e-5):
    """The same four from ``F.layer_norm`` and autograd."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = F.layer_norm(xt, (x.shape[1],), gt, bt, eps)
    out.backward(torch.tensor(dout))
    return out, xt.grad, gt.grad, bt.grad


@given(normalization_inputs(min_batch=1), st.sampled_from([1e-5, 1e-2]))
def test_layernorm_matches_torch(inputs, eps):
    for ours, theirs in zip(layernorm_round_trip(*inputs, eps), torch_layernorm(*inputs, eps)):
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
    # This is the numpy path's test: the fused kernels have their own below.
    import coursekit.normalization as normalization

    monkeypatch.setenv("COURSEKIT_NUMBA", "0")

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
        results[threads] = layernorm_round_trip(x, gamma, beta, dout)
    assert threads_started == ["coursekit-layernorm"] * 2  # forward and backward, with "2" only
    for single, double in zip(results["1"], results["2"]):
        np.testing.assert_array_equal(single, double)
    for ours, theirs in zip(results["2"], torch_layernorm(x, gamma, beta, dout)):
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


# -- LayerNorm's fused kernels (numba) ------------------------------------------------------


@contextlib.contextmanager
def fused_for_any_size():
    """The fused kernels for arrays of every size (normally from 2**18 elements on).

    Yields the mocks of ``coursekit.fused_layernorm.forward`` and ``backward``: they run the
    real kernels and count the calls, so a test can tell which path ran.
    """
    pytest.importorskip("numba")
    fused = normalization._load_fused()
    assert fused, "numba is installed but the fused kernels did not load"
    with (
        mock.patch.object(normalization, "_FUSED_MIN_ELEMENTS", 0),
        mock.patch.dict(os.environ, {"COURSEKIT_NUMBA": "1"}),
        mock.patch.object(fused, "forward", wraps=fused.forward) as forward,
        mock.patch.object(fused, "backward", wraps=fused.backward) as backward,
    ):
        yield forward, backward


def numpy_layernorm(*args):
    with mock.patch.dict(os.environ, {"COURSEKIT_NUMBA": "0"}):
        return layernorm_round_trip(*args)


# Up to 40 rows (chunks of unequal sizes, some empty) and 70 features (the vectorized loops).
LARGER_INPUTS = normalization_inputs(min_batch=1, max_batch=40, max_features=70)


@given(LARGER_INPUTS, st.sampled_from([1e-5, 1e-2]))
def test_fused_layernorm_matches_torch_and_the_numpy_path_in_float64(inputs, eps):
    with fused_for_any_size() as (forward, backward):
        fused = layernorm_round_trip(*inputs, eps)
    assert forward.call_count == backward.call_count == 1
    for ours, theirs, reference in zip(
        fused, torch_layernorm(*inputs, eps), numpy_layernorm(*inputs, eps)
    ):
        assert ours.dtype == np.float64
        assert_matches_torch(ours, theirs)
        assert_matches_torch(ours, torch.from_numpy(reference))


@st.composite
def float32_layernorm_inputs(draw):
    """``(x, gamma, beta, dout)`` in float32 whose rows have a spread (8 features or more).

    A nearly constant row has a standard deviation below sqrt(eps), and float32's rounding of
    its mean is then multiplied by 1/sqrt(eps) = 316: float32 results, PyTorch's too, can only
    be compared loosely there. The float64 test covers such rows.
    """
    n, d = draw(st.integers(1, 40)), draw(st.integers(8, 70))
    rng = draw(seeded_rngs())
    loc, scale = draw(st.floats(-5, 5)), draw(st.floats(0.5, 5))
    x = loc + scale * rng.standard_normal((n, d))
    gamma, beta, dout = rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal((n, d))
    return [a.astype(np.float32) for a in (x, gamma, beta, dout)]


@given(float32_layernorm_inputs())
def test_fused_layernorm_matches_torch_and_the_numpy_path_in_float32(inputs):
    with fused_for_any_size() as (forward, backward):
        fused = layernorm_round_trip(*inputs)
    assert forward.call_count == backward.call_count == 1
    for ours, theirs, reference in zip(fused, torch_layernorm(*inputs), numpy_layernorm(*inputs)):
        assert ours.dtype == np.float32
        assert_matches_torch(ours, theirs, rtol=1e-5)
        assert_matches_torch(ours, torch.from_numpy(reference), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_layernorm_is_bit_for_bit_the_same_on_one_thread_or_two(monkeypatch, dtype):
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setattr(normalization.os, "cpu_count", lambda: 2)
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((203, 150)) * 3 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(150).astype(dtype), rng.standard_normal(150).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    before = numba.get_num_threads()
    results = {}
    with fused_for_any_size() as (forward, backward):
        for threads in (1, 2):
            monkeypatch.setenv("OMP_NUM_THREADS", "2")
            numba.set_num_threads(threads)
            try:
                results[threads] = layernorm_round_trip(x, gamma, beta, dout)
            finally:
                numba.set_num_threads(before)
        # OMP_NUM_THREADS=1: one thread, and numba's own setting is left as it was.
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        results["rule"] = layernorm_round_trip(x, gamma, beta, dout)
        assert numba.get_num_threads() == before
        assert forward.call_args.kwargs["one_thread"] is True
    assert forward.call_count == backward.call_count == 3
    for one, two, rule in zip(results[1], results[2], results["rule"]):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(one, rule)


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((0, 5)),
        np.zeros((5, 0)),
        np.full((1, 1), 3.0),
        np.arange(51.0).reshape(17, 3) ** 1.5,
        np.asfortranarray(np.arange(300.0).reshape(3, 100) % 7),
        (np.arange(400.0).reshape(4, 100) % 11)[:, ::2],
    ],
    ids=["no rows", "no features", "one element", "17 rows", "Fortran order", "strided"],
)
def test_fused_layernorm_edge_shapes_and_layouts_agree_with_numpy(x):
    d = x.shape[1]
    gamma, beta = np.linspace(-1, 2, d), np.linspace(0.5, 1, d)
    dout = np.cos(np.arange(x.size, dtype=float)).reshape(x.shape)
    x = x.copy() if x.flags.writeable else x
    x.flags.writeable = False  # read-only input is taken as it is, without a copy
    with fused_for_any_size() as (forward, backward):
        fused = layernorm_round_trip(x, gamma, beta, dout)
    assert forward.call_count == backward.call_count == 1
    for ours, reference in zip(fused, numpy_layernorm(x, gamma, beta, dout)):
        assert ours.shape == reference.shape
        assert_matches_torch(ours, torch.from_numpy(reference))


def test_fused_forward_and_numpy_backward_share_the_cache():
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((9, 33)).astype(np.float32), rng.standard_normal((9, 33))
    gamma, beta = rng.standard_normal(33), rng.standard_normal(33)
    with fused_for_any_size() as (forward, backward):
        out, cache = layernorm_forward(x, gamma, beta)
        dx, dgamma, dbeta = layernorm_backward(dout, cache)  # float64 dout: numpy's backward
    assert forward.call_count == 1 and backward.call_count == 0
    assert set(cache) == {"xhat", "gamma", "inv_std"} and cache["inv_std"].shape == (9, 1)
    assert dx.dtype == np.float64
    with mock.patch.dict(os.environ, {"COURSEKIT_NUMBA": "0"}):
        _, numpy_cache = layernorm_forward(x, gamma, beta)
        expected = layernorm_backward(dout, numpy_cache)
    for ours, theirs in zip((dx, dgamma, dbeta), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_the_fused_kernels_take_only_the_shapes_they_were_written_for():
    x = dout = np.ones((4, 3))
    with fused_for_any_size() as (_, backward):
        fused = normalization._load_fused()
        assert fused.accepts("forward", (x, np.ones(3), np.ones(3)))
        assert not fused.accepts("forward", (x, np.ones(4), np.ones(3)))
        assert fused.accepts("backward", (dout, x, np.ones(3), np.ones((4, 1))))
        for gamma, inv_std in [(np.ones(4), np.ones((4, 1))), (np.ones(3), np.ones((3, 1)))]:
            assert not fused.accepts("backward", (dout, x, gamma, inv_std))
        # the compiled loops check no bounds: a cache of another shape goes to numpy, which
        # says what is wrong
        _, cache = layernorm_forward(x, np.ones(3), np.zeros(3))
        cache["inv_std"] = np.ones((3, 1))
        with pytest.raises(ValueError):
            layernorm_backward(dout, cache)
    assert backward.call_count == 0


def without_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # "import numba" now fails


def numba_without_a_cache(monkeypatch):
    numba = pytest.importorskip("numba")
    from numba.core.errors import NumbaWarning

    def unwritable_cache(*args, **kwargs):
        # What numba does where neither site-packages nor a home directory is writable.
        warnings.warn("cannot cache compiled function", NumbaWarning, stacklevel=2)
        raise RuntimeError("cannot cache function '_forward_kernel': no locator available")

    monkeypatch.setattr(numba, "njit", unwritable_cache)


@pytest.mark.parametrize("break_numba", [without_numba, numba_without_a_cache])
def test_layernorm_runs_numpy_silently_where_numba_cannot_help(monkeypatch, capfd, break_numba):
    break_numba(monkeypatch)
    monkeypatch.delitem(sys.modules, "coursekit.fused_layernorm", raising=False)
    monkeypatch.setattr(normalization, "_fused", None)
    monkeypatch.setattr(normalization, "_FUSED_MIN_ELEMENTS", 0)
    monkeypatch.delenv("COURSEKIT_NUMBA", raising=False)
    args = (np.arange(12.0).reshape(3, 4) ** 2, np.ones(4), np.zeros(4), np.ones((3, 4)))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        results = layernorm_round_trip(*args)
    assert shown == []  # nothing reaches the user's output
    assert normalization._fused is False
    for ours, reference in zip(results, numpy_layernorm(*args)):
        np.testing.assert_array_equal(ours, reference)
    assert capfd.readouterr() == ("", "")


def test_a_failing_fused_kernel_turns_the_fused_path_off(monkeypatch):
    monkeypatch.setattr(normalization, "_fused", normalization._fused)  # restored afterwards
    args = (np.arange(12.0).reshape(3, 4) ** 2, np.ones(4), np.zeros(4), np.ones((3, 4)))
    with fused_for_any_size() as (forward, backward):
        forward.side_effect = RuntimeError("no threading layer could be loaded")
        results = layernorm_round_trip(*args)
        assert normalization._fused is False
        layernorm_round_trip(*args)
    assert forward.call_count == 1 and backward.call_count == 0
    for ours, reference in zip(results, numpy_layernorm(*args)):
        np.testing.assert_array_equal(ours, reference)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_importing_normalization_or_small_layernorm_does_not_import_numba():
    code = """
        import sys
        import numpy as np
        import coursekit, coursekit.normalization as n
        assert "numba" not in sys.modules
        x = np.ones((4, 5))
        n.layernorm_backward(x, n.layernorm_forward(x, np.ones(5), np.zeros(5))[1])
        assert "numba" not in sys.modules, "a small array imported numba"
        x = np.ones((512, 512))  # large, but COURSEKIT_NUMBA=0
        n.layernorm_backward(x, n.layernorm_forward(x, np.ones(512), np.zeros(512))[1])
        assert "numba" not in sys.modules, "COURSEKIT_NUMBA=0 imported numba"
    """
    result = run_python(code, COURSEKIT_NUMBA="0")
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_child_forked_after_the_fused_kernels_ran_uses_numpy():
    # A child forked after numba's OpenMP threads started would abort at its first kernel.
    pytest.importorskip("numba")
    code = """
        import os
        import numpy as np
        import coursekit.normalization as n
        n._FUSED_MIN_ELEMENTS = 0
        x = np.arange(60.0).reshape(6, 10) % 7
        parent, _ = n.layernorm_forward(x, np.ones(10), np.zeros(10))
        assert n._fused, "the fused kernels did not run"
        pid = os.fork()
        if pid == 0:
            child, _ = n.layernorm_forward(x, np.ones(10), np.zeros(10))
            os._exit(0 if n._fused is False and np.allclose(child, parent) else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    """
    result = run_python(code, OMP_NUM_THREADS="2")
    assert result.returncode == 0, result.stderr
