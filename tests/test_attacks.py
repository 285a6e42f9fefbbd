"""The attack catalogue (tests/attacks) graded by ``coursekit grade``, on a1 and a3.

No attack gains points over the same wrong answer without it, reads instructor files or
secrets, writes outside its home or reaches the grader's loopback; the correct canaries
graded alongside keep full marks; every submission ends with a score and a reason, and the
batch ends.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import nbformat
import pytest
from attacks import (
    A1,
    A3,
    ACCIDENTS,
    CODE_ATTACKS,
    FILE_ATTACKS,
    NOTEBOOK_ATTACKS,
    REPO,
    RUNNER_ATTACKS,
    add_files,
    catalogue,
    source_notebook,
)

from coursekit.cli.main import main
from coursekit.grading import submissions
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course
from coursekit.instructor.demo import write_class
from coursekit.instructor.sandbox import bwrap_usable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is unusable here"),
    pytest.mark.filterwarnings("ignore:Non-unique cell id"),
]
#: A value in the grader's environment that no student may see.
SECRET_VALUE = "grader-secret-5f1d"
#: On a3, the attacks that depend on the graded function (the rest are the same code).
A3_ONLY = (
    *RUNNER_ATTACKS,
    "displayhook-before-each-cell",
    "sys-displayhook",
    "lying-subclass",
    "deleted-test-cell",
    "duplicated-test-cell",
    "changed-points",
    "stripped-test-metadata",
    "symlink-to-solutions",
)


def attack_course(tmp_path_factory, target, only=None):
    """A released course with the catalogue (or the attacks in ``only``) submitted."""
    root = tmp_path_factory.mktemp("attacks") / "course"
    (root / "solutions" / target.assignment).mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    with open(root / "nbgrader_config.py", "a") as fh:
        fh.write("c.Execute.timeout = 15\n")
    source = source_notebook(target)
    nbformat.write(source, str(root / "solutions" / target.assignment / target.notebook))
    assert main(["--course", str(root), "release", target.assignment]) == 0
    course = Course.locate(root)
    released = submissions.read(root / "assignments" / target.assignment / target.notebook)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    klass = catalogue(target, source, released, course=root, port=port, only=only)
    write_class(course, target.assignment, klass)
    add_files(target, root, lambda s: course.submission_directory(target.assignment, s))
    return root, course, klass, listener


def grade_and_collect(root, course, klass, listener, target, grade):
    os.environ["COURSEKIT_TEST_SECRET"] = SECRET_VALUE
    try:
        grade()
    finally:
        del os.environ["COURSEKIT_TEST_SECRET"]
    try:
        listener.accept()
        reached = True
    except TimeoutError:
        reached = False
    listener.close()
    results = {r.student: r for r in journal_for(course, target.assignment).results()}
    return root, klass, results, reached


def _graded(tmp_path_factory, target, only=None):
    root, course, klass, listener = attack_course(tmp_path_factory, target, only)

    def grade():
        args = ["--course", str(root), "grade", target.assignment, "--workers", "2", "--quiet"]
        assert main(args) == 0

    return (*grade_and_collect(root, course, klass, listener, target, grade), target)


@pytest.fixture(scope="module", params=["a1", "a3"])
def graded(request, tmp_path_factory):
    if request.param == "a1":
        return _graded(tmp_path_factory, A1)
    return _graded(tmp_path_factory, A3, only=A3_ONLY)


def test_every_submission_has_a_score_and_a_reason(graded):
    _, klass, results, _, target = graded
    assert set(results) == set(klass)
    for student, result in results.items():
        assert result.status in ("graded", "ungradable"), (student, result.reason)
        assert 0.0 <= result.score <= target.full_marks
        failed = [t for t in result.tests if t["autograded"] and not t["passed"]]
        assert result.reason or all(t["message"] for t in failed), (student, failed)


def test_canaries_keep_full_marks(graded):
    _, _, results, _, target = graded
    for student in ("correct-1", "correct-2"):
        assert results[student].score == target.full_marks, (student, results[student].tests)
        assert results[student].reason is None


ALL = [*CODE_ATTACKS, *RUNNER_ATTACKS, *NOTEBOOK_ATTACKS, *FILE_ATTACKS]


@pytest.mark.parametrize("attack", ALL)
def test_attack_gains_no_points(graded, attack):
    _, klass, results, _, target = graded
    if f"attack-{attack}" not in klass:
        pytest.skip(f"not in the {target.assignment} catalogue")
    baseline = results["wrong"]
    assert baseline.score == target.full_marks - target.points
    result = results[f"attack-{attack}"]
    attacked = [t for t in result.tests if t["cell"] == target.test]
    assert result.score <= baseline.score, (attack, result.reason, result.tests)
    assert not any(t["passed"] for t in attacked), (attack, attacked)


def _student_visible(result) -> str:
    return b"".join(result.files.values()).decode("utf-8", "replace") + str(result.tests)


def test_no_instructor_file_path_or_secret_reaches_a_student(graded):
    root, klass, results, _, _ = graded
    for student in klass:
        text = _student_visible(results[student])
        assert SECRET_VALUE not in text, student
        assert "LEAK " not in text, (student, [ln for ln in text.splitlines() if "LEAK " in ln])
        assert "the reference answers" not in text
        assert "SEEDS ['seed=" not in text, student  # no hidden-test source reached a kernel
    if "attack-read-anything" in results:
        assert "SEEN " in _student_visible(results["attack-read-anything"]), "walk did not run"
    if "attack-read-proc-and-environment" in results:
        text = _student_visible(results["attack-read-proc-and-environment"])
        assert "PROC " in text and str(root) not in text


def test_nothing_written_outside_home_and_no_network(graded):
    root, _, _, reached, _ = graded
    assert not reached, "a student kernel connected to the grader's loopback"
    assert not any(Path(root).rglob("written-by-student.txt"))


@pytest.mark.parametrize(
    "attack",
    ["calls-reference", "calls-reference-obfuscated", "getsource-exec", "patched-check"],
)
def test_integrity_violations_are_flagged_with_the_evidence(graded, attack):
    _, klass, results, _, _ = graded
    if f"attack-{attack}" not in klass:
        pytest.skip("not in this catalogue")
    messages = [t["message"] or "" for t in results[f"attack-{attack}"].tests]
    assert any("integrity" in m or "not available" in m for m in messages), messages


def test_forged_channel_is_reported_as_integrity(graded):
    _, _, results, _, _ = graded
    tests = results["attack-forged-channel"].tests
    messages = " ".join(t["message"] or "" for t in tests)
    # Which forged frame the grader meets first depends on timing: one written between two
    # cases is "out of turn", one read in place of an answer is "malformed"; either voids the rest.
    assert "integrity" in messages, messages
    assert "out of turn" in messages or "malformed answer" in messages, messages


def test_changed_cell_metadata_costs_only_that_cell_and_is_reported(graded):
    _, klass, results, _, target = graded
    if "attack-renamed-test-cell" not in klass:
        pytest.skip("not in this catalogue")
    renamed = results["attack-renamed-test-cell"]
    assert "cell test_mine is not in the release" in renamed.reason
    made_answer = results["attack-test-cell-made-answer"]
    assert f"cell {target.test}: grade, solution, locked changed" in made_answer.reason
    for result in (renamed, made_answer, results["attack-duplicated-test-cell"]):
        assert result.status == "graded", result.reason
        control = next(t for t in result.tests if t["cell"] == target.control)
        assert control["passed"], (result.student, result.tests)


@pytest.mark.parametrize("accident", [*ACCIDENTS, "surrogates"])
def test_accidents_in_a_correct_notebook_cost_nothing(graded, accident):
    _, klass, results, _, target = graded
    if f"accident-{accident}" not in klass:
        pytest.skip("not in this catalogue")
    result = results[f"accident-{accident}"]
    assert result.score == target.full_marks, (accident, result.reason, result.tests)
    if accident != "surrogates":
        assert "restored from the release" in result.reason or "appears again" in result.reason


def test_links_and_special_files_are_left_out_with_a_reason(graded):
    _, klass, results, _, _ = graded
    for name in FILE_ATTACKS:
        if f"attack-{name}" in klass:
            reason = results[f"attack-{name}"].reason or ""
            assert "left out" in reason, (name, reason)


# The same guarantees with the grading spread over Dask worker processes.
ON_DASK = [
    "memory-bomb",
    "fork-flood",
    "read-instructor-files",
    "network",
    "write-outside-scratch",
    "calls-reference-obfuscated",
    "displayhook-before-each-cell",
]


def test_sandbox_and_limits_hold_on_dask_workers(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    from coursekit.instructor.batch import grade_assignment

    root, course, klass, listener = attack_course(tmp_path_factory, A1, only=ON_DASK)

    def grade():
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            summary = grade_assignment(course, A1.assignment, scheduler=client, progress=False)
        assert len(summary.graded) == len(klass)

    root, _, results, reached = grade_and_collect(root, course, klass, listener, A1, grade)
    assert not reached and not any(Path(root).rglob("written-by-student.txt"))
    for student in ("correct-1", "correct-2"):
        assert results[student].score == A1.full_marks, (student, results[student].tests)
    for attack in ON_DASK:
        result = results[f"attack-{attack}"]
        assert result.score <= results["wrong"].score, (attack, result.reason, result.tests)
