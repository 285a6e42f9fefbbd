"""Grading tasks of assignment A4: dropout, BatchNorm and LayerNorm.

The notebook prescribes the layout of each cache (BatchNorm: ``xhat``, ``gamma``, ``inv_std``,
``mode``; LayerNorm: ``xhat``, ``gamma``, ``inv_std``; dropout: ``mask``, ``p``, ``mode``), and
every backward task is graded on caches in that layout built from the case's inputs, not by
the student's forward pass: a mistake in a forward pass costs points in the forward cell only.
The library's backward passes, which keep their own caches, serve as references through
small adapters that rebuild a library cache with the library's forward pass.

Dropout is random. Any way of drawing the mask from the given generator is accepted, so the
dropout forward task compares *properties* of the output (every unit either dropped or scaled
by ``1/(1-p)``, the fraction dropped, reproducibility for equal seeds) rather than the numbers.
"""

from __future__ import annotations

import numpy as np

from coursekit.dropout import dropout_backward as ref_dropout_backward
from coursekit.dropout import dropout_forward as ref_dropout_forward
from coursekit.grading.core import Case, Mistake, Task, register
from coursekit.normalization import (
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

# -- dropout ------------------------------------------------------------------------------
# Enough units that the fraction dropped is within 0.015 of p with overwhelming probability
# (its standard deviation is at most 0.5 / sqrt(40_000) = 0.0025, so that is 6 of them: a
# correct dropout drawing its mask another way fails with probability about 2e-9).
_DROPOUT_UNITS = (200, 200)
_DROP_FRACTION_TOL = 0.015


def _dropout_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, p, mode in [
        ("train mode, p = 0.3", 0.3, "train"),
        ("train mode, p = 0.8", 0.8, "train"),
        ("train mode, p = 0 (nothing dropped)", 0.0, "train"),
        ("test mode, p = 0.6", 0.6, "test"),
    ]:
        x = rng.uniform(0.5, 2.0, size=_DROPOUT_UNITS) * rng.choice([-1.0, 1.0], _DROPOUT_UNITS)
        cases.append(Case(label, (x, p), {"mode": mode, "seed": int(rng.integers(2**31))}))
    x = rng.uniform(1.0, 3.0, size=(1, 7))
    cases.append(Case("batch of 1, test mode", (x, 0.5), {"mode": "test", "seed": 1}))
    return cases


def _run_dropout_forward(fn, case: Case):
    """Properties of the output that every correct inverted dropout shares.

    Each property is 1.0 when it holds (plain floats compare the same way everywhere). Seeds
    are checked both ways: the same seed must give the same output and another seed another
    one (a mask drawn from a fixed seed, or from numpy's global generator, fails one of them);
    rows and columns must be dropped independently (one mask row broadcast over the batch
    drops the right fraction but the same units for every sample).
    """
    x, p = case.args
    mode, seed = case.kwargs["mode"], case.kwargs["seed"]
    x_before = x.copy()
    out, _ = fn(x, p, mode=mode, rng=np.random.default_rng(seed))
    out = np.array(out, dtype=np.float64, copy=True)
    unchanged = float(np.array_equal(x, x_before))
    if mode == "test":
        return {"out": out, "x unchanged": unchanged}
    x = x_before
    again, _ = fn(x.copy(), p, mode=mode, rng=np.random.default_rng(seed))
    other, _ = fn(x.copy(), p, mode=mode, rng=np.random.default_rng(seed + 1))
    if out.shape != x.shape:
        return {"shape": np.array(out.shape)}
    # The output itself: the properties are taken from it in the grader (_derive_dropout),
    # so no verdict computed next to the student's code is believed.
    return {
        "out": out,
        "x unchanged": unchanged,
        "the same seed gives the same output": float(np.array_equal(out, np.asarray(again))),
        "another seed gives another output": float(not np.array_equal(out, np.asarray(other))),
    }


def _derive_dropout(plain, case: Case):
    """In the grader: the properties every correct inverted dropout shares, from the output
    the harness returned and the case's input (train mode; test mode compares ``out``)."""
    if case.kwargs["mode"] != "train" or not isinstance(plain, dict) or "out" not in plain:
        return plain
    x, p = case.args
    out = np.asarray(plain["out"], dtype=float)
    if out.shape != x.shape:
        return {"shape": np.array(out.shape)}
    with np.errstate(all="ignore"):
        ratio = out / x
    kept = ratio != 0
    n_rows, n_cols = kept.shape
    independent = (
        len(np.unique(kept, axis=0)) > n_rows // 2 and len(np.unique(kept, axis=1)) > n_cols // 2
    )
    return {
        "shape": np.array(out.shape),
        "x unchanged": plain["x unchanged"],
        "every unit is either dropped or scaled by 1/(1-p)": float(
            np.all(~kept | np.isclose(ratio, 1.0 / (1.0 - p), rtol=1e-12))
        ),
        "fraction dropped is close to p": float(abs(1.0 - kept.mean() - p) < _DROP_FRACTION_TOL),
        # The two numbers behind those checks, coarse enough to be the same for every correct
        # dropout (the fraction is within 0.015 of p = 0, 0.3 or 0.8, far from a rounding
        # boundary), so that a wrong one can be told apart: scaled by 1/p, by nothing, ...
        "fraction dropped, to one decimal": round(float(1.0 - kept.mean()), 1),
        "scale of the kept units, to 6 decimals": (
            round(float(np.median(ratio[kept])), 6) if kept.any() else 0.0
        ),
        "units are dropped independently": float(independent),
        "the same seed gives the same output": plain["the same seed gives the same output"],
        "another seed gives another output": plain["another seed gives another output"],
    }


def _dropout_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, shape, p, mode in [
        ("train mode, p = 0.25", (6, 9), 0.25, "train"),
        ("train mode, p = 0.9", (30, 4), 0.9, "train"),
        ("train mode, p = 0", (3, 5), 0.0, "train"),
        ("test mode", (5, 5), 0.4, "test"),
        ("batch of 1, train mode", (1, 12), 0.5, "train"),
    ]:
        dout = rng.standard_normal(shape)
        # The cache of the prescribed layout, as the reference forward makes it: the kept
        # units scaled by 1/(1-p), or None where nothing is dropped (test mode, p = 0).
        keep = rng.random(shape) >= p
        mask = keep / (1.0 - p) if mode == "train" and p > 0 else None
        cases.append(Case(label, (dout, {"mask": mask, "p": p, "mode": mode})))
    return cases


def _run_dropout_backward(fn, case: Case):
    """The student's backward on the case's cache; ``dout`` must come out unchanged."""
    dout, cache = case.args
    before = dout.copy()
    dx = fn(dout, cache)
    return {"dx": dx, "dout unchanged": float(np.array_equal(dout, before))}


def _dropout_keep_probability(x, p, *, mode, rng):
    return ref_dropout_forward(x, 1.0 - p if p > 0 else p, mode=mode, rng=rng)


def _dropout_no_rescale(x, p, *, mode, rng):
    out, cache = ref_dropout_forward(x, p, mode=mode, rng=rng)
    return out * (1.0 - p) if mode == "train" else out, cache


def _dropout_scale_at_test(x, p, *, mode, rng):
    out, cache = ref_dropout_forward(x, p, mode=mode, rng=rng)
    return (out * (1.0 - p), cache) if mode == "test" else (out, cache)


def _dropout_drop_at_test(x, p, *, mode, rng):
    return ref_dropout_forward(x, p, mode="train", rng=rng)


def _dropout_global_random_state(x, p, *, mode, rng):
    return ref_dropout_forward(x, p, mode=mode, rng=np.random.default_rng())


def _dropout_mask_rule(keep_rule, scale_rule):
    def forward(x, p, *, mode, rng):
        if mode == "test" or p == 0:
            return x.copy(), {"mask": None, "p": p, "mode": mode}
        mask = keep_rule(rng.random(x.shape), p) * scale_rule(p)
        return x * mask, {"mask": mask, "p": p, "mode": mode}

    return forward


def _dropout_mask_per_feature(x, p, *, mode, rng):
    if mode == "test" or p == 0:
        return x.copy(), {"mask": None, "p": p, "mode": mode}
    mask = (rng.random(x.shape[1]) >= p) / (1.0 - p)
    return x * mask, {"mask": mask, "p": p, "mode": mode}


def _dropout_backward_twice(dout, cache):
    dx = ref_dropout_backward(dout, cache)
    return dx / (1.0 - cache["p"]) if cache["mode"] == "train" else dx


def _dropout_backward_times_keep(dout, cache):
    dx = ref_dropout_backward(dout, cache)
    return dx * (1.0 - cache["p"]) if cache["mask"] is not None else dx


def _dropout_backward_no_rescale(dout, cache):
    dx = ref_dropout_backward(dout, cache)
    return dx * (1.0 - cache["p"]) if cache["mode"] == "train" else dx


def _dropout_backward_pass_through(dout, cache):
    return dout.copy()


register(
    Task(
        name="a4.dropout_forward",
        reference=ref_dropout_forward,
        cases=_dropout_cases,
        run=_run_dropout_forward,
        derive=_derive_dropout,
        rtol=1e-10,
        atol=1e-12,
        description="inverted dropout forward, p = drop probability, train and test mode",
        mistakes=(
            Mistake(
                "in train mode the kept units are not scaled by 1/(1-p): did you forget to "
                "rescale? Without it the expected output is (1-p)× the input.",
                _dropout_no_rescale,
            ),
            Mistake(
                "it looks like p was used as the probability of *keeping* a unit; here (as "
                "in PyTorch) p is the probability of dropping one.",
                _dropout_keep_probability,
            ),
            Mistake(
                "test-mode output is scaled: with inverted dropout the scaling already "
                "happened during training, so test mode must return x unchanged.",
                _dropout_scale_at_test,
            ),
            Mistake(
                "units are dropped in test mode: test mode must return x unchanged.",
                _dropout_drop_at_test,
            ),
            Mistake(
                "the same rng seed gave two different masks: draw the mask from the rng "
                "argument (rng.random(x.shape)), not from np.random's global state.",
                _dropout_global_random_state,
            ),
            Mistake(
                "matches ONE mask per feature shared by the whole batch (a mask of shape "
                "(D,)): draw an independent mask entry for every unit, rng.random(x.shape).",
                _dropout_mask_per_feature,
            ),
            Mistake(
                "the kept units are scaled by 1/p: inverted dropout divides by the probability "
                "of KEEPING a unit, 1 - p.",
                _dropout_mask_rule(lambda u, p: u >= p, lambda p: 1.0 / p),
            ),
            Mistake(
                "units are kept with probability p (mask = u < p) but scaled by 1/(1-p): p is "
                "the probability of dropping, keep where u >= p.",
                _dropout_mask_rule(lambda u, p: u < p, lambda p: 1.0 / (1.0 - p)),
            ),
            Mistake(
                "the kept units are MULTIPLIED by 1 - p: inverted dropout divides them by "
                "1 - p, so that the expected output equals the input.",
                _dropout_mask_rule(lambda u, p: u >= p, lambda p: 1.0 - p),
            ),
        ),
        library_functions=(
            "coursekit.dropout.dropout_forward",
            "coursekit.dropout.vanilla_dropout_forward",
        ),
    )
)

register(
    Task(
        name="a4.dropout_backward",
        reference=ref_dropout_backward,
        cases=_dropout_backward_cases,
        run=_run_dropout_backward,
        rtol=1e-10,
        atol=1e-12,
        description="inverted dropout backward from the forward cache",
        mistakes=(
            Mistake(
                "the gradient misses the 1/(1-p) factor: the forward pass multiplied the kept "
                "units by it, so the backward pass must too.",
                _dropout_backward_no_rescale,
            ),
            Mistake(
                "the gradient passes through unchanged: in train mode the dropped units "
                "received no input, so their gradient is 0.",
                _dropout_backward_pass_through,
            ),
            Mistake(
                "the gradient is scaled by 1/(1-p) twice: the stored mask already holds the "
                "factor, so dx = dout * mask.",
                _dropout_backward_twice,
            ),
            Mistake(
                "the gradient is dout * mask * (1 - p): the stored mask already holds the "
                "factor 1/(1-p), so dx = dout * mask.",
                _dropout_backward_times_keep,
            ),
        ),
        library_functions=(
            "coursekit.dropout.dropout_backward",
            "coursekit.dropout.vanilla_dropout_backward",
        ),
    )
)


# -- BatchNorm forward --------------------------------------------------------------------
def _features(rng, n, d, *, scale=1.0, shift=0.0):
    x = shift + scale * rng.standard_normal((n, d))
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.standard_normal(d)
    return x, gamma, beta


def _running(rng, d):
    return rng.standard_normal(d), rng.uniform(0.5, 2.0, d)


def _bn_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, d, scale, shift, kwargs in [
        ("train mode, batch of 2", 2, 3, 1.0, 0.0, {}),
        ("train mode, 16 x 5", 16, 5, 2.0, 1.0, {}),
        ("train mode, large values", 40, 6, 1e3, 5e4, {}),
        ("train mode, momentum 0.3 and eps 1e-3", 10, 4, 1.0, 0.0, {"momentum": 0.3, "eps": 1e-3}),
        ("test mode, 8 x 4", 8, 4, 1.5, -2.0, {}),
        ("test mode, batch of 1", 1, 6, 1.0, 0.0, {}),
    ]:
        x, gamma, beta = _features(rng, n, d, scale=scale, shift=shift)
        rm, rv = _running(rng, d)
        mode = "train" if label.startswith("train") else "test"
        cases.append(Case(label, (x, gamma, beta, rm, rv), {"mode": mode, **kwargs}))
    return cases


def _run_bn_forward(fn, case: Case):
    """Output, the running averages after the call (they are updated in place), and whether
    ``x`` came out unchanged (a batch normalized in place is the caller's data lost)."""
    x, gamma, beta, rm, rv = case.args
    x_before = x.copy()
    out, _ = fn(x, gamma, beta, rm, rv, **case.kwargs)
    return {
        "out": out,
        "running_mean": rm,
        "running_var": rv,
        "x unchanged": float(np.array_equal(x, x_before)),
    }


def _bn_forward_with_running(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5, update):
    """The reference forward with another running-average rule ``update(rm, rv, x, m)``."""
    old_rm, old_rv = rm.copy(), rv.copy()
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    if mode == "train":
        rm[...], rv[...] = update(old_rm, old_rv, x, momentum)
    return out, cache


def _bn_biased_running_var(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    def update(rm0, rv0, x, m):
        return (1 - m) * rm0 + m * x.mean(axis=0), (1 - m) * rv0 + m * x.var(axis=0)

    return _bn_forward_with_running(
        x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps, update=update
    )


def _bn_old_weight_momentum(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    def update(rm0, rv0, x, m):
        return m * rm0 + (1 - m) * x.mean(axis=0), m * rv0 + (1 - m) * x.var(axis=0, ddof=1)

    return _bn_forward_with_running(
        x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps, update=update
    )


def _bn_running_not_updated(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    return batchnorm_forward(
        x, gamma, beta, rm.copy(), rv.copy(), mode=mode, momentum=momentum, eps=eps
    )


def _bn_unbiased_normalization(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    if mode == "train":
        mean, var = x.mean(axis=0), x.var(axis=0, ddof=1)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = (x - mean) * inv_std
        return gamma * xhat + beta, cache
    return out, cache


def _bn_batch_stats_at_test(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    if mode == "test" and x.shape[0] > 1:
        return batchnorm_forward(
            x, gamma, beta, rm.copy(), rv.copy(), mode="train", momentum=momentum, eps=eps
        )
    return batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)


def _bn_unbiased_everywhere(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    if mode != "train":
        return batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    n = x.shape[0]
    mean, var = x.mean(axis=0), x.var(axis=0, ddof=1)
    rm *= 1 - momentum
    rm += momentum * mean
    rv *= 1 - momentum
    rv += momentum * var * n / (n - 1)
    xhat = (x - mean) / np.sqrt(var + eps)
    return gamma * xhat + beta, None


def _bn_mode_ignored(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    return batchnorm_forward(x, gamma, beta, rm, rv, mode="train", momentum=momentum, eps=eps)


def _bn_batch_stats_unless_single(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    mode = "train" if x.shape[0] > 1 else mode
    return batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)


def _bn_running_mean_replaced(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    def update(rm0, rv0, x, m):
        n = x.shape[0]
        return x.mean(axis=0), (1 - m) * rv0 + m * x.var(axis=0) * n / (n - 1)

    return _bn_forward_with_running(
        x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps, update=update
    )


def _bn_without_affine(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    d = x.shape[1]
    return batchnorm_forward(
        x, np.ones(d), np.zeros(d), rm, rv, mode=mode, momentum=momentum, eps=eps
    )


def _bn_fixed(**fixed):
    def forward(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
        kwargs = {"momentum": momentum, "eps": eps, **fixed}
        return batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, **kwargs)

    return forward


def _bn_std_as_variance(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    if mode != "train":
        return out, cache
    xhat = (x - x.mean(axis=0)) / np.sqrt(x.std(axis=0) + eps)
    return gamma * xhat + beta, cache


def _bn_eps_after_inverse(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    mean, var = (x.mean(axis=0), x.var(axis=0)) if mode == "train" else (rm, rv)
    return gamma * (x - mean) * (1.0 / np.sqrt(var) + eps) + beta, cache


def _bn_minus_beta(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    return batchnorm_forward(x, gamma, -beta, rm, rv, mode=mode, momentum=momentum, eps=eps)


def _bn_running_stats_in_train(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    if mode != "train":
        return batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    old_rm, old_rv = rm.copy(), rv.copy()
    batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    out, cache = batchnorm_forward(
        x, gamma, beta, old_rm, old_rv, mode="test", momentum=momentum, eps=eps
    )
    return out, cache


def _bn_eps_outside_sqrt(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    var = x.var(axis=0) if mode == "train" else rv
    mean = x.mean(axis=0) if mode == "train" else rm
    inv_std = 1.0 / (np.sqrt(var) + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, cache


def _bn_feature_axis(x, gamma, beta, rm, rv, *, mode, momentum=0.1, eps=1e-5):
    """Statistics per sample (axis=1), as LayerNorm would take them."""
    out, cache = batchnorm_forward(x, gamma, beta, rm, rv, mode=mode, momentum=momentum, eps=eps)
    if mode == "train":
        mean = x.mean(axis=1, keepdims=True)
        inv_std = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + eps)
        xhat = (x - mean) * inv_std
        return gamma * xhat + beta, cache
    return out, cache


register(
    Task(
        name="a4.batchnorm_forward",
        reference=batchnorm_forward,
        cases=_bn_forward_cases,
        run=_run_bn_forward,
        rtol=1e-9,
        atol=1e-10,
        description="BatchNorm forward with PyTorch running averages",
        mistakes=(
            Mistake(
                "running_var matches an average of the *biased* batch variance: PyTorch "
                "(and this assignment) averages the unbiased one, var * N / (N - 1), while "
                "normalizing with the biased one.",
                _bn_biased_running_var,
            ),
            Mistake(
                "the running averages weight the old value by `momentum`: here momentum "
                "weights the *new* batch, running = (1 - momentum) * running + momentum * batch.",
                _bn_old_weight_momentum,
            ),
            Mistake(
                "running_mean and running_var did not change: update the arrays that were "
                "passed in, in place (running_mean[:] = ... or *= and +=), instead of "
                "rebinding the local name.",
                _bn_running_not_updated,
            ),
            Mistake(
                "the batch was normalized with the unbiased variance (ddof=1): normalize "
                "with the biased one (divide by N) and use the unbiased one only for "
                "running_var.",
                _bn_unbiased_normalization,
            ),
            Mistake(
                "test mode used the statistics of the test batch: it must use the running "
                "averages (and leave them unchanged).",
                _bn_batch_stats_at_test,
            ),
            Mistake(
                "eps was added outside the square root: use 1 / sqrt(var + eps).",
                _bn_eps_outside_sqrt,
            ),
            Mistake(
                "the statistics were taken over each sample's features (axis=1): BatchNorm "
                "takes them per feature, over the batch (axis=0).",
                _bn_feature_axis,
            ),
            Mistake(
                "the batch was normalized with the unbiased variance (ddof=1), and running_var "
                "then corrected it a second time: normalize with the biased variance (divide "
                "by N) and average var * N / (N - 1) into running_var.",
                _bn_unbiased_everywhere,
            ),
            Mistake(
                "matches ignoring mode: test mode must normalize with the running averages and "
                "leave them unchanged, not use the batch's statistics and update them.",
                _bn_mode_ignored,
            ),
            Mistake(
                "test mode used the statistics of the test batch (and updated the running "
                "averages): with mode='test' use running_mean and running_var, whatever N is.",
                _bn_batch_stats_unless_single,
            ),
            Mistake(
                "running_mean is the last batch's mean: average it, running = (1 - momentum) * "
                "running + momentum * batch_mean.",
                _bn_running_mean_replaced,
            ),
            Mistake(
                "the output is xhat: apply the learnable scale and shift, gamma * xhat + beta.",
                _bn_without_affine,
            ),
            Mistake(
                "matches eps = 1e-5 whatever eps is passed: use the argument eps.",
                _bn_fixed(eps=1e-5),
            ),
            Mistake(
                "matches momentum = 0.1 whatever momentum is passed: use the argument momentum.",
                _bn_fixed(momentum=0.1),
            ),
            Mistake(
                "train mode normalized with the running averages: in train mode use the "
                "batch's own mean and (biased) variance, and update the running averages.",
                _bn_running_stats_in_train,
            ),
            Mistake(
                "the batch was normalized by sqrt(std + eps): the variance goes under the "
                "root, 1 / sqrt(var + eps).",
                _bn_std_as_variance,
            ),
            Mistake(
                "matches gamma * xhat - beta: the shift is added, gamma * xhat + beta.",
                _bn_minus_beta,
            ),
            Mistake(
                "matches 1 / sqrt(var) + eps: eps goes inside the root, 1 / sqrt(var + eps).",
                _bn_eps_after_inverse,
            ),
        ),
        library_functions=("coursekit.normalization.batchnorm_forward",),
    )
)


# -- BatchNorm backward -------------------------------------------------------------------
def _bn_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, d, scale, shift, mode in [
        ("train mode, batch of 2", 2, 3, 1.0, 0.0, "train"),
        ("train mode, 8 x 4", 8, 4, 1.0, 0.5, "train"),
        ("train mode, large values", 50, 7, 1e3, 1e4, "train"),
        ("test mode, 6 x 3", 6, 3, 2.0, 1.0, "test"),
        ("test mode, batch of 1", 1, 5, 1.0, 0.0, "test"),
    ]:
        x, gamma, beta = _features(rng, n, d, scale=scale, shift=shift)
        rm, rv = _running(rng, d)
        dout = rng.standard_normal((n, d))
        cases.append(Case(label, (dout, x, gamma, beta, rm, rv), {"mode": mode}))
    return cases


def _student_bn_cache(x, gamma, running_mean, running_var, mode, eps=1e-5):
    """The cache layout the notebook prescribes: ``xhat``, ``gamma``, ``inv_std``, ``mode``."""
    if mode == "train":
        mean, var = x.mean(axis=0), x.var(axis=0)
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    return {"xhat": (x - mean) * inv_std, "gamma": gamma, "inv_std": inv_std, "mode": mode}


def _run_bn_backward(fn, case: Case):
    dout, x, gamma, beta, rm, rv = case.args
    return fn(dout, _student_bn_cache(x, gamma, rm, rv, case.kwargs["mode"]))


def _library_bn_cache(cache, eps=1e-5):
    """Rebuild the library's cache from the students' one by re-running its forward pass.

    ``xhat / inv_std`` is the centred input; normalizing it again (train mode: its own batch
    statistics; test mode: mean 0 and the variance recovered from ``inv_std``) reproduces
    ``xhat`` and ``inv_std`` up to rounding, whatever the library keeps in its cache.
    """
    centered = cache["xhat"] / cache["inv_std"]
    d = centered.shape[1]
    var = 1.0 / cache["inv_std"] ** 2 - eps
    _, lib = batchnorm_forward(
        centered, cache["gamma"], np.zeros(d), np.zeros(d), var, mode=cache["mode"], eps=eps
    )
    return lib


def _ref_bn_backward_graph(dout, cache):
    return batchnorm_backward_graph(dout, _library_bn_cache(cache))


def _ref_bn_backward(dout, cache):
    return batchnorm_backward(dout, _library_bn_cache(cache))


def _bn_backward_stats_constant(dout, cache):
    dx, dgamma, dbeta = _ref_bn_backward(dout, cache)
    return dout * cache["gamma"] * cache["inv_std"], dgamma, dbeta


def _bn_backward_no_variance_path(dout, cache):
    _, dgamma, dbeta = _ref_bn_backward(dout, cache)
    if cache["mode"] == "test":
        return dout * cache["gamma"] * cache["inv_std"], dgamma, dbeta
    dxhat = dout * cache["gamma"]
    dx = (dxhat - dxhat.mean(axis=0)) * cache["inv_std"]
    return dx, dgamma, dbeta


def _bn_backward_dgamma_without_xhat(dout, cache):
    dx, _, dbeta = _ref_bn_backward(dout, cache)
    return dx, dout.sum(axis=0), dbeta


def _bn_backward_without_gamma(dout, cache):
    dx, dgamma, dbeta = _ref_bn_backward(dout, {**cache, "gamma": np.ones_like(cache["gamma"])})
    return dx, dgamma, dbeta


def _bn_backward_mean_over_batch(dout, cache):
    dx, dgamma, dbeta = _ref_bn_backward(dout, cache)
    n = dout.shape[0]
    return dx, dgamma / n, dbeta / n


def _bn_backward_no_mean_path(dout, cache):
    _, dgamma, dbeta = _ref_bn_backward(dout, cache)
    dxhat = dout * cache["gamma"]
    if cache["mode"] == "test":
        return dxhat * cache["inv_std"], dgamma, dbeta
    xhat, inv_std = cache["xhat"], cache["inv_std"]
    return (dxhat - xhat * (dxhat * xhat).mean(axis=0)) * inv_std, dgamma, dbeta


def _bn_backward_alt_without_n(dout, cache):
    _, dgamma, dbeta = _ref_bn_backward(dout, cache)
    if cache["mode"] == "test":
        return dout * cache["gamma"] * cache["inv_std"], dgamma, dbeta
    n = dout.shape[0]
    xhat, gamma, inv_std = cache["xhat"], cache["gamma"], cache["inv_std"]
    return (gamma * inv_std / n) * (dout - dbeta - xhat * dgamma), dgamma, dbeta


def _bn_backward_dgamma_not_summed(dout, cache):
    dx, _, dbeta = _ref_bn_backward(dout, cache)
    return dx, dout * cache["xhat"], dbeta


def _bn_backward_alt_mean_dbeta(dout, cache):
    _, dgamma, _ = _ref_bn_backward(dout, cache)
    dbeta = dout.mean(axis=0)
    if cache["mode"] == "test":
        return dout * cache["gamma"] * cache["inv_std"], dgamma, dbeta
    n = dout.shape[0]
    xhat, gamma, inv_std = cache["xhat"], cache["gamma"], cache["inv_std"]
    return (gamma * inv_std / n) * (n * dout - dbeta - xhat * dgamma), dgamma, dbeta


def _bn_backward_swapped(dout, cache):
    dx, dgamma, dbeta = _ref_bn_backward(dout, cache)
    return dx, dbeta, dgamma


def _bn_backward_alt_times_n(dout, cache):
    dx, dgamma, dbeta = _ref_bn_backward(dout, cache)
    return (dx * dout.shape[0] if cache["mode"] == "train" else dx), dgamma, dbeta


_BN_BACKWARD_MISTAKES = (
    Mistake(
        "dx is N times too large: the closed form has a factor 1/N in front, "
        "gamma * inv_std / N * (N * dout - sum(dout) - xhat * sum(dout * xhat)).",
        _bn_backward_alt_times_n,
    ),
    Mistake(
        "dgamma and dbeta are swapped: return (dx, dgamma, dbeta) in the order of the "
        "forward pass's inputs (x, gamma, beta).",
        _bn_backward_swapped,
    ),
    Mistake(
        "dx includes the path through the variance but not the one through the mean: "
        "every x_i also changes the batch mean, subtract the mean of dxhat.",
        _bn_backward_no_mean_path,
    ),
    Mistake(
        "matches the closed form without the factor N on dout: "
        "dx = gamma * inv_std / N * (N * dout - sum(dout) - xhat * sum(dout * xhat)).",
        _bn_backward_alt_without_n,
    ),
    Mistake(
        "dgamma has shape (N, D): sum dout * xhat over the batch (axis=0).",
        _bn_backward_dgamma_not_summed,
    ),
    Mistake(
        "dbeta is the MEAN of dout over the batch: it is the sum, and the closed form for dx "
        "needs that sum too.",
        _bn_backward_alt_mean_dbeta,
    ),
    Mistake(
        "dx treats the batch mean and variance as constants (dout * gamma / std): in train "
        "mode every x_i also changes the mean and the variance, and those paths add to dx.",
        _bn_backward_stats_constant,
    ),
    Mistake(
        "dx includes the path through the mean but not the one through the variance.",
        _bn_backward_no_variance_path,
    ),
    Mistake(
        "dgamma is the column sum of dout: it must be weighted by xhat, sum(dout * xhat).",
        _bn_backward_dgamma_without_xhat,
    ),
    Mistake("dx is missing the factor gamma.", _bn_backward_without_gamma),
    Mistake(
        "dgamma and dbeta are averaged over the batch: they are sums (each sample adds to them).",
        _bn_backward_mean_over_batch,
    ),
)

for _name, _reference, _what in [
    ("a4.batchnorm_backward", _ref_bn_backward_graph, "computation graph"),
    ("a4.batchnorm_backward_alt", _ref_bn_backward, "simplified closed form"),
]:
    register(
        Task(
            name=_name,
            reference=_reference,
            cases=_bn_backward_cases,
            run=_run_bn_backward,
            # The graph, the closed form and the usual one-line dx agree to about 1e-13
            # absolute (relative 1e-9 only on entries near 0) over many seeds: rtol 1e-8 and
            # atol 1e-11 accept them all and fail a float32 backward (6e-8 relative).
            rtol=1e-8,
            atol=1e-11,
            description=f"BatchNorm backward ({_what})",
            mistakes=_BN_BACKWARD_MISTAKES,
            library_functions=(
                "coursekit.normalization.batchnorm_backward",
                "coursekit.normalization.batchnorm_backward_graph",
            ),
        )
    )


# -- LayerNorm ----------------------------------------------------------------------------
def _ln_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, d, scale, shift, eps in [
        ("batch of 1", 1, 6, 1.0, 0.0, 1e-5),
        ("4 x 5", 4, 5, 2.0, 1.0, 1e-5),
        ("large values", 12, 30, 1e3, -4e4, 1e-5),
        ("eps 1e-2", 5, 3, 0.3, 0.0, 1e-2),
        ("one feature", 4, 1, 1.0, 0.0, 1e-5),
    ]:
        x, gamma, beta = _features(rng, n, d, scale=scale, shift=shift)
        # Give every row its own offset and spread, so per-row and per-column statistics differ.
        x = x * rng.uniform(0.5, 3.0, (n, 1)) + scale * rng.standard_normal((n, 1))
        dout = rng.standard_normal((n, d))
        cases.append(Case(label, (x, gamma, beta), {"eps": eps, "dout": dout}))
    return cases


def _run_ln_forward(fn, case: Case):
    x, gamma, beta = case.args
    x_before = x.copy()
    out, _ = fn(x, gamma, beta, eps=case.kwargs["eps"])
    return {"out": out, "x unchanged": float(np.array_equal(x, x_before))}


def _run_ln_backward(fn, case: Case):
    """The student's backward on a cache in the prescribed layout (``inv_std`` of shape (N, 1))."""
    x, gamma, beta = case.args
    inv_std = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + case.kwargs["eps"])
    xhat = (x - x.mean(axis=1, keepdims=True)) * inv_std
    return fn(case.kwargs["dout"], {"xhat": xhat, "gamma": gamma, "inv_std": inv_std})


def _ref_ln_backward(dout, cache):
    """The library's backward on its own cache, rebuilt by normalizing the centred rows again."""
    centered = cache["xhat"] / cache["inv_std"]
    eps = float(np.mean(1.0 / cache["inv_std"] ** 2 - centered.var(axis=1, keepdims=True)))
    _, lib = layernorm_forward(centered, cache["gamma"], np.zeros_like(cache["gamma"]), eps=eps)
    return layernorm_backward(dout, lib)


def _ln_over_batch(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, {"xhat": xhat, "gamma": gamma, "inv_std": inv_std}


def _ln_without_affine(x, gamma, beta, eps=1e-5):
    return layernorm_forward(x, np.ones_like(gamma), np.zeros_like(beta), eps=eps)


def _ln_backward_batchnorm_axes(dout, cache):
    xhat, gamma, inv_std = cache["xhat"], cache["gamma"], cache["inv_std"]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) * inv_std
    return dx, dgamma, dbeta


def _ln_unbiased(x, gamma, beta, eps=1e-5):
    xhat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, ddof=1, keepdims=True) + eps)
    return gamma * xhat + beta, None


def _ln_mixed_axes(x, gamma, beta, eps=1e-5):
    xhat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=0, keepdims=True) + eps)
    return gamma * xhat + beta, None


def _ln_global_statistics(x, gamma, beta, eps=1e-5):
    xhat = (x - x.mean()) / np.sqrt(x.var() + eps)
    return gamma * xhat + beta, None


def _ln_backward_one_sum_over_batch(dout, cache):
    xhat, gamma, inv_std = cache["xhat"], cache["gamma"], cache["inv_std"]
    _, dgamma, dbeta = _ref_ln_backward(dout, cache)
    dxhat = dout * gamma
    dx = inv_std * (
        dxhat
        - dxhat.mean(axis=0, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)
    )
    return dx, dgamma, dbeta


def _ln_backward_dgamma_per_sample(dout, cache):
    dx, _, dbeta = _ref_ln_backward(dout, cache)
    return dx, (dout * cache["xhat"]).sum(axis=1), dbeta


def _ln_backward_stats_constant(dout, cache):
    _, dgamma, dbeta = _ref_ln_backward(dout, cache)
    return dout * cache["gamma"] * cache["inv_std"], dgamma, dbeta


register(
    Task(
        name="a4.layernorm_forward",
        reference=layernorm_forward,
        cases=_ln_cases,
        run=_run_ln_forward,
        rtol=1e-9,
        atol=1e-10,
        description="LayerNorm forward",
        mistakes=(
            Mistake(
                "the statistics were taken over the batch (axis=0), as in BatchNorm: "
                "LayerNorm normalizes each sample over its own features (axis=1).",
                _ln_over_batch,
            ),
            Mistake(
                "the output is xhat: apply the learnable scale and shift, gamma * xhat + beta.",
                _ln_without_affine,
            ),
            Mistake(
                "each row was normalized with the unbiased variance (ddof=1): LayerNorm divides "
                "by D, x.var(axis=1, keepdims=True).",
                _ln_unbiased,
            ),
            Mistake(
                "matches eps = 1e-5 whatever eps is passed: use the argument eps.",
                lambda x, gamma, beta, eps=1e-5: layernorm_forward(x, gamma, beta, eps=1e-5),
            ),
            Mistake(
                "matches ONE mean and variance for the whole batch: LayerNorm normalizes each "
                "sample (row) over its own features (axis=1, keepdims=True).",
                _ln_global_statistics,
            ),
            Mistake(
                "the mean was taken per row but the variance per column (axis=0): take both "
                "over each row's features, axis=1 with keepdims=True.",
                _ln_mixed_axes,
            ),
            Mistake(
                "matches multiplying by inv_std squared (dividing by the variance): xhat = "
                "(x - mean) / sqrt(var + eps).",
                lambda x, gamma, beta, eps=1e-5: (
                    gamma
                    * (x - x.mean(axis=1, keepdims=True))
                    / (x.var(axis=1, keepdims=True) + eps)
                    + beta,
                    None,
                ),
            ),
        ),
        library_functions=("coursekit.normalization.layernorm_forward",),
    )
)

register(
    Task(
        name="a4.layernorm_backward",
        reference=_ref_ln_backward,
        cases=_ln_cases,
        run=_run_ln_backward,
        # As for BatchNorm backward: correct spellings agree to about 1e-13 absolute.
        rtol=1e-8,
        atol=1e-11,
        description="LayerNorm backward",
        mistakes=(
            Mistake(
                "the sums in dx run over the batch (axis=0) as in BatchNorm: in LayerNorm "
                "each row's statistics depend on that row's features, so sum over axis=1.",
                _ln_backward_batchnorm_axes,
            ),
            Mistake(
                "dx treats each row's mean and variance as constants: they depend on x too.",
                _ln_backward_stats_constant,
            ),
            Mistake(
                "one of the means in dx runs over the batch (axis=0): every mean in "
                "LayerNorm's backward is over a row's features (axis=1, keepdims=True).",
                _ln_backward_one_sum_over_batch,
            ),
            Mistake(
                "dgamma has one value per SAMPLE (summed over axis=1): gamma has one entry per "
                "feature, so sum dout * xhat over the batch (axis=0).",
                _ln_backward_dgamma_per_sample,
            ),
            Mistake(
                "dbeta (or dgamma) has one value per SAMPLE: sum over the batch (axis=0), "
                "beta and gamma have one entry per feature.",
                lambda dout, cache: (
                    *_ref_ln_backward(dout, cache)[:2],
                    dout.sum(axis=1),
                ),
            ),
            Mistake(
                "dx is missing the factor gamma: the gradient reaching xhat is dout * gamma.",
                lambda dout, cache: (
                    _ref_ln_backward(dout, {**cache, "gamma": np.ones_like(cache["gamma"])})[:1]
                    + _ref_ln_backward(dout, cache)[1:]
                ),
            ),
        ),
        library_functions=(
            "coursekit.normalization.layernorm_forward",
            "coursekit.normalization.layernorm_backward",
        ),
    )
)
