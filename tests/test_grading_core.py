"""The grading helper: plain-data conversion, comparison messages, diagnosis, the registry."""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import float64_arrays, matrix_shapes

from coursekit.grading import core
from coursekit.grading.core import (
    Case,
    GradingError,
    Mistake,
    Task,
    check,
    collect_outputs,
    describe_mismatch,
    get_task,
    judge,
    register,
    task_names,
    to_plain,
)

SECRET = 987.654321  # an input value that must never appear in a message


def _double_cases(rng):
    return [
        Case("small vector", (rng.normal(size=3),)),
        Case("secret matrix", (np.full((2, 2), SECRET),)),
        Case("batch of 1", (rng.normal(size=(1, 4)),)),
    ]


DOUBLE = Task(
    name="test.double",
    reference=lambda x: 2 * x,
    cases=_double_cases,
    mistakes=(Mistake("matches x + 1: multiply, do not add", lambda x: x + 1),),
)
if "test.double" not in core._REGISTRY:
    register(DOUBLE)


class Liar(np.ndarray):
    """An ndarray subclass that claims to equal anything."""

    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool).view(Liar)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.ones(np.broadcast_shapes(*(np.shape(i) for i in inputs)), dtype=bool)


# -- to_plain -----------------------------------------------------------------------------------
def test_to_plain_strips_a_lying_subclass():
    lie = np.zeros(3).view(Liar)
    plain = to_plain(lie)
    assert type(plain) is np.ndarray and plain.dtype == np.float64
    assert describe_mismatch(plain, np.ones(3), 1e-6, 1e-8) is not None
    verdict = judge(DOUBLE, 0, collect_outputs(DOUBLE, lambda x: np.zeros_like(x).view(Liar), 0))
    assert not verdict.passed and len(verdict.failures) == 3


def test_to_plain_converts_containers_and_scalars():
    out = to_plain({"a": (np.float32(1.5), [1, 2]), "b": True})
    assert out["a"][0].dtype == np.float64 and out["a"][1].dtype == np.int64
    assert out["b"].dtype == np.int64 and out["b"] == 1
    assert isinstance(out["a"], tuple) and type(out["a"][1]) is np.ndarray


@pytest.mark.parametrize("bad", [None, "text", object(), np.array(["a"]), np.array([1 + 2j])])
def test_to_plain_rejects_non_numbers(bad):
    with pytest.raises(TypeError, match="expected"):
        to_plain(bad)


# -- describe_mismatch -----------------------------------------------------------------------------
def test_mismatch_messages():
    want = np.ones((2, 3))
    assert "shape (3, 2)" in describe_mismatch(np.ones((3, 2)), want, 1e-6, 1e-8)
    assert "NaN" in describe_mismatch(np.full((2, 3), np.nan), want, 1e-6, 1e-8)
    assert "inf" in describe_mismatch(np.full((2, 3), np.inf), want, 1e-6, 1e-8)
    wrong = want.copy()
    wrong[0, 1] = 1.5
    assert "1 of 6 entries differ" in describe_mismatch(wrong, want, 1e-6, 1e-8)
    assert "2 return values" in describe_mismatch(np.ones(1), (np.ones(1), np.ones(1)), 1e-6, 0)
    assert "keys" in describe_mismatch({"a": np.ones(1)}, {"b": np.ones(1)}, 1e-6, 0)
    assert "[1]" in describe_mismatch((want, wrong), (want, want), 1e-6, 1e-8)
    labels = np.array([1, 2, 3])
    assert "1 of 3 entries are wrong" in describe_mismatch(np.array([1, 2, 4]), labels, 0, 0)
    assert "integers" in describe_mismatch(np.array([1.0, 2.5, 3.0]), labels, 0, 0)


@given(float64_arrays(matrix_shapes()), st.floats(1e-4, 1.0))
def test_mismatch_accepts_equal_and_rejects_perturbed(x, delta):
    assert describe_mismatch(x.copy(), x, 1e-7, 1e-9) is None
    perturbed = x.copy()
    perturbed.flat[0] += delta + abs(perturbed.flat[0]) * 1e-3
    assert describe_mismatch(perturbed, x, 1e-7, 1e-9) is not None


# -- judge and check ---------------------------------------------------------------------------------
def test_check_passes_a_correct_function_silently():
    assert check("test.double", lambda x: x * 2.0, seed=1) is None  # no execute_result
    verdict = judge(DOUBLE, 1, collect_outputs(DOUBLE, lambda x: x * 2.0, 1))
    assert verdict.passed and verdict.cases == 3 and not verdict.failures


def test_check_diagnoses_a_known_mistake_without_revealing_inputs():
    with pytest.raises(GradingError) as info:
        check("test.double", lambda x: x + 1, seed=1)
    message = str(info.value)
    assert "0/3 hidden cases passed" in message
    for label in ("small vector", "secret matrix", "batch of 1"):
        assert f"case '{label}'" in message
    assert message.count("hint: matches x + 1") == 3
    assert "987.65" not in message and "1975.3" not in message


def test_check_reports_errors_shapes_and_unusable_results():
    def broken(x):
        if x.ndim == 2 and x.shape[0] == 1:
            raise IndexError("boom")
        if x.ndim == 1:
            return None
        return np.zeros((5,))

    with pytest.raises(GradingError) as info:
        check("test.double", broken, seed=3)
    message = str(info.value)
    assert "case 'batch of 1': raised IndexError: boom" in message
    assert "case 'small vector': returned an unusable result" in message
    assert "shape (5,), expected (2, 2)" in message


def test_check_rejects_non_callables_and_accepts_tuples_of_functions():
    with pytest.raises(GradingError, match="expected a function"):
        check("test.double", 42, seed=0)
    with pytest.raises(GradingError, match="expected a function"):
        check("test.double", (len, "not callable"), seed=0)


def test_judge_is_independent_of_the_students_process_state():
    """Judging plain outcomes recorded elsewhere gives the same verdict as check()."""
    outcomes = collect_outputs(DOUBLE, lambda x: x + 1, 5)
    assert all(type(o.output) is np.ndarray for o in outcomes)
    again = judge(DOUBLE, 5, outcomes)
    assert not again.passed and len(again.failures) == 3
    assert not judge(DOUBLE, 5, outcomes[:2]).passed  # a missing result is a failure


def test_outcomes_survive_a_json_round_trip_exactly():
    outcomes = collect_outputs(get_task("a2.numerical_gradient"), lambda f, x, h=1e-5: x / 3, 4)
    outcomes.append(
        core.Outcome("odd values", output=(np.array([np.nan, np.inf, 1e-300]), {"k": np.arange(3)}))
    )
    outcomes.append(core.Outcome("failed", error="raised ValueError: no"))
    back = core.outcomes_from_json(core.outcomes_to_json(outcomes))
    assert [o.label for o in back] == [o.label for o in outcomes]
    assert back[-1].error == "raised ValueError: no" and back[-1].output is None
    for a, b in zip(outcomes[:-1], back[:-1]):
        assert describe_mismatch(b.output, a.output, 0.0, 0.0) is None
    got = back[-2].output
    assert got[1]["k"].dtype == np.int64 and np.isnan(got[0][0]) and got[0][2] == 1e-300
    with pytest.raises(ValueError, match="numbers"):
        core.outcomes_from_json(
            '[{"label": "x", "error": null, "output": {"dtype": "|O", "shape": [], "data": []}}]'
        )


def test_inputs_are_fresh_copies_for_every_call():
    def vandal(x):
        y = 2 * x
        x[...] = 0  # mutating the input must not change the reference's view of the case
        return y

    assert judge(DOUBLE, 2, collect_outputs(DOUBLE, vandal, 2)).passed


def test_registry_rejects_duplicates_and_names_known_tasks():
    with pytest.raises(ValueError, match="already registered"):
        register(DOUBLE)
    with pytest.raises(KeyError, match="known tasks"):
        get_task("a1.no_such_task")


# -- every registered task --------------------------------------------------------------------------
COURSE_TASKS = [name for name in task_names() if re.match(r"a\d+\.", name)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # wrong answers overflow on purpose
@pytest.mark.parametrize("name", COURSE_TASKS)
def test_task_reference_passes_and_every_mistake_is_caught_and_named(name):
    task = get_task(name)
    for seed in (0, 1):
        assert judge(task, seed, collect_outputs(task, task.reference, seed)).passed
    labels = [case.label for case in task.cases(np.random.default_rng(0))]
    assert len(set(labels)) == len(labels), "case labels must tell the cases apart"
    if name.startswith(("a1.", "a2.")):
        assert len(labels) >= 4, "several shapes and edge cases"
    for mistake in task.mistakes:
        verdict = judge(task, 0, collect_outputs(task, mistake.implementation, 0))
        assert not verdict.passed, f"{name}: the mistake {mistake.message!r} passes"
        message = verdict.message()
        assert mistake.message in message, f"{name}: {mistake.message!r} is not diagnosed"
        for line in _code_lines(task.reference):
            assert line not in message, f"{name}: the message shows reference code {line!r}"


def _code_lines(fn) -> list[str]:
    """Statement lines of a reference implementation (long enough to be recognisable)."""
    functions = fn if isinstance(fn, tuple) else (fn,)
    lines = []
    for f in functions:
        try:
            source = inspect.getsource(f)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            line = line.strip()
            if len(line) >= 20 and not line.startswith(("def ", '"', "#", "'")):
                lines.append(line)
    return lines


@pytest.mark.parametrize("name", COURSE_TASKS)
def test_library_functions_name_real_coursekit_functions(name):
    for dotted in get_task(name).library_functions:
        module, attr = dotted.rsplit(".", 1)
        assert module.startswith("coursekit."), dotted
        assert callable(getattr(importlib.import_module(module), attr)), dotted
