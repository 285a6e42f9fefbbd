import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import WITH_NONFINITE, arrays_with_axis, float64_arrays, point_sets

from coursekit.ops import (
    log_softmax,
    logsumexp,
    one_hot,
    pairwise_distances,
    pairwise_distances_one_loop,
    pairwise_distances_two_loops,
    softmax,
)

EPS = np.finfo(np.float64).eps


def cdist(X, Y):
    return torch.cdist(torch.from_numpy(X), torch.from_numpy(Y)).numpy()


# --- pairwise distances ----------------------------------------------------------------------


@given(point_sets())
def test_loop_versions_match_torch_cdist(sets):
    X, Y = sets
    # Small inputs: torch.cdist subtracts directly, as the loops do.
    expected = cdist(X, Y)
    np.testing.assert_allclose(pairwise_distances_two_loops(X, Y), expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(pairwise_distances_one_loop(X, Y), expected, rtol=1e-10, atol=0)


@given(point_sets())
def test_vectorized_squared_distances_within_documented_round_off(sets):
    # The expansion's only error is round-off of order eps * (|x|^2 + |y|^2) in the squared
    # distance (that is why it clamps at 0); the loops have none of it.
    X, Y = sets
    exact_sq = pairwise_distances_two_loops(X, Y) ** 2
    got_sq = pairwise_distances(X, Y) ** 2
    norms = np.sum(X**2, axis=1)[:, None] + np.sum(Y**2, axis=1)[None, :]
    bound = 4 * (X.shape[1] + 2) * EPS * norms + 1e-12 * exact_sq
    assert np.all(np.abs(got_sq - exact_sq) <= bound)
    assert np.all(pairwise_distances(X, Y) >= 0)


@pytest.mark.parametrize("n, m, d", [(1, 1, 1), (3, 7, 2), (30, 40, 16), (60, 50, 128)])
def test_three_versions_agree_with_cdist_to_1e_10_relative(n, m, d):
    rng = np.random.default_rng(n * 1000 + m + d)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + 0.5
    expected = cdist(X, Y)  # n, m > 25 uses torch's own matrix-product path
    for version in (pairwise_distances, pairwise_distances_one_loop, pairwise_distances_two_loops):
        np.testing.assert_allclose(version(X, Y), expected, rtol=1e-10, atol=0)


def test_distance_of_a_point_to_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 33)) * 1e3 + 7.0
    D = pairwise_distances(X)
    assert np.all(np.diag(D) == 0.0)
    assert not np.any(np.isnan(D))
    np.testing.assert_array_equal(pairwise_distances(X, X), D)
    # torch.cdist's matrix-product path leaves round-off of ~1e-4 on this diagonal.
    off = ~np.eye(50, dtype=bool)
    np.testing.assert_allclose(D[off], cdist(X, X)[off], rtol=1e-10, atol=0)


def test_duplicate_points_never_give_nan_and_stay_near_zero():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 17)) * 100
    D = pairwise_distances(X, X.copy())  # a copy: no exact-diagonal shortcut
    assert np.all(np.isfinite(D)) and np.all(D >= 0)
    norms = np.linalg.norm(X, axis=1)
    assert np.all(np.diag(D) <= np.sqrt(4 * (17 + 2) * EPS) * np.sqrt(2) * norms)


def test_vectorized_version_builds_no_n_m_d_temporary():
    n, m, d = 100, 120, 400
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    full = n * m * d * 8

    def peak(fn):
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # Control: tracemalloc does see numpy's buffers, so the broadcast version shows up.
    assert peak(lambda: np.sqrt(np.sum((X[:, None, :] - Y[None]) ** 2, axis=2))) >= full
    assert peak(lambda: pairwise_distances(X, Y)) < full / 20


def test_dtypes():
    Xi = np.arange(12).reshape(4, 3)
    Yi = np.arange(6).reshape(2, 3) * 2
    out = pairwise_distances(Xi, Yi)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, pairwise_distances_two_loops(Xi, Yi), rtol=1e-12)
    X32 = np.ones((2, 3), dtype=np.float32)
    assert pairwise_distances(X32, X32).dtype == np.float32


def test_pairwise_distances_bad_shapes_name_both_shapes():
    X, Y = np.zeros((3, 4)), np.zeros((5, 3))
    for version in (pairwise_distances, pairwise_distances_one_loop, pairwise_distances_two_loops):
        with pytest.raises(ValueError, match=r"X has shape \(3, 4\) and Y has shape \(5, 3\)"):
            version(X, Y)
    with pytest.raises(ValueError, match=r"X must be 2-D, got shape \(4,\)"):
        pairwise_distances(np.zeros(4), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"Y must be 2-D, got shape \(2, 2, 4\)"):
        pairwise_distances(np.zeros((2, 4)), np.zeros((2, 2, 4)))
    with pytest.raises(TypeError, match="X must be a numeric array"):
        pairwise_distances([[None]], np.zeros((1, 1)))


# --- softmax, log_softmax, logsumexp ---------------------------------------------------------

LARGE = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=64)


@st.composite
def arrays_and_axis(draw, elements=LARGE):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    x = draw(float64_arrays(shape, elements))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@given(arrays_and_axis())
def test_softmax_family_matches_torch(case):
    x, axis = case
    t = torch.from_numpy(x)
    np.testing.assert_allclose(
        softmax(x, axis), torch.softmax(t, axis).numpy(), rtol=1e-10, atol=1e-300
    )
    np.testing.assert_allclose(
        log_softmax(x, axis), torch.log_softmax(t, axis).numpy(), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        logsumexp(x, axis), torch.logsumexp(t, axis).numpy(), rtol=1e-10, atol=1e-12
    )
    for fn in (softmax, log_softmax, logsumexp):
        assert np.all(np.isfinite(fn(x, axis)))
    np.testing.assert_allclose(np.sum(softmax(x, axis), axis=axis), 1.0, rtol=1e-12)


def test_softmax_family_finite_at_plus_minus_1e4():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert not np.all(np.isfinite(naive))  # what the shift avoids
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p, logp, lse = softmax(x), log_softmax(x), logsumexp(x)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1:], 1 / 3, rtol=1e-15)
    np.testing.assert_allclose(logp[0], [0.0, -2e4, -1e4], rtol=1e-15)
    np.testing.assert_allclose(lse, [1e4, -1e4 + np.log(3), 1e4 + np.log(3)], rtol=1e-15)


def test_logsumexp_keepdims_and_infinite_slices():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert logsumexp(x, axis=1, keepdims=True).shape == (2, 1, 4)
    np.testing.assert_allclose(
        logsumexp(x, axis=(0, 2)), torch.logsumexp(torch.from_numpy(x), (0, 2)).numpy(), rtol=1e-12
    )
    ninf = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    expected = torch.logsumexp(torch.from_numpy(ninf), 1).numpy()
    np.testing.assert_array_equal(logsumexp(ninf), expected)  # [-inf, 0], no NaN
    np.testing.assert_array_equal(log_softmax(ninf[1:]), [[0.0, -np.inf]])


def test_softmax_accepts_integers():
    np.testing.assert_allclose(softmax(np.array([0, 0])), [0.5, 0.5])


# --- one_hot ---------------------------------------------------------------------------------


@given(
    hnp.arrays(
        np.int64,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
        elements=st.integers(0, 6),
    ),
    st.integers(7, 9),
)
def test_one_hot_matches_torch(y, num_classes):
    expected = torch.nn.functional.one_hot(torch.from_numpy(y), num_classes).numpy()
    got = one_hot(y, num_classes)
    assert got.dtype == np.float64 and got.shape == y.shape + (num_classes,)
    np.testing.assert_array_equal(got, expected)


def test_one_hot_infers_classes_like_torch_and_takes_dtype():
    y = np.array([2, 0, 4])
    expected = torch.nn.functional.one_hot(torch.from_numpy(y)).numpy()
    np.testing.assert_array_equal(one_hot(y), expected)
    assert one_hot(y, 5, dtype=np.int64).dtype == np.int64


def test_one_hot_bad_input():
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\), got min 0 and max 3"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\), got min -1"):
        one_hot(np.array([-1, 2]), 3)
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        one_hot(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="num_classes must be a positive integer or -1, got 0"):
        one_hot(np.array([0]), 0)
    with pytest.raises(TypeError, match="num_classes must be an integer, got float"):
        one_hot(np.array([0]), 2.0)


@given(arrays_with_axis(elements=WITH_NONFINITE, min_side=0))
def test_softmax_family_matches_torch_on_inf_nan_and_empty_slices(case):
    # Same values, NaN in the same places (assert_allclose counts NaN == NaN).
    x, axis = case
    t = torch.from_numpy(x)
    with np.errstate(all="raise"):  # no warnings either: NaN is the intended answer
        ours = softmax(x, axis), log_softmax(x, axis), logsumexp(x, axis)
    theirs = torch.softmax(t, axis), torch.log_softmax(t, axis), torch.logsumexp(t, axis)
    for name, a, b in zip(("softmax", "log_softmax", "logsumexp"), ours, theirs):
        assert a.shape == tuple(b.shape), name
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_softmax_of_rows_with_infinities_is_torchs():
    rows = np.array(
        [
            [np.inf, 0.0, 0.0],  # the case: PyTorch gives NaN throughout, not [nan, 0, 0]
            [np.inf, -np.inf, 1.0],
            [-np.inf, 0.0, 1.0],  # -inf is an excluded class: probability 0
            [-np.inf, -np.inf, -np.inf],
        ]
    )
    p, logp, lse = softmax(rows), log_softmax(rows), logsumexp(rows)
    assert np.isnan(p[:2]).all() and np.isnan(logp[:2]).all()
    np.testing.assert_allclose(p[2], [0.0, 1 / (1 + np.e), np.e / (1 + np.e)], rtol=1e-15)
    assert np.isnan(p[3]).all()
    np.testing.assert_array_equal(lse[[0, 1, 3]], [np.inf, np.inf, -np.inf])


def test_empty_slices_follow_torch():
    assert softmax(np.zeros((3, 0))).shape == (3, 0)
    np.testing.assert_array_equal(logsumexp(np.zeros((3, 0))), [-np.inf] * 3)  # log of 0 terms
    assert logsumexp(np.zeros(0)) == -np.inf
    assert logsumexp(np.zeros((0, 4)), axis=-1).shape == (0,)
