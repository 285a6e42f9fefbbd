"""Statuses, sanitized messages, provenance and the journal, without running a kernel."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from coursekit.instructor import provenance, statuses
from coursekit.instructor.grade import (
    GradingResult,
    cell_outcomes,
    cell_status,
    result_from_json,
    result_to_json,
    student_line,
)
from coursekit.instructor.journal import Journal


def test_sanitize_removes_scratch_state_and_socket_paths():
    text = (
        "UserWarning at /work/c/.coursekit/runs/a1/scratch/alice-x1y2/submitted/alice/a1/"
        "helpers.py:3\n  see /srv/course/.coursekit/journal/a1/alice.json and /tmp/ck-ab12/k"
    )
    clean = statuses.sanitize(text)
    assert clean.startswith("UserWarning at helpers.py:3")
    assert ".coursekit" not in clean and "/tmp/ck-" not in clean and "<grader>" in clean
    assert statuses.sanitize("/tmp/grade-7/x.py line 2", roots=("/tmp/grade-7",)) == "x.py line 2"
    assert statuses.sanitize(None) is None
    # a path inside JSON text keeps the JSON valid
    data = json.dumps({"text": "a\n/w/.coursekit/runs/a/scratch/s-1/submitted/s/a/f.py"})
    assert json.loads(statuses.sanitize(data)) == {"text": "a\nf.py"}


def test_an_autograded_test_never_awaits_manual_grading():
    ungradable = statuses.test_status(
        {"autograded": True, "passed": False},
        result_status="ungradable",
        reason="the notebook file is not valid JSON",
        needs_manual_grade=True,
    )
    assert ungradable == ("ungradable", "the notebook file is not valid JSON")
    written = statuses.test_status(None, autograded=False, needs_manual_grade=True)
    assert written == ("manual", None)
    assert statuses.test_status(None, autograded=False, needs_manual_grade=False)[0] == "graded"
    # a TA's score wins over everything, even for an ungradable submission
    assert statuses.test_status(
        {"autograded": True}, result_status="ungradable", manual_score=2.0
    ) == ("graded", None)


def test_results_without_a_status_are_classified_by_their_message():
    def status(message, passed=False):
        return statuses.test_status({"autograded": True, "passed": passed, "message": message})[0]

    assert status(None, passed=True) == "passed"
    assert status("GradingError: case 'batch': max relative error 3e-01") == "failed"
    assert status("AssertionError: add(1, 2) should be 3") == "failed"
    assert status("ZeroDivisionError: division by zero") == "error"
    assert status("NameError: name 'add' is not defined") == "not_run"
    assert status("test cell not found in the submission") == "not_run"
    assert status("CellTimeoutError: the cell ran past the time limit") == "timeout"
    assert status("integrity: the submission calls coursekit.ops.softmax") == "integrity"
    assert statuses.label("error") == "failed: your code raised an error"


def traceback_notebook():
    answer = new_code_cell(
        "def add(a, b):\n    return a + b + c", execution_count=1, metadata={"nbgrader": {}}
    )
    answer.metadata["nbgrader"] = {"grade_id": "add", "solution": True, "grade": False}
    test = new_code_cell("assert add(1, 2) == 3", execution_count=2)
    test.metadata["nbgrader"] = {"grade_id": "test_add", "grade": True, "points": 2}
    error = new_output(
        "error",
        ename="NameError",
        evalue="name 'c' is not defined",
        traceback=[
            "\x1b[0;31mNameError\x1b[0m  Traceback (most recent call last)",
            "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n----> 1 assert add(1, 2) == 3",
            "Cell \x1b[0;32mIn[1], line 2\x1b[0m, in \x1b[0;36madd\x1b[0;34m(a, b)\x1b[0m\n"
            "      1 def add(a, b):\n----> 2     return a + b + c",
        ],
    )
    test.outputs = [error]
    return new_notebook(cells=[answer, test]), error


def test_the_students_line_is_found_and_test_cells_are_never_quoted():
    nb, error = traceback_notebook()
    assert student_line(nb, error) == "cell add, line 2: return a + b + c"
    nb.cells[0].metadata["nbgrader"] = {"grade_id": "add", "grade": True}  # now a test cell
    assert student_line(nb, error) is None


def test_cell_outcomes_read_the_status_from_the_outputs():
    nb, error = traceback_notebook()
    error["ename"], error["evalue"] = "ValueError", "shapes do not match"
    files = {"hw.ipynb": nbformat.writes(nb).encode()}
    outcome = cell_outcomes(files)[("hw", "test_add")]
    assert outcome["status"] == "error"
    assert outcome["summary"] == (
        "ValueError: shapes do not match\n  raised in your cell add, line 2: return a + b + c"
    )
    # an answer cell that failed makes the function undefined: not run, and why
    nb.cells[0].outputs = [new_output("error", ename="SyntaxError", evalue="invalid syntax")]
    nb.cells[1].outputs = [new_output("error", ename="NameError", evalue="name 'add' is not ...")]
    outcome = cell_outcomes({"hw.ipynb": nbformat.writes(nb).encode()})[("hw", "test_add")]
    assert outcome["status"] == "not_run"
    assert "an earlier cell failed: cell add: SyntaxError: invalid syntax" in outcome["summary"]


def test_the_hidden_verdict_decides_the_status_when_there_is_one():
    outcome = {"status": "failed", "summary": "x", "public": None, "earlier": None}
    verdict = {"status": "error", "message": "ZeroDivisionError in your line 3: 1 / 0"}
    assert cell_status(outcome, verdict, 0.0, 2.0, True) == ("error", verdict["message"])
    missing = {"status": "missing", "message": "softmax is not defined"}
    assert cell_status(outcome, missing, 0.0, 2.0, True)[0] == "not_run"
    assert cell_status(outcome, {"status": "passed", "message": ""}, 2.0, 2.0, True)[0] == (
        "passed"
    )
    public = {"status": "failed", "message": "public test failed: NotImplementedError: "}
    assert cell_status(outcome, public, 0.0, 2.0, True)[0] == "error"
    assert cell_status(outcome, None, 0.0, 2.0, False)[0] == "not_run"


def test_stored_results_ignore_fields_of_a_newer_coursekit():
    result = GradingResult("a1", "alice", "f", "graded", files={"a1.ipynb": b"{}"})
    data = result_to_json(result)
    data["from_the_future"] = 1
    back = result_from_json(data)
    assert back.files == {"a1.ipynb": b"{}"} and back.provenance == {}


def test_environment_differences_are_named():
    env = provenance.environment()
    assert env["coursekit"]["digest"] == provenance.source_digest(env["coursekit"]["path"])
    assert env["packages"]["nbgrader"] and env["python"]
    other = json.loads(json.dumps(env))
    other["packages"]["numpy"] = "0.0"
    other["coursekit"]["digest"] = "0" * 64
    assert provenance.environment_digest(other) != provenance.environment_digest(env)
    assert provenance.describe_difference(other, env).startswith(
        f"coursekit source changed, numpy 0.0 -> {env['packages']['numpy']}"
    )
    elsewhere = json.loads(json.dumps(env))
    elsewhere["kernel_coursekit"] = {"path": None, "digest": None, "error": "ModuleNotFoundError"}
    assert "cannot import coursekit at all" in provenance.mismatch(elsewhere)


def test_an_unfinished_forced_run_is_remembered_until_done(tmp_path):
    journal = Journal(tmp_path)
    assert journal.force_pending() is None
    journal.start_force(["bob", "alice"], "2026-01-01T10:00:00")
    journal.start_force(["carol"], "2026-01-01T11:00:00")  # a second stopped run adds to it
    assert journal.force_pending() == {
        "started": "2026-01-01T10:00:00",
        "students": ["alice", "bob", "carol"],
    }
    assert journal.results() == []  # the marker is not a result
    journal.finish_force()
    assert journal.force_pending() is None


def test_a_call_into_a_refused_reference_is_an_integrity_problem_with_its_evidence():
    verdict = {
        "status": "error",
        "message": "a1.softmax: 0/8 hidden cases passed\n  - case 'batch of 1': raised "
        "RuntimeError: coursekit.ops.softmax is not available while the hidden tests run",
    }
    status, message = cell_status({}, verdict, 0.0, 3.0, True)
    assert status == "integrity"
    assert message.startswith("integrity: the submission calls coursekit's own implementation")
    assert "(coursekit.ops.softmax)" in message
    own = {"status": "error", "message": "a1.softmax: raised ZeroDivisionError in line 3"}
    assert cell_status({}, own, 0.0, 3.0, True)[0] == "error"
