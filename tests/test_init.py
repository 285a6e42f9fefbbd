"""Initializers against torch.nn.init: gains, fans (with our transposed layout) and variances."""

import math

import numpy as np
import pytest
import torch
import torch.nn.init as nn_init

from coursekit import init

# A coursekit weight of shape (fan_in, fan_out) is a torch weight of shape (fan_out, fan_in).
SHAPE = (300, 200)
N = SHAPE[0] * SHAPE[1]
# Fourth moment over variance squared: 3 for a normal, 9/5 for a uniform distribution.
KURTOSIS = {"normal": 3.0, "uniform": 9.0 / 5.0}


def variance_bound(variance: float, kind: str, n: int = N, sigmas: float = 4.0) -> float:
    """``sigmas`` standard deviations of the sample variance of ``n`` iid zero-mean draws."""
    return sigmas * variance * math.sqrt((KURTOSIS[kind] - 1.0) / n)


def torch_sample(fn, shape, **kwargs) -> np.ndarray:
    w = torch.empty(shape[::-1], dtype=torch.float64)
    fn(w, generator=torch.Generator().manual_seed(0), **kwargs)
    return w.numpy().T


# (function name, kwargs, expected variance for SHAPE); torch's function is the name + "_".
fan_in, fan_out = SHAPE
CASES = [
    ("xavier_normal", {}, 2 / (fan_in + fan_out)),
    ("xavier_normal", {"gain": 5 / 3}, (5 / 3) ** 2 * 2 / (fan_in + fan_out)),
    ("xavier_uniform", {}, 2 / (fan_in + fan_out)),
    ("xavier_uniform", {"gain": 2.0}, 8 / (fan_in + fan_out)),
    ("kaiming_normal", {}, 2 / fan_in),
    ("kaiming_normal", {"mode": "fan_out"}, 2 / fan_out),
    ("kaiming_normal", {"a": 0.2}, 2 / (1 + 0.04) / fan_in),
    ("kaiming_normal", {"nonlinearity": "tanh"}, (25 / 9) / fan_in),
    ("kaiming_uniform", {}, 2 / fan_in),
    ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}, 2 / fan_out),
    ("kaiming_uniform", {"a": math.sqrt(5)}, 1 / 3 / fan_in),  # torch's nn.Linear default
]


@pytest.mark.parametrize("name, kwargs, variance", CASES)
def test_sample_variance_matches_torch_formula(name, kwargs, variance):
    kind = name.split("_")[1]
    w = getattr(init, name)(SHAPE, **kwargs, seed=0)
    assert w.shape == SHAPE and w.dtype == np.float64
    bound = variance_bound(variance, kind)
    assert abs(np.mean(w**2) - variance) < bound
    assert abs(np.mean(w)) < 4 * math.sqrt(variance / N)
    # torch's own sample, on the transposed shape, estimates the same variance.
    t = torch_sample(getattr(torch.nn.init, name + "_"), SHAPE, **kwargs)
    assert abs(np.mean(t**2) - variance) < bound
    if kind == "uniform":
        # Same support as torch: [-b, b] with b = sqrt(3 * variance).
        b = math.sqrt(3 * variance)
        assert np.abs(w).max() <= b and np.abs(w).max() > 0.999 * b
        assert np.abs(t).max() <= b * (1 + 1e-12)


def test_fan_in_is_the_first_axis():
    tall = init.kaiming_normal((2000, 20), seed=0)  # fan_in 2000: tiny weights
    wide = init.kaiming_normal((20, 2000), seed=0)  # fan_in 20: large weights
    assert abs(tall.var() - 2 / 2000) < variance_bound(2 / 2000, "normal", tall.size)
    assert abs(wide.var() - 2 / 20) < variance_bound(2 / 20, "normal", wide.size)


def test_trailing_dimensions_multiply_both_fans_as_in_torch():
    shape = (8, 6, 5, 5)  # (fan_in channels, fan_out channels, kh, kw) in our layout
    w = init.xavier_uniform(shape, seed=0)
    t = torch.empty(6, 8, 5, 5)
    assert torch.nn.init._calculate_fan_in_and_fan_out(t) == (8 * 25, 6 * 25)
    b = math.sqrt(6 / (8 * 25 + 6 * 25))
    assert np.abs(w).max() <= b and np.abs(w).max() > 0.95 * b


def test_normal_and_zeros():
    w = init.normal(SHAPE, 0.01, seed=0)
    assert abs(w.var() - 1e-4) < variance_bound(1e-4, "normal")
    assert init.normal(SHAPE, 0.0, seed=0).max() == 0.0
    z = init.zeros((3, 4), dtype=np.float32)
    assert z.dtype == np.float32 and not z.any() and z.shape == (3, 4)


NONLINEARITIES = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose1d", None),
    ("conv_transpose2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("selu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", 3),
    ("leaky_relu", 1.0),
    ("tanh", 0.5),
]


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


def test_calculate_gain_covers_every_name_torch_accepts():
    # Every name in our list is one torch knows, and torch rejects a name we reject.
    for name in init.NONLINEARITIES:
        torch.nn.init.calculate_gain(name)
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain("elu")
    with pytest.raises(ValueError, match="nonlinearity must be one of .*got 'elu'"):
        init.calculate_gain("elu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "fn",
    [
        init.normal,
        init.xavier_normal,
        init.xavier_uniform,
        init.kaiming_normal,
        init.kaiming_uniform,
    ],
)
def test_dtype_and_seed(fn, dtype):
    a = fn((20, 10), dtype=dtype, seed=3)
    b = fn((20, 10), dtype=dtype, rng=np.random.default_rng(3))
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn((20, 10), dtype=dtype, seed=4))


def test_init_weight_dispatches_by_name():
    assert not init.init_weight("zeros", (4, 5)).any()
    w = init.init_weight("xavier", SHAPE, seed=0)
    assert abs(w.var() - 2 / (fan_in + fan_out)) < variance_bound(2 / (fan_in + fan_out), "normal")
    w = init.init_weight("he", SHAPE, seed=0)
    assert abs(w.var() - 2 / fan_in) < variance_bound(2 / fan_in, "normal")
    w = init.init_weight("he", SHAPE, nonlinearity="tanh", seed=0)
    assert abs(w.var() - (25 / 9) / fan_in) < variance_bound((25 / 9) / fan_in, "normal")
    w = init.init_weight(0.01, SHAPE, seed=0)
    assert abs(w.var() - 1e-4) < variance_bound(1e-4, "normal")


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: init.zeros((3, -1)), ValueError, r"non-negative sizes, got \(3, -1\)"),
        (lambda: init.normal((-2,), 1.0, seed=0), ValueError, "non-negative sizes"),
        (lambda: init.zeros("3x4"), TypeError, "shape must contain ints"),
        (lambda: init.normal((3, 3), -1.0, seed=0), ValueError, "std must be >= 0, got -1.0"),
        (
            lambda: init.normal((3, 3), "big", seed=0),
            TypeError,
            "std must be a non-negative number",
        ),
        (
            lambda: init.xavier_normal((5,), seed=0),
            ValueError,
            r"at least 2 dimensions .* got \(5,\)",
        ),
        (lambda: init.xavier_normal((0, 5), seed=0), ValueError, "non-zero fans"),
        (
            lambda: init.kaiming_normal((3, 3), mode="fan_avg", seed=0),
            ValueError,
            "mode must be 'fan_in' or 'fan_out', got 'fan_avg'",
        ),
        (
            lambda: init.kaiming_normal((3, 3), nonlinearity="swish", seed=0),
            ValueError,
            "nonlinearity must be one of",
        ),
        (lambda: init.calculate_gain("leaky_relu", "steep"), TypeError, "negative slope"),
        (lambda: init.zeros((3, 3), dtype=np.int64), TypeError, "floating dtype"),
        (lambda: init.xavier_normal((3, 3)), ValueError, "pass rng="),
        (
            lambda: init.init_weight("glorot", (3, 3), seed=0),
            ValueError,
            r"init must be one of 'zeros', 'xavier', 'he' .*got 'glorot'",
        ),
        (lambda: init.init_weight(None, (3, 3), seed=0), ValueError, "init must be one of"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- NaN and infinite scales ------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("ours", "theirs", "match"),
    [
        (
            lambda: init.normal((3, 4), NAN, seed=0),
            lambda t: nn_init.normal_(t, std=NAN),
            "std must be >= 0, got nan",
        ),
        (
            lambda: init.xavier_normal((3, 4), gain=NAN, seed=0),
            lambda t: nn_init.xavier_normal_(t, gain=NAN),
            "gain must be >= 0, got nan",
        ),
        (
            lambda: init.xavier_uniform((3, 4), gain=NAN, seed=0),
            lambda t: nn_init.xavier_uniform_(t, gain=NAN),
            "gain must be >= 0, got nan",
        ),
        (
            lambda: init.xavier_normal((3, 4), gain=-1.0, seed=0),
            lambda t: nn_init.xavier_normal_(t, gain=-1.0),
            "gain must be >= 0, got -1.0",
        ),
        (
            lambda: init.xavier_uniform((3, 4), gain=-1.0, seed=0),
            lambda t: nn_init.xavier_uniform_(t, gain=-1.0),
            "gain must be >= 0, got -1.0",
        ),
        (
            lambda: init.kaiming_normal((3, 4), a=NAN, seed=0),
            lambda t: nn_init.kaiming_normal_(t, a=NAN),
            "slope.* must be finite, got nan",
        ),
        (
            lambda: init.kaiming_uniform((3, 4), a=NAN, seed=0),
            lambda t: nn_init.kaiming_uniform_(t, a=NAN),
            "slope.* must be finite, got nan",
        ),
    ],
)
def test_nan_and_negative_scales_are_refused_as_torch_refuses_them(ours, theirs, match):
    with pytest.raises(RuntimeError):
        theirs(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=match):
        ours()


@pytest.mark.parametrize(
    ("ours", "theirs", "match"),
    [
        (
            lambda: init.normal((3, 4), INF, seed=0),
            lambda t: nn_init.normal_(t, std=INF),
            "std must be finite, got inf",
        ),
        (
            lambda: init.xavier_normal((3, 4), gain=INF, seed=0),
            lambda t: nn_init.xavier_normal_(t, gain=INF),
            "gain must be finite, got inf",
        ),
        (
            lambda: init.init_weight(INF, (3, 4), seed=0),
            lambda t: nn_init.normal_(t, std=INF),
            "std must be finite, got inf",
        ),
    ],
)
def test_infinite_scales_are_refused_although_torch_makes_infinite_weights(ours, theirs, match):
    assert not torch.isfinite(theirs(torch.zeros(4, 3))).any()
    with pytest.raises(ValueError, match=match):
        ours()


def test_calculate_gain_refuses_a_nan_slope():
    assert math.isnan(nn_init.calculate_gain("leaky_relu", NAN))  # torch returns NaN
    with pytest.raises(ValueError, match="negative slope.* got nan"):
        init.calculate_gain("leaky_relu", NAN)
    assert init.calculate_gain("leaky_relu", INF) == nn_init.calculate_gain("leaky_relu", INF) == 0
