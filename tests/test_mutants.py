"""Mutation analysis of the hidden tests (``tools/mutants.py``), as CI runs it.

Every mutant of every task's reference is graded with the task's hidden cases; a survivor
must be listed in ``tools/equivalent_mutants.json`` with the argument why it computes the same
answer. The whole analysis takes about a minute on one core (one test per task, so pytest-xdist
spreads it); ``COURSEKIT_MUTANT_SEEDS="0 1 2 3 4"`` grades on more seeds.
"""

from __future__ import annotations

import ast
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import mutants  # noqa: E402

from coursekit.grading.core import get_task  # noqa: E402

SEEDS = tuple(int(s) for s in os.environ.get("COURSEKIT_MUTANT_SEEDS", "0 1 2").split())
TASKS = mutants.course_tasks()
EQUIVALENTS = mutants.load_equivalents()


def test_every_task_is_mutated_or_says_why_not():
    from coursekit.grading.core import task_names

    course = [n for n in task_names() if n[:1] == "a" and n[1:2].isdigit()]
    missing = [n for n in course if n not in mutants.TARGETS and n not in mutants.NOT_MUTATED]
    assert not missing, f"add these tasks to tools/mutants.py TARGETS: {missing}"
    assert set(EQUIVALENTS) <= set(mutants.TARGETS), "equivalents listed for unknown tasks"


@pytest.mark.parametrize("name", TASKS)
def test_targets_compute_the_tasks_answer(name):
    """Each target runs when the reference grades the cases (the table cannot rot)."""
    task = get_task(name)
    hits = mutants.executed_lines(task, SEEDS[:1])
    for dotted in mutants.TARGETS[name]:
        _, fn, _ = mutants.resolve(dotted)
        filename = fn.__code__.co_filename
        lines = range(fn.__code__.co_firstlineno, fn.__code__.co_firstlineno + 400)
        assert any((filename, line) in hits for line in lines), f"{dotted} never runs"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", TASKS)
def test_no_unexplained_surviving_mutant(name):
    report = mutants.report_task(name, SEEDS, EQUIVALENTS)
    assert report.mutants > 0
    assert not report.unexplained, (
        f"{name}: {len(report.unexplained)} mutants survive the hidden cases "
        "(kill them with a new case, or list them with an argument in "
        "tools/equivalent_mutants.json):\n  " + "\n  ".join(report.unexplained)
    )
    assert not report.contradicted, (
        f"{name}: listed as equivalent but failed on some seeds, so not equivalent:\n  "
        + "\n  ".join(report.contradicted)
    )
    assert not report.stale, (
        f"{name}: listed as equivalent but now killed or no longer made "
        "(python tools/mutants.py --prune removes them):\n  " + "\n  ".join(report.stale)
    )


def test_every_listed_equivalent_has_an_argument():
    for task, entries in EQUIVALENTS.items():
        for mutant_id, argument in entries.items():
            assert isinstance(argument, str) and len(argument) > 15, (task, mutant_id)
            assert "\n" not in argument, (task, mutant_id)


# -- the tool itself ------------------------------------------------------------------------
SAMPLE = textwrap.dedent(
    '''
    def sample(x, y):
        """Docstring."""
        if x.ndim != 2:
            raise ValueError("x must be 2-D")
        z = x - y.mean(axis=0, keepdims=True)
        z += 1.0
        out = np.empty_like(z)
        out[...] = z * 2
        return out.copy()
    '''
)


def _operators(source: str) -> dict[str, list[str]]:
    func = ast.parse(source).body[0]
    found: dict[str, list[str]] = {}
    for site in mutants._sites(func):
        found.setdefault(site.operator, []).append(f"{site.before} -> {site.after}")
    return found


def test_each_operator_makes_the_mutants_it_documents():
    ops = _operators(SAMPLE)
    flat = "\n".join(f"{k}: {v}" for k, vs in ops.items() for v in vs)
    assert "x - y.mean(axis=0, keepdims=True) -> x + y.mean(axis=0, keepdims=True)" in flat
    assert "swap: x - y.mean(axis=0, keepdims=True) -> y.mean(axis=0, keepdims=True) - x" in flat
    assert "keyword: y.mean(..., axis=0) -> y.mean(...) without axis=" in flat
    assert "keyword: y.mean(..., keepdims=True) -> y.mean(...) without keepdims=" in flat
    assert "constant: 2 -> 3" in flat and "constant: 2 -> 20" in flat
    assert "constant: True -> False" in flat
    assert "statement: z += 1.0 -> pass" in flat
    assert "inplace: z += 1.0 -> z = z + 1.0" in flat
    assert "inplace: out[...] = z * 2 -> out = z * 2" in flat
    assert "inplace: out.copy() -> out" in flat
    assert any(s.startswith("return out.copy() ->") for s in ops["float32"])
    assert "the array arguments -> rounded to float32" in ops["float32"]
    # Validation and the docstring are not mutated.
    assert "x.ndim" not in flat and "Docstring" not in flat and "compare" not in ops


def test_a_mutant_is_installed_where_the_reference_finds_it_and_removed_after():
    from coursekit import ops

    original = ops.softmax
    with mutants.installed("coursekit.ops.softmax", lambda x, axis=-1: "mutant"):
        assert ops.softmax(np.zeros(2)) == "mutant"
        assert get_task("a1.softmax").reference(np.zeros((1, 2))) == "mutant"
    assert ops.softmax is original


def test_a_killed_and_a_surviving_mutant(tmp_path):
    made = {m.id: m for m in mutants.make_mutants("a1.standardize_columns")}
    killed = next(m for i, m in made.items() if "axis=0" in i and "keyword" in i)
    assert mutants.grade(killed, SEEDS[:2]).killed
    equivalent = next(
        m
        for i, m in made.items()
        if i.endswith("statement: X = np.asarray(X, dtype=np.float64) -> pass")
    )
    graded = mutants.grade(equivalent, SEEDS[:2])
    assert not graded.killed and not graded.seeds_failed


def test_an_endless_mutant_is_stopped_and_counts_as_killed(monkeypatch):
    monkeypatch.setattr(mutants, "TIMEOUT_SECONDS", 0.5)
    mutant = mutants.Mutant("a1.softmax", "coursekit.ops.softmax", "statement", "endless", 0)

    def endless(x, axis=-1):
        while True:
            pass

    mutant.code = endless
    assert mutants.grade(mutant, (0,)).killed
    assert "timeout" in mutant.error


def test_float32_rounding_reaches_inside_containers():
    out = mutants._to_float32({"a": (np.ones(2), 1.5), "b": [np.zeros(1)], "c": 3})
    assert out["a"][0].dtype == np.float32 and isinstance(out["a"][1], np.float32)
    assert out["b"][0].dtype == np.float32 and out["c"] == 3
