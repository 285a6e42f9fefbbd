import numpy as np
import pytest
from hypothesis import given
from strategies import batched_shapes, float64_arrays, seeded_rngs

from coursekit.gradcheck import (
    GradientCheckError,
    check_layer_gradients,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
    sparse_gradcheck,
)
from coursekit.layers import affine_backward, affine_forward


def smooth(x):
    return float(np.sum(np.sin(x) * x**2))


def smooth_grad(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def affine_inputs(rng, n=4, d=(2, 3), m=5):
    return {
        "x": rng.standard_normal((n, *d)),
        "w": rng.standard_normal((int(np.prod(d)), m)),
        "b": rng.standard_normal(m),
    }


# --- rel_error -------------------------------------------------------------------------------


def test_rel_error_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == 0.5
    assert rel_error(np.array([2.0]), np.array([-2.0])) == 1.0
    # Elementwise, then the max: one wrong small entry is not hidden by large correct ones
    # (a norm-based ratio would give about 1e-9 here).
    assert rel_error(np.array([1e6, 1e-3]), np.array([1e6, 2e-3])) == pytest.approx(1 / 3)
    # The eps floor: two near-zero values are compared against 1e-8, not each other.
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-2)
    assert rel_error(np.array([0.0]), np.array([0.0])) == 0.0
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


def test_rel_error_shape_mismatch_names_both():
    with pytest.raises(ValueError, match=r"x has shape \(2, 3\) but y has shape \(3, 2\)"):
        rel_error(np.zeros((2, 3)), np.zeros((3, 2)))


# --- numerical_gradient ----------------------------------------------------------------------


@given(batched_shapes(min_dims=1, max_dims=3).flatmap(float64_arrays))
def test_numerical_gradient_matches_analytic(x):
    num = numerical_gradient(smooth, x)
    np.testing.assert_allclose(num, smooth_grad(x), rtol=1e-7, atol=1e-8)


def test_centered_error_is_second_order_forward_is_first_order():
    x = np.array([0.3, -1.2, 2.0])
    exact = smooth_grad(x)

    def forward_difference(h):
        g = np.zeros_like(x)
        f0 = smooth(x)
        for i in range(x.size):
            xp = x.copy()
            xp[i] += h
            g[i] = (smooth(xp) - f0) / h
        return g

    # h large enough that truncation (not round-off) dominates.
    centered = [np.max(np.abs(numerical_gradient(smooth, x, h=h) - exact)) for h in (1e-2, 1e-3)]
    forward = [np.max(np.abs(forward_difference(h) - exact)) for h in (1e-2, 1e-3)]
    assert 70 < centered[0] / centered[1] < 130  # h / 10 -> error / 100
    assert 7 < forward[0] / forward[1] < 13  # h / 10 -> error / 10
    assert centered[1] < forward[1] / 100


def awkward_values():
    # Values where x + h - h != x in floating point, plus signed zero and a subnormal.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(40) * 10.0 ** rng.integers(-3, 4, 40)
    x[:3] = [-0.0, 5e-324, 1e300]
    return x.reshape(5, 8)


def test_inputs_restored_bit_for_bit():
    x = awkward_values()
    before = x.tobytes()
    # Control: perturbing with += h / -= h does leave a trace on these values.
    drift = x.copy()
    for i in np.ndindex(drift.shape):
        drift[i] += 1e-5
        drift[i] -= 2e-5
        drift[i] += 1e-5
    assert drift.tobytes() != before

    numerical_gradient(lambda a: float(np.sum(np.tanh(a))), x)
    assert x.tobytes() == before
    numerical_gradient_array(np.tanh, x, np.ones_like(x))
    assert x.tobytes() == before
    sparse_gradcheck(lambda a: float(np.sum(a)), x, np.ones_like(x), num_checks=30, seed=0)
    assert x.tobytes() == before


@pytest.mark.parametrize(
    "check",
    [
        lambda f, x: numerical_gradient(f, x),
        lambda f, x: numerical_gradient_array(lambda a: np.atleast_1d(f(a)), x, np.ones(1)),
        lambda f, x: sparse_gradcheck(f, x, np.zeros_like(x), num_checks=20, seed=1),
    ],
    ids=["numerical_gradient", "numerical_gradient_array", "sparse_gradcheck"],
)
def test_inputs_restored_when_f_raises_midway(check):
    x = awkward_values()
    before = x.tobytes()
    calls = []

    def f(a):
        calls.append(1)
        if len(calls) == 6:  # third coordinate, minus side: x is perturbed right now
            raise RuntimeError("boom")
        return float(np.sum(a))

    with pytest.raises(RuntimeError, match="boom"):
        check(f, x)
    assert x.tobytes() == before


def test_numerical_gradient_needs_a_scalar_function():
    with pytest.raises(ValueError, match=r"f must return a scalar, got an array of shape \(3,\)"):
        numerical_gradient(lambda a: a * 2, np.ones(3))


# --- numerical_gradient_array ----------------------------------------------------------------


@given(seeded_rngs())
def test_numerical_gradient_array_is_the_vector_jacobian_product(rng):
    A = rng.standard_normal((4, 3))
    x = rng.standard_normal(3)
    dout = rng.standard_normal(4)
    num = numerical_gradient_array(lambda v: np.tanh(A @ v), x, dout)
    np.testing.assert_allclose(num, A.T @ (dout * (1 - np.tanh(A @ x) ** 2)), rtol=1e-7, atol=1e-9)


def test_numerical_gradient_array_copies_a_reused_output_buffer():
    buffer = np.empty(3)

    def f(v):
        np.multiply(v, 3.0, out=buffer)  # returns the same array every call
        return buffer

    num = numerical_gradient_array(f, np.ones(3), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(num, [3.0, 6.0, 9.0], rtol=1e-9)


def test_numerical_gradient_array_output_shape_must_match_dout():
    with pytest.raises(
        ValueError, match=r"f returned an array of shape \(3,\) but dout has \(2,\)"
    ):
        numerical_gradient_array(lambda v: v, np.ones(3), np.ones(2))


# --- sparse_gradcheck ------------------------------------------------------------------------


def test_sparse_gradcheck_is_seeded_and_detects_a_wrong_gradient():
    x = np.random.default_rng(4).standard_normal((20, 30))
    good = sparse_gradcheck(smooth, x, smooth_grad(x), num_checks=12, seed=7)
    assert good.shape == (12,) and np.all(good < 1e-7)
    np.testing.assert_array_equal(good, sparse_gradcheck(smooth, x, smooth_grad(x), 12, seed=7))
    wrong = sparse_gradcheck(smooth, x, 2 * smooth_grad(x), num_checks=12, seed=7)
    np.testing.assert_allclose(wrong, 1 / 3, rtol=1e-6)  # |2g - g| / (|2g| + |g|)
    rng_errors = sparse_gradcheck(smooth, x, smooth_grad(x), rng=np.random.default_rng(7))
    assert rng_errors.shape == (10,)


def test_sparse_gradcheck_needs_explicit_randomness_and_matching_shapes():
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match="pass rng=np.random.default_rng"):
        sparse_gradcheck(smooth, x, smooth_grad(x))
    with pytest.raises(ValueError, match=r"analytic_grad has shape \(4,\) but x has \(2, 2\)"):
        sparse_gradcheck(smooth, x, np.ones(4), seed=0)
    with pytest.raises(ValueError, match="num_checks must be > 0, got 0"):
        sparse_gradcheck(smooth, x, smooth_grad(x), num_checks=0, seed=0)


# --- check_layer_gradients -------------------------------------------------------------------


def test_check_layer_gradients_passes_and_prints_a_table(capsys):
    inputs = affine_inputs(np.random.default_rng(0))
    errors = check_layer_gradients(affine_forward, affine_backward, inputs)
    assert list(errors) == ["x", "w", "b"]
    assert all(e < 1e-7 for e in errors.values())
    table = capsys.readouterr().out
    assert "affine_forward / affine_backward" in table
    for name, shape in [("x", "(4, 2, 3)"), ("w", "(6, 5)"), ("b", "(5,)")]:
        line = next(row for row in table.splitlines() if row.split()[:1] == [name])
        assert shape in line and line.rstrip().endswith("ok")


def test_check_layer_gradients_quiet():
    errors = check_layer_gradients(
        affine_forward, affine_backward, affine_inputs(np.random.default_rng(1)), verbose=False
    )
    assert set(errors) == {"x", "w", "b"}


def flipped_sign_db(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, -db


def forgot_transpose(dout, cache):
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    return (dout @ w.T).reshape(x.shape), dout.T @ x2, dout.sum(axis=0)


def test_planted_sign_error_fails_and_names_the_input(capsys):
    inputs = affine_inputs(np.random.default_rng(2))
    with pytest.raises(
        GradientCheckError, match=r"gradient check failed for b \(tol=1e-07\)"
    ) as info:
        check_layer_gradients(affine_forward, flipped_sign_db, inputs)
    assert info.value.failed == ["b"]
    assert info.value.errors["b"] == pytest.approx(1.0)
    assert info.value.errors["x"] < 1e-7 and info.value.errors["w"] < 1e-7
    assert isinstance(info.value, AssertionError)
    assert "FAIL" in next(r for r in capsys.readouterr().out.splitlines() if r.startswith("  b "))


def test_planted_missing_transpose_fails_on_square_and_nonsquare_weights():
    # Square w: the wrong dw has the right shape, only the numbers expose it.
    square = affine_inputs(np.random.default_rng(3), d=(5,), m=5)
    with pytest.raises(GradientCheckError, match=r"failed for w .*max relative error"):
        check_layer_gradients(affine_forward, forgot_transpose, square, verbose=False)
    nonsquare = affine_inputs(np.random.default_rng(3), d=(6,), m=5)
    with pytest.raises(
        GradientCheckError, match=r"w: gradient has shape \(5, 6\) but w has \(6, 5\)"
    ):
        check_layer_gradients(affine_forward, forgot_transpose, nonsquare, verbose=False)


def test_a_nan_gradient_counts_as_a_failure():
    def nan_dw(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        dw[0, 0] = np.nan
        return dx, dw, db

    inputs = affine_inputs(np.random.default_rng(4))
    with pytest.raises(
        GradientCheckError, match=r"failed for w \(tol=1e-07\): w: max relative error nan"
    ):
        check_layer_gradients(affine_forward, nan_dw, inputs, verbose=False)


def test_raise_on_failure_false_returns_the_errors():
    inputs = affine_inputs(np.random.default_rng(5))
    errors = check_layer_gradients(
        affine_forward, flipped_sign_db, inputs, verbose=False, raise_on_failure=False
    )
    assert errors["b"] == pytest.approx(1.0) and errors["x"] < 1e-7


def test_check_layer_gradients_restores_inputs_and_passes_kwargs():
    from coursekit.activations import leaky_relu_backward, leaky_relu_forward

    x = awkward_values()[:, 3:]  # moderate magnitudes, away from the kink
    before = x.tobytes()
    seen = []

    def forward(v, negative_slope):
        seen.append(negative_slope)
        return leaky_relu_forward(v, negative_slope)

    check_layer_gradients(forward, leaky_relu_backward, {"x": x}, negative_slope=0.3, verbose=False)
    assert x.tobytes() == before
    assert set(seen) == {0.3}


def test_explicit_dout_and_its_shape():
    inputs = affine_inputs(np.random.default_rng(6))
    dout = np.ones((4, 5))
    errors = check_layer_gradients(
        affine_forward, affine_backward, inputs, dout=dout, verbose=False
    )
    assert errors["b"] < 1e-9
    with pytest.raises(
        ValueError, match=r"dout has shape \(5, 4\) but forward's output has \(4, 5\)"
    ):
        check_layer_gradients(affine_forward, affine_backward, inputs, dout=dout.T, verbose=False)


def test_bad_inputs_to_the_checker():
    rng = np.random.default_rng(7)
    inputs = affine_inputs(rng)
    ints = dict(inputs, x=np.ones((4, 2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="x must have a floating dtype.*got int64"):
        check_layer_gradients(affine_forward, affine_backward, ints)
    single = dict(inputs, w=inputs["w"].astype(np.float32))
    with pytest.raises(TypeError, match="w must be float64 for a gradient check, got float32"):
        check_layer_gradients(affine_forward, affine_backward, single)
    nan = dict(inputs, b=np.array([0.0, np.nan, 1.0, 2.0, np.inf]))
    with pytest.raises(ValueError, match=r"b contains 2 non-finite value\(s\)"):
        check_layer_gradients(affine_forward, affine_backward, nan)
    with pytest.raises(TypeError, match="inputs must be a non-empty dict"):
        check_layer_gradients(affine_forward, affine_backward, {})
    readonly = inputs["x"].copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="x is read-only"):
        check_layer_gradients(affine_forward, affine_backward, dict(inputs, x=readonly))
    with pytest.raises(
        ValueError, match=r"backward returned 3 gradient\(s\) but inputs has 1 \(x\)"
    ):
        check_layer_gradients(
            affine_forward, affine_backward, {"x": inputs["x"]}, w=inputs["w"], b=inputs["b"]
        )
    with pytest.raises(TypeError, match="x must be a numpy array, got list"):
        numerical_gradient(smooth, [1.0, 2.0])
    with pytest.raises(TypeError, match="must be float64.*got float16"):
        numerical_gradient(smooth, np.ones(2, dtype=np.float16))
    with pytest.raises(ValueError, match="h must be > 0, got 0"):
        numerical_gradient(smooth, np.ones(2), h=0)


# --- the round-off floor: no false alarms at realistic sizes ---------------------------------


def batchnorm_train(x, gamma, beta):
    from coursekit.normalization import batchnorm_forward

    d = x.shape[1]
    return batchnorm_forward(x, gamma, beta, np.zeros(d), np.ones(d), mode="train")


def softmax_loss_layer(scores, y):
    from coursekit.losses import softmax_loss

    loss, dscores = softmax_loss(scores, y)
    return np.array(loss), dscores


def realistic_case(name):
    from coursekit.activations import tanh_backward, tanh_forward
    from coursekit.normalization import batchnorm_backward

    rng = np.random.default_rng(11)
    if name == "batchnorm 64x100":
        inputs = {
            "x": 1.0 + 3.0 * rng.standard_normal((64, 100)),
            "gamma": rng.uniform(0.5, 2.0, 100),
            "beta": rng.standard_normal(100),
        }
        return batchnorm_train, batchnorm_backward, inputs, {}
    if name == "saturated tanh 32x50":
        return tanh_forward, tanh_backward, {"x": 10.0 * rng.standard_normal((32, 50))}, {}
    y = rng.integers(100, size=64)
    return (
        softmax_loss_layer,
        lambda dout, dscores: dout * dscores,
        {"scores": rng.standard_normal((64, 100))},
        {"y": y},
    )


@pytest.mark.parametrize(
    "name", ["batchnorm 64x100", "saturated tanh 32x50", "softmax loss 64x100"]
)
def test_correct_layers_at_realistic_sizes_pass(name):
    forward, backward, inputs, kwargs = realistic_case(name)
    # The plain elementwise relative error (atol=0) raises a false alarm on each of them:
    # their smallest gradient entries are below the round-off of the numerical gradient.
    plain = check_layer_gradients(
        forward, backward, inputs, atol=0, verbose=False, raise_on_failure=False, **kwargs
    )
    assert max(plain.values()) > 1e-5
    errors = check_layer_gradients(forward, backward, inputs, verbose=False, **kwargs)
    assert max(errors.values()) <= 1e-7


def test_a_small_planted_error_at_a_realistic_size_is_still_caught():
    from coursekit.normalization import batchnorm_backward

    forward, _, inputs, _ = realistic_case("batchnorm 64x100")

    def one_entry_off(dout, cache):
        dx, dgamma, dbeta = batchnorm_backward(dout, cache)
        dx = dx.copy()
        dx[5, 7] *= 1.0 + 1e-4  # one entry of 6400, wrong in its fifth digit
        return dx, dgamma, dbeta

    with pytest.raises(GradientCheckError, match=r"failed for x \(tol=1e-07\)") as info:
        check_layer_gradients(forward, one_entry_off, inputs, verbose=False)
    assert info.value.failed == ["x"]
    assert 1e-6 < info.value.errors["x"] < 1e-4


@given(seeded_rngs())
def test_the_check_fails_exactly_where_an_entry_exceeds_both_thresholds(rng):
    # A linear layer has an exact numerical gradient up to round-off, so an error planted in
    # one entry decides the result: above max(tol * (|a| + |n|), atol) fails, well below passes.
    inputs = affine_inputs(rng, n=6, d=(4,), m=3)
    _, cache = affine_forward(*inputs.values())
    dout = rng.standard_normal((6, 3))
    good = affine_backward(dout, cache)
    entry = tuple(rng.integers(s) for s in good[1].shape)
    atol = 1e-6
    threshold = max(1e-7 * 2 * abs(good[1][entry]), atol)
    for factor, fails in [(3.0, True), (0.1, False)]:

        def planted(d, c, delta=factor * threshold):
            dx, dw, db = affine_backward(d, c)
            dw = dw.copy()
            dw[entry] += delta
            return dx, dw, db

        errors = check_layer_gradients(
            affine_forward,
            planted,
            inputs,
            dout=dout,
            atol=atol,
            verbose=False,
            raise_on_failure=False,
        )
        assert (errors["w"] > 1e-7) == fails, (factor, errors)


def test_atol_zero_is_the_plain_relative_error_and_bad_atol_is_refused():
    inputs = affine_inputs(np.random.default_rng(8))
    _, cache = affine_forward(*inputs.values())
    dout = np.random.default_rng(0).standard_normal((4, 5))
    errors = check_layer_gradients(
        affine_forward, affine_backward, inputs, dout=dout, atol=0, verbose=False
    )
    numeric = numerical_gradient_array(
        lambda w: affine_forward(inputs["x"], w, inputs["b"])[0], inputs["w"], dout
    )
    assert errors["w"] == rel_error(affine_backward(dout, cache)[1], numeric)
    with pytest.raises(ValueError, match="atol must be >= 0, got -1"):
        check_layer_gradients(affine_forward, affine_backward, inputs, atol=-1)
    with pytest.raises(ValueError, match="atol must be finite, got inf"):
        check_layer_gradients(affine_forward, affine_backward, inputs, atol=float("inf"))
    with pytest.raises(ValueError, match="atol must be >= 0, got nan"):
        check_layer_gradients(affine_forward, affine_backward, inputs, atol=float("nan"))


def test_the_table_and_the_message_show_the_round_off_floor(capsys):
    inputs = affine_inputs(np.random.default_rng(2))
    with pytest.raises(GradientCheckError, match=r"\[round-off floor \d\.\de-\d\d\]"):
        check_layer_gradients(affine_forward, flipped_sign_db, inputs)
    header = capsys.readouterr().out.splitlines()[1]
    assert header.split() == [
        "input",
        "shape",
        "max",
        "rel.",
        "error",
        "round-off",
        "floor",
        "result",
    ]
