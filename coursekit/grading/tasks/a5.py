"""Grading tasks of assignment A5: initialization, weight penalties, max-norm, gradient
clipping, early stopping and the final digits model.

Initializers are random; any way of drawing from the given generator is accepted, so they are
graded on properties of a large draw (shape, sample standard deviation within 3% of the
target, mean near 0, equal seeds giving equal weights) instead of the numbers themselves.
"""

from __future__ import annotations

import math

import numpy as np

from coursekit import init
from coursekit.activations import relu_forward, tanh_forward
from coursekit.clipping import clip_grad_norm_, clip_grad_value_
from coursekit.data import digits_splits
from coursekit.early_stopping import EarlyStopping
from coursekit.grading.core import Case, Mistake, Task, register
from coursekit.ops import pairwise_distances
from coursekit.regularization import l1_penalty, l2_penalty, max_norm_


# -- initialization -----------------------------------------------------------------------
def zeros_init(fan_in, fan_out):
    return init.zeros((fan_in, fan_out))


def random_init(fan_in, fan_out, *, std=0.01, rng):
    return init.normal((fan_in, fan_out), std, rng=rng)


def xavier_init(fan_in, fan_out, *, rng):
    return init.xavier_normal((fan_in, fan_out), rng=rng)


def he_init(fan_in, fan_out, *, rng):
    return init.kaiming_normal((fan_in, fan_out), nonlinearity="relu", rng=rng)


def _init_cases(extra_kwargs, target_std):
    """Cases for an initializer; ``target_std(fan_in, fan_out)`` is the std it must draw with.

    The target is computed here, in the grader, and stays there (``Case.grader``): the
    harness reports the sample std and :func:`_derive_init` divides by the target.
    """

    def make(rng: np.random.Generator) -> list[Case]:
        cases = []
        for label, fan_in, fan_out in [
            ("fan_in 400, fan_out 100", 400, 100),
            ("fan_in 50, fan_out 800", 50, 800),
            ("square 300 x 300", 300, 300),
            ("a single output unit", 1000, 1),
        ]:
            seed = int(rng.integers(2**31))
            kwargs = {**extra_kwargs, "seed": seed}
            grader = {"target_std": target_std(fan_in, fan_out)}
            cases.append(Case(label, (fan_in, fan_out), kwargs, grader=grader))
        return cases

    return make


def _run_init(fn, case: Case):
    """Shape, dtype, spread, |mean| in units of its standard error, the shape of the
    distribution, and seeds both ways (the same seed the same weights, another seed others).

    A correct draw of n weights has a sample std within 6 standard errors (target /
    sqrt(2n)) of the target with overwhelming probability, however it is drawn, so the
    spread is reported as exactly 1.0 then, and otherwise as std / target rounded to one
    decimal (0.6 for a uniform draw on [-s, s], 0.7 for a missing factor sqrt(2) ...).
    Comparing the raw sample std with the reference's own draw would fail a correct draw made
    another way (rng.normal on the transposed shape, say) by chance: two samples of 1000
    weights differ by about 3%.

    The distribution is judged by its kurtosis E[(w - mean)^4] / std^4: 3 for a normal
    draw, 1.8 for a uniform one (a uniform draw with the right std passes every other check).
    Its standard error is sqrt(24 / n), so a normal draw of n weights stays within
    max(0.3, 6 sqrt(24 / n)) of 3 with overwhelming probability (0.93 for the 1000 weights of
    the smallest case, where a uniform draw is 1.2 away).
    """
    fan_in, fan_out = case.args
    kwargs = {k: v for k, v in case.kwargs.items() if k != "seed"}
    seed = case.kwargs["seed"]
    drawn = np.asarray(fn(fan_in, fan_out, **kwargs, rng=np.random.default_rng(seed)))
    w = np.asarray(drawn, dtype=float)
    again = np.asarray(fn(fan_in, fan_out, **kwargs, rng=np.random.default_rng(seed)))
    other = np.asarray(fn(fan_in, fan_out, **kwargs, rng=np.random.default_rng(seed + 1)))
    if w.shape != (fan_in, fan_out):
        return {"shape": np.array(w.shape)}
    # The weights themselves: every statistic is taken in the grader (_derive_init), so
    # no verdict computed next to the student's code is believed.
    return {
        "shape": np.array(w.shape),
        "weights are float64": float(drawn.dtype == np.float64),
        "weights": w,
        "the same seed gives the same weights": float(np.array_equal(w, again)),
        "another seed gives other weights": float(not np.array_equal(w, other)),
    }


def _derive_init(plain, case: Case):
    """In the grader, from the weights the harness returned: the spread as ``std / target``
    (exactly 1.0 within 6 standard errors of the target, else rounded to one decimal), the
    mean, the shape of the distribution (see :func:`_run_init`)."""
    if not isinstance(plain, dict) or "weights" not in plain:
        return plain
    out = dict(plain)
    w = np.asarray(out.pop("weights"), dtype=float)
    if w.shape != tuple(case.args) or w.size == 0:
        return {"shape": np.array(w.shape)}
    mean = float(w.mean())
    squares = np.square(w - mean)
    std = math.sqrt(float(squares.mean()))  # w.std(), reusing the squares for the kurtosis
    spread = std / case.grader["target_std"]
    if abs(spread - 1.0) < 6.0 / math.sqrt(2.0 * w.size):
        spread = 1.0
    kurtosis = float(np.mean(np.square(squares)) / max(std**4, 1e-300))
    out["standard deviation / target"] = round(spread, 1) if math.isfinite(spread) else spread
    # A correct draw has |mean| below 6 standard errors with overwhelming probability.
    out["mean is close to 0"] = float(abs(mean) < 6 * max(std, 1e-300) / math.sqrt(w.size))
    out["the weights are normally distributed"] = float(
        abs(kurtosis - 3.0) < max(0.3, 6.0 * math.sqrt(24.0 / w.size))
    )
    return out


def _normal_with_std(std_of):
    def draw(fan_in, fan_out, *, rng):
        return init.normal((fan_in, fan_out), std_of(fan_in, fan_out), rng=rng)

    return draw


def _he_fan_out(fan_in, fan_out, *, rng):
    return init.kaiming_normal((fan_in, fan_out), mode="fan_out", nonlinearity="relu", rng=rng)


def _he_without_gain(fan_in, fan_out, *, rng):
    return init.normal((fan_in, fan_out), 1.0 / math.sqrt(fan_in), rng=rng)


def _xavier_fan_in_only(fan_in, fan_out, *, rng):
    return init.normal((fan_in, fan_out), 1.0 / math.sqrt(fan_in), rng=rng)


def _xavier_fan_out_only(fan_in, fan_out, *, rng):
    return init.normal((fan_in, fan_out), 1.0 / math.sqrt(fan_out), rng=rng)


def _uniform_with_std_as_bound(std_of):
    def draw(fan_in, fan_out, *, rng, **kwargs):
        bound = std_of(fan_in, fan_out, **kwargs)
        return rng.uniform(-bound, bound, size=(fan_in, fan_out))

    return draw


def _global_random_state(rule):
    def draw(fan_in, fan_out, *, rng, **kwargs):
        return rule(fan_in, fan_out, rng=np.random.default_rng(), **kwargs)

    return draw


def _transposed(rule):
    def draw(fan_in, fan_out, *, rng, **kwargs):
        return rule(fan_out, fan_in, rng=rng, **kwargs)

    return draw


_GLOBAL_STATE_HINT = (
    "the same rng seed gave different weights: draw from the rng argument "
    "(rng.standard_normal), not from np.random's global state."
)
_TRANSPOSED_HINT = (
    "the weights have shape (fan_out, fan_in): this course stores W as (fan_in, fan_out), so "
    "that a layer computes x @ W."
)


def _uniform_with_std(std_of):
    def draw(fan_in, fan_out, *, rng, **kwargs):
        bound = math.sqrt(3.0) * std_of(fan_in, fan_out, **kwargs)
        return rng.uniform(-bound, bound, size=(fan_in, fan_out))

    return draw


_RIGHT_SPREAD_UNIFORM_HINT = (
    "the spread is right but the weights are uniformly distributed (rng.uniform): this "
    "initialization draws from a NORMAL distribution, rng.standard_normal."
)

_INIT_RTOL = 0.03
_UNIFORM_HINT = (
    "the spread is 1/sqrt(3) of the target: a uniform draw on [-s, s] has standard deviation "
    "s/sqrt(3), not s. Draw from a normal distribution (rng.standard_normal)."
)

register(
    Task(
        name="a5.random_init",
        reference=random_init,
        cases=_init_cases({"std": 0.05}, lambda fan_in, fan_out: 0.05),
        run=_run_init,
        derive=_derive_init,
        rtol=_INIT_RTOL,
        atol=0.0,
        description="Gaussian weights with a given std",
        mistakes=(
            Mistake(
                "the spread is std**2: the argument is the standard deviation, not the variance.",
                lambda fan_in, fan_out, *, std=0.01, rng: init.normal(
                    (fan_in, fan_out), std**2, rng=rng
                ),
            ),
            Mistake(
                _UNIFORM_HINT,
                _uniform_with_std_as_bound(lambda fi, fo, std=0.01: std),
            ),
            Mistake(
                "the spread is 0.01 whatever std is passed: use the argument std.",
                lambda fan_in, fan_out, *, std=0.01, rng: init.normal(
                    (fan_in, fan_out), 0.01, rng=rng
                ),
            ),
            Mistake(_GLOBAL_STATE_HINT, _global_random_state(random_init)),
            Mistake(_TRANSPOSED_HINT, _transposed(random_init)),
            Mistake(
                _RIGHT_SPREAD_UNIFORM_HINT,
                _uniform_with_std(lambda fi, fo, std=0.01: std),
            ),
            Mistake(
                "the weights are not centred at 0 (rng.random draws from [0, 1)): draw from "
                "a normal distribution with mean 0, std * rng.standard_normal(shape).",
                lambda fan_in, fan_out, *, std=0.01, rng: std * rng.random((fan_in, fan_out)),
            ),
            Mistake(
                "matches rng.normal(std, ...): its first argument is the MEAN (loc); pass the "
                "spread as scale=std, or use std * rng.standard_normal(shape).",
                lambda fan_in, fan_out, *, std=0.01, rng: rng.normal(std, size=(fan_in, fan_out)),
            ),
        ),
        library_functions=("coursekit.init.normal",),
    )
)
register(
    Task(
        name="a5.xavier_init",
        reference=xavier_init,
        cases=_init_cases({}, lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out))),
        run=_run_init,
        derive=_derive_init,
        rtol=_INIT_RTOL,
        atol=0.0,
        description="Xavier/Glorot normal, std sqrt(2 / (fan_in + fan_out))",
        mistakes=(
            Mistake(
                "the spread is 1/sqrt(fan_in): that keeps the forward variance only. Xavier "
                "(torch.nn.init.xavier_normal_) averages both fans: sqrt(2 / (fan_in + fan_out)).",
                _xavier_fan_in_only,
            ),
            Mistake(
                "the spread is 1/sqrt(fan_out): Xavier uses both fans, sqrt(2 / (fan_in + fan_out)).",
                _xavier_fan_out_only,
            ),
            Mistake(
                _UNIFORM_HINT,
                _uniform_with_std_as_bound(lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
            ),
            Mistake(_GLOBAL_STATE_HINT, _global_random_state(xavier_init)),
            Mistake(_TRANSPOSED_HINT, _transposed(xavier_init)),
            Mistake(
                _RIGHT_SPREAD_UNIFORM_HINT,
                _uniform_with_std(lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
            ),
            Mistake(
                "the spread is sqrt(1 / (fan_in + fan_out)): Xavier's variance is "
                "2 / (fan_in + fan_out), so the std is sqrt(2 / (fan_in + fan_out)).",
                _normal_with_std(lambda fi, fo: math.sqrt(1.0 / (fi + fo))),
            ),
            Mistake(
                "the spread is sqrt(6 / (fan_in + fan_out)): that is the BOUND of Xavier's "
                "uniform version; the normal version's std is sqrt(2 / (fan_in + fan_out)).",
                _normal_with_std(lambda fi, fo: math.sqrt(6.0 / (fi + fo))),
            ),
            Mistake(
                "the spread is 2 / (fan_in + fan_out), the VARIANCE: the std is its square root.",
                _normal_with_std(lambda fi, fo: 2.0 / (fi + fo)),
            ),
        ),
        library_functions=("coursekit.init.xavier_normal", "coursekit.init.xavier_uniform"),
    )
)
register(
    Task(
        name="a5.he_init",
        reference=he_init,
        cases=_init_cases({}, lambda fan_in, fan_out: math.sqrt(2.0 / fan_in)),
        run=_run_init,
        derive=_derive_init,
        rtol=_INIT_RTOL,
        atol=0.0,
        description="He/Kaiming normal for ReLU, std sqrt(2 / fan_in)",
        mistakes=(
            Mistake(
                "the spread uses fan_out: He initialization keeps the forward signal's variance, "
                "so it divides by fan_in (the number of inputs each unit sums, W.shape[0]).",
                _he_fan_out,
            ),
            Mistake(
                "the spread is 1/sqrt(fan_in), without the factor 2 that compensates for ReLU "
                "zeroing half of its inputs: use sqrt(2 / fan_in).",
                _he_without_gain,
            ),
            Mistake(
                _UNIFORM_HINT,
                _uniform_with_std_as_bound(lambda fi, fo: math.sqrt(2.0 / fi)),
            ),
            Mistake(_GLOBAL_STATE_HINT, _global_random_state(he_init)),
            Mistake(_TRANSPOSED_HINT, _transposed(he_init)),
            Mistake(
                _RIGHT_SPREAD_UNIFORM_HINT, _uniform_with_std(lambda fi, fo: math.sqrt(2.0 / fi))
            ),
            Mistake(
                "the spread is 2 / fan_in, the VARIANCE: the std is its square root, "
                "sqrt(2 / fan_in).",
                _normal_with_std(lambda fi, fo: 2.0 / fi),
            ),
            Mistake(
                "matches sqrt(2.0 / fan_in + fan_out): Python divides before it adds; write "
                "sqrt(2.0 / fan_in).",
                _normal_with_std(lambda fi, fo: math.sqrt(2.0 / fi + fo)),
            ),
            Mistake(
                "the spread is Xavier's, sqrt(2 / (fan_in + fan_out)): He initialization for "
                "ReLU uses fan_in only, sqrt(2 / fan_in).",
                _normal_with_std(lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
            ),
        ),
        library_functions=("coursekit.init.kaiming_normal", "coursekit.init.kaiming_uniform"),
    )
)


# -- activation statistics ----------------------------------------------------------------
_ACTIVATION_FORWARD = {"tanh": tanh_forward, "relu": relu_forward}


def layer_statistics(x, weights, activation):
    means, stds = [], []
    h = x
    for w in weights:
        h, _ = _ACTIVATION_FORWARD[activation](h @ w)
        means.append(h.mean())
        stds.append(h.std())
    return np.array(means), np.array(stds)


def _stats_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, depth, width, activation, scale in [
        ("tanh, small weights", 4, 50, "tanh", 0.01),
        ("tanh, large weights (saturated)", 3, 40, "tanh", 1.0),
        ("relu, He scale", 5, 60, "relu", math.sqrt(2 / 60)),
        ("one layer, relu", 1, 20, "relu", 0.3),
    ]:
        x = rng.standard_normal((64, width))
        weights = [scale * rng.standard_normal((width, width)) for _ in range(depth)]
        cases.append(Case(label, (x, weights, activation)))
    # A layer that changes the width.
    x = rng.standard_normal((32, 30))
    weights = [0.2 * rng.standard_normal((30, 10)), 0.3 * rng.standard_normal((10, 5))]
    cases.append(Case("layers of different widths", (x, weights, "tanh")))
    return cases


def _run_stats(fn, case: Case):
    means, stds = fn(*case.args)
    return {"means": np.asarray(means, dtype=float), "stds": np.asarray(stds, dtype=float)}


def _stats_of_preactivations(x, weights, activation):
    means, stds = [], []
    h = x
    for w in weights:
        z = h @ w
        means.append(z.mean())
        stds.append(z.std())
        h, _ = _ACTIVATION_FORWARD[activation](z)
    return np.array(means), np.array(stds)


def _stats_not_chained(x, weights, activation):
    means, stds = [], []
    for w in weights:
        h, _ = _ACTIVATION_FORWARD[activation](x @ w)
        means.append(h.mean())
        stds.append(h.std())
    return np.array(means), np.array(stds)


def _stats_per_unit_std(x, weights, activation):
    means, stds = [], []
    h = x
    for w in weights:
        h, _ = _ACTIVATION_FORWARD[activation](h @ w)
        means.append(h.mean())
        stds.append(h.std(axis=0).mean())
    return np.array(means), np.array(stds)


def _stats_always_tanh(x, weights, activation):
    return layer_statistics(x, weights, "tanh")


def _stats_with_input(x, weights, activation):
    means, stds = layer_statistics(x, weights, activation)
    return np.concatenate([[x.mean()], means]), np.concatenate([[x.std()], stds])


def _stats_sample_std(x, weights, activation):
    means, stds = [], []
    h = x
    for w in weights:
        h, _ = _ACTIVATION_FORWARD[activation](h @ w)
        means.append(h.mean())
        stds.append(h.std(ddof=1))
    return np.array(means), np.array(stds)


register(
    Task(
        name="a5.layer_statistics",
        reference=layer_statistics,
        cases=_stats_cases,
        run=_run_stats,
        rtol=1e-9,
        atol=1e-12,
        description="per-layer mean and std of the activations of a deep net",
        mistakes=(
            Mistake(
                "these are the statistics of the pre-activations h @ W: record them after the "
                "nonlinearity.",
                _stats_of_preactivations,
            ),
            Mistake(
                "every layer was fed the input x: feed each layer the previous layer's output.",
                _stats_not_chained,
            ),
            Mistake(
                "the std is the average of per-unit stds (axis=0): take the std of all the "
                "layer's activations together.",
                _stats_per_unit_std,
            ),
            Mistake(
                "matches using tanh whatever `activation` says: apply ReLU when activation "
                "is 'relu'.",
                _stats_always_tanh,
            ),
            Mistake(
                "the std is the sample std (ddof=1): use the population std, np.std's default.",
                _stats_sample_std,
            ),
            Mistake(
                "there is one entry too many: the statistics of the input x were recorded too; "
                "record one mean and one std per layer, after its activation.",
                _stats_with_input,
            ),
        ),
        library_functions=(
            "coursekit.activation_stats.activation_statistics",
            "coursekit.activation_stats.ActivationStatistics",
        ),
    )
)


# -- weight penalties ---------------------------------------------------------------------
def _penalty_cases(rng: np.random.Generator) -> list[Case]:
    w = rng.standard_normal((6, 4))
    w[rng.random(w.shape) < 0.3] = 0.0  # exact zeros: where L1 has no derivative
    return [
        Case("matrix with exact zeros", (w, 0.1)),
        Case("vector", (rng.standard_normal(10), 2.5)),
        Case("strength 0", (rng.standard_normal((3, 3)), 0.0)),
        Case("all zeros", (np.zeros((2, 5)), 1.0)),
        Case("large weights", (1e4 * rng.standard_normal((5, 2)), 1e-3)),
    ]


def _run_penalty(fn, case: Case):
    w, strength = case.args
    before = w.copy()
    value, grad = fn(w, strength)
    return {
        "penalty": float(value),
        "gradient": np.asarray(grad, dtype=float),
        "W unchanged": float(np.array_equal(w, before)),
    }


def _l2_without_half(w, strength):
    return strength * np.sum(w * w), strength * w


def _l2_gradient_doubled(w, strength):
    return 0.5 * strength * np.sum(w * w), 2 * strength * w


def _l1_gradient_at_zero_positive(w, strength):
    return strength * np.sum(np.abs(w)), strength * np.where(w >= 0, 1.0, -1.0)


def _l1_without_abs(w, strength):
    return strength * np.sum(w), strength * np.sign(w)


def _l1_gradient_is_w(w, strength):
    return strength * np.sum(np.abs(w)), strength * w


def _l1_gradient_without_strength(w, strength):
    return strength * np.sum(np.abs(w)), np.sign(w)


def _l2_mean(w, strength):
    return 0.5 * strength * np.mean(w * w), strength * w


register(
    Task(
        name="a5.l2_penalty",
        reference=l2_penalty,
        cases=_penalty_cases,
        run=_run_penalty,
        rtol=1e-10,
        atol=1e-12,
        description="L2 penalty (strength/2) * sum(W**2) and its gradient",
        mistakes=(
            Mistake(
                "the penalty is strength * sum(W**2) but its gradient is strength * W: "
                "with the 1/2 of this assignment the penalty is (strength / 2) * sum(W**2).",
                _l2_without_half,
            ),
            Mistake(
                "the gradient of (strength / 2) * sum(W**2) is strength * W (the 2 and the 1/2 "
                "cancel).",
                _l2_gradient_doubled,
            ),
            Mistake(
                "the penalty is the MEAN of the squares: the L2 penalty sums them, "
                "(strength / 2) * sum(W**2).",
                _l2_mean,
            ),
            Mistake(
                "the penalty uses the norm ||W|| itself: the L2 penalty is (strength / 2) times "
                "the SQUARED norm, sum(W**2).",
                lambda w, strength: (0.5 * strength * np.linalg.norm(w), strength * w),
            ),
            Mistake(
                "the gradient is (strength / 2) * W: differentiating (strength / 2) * W**2 "
                "gives strength * W.",
                lambda w, strength: (0.5 * strength * np.sum(w * w), 0.5 * strength * w),
            ),
        ),
        library_functions=("coursekit.regularization.l2_penalty",),
    )
)
register(
    Task(
        name="a5.l1_penalty",
        reference=l1_penalty,
        cases=_penalty_cases,
        run=_run_penalty,
        rtol=1e-10,
        atol=1e-12,
        description="L1 penalty strength * sum(|W|) and its subgradient, 0 at W = 0",
        mistakes=(
            Mistake(
                "the gradient at W == 0 is not 0: use np.sign (sign(0) = 0), so that an exact "
                "zero weight stays at zero.",
                _l1_gradient_at_zero_positive,
            ),
            Mistake("the penalty needs the absolute values, sum(|W|).", _l1_without_abs),
            Mistake(
                "the gradient is strength * W (that is L2's): L1's is strength * sign(W).",
                _l1_gradient_is_w,
            ),
            Mistake(
                "the gradient is sign(W) without the factor strength.",
                _l1_gradient_without_strength,
            ),
            Mistake(
                "NaN where W == 0: W / |W| is 0/0 there; np.sign(W) gives the subgradient 0.",
                lambda w, strength: (strength * np.sum(np.abs(w)), strength * w / np.abs(w)),
            ),
        ),
        library_functions=("coursekit.regularization.l1_penalty",),
    )
)


# -- max-norm -----------------------------------------------------------------------------
def _max_norm_cases(rng: np.random.Generator) -> list[Case]:
    w = rng.standard_normal((8, 5))
    w[:, 1] *= 0.05  # one unit well inside the ball: must stay untouched
    return [
        Case("some columns too long", (w, 1.5)),
        Case("every column too long", (3.0 * rng.standard_normal((20, 4)), 1.0)),
        Case("nothing to do", (0.01 * rng.standard_normal((5, 6)), 2.0)),
        Case("one output unit", (rng.standard_normal((12, 1)), 0.5)),
        Case("wide layer", (rng.standard_normal((3, 30)), 1.0)),
    ]


def _run_max_norm(fn, case: Case):
    """The weights after the call: the projection works in place."""
    w, max_norm = case.args
    fn(w, max_norm)
    return w


def _max_norm_rows(w, max_norm):
    return max_norm_(w, max_norm, axis=1)


def _max_norm_always_rescale(w, max_norm):
    w *= max_norm / np.linalg.norm(w, axis=0, keepdims=True)
    return w


def _max_norm_not_in_place(w, max_norm):
    return max_norm_(w.copy(), max_norm)


def _max_norm_zeroes_short(w, max_norm):
    norms = np.linalg.norm(w, axis=0, keepdims=True)
    w *= np.where(norms > max_norm, max_norm / (norms + 1e-7), 0.0)
    return w


def _max_norm_to_unit(w, max_norm):
    norms = np.linalg.norm(w, axis=0, keepdims=True)
    w *= np.where(norms > max_norm, 1.0 / norms, 1.0)
    return w


def _max_norm_inverted(w, max_norm):
    norms = np.linalg.norm(w, axis=0, keepdims=True)
    w *= np.where(norms > max_norm, norms / max_norm, 1.0)
    return w


def _max_norm_whole_matrix(w, max_norm):
    norm = np.linalg.norm(w)
    if norm > max_norm:
        w *= max_norm / norm
    return w


register(
    Task(
        name="a5.max_norm",
        reference=max_norm_,
        cases=_max_norm_cases,
        run=_run_max_norm,
        # The 1e-7 guard in max_norm / (norm + 1e-7) is optional (a loop dividing by the norm
        # itself is a valid answer): it changes a column by 1e-7 / norm < 1e-6 relative.
        rtol=1e-6,
        atol=1e-9,
        description="max-norm projection of each unit's incoming weights (columns), in place",
        mistakes=(
            Mistake(
                "the norms were taken over the rows: a unit's incoming weights are a COLUMN "
                "W[:, j] (W has shape (fan_in, fan_out)), so take norms over axis 0.",
                _max_norm_rows,
            ),
            Mistake(
                "every column was rescaled to norm max_norm: only columns whose norm EXCEEDS "
                "max_norm change; shorter ones are left alone.",
                _max_norm_always_rescale,
            ),
            Mistake(
                "W did not change: the projection must modify W in place (W *= ..., or "
                "W[...] = ...).",
                _max_norm_not_in_place,
            ),
            Mistake(
                "the whole matrix was rescaled by its Frobenius norm: the constraint holds for "
                "each unit (column) separately.",
                _max_norm_whole_matrix,
            ),
            Mistake(
                "the columns that were too long now have norm 1: rescale them to norm "
                "max_norm, W[:, j] * max_norm / ||W[:, j]||.",
                _max_norm_to_unit,
            ),
            Mistake(
                "the columns that were too long grew: the factor is max_norm / norm (< 1), "
                "not norm / max_norm.",
                _max_norm_inverted,
            ),
            Mistake(
                "columns whose norm was already below max_norm became 0: they must be left as "
                "they are (factor 1).",
                _max_norm_zeroes_short,
            ),
        ),
        library_functions=("coursekit.regularization.max_norm_",),
    )
)


# -- gradient clipping --------------------------------------------------------------------
def _clip_cases(rng: np.random.Generator) -> list[Case]:
    def grads(scale):
        return {
            "W1": scale * rng.standard_normal((4, 3)),
            "b1": scale * rng.standard_normal(3),
            "W2": scale * rng.standard_normal((3, 2)),
        }

    return [
        Case("the lecture's [0.9, 100] example", ({"g": np.array([0.9, 100.0])}, 1.0)),
        Case("several arrays, large gradients", (grads(10.0), 2.0)),
        Case("several arrays, already small", (grads(0.01), 5.0)),
        Case("one array, threshold 0.5", ({"W": rng.standard_normal((6, 6))}, 0.5)),
    ]


def _run_clip_value(fn, case: Case):
    grads, threshold = case.args
    fn(grads, threshold)
    return grads


def _run_clip_norm(fn, case: Case):
    grads, threshold = case.args
    total = fn(grads, threshold)
    return {"returned total norm": float(total), "clipped gradients": grads}


def _clip_value_upper_only(grads, clip_value):
    for g in grads.values():
        np.minimum(g, clip_value, out=g)


def _clip_value_by_norm(grads, clip_value):
    clip_grad_norm_(grads, clip_value)


def _clip_value_not_in_place(grads, clip_value):
    for g in grads.values():
        g = np.clip(g, -clip_value, clip_value)  # noqa: PLW2901 - the mistake itself


def _clip_value_to_positive(grads, clip_value):
    for g in grads.values():
        np.clip(g, 0.0, clip_value, out=g)


def _clip_norm_inverted_condition(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    scale = max_norm / (total + 1e-6) if total < max_norm else 1.0
    for g in grads.values():
        g *= scale
    return total


def _clip_value_first_only(grads, clip_value):
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
        break


def _clip_norm_squared(grads, max_norm):
    total = sum(float(np.sum(g * g)) for g in grads.values())
    scale = min(1.0, max_norm / (total + 1e-6))
    for g in grads.values():
        g *= scale
    return total


def _clip_norm_per_array(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    for g in grads.values():
        clip_grad_norm_(g, max_norm)
    return total


def _clip_norm_per_element(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    clip_grad_value_(grads, max_norm)
    return total


def _clip_norm_always(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    for g in grads.values():
        g *= max_norm / (total + 1e-6)
    return total


def _clip_norm_returns_clipped(grads, max_norm):
    clip_grad_norm_(grads, max_norm)
    return math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))


register(
    Task(
        name="a5.clip_grad_value",
        reference=clip_grad_value_,
        cases=_clip_cases,
        run=_run_clip_value,
        rtol=1e-10,
        atol=1e-12,
        description="clip every gradient component to [-clip_value, clip_value], in place",
        mistakes=(
            Mistake(
                "only the upper bound was applied: clip to [-clip_value, clip_value].",
                _clip_value_upper_only,
            ),
            Mistake(
                "this rescales by the norm; clipping by value clamps each component separately.",
                _clip_value_by_norm,
            ),
            Mistake(
                "the gradients did not change: clip the arrays in place (np.clip(g, lo, hi, "
                "out=g) or g[...] = ...); `g = np.clip(...)` only rebinds the loop variable.",
                _clip_value_not_in_place,
            ),
            Mistake(
                "negative components became 0: clip to [-clip_value, clip_value], not "
                "[0, clip_value].",
                _clip_value_to_positive,
            ),
            Mistake(
                "only the first array was clipped: clip every array of the dict (a return or "
                "break inside the loop stops it early).",
                _clip_value_first_only,
            ),
        ),
        library_functions=("coursekit.clipping.clip_grad_value_",),
    )
)
register(
    Task(
        name="a5.clip_grad_norm",
        reference=clip_grad_norm_,
        cases=_clip_cases,
        run=_run_clip_norm,
        # sqrt of a sum of squares, in any order or through np.linalg.norm, agrees to a few
        # eps; the notebook's factor max_norm / (norm + 1e-6) is part of the answer (its
        # 1e-6 moves the result by 1e-6 / norm > 1e-9), and float32 fails.
        rtol=1e-10,
        atol=1e-12,
        description="rescale all gradients together to a global norm of at most max_norm",
        mistakes=(
            Mistake(
                "each array was clipped by its own norm: the norm is global, over all the "
                "arrays together, and every array is multiplied by the same factor.",
                _clip_norm_per_array,
            ),
            Mistake(
                "the components were clipped one by one (that is clipping by value, which "
                "changes the gradient's direction): rescale the whole gradient instead.",
                _clip_norm_per_element,
            ),
            Mistake(
                "gradients whose norm is already below max_norm were scaled up: the factor is "
                "min(1, max_norm / (norm + 1e-6)).",
                _clip_norm_always,
            ),
            Mistake(
                "the returned value is the norm after clipping: return the total norm before "
                "clipping, as torch.nn.utils.clip_grad_norm_ does.",
                _clip_norm_returns_clipped,
            ),
            Mistake(
                "the 'norm' is the sum of squares: take its square root, "
                "sqrt(sum of g**2 over all arrays).",
                _clip_norm_squared,
            ),
            Mistake(
                "gradients LONGER than max_norm were left alone (and shorter ones scaled up): "
                "rescale only when the norm exceeds max_norm.",
                _clip_norm_inverted_condition,
            ),
        ),
        library_functions=("coursekit.clipping.clip_grad_norm_",),
    )
)


# -- early stopping -----------------------------------------------------------------------
def _stopping_cases(rng: np.random.Generator) -> list[Case]:
    noisy = np.round(
        np.minimum(0.9, 0.5 + 0.05 * np.arange(20)) + 0.02 * rng.standard_normal(20), 3
    )
    return [
        Case(
            "rises, then plateaus",
            ([0.5, 0.6, 0.7, 0.72, 0.71, 0.70, 0.72, 0.69, 0.7, 0.7],),
            {"patience": 3},
        ),
        Case("ties do not count", ([0.8, 0.8, 0.8, 0.8, 0.9],), {"patience": 2}),
        Case("patience 1", ([0.1, 0.3, 0.2, 0.4, 0.5],), {"patience": 1}),
        Case(
            "min_delta 0.05",
            ([0.5, 0.53, 0.56, 0.58, 0.6, 0.612, 0.62, 0.63, 0.64],),
            {"patience": 3, "min_delta": 0.05},
        ),
        Case("never stops", ([0.1, 0.2, 0.3, 0.4],), {"patience": 2}),
        Case("noisy curve", (list(noisy),), {"patience": 4}),
        # The first metric is an improvement whatever it is (best starts at -inf): a best
        # initialized to 0, or a first step compared against min_delta, misses it.
        Case(
            "first metric at or below min_delta",
            ([0.0, 0.01, 0.02, 0.03, 0.0],),
            {"patience": 2, "min_delta": 0.05},
        ),
    ]


def _run_stopping(fn, case: Case):
    """Feed the metrics; the weights at step t are all equal to t. Report when it stopped and
    which weights ``restore`` brought back INTO THE LIVE ARRAYS (a model holds those arrays,
    so putting other arrays in the dict restores nothing the model uses)."""
    (metrics,) = case.args
    stopper = fn(**case.kwargs)
    params = {"W": np.zeros((2, 2)), "b": np.zeros(2)}
    live = dict(params)
    stopped_at = -1
    for t, metric in enumerate(metrics):
        for arr in params.values():
            arr[...] = t
        if stopper.step(metric, params):
            stopped_at = t
            break
    for arr in params.values():
        arr[...] = -1.0  # training would keep changing the live weights
    stopper.restore(params)
    return {"stopped at step": stopped_at, "restored W": live["W"], "restored b": live["b"]}


def _early_stopping_reference(patience=5, min_delta=0.0):
    return EarlyStopping(patience=patience, min_delta=min_delta, mode="max")


class _StopperWith:
    """A reference stopper with one behaviour changed, for the diagnoses."""

    def __init__(
        self,
        patience=5,
        min_delta=0.0,
        *,
        restore=True,
        ties=False,
        late=0,
        reset=True,
        save_always=False,
        best_tracks_last=False,
        rebind=False,
    ):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad, self.saved = -math.inf, 0, None
        self._restore, self._ties, self._late, self._reset = restore, ties, late, reset
        self._save_always = save_always
        self._best_tracks_last = best_tracks_last
        self._rebind = rebind

    def step(self, metric, params):
        better = (
            metric - self.min_delta >= self.best
            if self._ties
            else metric - self.min_delta > self.best
        )
        if better:
            self.best, self.bad = metric, 0 if self._reset else self.bad
            self.saved = {k: v.copy() for k, v in params.items()}
            return False
        if self._save_always:
            self.saved = {k: v.copy() for k, v in params.items()}
        if self._best_tracks_last:
            self.best = metric
        self.bad += 1
        return self.bad >= self.patience + self._late

    def restore(self, params):
        if self._restore:
            for k, v in self.saved.items():
                if self._rebind:
                    params[k] = v
                else:
                    params[k][...] = v


register(
    Task(
        name="a5.early_stopping",
        reference=_early_stopping_reference,
        cases=_stopping_cases,
        run=_run_stopping,
        rtol=1e-12,
        atol=0.0,
        description="early stopping on a validation accuracy, restoring the best weights",
        mistakes=(
            Mistake(
                "restore() did not bring back the best weights: whenever the metric improves, "
                "keep a COPY of the parameters (a reference to the live arrays changes with "
                "them), and in restore() copy it back into the arrays.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, restore=False),
            ),
            Mistake(
                "a metric equal to the best counted as an improvement: it must be strictly "
                "better (by more than min_delta).",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, ties=True),
            ),
            Mistake(
                "it stopped one step late: stop as soon as `patience` steps in a row did not "
                "improve.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, late=1),
            ),
            Mistake(
                "it stopped one step early: stop after `patience` steps in a row without "
                "improvement, not patience - 1.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, late=-1),
            ),
            Mistake(
                "min_delta was ignored: an improvement must beat the best by more than min_delta.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, 0.0),
            ),
            Mistake(
                "the count of steps without improvement was not reset when the metric "
                "improved: patience counts CONSECUTIVE steps without improvement.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, reset=False),
            ),
            Mistake(
                "restore() brought back the LAST weights seen: save a copy only when the metric "
                "improves, not at every step.",
                lambda patience=5, min_delta=0.0: _StopperWith(
                    patience, min_delta, save_always=True
                ),
            ),
            Mistake(
                "the best metric was overwritten by a worse one: update best (and the saved "
                "weights) only when the metric improves.",
                lambda patience=5, min_delta=0.0: _StopperWith(
                    patience, min_delta, best_tracks_last=True
                ),
            ),
            Mistake(
                "restore() put the saved arrays into the dict (params[k] = saved) instead of "
                "copying them INTO the arrays the model uses: params[k][...] = saved.",
                lambda patience=5, min_delta=0.0: _StopperWith(patience, min_delta, rebind=True),
            ),
        ),
        library_functions=("coursekit.early_stopping.EarlyStopping",),
    )
)


# -- the final model ----------------------------------------------------------------------
ACCURACY_TARGET = 0.95


#: Amplitude of the noise added to the held-out digits (pixels are multiples of 1/16).
FINAL_NOISE = 0.02


def _final_cases(rng: np.random.Generator) -> list[Case]:
    """The held-out test split (never trained on), in an order and with a faint noise
    drawn from the grader's generator: the digits are public, so a table of their labels
    keyed by the exact pixels could be prepared; with the noise no such key matches, while
    a model's predictions do not change (the noise is a third of a grey level)."""
    data = digits_splits(seed=0)
    order = rng.permutation(len(data["y_test"]))
    noise = rng.uniform(-FINAL_NOISE, FINAL_NOISE, size=data["X_test"].shape)
    X = np.clip(data["X_test"][order] + noise, 0.0, 1.0)
    labels = {"y": data["y_test"][order]}  # stay in the grader (_derive_final)
    return [Case("held-out test split of the digits", (X,), grader=labels)]


def _run_final(fn, case: Case):
    """The predictions (the labels are not here: :func:`_derive_final` scores them in
    the grader)."""
    (X,) = case.args
    pred = np.asarray(fn(X.copy()))
    if pred.shape != (X.shape[0],):
        raise ValueError(f"predict returned shape {pred.shape}, expected {(X.shape[0],)}")
    # One digit at a time must get the label it gets in the batch: preprocessing that uses
    # the statistics of the batch being predicted (X - X.mean(axis=0)) fails here, and so
    # does a model that cannot predict a single sample.
    singles = [np.asarray(fn(X[i : i + 1].copy())).reshape(-1) for i in range(5)]
    consistent = all(s.shape == (1,) and s[0] == pred[i] for i, s in enumerate(singles))
    return {
        "predictions": pred.astype(np.int64),
        "a single digit gets the label it gets in a batch": float(consistent),
    }


def _derive_final(plain, case: Case):
    """In the grader: the accuracy of the predictions on the held-out labels."""
    pred = np.asarray(plain["predictions"]).reshape(-1)
    labels = case.grader["y"]
    accuracy = float(np.mean(pred == labels)) if pred.shape == labels.shape else 0.0
    return {
        f"test accuracy reaches {ACCURACY_TARGET:.0%}": float(accuracy >= ACCURACY_TARGET),
        "a single digit gets the label it gets in a batch": plain[
            "a single digit gets the label it gets in a batch"
        ],
    }


def _nearest_neighbour(X):
    """The reference model: 1-nearest neighbour on the training and validation splits."""
    data = digits_splits(seed=0)
    X_ref = np.concatenate([data["X_train"], data["X_val"]])
    y_ref = np.concatenate([data["y_train"], data["y_val"]])
    return y_ref[np.argmin(pairwise_distances(X, X_ref), axis=1)]


register(
    Task(
        name="a5.final_model",
        reference=_nearest_neighbour,
        notebook_state=True,  # final_predict uses the model the notebook trained
        cases=_final_cases,
        run=_run_final,
        derive=_derive_final,
        rtol=0.0,
        atol=0.0,
        description=f"the final digits model reaches {ACCURACY_TARGET:.0%} on held-out data",
        mistakes=(
            Mistake(
                f"the model's accuracy on held-out test digits is below {ACCURACY_TARGET:.0%}. "
                "Check that final_predict preprocesses raw digits exactly as in training, and "
                "tune the model on the validation split.",
                lambda X: np.full(X.shape[0], -1),
            ),
        ),
    )
)
