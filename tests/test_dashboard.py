"""The LMS round trip on the real nbgrader: a Canvas zip collected with a roster and a
deadline, graded, a TA's manual grades, feedback (math offline), the Canvas and roster
CSVs, ``report.md`` and the HTML report opened offline in headless Chromium."""

import csv
import io
import json
import re
import shutil
import statistics
import zipfile
from pathlib import Path

import nbformat
import pytest
from browser_support import CHROMIUM_ARGS, check_static_page, find_chromium

from coursekit.cli.main import main
from coursekit.grading import submissions
from coursekit.instructor.course import Course
from coursekit.instructor.dashboard import (
    hidden_only_failures,
    item_statistics,
    point_biserial,
    upper_lower,
)
from coursekit.instructor.gradesheets import CANVAS_COLUMNS, POINTS_POSSIBLE

REPO = Path(__file__).resolve().parents[1]
A = "a1"
A_NOTEBOOK = "vectorization"

ROSTER = """\
id,name,email,canvas_id,sis_user_id,sis_login_id,section
s001,Grace Hopper,grace@uni.edu,111,U1,ghopper,Lab A
s002,Ada Lovelace,ada@uni.edu,222,U2,alovelace,Lab A
s003,John Smith,js1@uni.edu,333,U3,jsmith1,Lab B
s004,John Smith,js2@uni.edu,444,U4,jsmith2,Lab B
s005,Jürgen Müller,jm@uni.edu,555,U5,jmuller,Lab B
s006,Alan Turing,alan@uni.edu,666,U6,aturing,Lab A
s007,Edsger Dijkstra,ed@uni.edu,777,U7,edijkstra,Lab A
"""
# Catalogued mistakes that the public tests in the notebook do not catch.
HIDDEN_ONLY = {"s004": "two_loops_float32", "s005": "knn_vote_tie_nearest_first"}
WRITTEN = ("q_clamp", "q_softmax_shift")  # graded by hand, 2 points each


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def answered(nb):
    """``nb`` with its written answers filled in (a TA has to grade them)."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in WRITTEN:
            cell.source = "Round-off, in my own words."
    return nb


def _class(course: Course) -> dict:
    from coursekit.instructor.demo import load_list

    mistakes = {m.name: m for m in load_list(REPO / "tests" / "mistakes" / f"{A}.py", "MISTAKES")}
    [name] = [p.name for p in (course.directory("source") / A).glob("*.ipynb")]
    src = submissions.read(course.directory("source") / A / name)
    rel = submissions.read(course.directory("release") / A / name)
    correct = submissions.submission(src, rel)
    correct.cells.append(nbformat.v4.new_markdown_cell("Softmax: $p_k = e^{s_k}/Z$ over $k$."))
    return {
        # Canvas's names: <name>_[LATE_]<user id>_<attachment id>_<file>
        f"hoppergrace_111_9001_{name}": correct,
        f"lovelaceada_LATE_222_9002_{name}": submissions.submission(src, rel),
        # answered the written questions, which nobody has graded yet
        f"smithjohn_333_9003_{name}": answered(
            submissions.submission(src, rel, mutation=mistakes["softmax_wrong_axis"])
        ),
        f"smithjohn_444_9004_{name}": submissions.submission(
            src, rel, mutation=mistakes[HIDDEN_ONLY["s004"]]
        ),
        f"müllerjürgen_555_9005_{name}": submissions.submission(
            src, rel, mutation=mistakes[HIDDEN_ONLY["s005"]]
        ),
        f"turingalan_666_9006_{name}": b"{ this is not JSON",
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("dashboard")
    root = base / "course"
    root.mkdir()
    repo = Course.locate(REPO)
    shutil.copy2(repo.config_file, root / "nbgrader_config.py")
    shutil.copytree(repo.directory("source") / A, root / repo.coursedir.source_directory / A)
    with open(root / "nbgrader_config.py", "a") as fh:
        fh.write(
            'c.CoursekitDeadlines.timezone = "UTC"\n'
            f'c.CoursekitDeadlines.duedates = {{"{A}": "2026-10-01 23:59"}}\n'
            'c.CoursekitDeadlines.policy = "per_day"\n'
            "c.CoursekitDeadlines.penalty_per_day = 0.1\n"
            f'c.CoursekitExport.canvas_columns = {{"{A}": "A1 Vectorization (4242)"}}\n'
        )
    (root / "roster.csv").write_text(ROSTER)
    assert cli("--course", root, "release", A) == 0
    course = Course.locate(root)
    archive = base / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, nb in _class(course).items():
            zf.writestr(name, nb if isinstance(nb, bytes) else nbformat.writes(nb))
    assert cli("--course", root, "collect", "--quiet", A, archive) == 0
    assert cli("--course", root, "grade", A, "--quiet") in (0, 1)
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:  # a TA grades the written answers of four students
        for student, points in {"s001": 2.0, "s002": 2.0, "s004": 1.0, "s005": 0.0}.items():
            for cell in WRITTEN:
                grade = gb.find_grade(cell, A_NOTEBOOK, A, student)
                grade.manual_score = points
                grade.needs_manual_grade = False
        gb.db.commit()
    assert cli("--course", root, "feedback", A, "--quiet") == 0
    assert cli("--course", root, "export", A) == 0
    assert cli("--course", root, "report", A, "--quiet") == 0
    return course


def gradebook_scores(course) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        record = gb.find_assignment(A)
        return {s.student.id: float(s.score) for s in record.submissions}, float(record.max_score)


pytestmark = pytest.mark.slow


def test_every_canvas_submission_is_matched_with_its_late_flag(course):
    present = set(course.students(A))
    assert present == {"s001", "s002", "s003", "s004", "s005", "s006"}
    meta = json.loads((course.submission_directory(A, "s002") / "submission.json").read_text())
    assert meta["late"] is True and meta["lms_id"] == "222"


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8"))))


def test_canvas_csv_follows_the_import_rules(course):
    scores, maximum = gradebook_scores(course)
    rows = read_csv(course.root / "grades-canvas.csv")
    header, points, *students = rows
    assert header == [*CANVAS_COLUMNS, "A1 Vectorization (4242)"]  # one assignment column
    assert points[0] == POINTS_POSSIBLE and points[1:5] == ["", "", "", ""]
    assert float(points[5]) == maximum
    by_id = {r[1]: r for r in students}
    assert all(len(r) == 6 for r in students)
    assert by_id["111"][:5] == ["Hopper, Grace", "111", "U1", "ghopper", "Lab A"]
    assert float(by_id["111"][5]) == scores["s001"] == maximum  # the manual points count
    assert float(by_id["222"][5]) == pytest.approx(scores["s002"] - 0.1 * maximum)  # LATE
    assert by_id["333"][5] == ""  # still awaits manual grading: nothing posted
    assert float(by_id["444"][5]) == pytest.approx(scores["s004"])
    assert float(by_id["666"][5]) == 0.0  # could not be graded
    assert by_id["777"][5] == ""  # no submission: no change in Canvas


def test_roster_csv_has_names_totals_and_pending_column(course):
    scores, maximum = gradebook_scores(course)
    text = (course.root / "grades-roster.csv").read_text("utf-8")
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["s001"]["name"] == "Grace Hopper" and rows["s001"]["email"] == "grace@uni.edu"
    assert float(rows["s001"]["manual"]) == 4.0
    assert float(rows["s001"]["score"]) == maximum
    assert float(rows["s001"]["autograded"]) + 4.0 == maximum
    assert rows["s002"]["days_late"] == "1"
    assert float(rows["s002"]["late_penalty"]) == pytest.approx(0.1 * maximum)
    assert rows["s003"]["status"] == "awaiting manual grading"
    assert rows["s003"]["awaiting_manual_grading"] == "2"
    assert rows["s001"]["awaiting_manual_grading"] == "0"
    assert rows["s006"]["status"] == "ungradable"
    assert rows["s007"]["status"] == "no submission"


def page(course, student) -> str:
    [path] = (course.directory("feedback") / student / A).glob("*.html")
    return path.read_text("utf-8")


def test_feedback_math_is_offline_and_late_note_shown(course):
    scores, maximum = gradebook_scores(course)
    text = page(course, "s001")
    assert "<math" in text and "$p_k" not in text
    assert not re.findall(r"<script[^>]+src=\"https?://", text)
    late = page(course, "s002")
    after = scores["s002"] - 0.1 * maximum
    assert "1 day late" in late and f"Score after the late penalty: {after:g} / {maximum:g}" in late


def test_report_md_is_markdown_with_means_over_the_graded(course):
    text = (course.root / "reports" / A / "report.md").read_text("utf-8")
    assert re.search(r"^\| test \| points \| passed \| rate \|$", text, re.M)
    assert re.search(r"^\|---\|---:\|", text, re.M)
    data = json.loads((course.root / "reports" / A / "report.json").read_text())
    graded = [v for s, v in data["scores"].items() if s not in data["ungradable"]]
    assert data["graded"] == 5 and len(graded) == 5 and list(data["ungradable"]) == ["s006"]
    assert f"over the 5 graded: {sum(graded) / 5:.2f} / {data['autograded_max']:g}" in text
    hidden = data["public_hidden_disagreement"]
    assert hidden.get(f"{A_NOTEBOOK}/test_distances_two_loops") == ["s004"]
    assert hidden.get(f"{A_NOTEBOOK}/test_knn_predict") == ["s005"]
    assert "## Difficulty and discrimination per test" in text


def test_html_report_folder_stands_alone(course):
    folder = course.root / "reports" / A / "report"
    index = (folder / "index.html").read_text("utf-8")
    assert "Passed in the notebook, failed hidden" in index
    for student in ("s001", "s002", "s003", "s004", "s005", "s006"):
        assert list((folder / "feedback" / student).glob("*.html")), student
    assert not re.findall(r"(?:src|href)=['\"]https?://", index)


@pytest.mark.browser
def test_html_report_offline_in_chromium(course, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from urllib.parse import unquote, urlparse

    moved = tmp_path / "copied-report"  # the folder works wherever it is copied
    shutil.copytree(course.root / "reports" / A / "report", moved)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            index = check_static_page(context, moved / "index.html")
            assert index.ok, index
            assert index.title == f"{A}: report"
            pages = [link for link in index.links if "/feedback/" in link]
            assert len(pages) == 6
            for link in pages:
                check = check_static_page(context, Path(unquote(urlparse(link).path)))
                assert not (check.network or check.failed or check.broken_images), check
            tab = context.new_page()
            tab.route(
                "**/*",
                lambda r: r.abort() if r.request.url.startswith("http") else r.continue_(),
            )
            tab.goto(Path(unquote(urlparse(pages[0]).path)).as_uri())
            width = tab.eval_on_selector("math", "m => m.getBoundingClientRect().width")
            assert width > 0  # MathML laid out by the browser, no script needed
            tab.close()
        finally:
            browser.close()


# -- the statistics on their own ----------------------------------------------------------------
def test_point_biserial_and_upper_lower_by_hand():
    passed = [True, True, False, False]
    other = [4.0, 3.0, 1.0, 0.0]
    # M1 = 3.5, M0 = 0.5, s = pstdev = 1.5811..., p = 0.5
    assert point_biserial(passed, other) == pytest.approx(3.0 / 1.5811388300841898 * 0.5)
    assert upper_lower(passed, other) == 1.0
    assert point_biserial([True, True], [1.0, 2.0]) is None  # nobody failed: undefined
    assert upper_lower([True, False, True], [0.0, 1.0, 2.0]) == 0.0


class _R:
    def __init__(self, student, marks):
        self.student = student
        self.tests = [
            {"notebook": "n", "cell": c, "points": p, "autograded": True, "passed": p > 0}
            for c, p in marks.items()
        ]


def test_a_test_that_weak_students_pass_more_has_negative_discrimination():
    results = [
        _R("a", {"i1": 1, "i2": 1, "i3": 1, "i4": 1, "odd": 0}),
        _R("b", {"i1": 1, "i2": 1, "i3": 1, "i4": 0, "odd": 0}),
        _R("c", {"i1": 1, "i2": 1, "i3": 0, "i4": 0, "odd": 1}),
        _R("d", {"i1": 1, "i2": 0, "i3": 0, "i4": 0, "odd": 1}),
        _R("e", {"i1": 0, "i2": 0, "i3": 0, "i4": 0, "odd": 1}),
    ]
    stats = item_statistics(results)
    # i2: passers' other score 3, 2, 2 (mean 7/3), failers' 2, 1 (mean 3/2), s = pstdev
    other = [3, 2, 2, 2, 1]
    expected = (7 / 3 - 3 / 2) / statistics.pstdev(other) * (0.6 * 0.4) ** 0.5
    assert stats[("n", "i2")]["point_biserial"] == pytest.approx(expected)
    assert stats[("n", "odd")]["point_biserial"] < 0
    assert stats[("n", "odd")]["upper_lower"] == -1.0
    assert stats[("n", "i1")]["difficulty"] == 0.8


def test_hidden_only_failure_is_read_from_the_cell_outputs():
    def cell(gid, outputs):
        return {
            "cell_type": "code",
            "metadata": {"nbgrader": {"grade": True, "grade_id": gid}},
            "outputs": outputs,
            "source": "",
        }

    hidden = {"output_type": "error", "ename": "GradingError", "evalue": "x", "traceback": []}
    public = {"output_type": "stream", "name": "stderr", "text": "public test failed: A\n"}
    own = {"output_type": "error", "ename": "NameError", "evalue": "add", "traceback": []}
    nb = {"cells": [cell("h", [hidden]), cell("p", [public, hidden]), cell("o", [own, hidden])]}
    files = {"f1.ipynb": json.dumps(nb).encode()}
    assert hidden_only_failures(files) == [("f1", "h")]
