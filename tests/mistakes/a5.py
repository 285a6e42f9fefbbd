"""Realistic mistakes in A5 (initialization and regularization), for mutation testing."""

from coursekit.grading.submissions import Mutation

MISTAKES = [
    Mutation(
        name="random_init_uniform",
        cell="init",
        old="return std * rng.standard_normal((fan_in, fan_out))",
        new="return rng.uniform(-std, std, size=(fan_in, fan_out))",
        tests=("test_init_zeros_random",),
        description="a uniform draw on [-std, std], whose std is std / sqrt(3)",
    ),
    Mutation(
        name="he_fan_out",
        cell="init",
        old="return np.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))",
        new="return np.sqrt(2.0 / fan_out) * rng.standard_normal((fan_in, fan_out))",
        tests=("test_xavier_he",),
        description="He initialization with fan-out instead of fan-in",
    ),
    Mutation(
        name="he_without_factor_2",
        cell="init",
        old="return np.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))",
        new="return np.sqrt(1.0 / fan_in) * rng.standard_normal((fan_in, fan_out))",
        tests=("test_xavier_he",),
        description="He without the ReLU gain (LeCun initialization)",
    ),
    Mutation(
        name="xavier_fan_in_only",
        cell="init",
        old="return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))",
        new="return np.sqrt(1.0 / fan_in) * rng.standard_normal((fan_in, fan_out))",
        tests=("test_xavier_he",),
        description="the 1/sqrt(fan_in) 'Xavier' of some slides instead of Glorot's two fans",
    ),
    Mutation(
        name="stats_of_preactivations",
        cell="layer_statistics",
        old="h = f(h @ W)\n        means.append(h.mean())\n        stds.append(h.std())",
        new="z = h @ W\n        h = f(z)\n        means.append(z.mean())\n        stds.append(z.std())",
        tests=("test_layer_statistics",),
        description="records the pre-activations instead of the activations",
    ),
    Mutation(
        name="stats_layers_not_chained",
        cell="layer_statistics",
        old="h = f(h @ W)",
        new="h = f(x @ W)",
        tests=("test_layer_statistics",),
        description="every layer is fed the input instead of the previous layer's output",
    ),
    Mutation(
        name="l2_penalty_without_half",
        cell="penalties",
        old="return 0.5 * strength * np.sum(W * W), strength * W",
        new="return strength * np.sum(W * W), strength * W",
        tests=("test_l2_penalty",),
        description="penalty and gradient disagree by a factor 2",
    ),
    Mutation(
        name="l1_gradient_at_zero",
        cell="penalties",
        old="return strength * np.sum(np.abs(W)), strength * np.sign(W)",
        new="return strength * np.sum(np.abs(W)), strength * np.where(W >= 0, 1.0, -1.0)",
        tests=("test_l1_penalty",),
        description="the L1 subgradient at W == 0 is +strength instead of 0",
    ),
    Mutation(
        name="max_norm_over_rows",
        cell="max_norm",
        old="norms = np.linalg.norm(W, axis=0, keepdims=True)",
        new="norms = np.linalg.norm(W, axis=1, keepdims=True)",
        tests=("test_max_norm",),
        description="constrains the rows (outgoing weights) instead of the columns",
    ),
    Mutation(
        name="max_norm_rescales_every_column",
        cell="max_norm",
        old="W *= np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)",
        new="W *= max_norm / (norms + 1e-7)",
        tests=("test_max_norm",),
        description="normalizes every column to the maximum norm",
    ),
    Mutation(
        name="clip_value_upper_bound_only",
        cell="clipping",
        old="np.clip(g, -clip_value, clip_value, out=g)",
        new="np.minimum(g, clip_value, out=g)",
        tests=("test_clip_value",),
        description="clamps only from above",
    ),
    Mutation(
        name="clip_norm_per_array",
        cell="clipping",
        old=(
            "total = np.sqrt(sum(np.sum(g * g) for g in grads.values()))\n"
            "    scale = min(1.0, max_norm / (total + 1e-6))\n"
            "    for g in grads.values():\n"
            "        g *= scale"
        ),
        new=(
            "total = np.sqrt(sum(np.sum(g * g) for g in grads.values()))\n"
            "    for g in grads.values():\n"
            "        g *= min(1.0, max_norm / (np.linalg.norm(g) + 1e-6))"
        ),
        tests=("test_clip_norm",),
        description="clips each array by its own norm instead of the global norm",
    ),
    Mutation(
        name="clip_norm_per_element",
        cell="clipping",
        old=(
            "scale = min(1.0, max_norm / (total + 1e-6))\n"
            "    for g in grads.values():\n"
            "        g *= scale"
        ),
        new="clip_grad_value_(grads, max_norm)",
        tests=("test_clip_norm",),
        description="clipping per element (by value) instead of by norm",
    ),
    Mutation(
        name="early_stopping_no_restore",
        cell="early_stopping",
        old="for k, v in self.best_params.items():\n            params[k][...] = v",
        new="pass",
        tests=("test_early_stopping",),
        description="stops but keeps the last weights",
    ),
    Mutation(
        name="early_stopping_stores_references",
        cell="early_stopping",
        old="self.best_params = {k: v.copy() for k, v in params.items()}",
        new="self.best_params = dict(params)",
        tests=("test_early_stopping",),
        description="the 'best' parameters are the live arrays, not a snapshot",
    ),
    Mutation(
        name="early_stopping_ties_improve",
        cell="early_stopping",
        old="if metric > self.best + self.min_delta:",
        new="if metric >= self.best + self.min_delta:",
        tests=("test_early_stopping",),
        description="an equal metric resets the patience counter",
    ),
    Mutation(
        name="final_predict_without_preprocessing",
        cell="final_model",
        old="return model.predict(preprocess(X))",
        new="return model.predict(X)",
        tests=("test_final_model",),
        description="trains on standardized inputs but predicts on raw ones",
    ),
]
