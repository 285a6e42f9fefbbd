"""The one grading helper that every hidden test goes through.

A *task* says how an assignment function is graded: the reference implementation, a
seeded generator of test cases (several shapes and the edge cases), how to call a function
on a case, the tolerance, and a list of known mistakes used to diagnose a wrong answer.
A hidden test cell is then a single line::

    check("a1.softmax", softmax, seed=2024)

Grading is split in two halves on purpose:

* :func:`collect_outputs` runs the *student's* function on the cases and turns the results
  into plain float64 ndarrays (no subclasses, no objects) or a recorded exception;
* :func:`judge` compares those plain arrays with the reference on the same cases.

``check`` does both in one process: that is how maintainers and instructors try a function
by hand. ``coursekit grade`` never lets a hidden test run in the student's kernel: it draws the
cases itself from a course secret (:func:`case_rng`), runs only the first half in a fresh
sandboxed process that holds the student's definitions and nothing of the grader
(:mod:`coursekit.grading.runner`), and judges the plain outputs in its own process
(:mod:`coursekit.instructor.hidden`). Failure messages name the case by its label ("batch of
1", "large logits"), never its inputs, and never print reference code.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coursekit.grading.arrays import decode_array, encode_array


@dataclass(frozen=True)
class Case:
    """One input to grade on. ``label`` is what a student sees in a failure message.

    ``grader`` holds what only the grader may know about the case (the labels of held-out
    data, the spread a draw must have): it never reaches the student's function or the
    process it runs in (:meth:`public`), and only :attr:`Task.derive` reads it.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    grader: dict = field(default_factory=dict)

    def public(self) -> Case:
        """The case without its grader-only data: what a harness and a student see."""
        return Case(self.label, self.args, self.kwargs) if self.grader else self


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation, with the message that explains it.

    If a wrong answer matches ``implementation``'s output on a failing case, the message
    is shown ("matches Adam without bias correction: ...").
    """

    message: str
    implementation: Callable


def call_with_case(fn: Callable, case: Case) -> Any:
    """The default way to run a function on a case: ``fn(*args, **kwargs)``."""
    return fn(*case.args, **case.kwargs)


@dataclass(frozen=True)
class Task:
    """How one assignment function is graded.

    Attributes
    ----------
    name : str
        ``"aN.function"``, the name hidden tests pass to :func:`check`.
    reference : callable, or tuple of callables
        The correct implementation (a ``(forward, backward)`` tuple for layer tasks).
    cases : callable
        ``cases(rng) -> [Case, ...]``: several shapes and the edge cases, drawn from the
        seeded generator so that the same seed always gives the same cases.
    rtol, atol : float
        Tolerances of :func:`numpy.isclose`, loose enough for any correct float64 formula.
    run : callable
        ``run(fn, case) -> result``: how to call a function (or tuple of functions) on a case.
    mistakes : tuple of Mistake
        Known wrong implementations used to explain a failure.
    description : str
        One line for instructors' reports.
    library_functions : tuple of str
        Dotted names of the coursekit functions that implement the answer (for example
        ``"coursekit.ops.softmax"``). They cannot be imported where the hidden cases run, and
        a submission that names them is flagged by the static integrity check.
    notebook_state : bool
        The graded function needs values the notebook computed (a trained model): the grader
        passes the notebook variables it uses, in plain form, to the process that runs the
        hidden cases (:mod:`coursekit.grading.state`). Such a task is run in a process of its
        own, apart from the assignment's other tasks.
    needs_torch : bool
        PyTorch stays importable where the hidden cases run (it is hidden otherwise).
    derive : callable, optional
        ``derive(plain_outputs, case) -> plain``: what is compared, computed in the grader
        from the plain outputs (the student's and the reference's alike) and the case's
        grader-only data (an accuracy from predictions and held-out labels, a spread relative
        to its target). ``run`` executes where the student's code runs, so any verdict it
        computed there could be forged; ``derive`` cannot.
    """

    name: str
    reference: Callable
    cases: Callable[[np.random.Generator], Sequence[Case]]
    rtol: float = 1e-6
    atol: float = 1e-8
    run: Callable[[Callable, Case], Any] = call_with_case
    mistakes: tuple[Mistake, ...] = ()
    description: str = ""
    library_functions: tuple[str, ...] = ()
    notebook_state: bool = False
    needs_torch: bool = False
    derive: Callable[[Any, Case], Any] | None = None

    def evaluate(self, plain: Any, case: Case) -> Any:
        """The compared value of ``plain`` outputs on ``case`` (:attr:`derive`, if any)."""
        return plain if self.derive is None else to_plain(self.derive(plain, case))

    def draw_cases(self, seed: int, secret: bytes | None = None) -> list[Case]:
        """The hidden cases of the check ``seed`` (see :func:`case_rng`)."""
        return list(self.cases(case_rng(self.name, seed, secret)))


def case_rng(task_name: str, seed: int, secret: bytes | None = None) -> np.random.Generator:
    """The generator a hidden check draws its cases from.

    Without a secret it is ``default_rng(seed)`` (a maintainer trying a task by hand). With
    the course secret it is seeded by ``HMAC-SHA256(secret, "task@seed")``: stable across
    reruns, so grades are reproducible, but unknown to anyone who cannot read the secret,
    so no table of answers prepared from the hidden-test source can match. Changing the
    secret changes every input.
    """
    if secret is None:
        return np.random.default_rng(int(seed))
    digest = hmac.new(secret, f"{task_name}@{int(seed)}".encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


class GradingError(AssertionError):
    """Raised by :func:`check` when a function fails a hidden test."""


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in _REGISTRY:
        raise ValueError(f"grading task {task.name!r} is already registered")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    _load_all_tasks()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown grading task {name!r}; known tasks: {known}") from None


def task_names() -> list[str]:
    _load_all_tasks()
    return sorted(_REGISTRY)


def _load_all_tasks() -> None:
    from coursekit.grading import tasks  # noqa: F401  (registers on import)


# -- plain data ---------------------------------------------------------------------------
def to_plain(value: Any) -> Any:
    """Convert a result into plain data: float64/int64 base ndarrays, tuples, dicts of those.

    Booleans become int64, a list of numbers becomes an array, a tuple stays a tuple (several
    return values).

    Subclasses are stripped (a lying ndarray subclass becomes its underlying numbers), and
    anything that is not numeric raises ``TypeError``.
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(to_plain(v) for v in value)
    if isinstance(value, list):
        # A list of numbers is an array a student built by hand; anything else is a sequence.
        try:
            as_array = np.asarray(value)
        except ValueError:
            as_array = None
        if as_array is not None and as_array.dtype.kind in "iubf":
            return to_plain(as_array)
        return tuple(to_plain(v) for v in value)
    if isinstance(value, np.ndarray) or np.isscalar(value):
        arr = np.array(np.asarray(value).view(np.ndarray), copy=True)
        if arr.dtype.kind in "iub":
            return arr.astype(np.int64)
        if arr.dtype.kind == "f":
            return arr.astype(np.float64)
        raise TypeError(f"expected numbers, got an array of dtype {arr.dtype}")
    raise TypeError(f"expected a number or an array, got {type(value).__name__[:40]}")


@dataclass
class Outcome:
    """What a function produced on one case: plain outputs, or the error it raised."""

    label: str
    output: Any = None
    error: str | None = None
    #: Where in the student's code the error was raised ("cell 5, line 3: return x / y").
    where: str | None = None


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    return encode_array(value)


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"malformed outcome record: {type(value).__name__}")
    if "dict" in value:
        return {str(k): _decode(v) for k, v in value["dict"].items()}
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    return decode_array(value, kinds="if")


def outcome_record(outcome: Outcome) -> dict:
    """An outcome as a JSON-ready record (arrays as exact bytes: :mod:`~.arrays`)."""
    return {
        "label": outcome.label,
        "error": outcome.error,
        "where": outcome.where,
        "output": None if outcome.error else _encode(outcome.output),
    }


def outcome_from_record(rec: Any) -> Outcome:
    """Inverse of :func:`outcome_record`; rejects anything but numbers, tuples and dicts."""
    if not isinstance(rec, dict):
        raise ValueError(f"malformed outcome record: {type(rec).__name__}")
    error = rec.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError("an outcome's error must be a string")
    where = rec.get("where")
    output = None if error is not None else _decode(rec["output"])
    return Outcome(
        str(rec["label"]),
        output=output,
        error=error,
        where=where if isinstance(where, str) else None,
    )


def outcomes_to_json(outcomes: Sequence[Outcome]) -> str:
    """Serialize outcomes as JSON (exact float64 round trip; NaN and inf allowed).

    This is how plain outputs leave an untrusted process: :func:`outcomes_from_json` in the
    grader's process rebuilds them without unpickling anything.
    """
    return json.dumps([outcome_record(o) for o in outcomes])


def outcomes_from_json(text: str) -> list[Outcome]:
    """Inverse of :func:`outcomes_to_json`; rejects anything but numbers, tuples and dicts."""
    records = json.loads(text)
    if not isinstance(records, list):
        raise ValueError("outcome JSON must be a list of records")
    return [outcome_from_record(rec) for rec in records]


def run_case(run: Callable, fn: Callable, case: Case) -> Outcome:
    """One case: ``run(fn, case)`` on a fresh copy of its inputs, as plain outputs."""
    try:
        out = run(fn, copy.deepcopy(case))
    except Exception as exc:  # noqa: BLE001 - a student's error is a result
        return Outcome(
            case.label, error=f"raised {type(exc).__name__}: {_short(exc)}", where=student_line(exc)
        )
    try:
        return Outcome(case.label, output=to_plain(out))
    except TypeError as exc:
        return Outcome(case.label, error=f"returned an unusable result: {_short(exc, 120)}")


def _short(exc: BaseException, limit: int = 200) -> str:
    """An exception's message, cut to ``limit`` characters (it is the student's text: it
    must not carry the hidden inputs out in a feedback page)."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + " [...]"


def student_line(exc: BaseException) -> str | None:
    """``"cell 5, line 3: return x / y"``: the innermost line of the student's code in the
    traceback (the hidden-case runner compiles each unit of it as ``<cell N>``)."""
    import traceback

    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<cell "):
            where = f"{frame.filename.strip('<>')}, line {frame.lineno}"
            if frame.line:
                where += f": {frame.line.strip()}"
    return where


def collect_outputs(
    task: Task, fn: Callable, seed: int, secret: bytes | None = None
) -> list[Outcome]:
    """Run ``fn`` on the task's cases; each case gets fresh copies of its inputs."""
    return [run_case(task.run, fn, case.public()) for case in task.draw_cases(seed, secret)]


# -- comparison ---------------------------------------------------------------------------
def describe_mismatch(got: Any, want: Any, rtol: float, atol: float, where: str = "") -> str | None:
    """``None`` if ``got`` matches ``want``; otherwise a short description of the difference."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"expected a dict with keys {sorted(want)}"
        for key in want:
            msg = describe_mismatch(got[key], want[key], rtol, atol, f"{where}[{key!r}]")
            if msg:
                return msg
        return None
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            return f"expected {len(want)} return values{where and ' in ' + where}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = describe_mismatch(g, w, rtol, atol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(got, (tuple, dict)):
        return f"expected a single array{where and ' for ' + where}, got {type(got).__name__}"
    label = f"output{where}"
    if got.shape != want.shape:
        return f"{label} has shape {got.shape}, expected {want.shape}"
    if want.dtype.kind == "i":
        if got.dtype.kind == "f" and not np.all(got == np.round(got)):
            return f"{label} should hold integers"
        wrong = int(np.count_nonzero(got != want))
        return f"{label}: {wrong} of {want.size} entries are wrong" if wrong else None
    if np.isnan(got).any() and not np.isnan(want).any():
        return f"{label} contains NaN (overflow or 0/0?)"
    if np.isinf(got).any() and not np.isinf(want).any():
        return f"{label} contains inf (overflow?)"
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    denom = np.maximum(np.abs(want), atol)
    err = float(np.max(np.abs(got - want)[~close] / denom[~close]))
    return f"{label}: {int((~close).sum())} of {want.size} entries differ (max relative error {err:.2e})"


@dataclass
class Verdict:
    task: str
    passed: bool
    cases: int
    failures: list[str]

    def message(self) -> str:
        head = f"{self.task}: {self.cases - len(self.failures)}/{self.cases} hidden cases passed"
        return "\n".join([head, *("  - " + f for f in self.failures)])


def judge(
    task: Task, seed: int, outcomes: Sequence[Outcome], secret: bytes | None = None
) -> Verdict:
    """Compare recorded outcomes with the reference on the same seeded cases."""
    with np.errstate(all="ignore"):  # a diagnosis may overflow on purpose; stay quiet
        return _judge(task, seed, outcomes, secret)


def _judge(task: Task, seed: int, outcomes: Sequence[Outcome], secret: bytes | None) -> Verdict:
    from coursekit.grading.diagnose import explain_error, explain_mismatch

    cases = task.draw_cases(seed, secret)
    failures: list[str] = []
    if len(outcomes) != len(cases):
        failures.append(f"expected results for {len(cases)} cases, got {len(outcomes)}")
        return Verdict(task.name, False, len(cases), failures)
    for index, (case, outcome) in enumerate(zip(cases, outcomes)):
        if outcome.error is not None:
            hint = explain_error(outcome.error)
            failures.append(
                f"case '{case.label}': {outcome.error}" + (f"\n    hint: {hint}" if hint else "")
            )
            continue
        want = _expected(task, seed, secret, index, case)
        try:
            got = task.evaluate(outcome.output, case)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            failures.append(f"case '{case.label}': returned an unusable result ({exc})")
            continue
        problem = describe_mismatch(got, want, task.rtol, task.atol)
        if problem is None:
            continue
        # What differs and where (case, index, expected vs got, a relation if one holds).
        problem = explain_mismatch(got, want, task.rtol, task.atol) or problem
        hint = _diagnose(task, case, got)
        failures.append(f"case '{case.label}': {problem}" + (f"\n    hint: {hint}" if hint else ""))
    return Verdict(task.name, not failures, len(cases), failures)


#: The reference's answers already computed in this process:
#: ``key -> (task, its reference, answer)``.
_EXPECTED: dict[tuple, tuple[Task, Callable, Any]] = {}
_EXPECTED_LIMIT = 4096


def _expected(task: Task, seed: int, secret: bytes | None, index: int, case: Case) -> Any:
    """The reference's evaluated answer to case ``index`` of ``task.draw_cases(seed, secret)``.

    The cases are a function of ``(seed, secret)`` alone. The grader's secret is keyed by the
    submission's definitions, so the same code regraded, or the same code handed in twice,
    meets stored answers; otherwise :func:`prepare_expected` fills the store while the
    notebook runs, so the judge does not wait for the reference. A copy is returned so that
    no comparison can change the stored answer.
    """
    return copy.deepcopy(_stored_answer(task, seed, secret, index, case))


def _stored_answer(task: Task, seed: int, secret: bytes | None, index: int, case: Case) -> Any:
    key = (task.name, seed, secret, index)
    stored = _EXPECTED.get(key)
    if stored is None or stored[0] is not task or stored[1] is not task.reference:
        want = task.evaluate(to_plain(task.run(task.reference, copy.deepcopy(case.public()))), case)
        if len(_EXPECTED) >= _EXPECTED_LIMIT:
            _EXPECTED.clear()
        stored = _EXPECTED[key] = (task, task.reference, want)
    return stored[2]


def prepare_expected(task: Task, seed: int, secret: bytes | None = None) -> None:
    """Compute the reference's answers to every case of the check ``seed`` ahead of
    :func:`judge` (which then finds them stored). They depend only on the task, the seed and
    the secret, so the grader can compute them while the student's notebook runs."""
    with np.errstate(all="ignore"):
        for index, case in enumerate(task.draw_cases(seed, secret)):
            _stored_answer(task, seed, secret, index, case)


def _diagnose(task: Task, case: Case, got: Any) -> str | None:
    for mistake in task.mistakes:
        try:
            raw = to_plain(task.run(mistake.implementation, copy.deepcopy(case.public())))
            wrong = task.evaluate(raw, case)
        except Exception:  # noqa: BLE001 - a diagnosis that does not apply is skipped
            continue
        if describe_mismatch(got, wrong, task.rtol, task.atol) is None:
            return mistake.message
    return None


def check(task_name: str, fn: Callable, *, seed: int) -> None:
    """Grade ``fn`` on the hidden cases of ``task_name``; raise :class:`GradingError` on failure.

    ``fn`` is the student's function, or a tuple of functions for tasks that need several
    (a layer's ``(forward, backward)``: the backward pass consumes the student's own cache).

    Returns ``None`` on success on purpose: as the last line of a test cell, a returned value
    would become the cell's ``execute_result``, which nbgrader reads as a partial-credit score.
    Use :func:`judge` for the :class:`Verdict`. ``coursekit grade`` never calls it: hidden
    test source does not reach the student's kernel (:mod:`coursekit.instructor.hidden`).
    """
    task = get_task(task_name)
    functions = fn if isinstance(fn, tuple) else (fn,)
    if not functions or not all(callable(f) for f in functions):
        got = ", ".join(type(f).__name__ for f in functions) or "nothing"
        raise GradingError(f"{task_name}: expected a function, got {got}")
    verdict = judge(task, seed, collect_outputs(task, fn, seed))
    if not verdict.passed:
        raise GradingError(verdict.message())
