"""The runtime reference watch: calls into coursekit's reference are seen however made."""

from __future__ import annotations

import copy
import importlib
import sys
import threading

import numpy as np
import pytest

import coursekit.ops
from coursekit.early_stopping import EarlyStopping
from coursekit.grading.core import get_task, task_names
from coursekit.grading.trusted import record, reference_functions, trusted_verdict
from coursekit.grading.watch import ReferenceWatch

LOGITS = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])


def own_softmax(z):
    exps = np.exp(z - z.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


def obfuscated(z):
    ref = getattr(importlib.import_module("coursekit." + "o" + "ps"), "soft" + "max")
    return ref(z, axis=1)


def from_copied_module(z):
    # the module's own source compiled again under its own file name, as a reload would
    namespace: dict = {"__name__": "copy_of_ops"}
    path = coursekit.ops.__file__
    with open(path) as fh:
        exec(compile(fh.read(), path, "exec"), namespace)
    return namespace["softmax"](z, axis=1)


def in_a_thread(z):
    box = []
    worker = threading.Thread(target=lambda: box.append(own_softmax(z)))
    worker.start()
    worker.join()
    return box[0]


def hook_removed(z):
    getattr(sys, "set" + "profile")(None)
    return own_softmax(z)


def test_an_honest_function_is_not_flagged_and_its_result_is_unchanged():
    watch = ReferenceWatch(["coursekit.ops.softmax"])
    np.testing.assert_array_equal(watch.call(own_softmax, LOGITS), own_softmax(LOGITS))
    assert watch.problems == []


@pytest.mark.parametrize(
    "fn, expected",
    [
        (obfuscated, "calls coursekit's own implementation (coursekit.ops.softmax)"),
        (from_copied_module, "calls coursekit's own implementation (coursekit.ops.softmax)"),
        (in_a_thread, "starts a thread"),
        (hook_removed, "replaces the profiler hook (sys.setprofile)"),
    ],
)
def test_ways_to_reach_the_reference_are_flagged(fn, expected):
    watch = ReferenceWatch(["coursekit.ops.softmax"])
    watch.call(fn, LOGITS)
    assert expected in watch.problems, watch.problems


def test_only_the_graded_functions_count_and_the_previous_hook_comes_back():
    def uses_another_helper(z):
        return np.exp(coursekit.ops.log_softmax(z))

    def outer_hook(frame, event, arg):
        return None

    watch = ReferenceWatch(["coursekit.ops.softmax"])
    sys.setprofile(outer_hook)
    try:
        watch.call(uses_another_helper, LOGITS)
        assert sys.getprofile() is outer_hook
    finally:
        sys.setprofile(None)
    assert watch.problems == []


def test_a_recorded_reference_call_fails_the_hidden_test_with_the_reason(tmp_path):
    source = 'check("a1.softmax", softmax, seed=3)'
    record("a1.softmax", own_softmax, 3, tmp_path)
    assert trusted_verdict(source, tmp_path) == (True, "")
    record("a1.softmax", obfuscated, 3, tmp_path)
    passed, message = trusted_verdict(source, tmp_path)
    assert not passed
    assert "integrity: the submission calls coursekit's own implementation" in message


def test_the_graders_own_reference_counts_however_it_is_fetched(tmp_path):
    # a1.standardize_columns's reference lives in the task module, not in the library
    def via_registry(*args, **kwargs):
        core = importlib.import_module("coursekit.grading." + "core")
        task = getattr(core, "get_" + "task")("a1." + "standardize_columns")
        return task.reference(*args, **kwargs)

    source = 'check("a1.standardize_columns", standardize_columns, seed=3)'
    record("a1.standardize_columns", via_registry, 3, tmp_path)
    passed, message = trusted_verdict(source, tmp_path)
    assert not passed
    expected = "calls coursekit's own implementation "
    expected += "(coursekit.grading.tasks.a1.standardize_columns_reference)"
    assert expected in message


class Stopper(EarlyStopping):
    """Subclasses the library's class: every method it runs is the reference's."""


# Made before any hidden case runs, so its ``__init__`` ran outside the watch.
_PROTOTYPES = {mode: EarlyStopping(mode=mode) for mode in ("max", "min")}


class LateDelegating:
    """Never calls the library's ``__init__``: copies a ready-made object and forwards
    ``step`` to it, which only ``task.run`` calls, after the constructor returned."""

    def __init__(self, patience=5, min_delta=0.0, mode="max"):
        self._inner = copy.copy(_PROTOTYPES[mode])
        self._inner.patience, self._inner.min_delta = patience, min_delta

    def step(self, *args, **kwargs):
        return self._inner.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize("cls", [Stopper, LateDelegating])
def test_a_reference_class_counts_with_all_its_methods(cls, tmp_path):
    source = 'check("a5.early_stopping", EarlyStopping, seed=5510)'
    record("a5.early_stopping", cls, 5510, tmp_path)
    passed, message = trusted_verdict(source, tmp_path)
    assert not passed
    assert "calls coursekit's own implementation (coursekit.early_stopping.EarlyStopping)" in (
        message
    )


@pytest.mark.parametrize("task_name", task_names())
def test_every_task_watches_real_code(task_name):
    # a misspelled library function would silently watch nothing
    task = get_task(task_name)
    for dotted in task.library_functions:
        assert ReferenceWatch([dotted]).names, f"{task_name}: {dotted} does not resolve to code"
    assert ReferenceWatch(reference_functions(task)).names, f"{task_name}: reference has no code"
