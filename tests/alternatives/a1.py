"""Different but valid A1 answers that must get full marks; format in ``tests/nbgrader_harness.py``."""

ALTERNATIVES = {
    "broadcast_reversed_zip": {
        "broadcast_shape": """def broadcast_shape(shape_a, shape_b):
    out = []
    for i in range(1, max(len(shape_a), len(shape_b)) + 1):
        a = shape_a[-i] if i <= len(shape_a) else 1
        b = shape_b[-i] if i <= len(shape_b) else 1
        if a != b and a != 1 and b != 1:
            raise ValueError("incompatible shapes")
        out.append(b if a == 1 else a)
    return tuple(reversed(out))""",
    },
    "distances_linalg_norm_and_3d_broadcast": {
        "distances_two_loops": """def pairwise_distances_two_loops(X, Y):
    out = np.empty((len(X), len(Y)))
    for i, x in enumerate(X):
        for j, y in enumerate(Y):
            out[i, j] = np.linalg.norm(x - y)
    return out""",
        "distances_one_loop": """def pairwise_distances_one_loop(X, Y):
    return np.stack([np.linalg.norm(Y - x, axis=1) for x in X]) if len(X) else np.zeros((0, len(Y)))""",
        "distances_no_loops": """def pairwise_distances_no_loops(X, Y):
    diff = X[:, None, :] - Y[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))""",
    },
    "knn_unique_counts": {
        "knn_predict": """def knn_predict(dists, y_train, k=1):
    preds = []
    for row in dists:
        nearest = y_train[np.argsort(row, kind="mergesort")[:k]]
        labels, counts = np.unique(nearest, return_counts=True)
        preds.append(labels[np.argmax(counts)])
    return np.array(preds)""",
    },
    "softmax_through_logsumexp": {
        "softmax": """def softmax(logits):
    m = logits.max(axis=-1, keepdims=True)
    log_norm = m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    return np.exp(logits - log_norm)""",
        "logsumexp": """def logsumexp(logits):
    m = np.max(logits, axis=1)
    return m + np.log(np.exp(logits - m[:, np.newaxis]).sum(axis=1))""",
    },
}

# Written for issue 15: more valid formulations that stricter hidden cases must keep accepting.
ALTERNATIVES.update(
    {
        "broadcast_with_numpy": {
            "broadcast_shape": """def broadcast_shape(shape_a, shape_b):
    return tuple(int(s) for s in np.broadcast_shapes(tuple(shape_a), tuple(shape_b)))""",
        },
        "standardize_two_pass_with_keepdims": {
            "standardize_columns": """def standardize_columns(X):
    mu = X.mean(axis=0, keepdims=True)
    centered = X - mu
    return centered / np.sqrt((centered**2).mean(axis=0, keepdims=True))""",
        },
        "one_loop_over_training_points_and_clipped_expansion": {
            "distances_one_loop": """def pairwise_distances_one_loop(X, Y):
    out = np.empty((X.shape[0], Y.shape[0]))
    for j in range(Y.shape[0]):
        out[:, j] = np.sqrt(((X - Y[j]) ** 2).sum(axis=1))
    return out""",
            "distances_no_loops": """def pairwise_distances_no_loops(X, Y):
    sq = (
        np.einsum("ij,ij->i", X, X)[:, None]
        + np.einsum("ij,ij->i", Y, Y)[None, :]
        - 2 * X @ Y.T
    )
    return np.sqrt(np.clip(sq, 0, None))""",
        },
        "knn_dictionary_vote": {
            "knn_predict": """def knn_predict(dists, y_train, k=1):
    order = np.argsort(dists, axis=1, kind="mergesort")[:, :k]
    preds = np.empty(len(dists), dtype=int)
    for i, row in enumerate(y_train[order]):
        counts = {}
        for label in row.tolist():
            counts[label] = counts.get(label, 0) + 1
        best = max(counts.values())
        preds[i] = min(label for label, c in counts.items() if c == best)
    return preds""",
        },
        "logsumexp_with_logaddexp": {
            "logsumexp": """def logsumexp(logits):
    return np.logaddexp.reduce(logits, axis=1)""",
        },
    }
)
