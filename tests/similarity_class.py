"""A synthesized class of A1 (vectorization) submissions for the similarity checks.

Independent students: every answer cell is written from one of several algorithms
(``_VARIANTS``), some far more popular than others as in a real class, and each algorithm
has choice points a student settles by habit (``x.sum(axis=1)`` or ``np.sum(x, 1)``,
``** 2`` or ``np.square``, a temporary variable or not, ``len(X)`` or ``X.shape[0]``, own
names and comments). Some students leave a cell unanswered.

Planted copies: a copy of one classmate's answers with renamed variables, reordered
functions (and answer cells), rewritten comments, changed loop style (``for`` to
``while``, comprehension to loop and back), all of these at once, or a paste of coursekit's
own source. :func:`synthesize` returns the answers per student and the planted pairs.

Used by ``tests/test_similarity.py`` and the ``similarity`` benchmark.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from dataclasses import dataclass, field

import numpy as np

from coursekit.grading import submissions

ASSIGNMENT = "a1"
NOTEBOOK = "vectorization.ipynb"

_NAMES = {
    "out": ["out", "dists", "D", "result", "distances", "res", "dist_matrix", "d"],
    "i": ["i", "r", "row", "a", "ii", "n_i"],
    "j": ["j", "c", "col", "b", "jj", "m_j"],
    "n": ["n", "num_test", "N", "n_rows", "rows", "nx"],
    "m": ["m", "num_train", "M", "n_cols", "cols", "ny"],
    "tmp": ["diff", "delta", "d", "tmp", "v", "difference"],
    "sq": ["sq", "squared", "d2", "dist_sq", "s", "sqd"],
    "mx": ["m", "mx", "row_max", "maxes", "c", "shift", "mmax"],
    "e": ["e", "exps", "ex", "exp_z", "num", "expd"],
    "lbl": ["labels", "nearest", "votes", "neighbours", "lab", "knn_labels"],
    "pred": ["pred", "preds", "y_pred", "predictions", "out", "yhat"],
    "idx": ["idx", "order", "ind", "sorted_idx", "nn", "closest"],
    "mu": ["mu", "mean", "means", "avg", "col_mean", "m"],
    "sd": ["sd", "std", "sigma", "stds", "col_std", "s"],
}
_COMMENTS = [
    "compute the result",
    "vectorized version",
    "loop over rows",
    "numerical stability",
    "see lecture 1",
    "shape (N, M)",
    "TODO: check",
    "broadcasting",
    "subtract max",
    "normalize",
]


@dataclass
class Style:
    """One student's habits; every choice point is decided here."""

    rng: np.random.Generator
    method: bool = field(init=False)  # x.sum() rather than np.sum(x)
    positional_axis: bool = field(init=False)
    square: str = field(init=False)
    comments: float = field(init=False)
    names: dict = field(init=False)

    def __post_init__(self):
        r = self.rng
        self.method = bool(r.random() < 0.45)
        self.positional_axis = bool(r.random() < 0.2)
        self.square = str(r.choice(["**", "**", "*", "square"]))
        self.comments = float(r.choice([0.0, 0.1, 0.4]))
        self.names = {k: str(r.choice(v)) for k, v in _NAMES.items()}

    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def pick(self, *options):
        return options[int(self.rng.integers(len(options)))]

    def habit(self, flag: bool) -> bool:
        return flag if self.rng.random() < 0.85 else not flag

    def n(self, role: str) -> str:
        return self.names[role]

    def reduce(self, fn: str, expr: str, axis=None, keepdims=False) -> str:
        simple = re.fullmatch(r"[\w.\[\]]+", expr) is not None
        if axis is None:
            args = ""
        elif self.habit(self.positional_axis) and not keepdims:
            args = f"{axis}"
        else:
            args = f"axis={axis}"
        if keepdims:
            if self.p(0.7):
                args += ", keepdims=True"
                keep = ""
            else:
                keep = self.pick("[:, None]", "[:, np.newaxis]", ".reshape(-1, 1)")
        else:
            keep = ""
        if self.habit(self.method):
            base = f"{expr if simple else '(' + expr + ')'}.{fn}({args})"
        else:
            base = f"np.{fn}({expr}{', ' + args if args else ''})"
        return base + keep

    def sq(self, expr: str) -> str:
        simple = re.fullmatch(r"[\w.\[\]]+", expr) is not None
        choice = self.square if self.p(0.85) else self.pick("**", "*", "square")
        if choice == "*" and simple:
            return f"{expr} * {expr}"
        if choice == "square":
            return f"np.square({expr})"
        return f"{expr if simple else '(' + expr + ')'} ** 2"

    def sqrt(self, expr: str) -> str:
        return f"np.sqrt({expr})" if self.p(0.9) else f"({expr}) ** 0.5"

    def rows(self, x: str) -> str:
        return self.pick(f"{x}.shape[0]", f"len({x})", f"{x}.shape[0]")

    def zeros(self, shape: str) -> str:
        return self.pick(f"np.zeros({shape})", f"np.zeros({shape})", f"np.empty({shape})")

    def comment(self, indent: str = "    ") -> str:
        if self.p(self.comments):
            return f"{indent}# {self.pick(*_COMMENTS)}\n"
        return ""


# -- the algorithms, per answer cell -------------------------------------------------------
def _bs_pad(s: Style) -> str:
    nd = s.pick("ndim", "n", "length", "L")
    a, b = s.pick(("pa", "pb"), ("a", "b"), ("sa", "sb"), ("padded_a", "padded_b"))
    res = s.n("out")
    x, y = s.pick(("x", "y"), ("da", "db"), ("p", "q"))
    check = s.pick(
        f"if {x} != {y} and {x} != 1 and {y} != 1:",
        f"if {x} != {y} and 1 not in ({x}, {y}):",
        f"if not ({x} == {y} or {x} == 1 or {y} == 1):",
    )
    return (
        f"    {nd} = max(len(shape_a), len(shape_b))\n"
        + s.comment()
        + f"    {a} = (1,) * ({nd} - len(shape_a)) + tuple(shape_a)\n"
        f"    {b} = (1,) * ({nd} - len(shape_b)) + tuple(shape_b)\n"
        f"    {res} = []\n"
        f"    for {x}, {y} in zip({a}, {b}):\n"
        f"        {check}\n"
        f'            raise ValueError("shapes do not broadcast")\n'
        f"        {res}.append(max({x}, {y}))\n"
        f"    return tuple({res})\n"
    )


def _bs_reverse(s: Style) -> str:
    res, i = s.n("out"), s.n("i")
    x, y = s.pick(("x", "y"), ("da", "db"), ("p", "q"))
    return (
        f"    {res} = []\n"
        f"    for {i} in range(1, max(len(shape_a), len(shape_b)) + 1):\n"
        f"        {x} = shape_a[-{i}] if {i} <= len(shape_a) else 1\n"
        f"        {y} = shape_b[-{i}] if {i} <= len(shape_b) else 1\n"
        + s.comment("        ")
        + f"        if {x} == 1 or {x} == {y}:\n"
        f"            {res}.append({y})\n"
        f"        elif {y} == 1:\n"
        f"            {res}.append({x})\n"
        f"        else:\n"
        f'            raise ValueError(f"incompatible: {{shape_a}} {{shape_b}}")\n'
        f"    return tuple({res}[::-1])\n"
    )


def _bs_zip_longest(s: Style) -> str:
    res = s.n("out")
    x, y = s.pick(("x", "y"), ("da", "db"), ("p", "q"))
    return (
        "    from itertools import zip_longest\n\n"
        f"    {res} = []\n"
        f"    for {x}, {y} in zip_longest(reversed(shape_a), reversed(shape_b), fillvalue=1):\n"
        f"        if {x} != {y} and min({x}, {y}) != 1:\n"
        f'            raise ValueError("cannot broadcast")\n'
        + s.comment("        ")
        + f"        {res}.insert(0, {x} if {y} == 1 else {y})\n"
        f"    return tuple({res})\n"
    )


def _bs_while(s: Style) -> str:
    a, b, res = s.pick(("a", "b", "res"), ("la", "lb", "out"), ("sa", "sb", "result"))
    return (
        f"    {a}, {b} = list(shape_a), list(shape_b)\n"
        f"    {res} = []\n"
        f"    while {a} or {b}:\n"
        f"        x = {a}.pop() if {a} else 1\n"
        f"        y = {b}.pop() if {b} else 1\n"
        f"        if x == y or y == 1:\n"
        f"            {res}.append(x)\n"
        f"        elif x == 1:\n"
        f"            {res}.append(y)\n"
        f"        else:\n"
        f'            raise ValueError("incompatible shapes")\n'
        f"    {res}.reverse()\n"
        f"    return tuple({res})\n"
    )


def _std_oneliner(s: Style) -> str:
    return (
        s.comment() + f"    return (X - {s.reduce('mean', 'X', 0)}) / {s.reduce('std', 'X', 0)}\n"
    )


def _std_named(s: Style) -> str:
    mu, sd = s.n("mu"), s.n("sd")
    if mu == sd:
        sd += "_"
    return (
        f"    {mu} = {s.reduce('mean', 'X', 0)}\n"
        f"    {sd} = {s.reduce('std', 'X', 0)}\n" + s.comment() + f"    return (X - {mu}) / {sd}\n"
    )


def _std_manual(s: Style) -> str:
    mu, c = s.n("mu"), s.pick("centered", "xc", "Xc", "dev")
    return (
        f"    {mu} = {s.reduce('sum', 'X', 0)} / {s.rows('X')}\n"
        f"    {c} = X - {mu}\n"
        + s.comment()
        + f"    return {c} / {s.sqrt(s.reduce('mean', s.sq(c), 0))}\n"
    )


def _two_range(s: Style) -> str:
    out, i, j, n, m, d = (s.n(k) for k in ("out", "i", "j", "n", "m", "tmp"))
    if s.p(0.5):
        inner = f"            {d} = X[{i}] - Y[{j}]\n            {out}[{i}, {j}] = {s.sqrt(s.reduce('sum', s.sq(d))).replace('  ', ' ')}\n"
    else:
        inner = (
            f"            {out}[{i}, {j}] = {s.sqrt(s.reduce('sum', s.sq(f'X[{i}] - Y[{j}]')))}\n"
        )
    head = (
        f"    {n}, {m} = {s.rows('X')}, {s.rows('Y')}\n"
        if s.p(0.6)
        else f"    {n} = {s.rows('X')}\n    {m} = {s.rows('Y')}\n"
    )
    return (
        head
        + f"    {out} = {s.zeros(f'({n}, {m})')}\n"
        + s.comment()
        + f"    for {i} in range({n}):\n"
        f"        for {j} in range({m}):\n" + inner + f"    return {out}\n"
    )


def _two_enumerate(s: Style) -> str:
    out, i, j = s.n("out"), s.n("i"), s.n("j")
    x, y = s.pick(("x", "y"), ("xi", "yj"), ("p", "q"), ("u", "v"))
    return (
        f"    {out} = {s.zeros('(len(X), len(Y))')}\n"
        f"    for {i}, {x} in enumerate(X):\n"
        f"        for {j}, {y} in enumerate(Y):\n"
        + s.comment("            ")
        + f"            {out}[{i}, {j}] = {s.sqrt(s.reduce('sum', s.sq(f'{x} - {y}')))}\n"
        f"    return {out}\n"
    )


def _two_comprehension(s: Style) -> str:
    x, y = s.pick(("x", "y"), ("a", "b"), ("p", "q"))
    return (
        s.comment()
        + f"    return np.array([[{s.sqrt(s.reduce('sum', s.sq(f'{x} - {y}')))} for {y} in Y] for {x} in X])\n"
    )


def _two_norm(s: Style) -> str:
    out, i, j, n, m = (s.n(k) for k in ("out", "i", "j", "n", "m"))
    return (
        f"    {n} = {s.rows('X')}\n"
        f"    {m} = {s.rows('Y')}\n"
        f"    {out} = {s.zeros(f'({n}, {m})')}\n"
        f"    for {i} in range({n}):\n"
        f"        for {j} in range({m}):\n"
        f"            {out}[{i}][{j}] = np.linalg.norm(X[{i}] - Y[{j}])\n"
        f"    return {out}\n"
    )


def _one_range(s: Style) -> str:
    out, i = s.n("out"), s.n("i")
    target = s.pick(f"{out}[{i}]", f"{out}[{i}, :]")
    shape = "(" + s.rows("X") + ", " + s.rows("Y") + ")"
    return (
        f"    {out} = {s.zeros(shape)}\n"
        f"    for {i} in range({s.rows('X')}):\n"
        + s.comment("        ")
        + f"        {target} = {s.sqrt(s.reduce('sum', s.sq(f'Y - X[{i}]'), 1))}\n"
        f"    return {out}\n"
    )


def _one_list(s: Style) -> str:
    rows, x = s.pick("rows", "out", "dist_rows", "lst"), s.pick("x", "row", "xi", "p")
    return (
        f"    {rows} = []\n"
        f"    for {x} in X:\n"
        f"        {rows}.append({s.sqrt(s.reduce('sum', s.sq(f'Y - {x}'), 1))})\n"
        + s.comment()
        + f"    return np.array({rows})\n"
    )


def _one_expand(s: Style) -> str:
    out, i, sq = s.n("out"), s.n("i"), s.n("sq")
    yy = s.pick("y_sq", "yy", "norms_y", "y2")
    return (
        f"    {yy} = {s.reduce('sum', s.sq('Y'), 1)}\n"
        f"    {out} = {s.zeros('(X.shape[0], Y.shape[0])')}\n"
        f"    for {i} in range(X.shape[0]):\n"
        f"        {sq} = {s.reduce('sum', s.sq(f'X[{i}]'))} + {yy} - 2 * Y @ X[{i}]\n"
        f"        {out}[{i}] = {s.sqrt(f'np.maximum({sq}, 0)')}\n"
        f"    return {out}\n"
    )


def _one_norm(s: Style) -> str:
    out, i = s.n("out"), s.n("i")
    return (
        f"    {out} = {s.zeros('(len(X), len(Y))')}\n"
        f"    for {i} in range(len(X)):\n"
        f"        {out}[{i}] = np.linalg.norm(Y - X[{i}], axis=1)\n"
        + s.comment()
        + f"    return {out}\n"
    )


def _none_expand(s: Style) -> str:
    sq = s.n("sq")
    xx, yy = s.pick(("x_sq", "y_sq"), ("xx", "yy"), ("a2", "b2"), ("nx", "ny"))
    cross = s.pick("X @ Y.T", "np.dot(X, Y.T)", "X.dot(Y.T)", "np.matmul(X, Y.T)")
    clamp = s.pick(f"np.maximum({sq}, 0)", f"np.clip({sq}, 0, None)", f"np.maximum({sq}, 0.0)")
    return (
        f"    {xx} = {s.reduce('sum', s.sq('X'), 1, keepdims=True)}\n"
        f"    {yy} = {s.reduce('sum', s.sq('Y'), 1)}\n"
        + s.comment()
        + f"    {sq} = {xx} + {yy} - 2 * {cross}\n"
        f"    return {s.sqrt(clamp)}\n"
    )


def _none_broadcast(s: Style) -> str:
    d = s.n("tmp")
    lhs = s.pick(
        "X[:, None, :] - Y[None, :, :]", "X[:, np.newaxis] - Y[np.newaxis]", "X[:, None] - Y"
    )
    return (
        f"    {d} = {lhs}\n" + s.comment() + f"    return {s.sqrt(s.reduce('sum', s.sq(d), 2))}\n"
    )


def _none_einsum(s: Style) -> str:
    sq = s.n("sq")
    return (
        f"    {sq} = (\n"
        f"        np.einsum('ij,ij->i', X, X)[:, None]\n"
        f"        + np.einsum('ij,ij->i', Y, Y)[None, :]\n"
        f"        - 2 * np.einsum('ik,jk->ij', X, Y)\n"
        f"    )\n"
        f"    {sq}[{sq} < 0] = 0\n"
        f"    return np.sqrt({sq})\n"
    )


def _knn_bincount(s: Style) -> str:
    idx, lbl, pred, i = s.n("idx"), s.n("lbl"), s.n("pred"), s.n("i")
    sort = s.pick("np.argsort(dists, axis=1)", "dists.argsort(axis=1)", "np.argsort(dists, 1)")
    return (
        f"    {idx} = {sort}[:, :k]\n"
        f"    {lbl} = y_train[{idx}]\n"
        f"    {pred} = np.zeros({s.rows('dists')}, dtype=int)\n"
        + s.comment()
        + f"    for {i} in range({s.rows('dists')}):\n"
        f"        {pred}[{i}] = np.argmax(np.bincount({lbl}[{i}]))\n"
        f"    return {pred}\n"
    )


def _knn_unique(s: Style) -> str:
    pred, row = s.n("pred"), s.pick("row", "d", "r", "dist_row")
    vals, cnt = s.pick(("vals", "counts"), ("labels", "cnt"), ("u", "c"))
    return (
        f"    {pred} = []\n"
        f"    for {row} in dists:\n"
        f"        nearest = y_train[np.argsort({row})[:k]]\n"
        f"        {vals}, {cnt} = np.unique(nearest, return_counts=True)\n"
        + s.comment("        ")
        + f"        {pred}.append({vals}[np.argmax({cnt})])\n"
        f"    return np.array({pred})\n"
    )


def _knn_counter(s: Style) -> str:
    pred = s.n("pred")
    helper = s.pick("_vote", "majority", "most_common_label", "vote")
    return (
        f"    {pred} = [{helper}(y_train[np.argsort(row)[:k]]) for row in dists]\n"
        f"    return np.array({pred})\n\n\n"
        f"def {helper}(labels):\n"
        f"    from collections import Counter\n\n"
        f"    counts = Counter(labels.tolist())\n"
        f"    best = max(counts.values())\n"
        f"    return min(label for label, c in counts.items() if c == best)\n"
    )


def _knn_partition(s: Style) -> str:
    pred, i = s.n("pred"), s.n("i")
    return (
        f"    {pred} = np.empty(len(dists), dtype=np.int64)\n"
        f"    for {i}, row in enumerate(dists):\n"
        f"        near = np.argpartition(row, k - 1)[:k] if k < len(row) else np.arange(len(row))\n"
        f"        {pred}[{i}] = np.bincount(y_train[near]).argmax()\n"
        f"    return {pred}\n"
    )


def _softmax_shift(s: Style) -> str:
    mx, e = s.n("mx"), s.n("e")
    shifted = f"logits - {s.reduce('max', 'logits', 1, keepdims=True)}"
    if s.p(0.5):
        return (
            f"    {mx} = {s.reduce('max', 'logits', 1, keepdims=True)}\n"
            f"    {e} = np.exp(logits - {mx})\n"
            + s.comment()
            + f"    return {e} / {s.reduce('sum', e, 1, keepdims=True)}\n"
        )
    return (
        f"    {e} = np.exp({shifted})\n"
        + s.comment()
        + f"    {e} /= {s.reduce('sum', e, 1, keepdims=True)}\n"
        f"    return {e}\n"
    )


def _softmax_log(s: Style) -> str:
    mx = s.n("mx")
    return (
        f"    {mx} = {s.reduce('max', 'logits', 1, keepdims=True)}\n"
        f"    log_z = {mx} + np.log({s.reduce('sum', f'np.exp(logits - {mx})', 1, keepdims=True)})\n"
        + s.comment()
        + "    return np.exp(logits - log_z)\n"
    )


def _softmax_rows(s: Style) -> str:
    out, i = s.n("out"), s.n("i")
    return (
        f"    {out} = np.zeros_like(logits, dtype=float)\n"
        f"    for {i} in range(logits.shape[0]):\n"
        f"        z = logits[{i}] - logits[{i}].max()\n"
        f"        {out}[{i}] = np.exp(z) / np.exp(z).sum()\n"
        f"    return {out}\n"
    )


def _lse_shift(s: Style) -> str:
    mx = s.n("mx")
    if s.p(0.5):
        return (
            f"    {mx} = {s.reduce('max', 'logits', 1, keepdims=True)}\n"
            + s.comment()
            + f"    return np.log({s.reduce('sum', f'np.exp(logits - {mx})', 1)}) + {mx}.ravel()\n"
        )
    return (
        f"    {mx} = {s.reduce('max', 'logits', 1)}\n"
        f"    total = {s.reduce('sum', f'np.exp(logits - {mx}[:, None])', 1)}\n"
        + s.comment()
        + f"    return {mx} + np.log(total)\n"
    )


def _lse_rows(s: Style) -> str:
    out, row = s.n("out"), s.pick("row", "z", "r")
    return (
        f"    {out} = []\n"
        f"    for {row} in logits:\n"
        f"        c = {row}.max()\n"
        f"        {out}.append(c + np.log(np.exp({row} - c).sum()))\n"
        f"    return np.array({out})\n"
    )


def _lse_squeeze(s: Style) -> str:
    mx = s.n("mx")
    return (
        f"    {mx} = np.amax(logits, axis=1, keepdims=True)\n"
        f"    out = {mx} + np.log(np.sum(np.exp(logits - {mx}), axis=1, keepdims=True))\n"
        + s.comment()
        + "    return np.squeeze(out, axis=1)\n"
    )


#: grade_id -> [(algorithm, popularity)]: the popular way is several times more common.
_VARIANTS = {
    "broadcast_shape": [(_bs_pad, 5), (_bs_reverse, 3), (_bs_zip_longest, 1), (_bs_while, 1)],
    "standardize_columns": [(_std_oneliner, 5), (_std_named, 4), (_std_manual, 1)],
    "distances_two_loops": [
        (_two_range, 6),
        (_two_enumerate, 2),
        (_two_comprehension, 1),
        (_two_norm, 2),
    ],
    "distances_one_loop": [(_one_range, 6), (_one_list, 2), (_one_expand, 1), (_one_norm, 2)],
    "distances_no_loops": [(_none_expand, 6), (_none_broadcast, 3), (_none_einsum, 1)],
    "knn_predict": [(_knn_bincount, 5), (_knn_unique, 3), (_knn_counter, 1), (_knn_partition, 1)],
    "softmax": [(_softmax_shift, 7), (_softmax_log, 2), (_softmax_rows, 1)],
    "logsumexp": [(_lse_shift, 6), (_lse_rows, 2), (_lse_squeeze, 2)],
}


def _header(release_cell: str) -> str:
    """The def line and docstring of a released answer cell (everything before the stub)."""
    keep = []
    for line in release_cell.split("\n"):
        if line.strip() in ("# YOUR CODE HERE", "raise NotImplementedError()"):
            break
        keep.append(line)
    return "\n".join(keep) + "\n"


def released_cells() -> dict[str, str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    nb = submissions.read(root / "assignments" / ASSIGNMENT / NOTEBOOK)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    }


def independent_answers(rng: np.random.Generator, blank: float = 0.08) -> dict[str, str]:
    """One independently written submission: ``{grade_id: cell source}`` (unanswered cells
    are left out, i.e. keep the release's stub)."""
    style = Style(rng)
    release = released_cells()
    answers = {}
    for gid, variants in _VARIANTS.items():
        if rng.random() < blank:
            continue
        weights = np.array([w for _, w in variants], dtype=float)
        algorithm = variants[int(rng.choice(len(variants), p=weights / weights.sum()))][0]
        answers[gid] = _header(release[gid]) + algorithm(style)
    return answers


# -- planted copies ------------------------------------------------------------------------
def _locals(code: str) -> set[str]:
    tree = ast.parse(code)
    names = set()
    params = set()
    defs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            params.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs.add(node.name)
    return names - params - defs


def rename_variables(code: str, rng: np.random.Generator) -> str:
    """Every local variable gets another name (token-level: comments and layout stay)."""
    mapping = {}
    for name in sorted(_locals(code)):
        mapping[name] = str(rng.choice(["tmp", "val", "arr", "res", "q", "w", "z", "k2"])) + (
            f"_{len(mapping)}"
        )
    out = []
    prev = ""
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and tok.string in mapping and prev != ".":
            tok = tok._replace(string=mapping[tok.string])
        out.append(tok)
        prev = tok.string
    return tokenize.untokenize(out)


def change_comments(code: str, rng: np.random.Generator) -> str:
    """Comments removed and others written; docstrings replaced."""
    lines = []
    for line in code.split("\n"):
        stripped = re.sub(r"\s*#.*$", "", line) if "#" in line and '"' not in line else line
        if stripped.strip() or not line.strip():
            lines.append(stripped)
        if stripped.strip().endswith(":") and rng.random() < 0.5:
            indent = len(stripped) - len(stripped.lstrip()) + 4
            lines.append(" " * indent + "# " + str(rng.choice(["my approach", "step", "here"])))
    code = "\n".join(lines)
    return re.sub(r'"""(.|\n)*?"""', '"""My implementation."""', code, count=1)


def reorder_functions(code: str) -> str:
    """The cell's top-level definitions in reverse order."""
    tree = ast.parse(code)
    if len(tree.body) < 2:
        return code
    lines = code.split("\n")
    chunks = []
    for node in tree.body:
        chunks.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
    return "\n\n\n".join(reversed(chunks)) + "\n"


class _LoopStyle(ast.NodeTransformer):
    """for-range loops become while loops; ``x = []; for ...: x.append(e)`` becomes a
    comprehension and a comprehension assigned to a name becomes such a loop."""

    def __init__(self):
        self.changed = 0

    def visit_For(self, node):
        self.generic_visit(node)
        it = node.iter
        if (
            isinstance(it, ast.Call)
            and getattr(it.func, "id", None) == "range"
            and 1 <= len(it.args) <= 2
            and isinstance(node.target, ast.Name)
            and not any(isinstance(n, (ast.Continue, ast.Break)) for n in ast.walk(node))
        ):
            start = it.args[0] if len(it.args) == 2 else ast.Constant(0)
            stop = it.args[-1]
            var = node.target.id
            init = ast.Assign([ast.Name(var, ast.Store())], start)
            step = ast.AugAssign(ast.Name(var, ast.Store()), ast.Add(), ast.Constant(1))
            loop = ast.While(
                ast.Compare(ast.Name(var, ast.Load()), [ast.Lt()], [stop]),
                [*node.body, step],
                [],
            )
            self.changed += 1
            return [init, loop]
        return node

    def _body(self, body):
        out = []
        for stmt in body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.ListComp)
                and len(stmt.value.generators) == 1
                and not stmt.value.generators[0].ifs
            ):
                name = stmt.targets[0].id
                gen = stmt.value.generators[0]
                append = ast.Expr(
                    ast.Call(
                        ast.Attribute(ast.Name(name, ast.Load()), "append", ast.Load()),
                        [stmt.value.elt],
                        [],
                    )
                )
                out += [
                    ast.Assign([ast.Name(name, ast.Store())], ast.List([], ast.Load())),
                    ast.For(gen.target, gen.iter, [append], []),
                ]
                self.changed += 1
            else:
                out.append(stmt)
        return out

    def visit_FunctionDef(self, node):
        node.body = self._body(node.body)
        self.generic_visit(node)
        return node


def change_loop_style(code: str) -> str:
    tree = ast.parse(code)
    tree = _LoopStyle().visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def coursekit_answers() -> dict[str, str]:
    """A student who pastes coursekit's own implementation into each answer cell it has one
    for (renamed to the notebook's function, the release's signature kept, the library's
    private input checks left out)."""
    from coursekit.grading.core import get_task
    from coursekit.instructor.similarity import resolve

    release = released_cells()
    answers = {}
    for gid, cell in release.items():
        try:
            task = get_task(f"{ASSIGNMENT}.{gid}")
        except KeyError:
            continue
        candidates = [resolve(d) for d in task.library_functions] + [task.reference]
        obj = next((c for c in candidates if callable(c) and c.__name__ != "<lambda>"), None)
        if obj is None:
            continue
        source = inspect.cleandoc("\n" + inspect.getsource(obj))
        tree = ast.parse(source)
        fn = tree.body[0]
        header = _header(cell)
        release_params = re.search(r"def \w+\((.*?)\)", header).group(1)
        names = [p.split("=")[0].strip() for p in release_params.split(",")]
        mapping = {a.arg: b for a, b in zip(fn.args.args, names)}
        body_lines = source.split("\n")[fn.body[0].lineno - 1 :]
        if isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant):
            body_lines = source.split("\n")[fn.body[0].end_lineno :]
        body = "\n".join(line for line in body_lines if not re.search(r"= _\w+\(", line))
        body = re.sub(
            r"\b(" + "|".join(map(re.escape, mapping)) + r")\b",
            lambda m, mapping=mapping: mapping[m.group(1)],
            body,
        )
        body = body.replace("axis=axis", "axis=1").replace("_max_shift(", "np.max(")
        answers[gid] = header + body + "\n"
    return answers


COPY_KINDS = ("exact", "renamed", "reordered", "comments", "loops", "all")


def plant_copy(answers: dict[str, str], kind: str, rng: np.random.Generator) -> dict[str, str]:
    """A copy of ``answers`` disguised as ``kind`` (one of :data:`COPY_KINDS`)."""
    out = {}
    for gid, code in answers.items():
        if kind in ("renamed", "all"):
            code = rename_variables(code, rng)
        if kind in ("comments", "all"):
            code = change_comments(code, rng)
        if kind in ("loops", "all"):
            code = change_loop_style(code)
        if kind in ("reordered", "all"):
            code = reorder_functions(code)
        out[gid] = code
    if kind in ("reordered", "all"):
        order = list(out)
        rng.shuffle(order)
        out = {gid: out[gid] for gid in order}
    return out


@dataclass
class SynthesizedClass:
    answers: dict[str, dict[str, str]]  # student -> {grade_id: code}
    planted: set[frozenset]  # pairs of students (or a student and "coursekit") that copied
    kinds: dict[frozenset, str]  # how each planted pair was disguised


def synthesize(size: int, seed: int = 0, copies: float = 0.2, coursekit: float = 0.03):
    """``size`` students: about ``copies * size`` of them copied a classmate (every disguise
    of :data:`COPY_KINDS` in turn), about ``coursekit * size`` pasted coursekit's source
    (some also disguised), the rest wrote their own."""
    rng = np.random.default_rng(seed)
    n_copy = int(round(copies * size))
    n_ck = max(1, int(round(coursekit * size)))
    n_own = size - n_copy - n_ck
    students: dict[str, dict[str, str]] = {}
    for k in range(n_own):
        students[f"s{k:03d}"] = independent_answers(rng)
    planted, kinds = set(), {}
    originals = list(students)
    ck = coursekit_answers()
    for k in range(n_ck):
        name = f"ck{k:02d}"
        kind = COPY_KINDS[k % len(COPY_KINDS)]
        students[name] = plant_copy(ck, kind, rng)
        pair = frozenset((name, "coursekit"))
        planted.add(pair)
        kinds[pair] = kind
    for k in range(n_copy):
        source = str(rng.choice(originals))
        kind = COPY_KINDS[k % len(COPY_KINDS)]
        name = f"c{k:03d}"
        students[name] = plant_copy(students[source], kind, rng)
        pair = frozenset((name, source))
        planted.add(pair)
        kinds[pair] = kind
    return SynthesizedClass(students, planted, kinds)


def write_class(course_root, klass: SynthesizedClass) -> None:
    """``submitted/<student>/a1/vectorization.ipynb`` under ``course_root``."""
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[1]
    released = submissions.read(root / "assignments" / ASSIGNMENT / NOTEBOOK)
    for student, answers in klass.answers.items():
        nb = submissions.fill_answers(released, answers)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        if list(answers) != [g for g in cells if g in answers]:
            # A reordered copy: move its answer cells into the copier's order.
            moved = [cells[g] for g in answers]
            rest = [c for c in nb.cells if c not in moved]
            nb.cells = rest[:1] + moved + rest[1:]
        folder = Path(course_root) / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / NOTEBOOK))
