"""Preflight and provenance: grading never records a zero the environment caused.

The issue this answers: a copy of the course, graded from inside the copy with a virtual
environment whose editable install points at the original checkout, gave every student 0
and exited 0 (the grader imported the copy's coursekit, the kernel the original, which the
sandbox hid). Here that setup is rebuilt for real; the run must either grade correctly or
stop before the gradebook with a message naming both coursekits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from test_cli_grading import cli, fixture_class, gradebook_state, released_course, scores

import coursekit
from coursekit.grading import submissions
from coursekit.instructor import provenance
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course
from coursekit.instructor.preflight import cache_path

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _cell(kind, source, grade_id, **flags):
    meta = {"grade_id": grade_id, "grade": False, "solution": False, "locked": False}
    meta.update(flags, schema_version=3, task=False)
    make = new_code_cell if kind == "code" else new_markdown_cell
    return make(source, metadata={"nbgrader": meta})


def coursekit_assignment() -> nbformat.NotebookNode:
    """One answer and one test cell whose hidden test is coursekit's (A1's softmax task)."""
    answer = (
        "def softmax(logits):\n"
        "    ### BEGIN SOLUTION\n"
        "    shifted = logits - np.max(logits, axis=1, keepdims=True)\n"
        "    exps = np.exp(shifted)\n"
        "    return exps / np.sum(exps, axis=1, keepdims=True)\n"
        "    ### END SOLUTION"
    )
    test = (
        "p = softmax(np.array([[1.0, 2.0, 3.0]]))\n"
        'assert np.allclose(p.sum(axis=1), 1.0), "rows sum to 1"\n'
        "### BEGIN HIDDEN TESTS\n"
        "from coursekit.grading import check\n\n"
        'check("a1.softmax", softmax, seed=7307)\n'
        "### END HIDDEN TESTS"
    )
    nb = new_notebook(
        cells=[
            _cell("markdown", "# M1\n\nWrite a stable softmax.", "intro", locked=True),
            _cell("code", "import numpy as np", "imports", locked=True),
            _cell("code", answer, "softmax", solution=True),
            _cell("code", test, "test_softmax", grade=True, locked=True, points=3),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def course_copy(directory: Path) -> Path:
    """A course folder holding its own copy of coursekit (as a copied checkout does)."""
    directory.mkdir(parents=True)
    shutil.copytree(
        Path(coursekit.__file__).resolve().parent,
        directory / "coursekit",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy2(REPO / "nbgrader_config.py", directory / "nbgrader_config.py")
    (directory / "solutions" / "m1").mkdir(parents=True)
    nbformat.write(coursekit_assignment(), directory / "solutions" / "m1" / "m1.ipynb")
    return directory


def run_in(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    """``python -m coursekit.cli.main`` from inside ``directory``, without PYTHONPATH: the
    grader imports the folder's coursekit, a kernel the one the environment installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        [sys.executable, "-m", "coursekit.cli.main", *argv],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def test_a_course_copy_graded_with_another_checkouts_environment(tmp_path):
    root = course_copy(tmp_path / "copy")
    released = run_in(root, "release", "m1")
    assert released.returncode == 0, released.stderr
    course = Course.locate(root)
    source = submissions.read(root / "solutions" / "m1" / "m1.ipynb")
    release = submissions.read(root / "assignments" / "m1" / "m1.ipynb")
    for student, nb in (
        ("correct", submissions.submission(source, release)),
        ("blank", release),
    ):
        target = course.submission_directory("m1", student)
        target.mkdir(parents=True)
        nbformat.write(nb, str(target / "m1.ipynb"))
    # The mismatch of the issue is really there: two coursekits, and the kernel's is not
    # the one the grader imports.
    grader_side = subprocess.run(
        [sys.executable, "-c", "import coursekit, os; print(os.path.dirname(coursekit.__file__))"],
        cwd=root,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    kernel_side = provenance.kernel_coursekit()["coursekit"]
    assert Path(grader_side).resolve() == (root / "coursekit").resolve()
    assert kernel_side is not None and Path(kernel_side).resolve() != Path(grader_side).resolve()

    graded = run_in(root, "grade", "m1", "--workers", "2", "--quiet")
    results = {r.student: r for r in journal_for(course, "m1").results()}
    if graded.returncode == 0:
        # graded correctly: the reference canary full marks, the blank one nothing
        assert results["correct"].score == 3.0, results["correct"].tests
        assert results["blank"].score == 0.0
        assert "preflight (reference solution and blank release): passed" in graded.stdout
    else:
        # or stopped before the gradebook, naming both coursekits
        assert graded.returncode == 2, graded.stderr
        message = graded.stderr
        assert "preflight failed for m1" in message
        assert "the gradebook is unchanged" in message
        assert str((root / "coursekit").resolve()) in message
        assert str(Path(kernel_side).resolve()) in message
        assert results == {}
        assert scores_of(root, "m1") == {}
        assert not (root / "autograded").exists()
        assert not cache_path(course, "m1").exists()


def scores_of(root: Path, assignment: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def test_a_hidden_test_that_passes_the_blank_release_stops_the_run(tmp_path, capsys):
    course = released_course(tmp_path / "course")
    # a test cell that gives points to an unanswered notebook
    path = course.directory("source") / "f1" / "f1.ipynb"
    nb = submissions.read(path)
    test = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scale"
    )
    test.source = "# public test\nassert True"
    nbformat.write(nb, str(path))
    assert cli("--course", course.root, "release", "f1") == 0
    fixture_class(course, size=0, extra_broken=False)
    before = gradebook_state(course.root)
    capsys.readouterr()
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 2
    err = capsys.readouterr().err
    assert "preflight failed for f1" in err
    assert "the blank release got 3/5 instead of 0 (points for test_scale)" in err
    assert gradebook_state(course.root) == before
    assert journal_for(course, "f1").results() == []


def test_preflight_is_cached_per_environment_and_other_environments_are_regraded(tmp_path, capsys):
    course = released_course(tmp_path / "course")
    klass = fixture_class(course, size=0, extra_broken=False)
    keep = {"correct-1", "blank-1", "mistake-subtracts"}
    for student in set(klass) - keep:
        shutil.rmtree(course.directory("submitted") / student)
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    out = capsys.readouterr().out
    assert "preflight (reference solution and blank release): passed" in out
    cached = json.loads(cache_path(course, "f1").read_text())
    assert cached["passed"] and cached["environment"]["coursekit"]["digest"]
    # A result graded with another numpy (edited into its record) is graded again, and
    # the run says why; the preflight of this environment is not repeated.
    record = course.state_directory / "journal" / "f1" / "blank-1.json"
    data = json.loads(record.read_text())
    data["provenance"]["environment"]["packages"]["numpy"] = "0.0"
    data["provenance"]["environment_digest"] = "elsewhere"
    record.write_text(json.dumps(data))
    before = gradebook_state(course.root)
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    out = capsys.readouterr().out
    assert "graded 1, already graded 2" in out
    assert "graded again: blank-1: graded in another environment (numpy 0.0 -> " in out
    assert "preflight (reference solution and blank release): cached" in out
    assert gradebook_state(course.root) == before
    assert scores(course.root)["correct-1"] == 5.0
