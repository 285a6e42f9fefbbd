"""The mistake catalogue against the hidden tests, in-process (seconds, no kernel).

``tests/test_assignments.py`` grades the same catalogue with the real nbgrader (slow); here
each mistake's functions are judged directly (``tests/mistakes/measure.py``), on the
notebook's seed and on other seeds (the course secret changes the cases a class gets):

* every catalogued mistake fails a hidden check of the cells it names, whatever the seed;
* at least 60% of them get a message that names the mistake;
* every alternative solution passes every hidden check;
* the public tests pass for the reference, and a mistake fails the public tests of its own
  cell only (``measure.isolation``);
* the catalogue has at least 20 mistakes per assignment.
"""

from __future__ import annotations

import pytest
from mistakes import measure

ASSIGNMENTS = measure.harness.assignment_ids()
MIN_MISTAKES = 20
MIN_DIAGNOSED = 0.6


@pytest.fixture(scope="module")
def graded():
    cache: dict[str, list] = {}

    def get(aid):
        if aid not in cache:
            cache[aid] = measure.grade_mistakes(aid, extra_seeds=2)
        return cache[aid]

    return get


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_catalogue_is_large_enough(aid):
    assert len(measure.harness.mistakes(aid)) >= MIN_MISTAKES


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_every_mistake_fails_a_hidden_check(aid, graded):
    results = graded(aid)
    survivors = [m.name for m, r in results if not r.killed]
    assert not survivors, f"{aid}: mistakes that pass every hidden check: {survivors}"
    by_seed = [m.name for m, r in results if not all(r.extra_seed_kills)]
    assert not by_seed, f"{aid}: mistakes that pass the hidden checks with another seed: {by_seed}"


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_most_kills_name_the_mistake(aid, graded):
    results = graded(aid)
    killed = [r for _, r in results if r.killed]
    named = [r for r in killed if r.diagnosed]
    rate = len(named) / max(len(killed), 1)
    print(f"\n{aid}: {len(named)}/{len(killed)} kills diagnosed ({rate:.0%})")
    assert rate >= MIN_DIAGNOSED, (
        f"{aid}: only {rate:.0%} of the kills name the mistake; undiagnosed: "
        f"{[r.name for r in killed if not r.diagnosed]}"
    )


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_alternatives_pass_every_hidden_and_public_check(aid):
    alternatives = measure.grade_alternatives(aid, public=True)
    failing = {n: r.failed for n, r in alternatives.items() if r.killed}
    assert not failing, f"{aid}: valid alternatives fail hidden or public checks: {failing}"


def test_a_wrong_function_is_killed_and_named():
    """The measurement itself can fail: a mistake the task knows is killed and diagnosed."""
    namespace = measure.base_namespace("a1")
    namespace["softmax"] = lambda z: measure.np.exp(z) / measure.np.exp(z).sum(0, keepdims=True)
    result = measure.grade(namespace, "a1", ["test_softmax"], "columns")
    assert result.killed and result.diagnosed
    assert not measure.grade(measure.base_namespace("a1"), "a1", ["test_softmax"], "ref").killed


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_public_tests_pass_for_the_reference(aid):
    assert measure.public_failures(measure.base_namespace(aid), aid) == {}


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_one_mistake_fails_the_public_tests_of_its_own_cell_only(aid):
    """Public tests are isolated: a cell uses coursekit's reference for every function it
    needs besides the one it grades, so a mistake elsewhere does not fail it (unless the
    graded function itself calls the wrong one, which the hidden checks then see too)."""
    collateral = measure.isolation(aid)
    assert not collateral, f"{aid}: public tests that fail for another task's mistake: {collateral}"


def _known_mistakes():
    from coursekit.grading.core import get_task, task_names

    return [(name, i) for name in task_names() for i in range(len(get_task(name).mistakes))]


@pytest.mark.parametrize(("task_name", "index"), _known_mistakes())
def test_every_known_mistake_is_caught_and_named(task_name, index):
    """A task's Mistake, submitted as the answer, fails the hidden check with a hint.

    A Mistake the cases cannot tell from the reference would never be shown; one whose
    failure gets no hint has an implementation that does not reproduce itself (for example
    it depends on state the case does not set)."""
    import contextlib
    import io
    import warnings

    from coursekit.grading.core import collect_outputs, get_task, judge

    task = get_task(task_name)
    mistake = task.mistakes[index]
    verdicts = []
    for seed in (11, 12):
        with warnings.catch_warnings(), measure.np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                outcomes = collect_outputs(task, mistake.implementation, seed)
            verdicts.append(judge(task, seed, outcomes))
    failed = [v for v in verdicts if not v.passed]
    assert failed, (
        f"the hidden cases cannot tell this mistake from the reference: {mistake.message}"
    )
    assert any("hint:" in v.message() for v in failed), failed[0].message()
