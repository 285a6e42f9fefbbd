"""Different but correct A4 answers; each must get full marks."""

from coursekit.grading.submissions import Mutation

ALTERNATIVES = [
    Mutation(
        name="dropout_mask_drawn_the_other_way",
        cell="dropout",
        old="keep = rng.random(x.shape) >= p",
        new="keep = rng.random(x.shape) < 1.0 - p",
        tests=(),
        description="another valid way to draw a Bernoulli(1 - p) keep mask",
    ),
    Mutation(
        name="dropout_mask_from_binomial",
        cell="dropout",
        old="keep = rng.random(x.shape) >= p",
        new="keep = rng.binomial(1, 1.0 - p, size=x.shape).astype(bool)",
        tests=(),
        description="the keep mask from a binomial draw",
    ),
    Mutation(
        name="bn_forward_assigns_into_running_stats",
        cell="batchnorm_forward",
        old=(
            "running_mean *= 1 - momentum\n"
            "        running_mean += momentum * mean\n"
            "        running_var *= 1 - momentum\n"
            "        running_var += momentum * var * n / (n - 1)"
        ),
        new=(
            "running_mean[:] = (1 - momentum) * running_mean + momentum * mean\n"
            "        running_var[:] = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)"
        ),
        tests=(),
        description="slice assignment and numpy's ddof=1 for the unbiased variance",
    ),
    Mutation(
        name="bn_graph_cell_answered_with_closed_form",
        cell="batchnorm_backward",
        old="std = 1.0 / inv_std",
        new=(
            "return (gamma * inv_std / n) * (n * dout - dbeta - xhat * dgamma), dgamma, dbeta\n"
            "    std = 1.0 / inv_std"
        ),
        tests=(),
        description="a correct gradient is a correct gradient, however it is derived",
    ),
    Mutation(
        name="bn_alt_via_dxhat_means",
        cell="batchnorm_backward_alt",
        old="dx = (gamma * inv_std / n) * (n * dout - dbeta - xhat * dgamma)",
        new=(
            "dxhat = dout * gamma\n"
            "    dx = inv_std * (dxhat - dxhat.mean(axis=0)"
            " - xhat * (dxhat * xhat).mean(axis=0))"
        ),
        tests=(),
        description="the closed form written with means of dL/dxhat",
    ),
    Mutation(
        name="ln_via_transpose",
        cell="layernorm",
        old=(
            "mean = x.mean(axis=1, keepdims=True)\n"
            "    inv_std = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + eps)\n"
            "    xhat = (x - mean) * inv_std"
        ),
        new=(
            "xt = x.T\n"
            "    inv_std = (1.0 / np.sqrt(xt.var(axis=0) + eps))[:, None]\n"
            "    xhat = ((xt - xt.mean(axis=0)) / np.sqrt(xt.var(axis=0) + eps)).T"
        ),
        tests=(),
        description="LayerNorm as BatchNorm statistics of the transposed input",
    ),
]

# Written for issue 15: more valid formulations that stricter hidden cases must keep accepting.
ALTERNATIVES += [
    Mutation(
        name="dropout_test_mode_returns_the_input",
        cell="dropout",
        old='return x.copy(), {"mask": None, "p": p, "mode": mode}',
        new='return x, {"mask": None, "p": p, "mode": mode}',
        tests=(),
        description="the identity at test time returns x itself, as PyTorch does in eval mode",
    ),
    Mutation(
        name="dropout_test_mode_multiplies_by_one",
        cell="dropout",
        old='return x.copy(), {"mask": None, "p": p, "mode": mode}',
        new='return x * 1.0, {"mask": None, "p": p, "mode": mode}',
        tests=(),
        description="a new array by multiplication instead of copy()",
    ),
    Mutation(
        name="bn_variance_as_mean_of_squares",
        cell="batchnorm_forward",
        old="var = x.var(axis=0)\n",
        new="var = ((x - mean) ** 2).mean(axis=0)\n",
        tests=(),
        description="the batch variance written out",
    ),
    Mutation(
        name="ln_backward_with_sums",
        cell="layernorm",
        old="dx = inv_std * (\n"
        "        dxhat\n"
        "        - dxhat.mean(axis=1, keepdims=True)\n"
        "        - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)\n"
        "    )",
        new="d = dout.shape[1]\n"
        "    dx = (inv_std / d) * (\n"
        "        d * dxhat - dxhat.sum(axis=1, keepdims=True)\n"
        "        - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)\n"
        "    )",
        tests=(),
        description="the closed form with sums and a factor 1/D",
    ),
]
