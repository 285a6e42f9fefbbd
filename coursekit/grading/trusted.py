"""Trusted comparison: hidden tests decide in a process where no student code ran.

In a student's kernel, anything can be patched: ``np.allclose``, numpy's internals,
builtins, :func:`coursekit.grading.check` itself, or the result can be a lying ndarray
subclass. So when the grader sets :data:`RECORD_ENV` in the kernel's environment,
``check(task, fn, seed=...)`` only *records*: it runs ``fn`` on the hidden cases
(:func:`coursekit.grading.core.collect_outputs`) and writes the plain float64/int64 outputs
as JSON (:func:`coursekit.grading.core.outcomes_to_json`, nothing pickled) to
``<record dir>/<task>@<seed>.json``. It never judges there.

The grader then reads the hidden-test calls from the trusted cell source (nbgrader restores
every test cell from the gradebook before running it), loads each record with
:func:`~coursekit.grading.core.outcomes_from_json` and calls
:func:`~coursekit.grading.core.judge` itself. A test cell passes only if every one of its
calls left a record that passes; a patched ``check``, a killed kernel or a swallowed error
leaves no record (or a wrong one) and so no points. While recording, the student's function
runs under :class:`~coursekit.grading.watch.ReferenceWatch`: a call into the task's
reference implementation (:func:`reference_functions`), however obtained, turns every case
into an integrity failure.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from coursekit.grading.core import (
    RECORD_ENV,
    Outcome,
    Task,
    collect_outputs,
    get_task,
    judge,
    outcomes_from_json,
    outcomes_to_json,
)
from coursekit.grading.watch import ReferenceWatch

__all__ = [
    "RECORD_ENV",
    "clear_records",
    "hidden_checks",
    "integrity_problems",
    "record",
    "trusted_verdict",
]


def record_path(record_dir: str | os.PathLike, task_name: str, seed: int) -> Path:
    return Path(record_dir) / f"{task_name}@{int(seed)}.json"


def record(task_name: str, fn: Callable, seed: int, record_dir: str | os.PathLike) -> None:
    """Record mode of ``check``: write ``fn``'s plain outputs on the hidden cases."""
    task = get_task(task_name)
    functions = fn if isinstance(fn, tuple) else (fn,)
    if not functions or not all(callable(f) for f in functions):
        outcomes = [Outcome("all cases", error="expected a function")]
    else:
        watch = ReferenceWatch(reference_functions(task))
        # The whole case runs under the hook, not only the calls to ``fn``: a class's
        # methods are called by ``task.run`` on the instance ``fn`` returned.
        watched = dataclasses.replace(task, run=lambda f, case: watch.call(task.run, f, case))
        outcomes = collect_outputs(watched, fn, seed)
        if watch.problems:
            reason = "integrity: the submission " + "; ".join(watch.problems)
            outcomes = [Outcome(o.label, error=reason) for o in outcomes]
    path = record_path(record_dir, task_name, seed)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(outcomes_to_json(outcomes))
    os.replace(tmp, path)


def reference_functions(task: Task) -> tuple:
    """What a submission for ``task`` must not call: the grader's reference and the
    coursekit functions that implement the answer (``library_functions``)."""
    reference = task.reference if isinstance(task.reference, tuple) else (task.reference,)
    return (*reference, *task.library_functions)


def hidden_checks(source: str) -> list[tuple[str, int]]:
    """The ``check("task", fn, seed=N)`` calls of a test cell, as ``(task, seed)``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check"):
            continue
        seeds = [k.value for k in node.keywords if k.arg == "seed"]
        if (
            node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and len(seeds) == 1
            and isinstance(seeds[0], ast.Constant)
            and isinstance(seeds[0].value, int)
        ):
            calls.append((node.args[0].value, seeds[0].value))
    return calls


def trusted_verdict(source: str, record_dir: str | os.PathLike) -> tuple[bool, str] | None:
    """Judge one test cell from its records: ``(passed, message)``, or ``None`` if it has no
    hidden-test call (nbgrader's own result then stands)."""
    calls = hidden_checks(source)
    if not calls:
        return None
    messages = []
    for task_name, seed in calls:
        path = record_path(record_dir, task_name, seed)
        try:
            outcomes = outcomes_from_json(path.read_text())
        except FileNotFoundError:
            messages.append(
                f"{task_name}: the hidden test left no result (it did not run to the end, or "
                "the grading machinery was tampered with)"
            )
            continue
        except (ValueError, KeyError, TypeError, OSError) as exc:
            messages.append(f"{task_name}: unusable hidden-test result ({exc})")
            continue
        verdict = judge(get_task(task_name), seed, outcomes)
        if not verdict.passed:
            messages.append(verdict.message())
    return (not messages, "\n".join(messages))


def clear_records(record_dir: str | os.PathLike) -> None:
    """Remove the records of a previous notebook before the next one runs."""
    for path in Path(record_dir).glob("*"):
        if path.is_file():
            path.unlink()


#: Names only the grading machinery uses: student code that mentions them tampers with it.
MACHINERY = (
    "coursekit.grading.core",
    "coursekit.grading.trusted",
    "coursekit.grading.tasks",
    "_REGISTRY",
    "get_task",
    "collect_outputs",
    "outcomes_to_json",
    RECORD_ENV,
    "set_custom_exc",
    "showtraceback",
    "excepthook",
)


def _attributes(tree: ast.AST) -> set[str]:
    """The attribute names a parsed cell looks up (``np.exp`` gives ``exp``)."""
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def _mentions(tree: ast.AST) -> set[str]:
    """Dotted names, imported modules and string constants of a parsed cell."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return found


def _rebinds_check(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "check":
                return True
            if isinstance(target, ast.Attribute) and target.attr == "check":
                return True
    return False


def integrity_problems(student_sources: list[str], task_names: list[str]) -> dict[str, str]:
    """``{task: reason}`` for the tasks a submission's own code must get no credit for.

    A heuristic on the code the student wrote (every cell nbgrader does not restore):
    calling one of the task's ``library_functions`` (coursekit's reference implementation),
    or naming the grading machinery (:data:`MACHINERY`, rebinding ``check``). The trusted
    comparison above is what makes tampering useless; this check makes it visible.
    """
    mentions: set[str] = set()
    attributes: set[str] = set()
    tampering = []
    for source in student_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        mentions |= _mentions(tree)
        attributes |= _attributes(tree)
        if _rebinds_check(tree):
            tampering.append("rebinds check")
    tampering += [f"uses {name}" for name in MACHINERY if name in mentions]
    problems = {}
    for task_name in task_names:
        task = get_task(task_name)
        used = []
        for dotted in task.library_functions:
            module, _, name = dotted.rpartition(".")
            # ``from module import name``, or ``import module`` and then ``module.name``
            # (a student's own function of the same name is no use of the library's).
            if dotted in mentions or (module in mentions and name in attributes):
                used.append(dotted)
        if used:
            problems[task_name] = (
                f"integrity: the submission calls coursekit's own implementation "
                f"({', '.join(used)}) instead of writing the function"
            )
        elif tampering:
            problems[task_name] = (
                "integrity: the submission tampers with the grading machinery ("
                + "; ".join(sorted(set(tampering)))
                + ")"
            )
    return problems
