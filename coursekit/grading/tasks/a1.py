"""Hidden-test tasks of assignment A1 (vectorization).

Students implement broadcasting exercises, pairwise Euclidean distances three ways, k-NN
prediction and a stable softmax / log-sum-exp. The references come from :mod:`coursekit.ops`
where the library has the function; the rest (shape rule, standardization, k-NN vote) are
small references written here. Every task generates non-square shapes, a batch of one and
the edge case its common mistake stumbles on (a square shape where a transposed answer still
has the right shape, repeated points, ties, logits of size 1e4).
"""

from __future__ import annotations

import numpy as np

from coursekit import ops
from coursekit.grading.core import Case, Mistake, Task, register

# -- broadcasting ---------------------------------------------------------------------------
INCOMPATIBLE = np.array([-1], dtype=np.int64)


def broadcast_shape_reference(shape_a, shape_b):
    """NumPy's rule: align on the right, pad with 1s; sizes must match or one must be 1."""
    ndim = max(len(shape_a), len(shape_b))
    a = (1,) * (ndim - len(shape_a)) + tuple(shape_a)
    b = (1,) * (ndim - len(shape_b)) + tuple(shape_b)
    out = []
    for m, n in zip(a, b):
        if m != n and 1 not in (m, n):
            raise ValueError(f"shapes {tuple(shape_a)} and {tuple(shape_b)} do not broadcast")
        out.append(n if m == 1 else m)
    return tuple(out)


def _run_broadcast_shape(fn, case):
    """The result shape as an int array; ``[-1]`` stands for "raised ValueError"."""
    try:
        shape = fn(*case.args)
    except ValueError:
        return INCOMPATIBLE
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"expected a tuple of ints, got {type(shape).__name__}")
    return np.array([int(s) for s in shape], dtype=np.int64)


def _broadcast_cases(rng):
    def dims(k):
        return tuple(int(d) for d in rng.integers(2, 6, size=k))

    base = dims(3)
    many = dims(4)
    return [
        Case("same shape", (base, base)),
        Case("a size-1 axis stretches", ((base[0], 1, base[2]), base)),
        Case("fewer dimensions on one side", (base[1:], base)),
        Case("scalar shape ()", ((), base)),
        Case("both sides stretch", ((base[0], 1), (1, base[1]))),
        Case("incompatible sizes", ((base[0], base[1]), (base[0], base[1] + 1))),
        Case("incompatible after padding", ((base[2] + 1,), base)),
        Case("fewer dimensions on the right-hand side", (base, base[1:])),
        # Compatible, and the shorter shape is the second one: its padding must be 1s too.
        Case("many dimensions", ((1,) + many, (many[2], 1))),
        Case("zero-size axis", ((0, base[1]), (1, base[1]))),
    ]


def _no_left_padding(shape_a, shape_b):
    """Aligns the shapes on the left instead of the right."""
    ndim = max(len(shape_a), len(shape_b))
    a = tuple(shape_a) + (1,) * (ndim - len(shape_a))
    b = tuple(shape_b) + (1,) * (ndim - len(shape_b))
    return broadcast_shape_reference(a, b)


def _padded(shape_a, shape_b):
    ndim = max(len(shape_a), len(shape_b))
    return zip(
        (1,) * (ndim - len(shape_a)) + tuple(shape_a), (1,) * (ndim - len(shape_b)) + tuple(shape_b)
    )


def _larger_size_never_raises(shape_a, shape_b):
    return tuple(max(m, n) for m, n in _padded(shape_a, shape_b))


def _larger_size(shape_a, shape_b):
    broadcast_shape_reference(shape_a, shape_b)  # raises where the reference raises
    return tuple(max(m, n) for m, n in _padded(shape_a, shape_b))


def _zip_without_padding(shape_a, shape_b):
    out = []
    for m, n in zip(shape_a, shape_b):
        if m != n and 1 not in (m, n):
            raise ValueError("incompatible")
        out.append(n if m == 1 else m)
    return tuple(out)


def _equal_sizes_only(shape_a, shape_b):
    pairs = list(_padded(shape_a, shape_b))
    if any(m != n for m, n in pairs):
        raise ValueError("sizes differ")
    return tuple(m for m, _ in pairs)


def _first_size_one_kept(shape_a, shape_b):
    broadcast_shape_reference(shape_a, shape_b)
    return tuple(m if m == 1 or n == 1 else m for m, n in _padded(shape_a, shape_b))


register(
    Task(
        name="a1.broadcast_shape",
        reference=broadcast_shape_reference,
        cases=_broadcast_cases,
        run=_run_broadcast_shape,
        mistakes=(
            Mistake(
                "matches aligning the shapes on the LEFT: numpy pads the shorter shape with 1s on "
                "the left and compares trailing dimensions first",
                _no_left_padding,
            ),
            Mistake(
                "matches taking the larger size on every axis without ever raising: sizes "
                "that differ and are both not 1 (like 3 and 4) must raise ValueError",
                _larger_size_never_raises,
            ),
            Mistake(
                "matches taking the larger of the two sizes when one is 1: a size-1 axis "
                "stretches to the OTHER size, also when that size is 0 (1 and 0 give 0)",
                _larger_size,
            ),
            Mistake(
                "matches keeping a size-1 axis of the first shape: a size-1 axis stretches to "
                "the other shape's size",
                _first_size_one_kept,
            ),
            Mistake(
                "matches zipping the shapes without padding: zip stops at the shorter shape, "
                "so axes are dropped; pad the shorter shape with 1s on the LEFT first",
                _zip_without_padding,
            ),
            Mistake(
                "matches accepting only EQUAL sizes: a size-1 axis is compatible with any size "
                "and stretches to it",
                _equal_sizes_only,
            ),
        ),
        description="result shape of broadcasting two shapes, ValueError if incompatible",
    )
)


def _standardize_in_place(X):
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X


def standardize_columns_reference(X):
    """Each column minus its mean, divided by its (population) standard deviation."""
    X = np.asarray(X, dtype=np.float64)
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _standardize_cases(rng):
    return [
        Case("tall matrix", (rng.normal(3.0, 2.0, size=(9, 4)),)),
        Case("wide matrix", (rng.normal(-1.0, 0.5, size=(4, 7)),)),
        Case("square matrix", (rng.normal(5.0, 3.0, size=(5, 5)) * rng.uniform(1, 4, size=5),)),
        Case("two rows", (rng.normal(size=(2, 3)),)),
        # Columns around 1e5 with spread 1: the one-pass variance mean(x**2) - mean(x)**2
        # loses about 1e10 * eps ~ 2e-6 of it to cancellation; the two-pass formula stays
        # within 1e5 * eps ~ 2e-11 of the exact answer.
        Case("large offsets", (rng.normal(1e5, 1.0, size=(6, 3)),)),
    ]


def _run_standardize(fn, case):
    """The result, and whether ``X`` came out unchanged (standardizing it in place, with
    ``X -= X.mean(axis=0)``, returns the right numbers but destroys the caller's data)."""
    (X,) = case.args
    before = X.copy()
    out = fn(X)
    out = np.array(out, dtype=np.float64, copy=True)
    return {"standardized": out, "X unchanged": float(np.array_equal(X, before))}


register(
    Task(
        name="a1.standardize_columns",
        reference=standardize_columns_reference,
        cases=_standardize_cases,
        run=_run_standardize,
        # Two-pass (x - mean) / std is accurate to about 1e5 * eps relative on the "large
        # offsets" case and to a few eps elsewhere: rtol 1e-9 keeps a 50x margin for any
        # two-pass spelling and fails float32 (6e-8) and the one-pass variance (~1e-6).
        rtol=1e-9,
        atol=1e-10,
        mistakes=(
            Mistake(
                "matches standardizing ROWS (axis=1) instead of columns",
                lambda X: (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True),
            ),
            Mistake(
                "matches dividing by the sample standard deviation (ddof=1); use the population "
                "std, np.std's default",
                lambda X: (X - X.mean(axis=0)) / X.std(axis=0, ddof=1),
            ),
            Mistake(
                "matches centering without dividing by the standard deviation",
                lambda X: X - X.mean(axis=0),
            ),
            Mistake(
                "matches ONE mean and ONE standard deviation for the whole matrix: reduce over "
                "the examples only (axis=0) to get one value per column",
                lambda X: (X - X.mean()) / X.std(),
            ),
            Mistake(
                "matches dividing by the VARIANCE: divide by the standard deviation, its square "
                "root",
                lambda X: (X - X.mean(axis=0)) / X.var(axis=0),
            ),
            Mistake(
                "matches dividing by the standard deviation without subtracting the mean first",
                lambda X: X / X.std(axis=0),
            ),
            Mistake(
                "matches dividing by the RANGE (max - min) of each column: standardizing "
                "divides by the standard deviation, X.std(axis=0)",
                lambda X: (X - X.mean(axis=0)) / (X.max(axis=0) - X.min(axis=0)),
            ),
            Mistake(
                "the values are right but X itself was changed (X -= ... in place): the "
                "caller's data must stay as it was; compute X - X.mean(axis=0) into a new array",
                _standardize_in_place,
            ),
        ),
        description="zero mean, unit std per column, by broadcasting",
    )
)

# -- pairwise distances ---------------------------------------------------------------------


def _distance_cases(rng):
    X = rng.normal(size=(7, 5))
    Y = rng.normal(size=(4, 5))
    Z = rng.normal(size=(6, 3))
    repeated = rng.normal(size=(5, 4))
    # 30 points against the same points shuffled, norms about 8: the expansion
    # |x|^2 + |y|^2 - 2 x.y comes out slightly NEGATIVE for several coincident pairs, so a
    # no-loop version without the clamp at 0 returns NaN; the loop versions give exact 0.
    same = 3.0 * rng.normal(size=(30, 8))
    return [
        Case("more test than training points", (X, Y)),
        Case("fewer test than training points", (Y, X)),
        Case("square", (Z, rng.normal(size=(6, 3)))),
        Case("batch of 1", (X[:1], Y)),
        Case("one feature", (rng.normal(size=(3, 1)), rng.normal(size=(5, 1)))),
        Case("zero distance (repeated points)", (repeated, repeated[::-1].copy())),
        Case("the same points in another order", (same, same[rng.permutation(30)])),
        Case(
            "integer-valued pixels",
            (
                rng.integers(0, 17, size=(4, 64)).astype(np.float64),
                rng.integers(0, 17, size=(6, 64)).astype(np.float64),
            ),
        ),
    ]


def _distance_mistakes():
    def squared(X, Y):
        return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(axis=2)

    def plus_two(X, Y):
        d2 = (X**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] + 2 * X @ Y.T
        return np.sqrt(np.maximum(d2, 0))

    def transposed(X, Y):
        return ops.pairwise_distances_two_loops(X, Y).T

    def manhattan(X, Y):
        return np.abs(X[:, None, :] - Y[None, :, :]).sum(axis=2)

    def last_column_zero(X, Y):
        out = ops.pairwise_distances_two_loops(X, Y)
        out[:, -1] = 0.0
        return out

    def last_row_zero(X, Y):
        out = ops.pairwise_distances_two_loops(X, Y)
        out[-1, :] = 0.0
        return out

    def not_clamped(X, Y):
        d2 = (X**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - 2 * X @ Y.T
        return np.sqrt(d2)

    def one_number_per_row(X, Y):
        return np.stack([np.full(len(Y), np.sqrt(np.sum((Y - x) ** 2))) for x in X])

    def norms_as_columns(X, Y):
        d2 = (X**2).sum(1)[:, None] + (Y**2).sum(1)[:, None] - 2 * X @ Y.T
        return np.sqrt(np.maximum(d2, 0))

    def abs_of_sum(X, Y):
        return np.abs((X[:, None, :] - Y[None, :, :]).sum(axis=2))

    def cross_term_once(X, Y):
        d2 = (X**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - X @ Y.T
        return np.sqrt(np.maximum(d2, 0))

    def total_norms(X, Y):
        return np.sqrt(np.maximum(np.sum(X**2) + np.sum(Y**2) - 2 * X @ Y.T, 0))

    def norms_not_reshaped(X, Y):
        d2 = (X**2).sum(1) + (Y**2).sum(1).reshape(1, -1) - 2 * X @ Y.T
        return np.sqrt(np.maximum(d2, 0))

    return (
        Mistake("matches SQUARED distances: did you forget the square root?", squared),
        Mistake(
            "matches ||x||^2 + ||y||^2 + 2 x.y: the cross term enters with a minus sign",
            plus_two,
        ),
        Mistake(
            "matches the transpose: entry [i, j] is the distance from X[i] to Y[j]", transposed
        ),
        Mistake("matches the L1 (Manhattan) distance instead of the Euclidean one", manhattan),
        Mistake(
            "every row holds one repeated number: the sum over (Y - x)**2 ran over ALL entries; "
            "sum over the features only (axis=1) to get one distance per training point",
            one_number_per_row,
        ),
        Mistake(
            "matches adding the norms of Y as a COLUMN: shape (M, 1) lines them up with the "
            "test points; reshape them to (1, M)",
            norms_as_columns,
        ),
        Mistake(
            "matches |sum of the differences|: square each difference BEFORE summing, "
            "sqrt(sum((x - y)**2))",
            abs_of_sum,
        ),
        Mistake(
            "matches ||x||^2 + ||y||^2 - x.y: the cross term of (x - y)^2 is 2 x.y", cross_term_once
        ),
        Mistake(
            "matches the squared norms summed over the WHOLE matrix: sum over each row's "
            "features only (axis=1)",
            total_norms,
        ),
        Mistake(
            "the last column is 0: the loop over the training points stops one early "
            "(range(M) already ends at M - 1)",
            last_column_zero,
        ),
        Mistake("the last row is 0: the loop over the test points stops one early", last_row_zero),
        Mistake(
            "NaN where two points coincide: round-off makes ||x||^2 + ||y||^2 - 2 x.y slightly "
            "negative; clamp it at 0 (np.maximum) before the square root",
            not_clamped,
        ),
        Mistake(
            "matches adding the norms of X as a ROW: shape (N,) broadcasts against (1, M) "
            "along the columns; reshape them to (N, 1)",
            norms_not_reshaped,
        ),
    )


# Tolerances sized to each formula. The loop versions subtract first, sqrt(sum((x - y)**2)):
# every spelling (np.linalg.norm, einsum, math.sqrt) agrees to a few eps, coincident points
# give exactly 0, so rtol = atol = 1e-12 (a float32 result, off by 6e-8, fails). The no-loop
# expansion |x|^2 + |y|^2 - 2 x.y loses about sqrt(eps) * |x| ~ 3e-7 on the coincident
# points of the cases (norms up to about 10), hence atol 1e-6 there; away from 0 it is
# accurate to about eps * |x|^2 / d^2, so rtol 1e-9 (float32 on the pixel case, distances
# about 60, is off by more than 1e-6 + 6e-8).
for _name, _ref, _what, _rtol, _atol in (
    ("a1.distances_two_loops", ops.pairwise_distances_two_loops, "two Python loops", 1e-12, 1e-12),
    (
        "a1.distances_one_loop",
        ops.pairwise_distances_one_loop,
        "one loop over test points",
        1e-12,
        1e-12,
    ),
    ("a1.distances_no_loops", ops.pairwise_distances, "no Python loops", 1e-9, 1e-6),
):
    register(
        Task(
            name=_name,
            reference=_ref,
            cases=_distance_cases,
            rtol=_rtol,
            atol=_atol,
            mistakes=_distance_mistakes(),
            description=f"Euclidean distances between rows, {_what}",
            library_functions=(f"coursekit.ops.{_ref.__name__}",),
        )
    )

# -- k nearest neighbours --------------------------------------------------------------------


def knn_predict_reference(dists, y_train, k=1):
    """Majority label among the ``k`` nearest training points.

    Distance ties: the training point with the smaller index is nearer (stable sort).
    Vote ties: the smallest label wins.
    """
    nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
    votes = y_train[nearest]
    return np.array([np.bincount(row).argmax() for row in votes], dtype=np.int64)


def _knn_cases(rng):
    def random_problem(n_test, n_train, classes):
        return rng.uniform(0, 10, size=(n_test, n_train)), rng.integers(0, classes, size=n_train)

    d, y = random_problem(6, 15, 4)
    tied_votes_d = rng.uniform(0, 10, size=(5, 8))
    tied_votes_y = np.array([3, 1, 3, 1, 2, 0, 2, 0])
    tied_d = np.round(rng.uniform(0, 3, size=(6, 9)))  # many exactly equal distances
    tied_y = rng.integers(0, 3, size=9)
    d1, y1 = random_problem(1, 10, 3)
    # 60 training points on 4 distance levels (about 15 tied at the smallest), k = 7, and
    # distinct labels that DEcrease with the index: every vote is a tie, won by the smallest
    # label, i.e. by the chosen point of largest index, so a row's prediction names exactly
    # which 7 points were chosen. Only the documented rule (a stable sort: the smaller index
    # is nearer) predicts every row; quicksort, heapsort or argpartition, whose order for
    # ties depends on the numpy build and the CPU, miss at least 6 of the 20 rows (measured
    # over 10,000 seeds).
    tie_groups = np.floor(rng.uniform(0, 4, size=(20, 60)))
    distinct_labels = np.arange(60)[::-1].copy()
    return [
        Case("k = 1", (d, y), {"k": 1}),
        Case("k = 5", (d, y), {"k": 5}),
        Case("batch of 1", (d1, y1), {"k": 3}),
        Case("ties in the vote", (tied_votes_d, tied_votes_y), {"k": 4}),
        Case("ties in the distances", (tied_d, tied_y), {"k": 3}),
        Case("large groups of tied distances", (tie_groups, distinct_labels), {"k": 7}),
        Case("k equals the number of training points", (d, y), {"k": 15}),
        Case("more test than training points", random_problem(12, 5, 2), {"k": 3}),
    ]


def _knn_mistakes():
    def largest(dists, y_train, k=1):
        nearest = np.argsort(-dists, axis=1, kind="stable")[:, :k]
        return np.array([np.bincount(r).argmax() for r in y_train[nearest]])

    def one_extra(dists, y_train, k=1):
        return knn_predict_reference(dists, y_train, k + 1) if k < dists.shape[1] else None

    def largest_label_wins(dists, y_train, k=1):
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        out = []
        for row in y_train[nearest]:
            counts = np.bincount(row)
            out.append(len(counts) - 1 - counts[::-1].argmax())
        return np.array(out)

    def first_seen_wins(dists, y_train, k=1):
        from collections import Counter

        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return np.array([Counter(r.tolist()).most_common(1)[0][0] for r in y_train[nearest]])

    def unstable(kind):
        def predict(dists, y_train, k=1):
            nearest = np.argsort(dists, axis=1, kind=kind)[:, :k]
            return np.array([np.bincount(r).argmax() for r in y_train[nearest]])

        return predict

    def largest_label(dists, y_train, k=1):
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return y_train[nearest].max(axis=1)

    def k_ignored(dists, y_train, k=1):
        return knn_predict_reference(dists, y_train, 1)

    def mean_label(dists, y_train, k=1):
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return np.round(y_train[nearest].mean(axis=1)).astype(np.int64)

    def sorted_columns(dists, y_train, k=1):
        nearest = np.argsort(dists, axis=0, kind="stable")[:k, :].T
        return np.array([np.bincount(r).argmax() for r in y_train[nearest]])

    ties = (
        "matches an UNSTABLE sort: equally distant training points came out in another order; "
        "sort with kind='stable' so that the smaller index is the nearer point"
    )
    return (
        Mistake(ties, unstable("heapsort")),
        Mistake(ties, unstable("quicksort")),
        Mistake(
            "matches the LARGEST label among the k neighbours (np.max or votes[np.argmax("
            "votes)]): count the votes per label, np.bincount(votes).argmax()",
            largest_label,
        ),
        Mistake(
            "matches using the single nearest neighbour whatever k is: vote among the first "
            "k columns of the sorted order",
            k_ignored,
        ),
        Mistake(
            "matches the rounded MEAN of the neighbours' labels: labels are categories, take "
            "the most frequent one (np.bincount(...).argmax())",
            mean_label,
        ),
        Mistake(
            "matches sorting along axis 0 (over test points): each ROW of dists holds one test "
            "point's distances to the training points, sort along axis=1",
            sorted_columns,
        ),
        Mistake("matches voting among the k FARTHEST points: sort distances ascending", largest),
        Mistake("matches using k + 1 neighbours: check the slice [:k]", one_extra),
        Mistake(
            "matches breaking vote ties toward the LARGEST label; the smallest label must win",
            largest_label_wins,
        ),
        Mistake(
            "matches breaking vote ties by the nearest neighbour (Counter.most_common); the "
            "assignment's rule is that the smallest label wins (np.bincount(...).argmax())",
            first_seen_wins,
        ),
    )


register(
    Task(
        name="a1.knn_predict",
        reference=knn_predict_reference,
        cases=_knn_cases,
        mistakes=_knn_mistakes(),
        description="k-NN majority vote with documented tie rules",
    )
)

# -- softmax and log-sum-exp -------------------------------------------------------------------


def _logit_cases(rng):
    mixed = rng.normal(size=(3, 5))
    mixed[0] *= 1e4
    mixed[2] = mixed[2] * 1e4 - 2e4
    return [
        Case("small logits", (rng.normal(size=(4, 6)),)),
        Case("batch of 1", (rng.normal(size=(1, 5)),)),
        Case("square", (rng.normal(size=(5, 5)) * 3,)),
        Case("one class", (rng.normal(size=(4, 1)),)),
        Case("large positive logits (1e4)", (rng.uniform(0.9e4, 1e4, size=(3, 4)),)),
        Case("large negative logits (-1e4)", (rng.uniform(-1e4, -0.9e4, size=(3, 4)),)),
        Case("rows on very different scales", (mixed,)),
        Case("equal logits", (np.full((2, 7), 3.5),)),
    ]


def _naive_softmax(x):
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _global_max_softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_axis0(x):
    return ops.softmax(x, axis=0)


def _softmax_max_not_kept(x):
    e = np.exp(x - np.max(x, axis=1))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_shift_in_numerator_only(x):
    return np.exp(x - np.max(x, axis=1, keepdims=True)) / np.exp(x).sum(axis=1, keepdims=True)


def _softmax_whole_batch(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / e.sum()


def _softmax_column_shift(x):
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_min_shift(x):
    e = np.exp(x - np.min(x, axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_sum_not_kept(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1)


register(
    Task(
        name="a1.softmax",
        reference=lambda x: ops.softmax(x, axis=1),
        cases=_logit_cases,
        # exp(x - max) / sum: any stable spelling (through logsumexp, max over keepdims) agrees
        # to about |x| * eps ~ 4e-12 relative on the 3e4 logits; a float32 result does not.
        rtol=1e-10,
        atol=1e-12,
        mistakes=(
            Mistake(
                "matches softmax without subtracting the max: np.exp overflows for large "
                "logits; subtract each row's maximum first",
                _naive_softmax,
            ),
            Mistake(
                "matches subtracting ONE global maximum: rows far below it underflow to 0/0; "
                "subtract each row's own maximum (axis=1, keepdims=True)",
                _global_max_softmax,
            ),
            Mistake(
                "matches normalizing over axis 0 (columns); each row is one example", _softmax_axis0
            ),
            Mistake(
                "matches subtracting the row maxima WITHOUT keepdims: an (N,) array lines up "
                "with the columns of (N, C); use np.max(..., axis=1, keepdims=True)",
                _softmax_max_not_kept,
            ),
            Mistake(
                "matches dividing by the row sums WITHOUT keepdims: an (N,) array lines up "
                "with the columns of (N, C); use np.sum(..., axis=1, keepdims=True)",
                _softmax_sum_not_kept,
            ),
            Mistake(
                "matches shifting the numerator but not the denominator: subtract the same "
                "row maximum inside both exponentials (compute exp(z - max) once and divide it "
                "by its own row sum)",
                _softmax_shift_in_numerator_only,
            ),
            Mistake(
                "matches dividing by the sum over the WHOLE batch: each row must sum to 1, "
                "np.sum(..., axis=1, keepdims=True)",
                _softmax_whole_batch,
            ),
            Mistake(
                "matches subtracting the row MINIMUM: exp then overflows for large spreads; "
                "subtract the row maximum, so that every exponent is <= 0",
                _softmax_min_shift,
            ),
            Mistake(
                "matches subtracting each COLUMN's maximum (axis=0): rows far below it "
                "underflow to 0/0; subtract each row's maximum (axis=1, keepdims=True)",
                _softmax_column_shift,
            ),
            Mistake(
                "matches the log-probabilities (log-softmax): exponentiate them",
                lambda x: ops.log_softmax(x, axis=1),
            ),
        ),
        description="row-wise numerically stable softmax",
        library_functions=("coursekit.ops.softmax", "coursekit.ops.log_softmax"),
    )
)


def _naive_logsumexp(x):
    return np.log(np.exp(x).sum(axis=1))


def _lse_without_adding_back(x):
    m = x.max(axis=1, keepdims=True)
    return np.log(np.exp(x - m).sum(axis=1))


register(
    Task(
        name="a1.logsumexp",
        reference=lambda x: ops.logsumexp(x, axis=1),
        cases=_logit_cases,
        # m + log(sum(exp(x - m))): exact to a few eps of |m| in any stable spelling.
        rtol=1e-11,
        atol=1e-12,
        mistakes=(
            Mistake(
                "matches log(sum(exp(x))) without the max shift: overflow for large logits",
                _naive_logsumexp,
            ),
            Mistake(
                "matches the shifted sum WITHOUT adding the maximum back: "
                "logsumexp(x) = m + log(sum(exp(x - m)))",
                _lse_without_adding_back,
            ),
            Mistake(
                "matches reducing over axis 0 (columns); reduce each row",
                lambda x: ops.logsumexp(x, axis=0),
            ),
            Mistake(
                "returns shape (N, 1): the values are right, drop the kept axis (one number per "
                "row, shape (N,))",
                lambda x: ops.logsumexp(x, axis=1)[:, None],
            ),
            Mistake(
                "matches summing exp over the WHOLE batch: give np.sum the axis (axis=1)",
                lambda x: np.log(np.sum(np.exp(x - x.max(axis=1, keepdims=True)))) + x.max(axis=1),
            ),
            Mistake(
                "matches adding back the FIRST row's maximum to every row: add each row's own "
                "maximum, m[:, 0] (or keepdims and then squeeze)",
                lambda x: (
                    np.log(np.sum(np.exp(x - x.max(axis=1, keepdims=True)), axis=1)) + x[0].max()
                ),
            ),
            Mistake(
                "matches shifting by ONE maximum for the whole batch: rows far below it "
                "underflow to log(0) = -inf; use each row's own maximum",
                lambda x: np.log(np.sum(np.exp(x - x.max()), axis=1)) + x.max(),
            ),
        ),
        description="row-wise numerically stable log-sum-exp",
        library_functions=("coursekit.ops.logsumexp",),
    )
)
