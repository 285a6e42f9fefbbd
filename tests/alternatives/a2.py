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
