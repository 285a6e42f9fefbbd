"""Different but valid A2 answers that must get full marks; format in ``tests/nbgrader_harness.py``."""

ALTERNATIVES = {
    "flat_view_gradients_and_einsum_affine": {
        "numerical_gradient": """def numerical_gradient(f, x, h=1e-5):
    flat = x.reshape(-1)  # a view: writing to it perturbs x
    grad = np.empty(flat.size)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = float(f(x))
        flat[i] = old - h
        down = float(f(x))
        flat[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad.reshape(x.shape)""",
        "affine_backward": """def affine_backward(dout, cache):
    x, w, b = cache
    xr = x.reshape(len(x), -1)
    dw = np.einsum("nd,nm->dm", xr, dout)
    db = dout.sum(0)
    dx = np.einsum("nm,dm->nd", dout, w).reshape(x.shape)
    return dx, dw, db""",
    },
    "naive_sigmoid_and_tanh_from_input": {
        # 1 / (1 + exp(-x)) overflows (with a RuntimeWarning on stderr) for very negative x
        # but the value is still right: the warning must not cost points.
        "sigmoid": """def sigmoid_forward(x):
    out = 1.0 / (1.0 + np.exp(-x))
    return out, out


def sigmoid_backward(dout, cache):
    return dout * cache * (1 - cache)""",
        "tanh": """def tanh_forward(x):
    return np.tanh(x), x


def tanh_backward(dout, cache):
    return dout / np.cosh(cache) ** 2""",
    },
    "softmax_loss_one_hot_logsumexp": {
        "softmax_loss": """def softmax_loss(scores, y):
    n, c = scores.shape
    m = scores.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(scores - m).sum(axis=1, keepdims=True))
    onehot = np.eye(c)[y]
    loss = np.sum(onehot * (lse - scores)) / n
    return loss, (np.exp(scores - lse) - onehot) / n""",
        "rel_error": """def rel_error(x, y):
    ratios = np.abs(x - y) / np.clip(np.abs(x) + np.abs(y), 1e-8, None)
    return ratios.max()""",
    },
}

# Written for issue 15: more valid formulations that stricter hidden cases must keep accepting.
ALTERNATIVES.update(
    {
        "numerical_gradient_with_nditer": {
            "numerical_gradient": """def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        i = it.multi_index
        old = float(x[i])
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad""",
            "rel_error": """def rel_error(x, y):
    return (np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))).max()""",
        },
        "relu_with_a_boolean_mask_cache": {
            "relu": """def relu_forward(x):
    mask = x > 0
    return np.where(mask, x, 0.0), mask


def relu_backward(dout, cache):
    return np.where(cache, dout, 0.0)""",
        },
        "two_layer_net_written_out": {
            "two_layer_net": """def two_layer_loss(X, y, params, reg=0.0):
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    n = X.shape[0]
    h = X @ W1 + b1
    a = np.maximum(h, 0)
    s = a @ W2 + b2
    s = s - s.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean() + 0.5 * reg * ((W1**2).sum() + (W2**2).sum())
    ds = np.exp(log_p)
    ds[np.arange(n), y] -= 1
    ds /= n
    dh = (ds @ W2.T) * (h > 0)
    grads = {"W1": X.T @ dh + reg * W1, "b1": dh.sum(axis=0), "W2": a.T @ ds + reg * W2,
             "b2": ds.sum(axis=0)}
    return loss, grads""",
        },
        "scale_shift_backward_einsum": {
            "scale_shift_backward": """def scale_shift_backward(dout, cache):
    x, gamma, _ = cache
    return dout * gamma, np.einsum("nd,nd->d", dout, x), dout.sum(axis=0)""",
        },
    }
)
