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

# Written for issue 15: ignored arguments, global randomness, distribution shape, ddof,
# missing in-place updates, squared norms, rebinding instead of copying back.
MISTAKES += [
    Mutation(
        name="random_init_ignores_std",
        cell="init",
        old="return std * rng.standard_normal((fan_in, fan_out))",
        new="return 0.01 * rng.standard_normal((fan_in, fan_out))",
        tests=("test_init_zeros_random",),
        description="hard-codes std = 0.01 and ignores the argument",
    ),
    Mutation(
        name="random_init_global_random_state",
        cell="init",
        old="return std * rng.standard_normal((fan_in, fan_out))",
        new="return std * np.random.standard_normal((fan_in, fan_out))",
        tests=("test_init_zeros_random",),
        description="draws from numpy's global random state, ignoring rng",
    ),
    Mutation(
        name="xavier_transposed_shape",
        cell="init",
        old="return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))",
        new="return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_out, fan_in))",
        tests=("test_xavier_he",),
        description="returns shape (fan_out, fan_in), PyTorch's Linear.weight layout",
    ),
    Mutation(
        name="xavier_uniform_instead_of_normal",
        cell="init",
        old="return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))",
        new="bound = np.sqrt(6.0 / (fan_in + fan_out))\n"
        "    return rng.uniform(-bound, bound, size=(fan_in, fan_out))",
        tests=("test_xavier_he",),
        description="Glorot UNIFORM (right variance, wrong distribution) where normal is asked",
    ),
    Mutation(
        name="stats_ignores_activation",
        cell="layer_statistics",
        old='f = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))',
        new="f = np.tanh",
        tests=("test_layer_statistics",),
        description="always uses tanh, whatever activation says",
    ),
    Mutation(
        name="stats_per_unit_std",
        cell="layer_statistics",
        old="stds.append(h.std())",
        new="stds.append(h.std(axis=0).mean())",
        tests=("test_layer_statistics",),
        description="averages the per-unit standard deviations",
    ),
    Mutation(
        name="stats_sample_std",
        cell="layer_statistics",
        old="stds.append(h.std())",
        new="stds.append(h.std(ddof=1))",
        tests=("test_layer_statistics",),
        description="the sample standard deviation (ddof=1)",
    ),
    Mutation(
        name="l1_gradient_without_strength",
        cell="penalties",
        old="strength * np.sign(W)",
        new="np.sign(W)",
        tests=("test_l1_penalty",),
        description="forgets to scale the subgradient by strength",
    ),
    Mutation(
        name="l2_penalty_mean",
        cell="penalties",
        old="0.5 * strength * np.sum(W * W)",
        new="0.5 * strength * np.mean(W * W)",
        tests=("test_l2_penalty",),
        description="averages the squares instead of summing them",
    ),
    Mutation(
        name="l2_gradient_doubled",
        cell="penalties",
        old="strength * W\n",
        new="2 * strength * W\n",
        tests=("test_l2_penalty",),
        description="differentiates W**2 to 2W but forgets the 1/2 in front",
    ),
    Mutation(
        name="max_norm_not_in_place",
        cell="max_norm",
        old="W *= np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)",
        new="W = W * np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)",
        tests=("test_max_norm",),
        description="returns a new array; the caller's W is unchanged",
    ),
    Mutation(
        name="clip_value_rebinds_the_loop_variable",
        cell="clipping",
        old="np.clip(g, -clip_value, clip_value, out=g)",
        new="g = np.clip(g, -clip_value, clip_value)",
        tests=("test_clip_value",),
        description="rebinds the loop variable: the arrays in the dict never change",
    ),
    Mutation(
        name="clip_norm_scales_small_gradients_up",
        cell="clipping",
        old="scale = min(1.0, max_norm / (total + 1e-6))",
        new="scale = max_norm / (total + 1e-6)",
        tests=("test_clip_norm",),
        description="always rescales to max_norm, also gradients that are already small",
    ),
    Mutation(
        name="clip_norm_squared_norm",
        cell="clipping",
        old="total = np.sqrt(sum(np.sum(g * g) for g in grads.values()))",
        new="total = sum(np.sum(g * g) for g in grads.values())",
        tests=("test_clip_norm",),
        description="the squared norm instead of the norm",
    ),
    Mutation(
        name="early_stopping_restore_rebinds",
        cell="early_stopping",
        old="params[k][...] = v",
        new="params[k] = v",
        tests=("test_early_stopping",),
        description="puts the saved arrays in the dict instead of copying them into the live ones",
    ),
    Mutation(
        name="early_stopping_min_delta_ignored",
        cell="early_stopping",
        old="if metric > self.best + self.min_delta:",
        new="if metric > self.best:",
        tests=("test_early_stopping",),
        description="accepts min_delta but never uses it",
    ),
]
