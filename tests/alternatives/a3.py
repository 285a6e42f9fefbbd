"""Different but correct A3 answers; each must get full marks."""

from coursekit.grading.submissions import Mutation

SGD_VELOCITY_FORM = '''
def sgd(param, grad, state, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """SGD with momentum in the velocity form v = mu * v - lr * g, theta += v.

    With a constant learning rate v = -lr * b, so this visits the same points as PyTorch's
    b = mu * b + g, theta -= lr * b (and theta -= lr * (g + mu * b) for Nesterov).
    """
    g = grad + weight_decay * param
    velocity = state.get("velocity", np.zeros_like(param))
    velocity = momentum * velocity - lr * g
    if nesterov:
        return param + momentum * velocity - lr * g, {"velocity": velocity}
    return param + velocity, {"velocity": velocity}
'''

ALTERNATIVES = {
    "sgd_sutskever_velocity_form": {"sgd": SGD_VELOCITY_FORM},
    "adam_pytorch_step_size_form": Mutation(
        name="adam_pytorch_step_size_form",
        cell="adam_adamw",
        old=(
            "m_hat = m / (1 - beta1**step)\n"
            "    v_hat = v / (1 - beta2**step)\n"
            "    new_param = param - lr * m_hat / (np.sqrt(v_hat) + eps)"
        ),
        new=(
            "denom = np.sqrt(v) / np.sqrt(1 - beta2**step) + eps\n"
            "    new_param = param - (lr / (1 - beta1**step)) * m / denom"
        ),
        tests=(),
        description="torch's arrangement: step size lr / (1 - beta1^t), denominator sqrt(v_hat) + eps",
    ),
    "adagrad_state_updated_in_place": Mutation(
        name="adagrad_state_updated_in_place",
        cell="adagrad_rmsprop",
        old='total = state.get("sum", 0.0) + g * g',
        new='total = state.setdefault("sum", np.zeros_like(param))\n    total += g * g',
        tests=(),
        description="the accumulator kept in the state dict and updated in place",
    ),
    "cosine_as_squared_cosine": Mutation(
        name="cosine_as_squared_cosine",
        cell="schedules",
        old="return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max))",
        new="return eta_min + (base_lr - eta_min) * math.cos(math.pi * step / (2 * T_max)) ** 2",
        tests=(),
        description="(1 + cos x) / 2 = cos(x / 2) ** 2",
    ),
}

# Written for issue 15: more valid formulations that stricter hidden cases must keep accepting.
ALTERNATIVES.update(
    {
        "rmsprop_average_updated_in_place": Mutation(
            name="rmsprop_average_updated_in_place",
            cell="adagrad_rmsprop",
            old='square_avg = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g',
            new='square_avg = state.get("square_avg")\n'
            "    if square_avg is None:\n"
            "        square_avg = np.zeros_like(param)\n"
            "    square_avg *= alpha\n"
            "    square_avg += (1 - alpha) * g * g",
            tests=(),
            description="keeps one running-average array and updates it in place",
        ),
        # The A3 interface uses the returned parameter; updating it in place as well (what
        # torch.optim does) is not a mistake.
        "sgd_updates_param_in_place": Mutation(
            name="sgd_updates_param_in_place",
            cell="sgd",
            old="new_param = param - lr * direction",
            new="param -= lr * direction\n    new_param = param",
            tests=(),
            description="updates the parameter array in place and returns it",
        ),
        "schedules_with_math_functions": {
            "schedules": """import math


def step_lr(step, base_lr, step_size, gamma=0.1):
    return base_lr * math.pow(gamma, math.floor(step / step_size))


def cosine_annealing_lr(step, base_lr, T_max, eta_min=0.0):
    return eta_min + (base_lr - eta_min) * (1 + np.cos(np.pi * step / T_max)) / 2


def warmup_cosine_lr(step, base_lr, warmup_steps, T_max, eta_min=0.0):
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step / warmup_steps)
    return cosine_annealing_lr(step - warmup_steps, base_lr, T_max, eta_min)""",
        },
    }
)
