"""Realistic mistakes in A3 (optimizers and schedules), for mutation testing."""

from coursekit.grading.submissions import Mutation

MISTAKES = [
    Mutation(
        name="momentum_as_moving_average",
        cell="sgd",
        old="buf = g.copy() if buf is None else momentum * buf + g",
        new="buf = (1 - momentum) * g if buf is None else momentum * buf + (1 - momentum) * g",
        tests=("test_sgd_momentum", "test_nesterov"),
        description="momentum in the EMA form b = mu * b + (1 - mu) * g",
    ),
    Mutation(
        name="momentum_buffer_not_carried",
        cell="sgd",
        old='buf = state.get("momentum_buffer")',
        new="buf = None",
        tests=("test_sgd_momentum",),
        description="the velocity restarts at every step (plain SGD)",
    ),
    Mutation(
        name="nesterov_as_plain_momentum",
        cell="sgd",
        old="direction = g + momentum * buf if nesterov else buf",
        new="direction = buf",
        tests=("test_nesterov",),
        description="the nesterov flag is ignored",
    ),
    Mutation(
        name="sgd_weight_decay_ignored",
        cell="sgd",
        old="g = grad + weight_decay * param",
        new="g = grad",
        tests=("test_sgd_momentum",),
        description="weight_decay accepted but never used",
    ),
    Mutation(
        name="adagrad_without_sqrt",
        cell="adagrad_rmsprop",
        old="new_param = param - lr * g / (np.sqrt(total) + eps)",
        new="new_param = param - lr * g / (total + eps)",
        tests=("test_adagrad",),
        description="divides by the sum of squares instead of its root",
    ),
    Mutation(
        name="adagrad_sum_not_accumulated",
        cell="adagrad_rmsprop",
        old='total = state.get("sum", 0.0) + g * g',
        new="total = g * g",
        tests=("test_adagrad",),
        description="the squared-gradient sum restarts every step",
    ),
    Mutation(
        name="adagrad_eps_inside_sqrt",
        cell="adagrad_rmsprop",
        old="new_param = param - lr * g / (np.sqrt(total) + eps)",
        new="new_param = param - lr * g / np.sqrt(total + eps)",
        tests=("test_adagrad",),
        description="eps under the square root",
    ),
    Mutation(
        name="rmsprop_without_sqrt",
        cell="adagrad_rmsprop",
        old="new_param = param - lr * g / (np.sqrt(square_avg) + eps)",
        new="new_param = param - lr * g / (square_avg + eps)",
        tests=("test_rmsprop",),
        description="RMSProp without the square root",
    ),
    Mutation(
        name="rmsprop_alpha_on_new_value",
        cell="adagrad_rmsprop",
        old='square_avg = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g',
        new='square_avg = (1 - alpha) * state.get("square_avg", 0.0) + alpha * g * g',
        tests=("test_rmsprop",),
        description="the decay rate weights the new squared gradient",
    ),
    Mutation(
        name="adam_without_bias_correction",
        cell="adam_adamw",
        old="m_hat = m / (1 - beta1**step)\n    v_hat = v / (1 - beta2**step)",
        new="m_hat = m\n    v_hat = v",
        tests=("test_adam",),
        description="no bias correction",
    ),
    Mutation(
        name="adam_bias_correction_of_m_only",
        cell="adam_adamw",
        old="v_hat = v / (1 - beta2**step)",
        new="v_hat = v",
        tests=("test_adam",),
        description="bias correction of the first moment only",
    ),
    Mutation(
        name="adam_step_counter_off_by_one",
        cell="adam_adamw",
        old='step = state.get("step", 0) + 1',
        new='step = state.get("step", 0)',
        tests=("test_adam",),
        description="t is 0 on the first call (incremented after use)",
    ),
    Mutation(
        name="adam_eps_inside_sqrt",
        cell="adam_adamw",
        old="(np.sqrt(v_hat) + eps)",
        new="np.sqrt(v_hat + eps)",
        tests=("test_adam",),
        description="eps under the square root",
    ),
    Mutation(
        name="adamw_decay_on_gradient",
        cell="adam_adamw",
        old=(
            "decayed = param * (1 - lr * weight_decay)\n"
            "    return adam(decayed, grad, state, lr=lr, betas=betas, eps=eps)"
        ),
        new="return adam(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)",
        tests=("test_adamw",),
        description="AdamW implemented as Adam with L2 (decay applied to the gradient)",
    ),
    Mutation(
        name="adamw_decay_without_lr",
        cell="adam_adamw",
        old="decayed = param * (1 - lr * weight_decay)",
        new="decayed = param * (1 - weight_decay)",
        tests=("test_adamw",),
        description="the decay is not scaled by the learning rate",
    ),
    Mutation(
        name="adamw_decay_after_adam_step",
        cell="adam_adamw",
        old=(
            "decayed = param * (1 - lr * weight_decay)\n"
            "    return adam(decayed, grad, state, lr=lr, betas=betas, eps=eps)"
        ),
        new=(
            "new_param, new_state = adam(param, grad, state, lr=lr, betas=betas, eps=eps)\n"
            "    return new_param * (1 - lr * weight_decay), new_state"
        ),
        tests=("test_adamw",),
        description="decays the updated weights instead of the old ones",
    ),
    Mutation(
        name="step_lr_continuous_decay",
        cell="schedules",
        old="gamma ** (step // step_size)",
        new="gamma ** (step / step_size)",
        tests=("test_schedules",),
        description="true division instead of integer division",
    ),
    Mutation(
        name="cosine_without_pi",
        cell="schedules",
        old="math.cos(math.pi * step / T_max)",
        new="math.cos(step / T_max)",
        tests=("test_schedules",),
        description="the cosine's argument misses pi",
    ),
    Mutation(
        name="warmup_cosine_not_restarted",
        cell="schedules",
        old="cosine_annealing_lr(step - warmup_steps, base_lr, T_max, eta_min)",
        new="cosine_annealing_lr(step, base_lr, T_max, eta_min)",
        tests=("test_schedules",),
        description="the cosine after the warmup does not start from its own step 0",
    ),
]

# Written for issue 15: signs, ignored arguments, state that is not carried, in-place updates.
MISTAKES += [
    Mutation(
        name="momentum_buffer_sign",
        cell="sgd",
        old="buf = g.copy() if buf is None else momentum * buf + g",
        new="buf = g.copy() if buf is None else g - momentum * buf",
        tests=("test_sgd_momentum",),
        description="subtracts the old buffer: the momentum pulls backwards",
    ),
    Mutation(
        name="nesterov_with_old_buffer",
        cell="sgd",
        old="buf = g.copy() if buf is None else momentum * buf + g\n"
        "    direction = g + momentum * buf if nesterov else buf",
        new="old_buf = np.zeros_like(g) if buf is None else buf\n"
        "    buf = g.copy() if buf is None else momentum * buf + g\n"
        "    direction = g + momentum * old_buf if nesterov else buf",
        tests=("test_nesterov",),
        description="the Nesterov look-ahead uses the buffer from before this step",
    ),
    # Not a mistake under the A3 interface (the caller uses the returned parameter, as
    # torch.optim updates in place): `param -= lr * direction; return param, state`.
    Mutation(
        name="sgd_nesterov_flag_ignored",
        cell="sgd",
        old="direction = g + momentum * buf if nesterov else buf",
        new="direction = g + momentum * buf",
        tests=("test_sgd_momentum",),
        description="always takes the Nesterov step, whatever nesterov says",
    ),
    Mutation(
        name="adagrad_weight_decay_ignored",
        cell="adagrad_rmsprop",
        old="g = grad + weight_decay * param\n    total = ",
        new="g = grad\n    total = ",
        tests=("test_adagrad",),
        description="AdaGrad accepts weight_decay but never uses it",
    ),
    Mutation(
        name="rmsprop_average_not_carried",
        cell="adagrad_rmsprop",
        old='alpha * state.get("square_avg", 0.0)',
        new="alpha * 0.0",
        tests=("test_rmsprop",),
        description="the running average of squares restarts at every step",
    ),
    Mutation(
        name="adam_betas_swapped",
        cell="adam_adamw",
        old="beta1, beta2 = betas",
        new="beta2, beta1 = betas",
        tests=("test_adam",),
        description="unpacks betas in the wrong order",
    ),
    Mutation(
        name="adam_step_not_stored",
        cell="adam_adamw",
        old='step = state.get("step", 0) + 1',
        new="step = 1",
        tests=("test_adam",),
        description="the step counter is 1 at every call: the bias correction never fades",
    ),
    Mutation(
        name="adam_eps_ignored",
        cell="adam_adamw",
        old="(np.sqrt(v_hat) + eps)",
        new="(np.sqrt(v_hat) + 1e-8)",
        tests=("test_adam",),
        description="hard-codes eps = 1e-8 and ignores the argument",
    ),
    Mutation(
        name="adamw_decays_twice",
        cell="adam_adamw",
        old="return adam(decayed, grad, state, lr=lr, betas=betas, eps=eps)",
        new="return adam(decayed, grad, state, lr=lr, betas=betas, eps=eps, "
        "weight_decay=weight_decay)",
        tests=("test_adamw",),
        description="decays the weights AND passes weight_decay on to Adam as L2",
    ),
    Mutation(
        name="step_lr_gamma_ignored",
        cell="schedules",
        old="return base_lr * gamma ** (step // step_size)",
        new="return base_lr * 0.1 ** (step // step_size)",
        tests=("test_schedules",),
        description="always decays by 0.1, whatever gamma is",
    ),
    Mutation(
        name="cosine_ignores_eta_min",
        cell="schedules",
        old="return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max))",
        new="return 0.5 * base_lr * (1 + math.cos(math.pi * step / T_max))",
        tests=("test_schedules",),
        description="anneals to 0 whatever eta_min is",
    ),
    Mutation(
        name="warmup_ramp_one_step_ahead",
        cell="schedules",
        old="return base_lr * step / warmup_steps",
        new="return base_lr * (step + 1) / warmup_steps",
        tests=("test_schedules",),
        description="the ramp starts at base_lr / warmup_steps instead of 0",
    ),
]
