"""Different but correct A5 answers; each must get full marks."""

from coursekit.grading.submissions import Mutation

ALTERNATIVES = [
    Mutation(
        name="he_init_with_rng_normal",
        cell="init",
        old="return np.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))",
        new="return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))",
        tests=(),
        description="rng.normal(loc, scale, size) instead of scaling standard normals",
    ),
    Mutation(
        name="max_norm_with_a_loop",
        cell="max_norm",
        old=(
            "norms = np.linalg.norm(W, axis=0, keepdims=True)\n"
            "    W *= np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)"
        ),
        new=(
            "for j in range(W.shape[1]):\n"
            "        norm = np.sqrt(np.sum(W[:, j] ** 2))\n"
            "        if norm > max_norm:\n"
            "            W[:, j] *= max_norm / norm"
        ),
        tests=(),
        description="one column at a time, without the 1e-7 guard",
    ),
    Mutation(
        name="clip_norm_by_concatenation",
        cell="clipping",
        old="total = np.sqrt(sum(np.sum(g * g) for g in grads.values()))",
        new="total = np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()]))",
        tests=(),
        description="the global norm of all gradients concatenated into one vector",
    ),
    Mutation(
        name="l1_subgradient_with_where",
        cell="penalties",
        old="return strength * np.sum(np.abs(W)), strength * np.sign(W)",
        new=(
            "grad = np.where(W > 0, strength, np.where(W < 0, -strength, 0.0))\n"
            "    return strength * np.abs(W).sum(), grad"
        ),
        tests=(),
        description="the subgradient spelled out case by case",
    ),
]

# Written for issue 15: more valid formulations that stricter hidden cases must keep accepting.
ALTERNATIVES += [
    Mutation(
        name="xavier_with_rng_normal",
        cell="init",
        old="return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))",
        new="return rng.normal(scale=np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))",
        tests=(),
        description="rng.normal with a scale",
    ),
    Mutation(
        name="layer_statistics_written_out",
        cell="layer_statistics",
        old="means.append(h.mean())\n        stds.append(h.std())",
        new="m = np.mean(h)\n        means.append(m)\n        stds.append(np.sqrt(np.mean((h - m) ** 2)))",
        tests=(),
        description="the mean and the population std written out",
    ),
    Mutation(
        name="l2_penalty_with_vdot",
        cell="penalties",
        old="0.5 * strength * np.sum(W * W)",
        new="0.5 * strength * np.vdot(W, W)",
        tests=(),
        description="the sum of squares as a dot product of the flattened weights",
    ),
    Mutation(
        name="clip_value_with_slice_assignment",
        cell="clipping",
        old="np.clip(g, -clip_value, clip_value, out=g)",
        new="g[...] = np.clip(g, -clip_value, clip_value)",
        tests=(),
        description="writes the clipped values back with g[...] =",
    ),
    Mutation(
        name="early_stopping_with_deepcopy",
        cell="early_stopping",
        old="self.best_params = {k: v.copy() for k, v in params.items()}",
        new="import copy\n\n            self.best_params = copy.deepcopy(params)",
        tests=(),
        description="copy.deepcopy of the parameter dict",
    ),
]
