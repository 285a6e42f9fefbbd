"""Mutation analysis of the hidden tests: do the cases of each grading task kill small bugs?

For every grading task (``coursekit/grading/tasks/aN.py``) this makes *mutants* of the code
that computes the task's answer -- the task's reference, or the coursekit library function a
thin reference wraps (``TARGETS`` below) -- by changing one small thing in its syntax tree:

========== ===============================================================================
operator   what changes
========== ===============================================================================
binop      ``+ - * / // ** @ %`` replaced by a neighbour (``+`` <-> ``-``, ``*`` <-> ``/``...)
swap       the operands of a non-commutative operator (``a - b`` -> ``b - a``) and two
           adjacent positional arguments of a call (``f(a, b)`` -> ``f(b, a)``)
compare    ``<`` <-> ``<=``, ``<`` <-> ``>``, ``==`` <-> ``!=``, ``is`` <-> ``is not`` ...
bool       ``and`` <-> ``or``, ``not x`` -> ``x``, ``-x`` -> ``x``
constant   a number ``c`` -> ``c + 1``, ``c - 1``, ``10 * c``; ``True`` <-> ``False``
keyword    a keyword argument removed (``axis=``, ``keepdims=``, ``ddof=``, ``out=`` ...)
statement  a statement removed (replaced by ``pass``)
inplace    ``x += y`` -> ``x = x + y`` (a copy instead of an in-place update), ``x[...] = y``
           -> ``x = y`` (rebinding instead of writing into the array), ``a.copy()`` -> ``a``
float32    ``np.float64`` -> ``np.float32``; the returned value or the array arguments
           rounded to float32
========== ===============================================================================

Each mutant is compiled in a fresh namespace (a copy of its module's globals), put where the
task's reference finds the original, and graded in-process exactly as a student's function
is: :func:`coursekit.grading.core.collect_outputs` on the task's hidden cases, then
:func:`coursekit.grading.core.judge` (without the diagnoses, which only word the message),
for several seeds. A mutant is *killed* when every seed fails it: a mistake caught on one
seed and missed on another would be a lottery for students. Input validation (``check_*``
calls, ``if ...: raise``) is not mutated: the hidden cases are valid inputs by design.

Every survivor must be either killed by a new hidden case or listed, with a one-line
argument why it computes the same answer on every valid input of the task, in
``tools/equivalent_mutants.json`` (keyed by task and by the mutant's id, which names the
target function, the operator and the change, so it survives edits elsewhere in the file).
Mutants of a *library* function in code that the task's cases never execute (for example
the ``nesterov`` branch of ``coursekit.optim.functional.sgd`` under ``a3.sgd_momentum``) are
outside the task and reported as *unreached*; in a task's own reference, unreached code is
a survivor like any other (a branch the hidden cases never try).

Usage::

    python tools/mutants.py                     # every task, seeds 0 1 2, the report
    python tools/mutants.py a1.softmax a3.adam  # some tasks
    python tools/mutants.py --seeds 0 --json out.json

``tests/test_mutants.py`` runs it in CI on one seed (every mutant, every task).
"""

from __future__ import annotations
import __future__

import argparse
import ast
import contextlib
import copy
import dataclasses
import importlib
import inspect
import json
import signal
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coursekit.grading.core import Task, collect_outputs, get_task, judge, task_names

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS_FILE = ROOT / "tools" / "equivalent_mutants.json"

_T = "coursekit.grading.tasks"

#: What is mutated for each task: the functions (and methods) that compute its answer.
TARGETS: dict[str, tuple[str, ...]] = {
    "a1.broadcast_shape": (f"{_T}.a1.broadcast_shape_reference",),
    "a1.standardize_columns": (f"{_T}.a1.standardize_columns_reference",),
    "a1.distances_two_loops": ("coursekit.ops.pairwise_distances_two_loops",),
    "a1.distances_one_loop": ("coursekit.ops.pairwise_distances_one_loop",),
    "a1.distances_no_loops": ("coursekit.ops.pairwise_distances",),
    "a1.knn_predict": (f"{_T}.a1.knn_predict_reference",),
    "a1.softmax": ("coursekit.ops.softmax", "coursekit.ops._max_shift"),
    "a1.logsumexp": ("coursekit.ops.logsumexp", "coursekit.ops._max_shift"),
    "a2.numerical_gradient": (
        "coursekit.gradcheck.numerical_gradient",
        "coursekit.gradcheck._centered_differences",
    ),
    "a2.numerical_gradient_array": (
        "coursekit.gradcheck.numerical_gradient_array",
        "coursekit.gradcheck._centered_differences",
    ),
    "a2.rel_error": ("coursekit.gradcheck.rel_error",),
    "a2.affine_forward": ("coursekit.layers.affine_forward", "coursekit.layers._flatten_rows"),
    "a2.affine_backward": ("coursekit.layers.affine_backward",),
    "a2.relu": ("coursekit.activations.relu_forward", "coursekit.activations.relu_backward"),
    "a2.sigmoid": (
        "coursekit.activations.sigmoid_forward",
        "coursekit.activations.sigmoid_backward",
    ),
    "a2.tanh": ("coursekit.activations.tanh_forward", "coursekit.activations.tanh_backward"),
    "a2.softmax_loss": ("coursekit.losses.softmax_loss",),
    "a2.two_layer_net": (f"{_T}.a2.two_layer_loss_reference",),
    "a2.scale_shift_backward": (f"{_T}.a2.scale_shift_forward", f"{_T}.a2.scale_shift_backward"),
    "a3.sgd_momentum": (
        f"{_T}.a3.sgd",
        "coursekit.optim.functional.sgd",
        "coursekit.optim.functional.effective_grad",
    ),
    "a3.nesterov": (
        f"{_T}.a3.sgd",
        "coursekit.optim.functional.sgd",
        "coursekit.optim.functional.effective_grad",
    ),
    "a3.adagrad": (
        f"{_T}.a3.adagrad",
        "coursekit.optim.functional.adagrad",
        "coursekit.optim.functional.effective_grad",
    ),
    "a3.rmsprop": (
        f"{_T}.a3.rmsprop",
        "coursekit.optim.functional.rmsprop",
        "coursekit.optim.functional.effective_grad",
    ),
    "a3.adam": (
        f"{_T}.a3.adam",
        f"{_T}.a3._adam_like",
        "coursekit.optim.functional.adam",
        "coursekit.optim.functional.effective_grad",
    ),
    "a3.adamw": (f"{_T}.a3.adamw", f"{_T}.a3._adam_like", "coursekit.optim.functional.adamw"),
    "a3.step_lr": ("coursekit.schedules.step_lr",),
    "a3.cosine_annealing_lr": ("coursekit.schedules.cosine_annealing_lr",),
    "a3.warmup_cosine_lr": (
        f"{_T}.a3.warmup_cosine_lr",
        "coursekit.schedules.warmup",
        "coursekit.schedules.cosine_annealing_lr",
    ),
    "a4.dropout_forward": ("coursekit.dropout.dropout_forward", "coursekit.dropout._keep_mask"),
    "a4.dropout_backward": ("coursekit.dropout.dropout_backward",),
    "a4.batchnorm_forward": ("coursekit.normalization.batchnorm_forward",),
    "a4.batchnorm_backward": ("coursekit.normalization.batchnorm_backward_graph",),
    "a4.batchnorm_backward_alt": ("coursekit.normalization.batchnorm_backward",),
    "a4.layernorm_forward": ("coursekit.normalization.layernorm_forward",),
    "a4.layernorm_backward": ("coursekit.normalization.layernorm_backward",),
    "a5.random_init": (f"{_T}.a5.random_init", "coursekit.init.normal"),
    "a5.xavier_init": (f"{_T}.a5.xavier_init", "coursekit.init.xavier_normal"),
    "a5.he_init": (f"{_T}.a5.he_init", "coursekit.init.kaiming_normal"),
    "a5.layer_statistics": (f"{_T}.a5.layer_statistics",),
    "a5.l2_penalty": ("coursekit.regularization.l2_penalty",),
    "a5.l1_penalty": ("coursekit.regularization.l1_penalty",),
    "a5.max_norm": ("coursekit.regularization.max_norm_",),
    "a5.clip_grad_value": ("coursekit.clipping.clip_grad_value_",),
    "a5.clip_grad_norm": ("coursekit.clipping.clip_grad_norm_",),
    "a5.early_stopping": (
        "coursekit.early_stopping.EarlyStopping.__init__",
        "coursekit.early_stopping.EarlyStopping.step",
        "coursekit.early_stopping.EarlyStopping.is_improvement",
        "coursekit.early_stopping.EarlyStopping.restore",
    ),
}

#: Tasks whose reference is not mutated, and why.
NOT_MUTATED: dict[str, str] = {
    "a5.final_model": "graded on an accuracy threshold of a trained model, not on a formula",
}

SEEDS = (0, 1, 2)
TIMEOUT_SECONDS = 20.0


# -- targets ------------------------------------------------------------------------------
def resolve(dotted: str) -> tuple[Any, Any, str]:
    """``(owner, function, name)``: the module or class holding ``dotted``'s function."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr)
        return owner, inspect.unwrap(getattr(owner, parts[-1])), parts[-1]
    raise ImportError(f"cannot resolve {dotted!r}")


# -- mutation sites -----------------------------------------------------------------------
_BINOP_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult, ast.FloorDiv),
    ast.FloorDiv: (ast.Div,),
    ast.Pow: (ast.Mult,),
    ast.MatMult: (ast.Mult,),
    ast.Mod: (ast.FloorDiv,),
}
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Pow, ast.MatMult, ast.Mod)
_COMPARE_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
_FLOAT32_HELPER = "__mutant_float32__"


def _to_float32(value: Any) -> Any:
    """Round float arrays and floats (also inside tuples, lists and dicts) to float32."""
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    if isinstance(value, list):
        return [_to_float32(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, float):
        return np.float32(value)
    return value


#: Calls that only convert or check arguments (every hidden input is already a float64 array)
#: or set warning filters; their mutants are not graded.
_CONVERSIONS = frozenset(
    {
        "as_array",
        "_as_float",
        "_upstream",
        "check_float_array",
        "errstate",
        "_real",
        "_nonnegative",
        "_nonnegative_int",
        "_positive",
        "_factor",
        "as_named_arrays",
    }
)


def _is_validation(node: ast.AST) -> bool:
    """Argument checks, which valid hidden inputs never trigger."""
    if isinstance(node, (ast.Raise, ast.Assert)):
        return True
    if isinstance(node, ast.If) and not node.orelse:
        return all(isinstance(s, ast.Raise) for s in node.body)
    call = node.value if isinstance(node, (ast.Expr, ast.Assign)) else node
    if isinstance(call, ast.Call):
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name.startswith(("check_", "_check")) or name in _CONVERSIONS
    return False


def _short(node: ast.AST | str, limit: int = 70) -> str:
    text = node if isinstance(node, str) else ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Site:
    """One mutation: ``apply(node)`` on the node at ``index`` in ``ast.walk`` order."""

    index: int
    operator: str
    before: str
    after: str
    line: int
    apply: Callable[[ast.AST], None]
    statement: bool = False  # a statement of the body at ``index`` changes, not the node


def _sites(func: ast.AST) -> list[Site]:
    """Every mutation of ``func``'s body, in a stable order."""
    skipped: set[int] = set()
    statement_of: dict[int, int] = {}
    for node in ast.walk(func):
        if _is_validation(node) or isinstance(node, ast.JoinedStr):
            skipped.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.arguments, ast.arg)) or node is getattr(func, "returns", None):
            skipped.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.stmt):
            for child in ast.walk(node):
                statement_of.setdefault(id(child), getattr(node, "lineno", 0))
    # ast.walk visits parents before children, so the innermost statement wins last:
    for node in ast.walk(func):
        if isinstance(node, ast.stmt):
            for child in ast.walk(node):
                statement_of[id(child)] = node.lineno
    sites: list[Site] = []
    for index, node in enumerate(ast.walk(func)):
        if id(node) in skipped:
            continue
        line = statement_of.get(id(node), getattr(node, "lineno", 0))

        def add(operator, before, after, apply, _index=index, _line=line, _statement=False):
            sites.append(
                Site(_index, operator, _short(before), _short(after), _line, apply, _statement)
            )

        if isinstance(node, ast.BinOp):
            for new in _BINOP_SWAPS.get(type(node.op), ()):
                mutated = ast.BinOp(node.left, new(), node.right)
                add("binop", node, mutated, lambda n, new=new: setattr(n, "op", new()))
            if isinstance(node.op, _NON_COMMUTATIVE):
                mutated = ast.BinOp(node.right, node.op, node.left)
                add("swap", node, mutated, _swap_operands)
        elif isinstance(node, ast.AugAssign):
            for new in _BINOP_SWAPS.get(type(node.op), ()):
                mutated = ast.AugAssign(node.target, new(), node.value)
                add("binop", node, mutated, lambda n, new=new: setattr(n, "op", new()))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                for new in _COMPARE_SWAPS.get(type(op), ()):
                    ops = list(node.ops)
                    ops[k] = new()
                    mutated = ast.Compare(node.left, ops, node.comparators)
                    add(
                        "compare",
                        node,
                        mutated,
                        lambda n, k=k, new=new: n.ops.__setitem__(k, new()),
                    )
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            add(
                "bool",
                node,
                ast.BoolOp(new(), node.values),
                lambda n, new=new: setattr(n, "op", new()),
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            add("bool", node, node.operand, lambda n: setattr(n, "op", ast.UAdd()))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
            for value in _constant_mutations(node.value):
                add(
                    "constant", node, ast.Constant(value), lambda n, v=value: setattr(n, "value", v)
                )
        elif isinstance(node, ast.Attribute) and node.attr == "float64":
            add("float32", node, "np.float32", lambda n: setattr(n, "attr", "float32"))
        if isinstance(node, ast.Call):
            for k, kw in enumerate(node.keywords):
                if kw.arg is not None:
                    callee = _short(node.func, 40)
                    add(
                        "keyword",
                        f"{callee}(..., {kw.arg}={_short(kw.value, 40)})",
                        f"{callee}(...) without {kw.arg}=",
                        _drop_keyword(k),
                        _statement=True,  # the call and keyword name it; no wider context
                    )
            positional = node.args
            for k in range(len(positional) - 1):
                if not any(isinstance(a, ast.Starred) for a in positional[k : k + 2]):
                    mutated = copy.deepcopy(node)
                    mutated.args[k], mutated.args[k + 1] = mutated.args[k + 1], mutated.args[k]
                    add("swap", node, mutated, _swap_args(k))
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "copy"
                and not node.args
                and not node.keywords
            ):
                add("inplace", node, node.func.value, _drop_call("copy"))
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            for k, stmt in enumerate(body):
                if id(stmt) in skipped or _is_docstring(node, field, k):
                    continue
                if isinstance(stmt, (ast.FunctionDef, ast.Pass)):
                    continue
                first = ast.unparse(stmt).splitlines()[0]
                add(
                    "statement",
                    first,
                    "pass",
                    _drop_statement(field, k),
                    _line=stmt.lineno,
                    _statement=True,
                )
                if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                    copied = ast.Assign(
                        [stmt.target], ast.BinOp(stmt.target, stmt.op, stmt.value), lineno=0
                    )
                    add(
                        "inplace",
                        stmt,
                        copied,
                        _augassign_as_copy(field, k),
                        _line=stmt.lineno,
                        _statement=True,
                    )
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Subscript)
                    and isinstance(stmt.targets[0].value, ast.Name)
                    and _whole_array(stmt.targets[0].slice)
                ):
                    rebind = ast.Assign([stmt.targets[0].value], stmt.value, lineno=0)
                    add(
                        "inplace",
                        stmt,
                        rebind,
                        _rebind(field, k),
                        _line=stmt.lineno,
                        _statement=True,
                    )
                if isinstance(stmt, ast.Return) and stmt.value is not None:
                    add(
                        "float32",
                        stmt,
                        f"return {_FLOAT32_HELPER}(...)",
                        _return_float32(field, k),
                        _line=stmt.lineno,
                        _statement=True,
                    )
    params = [a.arg for a in func.args.posonlyargs + func.args.args if a.arg not in ("self", "cls")]
    if params:
        sites.append(
            Site(
                0,
                "float32",
                "the array arguments",
                "rounded to float32",
                func.lineno,
                _inputs_float32,
            )
        )
    return sites


def _constant_mutations(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    out = []
    for new in (value + 1, value - 1, value * 10):
        if new != value and new not in out:
            out.append(new)
    return out


def _is_docstring(parent: ast.AST, field: str, k: int) -> bool:
    body = getattr(parent, field)
    return (
        k == 0
        and field == "body"
        and isinstance(parent, (ast.FunctionDef, ast.ClassDef, ast.Module))
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


def _whole_array(index: ast.AST) -> bool:
    """``...`` or ``:`` (a write into the whole array)."""
    if isinstance(index, ast.Constant) and index.value is Ellipsis:
        return True
    return isinstance(index, ast.Slice) and not (index.lower or index.upper or index.step)


def _swap_operands(node):
    node.left, node.right = node.right, node.left


def _drop_keyword(k):
    return lambda node: node.keywords.pop(k)


def _swap_args(k):
    def apply(node):
        node.args[k], node.args[k + 1] = node.args[k + 1], node.args[k]

    return apply


def _drop_call(_name):
    def apply(node):
        # a.copy() -> a: a call of the identity with the receiver as argument.
        node.func, node.args, node.keywords = (
            ast.Name("__mutant_identity__", ast.Load()),
            [node.func.value],
            [],
        )

    return apply


def _replace_statement(field, k, make):
    def apply(node):
        body = getattr(node, field)
        body[k] = make(body[k])

    return apply


def _drop_statement(field, k):
    return _replace_statement(field, k, lambda stmt: ast.Pass())


def _augassign_as_copy(field, k):
    def make(stmt):
        target_load = ast.Name(stmt.target.id, ast.Load())
        return ast.Assign([stmt.target], ast.BinOp(target_load, stmt.op, stmt.value))

    return _replace_statement(field, k, make)


def _rebind(field, k):
    def make(stmt):
        return ast.Assign([ast.Name(stmt.targets[0].value.id, ast.Store())], stmt.value)

    return _replace_statement(field, k, make)


def _return_float32(field, k):
    def make(stmt):
        call = ast.Call(ast.Name(_FLOAT32_HELPER, ast.Load()), [stmt.value], [])
        return ast.Return(call)

    return _replace_statement(field, k, make)


def _inputs_float32(func):
    names = [a.arg for a in func.args.posonlyargs + func.args.args if a.arg not in ("self", "cls")]
    targets = ast.Tuple([ast.Name(n, ast.Store()) for n in names], ast.Store())
    values = ast.Tuple(
        [
            ast.Call(ast.Name(_FLOAT32_HELPER, ast.Load()), [ast.Name(n, ast.Load())], [])
            for n in names
        ],
        ast.Load(),
    )
    func.body.insert(0, ast.Assign([targets], values))


# -- mutants --------------------------------------------------------------------------------
@dataclass
class Mutant:
    task: str
    target: str
    operator: str
    id: str
    line: int
    reached: bool = True
    code: Any = None  # the compiled function
    seeds_failed: tuple[int, ...] = ()
    seeds_run: tuple[int, ...] = ()
    error: str | None = None

    @property
    def killed(self) -> bool:
        return bool(self.seeds_run) and len(self.seeds_failed) == len(self.seeds_run)

    @property
    def flaky(self) -> bool:
        return 0 < len(self.seeds_failed) < len(self.seeds_run)


def _source_tree(fn) -> tuple[ast.Module, str]:
    lines, start = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    ast.increment_lineno(tree, start - 1)
    func = tree.body[0]
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise RuntimeError(f"the source of {fn.__qualname__} changed on disk since it was imported")
    func.decorator_list = []
    return tree, inspect.getsourcefile(fn) or "<mutant>"


def _compile(tree: ast.Module, filename: str, fn) -> Callable:
    namespace = dict(fn.__globals__)
    namespace[_FLOAT32_HELPER] = _to_float32
    namespace["__mutant_identity__"] = lambda a: a
    ast.fix_missing_locations(tree)
    flags = __future__.annotations.compiler_flag
    code = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    if fn.__closure__:
        raise ValueError(f"{fn.__qualname__} is a closure; mutate its enclosing function instead")
    exec(code, namespace)
    new = namespace[tree.body[0].name]
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    if fn.__kwdefaults__:
        new.__kwdefaults__ = dict(fn.__kwdefaults__)
    return new


def _context(original: ast.AST, mutated: ast.AST, index: int) -> tuple[str, str]:
    """The mutated node's smallest enclosing expression long enough to read, before and after.

    ``ast.walk`` is breadth first, so an ancestor's index is the same in both trees.
    """
    nodes = list(ast.walk(original))
    parent = {id(c): i for i, n in enumerate(nodes) for c in ast.iter_child_nodes(n)}
    k = index
    while len(ast.unparse(nodes[k])) < 25 and id(nodes[k]) in parent:
        up = parent[id(nodes[k])]
        if isinstance(nodes[up], ast.stmt) and not isinstance(nodes[k], ast.expr):
            break
        if isinstance(nodes[up], (ast.FunctionDef, ast.For, ast.If, ast.While, ast.With)):
            break
        if isinstance(nodes[k], ast.keyword):  # "name=value" says enough
            break
        k = up
    mutated_nodes = list(ast.walk(mutated))
    after = mutated_nodes[k]
    if isinstance(nodes[k], ast.keyword) and id(nodes[k]) in parent:
        callee = _short(nodes[parent[id(nodes[k])]].func, 40)
        return f"{callee}(..., {_short(nodes[k])})", f"{callee}(..., {_short(after)})"
    if isinstance(after, ast.stmt):
        return _short(ast.unparse(nodes[k]).splitlines()[0], 90), _short(
            ast.unparse(after).splitlines()[0], 90
        )
    return _short(nodes[k], 90), _short(after, 90)


def make_mutants(task_name: str) -> list[Mutant]:
    """All mutants of ``task_name``'s targets (compiled, not yet graded), ids unique."""
    mutants: list[Mutant] = []
    for dotted in TARGETS[task_name]:
        _, fn, _ = resolve(dotted)
        tree, filename = _source_tree(fn)
        original = ast.unparse(tree)
        seen_sources = {original}
        counts: dict[str, int] = {}
        short_target = dotted.removeprefix("coursekit.").removeprefix("grading.tasks.")
        for site in _sites(tree.body[0]):
            mutated = copy.deepcopy(tree)
            if site.operator == "float32" and site.before == "the array arguments":
                site.apply(mutated.body[0])
            else:
                node = list(ast.walk(mutated.body[0]))[site.index]
                site.apply(node)
            try:
                text = ast.unparse(mutated)
            except Exception:  # noqa: BLE001 - an unprintable tree is not a mutant
                continue
            if text in seen_sources:
                continue
            seen_sources.add(text)
            before, after = site.before, site.after
            if not site.statement and site.before != "the array arguments":
                before, after = _context(tree.body[0], mutated.body[0], site.index)
            base = f"{short_target}: {site.operator}: {before} -> {after}"
            counts[base] = counts.get(base, 0) + 1
            mutant_id = base if counts[base] == 1 else f"{base} #{counts[base]}"
            try:
                compiled = _compile(mutated, filename, fn)
            except SyntaxError:
                continue
            mutants.append(
                Mutant(task_name, dotted, site.operator, mutant_id, site.line, code=compiled)
            )
    return mutants


# -- coverage of the reference on the hidden cases ----------------------------------------
def executed_lines(task: Task, seeds) -> set[tuple[str, int]]:
    """``(filename, line)`` executed in the task's targets while the reference runs the cases."""
    ranges = []
    for dotted in TARGETS[task.name]:
        _, fn, _ = resolve(dotted)
        lines, start = inspect.getsourcelines(fn)
        ranges.append((inspect.getsourcefile(fn), start, start + len(lines)))
    hits: set[tuple[str, int]] = set()

    def local(frame, event, arg):
        if event == "line":
            hits.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def tracer(frame, event, arg):
        code = frame.f_code
        for filename, lo, hi in ranges:
            if code.co_filename == filename and lo <= code.co_firstlineno < hi:
                return local
        return None

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        with _quiet():
            for seed in seeds:
                collect_outputs(task, task.reference, seed)
    finally:
        sys.settrace(old)
    return hits


# -- grading a mutant ---------------------------------------------------------------------
class MutantTimeout(BaseException):
    """A mutant ran longer than ``TIMEOUT_SECONDS`` (not an ``Exception``: no case catches it)."""


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _time_limit(seconds: float):
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise MutantTimeout(f"more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    start = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer:  # an enclosing alarm (pytest-timeout's, say) keeps what was left of it
            left = outer - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


@contextlib.contextmanager
def installed(dotted: str, replacement: Callable) -> Iterator[None]:
    """Put ``replacement`` wherever coursekit holds ``dotted``'s function, then put it back."""
    owner, original, name = resolve(dotted)
    undo: list[Callable[[], None]] = []
    if inspect.isclass(owner):
        setattr(owner, name, replacement)
        undo.append(lambda: setattr(owner, name, original))
    else:
        for module_name, module in list(sys.modules.items()):
            if not module_name.startswith("coursekit") or module is None:
                continue
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, replacement)
                    undo.append(lambda m=module, a=attr: setattr(m, a, original))
                elif isinstance(value, dict):
                    for key, item in list(value.items()):
                        if item is original:
                            value[key] = replacement
                            undo.append(lambda d=value, k=key: d.__setitem__(k, original))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


def _student_function(task: Task, original, replacement):
    if isinstance(task.reference, tuple):
        return tuple(replacement if f is original else f for f in task.reference)
    return replacement if task.reference is original else task.reference


def grade(mutant: Mutant, seeds=SEEDS) -> Mutant:
    """Grade one mutant with the task's hidden cases on every seed (diagnoses left out)."""
    task = dataclasses.replace(get_task(mutant.task), mistakes=())
    _, original, _ = resolve(mutant.target)
    student = _student_function(task, original, mutant.code)
    failed = []
    for seed in seeds:
        try:
            with _quiet(), _time_limit(TIMEOUT_SECONDS):
                with installed(mutant.target, mutant.code):
                    outcomes = collect_outputs(task, student, seed)
        except MutantTimeout as exc:
            mutant.error = f"timeout ({exc})"
            failed.append(seed)
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a case generator broken by the mutant
            mutant.error = f"{type(exc).__name__}: {exc}"
            failed.append(seed)
            continue
        with _quiet():
            if not judge(task, seed, outcomes).passed:
                failed.append(seed)
    mutant.seeds_failed, mutant.seeds_run = tuple(failed), tuple(seeds)
    return mutant


def analyse(task_name: str, seeds=SEEDS) -> list[Mutant]:
    """Every mutant of ``task_name``, graded; unreached library code is marked, not graded."""
    task = get_task(task_name)
    hits = executed_lines(task, seeds)
    mutants = make_mutants(task_name)
    for mutant in mutants:
        _, fn, _ = resolve(mutant.target)
        filename = inspect.getsourcefile(fn)
        mutant.reached = (filename, mutant.line) in hits
        library = not mutant.target.startswith(_T + ".")
        if library and not mutant.reached:
            continue
        grade(mutant, seeds)
    return mutants


# -- equivalents and the report -----------------------------------------------------------
def load_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[str, dict[str, str]]:
    """``{task: {mutant id: one-line argument}}``."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


@dataclass
class TaskReport:
    task: str
    mutants: int
    unreached: int
    killed: int
    flaky: list[str]
    survivors: list[str]
    explained: list[str]
    unexplained: list[str]
    stale: list[str]  # listed as equivalent but killed on every seed (or no longer made)
    contradicted: list[str]  # listed as equivalent but failed on some seed: not equivalent
    seconds: float

    @property
    def graded(self) -> int:
        return self.mutants - self.unreached

    @property
    def kill_rate(self) -> float:
        return self.killed / max(self.graded, 1)


def report_task(task_name: str, seeds=SEEDS, equivalents=None) -> TaskReport:
    equivalents = load_equivalents() if equivalents is None else equivalents
    listed = equivalents.get(task_name, {})
    start = time.perf_counter()
    mutants = analyse(task_name, seeds)
    seconds = time.perf_counter() - start
    graded = [m for m in mutants if m.seeds_run]
    survivors = [m.id for m in graded if not m.killed]
    by_id = {m.id: m for m in mutants}
    stale = [i for i in listed if i not in by_id or by_id[i].killed]
    contradicted = [i for i in listed if i in by_id and by_id[i].flaky]
    return TaskReport(
        task=task_name,
        mutants=len(mutants),
        unreached=len(mutants) - len(graded),
        killed=sum(m.killed for m in graded),
        flaky=[m.id for m in graded if m.flaky],
        survivors=survivors,
        explained=[i for i in survivors if i in listed],
        unexplained=[i for i in survivors if i not in listed],
        stale=stale,
        contradicted=contradicted,
        seconds=seconds,
    )


def course_tasks() -> list[str]:
    return [n for n in task_names() if n.split(".")[0][:1] == "a" and n not in NOT_MUTATED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="task names (default: every task)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--json", type=Path, help="write the per-task report as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="list explained survivors too")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="remove stale entries (now killed, or no longer made) from the equivalents file",
    )
    args = parser.parse_args(argv)
    names = args.tasks or course_tasks()
    reports = []
    totals: dict[str, list[int]] = {}
    for name in names:
        r = report_task(name, tuple(args.seeds))
        reports.append(r)
        t = totals.setdefault(name.split(".")[0], [0, 0, 0, 0, 0])
        for k, v in enumerate(
            (r.mutants, r.graded, r.killed, len(r.explained), len(r.unexplained))
        ):
            t[k] += v
        print(
            f"{name:28s} mutants {r.mutants:4d}  graded {r.graded:4d}  killed {r.killed:4d} "
            f"({r.kill_rate:6.1%})  equivalent {len(r.explained):3d}  "
            f"unexplained {len(r.unexplained):3d}  {r.seconds:5.1f} s"
        )
        for i in r.unexplained:
            print(f"    SURVIVOR {i}")
        for i in r.stale:
            print(f"    STALE EQUIVALENT {i}")
        for i in r.contradicted:
            print(f"    NOT EQUIVALENT (fails on some seeds) {i}")
        if args.verbose:
            for i in r.explained:
                print(f"    equivalent {i}")
    print()
    for aid, (n, graded, killed, explained, unexplained) in sorted(totals.items()):
        print(
            f"{aid}: {n} mutants, {graded} graded, {killed} killed ({killed / max(graded, 1):.1%}), "
            f"{explained} equivalent, {unexplained} unexplained"
        )
    if args.prune:
        data = json.loads(EQUIVALENTS_FILE.read_text())
        for r in reports:
            for stale in r.stale:
                data.get(r.task, {}).pop(stale, None)
        EQUIVALENTS_FILE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in reports], indent=1))
    return 1 if any(r.unexplained or r.stale or r.contradicted for r in reports) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
