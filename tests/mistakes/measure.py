"""Grade the mistake catalogue in-process: kill rate and diagnosis rate, in seconds.

The real nbgrader run of ``tests/test_assignments.py`` takes minutes per assignment; this
module gives the same hidden verdicts without a kernel. For one assignment it executes the
reference answers (and the provided cells' imports, definitions and assignments, never their
loops or plots) once; for each mistake it re-executes the mutated answer cell, and the answer
cells that only define functions, in a copy of that namespace, then calls
:func:`coursekit.grading.core.collect_outputs` and :func:`~coursekit.grading.core.judge` on
every hidden ``check(...)`` of the test cells the mistake names, exactly as the trusted
grader judges a record.

A mistake is *killed* when one of those verdicts fails on the notebook's own seed, and
*diagnosed* when a failing verdict names it (a task's :class:`~coursekit.grading.core.Mistake`
matched: the message carries ``hint:``).

Run ``python tests/mistakes/measure.py [a1 ...]`` for the table.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import nbgrader_harness as harness  # noqa: E402

from coursekit.grading import diagnose, submissions  # noqa: E402
from coursekit.grading.core import collect_outputs, get_task, judge, to_plain  # noqa: E402

_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign)


@dataclass
class Cell:
    kind: str  # "answer", "test" or "provided"
    grade_id: str | None
    source: str


@dataclass
class Result:
    """The hidden verdicts of one submission on the test cells that matter."""

    name: str
    failed: dict[str, str] = field(default_factory=dict)  # "task@seed" -> verdict message
    passed: list[str] = field(default_factory=list)
    #: one entry per extra seed: did some check of the named cells fail with it?
    extra_seed_kills: list[bool] = field(default_factory=list)
    #: failing cases that :mod:`coursekit.grading.diagnose` explains (a relation or a hint)
    explanations: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return bool(self.failed)

    @property
    def diagnosed(self) -> bool:
        return any("hint:" in message for message in self.failed.values())

    @property
    def explained(self) -> bool:
        """Named by a task's Mistake, or explained by the generic diagnosis."""
        return self.diagnosed or bool(self.explanations)


def cells(aid: str) -> list[Cell]:
    """The code cells of an assignment's source notebooks, in order, answers markers removed."""
    out = []
    for path in sorted((REPO_ROOT / "solutions" / aid).glob("*.ipynb")):
        nb = submissions.read(path)
        answers = submissions.reference_answers(nb)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            gid = harness.nbgrader_meta(cell).get("grade_id")
            if gid in answers:
                out.append(Cell("answer", gid, answers[gid]))
            elif harness.is_autograded_test(cell):
                out.append(Cell("test", gid, cell.source))
            else:
                out.append(Cell("provided", gid, cell.source))
    return out


def _definitions_only(source: str) -> bool:
    tree = ast.parse(source)
    return all(
        isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
        for node in tree.body
    )


def _run(source: str, namespace: dict, *, provided: bool) -> None:
    tree = ast.parse(source)
    if provided:  # set-up only: no loops, plots or printed experiments
        tree.body = [node for node in tree.body if isinstance(node, _KEPT_STATEMENTS)]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - our own notebooks


_REFERENCE_NAMESPACES: dict[str, dict] = {}


def base_namespace(aid: str, answers: dict[str, str] | None = None) -> dict:
    """Execute the set-up and the (given or reference) answers of an assignment.

    The reference namespace is executed once per assignment (A5 trains its final model) and
    handed out as a copy.
    """
    if answers is None:
        if aid not in _REFERENCE_NAMESPACES:
            _REFERENCE_NAMESPACES[aid] = _execute(aid, None)
        return dict(_REFERENCE_NAMESPACES[aid])
    return _execute(aid, answers)


def _execute(aid: str, answers: dict[str, str] | None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__coursekit_measure__"}
    for cell in cells(aid):
        if cell.kind == "answer":
            _run((answers or {}).get(cell.grade_id, cell.source), namespace, provided=False)
        elif cell.kind == "provided":
            _run(cell.source, namespace, provided=True)
    return namespace


def hidden_calls(source: str) -> list[tuple[str, str, int]]:
    """``(task, function expression, seed)`` of every ``check(...)`` in a test cell."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
            seed = next(k.value.value for k in node.keywords if k.arg == "seed")
            calls.append((node.args[0].value, ast.unparse(node.args[1]), seed))
    return calls


def test_cells(aid: str) -> dict[str, str]:
    return {c.grade_id: c.source for c in cells(aid) if c.kind == "test"}


def grade(namespace: dict, aid: str, tests: list[str], name: str, extra_seeds: int = 0) -> Result:
    """Hidden verdicts of the functions in ``namespace`` on the named test cells."""
    result = Result(name)
    result.extra_seed_kills = [False] * extra_seeds
    sources = test_cells(aid)
    for test in tests:
        for task_name, expression, seed in hidden_calls(sources[test]):
            task = get_task(task_name)
            try:
                fn = eval(expression, namespace)  # noqa: S307 - our own notebooks
            except Exception as exc:  # noqa: BLE001 - a missing function fails the check
                result.failed[f"{task_name}@{seed}"] = f"{task_name}: {exc}"
                continue
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    outcomes = collect_outputs(task, fn, seed)
                    verdict = judge(task, seed, outcomes)
                    if not verdict.passed:
                        result.explanations += explain(task, seed, outcomes)
                    for extra in range(extra_seeds):
                        other_seed = seed + 1000 * (extra + 1)
                        other = judge(task, other_seed, collect_outputs(task, fn, other_seed))
                        result.extra_seed_kills[extra] |= not other.passed
            key = f"{task_name}@{seed}"
            if verdict.passed:
                result.passed.append(key)
            else:
                result.failed[key] = verdict.message()
    return result


def explain(task, seed: int, outcomes) -> list[str]:
    """What :mod:`coursekit.grading.diagnose` says about the failing cases beyond counts:
    a relation between the wrong and the right output, or a hint for an error."""
    found = []
    for case, outcome in zip(task.draw_cases(seed), outcomes):
        if outcome.error is not None:
            hint = diagnose.explain_error(outcome.error)
        else:
            # as coursekit.grading.core.judge compares them
            want = to_plain(task.run(task.reference, copy.deepcopy(case.public())))
            want = task.evaluate(want, case)
            try:
                got = task.evaluate(outcome.output, case)
            except Exception:  # noqa: BLE001 - an unusable result has its own message
                continue
            message = diagnose.explain_mismatch(got, want, task.rtol, task.atol)
            explained = message and (" — " in message or message.startswith("this does not hold"))
            hint = message if explained else None
        if hint:
            found.append(f"case '{case.label}': {hint}")
    return found


def public_failures(namespace: dict, aid: str) -> dict[str, str]:
    """Run the public part of every test cell (hidden tests removed) in a copy of
    ``namespace``, as a student's kernel would; ``{test cell: error}`` for those that raise."""
    import matplotlib.pyplot as plt

    failures = {}
    for test, source in test_cells(aid).items():
        public = source.split(harness.HIDDEN_MARKERS[0])[0]
        try:
            _run(public, dict(namespace), provided=False)
        except Exception as exc:  # noqa: BLE001 - a failing public test is a result
            failures[test] = f"{type(exc).__name__}: {exc}"
        finally:
            plt.close("all")
    return failures


def isolation(aid: str) -> dict[str, dict[str, str]]:
    """Public tests a mistake fails although the hidden checks of that cell pass.

    A public test must depend only on the function its cell grades: such a failure means it
    uses the student's code for another task (it should use coursekit's reference there).
    ``{mistake: {test cell: error}}`` for the mistakes with such failures.
    """
    base = base_namespace(aid)
    reference = {c.grade_id: c.source for c in cells(aid) if c.kind == "answer"}
    tests = list(test_cells(aid))
    out = {}
    for mutation in harness.mistakes(aid):
        code = mutation.apply(reference)[mutation.cell]
        try:
            namespace = _answer_namespace(aid, base, mutation.cell, code)
        except Exception:  # noqa: BLE001 - a mutant that does not define its function
            continue
        failing = public_failures(namespace, aid)
        hidden = grade(namespace, aid, [t for t in tests if t in failing], mutation.name)
        failed_cells = {key.split("@")[0] for key in hidden.failed}
        collateral = {}
        for test, error in failing.items():
            tasks = {task for task, _, _ in hidden_calls(test_cells(aid)[test])}
            if test not in mutation.tests and not tasks & failed_cells:
                collateral[test] = error
        if collateral:
            out[mutation.name] = collateral
    return out


def _answer_namespace(aid: str, base: dict, cell_id: str, code: str) -> dict:
    """``base`` with one answer cell replaced and every definitions-only answer re-run."""
    namespace = dict(base)
    _run(code, namespace, provided=False)
    for cell in cells(aid):
        if cell.kind == "answer" and cell.grade_id != cell_id and _definitions_only(cell.source):
            _run(cell.source, namespace, provided=False)
    return namespace


def grade_mistakes(aid: str, extra_seeds: int = 0) -> list[tuple[object, Result]]:
    base = base_namespace(aid)
    reference = {c.grade_id: c.source for c in cells(aid) if c.kind == "answer"}
    results = []
    for mutation in harness.mistakes(aid):
        code = mutation.apply(reference)[mutation.cell]
        try:
            namespace = _answer_namespace(aid, base, mutation.cell, code)
        except Exception as exc:  # noqa: BLE001 - a mutant that does not even define
            results.append((mutation, Result(mutation.name, failed={"exec": repr(exc)})))
            continue
        results.append(
            (mutation, grade(namespace, aid, list(mutation.tests), mutation.name, extra_seeds))
        )
    return results


def grade_alternatives(aid: str, public: bool = False) -> dict[str, Result]:
    """Every alternative on every hidden check of the assignment (and, with ``public``, the
    public tests that fail for it, recorded as ``failed["public:<cell>"]``)."""
    reference = {c.grade_id: c.source for c in cells(aid) if c.kind == "answer"}
    all_tests = list(test_cells(aid))
    out = {}
    for name, alt in harness.alternatives(aid).items():
        answers = alt.apply(reference) if isinstance(alt, submissions.Mutation) else alt
        namespace = base_namespace(aid, {**reference, **answers})
        out[name] = grade(namespace, aid, all_tests, name)
        if public:
            for test, error in public_failures(namespace, aid).items():
                out[name].failed[f"public:{test}"] = error
    return out


def summary(aid: str, extra_seeds: int = 0) -> dict:
    results = grade_mistakes(aid, extra_seeds)
    killed = [r for _, r in results if r.killed]
    diagnosed = [r for r in killed if r.diagnosed]
    explained = [r for r in killed if r.explained]
    return {
        "assignment": aid,
        "mistakes": len(results),
        "killed": len(killed),
        "diagnosed": len(diagnosed),
        "explained": len(explained),
        "unexplained": [r.name for r in killed if not r.explained],
        "survivors": [r.name for _, r in results if not r.killed],
        "undiagnosed": [r.name for r in killed if not r.diagnosed],
        # mistakes that some other seed lets through (the course secret changes the seeds)
        "seed_dependent": [r.name for _, r in results if not all(r.extra_seed_kills)],
    }


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    aids = [a for a in argv if not a.startswith("-")] or harness.assignment_ids()
    for aid in aids:
        s = summary(aid, extra_seeds=3)
        kill = s["killed"] / max(s["mistakes"], 1)
        diag = s["diagnosed"] / max(s["killed"], 1)
        print(
            f"{aid}: {s['mistakes']} mistakes, killed {s['killed']} ({kill:.0%}), "
            f"diagnosed {s['diagnosed']} ({diag:.0%} of kills); named or explained by "
            f"coursekit.grading.diagnose {s['explained']} ({s['explained'] / max(s['killed'], 1):.0%})"
        )
        if s["unexplained"]:
            print("  unexplained:", ", ".join(s["unexplained"]))
        if s["seed_dependent"]:
            print("  survive another seed:", ", ".join(s["seed_dependent"]))
        if s["survivors"]:
            print("  survivors:", ", ".join(s["survivors"]))
        if s["undiagnosed"]:
            print("  undiagnosed:", ", ".join(s["undiagnosed"]))
        if verbose:
            for mutation, result in grade_mistakes(aid):
                for key, message in result.failed.items():
                    print(f"--- {mutation.name} [{key}]\n{message}")
                for line in result.explanations:
                    print(f"    diagnose: {line}")
        alts = grade_alternatives(aid)
        wrong = {n: r.failed for n, r in alts.items() if r.killed}
        print(f"  alternatives: {len(alts)}, with a failing hidden check: {len(wrong)}")
        for n, failed in wrong.items():
            print(f"    {n}: {failed}")


if __name__ == "__main__":
    main(sys.argv[1:])
