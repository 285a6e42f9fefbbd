"""Hidden-test tasks of assignment A2 (backpropagation and gradient checking).

References come from :mod:`coursekit.gradcheck`, :mod:`coursekit.layers`,
:mod:`coursekit.activations` and :mod:`coursekit.losses`; the two-layer network and the
scale-and-shift layer with the planted bug are small references written here from those
pieces. Layer tasks take the student's ``(forward, backward)`` pair, because a backward
pass consumes the cache of its own forward pass::

    check("a2.relu", (relu_forward, relu_backward), seed=...)
"""

from __future__ import annotations

import numpy as np

from coursekit import activations, gradcheck, layers, losses
from coursekit.grading.core import Case, Mistake, Task, register

# -- numerical gradients -------------------------------------------------------------------------


def _run_numerical_gradient(fn, case):
    """The gradient, and ``x`` after the call (it must be restored to its old values)."""
    f, x = case.args
    grad = fn(f, x, **case.kwargs)
    return {"gradient": grad, "x after the call": x}


class FunctionOfX:
    """A function of ``x`` to differentiate, as plain data (a formula name and its arrays).

    Hidden cases are pickled and sent to the process that runs the student's code, so they
    hold this small object instead of a lambda.
    """

    def __init__(self, formula: str, *arrays):
        self.formula, self.arrays = formula, arrays

    def __call__(self, x):
        a = self.arrays
        formulas = {
            "sum(sin(x) * x**2)": lambda: np.sum(np.sin(x) * x**2),
            "sum(exp(x) * w)": lambda: np.sum(np.exp(x) * a[0]),
            "3 cosh(x[0])": lambda: float(np.cosh(x[0]) * 3.0),
            "logsumexp(x) + (a.x)**2": lambda: np.log(np.sum(np.exp(x))) + float(a[0] @ x) ** 2,
            "sum(x**3)": lambda: np.sum(x**3),
            "sum(exp(3x))": lambda: np.sum(np.exp(3 * x)),
            "tanh(x)": lambda: np.tanh(x),
            "x @ w": lambda: x @ a[0],
            "2 exp(x)": lambda: np.exp(x) * 2,
            "[sum(x), sum(x**2)]": lambda: np.array([x.sum(), (x**2).sum()]),
            "x.T (a view of x)": lambda: x.T,
            "x * sum(x**2)": lambda: x * np.sum(x**2),
        }
        return formulas[self.formula]()


def _scalar_function_cases(rng):
    w = rng.normal(size=(3, 4))
    a = rng.normal(size=5)
    f = FunctionOfX
    return [
        Case("vector input", (f("sum(sin(x) * x**2)"), rng.normal(size=5))),
        Case("matrix input", (f("sum(exp(x) * w)", w), rng.normal(size=(3, 4)))),
        Case("one entry", (f("3 cosh(x[0])"), rng.normal(size=1))),
        Case(
            "every output depends on every entry",
            (f("logsumexp(x) + (a.x)**2", a), rng.normal(size=5)),
        ),
        Case("3-D input", (f("sum(x**3)"), rng.normal(size=(2, 3, 2)))),
        # With h = 1e-2 the centered difference of exp(3x) is off by h^2 (d/dx)^3 f / (6 f')
        # = 1.5e-4 relative: a function that ignores h (and uses 1e-5) fails by far.
        Case("step h = 1e-2", (f("sum(exp(3x))"), rng.normal(size=4)), {"h": 1e-2}),
    ]


def _forward_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    base = f(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        grad[idx] = (f(x) - base) / h
        x[idx] = old
    return grad


def _divide_by_h(f, x, h=1e-5):
    return 2.0 * gradcheck.numerical_gradient(f, x, h)


def _not_restored(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        f_plus = f(x)
        x[idx] = saved - h
        grad[idx] = (f_plus - f(x)) / (2 * h)
    return grad


def _whole_rows(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        saved = x[i].copy()
        x[i] = saved + h
        f_plus = f(x)
        x[i] = saved - h
        f_minus = f(x)
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def _fixed_step(f, x, h=1e-5):
    return gradcheck.numerical_gradient(f, x, 1e-5)


def _restored_before_f_minus(f, x, h=1e-5):
    """``f_minus`` evaluated after x was put back: half the forward difference."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        f_plus = f(x)
        x[idx] = saved
        grad[idx] = (f_plus - f(x)) / (2 * h)
    return grad


def _divided_by_2_times_h(f, x, h=1e-5):
    """``(f_plus - f_minus) / 2 * h``: the precedence slip that multiplies by h / 2."""
    return gradcheck.numerical_gradient(f, x, h) * (2 * h) * h / 2


def _in_place_relu(x):
    x[x < 0] = 0.0
    return x, x


register(
    Task(
        name="a2.numerical_gradient",
        reference=gradcheck.numerical_gradient,
        cases=_scalar_function_cases,
        run=_run_numerical_gradient,
        # Centered differences with h = 1e-5: any spelling of the loop (x[i] += h then -= 2h,
        # or assigning x[i] = old +/- h) agrees to about eps * |x| / h ~ 1e-11 relative; a
        # float32 result (6e-8) or a step other than h fails.
        rtol=1e-8,
        atol=1e-10,
        mistakes=(
            Mistake(
                "matches the FORWARD difference (f(x+h) - f(x)) / h, whose error is O(h); use "
                "the centered difference (f(x+h) - f(x-h)) / (2h), whose error is O(h^2)",
                _forward_difference,
            ),
            Mistake(
                "is twice the gradient: the centered difference divides by 2h, not h",
                _divide_by_h,
            ),
            Mistake(
                "x is left changed after the call: put every entry back (x[idx] = saved) after "
                "evaluating f(x - h), the caller's array must come out as it went in",
                _not_restored,
            ),
            Mistake(
                "matches perturbing a whole ROW of x at once (a loop over the first axis): loop "
                "over every entry, e.g. with np.ndindex(x.shape)",
                _whole_rows,
            ),
            Mistake("matches a step of 1e-5 whatever h is: use the argument h", _fixed_step),
            Mistake(
                "matches evaluating f(x - h) after x was already put back: set x[idx] = saved "
                "- h, evaluate, and only then restore saved",
                _restored_before_f_minus,
            ),
            Mistake(
                "matches (f_plus - f_minus) / 2 * h, which MULTIPLIES by h / 2 (Python reads it "
                "left to right): write / (2 * h)",
                _divided_by_2_times_h,
            ),
        ),
        description="centered-difference gradient of a scalar function",
        library_functions=("coursekit.gradcheck.numerical_gradient",),
    )
)


def _array_function_cases(rng):
    w = rng.normal(size=(4, 3))
    f = FunctionOfX
    return [
        Case(
            "elementwise function",
            (f("tanh(x)"), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))),
        ),
        Case("matrix product", (f("x @ w", w), rng.normal(size=(2, 4)), rng.normal(size=(2, 3)))),
        Case("batch of 1", (f("2 exp(x)"), rng.normal(size=(1, 5)), rng.normal(size=(1, 5)))),
        Case(
            "output of another shape",
            (f("[sum(x), sum(x**2)]"), rng.normal(size=3), rng.normal(size=2)),
        ),
        # f returns a VIEW of x: f(x + h) kept without a copy changes when x does.
        Case(
            "f returns a view of x",
            (f("x.T (a view of x)"), rng.normal(size=(3, 2)), rng.normal(size=(2, 3))),
        ),
        # Every output depends on every entry: an entry left at x - h changes the next ones.
        Case(
            "every output depends on every entry",
            (f("x * sum(x**2)"), rng.normal(size=(2, 3)), rng.normal(size=(2, 3))),
        ),
    ]


def _run_numerical_gradient_array(fn, case):
    """The gradient, and ``x`` after the call (it must be restored to its old values)."""
    f, x, dout = case.args
    grad = fn(f, x, dout, **case.kwargs)
    return {"gradient": grad, "x after the call": x}


def _without_dout(f, x, dout, h=1e-5):
    return gradcheck.numerical_gradient(lambda z: np.sum(f(z)), x, h)


def _output_not_copied(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        out_plus = f(x)
        x[idx] = saved - h
        out_minus = np.array(f(x), copy=True)
        x[idx] = saved
        grad[idx] = np.sum((out_plus - out_minus) * dout) / (2 * h)
    return grad


register(
    Task(
        name="a2.numerical_gradient_array",
        reference=gradcheck.numerical_gradient_array,
        cases=_array_function_cases,
        run=_run_numerical_gradient_array,
        # Same formula and tolerance as a2.numerical_gradient.
        rtol=1e-8,
        atol=1e-10,
        mistakes=(
            Mistake(
                "matches ignoring the upstream gradient dout (summing f's outputs instead of "
                "weighting them by dout)",
                _without_dout,
            ),
            Mistake(
                "matches the FORWARD difference; use the centered difference",
                lambda f, x, dout, h=1e-5: _forward_difference(
                    lambda z: float(np.sum(f(z) * dout)), x, h
                ),
            ),
            Mistake(
                "matches keeping f(x + h) without a copy: when f returns a view of x, that "
                "array changes when x does; store np.array(f(x), copy=True)",
                _output_not_copied,
            ),
            Mistake(
                "is twice the gradient: the centered difference divides by 2h, not h",
                lambda f, x, dout, h=1e-5: 2.0 * gradcheck.numerical_gradient_array(f, x, dout, h),
            ),
            Mistake(
                "matches / 2 * h, which MULTIPLIES by h / 2 (Python reads it left to right): "
                "write / (2 * h)",
                lambda f, x, dout, h=1e-5: (
                    gradcheck.numerical_gradient_array(f, x, dout, h) * (2 * h) * h / 2
                ),
            ),
        ),
        description="centered-difference vector-Jacobian product of an array function",
        library_functions=("coursekit.gradcheck.numerical_gradient_array",),
    )
)


def _rel_error_cases(rng):
    x = rng.normal(size=(4, 5))
    big = rng.normal(size=10) * 1e3
    spoiled = big.copy()
    spoiled[3] = 1e-3
    small = x.copy()
    small[0, 0] = 0.0
    return [
        Case("close arrays", (x, x * (1 + 1e-7 * rng.normal(size=x.shape)))),
        Case("identical arrays", (x, x.copy())),
        Case("entries that are 0 in both", (small, small.copy())),
        Case("all zeros", (np.zeros(4), np.zeros(4))),
        Case("one wrong entry among large ones", (big, spoiled)),
        Case("opposite signs", (x, -x)),
        Case("single number", (np.array([2.0]), np.array([2.5]))),
    ]


def _rel_error_global(x, y):
    return np.max(np.abs(x - y)) / max(1e-8, float(np.max(np.abs(x) + np.abs(y))))


register(
    Task(
        name="a2.rel_error",
        reference=gradcheck.rel_error,
        cases=_rel_error_cases,
        rtol=1e-9,
        atol=1e-12,
        mistakes=(
            Mistake(
                "matches dividing the largest difference by the largest |x| + |y|: take the "
                "ratio entry by entry, then the maximum",
                _rel_error_global,
            ),
            Mistake(
                "matches the MEAN of the entrywise ratios; the relative error is their maximum",
                lambda x, y: np.mean(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))),
            ),
            Mistake(
                "matches a denominator without absolute values: use |x| + |y|",
                lambda x, y: np.max(np.abs(x - y) / np.maximum(1e-8, x + y)),
            ),
            Mistake(
                "NaN where x and y are both 0: 0 / 0. Floor the denominator: max(1e-8, |x| + |y|)",
                lambda x, y: np.max(np.abs(x - y) / (np.abs(x) + np.abs(y))),
            ),
            Mistake(
                "matches the largest SIGNED difference: take |x - y| before the maximum",
                lambda x, y: np.max((x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))),
            ),
            Mistake(
                "matches dividing by max(|x|, |y|): the denominator is the SUM |x| + |y| "
                "(floored at 1e-8)",
                lambda x, y: np.max(
                    np.abs(x - y) / np.maximum(1e-8, np.maximum(np.abs(x), np.abs(y)))
                ),
            ),
            Mistake(
                "matches dividing by |x| only: the relative error is symmetric, divide by "
                "max(1e-8, |x| + |y|)",
                lambda x, y: np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x))),
            ),
            Mistake(
                "returns the array of entrywise ratios: the relative error is ONE number, their "
                "maximum",
                lambda x, y: np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)),
            ),
        ),
        description="max entrywise |x - y| / max(1e-8, |x| + |y|)",
        library_functions=("coursekit.gradcheck.rel_error",),
    )
)

# -- layers --------------------------------------------------------------------------------------


def _affine_cases(rng):
    def problem(x_shape, m):
        d = int(np.prod(x_shape[1:]))
        return (
            rng.normal(size=x_shape),
            rng.normal(size=(d, m)),
            rng.normal(size=m),
        ), {"dout": rng.normal(size=(x_shape[0], m))}

    cases = []
    for label, shape, m in (
        ("matrix input", (4, 5), 3),
        ("batch of 1", (1, 6), 4),
        ("image-shaped input (N, 2, 3)", (3, 2, 3), 5),
        ("input of shape (N, 2, 2, 2)", (2, 2, 2, 2), 3),
        ("one output unit", (5, 3), 1),
    ):
        args, kwargs = problem(shape, m)
        cases.append(Case(label, args, kwargs))
    return cases


def _forward_only(fn, case):
    out, _ = fn(*case.args)
    return out


def _unchanged(before, after) -> float:
    """1.0 if every array in ``after`` still holds the values copied in ``before``."""
    return float(
        all(
            np.array_equal(np.asarray(b), np.asarray(a), equal_nan=True)
            for b, a in zip(before, after)
        )
    )


def _forward_backward(fns, case):
    """Run the student's forward pass, then their backward pass on its cache.

    The last value is 1.0 when neither pass changed its inputs (``x``, ``w``, ``b``, ``dout``):
    an in-place ReLU or a backward that zeroes ``dout`` in place gives the right numbers but
    corrupts the caller's arrays.
    """
    forward, backward = fns
    inputs = (*case.args, case.kwargs["dout"])
    before = [np.array(a, copy=True) for a in inputs]
    out, cache = forward(*case.args)
    out = np.array(out, dtype=np.float64, copy=True)
    grads = backward(case.kwargs["dout"], cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    return (out, *grads, {"inputs unchanged": _unchanged(before, inputs)})


def _affine_no_bias(x, w, b):
    return x.reshape(x.shape[0], -1) @ w, None


register(
    Task(
        name="a2.affine_forward",
        reference=layers.affine_forward,
        cases=_affine_cases,
        run=_forward_only,
        rtol=1e-9,
        atol=1e-10,
        mistakes=(Mistake("matches x @ w without the bias b", _affine_no_bias),),
        description="affine forward pass on inputs of any shape (N, d1, ..., dk)",
        library_functions=("coursekit.layers.affine_forward",),
    )
)


def _affine_backward_mean_db(dout, cache):
    dx, dw, _ = layers.affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


def _affine_backward_dw_transposed(dout, cache):
    dx, dw, db = layers.affine_backward(dout, cache)
    return dx, dw.T, db


def _affine_backward_db_per_example(dout, cache):
    dx, dw, _ = layers.affine_backward(dout, cache)
    return dx, dw, dout.sum(axis=1)


def _affine_backward_means(dout, cache):
    dx, dw, db = layers.affine_backward(dout, cache)
    n = dout.shape[0]
    return dx, dw / n, db / n


def _affine_backward_flat_dx(dout, cache):
    _, w, _ = cache
    _, dw, db = layers.affine_backward(dout, cache)
    return dout @ w.T, dw, db


register(
    Task(
        name="a2.affine_backward",
        reference=(layers.affine_forward, layers.affine_backward),
        cases=_affine_cases,
        run=_forward_backward,
        rtol=1e-9,
        atol=1e-10,
        mistakes=(
            Mistake(
                "db matches the MEAN of dout over the batch: the bias is added to every row, "
                "so its gradient is the SUM over rows",
                (layers.affine_forward, _affine_backward_mean_db),
            ),
            Mistake(
                "dx has the flattened shape (N, D): reshape it back to the shape of x",
                (layers.affine_forward, _affine_backward_flat_dx),
            ),
            Mistake(
                "dw has the transposed shape (M, D): dw = x.T @ dout has the shape of w",
                (layers.affine_forward, _affine_backward_dw_transposed),
            ),
            Mistake(
                "db has one entry per EXAMPLE (summed over axis=1): b has one entry per output "
                "unit, so sum dout over the batch, axis=0",
                (layers.affine_forward, _affine_backward_db_per_example),
            ),
            Mistake(
                "dw and db are the MEANS over the batch: each example adds to the gradient, so "
                "sum over the batch (dw = x.T @ dout, db = dout.sum(axis=0))",
                (layers.affine_forward, _affine_backward_means),
            ),
        ),
        description="affine backward pass: (out, dx, dw, db)",
        library_functions=("coursekit.layers.affine_backward",),
    )
)


def _activation_cases(rng, with_zeros=False):
    def pair(shape, scale=1.0):
        return (rng.normal(size=shape) * scale,), {"dout": rng.normal(size=shape)}

    cases = []
    for label, shape, scale in (
        ("matrix input", (4, 5), 1.0),
        ("batch of 1", (1, 7), 1.0),
        ("3-D input", (2, 3, 4), 2.0),
        ("large inputs (|x| up to 800)", (3, 6), 300.0),
    ):
        args, kwargs = pair(shape, scale)
        cases.append(Case(label, args, kwargs))
    # exp(800) overflows: a naive sigmoid warns here, and must still be graded as correct.
    cases[-1].args[0].flat[:2] = (-800.0, 800.0)
    if with_zeros:
        x = rng.normal(size=(3, 5))
        x[:, ::2] = 0.0
        cases.append(Case("inputs exactly 0", (x,), {"dout": rng.normal(size=(3, 5))}))
    return cases


def _relu_backward_ge(dout, cache):
    return dout * (cache >= 0)


register(
    Task(
        name="a2.relu",
        reference=(activations.relu_forward, activations.relu_backward),
        cases=lambda rng: _activation_cases(rng, with_zeros=True),
        run=_forward_backward,
        rtol=1e-12,
        atol=1e-12,
        mistakes=(
            Mistake(
                "at x = 0 your gradient passes dout through (x >= 0); like PyTorch, use 0 at "
                "x = 0 (x > 0)",
                (lambda x: (np.maximum(x, 0), x), _relu_backward_ge),
            ),
            Mistake(
                "dx is the 0/1 mask of x > 0 without dout: the chain rule multiplies the "
                "local derivative by the upstream gradient, dx = dout * (x > 0)",
                (activations.relu_forward, lambda dout, x: (x > 0).astype(float)),
            ),
            Mistake(
                "dx matches dout * (dout > 0): the mask comes from the forward INPUT, "
                "dx = dout * (x > 0)",
                (activations.relu_forward, lambda dout, x: dout * (dout > 0)),
            ),
            Mistake(
                "the values are right but your forward pass changed the caller's x (an "
                "in-place x[x < 0] = 0): compute a new array, np.maximum(x, 0)",
                (_in_place_relu, activations.relu_backward),
            ),
        ),
        description="ReLU forward and backward: (out, dx)",
        library_functions=(
            "coursekit.activations.relu_forward",
            "coursekit.activations.relu_backward",
        ),
    )
)


def _sigmoid_missing_factor(dout, cache):
    return dout * cache


def _sigmoid_of_minus_x(x):
    return activations.sigmoid_forward(-x)


def _sigmoid_of_input(x):
    s, _ = activations.sigmoid_forward(x)
    return s, x


register(
    Task(
        name="a2.sigmoid",
        reference=(activations.sigmoid_forward, activations.sigmoid_backward),
        cases=_activation_cases,
        run=_forward_backward,
        rtol=1e-9,
        atol=1e-12,
        mistakes=(
            Mistake(
                "dx matches dout * s: the derivative of the sigmoid is s * (1 - s)",
                (activations.sigmoid_forward, _sigmoid_missing_factor),
            ),
            Mistake(
                "dx matches dout * x * (1 - x) with the INPUT x: the formula uses the output s",
                (_sigmoid_of_input, activations.sigmoid_backward),
            ),
            Mistake(
                "dx matches dout * (1 - s): the derivative of the sigmoid is s * (1 - s)",
                (activations.sigmoid_forward, lambda dout, s: dout * (1 - s)),
            ),
            Mistake(
                "the output is sigmoid(-x) = 1 / (1 + exp(x)): the sigmoid is 1 / (1 + exp(-x))",
                (_sigmoid_of_minus_x, activations.sigmoid_backward),
            ),
            Mistake(
                "dx is s * (1 - s) without dout: multiply the local derivative by the "
                "upstream gradient",
                (activations.sigmoid_forward, lambda dout, s: s * (1 - s)),
            ),
        ),
        description="sigmoid forward and backward: (out, dx)",
        library_functions=(
            "coursekit.activations.sigmoid_forward",
            "coursekit.activations.sigmoid_backward",
        ),
    )
)


def _tanh_of_input(x):
    return np.tanh(x), x


register(
    Task(
        name="a2.tanh",
        reference=(activations.tanh_forward, activations.tanh_backward),
        cases=_activation_cases,
        run=_forward_backward,
        rtol=1e-9,
        atol=1e-12,
        mistakes=(
            Mistake(
                "dx matches dout * (1 - x**2) with the INPUT x: tanh'(x) = 1 - tanh(x)**2",
                (_tanh_of_input, activations.tanh_backward),
            ),
            Mistake(
                "dx matches dout * (1 - tanh(x))**2: square tanh first, then subtract from 1",
                (activations.tanh_forward, lambda dout, t: dout * (1 - t) ** 2),
            ),
            Mistake(
                "dx matches dout * (1 - tanh(x)): the derivative is 1 - tanh(x)**2",
                (activations.tanh_forward, lambda dout, t: dout * (1 - t)),
            ),
            Mistake(
                "dx is 1 - tanh(x)**2 without dout: multiply the local derivative by the "
                "upstream gradient",
                (activations.tanh_forward, lambda dout, t: 1 - t**2),
            ),
        ),
        description="tanh forward and backward: (out, dx)",
        library_functions=(
            "coursekit.activations.tanh_forward",
            "coursekit.activations.tanh_backward",
        ),
    )
)

# -- softmax cross-entropy ----------------------------------------------------------------------


def _softmax_loss_cases(rng):
    def problem(n, c, scale=1.0, shift=0.0):
        return (rng.normal(size=(n, c)) * scale + shift, rng.integers(0, c, size=n))

    return [
        Case("small scores", problem(5, 4)),
        Case("batch of 1", problem(1, 3)),
        Case("many classes", problem(3, 12, scale=3.0)),
        Case("large positive logits (1e4)", problem(4, 5, scale=10.0, shift=1e4)),
        Case("logits spread over 1e4", problem(4, 3, scale=1e4)),
        Case("two classes", problem(6, 2)),
    ]


def _sum_over_batch(scores, y):
    loss, dscores = losses.softmax_loss(scores, y)
    return loss * len(y), dscores * len(y)


def _naive_softmax_loss(scores, y):
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    p[np.arange(n), y] -= 1
    return loss, p / n


def _log_softmax_without_shift(scores, y):
    n = len(y)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1.0
    return -log_probs[np.arange(n), y].mean(), dscores / n


def _gradient_not_averaged(scores, y):
    loss, dscores = losses.softmax_loss(scores, y)
    return loss, dscores * len(y)


def _loss_not_averaged(scores, y):
    loss, dscores = losses.softmax_loss(scores, y)
    return loss * len(y), dscores


def _loss_over_all_classes(scores, y):
    _, dscores = losses.softmax_loss(scores, y)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p.mean(), dscores


def _minus_one_after_division(scores, y):
    loss, dscores = losses.softmax_loss(scores, y)
    n = len(y)
    dscores = dscores.copy()
    dscores[np.arange(n), y] += 1.0 / n - 1.0
    return loss, dscores


def _minus_one_in_columns(scores, y):
    loss, _ = losses.softmax_loss(scores, y)
    shifted = scores - scores.max(axis=1, keepdims=True)
    dscores = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    dscores[:, y] -= 1.0
    return loss, dscores / len(y)


def _no_minus_one(scores, y):
    loss, _ = losses.softmax_loss(scores, y)
    shifted = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return loss, p / len(y)


register(
    Task(
        name="a2.softmax_loss",
        reference=losses.softmax_loss,
        cases=_softmax_loss_cases,
        rtol=1e-8,
        atol=1e-10,
        mistakes=(
            Mistake(
                "matches the loss and gradient SUMMED over the batch: average them (divide by N)",
                _sum_over_batch,
            ),
            Mistake(
                "matches softmax without subtracting the row maximum: overflow for large logits",
                _naive_softmax_loss,
            ),
            Mistake(
                "dscores matches softmax / N without subtracting 1 at the correct class",
                _no_minus_one,
            ),
            Mistake(
                "matches the log-softmax without subtracting the row maximum: exp overflows "
                "for large logits (inf or NaN); subtract each row's maximum first",
                _log_softmax_without_shift,
            ),
            Mistake(
                "the loss is right but dscores is N times too large: divide the gradient by "
                "the batch size too",
                _gradient_not_averaged,
            ),
            Mistake(
                "the gradient is right but the loss is N times too large: average the loss "
                "over the batch (mean, not sum)",
                _loss_not_averaged,
            ),
            Mistake(
                "the loss matches the mean of ALL log-probabilities: the cross-entropy averages "
                "only the log-probability of each example's correct class, log_p[range(N), y]",
                _loss_over_all_classes,
            ),
            Mistake(
                "matches dividing by N BEFORE subtracting 1 at the correct class: the gradient "
                "is (softmax - one_hot(y)) / N, divide after subtracting",
                _minus_one_after_division,
            ),
            Mistake(
                "matches dscores[:, y] -= 1, which subtracts 1 in EVERY row at every label of "
                "the batch; index one entry per row: dscores[np.arange(N), y] -= 1",
                _minus_one_in_columns,
            ),
            Mistake(
                "dscores has the opposite sign: the gradient is (softmax - one_hot(y)) / N",
                lambda scores, y: (
                    losses.softmax_loss(scores, y)[0],
                    -losses.softmax_loss(scores, y)[1],
                ),
            ),
            Mistake(
                "the loss is negative: the cross-entropy is MINUS the mean log-probability of "
                "the correct class",
                lambda scores, y: (
                    -losses.softmax_loss(scores, y)[0],
                    losses.softmax_loss(scores, y)[1],
                ),
            ),
        ),
        description="softmax cross-entropy averaged over the batch, and its gradient",
        library_functions=("coursekit.losses.softmax_loss",),
    )
)

# -- two-layer network ---------------------------------------------------------------------------


def two_layer_loss_reference(X, y, params, reg=0.0):
    """affine - ReLU - affine - softmax cross-entropy, plus 0.5 * reg * (|W1|^2 + |W2|^2)."""
    h, cache1 = layers.affine_forward(X, params["W1"], params["b1"])
    a, cache_relu = activations.relu_forward(h)
    scores, cache2 = layers.affine_forward(a, params["W2"], params["b2"])
    data_loss, dscores = losses.softmax_loss(scores, y)
    W1, W2 = params["W1"], params["W2"]
    loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    da, dW2, db2 = layers.affine_backward(dscores, cache2)
    dh = activations.relu_backward(da, cache_relu)
    _, dW1, db1 = layers.affine_backward(dh, cache1)
    grads = {"W1": dW1 + reg * W1, "b1": db1, "W2": dW2 + reg * W2, "b2": db2}
    return loss, grads


def _two_layer_cases(rng):
    def problem(n, d, hidden, c, reg, scale=0.5):
        params = {
            "W1": rng.normal(size=(d, hidden)) * scale,
            "b1": rng.normal(size=hidden) * 0.1,
            "W2": rng.normal(size=(hidden, c)) * scale,
            "b2": rng.normal(size=c) * 0.1,
        }
        return (rng.normal(size=(n, d)), rng.integers(0, c, size=n), params), {"reg": reg}

    cases = []
    for label, shape, reg in (
        ("no regularization", (6, 5, 7, 3), 0.0),
        ("with regularization", (5, 4, 6, 4), 0.3),
        ("batch of 1", (1, 3, 4, 2), 0.1),
        ("wide hidden layer", (4, 6, 20, 5), 0.05),
    ):
        args, kwargs = problem(*shape, reg)
        cases.append(Case(label, args, kwargs))
    return cases


def _reg_not_in_gradient(X, y, params, reg=0.0):
    loss, grads = two_layer_loss_reference(X, y, params, reg)
    grads = dict(grads)
    grads["W1"] = grads["W1"] - reg * params["W1"]
    grads["W2"] = grads["W2"] - reg * params["W2"]
    return loss, grads


def _reg_on_biases(X, y, params, reg=0.0):
    loss, grads = two_layer_loss_reference(X, y, params, reg)
    b1, b2 = params["b1"], params["b2"]
    loss = loss + 0.5 * reg * (np.sum(b1 * b1) + np.sum(b2 * b2))
    return loss, {**grads, "b1": grads["b1"] + reg * b1, "b2": grads["b2"] + reg * b2}


def _identity_relu_backward(X, y, params, reg=0.0):
    h, cache1 = layers.affine_forward(X, params["W1"], params["b1"])
    a, _ = activations.relu_forward(h)
    scores, cache2 = layers.affine_forward(a, params["W2"], params["b2"])
    data_loss, dscores = losses.softmax_loss(scores, y)
    W1, W2 = params["W1"], params["W2"]
    loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    da, dW2, db2 = layers.affine_backward(dscores, cache2)
    _, dW1, db1 = layers.affine_backward(da, cache1)
    return loss, {"W1": dW1 + reg * W1, "b1": db1, "W2": dW2 + reg * W2, "b2": db2}


def _reg_not_squared(X, y, params, reg=0.0):
    loss, grads = two_layer_loss_reference(X, y, params, reg)
    W1, W2 = params["W1"], params["W2"]
    loss = loss - 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    return loss + 0.5 * reg * (np.sum(W1) + np.sum(W2)), grads


def _reg_gradient_doubled(X, y, params, reg=0.0):
    loss, grads = two_layer_loss_reference(X, y, params, reg)
    grads = dict(grads)
    grads["W1"] = grads["W1"] + reg * params["W1"]
    grads["W2"] = grads["W2"] + reg * params["W2"]
    return loss, grads


def _reg_without_half(X, y, params, reg=0.0):
    loss, grads = two_layer_loss_reference(X, y, params, reg)
    W1, W2 = params["W1"], params["W2"]
    return loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2)), grads


register(
    Task(
        name="a2.two_layer_net",
        reference=two_layer_loss_reference,
        cases=_two_layer_cases,
        rtol=1e-8,
        atol=1e-10,
        mistakes=(
            Mistake(
                "the weight gradients miss the regularization term reg * W", _reg_not_in_gradient
            ),
            Mistake(
                "matches regularizing the biases too; only W1 and W2 are penalized", _reg_on_biases
            ),
            Mistake(
                "the loss matches reg * (|W1|^2 + |W2|^2) without the factor 0.5 (the gradient "
                "reg * W belongs to the penalty 0.5 * reg * |W|^2)",
                _reg_without_half,
            ),
            Mistake(
                "dW1 and db1 match backpropagating through the ReLU as if it were the identity: "
                "multiply by the ReLU's gradient (relu_backward) before the first layer",
                _identity_relu_backward,
            ),
            Mistake(
                "the loss adds 0.5 * reg * sum(W), not of W**2: the L2 penalty squares the "
                "weights, 0.5 * reg * (sum(W1**2) + sum(W2**2))",
                _reg_not_squared,
            ),
            Mistake(
                "the weight gradients have 2 * reg * W: the gradient of 0.5 * reg * |W|^2 is "
                "reg * W",
                _reg_gradient_doubled,
            ),
        ),
        description="loss and gradients of affine-ReLU-affine-softmax with L2 penalty",
        library_functions=("coursekit.models.FullyConnectedNet",),
    )
)

# -- the planted bug -----------------------------------------------------------------------------


def scale_shift_forward(x, gamma, beta):
    """``out = x * gamma + beta`` per feature; the cache the A2 notebook's forward keeps."""
    out = x * gamma + beta
    return out, (x, gamma, out)


def scale_shift_backward(dout, cache):
    x, gamma, _ = cache
    return dout * gamma, np.sum(dout * x, axis=0), np.sum(dout, axis=0)


def _scale_shift_cases(rng):
    cases = []
    for label, (n, d) in (
        ("tall batch", (6, 3)),
        ("batch of 1", (1, 4)),
        ("one feature", (5, 1)),
        ("wide batch", (3, 8)),
    ):
        args = (rng.normal(size=(n, d)), rng.normal(size=d), rng.normal(size=d))
        cases.append(Case(label, args, {"dout": rng.normal(size=(n, d))}))
    return cases


def _planted_bug(dout, cache):
    x, gamma, out = cache
    return dout * gamma, np.sum(dout * out, axis=0), np.sum(dout, axis=0)


def _dbeta_mean(dout, cache):
    dx, dgamma, dbeta = scale_shift_backward(dout, cache)
    return dx, dgamma, dbeta / dout.shape[0]


def _dbeta_over_features(dout, cache):
    dx, dgamma, _ = scale_shift_backward(dout, cache)
    return dx, dgamma, np.sum(dout, axis=1)


def _dgamma_over_features(dout, cache):
    x, gamma, _ = cache
    return dout * gamma, np.sum(dout * x, axis=1), np.sum(dout, axis=0)


register(
    Task(
        name="a2.scale_shift_backward",
        reference=(scale_shift_forward, scale_shift_backward),
        cases=_scale_shift_cases,
        run=_forward_backward,
        rtol=1e-9,
        atol=1e-10,
        mistakes=(
            Mistake(
                "matches the provided backward with its bug still in it: run the gradient check "
                "and look at which gradient has a large relative error",
                (scale_shift_forward, _planted_bug),
            ),
            Mistake(
                "dbeta matches the MEAN of dout over the batch: beta is added to every row, so "
                "its gradient is the SUM over rows (and dbeta was not the planted bug)",
                (scale_shift_forward, _dbeta_mean),
            ),
            Mistake(
                "dbeta matches summing over the FEATURES (axis=1): beta has one entry per "
                "feature, sum over the batch (axis=0)",
                (scale_shift_forward, _dbeta_over_features),
            ),
            Mistake(
                "dgamma matches summing over the FEATURES (axis=1): gamma has one entry per "
                "feature, sum over the batch (axis=0)",
                (scale_shift_forward, _dgamma_over_features),
            ),
            Mistake(
                "dx matches dout without the factor gamma: out = gamma * x + beta, so "
                "dx = dout * gamma",
                (
                    scale_shift_forward,
                    lambda dout, cache: (dout.copy(), *scale_shift_backward(dout, cache)[1:]),
                ),
            ),
        ),
        description="the corrected backward pass of the scale-and-shift layer",
    )
)
