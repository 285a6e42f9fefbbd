"""``coursekit grade`` and the commands that read its results, on the real nbgrader.

A synthesized class of the tiny fixture course (tests/fixtures/course) holds correct
canaries, blank notebooks, two mistakes and every kind of broken submission. It is graded
once per test session by the command line; the tests compare it with plain
``nbgrader autograde``, check every broken case, the feedback pages, the CSV export and the
report. Separate small classes check resuming after a kill and the Dask executor.
"""

import contextlib
import copy
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from coursekit.cli.main import main
from coursekit.grading import submissions
from coursekit.grading.submissions import Mutation
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course
from coursekit.instructor.demo import synthesize_class, write_class
from coursekit.instructor.feedback import hidden_lines
from coursekit.instructor.validate import compare_trees, find_leaks

pytestmark = [
    pytest.mark.slow,
    # the duplicated-test-cell submission is invalid on purpose
    pytest.mark.filterwarnings("ignore:Non-unique cell id"),
]

FIXTURE = Path(__file__).parent / "fixtures" / "course"
BIN = os.path.dirname(sys.executable)
MISTAKES = [
    Mutation("subtracts", "add", "return a + b", "return a - b", ("test_add",)),
    Mutation("adds_the_factor", "scale", "* k", "+ k", ("test_scale",)),
]
CANARIES = ["correct-1", "correct-2", "correct-3"]
# student -> (status, words of the recorded reason)
BROKEN = {
    "broken-malformed-json": ("ungradable", "not valid JSON"),
    "broken-empty-file": ("ungradable", "empty notebook file"),
    "broken-renamed-notebook": ("ungradable", "f1 (1).ipynb"),
    "broken-no-notebook": ("ungradable", "no notebook found"),
    "broken-stripped-metadata": ("graded", "put back in their release roles"),
    "broken-deleted-test-cell": ("graded", "test cells missing"),
    "broken-old-metadata": ("ungradable", "old or altered nbgrader metadata"),
    "broken-duplicated-test-cell": ("graded", "test_add appears again: graded as an ordinary cell"),
    "broken-kernel-dies": ("graded", "the kernel died in cell add"),
    "broken-timeout": ("graded", "time limit"),
}
# plain `nbgrader autograde` stops the whole batch at these (SchemaTooOldError)
ABORTS_PLAIN_NBGRADER = ["broken-old-metadata", "broken-duplicated-test-cell"]
# coursekit puts the stripped cells back in their roles; plain nbgrader scores them 0
RESTORED = ["broken-stripped-metadata"]


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def released_course(directory: Path) -> Course:
    shutil.copytree(FIXTURE, directory)
    with open(directory / "nbgrader_config.py", "a") as fh:
        fh.write("c.Execute.timeout = 5\n")
    assert cli("--course", directory, "release", "f1") == 0
    return Course.locate(directory)


def fixture_class(course: Course, size: int = 0, extra_broken: bool = True) -> dict:
    src = course.directory("source") / "f1"
    rel = course.directory("release") / "f1"
    klass = synthesize_class(src, rel, MISTAKES, {}, size)
    if extra_broken:
        correct = klass["correct-1"]["f1.ipynb"]
        old = copy.deepcopy(correct)
        for cell in old.cells:
            if "nbgrader" in cell.metadata:
                cell.metadata.nbgrader["schema_version"] = 1
        dup = copy.deepcopy(correct)
        test = next(
            c for c in dup.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add"
        )
        dup.cells.insert(dup.cells.index(test), copy.deepcopy(test))
        source = submissions.read(src / "f1.ipynb")
        released = submissions.read(rel / "f1.ipynb")
        sleepy = submissions.submission(
            source, released, answers={"add": "import time\ntime.sleep(60)"}
        )
        klass.update(
            {
                "broken-old-metadata": {"f1.ipynb": old},
                "broken-duplicated-test-cell": {"f1.ipynb": dup},
                "broken-timeout": {"f1.ipynb": sleepy},
                "broken-no-notebook": {"notes.txt": b"I could not finish"},
            }
        )
    write_class(course, "f1", klass)
    return klass


def gradebook_state(root: Path) -> dict:
    """Every field autograde writes, plus row counts (a double import would change them)."""
    from nbgrader.api import Grade, Gradebook, SubmittedAssignment

    state = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                sid = sub.student.id
                state[(sid, "timestamp")] = sub.timestamp
                for nb in sub.notebooks:
                    state[(sid, nb.name, "penalty")] = nb.late_submission_penalty
                    for g in nb.grades:
                        state[(sid, nb.name, g.name)] = (g.auto_score, g.needs_manual_grade)
                    for c in nb.comments:
                        state[(sid, nb.name, c.name, "comment")] = c.auto_comment
        state["rows"] = (
            gb.db.query(SubmittedAssignment).count(),
            gb.db.query(Grade).count(),
        )
    return state


def scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: float(s.score) for s in gb.find_assignment("f1").submissions}


def graded_class(base: Path):
    """The synthesized class graded by `coursekit grade`, and a plain-nbgrader copy."""
    course = released_course(base / "course")
    klass = fixture_class(course)
    plain = base / "plain"
    shutil.copytree(course.root, plain)
    for student in ABORTS_PLAIN_NBGRADER:
        shutil.rmtree(plain / "submitted" / student)
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    return course, plain, klass


def check_every_student_has_a_recorded_score_and_reason(graded):
    course, _, klass = graded
    results = {r.student: r for r in journal_for(course, "f1").results()}
    assert set(results) == set(klass)
    gradebook = scores(course.root)
    assert set(gradebook) == set(klass)
    for student, (status, words) in BROKEN.items():
        result = results[student]
        assert result.status == status, (student, result.reason)
        assert words in (result.reason or ""), (student, result.reason)
        assert gradebook[student] == result.score
    for student in ("broken-malformed-json", "broken-kernel-dies", "broken-no-notebook"):
        assert gradebook[student] == 0.0
    # A deleted test cell costs that cell only; the rest of the notebook is graded.
    assert results["broken-deleted-test-cell"].score == 3.0
    # A test cell pasted twice (JupyterLab copies metadata) costs nothing.
    assert results["broken-duplicated-test-cell"].score == 5.0
    # Cells whose metadata was stripped are found again in the release: full marks.
    assert results["broken-stripped-metadata"].score == 5.0
    # Every result says where it was graded, and the same environment for all.
    digests = {r.provenance["environment_digest"] for r in results.values()}
    assert len(digests) == 1
    for r in results.values():
        env = r.provenance["environment"]
        assert env["coursekit"]["digest"] == env["kernel_coursekit"]["digest"]
        assert env["packages"]["nbgrader"] and env["limits"]["cell_timeout"] == 5
        assert r.provenance["assignment_digest"]
    for student in CANARIES:
        autograded = [t for t in results[student].tests if t["autograded"]]
        assert autograded and all(t["passed"] for t in autograded), student
        assert results[student].score == 5.0 and results[student].reason is None
    for mutation in MISTAKES:
        result = results[f"mistake-{mutation.name.replace('_', '-')}"]
        failed = {t["cell"] for t in result.tests if t["autograded"] and not t["passed"]}
        assert failed == set(mutation.tests)


def check_scores_equal_plain_nbgrader_autograde(graded):
    course, plain, _ = graded
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run(
        [os.path.join(BIN, "nbgrader"), "autograde", "f1"],
        cwd=plain,
        env=env,
        capture_output=True,
        timeout=900,
    )
    ours, theirs = gradebook_state(course.root), gradebook_state(plain)
    ours_scores, plain_scores = scores(course.root), scores(plain)
    finished = {p.parent.name for p in (plain / "autograded").glob("*/f1")}
    assert finished >= set(CANARIES) | {"blank-1", "broken-timeout"}
    finished -= set(RESTORED)
    for student in set(plain_scores) - set(RESTORED):
        assert ours_scores[student] == plain_scores[student], student
        if student in finished:
            mine = {k: v for k, v in ours.items() if k[0] == student}
            assert mine == {k: v for k, v in theirs.items() if k[0] == student}, student
    # plain nbgrader's autograded notebooks are ours too, cell for cell
    for student in finished:
        a = nbformat.read(str(plain / "autograded" / student / "f1" / "f1.ipynb"), as_version=4)
        b = nbformat.read(
            str(course.root / "autograded" / student / "f1" / "f1.ipynb"), as_version=4
        )
        assert [c.source for c in a.cells] == [c.source for c in b.cells]


def check_rerun_grades_nothing_and_changes_nothing(graded, capsys):
    course, _, klass = graded
    before = gradebook_state(course.root)
    assert cli("--course", course.root, "grade", "f1", "--quiet") == 0
    out = capsys.readouterr().out
    assert f"graded 0, already graded {len(klass)}" in out
    assert "preflight" not in out  # nothing to grade, nothing to check
    assert gradebook_state(course.root) == before


def check_feedback_pages_hold_no_hidden_test_source(graded):
    course, _, klass = graded
    assert cli("--course", course.root, "feedback", "f1") == 0
    secrets = [
        line
        for cell in submissions.read(course.directory("source") / "f1" / "f1.ipynb").cells
        for line in hidden_lines(cell.source)
    ]
    assert len(secrets) == 3
    fragments = secrets + ["add(-7, 7)", "np.eye(2), -3.0", "BEGIN HIDDEN TESTS"]
    for student in klass:
        page = course.directory("feedback") / student / "f1" / "f1.html"
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text("utf-8")))
        for fragment in fragments:
            assert fragment not in text, (student, fragment)
        assert student in text
    wrong = course.directory("feedback") / "mistake-subtracts" / "f1" / "f1.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", wrong.read_text("utf-8")))
    assert "add(1, 2) should be 3" in text and "3 / 6" in text
    broken = course.directory("feedback") / "broken-malformed-json" / "f1" / "f1.html"
    assert "not valid JSON" in broken.read_text("utf-8")


def page_text(course: Course, student: str) -> str:
    page = course.directory("feedback") / student / "f1" / "f1.html"
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text("utf-8")))


def page_statuses(course: Course, student: str) -> dict:
    page = (course.directory("feedback") / student / "f1" / "f1.html").read_text("utf-8")
    return dict(re.findall(r"<tr><td>([\w-]+)</td>.*?data-status='(\w+)'", page))


def check_feedback_statuses_are_honest(graded):
    """Each status says what happened: nobody waits for a TA for an autograded test."""
    course, _, klass = graded
    for student in klass:
        text = page_text(course, student)
        assert ".coursekit" not in text and "/scratch/" not in text, student
        got = page_statuses(course, student)
        assert got.get("test_add") != "manual" and got.get("test_scale") != "manual", student
    assert page_statuses(course, "correct-1") == {
        "test_add": "passed",
        "test_scale": "passed",
        "why_float_answer": "graded",  # left unanswered: nbgrader gives it 0 itself
    }
    assert page_statuses(course, "broken-stripped-metadata")["test_add"] == "passed"
    # the student's own error, quoted with the line of their code
    assert page_statuses(course, "blank-1")["test_add"] == "error"
    blank = page_text(course, "blank-1")
    assert "NotImplementedError" in blank
    # wrong values
    assert page_statuses(course, "mistake-subtracts")["test_add"] == "failed"
    # ungradable: the reason, no manual grading promised
    assert set(page_statuses(course, "broken-malformed-json").values()) == {"ungradable"}
    assert "could not be graded" in page_text(course, "broken-malformed-json")
    assert page_statuses(course, "broken-kernel-dies")["test_add"] == "not_run"
    assert "the kernel died in cell add" in page_text(course, "broken-kernel-dies")
    # a deleted test cell is not run; an answer that ran out of time says so
    assert page_statuses(course, "broken-deleted-test-cell")["test_add"] == "not_run"
    assert page_statuses(course, "broken-timeout")["test_add"] == "timeout"
    assert "time limit" in page_text(course, "broken-timeout")


def check_ta_grades_reach_feedback_and_survive_force(graded, capsys):
    """A TA's score and comments (formgrader) show on the page; --force keeps them."""
    from nbgrader.api import Gradebook

    course, _, _ = graded
    with Gradebook(course.db_url) as gb:
        grade = gb.find_grade("why_float_answer", "f1", "f1", "correct-1")
        grade.manual_score = 1.0
        grade.needs_manual_grade = False
        gb.find_comment(
            "why_float_answer", "f1", "f1", "correct-1"
        ).manual_comment = "Right: integer arrays stay integer."
        gb.find_comment("add", "f1", "f1", "correct-1").manual_comment = "Clean and short."
        gb.db.commit()
    assert cli("--course", course.root, "grade", "f1", "--force", "--student", "correct-1") == 0
    assert "graded 1, already graded 0" in capsys.readouterr().out
    with Gradebook(course.db_url) as gb:
        grade = gb.find_grade("why_float_answer", "f1", "f1", "correct-1")
        assert grade.manual_score == 1.0 and not grade.needs_manual_grade
    assert cli("--course", course.root, "feedback", "f1", "--student", "correct-1") == 0
    text = page_text(course, "correct-1")
    assert "Right: integer arrays stay integer." in text and "Clean and short." in text
    assert page_statuses(course, "correct-1")["why_float_answer"] == "graded"
    assert "6 / 6" in text


def check_export_csv_matches_nbgrader_export(graded, tmp_path):
    course, _, klass = graded
    ours = tmp_path / "ours.csv"
    assert cli("--course", course.root, "export", "f1", "--to", ours) == 0
    theirs = tmp_path / "theirs.csv"
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run(
        [os.path.join(BIN, "nbgrader"), "export", "--to", str(theirs)],
        cwd=course.root,
        env=env,
        check=True,
        capture_output=True,
    )
    assert ours.read_text().splitlines()[0] == theirs.read_text().splitlines()[0]
    assert sorted(ours.read_text().splitlines()) == sorted(theirs.read_text().splitlines())
    data = json.loads(ours.with_suffix(".json").read_text())["assignments"]["f1"]
    assert set(data) == set(klass)
    cells = {t["cell"]: t for t in data["mistake-subtracts"]["tests"]}
    assert cells["test_add"]["passed"] is False and cells["test_add"]["points"] == 0.0
    assert cells["test_scale"]["passed"] is True and cells["test_scale"]["points"] == 3.0
    assert "should be 3" in cells["test_add"]["message"]
    assert data["broken-malformed-json"]["status"] == "ungradable"
    # the kernel died in the answer cell of add: the cells after it did not run
    dead = {t["cell"]: t["status"] for t in data["broken-kernel-dies"]["tests"]}
    assert dead["test_add"] == dead["test_scale"] == "not_run"


def check_report_item_analysis(graded, capsys):
    course, _, klass = graded
    assert cli("--course", course.root, "report", "f1") == 0
    out = capsys.readouterr().out
    directory = course.root / "reports" / "f1"
    assert (directory / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((directory / "report.json").read_text())
    ungradable = {s for s, (status, _) in BROKEN.items() if status == "ungradable"}
    assert set(data["ungradable"]) == ungradable
    items = {i["cell"]: i for i in data["items"]}
    graded_count = len(klass) - len(ungradable)
    assert items["test_add"]["submissions"] == graded_count
    # test_add passes for the canaries, the duplicated-cell copy of correct-1, the copy
    # whose metadata was stripped and the scale mistake only
    assert items["test_add"]["passed"] == len(CANARIES) + 1 + 1 + 1
    # test_scale also for the add mistake and the notebook whose add test was deleted
    assert items["test_scale"]["passed"] == len(CANARIES) + 1 + 1 + 2 + 1
    messages = dict(items["test_add"]["failures"])
    assert messages["public test failed: NotImplementedError:"] == 2  # the two blank notebooks
    assert "broken-kernel-dies: the kernel died" in out


def check_changed_submission_is_graded_again(graded, capsys):
    course, _, klass = graded
    target = course.submission_directory("f1", "blank-2") / "f1.ipynb"
    shutil.copy(course.submission_directory("f1", "correct-1") / "f1.ipynb", target)
    assert cli("--course", course.root, "grade", "f1", "--quiet") == 0
    assert f"graded 1, already graded {len(klass) - 1}" in capsys.readouterr().out
    assert scores(course.root)["blank-2"] == 5.0


def small_class(base: Path):
    """Five students graded without interruption: the reference for the resume tests."""
    course = released_course(base / "pristine")
    klass = fixture_class(course, size=0, extra_broken=False)
    keep = {"correct-1", "correct-2", "blank-1", "mistake-subtracts", "broken-malformed-json"}
    for student in set(klass) - keep:
        shutil.rmtree(course.directory("submitted") / student)
    reference = base / "reference"
    shutil.copytree(course.root, reference)
    assert cli("--course", reference, "grade", "f1", "--workers", "2", "--quiet") == 0
    return base, course.root, gradebook_state(reference)


def check_killed_run_resumes_to_the_same_gradebook(small_class, sig, capsys):
    base, pristine, reference = small_class
    root = base / f"killed-{sig.name}"
    shutil.copytree(pristine, root)
    journal = root / ".coursekit" / "journal" / "f1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coursekit.cli.main", "--course", str(root), "grade", "f1"]
        + ["--workers", "1", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(journal.glob("*.imported")):
            assert proc.poll() is None, "the run ended before the first result"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the run's own workers, if any are left
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    done = len(list(journal.glob("*.imported")))
    total = len(list((root / "submitted").iterdir()))
    assert 1 <= done < total
    assert cli("--course", root, "grade", "f1", "--workers", "2", "--quiet") == 0
    out = capsys.readouterr().out
    graded_now = int(re.search(r"graded (\d+), already graded (\d+)", out).group(1))
    reused = int(re.search(r"graded (\d+), already graded (\d+)", out).group(2))
    assert reused >= done and graded_now + reused == total
    assert gradebook_state(root) == reference


def check_dask_executor_gives_the_local_scores(small_class):
    distributed = pytest.importorskip("distributed")
    from coursekit.instructor.batch import grade_assignment

    base, pristine, reference = small_class
    root = base / "dask"
    shutil.copytree(pristine, root)
    # Two single-threaded worker processes: nbgrader changes process-wide state while it
    # grades, so one Dask worker process grades one submission at a time.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        summary = grade_assignment(Course.locate(root), "f1", scheduler=client, progress=False)
    assert summary.ok and len(summary.graded) == len(list((root / "submitted").glob("*/f1")))
    assert gradebook_state(root) == reference


def test_validate_passes_and_catches_drift_and_leaks(tmp_path, capsys):
    course = released_course(tmp_path / "course")
    assert cli("--course", course.root, "validate", "f1", "--workers", "2") == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 5
    # a release that drifted from the source, and leaks a hidden test, is caught
    source = submissions.read(course.directory("source") / "f1" / "f1.ipynb")
    released_path = course.directory("release") / "f1" / "f1.ipynb"
    released = submissions.read(released_path)
    assert find_leaks(source, released) == []
    leaked = copy.deepcopy(released)
    leaked.cells[3].source += '\nassert add(-7, 7) == 0, "add is wrong for opposite numbers"'
    problems = find_leaks(source, leaked)
    assert len(problems) == 1 and "add(-7, 7)" in problems[0]
    solution = copy.deepcopy(released)
    solution.cells[2].source += "\n    ### BEGIN SOLUTION"
    assert any("BEGIN SOLUTION" in p for p in find_leaks(source, solution))
    pristine = tmp_path / "pristine"
    shutil.copytree(released_path.parent, pristine)
    nbformat.write(leaked, str(released_path))
    assert compare_trees(pristine, released_path.parent) == ["f1.ipynb differs"]
    assert compare_trees(tmp_path / "nowhere", pristine)[0].endswith("(run `coursekit release`)")


# One test per graded class: with `pytest -n auto` separate tests could each build the class
# in another worker process; the checks above run in order on one grading.
def test_synthesized_class_end_to_end(tmp_path, capsys):
    graded = graded_class(tmp_path)
    capsys.readouterr()
    check_every_student_has_a_recorded_score_and_reason(graded)
    check_scores_equal_plain_nbgrader_autograde(graded)
    check_rerun_grades_nothing_and_changes_nothing(graded, capsys)
    check_feedback_pages_hold_no_hidden_test_source(graded)
    check_feedback_statuses_are_honest(graded)
    check_export_csv_matches_nbgrader_export(graded, tmp_path)
    check_report_item_analysis(graded, capsys)
    check_changed_submission_is_graded_again(graded, capsys)
    check_ta_grades_reach_feedback_and_survive_force(graded, capsys)


def test_interrupted_runs_and_dask_reach_the_uninterrupted_gradebook(tmp_path, capsys):
    reference = small_class(tmp_path)
    capsys.readouterr()
    for sig in (signal.SIGKILL, signal.SIGINT):
        check_killed_run_resumes_to_the_same_gradebook(reference, sig, capsys)
    check_dask_executor_gives_the_local_scores(reference)
