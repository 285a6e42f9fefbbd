"""Realistic mistakes in A4 (dropout, BatchNorm, LayerNorm), for mutation testing."""

from coursekit.grading.submissions import Mutation

MISTAKES = [
    Mutation(
        name="dropout_no_rescale",
        cell="dropout",
        old="mask = keep / (1.0 - p)",
        new="mask = keep * 1.0",
        tests=("test_dropout_forward",),
        description="vanilla dropout in train mode: kept units are not scaled by 1/(1-p)",
    ),
    Mutation(
        name="dropout_keep_probability",
        cell="dropout",
        old="keep = rng.random(x.shape) >= p\n    mask = keep / (1.0 - p)",
        new="keep = rng.random(x.shape) < p\n    mask = keep / p",
        tests=("test_dropout_forward",),
        description="p used as the probability of keeping a unit (the lecture's convention)",
    ),
    Mutation(
        name="dropout_scaled_at_test",
        cell="dropout",
        old='return x.copy(), {"mask": None, "p": p, "mode": mode}',
        new='return x * (1.0 - p), {"mask": None, "p": p, "mode": mode}',
        tests=("test_dropout_forward",),
        description="vanilla-dropout test-time scaling on top of inverted dropout",
    ),
    Mutation(
        name="dropout_backward_unscaled_mask",
        cell="dropout",
        old='dx = dout * cache["mask"]',
        new='dx = dout * (cache["mask"] != 0)',
        tests=("test_dropout_backward",),
        description="backward uses the 0/1 mask, forgetting the 1/(1-p) factor",
    ),
    Mutation(
        name="bn_running_var_biased",
        cell="batchnorm_forward",
        old="running_var += momentum * var * n / (n - 1)",
        new="running_var += momentum * var",
        tests=("test_batchnorm_forward",),
        description="running variance averages the biased batch variance",
    ),
    Mutation(
        name="bn_normalize_unbiased",
        cell="batchnorm_forward",
        old="var = x.var(axis=0)",
        new="var = x.var(axis=0, ddof=1)",
        tests=("test_batchnorm_forward",),
        description="normalizes with the unbiased variance (and so mixes up both variances)",
    ),
    Mutation(
        name="bn_momentum_on_old_value",
        cell="batchnorm_forward",
        old=(
            "running_mean *= 1 - momentum\n"
            "        running_mean += momentum * mean\n"
            "        running_var *= 1 - momentum\n"
            "        running_var += momentum * var * n / (n - 1)"
        ),
        new=(
            "running_mean *= momentum\n"
            "        running_mean += (1 - momentum) * mean\n"
            "        running_var *= momentum\n"
            "        running_var += (1 - momentum) * var * n / (n - 1)"
        ),
        tests=("test_batchnorm_forward",),
        description="the rho * old + (1 - rho) * new convention with rho = momentum = 0.1",
    ),
    Mutation(
        name="bn_running_stats_rebound",
        cell="batchnorm_forward",
        old=(
            "running_mean *= 1 - momentum\n"
            "        running_mean += momentum * mean\n"
            "        running_var *= 1 - momentum\n"
            "        running_var += momentum * var * n / (n - 1)"
        ),
        new=(
            "running_mean = (1 - momentum) * running_mean + momentum * mean\n"
            "        running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)"
        ),
        tests=("test_batchnorm_forward",),
        description="running averages rebound to new arrays: the caller's arrays never change",
    ),
    Mutation(
        name="bn_eps_outside_sqrt",
        cell="batchnorm_forward",
        old="inv_std = 1.0 / np.sqrt(var + eps)",
        new="inv_std = 1.0 / (np.sqrt(var) + eps)",
        tests=("test_batchnorm_forward",),
        description="eps added to the standard deviation instead of the variance",
    ),
    Mutation(
        name="bn_test_mode_batch_stats",
        cell="batchnorm_forward",
        old='if mode == "train":',
        new="if x.shape[0] > 1:",
        tests=("test_batchnorm_forward",),
        description="uses the batch statistics whenever it can, also at test time",
    ),
    Mutation(
        name="bn_backward_graph_no_variance_path",
        cell="batchnorm_backward",
        old="dcentered += 2.0 * centered * dvar / n",
        new="pass",
        tests=("test_batchnorm_backward",),
        description="the graph backward forgets the path through the variance",
    ),
    Mutation(
        name="bn_backward_graph_no_mean_path",
        cell="batchnorm_backward",
        old="dx = dcentered + dmean / n",
        new="dx = dcentered",
        tests=("test_batchnorm_backward",),
        description="the graph backward forgets the path through the mean",
    ),
    Mutation(
        name="bn_backward_alt_dgamma_without_xhat",
        cell="batchnorm_backward_alt",
        old="dgamma = (dout * xhat).sum(axis=0)",
        new="dgamma = dout.sum(axis=0)",
        tests=("test_batchnorm_backward_alt",),
        description="dgamma summed without the xhat weight",
    ),
    Mutation(
        name="bn_backward_alt_missing_n",
        cell="batchnorm_backward_alt",
        old="(n * dout - dbeta - xhat * dgamma)",
        new="(dout - dbeta - xhat * dgamma)",
        tests=("test_batchnorm_backward_alt",),
        description="closed form with the factor N on dout dropped",
    ),
    Mutation(
        name="ln_statistics_over_batch",
        cell="layernorm",
        old=(
            "mean = x.mean(axis=1, keepdims=True)\n"
            "    inv_std = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + eps)"
        ),
        new=(
            "mean = x.mean(axis=0, keepdims=True)\n"
            "    inv_std = 1.0 / np.sqrt(x.var(axis=0, keepdims=True) + eps)"
        ),
        tests=("test_layernorm",),
        description="BatchNorm's axis copied into LayerNorm",
    ),
    Mutation(
        name="ln_backward_sums_over_batch",
        cell="layernorm",
        old="- dxhat.mean(axis=1, keepdims=True)",
        new="- dxhat.mean(axis=0, keepdims=True)",
        tests=("test_layernorm",),
        description="one of LayerNorm's backward sums runs over the batch axis",
    ),
]

# Written for issue 15: where randomness comes from, mask shapes, aliasing, running statistics
# at test time, missing sums and the variance's ddof.
MISTAKES += [
    Mutation(
        name="dropout_global_random_state",
        cell="dropout",
        old="keep = rng.random(x.shape) >= p",
        new="keep = np.random.random(x.shape) >= p",
        tests=("test_dropout_forward",),
        description="draws the mask from numpy's global random state, ignoring rng",
    ),
    Mutation(
        name="dropout_one_mask_per_feature",
        cell="dropout",
        old="keep = rng.random(x.shape) >= p",
        new="keep = rng.random(x.shape[1]) >= p",
        tests=("test_dropout_forward",),
        description="one mask row broadcast over the batch: a feature is dropped for everyone",
    ),
    # Not a mistake: the notebook asks for the identity at test time, and returning x itself
    # is what PyTorch's dropout does in eval mode (tests/alternatives/a4.py).
    Mutation(
        name="dropout_backward_scales_twice",
        cell="dropout",
        old='dx = dout * cache["mask"]',
        new='dx = dout * cache["mask"] / (1.0 - cache["p"])',
        tests=("test_dropout_backward",),
        description="divides by 1 - p again although the stored mask already holds the factor",
    ),
    Mutation(
        name="bn_running_stats_updated_in_test_mode",
        cell="batchnorm_forward",
        old='if mode == "train":\n        n = x.shape[0]\n        mean = x.mean(axis=0)\n'
        "        var = x.var(axis=0)\n",
        new="n = x.shape[0]\n    mean = x.mean(axis=0)\n    var = x.var(axis=0)\n    if True:\n",
        tests=("test_batchnorm_forward",),
        description="ignores mode: batch statistics and a running-average update on every call",
    ),
    Mutation(
        name="bn_running_mean_replaced",
        cell="batchnorm_forward",
        old="running_mean *= 1 - momentum\n        running_mean += momentum * mean",
        new="running_mean[:] = mean",
        tests=("test_batchnorm_forward",),
        description="the running mean is the last batch's mean, not an average",
    ),
    Mutation(
        name="bn_no_scale_and_shift",
        cell="batchnorm_forward",
        old="out = gamma * xhat + beta",
        new="out = xhat",
        tests=("test_batchnorm_forward",),
        description="forgets the learnable gamma and beta",
    ),
    Mutation(
        name="bn_backward_dgamma_not_summed",
        cell="batchnorm_backward",
        old="dgamma = (dout * xhat).sum(axis=0)",
        new="dgamma = dout * xhat",
        tests=("test_batchnorm_backward",),
        description="dgamma of shape (N, D): the sum over the batch is missing",
    ),
    Mutation(
        name="bn_backward_alt_dbeta_mean",
        cell="batchnorm_backward_alt",
        old="dbeta = dout.sum(axis=0)",
        new="dbeta = dout.mean(axis=0)",
        tests=("test_batchnorm_backward_alt",),
        description="averages dbeta over the batch (and reuses it in dx)",
    ),
    Mutation(
        name="ln_unbiased_variance",
        cell="layernorm",
        old="x.var(axis=1, keepdims=True)",
        new="x.var(axis=1, ddof=1, keepdims=True)",
        tests=("test_layernorm",),
        description="normalizes each row with the unbiased variance",
    ),
    Mutation(
        name="ln_mean_without_keepdims",
        cell="layernorm",
        old="mean = x.mean(axis=1, keepdims=True)",
        new="mean = x.mean(axis=1)",
        tests=("test_layernorm",),
        description="(N, D) - (N,) lines the row means up with the columns",
    ),
    Mutation(
        name="ln_backward_dgamma_over_features",
        cell="layernorm",
        old="dgamma = (dout * xhat).sum(axis=0)",
        new="dgamma = (dout * xhat).sum(axis=1)",
        tests=("test_layernorm",),
        description="copies the normalization axis into dgamma: one value per sample",
    ),
]

MISTAKES += [
    Mutation(
        name="bn_eps_ignored",
        cell="batchnorm_forward",
        old="inv_std = 1.0 / np.sqrt(var + eps)",
        new="inv_std = 1.0 / np.sqrt(var + 1e-5)",
        tests=("test_batchnorm_forward",),
        description="hard-codes eps = 1e-5 and ignores the argument",
    ),
]
