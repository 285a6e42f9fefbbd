"""Every status a student or an instructor reads, on the demo's synthesized class.

The class of ``coursekit demo`` (its first assignment; the correct, blank and broken
submissions and two catalogued mistakes) plus three students the demo does not have: one
who calls coursekit's own softmax (integrity), one who answers the written questions
(awaiting manual grading), one whose answer never returns (time limit). It is graded
once for the module by the real nbgrader; each test reads the statuses the feedback pages,
the export and the report show.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import nbformat
import pytest

from coursekit.grading import submissions
from coursekit.instructor.batch import grade_assignment
from coursekit.instructor.demo import build_demo_course
from coursekit.instructor.export import export
from coursekit.instructor.feedback import write_feedback
from coursekit.instructor.report import write_report

pytestmark = pytest.mark.slow

BROKEN = [
    "broken-malformed-json",
    "broken-empty-file",
    "broken-renamed-notebook",
    "broken-stripped-metadata",
    "broken-deleted-test-cell",
    "broken-kernel-dies",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo") / "course"
    course, assignment, klass = build_demo_course(directory, None, 0)
    mistakes = sorted(s for s in klass if s.startswith("mistake-"))[:2]
    keep = {"correct-1", "blank-1", *mistakes, *BROKEN}
    for student in set(klass) - keep:
        shutil.rmtree(course.directory("submitted") / student)
    with open(course.config_file, "a") as fh:
        fh.write("c.Execute.timeout = 40\n")
    source_dir = course.directory("source") / assignment
    release_dir = course.directory("release") / assignment
    names = sorted(p.name for p in source_dir.glob("*.ipynb"))
    sources = {n: submissions.read(source_dir / n) for n in names}
    released = {n: submissions.read(release_dir / n) for n in names}
    answers = {a for n in names for a in submissions.reference_answers(sources[n])}
    assert "softmax" in answers, "the demo's assignment grades a softmax"
    extra = {
        "integrity-calls-coursekit": submissions.assignment_submission(
            sources,
            released,
            answers={
                "softmax": "from coursekit.ops import softmax as library_softmax\n\n"
                "def softmax(logits):\n    return library_softmax(logits)"
            },
        ),
        "timeout-sleeps": submissions.assignment_submission(
            sources,
            released,
            answers={"softmax": "import time\ntime.sleep(600)"},
        ),
    }
    written = submissions.assignment_submission(sources, released)
    for nb in written.values():
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("solution"):
                cell.source = "Because the largest logit becomes 0 and exp cannot overflow."
    extra["written-answers"] = written
    for student, files in extra.items():
        target = course.submission_directory(assignment, student)
        target.mkdir(parents=True)
        for name, nb in files.items():
            nbformat.write(nb, str(target / name))
    summary = grade_assignment(course, assignment, workers=2, progress=False)
    assert summary.ok, summary.errors
    write_feedback(course, assignment)
    _, json_path = export(course, assignment)
    report = write_report(course, assignment)
    data = json.loads(json_path.read_text())["assignments"][assignment]
    return course, assignment, summary, data, report


def statuses_of(data, student) -> dict:
    return {t["cell"]: t["status"] for t in data[student]["tests"]}


def message_of(data, student, cell) -> str:
    return next(t["message"] for t in data[student]["tests"] if t["cell"] == cell) or ""


def page(course, assignment, student) -> str:
    pages = sorted((course.directory("feedback") / student / assignment).glob("*.html"))
    assert pages, student
    return "\n".join(p.read_text("utf-8") for p in pages)


def test_graded_submissions_pass_or_fail_with_what_differs(demo):
    course, assignment, summary, data, _ = demo
    tests = [c for c, s in statuses_of(data, "correct-1").items() if not c.startswith("q_")]
    assert tests and all(statuses_of(data, "correct-1")[c] == "passed" for c in tests)
    for student in [s for s in data if s.startswith("mistake-")]:
        got = statuses_of(data, student)
        failed = [c for c, s in got.items() if s == "failed"]
        assert failed, (student, got)
        assert all(message_of(data, student, c) for c in failed)


def test_the_students_own_error_is_quoted_with_their_line(demo):
    course, assignment, _, data, _ = demo
    got = statuses_of(data, "blank-1")
    errors = [c for c, s in got.items() if s == "error"]
    assert errors, got
    for cell in errors:
        message = message_of(data, "blank-1", cell)
        assert "NotImplementedError" in message and "line" in message, message
    assert "failed: your code raised an error" in page(course, assignment, "blank-1")


def test_a_deleted_test_cell_is_not_run(demo):
    _, _, _, data, _ = demo
    assert "not_run" in statuses_of(data, "broken-deleted-test-cell").values()


def test_an_answer_past_the_time_limit_says_so(demo):
    _, _, _, data, _ = demo
    assert statuses_of(data, "timeout-sleeps")["test_softmax"] == "timeout"
    assert "time limit" in message_of(data, "timeout-sleeps", "test_softmax")


def test_ungradable_submissions_give_the_reason_and_promise_no_manual_grading(demo):
    course, assignment, _, data, _ = demo
    for student in ("broken-malformed-json", "broken-empty-file"):
        assert data[student]["status"] == "ungradable" and data[student]["reason"]
        assert set(statuses_of(data, student).values()) == {"ungradable"}, student
        text = page(course, assignment, student)
        assert "could not be graded" in text
        assert "awaiting manual grading" not in text and "pending manual" not in text


def test_a_kernel_that_dies_says_where_and_what_did_not_run(demo):
    course, assignment, _, data, _ = demo
    assert "the kernel died in cell" in data["broken-kernel-dies"]["reason"]
    got = statuses_of(data, "broken-kernel-dies")
    assert "manual" not in {s for c, s in got.items() if not c.startswith("q_")}
    assert "not_run" in got.values(), got


def test_manual_grading_is_awaited_only_for_written_answers(demo):
    _, _, _, data, _ = demo
    written = statuses_of(data, "written-answers")
    assert {s for c, s in written.items() if c.startswith("q_")} == {"manual"}
    for student in data:
        for test in data[student]["tests"]:
            if test["status"] == "manual":
                assert test["cell"].startswith("q_"), (student, test)


def test_integrity_problems_only_with_evidence(demo):
    course, assignment, _, data, report = demo
    got = statuses_of(data, "integrity-calls-coursekit")
    assert got["test_softmax"] == "integrity"
    assert "coursekit.ops.softmax" in message_of(data, "integrity-calls-coursekit", "test_softmax")
    others = {s for s in data if "integrity" in statuses_of(data, s).values()}
    assert others == {"integrity-calls-coursekit"}
    assert "Integrity problems (evidence)" in report.text


def test_stripped_metadata_is_restored_from_the_release(demo):
    _, _, summary, data, _ = demo
    got = statuses_of(data, "broken-stripped-metadata")
    tests = [c for c in got if not c.startswith("q_")]
    assert all(got[c] == "passed" for c in tests), got
    assert data["broken-stripped-metadata"]["score"] == data["correct-1"]["score"]


def test_nothing_a_student_reads_shows_the_graders_paths(demo):
    course, assignment, _, data, report = demo
    texts = [json.dumps(data), report.text]
    texts += [page(course, assignment, s) for s in data]
    for text in texts:
        plain = html.unescape(re.sub(r"<[^>]+>", " ", text))
        assert ".coursekit" not in plain and "/scratch/" not in plain
        assert not re.search(r"/tmp/ck-\w+", plain)
