"""The attack catalogue (tests/attacks) graded by ``coursekit grade`` in one batch.

No attack gains points over the same wrong answer without it, reads instructor files,
writes outside its scratch directory or reaches the grader's loopback; the correct canaries
graded alongside keep full marks; every submission ends with a score and a reason.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import nbformat
import pytest
from attacks import (
    ACCIDENTS,
    ASSIGNMENT,
    CODE_ATTACKS,
    NOTEBOOK,
    NOTEBOOK_ATTACKS,
    REPO,
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
    pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is unusable here"),
    pytest.mark.filterwarnings("ignore:Non-unique cell id"),
]
FULL_MARKS = 6.0  # softmax and logsumexp test cells, 3 points each


def attack_course(tmp_path_factory, only=None):
    """A released course with the catalogue (or the attacks in ``only``) submitted."""
    root = tmp_path_factory.mktemp("attacks") / "course"
    (root / "solutions" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    with open(root / "nbgrader_config.py", "a") as fh:
        fh.write("c.Execute.timeout = 15\n")
    source = source_notebook()
    nbformat.write(source, str(root / "solutions" / ASSIGNMENT / NOTEBOOK))
    assert main(["--course", str(root), "release", ASSIGNMENT]) == 0
    course = Course.locate(root)
    released = submissions.read(root / "assignments" / ASSIGNMENT / NOTEBOOK)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    klass = catalogue(source, released, course=root, port=port)
    if only is not None:
        keep = {"correct-1", "correct-2", "wrong", *(f"attack-{name}" for name in only)}
        klass = {student: nbs for student, nbs in klass.items() if student in keep}
    write_class(course, ASSIGNMENT, klass)
    return root, course, klass, listener


def grade_and_collect(root, course, klass, listener, grade):
    grade()
    try:
        listener.accept()
        reached = True
    except TimeoutError:
        reached = False
    listener.close()
    results = {r.student: r for r in journal_for(course, ASSIGNMENT).results()}
    return root, klass, results, reached


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root, course, klass, listener = attack_course(tmp_path_factory)

    def grade():
        assert main(["--course", str(root), "grade", ASSIGNMENT, "--workers", "2", "--quiet"]) == 0

    return grade_and_collect(root, course, klass, listener, grade)


def test_every_submission_has_a_score_and_a_reason(graded):
    _, klass, results, _ = graded
    assert set(results) == set(klass)
    for student, result in results.items():
        assert result.status in ("graded", "ungradable"), (student, result.reason)
        assert 0.0 <= result.score <= FULL_MARKS
        failed = [t for t in result.tests if t["autograded"] and not t["passed"]]
        assert result.reason or all(t["message"] for t in failed), (student, failed)


def test_canaries_keep_full_marks(graded):
    _, _, results, _ = graded
    for student in ("correct-1", "correct-2"):
        assert results[student].score == FULL_MARKS, (student, results[student].tests)
        assert results[student].reason is None


@pytest.mark.parametrize("attack", [*CODE_ATTACKS, *NOTEBOOK_ATTACKS])
def test_attack_gains_no_points(graded, attack):
    _, _, results, _ = graded
    baseline = results["wrong"]
    assert baseline.score == FULL_MARKS - 3.0
    result = results[f"attack-{attack}"]
    softmax = [t for t in result.tests if t["cell"] == "test_softmax"]
    assert result.score <= baseline.score, (attack, result.reason, result.tests)
    assert not any(t["passed"] for t in softmax), (attack, softmax)


def test_a_kernel_sees_no_file_beyond_its_own(graded):
    _, _, results, _ = graded
    files = results["attack-read-anything"].files
    text = b"".join(files.values()).decode()
    assert "SEEN " in text, "the walk did not run"
    assert "LEAK " not in text, [ln for ln in text.splitlines() if "LEAK " in ln][:10]


def test_nothing_written_outside_scratch_and_no_network(graded):
    root, _, _, reached = graded
    assert not reached, "a student kernel connected to the grader's loopback"
    assert not (root / "written-by-student.txt").exists()
    assert not any(Path(root).rglob("written-by-student.txt"))


@pytest.mark.parametrize(
    "attack",
    [
        "calls-reference",
        "calls-reference-obfuscated",
        "calls-reference-in-thread",
        "calls-reference-via-registry",
        "patched-check",
        "swallowed-tracebacks",
    ],
)
def test_integrity_violations_are_flagged_with_the_reason(graded, attack):
    _, _, results, _ = graded
    messages = [t["message"] or "" for t in results[f"attack-{attack}"].tests]
    assert any("integrity" in m for m in messages), messages


def test_changed_cell_metadata_costs_only_that_cell_and_is_reported(graded):
    _, _, results, _ = graded
    renamed = results["attack-renamed-test-cell"]
    assert "cell test_softmax_mine is not in the release" in renamed.reason
    made_answer = results["attack-test-cell-made-answer"]
    assert "cell test_softmax: grade, solution, locked changed" in made_answer.reason
    for result in (renamed, made_answer, results["attack-duplicated-test-cell"]):
        assert result.status == "graded", result.reason
        logsumexp = next(t for t in result.tests if t["cell"] == "test_logsumexp")
        assert logsumexp["passed"], (result.student, result.tests)


@pytest.mark.parametrize("accident", ACCIDENTS)
def test_accidental_metadata_edits_of_a_correct_notebook_cost_nothing(graded, accident):
    _, _, results, _ = graded
    result = results[f"accident-{accident}"]
    assert result.score == FULL_MARKS, (accident, result.reason, result.tests)
    assert "restored from the release" in result.reason or "appears again" in result.reason


def test_trusted_verdict_judges_records_and_needs_one_per_check(tmp_path):
    import numpy as np

    from coursekit.grading.trusted import hidden_checks, record, trusted_verdict

    source = 'x = 1\ncheck("a1.softmax", softmax, seed=11)\ncheck("a1.logsumexp", f, seed=12)\n'
    assert hidden_checks(source) == [("a1.softmax", 11), ("a1.logsumexp", 12)]
    assert trusted_verdict("assert True", tmp_path) is None  # no hidden test: nbgrader decides

    class Liar(np.ndarray):
        def __eq__(self, other):
            return np.ones(self.shape, bool)

    def wrong(z):
        exps = np.exp(z - z.max())
        return (exps / exps.sum()).view(Liar)

    # correct answers written here: recording coursekit's own functions is an integrity failure
    def softmax(z):
        exps = np.exp(z - z.max(axis=1, keepdims=True))
        return exps / exps.sum(axis=1, keepdims=True)

    def logsumexp(z):
        row_max = z.max(axis=1, keepdims=True)
        return np.log(np.exp(z - row_max).sum(axis=1)) + row_max[:, 0]

    record("a1.softmax", softmax, 11, tmp_path)
    passed, message = trusted_verdict(source, tmp_path)
    assert not passed and "a1.logsumexp: the hidden test left no result" in message
    record("a1.logsumexp", logsumexp, 12, tmp_path)
    assert trusted_verdict(source, tmp_path) == (True, "")
    record("a1.softmax", wrong, 11, tmp_path)
    passed, message = trusted_verdict(source, tmp_path)
    assert not passed and message.startswith("a1.softmax: ")
    (tmp_path / "a1.logsumexp@12.json").write_text('[{"label": "x", "output": {"dtype": "|O"}}]')
    assert "unusable hidden-test result" in trusted_verdict(source, tmp_path)[1]


# The same guarantees with the grading spread over Dask worker processes.
ON_DASK = [
    "memory-bomb",
    "fork-flood",
    "read-instructor-files",
    "network",
    "write-outside-scratch",
    "calls-reference-obfuscated",
    "patched-check",
]


def test_sandbox_and_limits_hold_on_dask_workers(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    from coursekit.instructor.batch import grade_assignment

    root, course, klass, listener = attack_course(tmp_path_factory, only=ON_DASK)

    def grade():
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            summary = grade_assignment(course, ASSIGNMENT, scheduler=client, progress=False)
        assert len(summary.graded) == len(klass)

    root, _, results, reached = grade_and_collect(root, course, klass, listener, grade)
    assert not reached and not any(Path(root).rglob("written-by-student.txt"))
    for student in ("correct-1", "correct-2"):
        assert results[student].score == FULL_MARKS, (student, results[student].tests)
    for attack in ON_DASK:
        result = results[f"attack-{attack}"]
        assert result.score <= results["wrong"].score, (attack, result.reason, result.tests)
