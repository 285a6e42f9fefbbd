"""``coursekit collect`` on zips named the way Canvas, Moodle, Blackboard and Gradescope name
them (the schemes are cited in ``coursekit/instructor/collect.py``): spaces, accents, late
flags, resubmissions, namesakes, a notebook of another assignment, a roster."""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from coursekit.cli.main import main
from coursekit.instructor.course import Course
from coursekit.instructor.deadlines import read_submission_info

FIXTURE = Path(__file__).parent / "fixtures" / "course"


def notebook(assignment: str, marker: str) -> str:
    """The fixture's source notebook as ``assignment``'s (grade ids prefixed for f2), marked."""
    nb = json.loads((FIXTURE / "solutions" / "f1" / "f1.ipynb").read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta and assignment != "f1":
            meta["grade_id"] = f"{assignment}_{meta['grade_id']}"
    nb["metadata"]["marker"] = marker
    return json.dumps(nb)


def marker(path: Path) -> str:
    return json.loads(path.read_text())["metadata"]["marker"]


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    (root / "solutions" / "f2").mkdir()
    (root / "solutions" / "f2" / "f2.ipynb").write_text(notebook("f2", "source"))
    with (root / "nbgrader_config.py").open("a") as fh:
        fh.write('\nc.CoursekitDeadlines.timezone = "UTC"\n')
    return root


def make_zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def run(capsys, course, *args):
    code = main(["--course", str(course), "collect", "--quiet", *args])
    return code, capsys.readouterr().out


def submitted(course, student, name="f1.ipynb", assignment="f1"):
    return course / "submitted" / student / assignment / name


def lms_data(course, student, assignment="f1"):
    return json.loads(submitted(course, student, "submission.json", assignment).read_text())


# -- Canvas ---------------------------------------------------------------------------------
CANVAS = {
    # on time
    "hoppergrace_12345_900001_f1.ipynb": notebook("f1", "grace"),
    "hoppergrace_12345_900002_helpers.py": "X = 1\n",
    # late, uploaded twice under the same name: Canvas appends -1 to the newer upload
    "lovelaceada_LATE_23456_900003_f1.ipynb": notebook("f1", "ada-old"),
    "lovelaceada_LATE_23456_900009_f1-1.ipynb": notebook("f1", "ada-new"),
    # two students called John Smith, told apart by their user ids
    "smithjohn_34567_900010_my notebook.ipynb": notebook("f1", "john-1"),
    "smithjohn_45678_900011_f1.ipynb": notebook("f1", "john-2"),
    # accents survive in Canvas's sortable names
    "müllerjürgen_56789_900020_f1.ipynb": notebook("f1", "jurgen"),
    # an f2 notebook handed in for f1
    "turingalan_67890_900030_f2.ipynb": notebook("f2", "alan"),
}


def test_canvas_without_roster(course, tmp_path, capsys):
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "canvas.zip", CANVAS)))
    assert code == 1, out  # the f2 notebook is listed, so the status says "look"
    assert marker(submitted(course, "hoppergrace")) == "grace"
    assert submitted(course, "hoppergrace", "helpers.py").read_text() == "X = 1\n"
    assert marker(submitted(course, "lovelaceada")) == "ada-new"
    assert lms_data(course, "lovelaceada")["late"] is True
    assert lms_data(course, "hoppergrace")["late"] is False
    assert lms_data(course, "lovelaceada")["lms_id"] == "23456"
    assert "kept the newer upload" in out and "lovelaceada" in out
    # Namesakes: same derived name, the second gets its Canvas id appended.
    johns = {marker(submitted(course, s)) for s in ("smithjohn", "smithjohn-45678")}
    assert johns == {"john-1", "john-2"}
    assert marker(submitted(course, "mullerjurgen")) == "jurgen"
    # The f2 notebook is not collected and is listed under its own heading.
    assert not (course / "submitted" / "turingalan").exists()
    heading = "NOT collected, the notebook belongs to another assignment:"
    assert heading in out
    assert (
        "turingalan: f1.ipynb (turingalan_67890_900030_f2.ipynb) has the cells of f2"
        in (out.split(heading)[1])
    )
    assert "unmatched" not in out
    # The ids are remembered: collecting again is "unchanged", same ids.
    code, out = run(capsys, course, "f1", str(tmp_path / "canvas.zip"))
    assert "unchanged" in out and "smithjohn-45678" in out
    assert "collected 0 submissions" in out


def write_roster(course, rows):
    header = "id,name,email,canvas_id,moodle_id,blackboard_id,gradescope_id\n"
    (course / "roster.csv").write_text(header + "".join(",".join(r) + "\n" for r in rows))


ROSTER = [
    ("s001", "Grace Hopper", "grace@uni.edu", "12345", "", "ghopper", "777"),
    ("s002", "Ada Lovelace", "ada@uni.edu", "23456", "", "alovelace", "888"),
    ("s003", "John Smith", "john.smith@uni.edu", "34567", "", "", ""),
    ("s004", "John Smith", "jsmith2@uni.edu", "45678", "", "", ""),
    ("s005", "Jürgen Müller", "jm@uni.edu", "", "", "", ""),
    ("s006", "Alan Turing", "alan@uni.edu", "67890", "", "", ""),
    ("s007", "Ivan Petrov", "ivan@uni.edu", "", "", "ivan", ""),
]


def test_canvas_with_roster_uses_user_ids_then_names(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "canvas.zip", CANVAS)))
    assert marker(submitted(course, "s001")) == "grace"
    assert marker(submitted(course, "s003")) == "john-1"
    assert marker(submitted(course, "s004")) == "john-2"
    assert marker(submitted(course, "s005")) == "jurgen"  # by name: müllerjürgen
    assert "s006" not in {p.name for p in (course / "submitted").iterdir()}
    assert "roster" in out and "unmatched" not in out


def test_namesakes_without_lms_ids_are_ambiguous_not_guessed(course, tmp_path, capsys):
    rows = [r if r[0] not in ("s003", "s004") else (*r[:3], "", "", "", "") for r in ROSTER]
    write_roster(course, rows)
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "canvas.zip", CANVAS)))
    assert code == 1
    assert "NOT collected, ambiguous" in out
    assert "2 roster students have this name (s003, s004)" in out
    assert not (course / "submitted" / "s003").exists()


def test_submitter_missing_from_the_roster_is_listed(course, tmp_path, capsys):
    write_roster(course, [r for r in ROSTER if r[0] != "s001"])
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "canvas.zip", CANVAS)))
    assert code == 1
    section = out.split("NOT collected, not in the roster:")[1]
    assert "hoppergrace (canvas id 12345)" in section


# -- Moodle ---------------------------------------------------------------------------------
MOODLE = {
    "Grace Hopper_777_assignsubmission_file_/f1.ipynb": notebook("f1", "grace"),
    "Grace Hopper_777_assignsubmission_file_/data/extra.txt": "extra",
    "Jürgen Müller_778_assignsubmission_file_/my notebook.ipynb": notebook("f1", "jurgen"),
    "Ada Lovelace_779_assignsubmission_file_f1.ipynb": notebook("f1", "ada"),
    "Ada Lovelace_779_assignsubmission_onlinetext_onlinetext.html": "<p>hi</p>",
}


def test_moodle_folders_and_flat_files(course, tmp_path, capsys):
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "moodle.zip", MOODLE)))
    assert code == 0, out
    assert marker(submitted(course, "grace-hopper")) == "grace"
    assert submitted(course, "grace-hopper", "data/extra.txt").read_text() == "extra"
    assert marker(submitted(course, "jurgen-muller")) == "jurgen"
    assert marker(submitted(course, "ada-lovelace")) == "ada"
    assert submitted(course, "ada-lovelace", "onlinetext.html").exists()
    assert lms_data(course, "grace-hopper")["lms"] == "moodle"


def test_moodle_with_roster_matches_names_with_accents(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "moodle.zip", MOODLE)))
    assert code == 0, out
    assert marker(submitted(course, "s005")) == "jurgen"
    assert marker(submitted(course, "s001")) == "grace"


# -- Blackboard ------------------------------------------------------------------------------
def receipt(name, user, when, files=()):
    listed = "".join(f"\tOriginal filename: {o}\n\tFilename: {f}\n" for o, f in files)
    return (
        f"Name: {name} ({user})\nAssignment: Vectorization\nDate Submitted: {when}\n"
        "Current Grade: Needs Grading\n\nSubmission Field:\nThere is no student submission "
        f"text data for this assignment.\n\nComments:\nThere are no student comments for "
        f"this assignment.\n\nFiles:\n{listed}"
    )


BLACKBOARD = {
    "f1_ivan_attempt_2026-10-01-12-30-00_vectorization.ipynb": notebook("f1", "ivan-1"),
    "f1_ivan_attempt_2026-10-01-12-30-00.txt": receipt("Ivan Petrov", "ivan", "1 October"),
    "f1_ivan_attempt_2026-10-02-09-15-00_vectorization.ipynb": notebook("f1", "ivan-2"),
    "f1_ivan_attempt_2026-10-02-09-15-00.txt": receipt("Ivan Petrov", "ivan", "2 October"),
    "Assignment 1_ghopper_attempt_2026-09-30-23-00-00_my work.ipynb": notebook("f1", "grace"),
    "Assignment 1_ghopper_attempt_2026-09-30-23-00-00.txt": receipt("Grace Hopper", "ghopper", ""),
}


def test_blackboard_attempts_newest_kept_with_time(course, tmp_path, capsys):
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "bb.zip", BLACKBOARD)))
    assert code == 0, out
    assert marker(submitted(course, "ivan")) == "ivan-2"
    assert "a1" not in {p.name for p in (course / "submitted").iterdir()}
    assert "several attempts, the newest collected:" in out
    assert "kept attempt of 2026-10-02 09:15:00 (newest of 2)" in out
    stamp = submitted(course, "ivan", "timestamp.txt").read_text()
    assert stamp.startswith("2026-10-02 09:15:00")
    info = read_submission_info(Course.locate(course), "f1", "ivan")
    assert info["submitted"].isoformat() == "2026-10-02T09:15:00+00:00"
    assert lms_data(course, "ivan")["name"] == "Ivan Petrov"
    assert lms_data(course, "ivan")["attempts"] == 2
    assert marker(submitted(course, "ghopper")) == "grace"


def test_blackboard_with_roster_and_deadline_reports_late(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write(
            'c.CoursekitDeadlines.duedates = {"f1": "2026-10-01 00:00"}\n'
            'c.CoursekitDeadlines.policy = "per_day"\n'
            "c.CoursekitDeadlines.penalty_per_day = 0.25\n"
        )
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "bb.zip", BLACKBOARD)))
    assert code == 0, out
    assert marker(submitted(course, "s007")) == "ivan-2"
    late = out.split("late (penalty applied")[1]
    assert "s007: 2 days late: -50% of the maximum score" in late
    assert "s001" not in late


# -- Gradescope -----------------------------------------------------------------------------
GRADESCOPE_META = """\
submission_1001:
  :submitters:
  - :name: Grace Hopper
    :sid: '777'
    :email: grace@uni.edu
  :created_at: 2026-10-01 10:00:00.000000000 -07:00
  :score: !ruby/object:BigDecimal 18:0.0
  :status: processed
submission_1002:
  :submitters:
  - :name: Ada Lovelace
    :sid: '888'
    :email: ada@uni.edu
  - :name: Jürgen Müller
    :sid: '999'
    :email: jm@uni.edu
  :created_at: 2026-10-02 08:30:00.000000000 +02:00
  :score: 0.0
  :status: processed
"""

GRADESCOPE = {
    "assignment_555_export/submission_metadata.yml": GRADESCOPE_META,
    "assignment_555_export/submission_1001/f1.ipynb": notebook("f1", "grace"),
    "assignment_555_export/submission_1002/f1.ipynb": notebook("f1", "group"),
}


def test_gradescope_export_with_group(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "gs.zip", GRADESCOPE)))
    assert code == 0, out
    assert marker(submitted(course, "s001")) == "grace"
    assert marker(submitted(course, "s002")) == "group"
    assert marker(submitted(course, "s005")) == "group"  # matched by e-mail
    assert submitted(course, "s001", "timestamp.txt").read_text().startswith("2026-10-01 17:00:00")


def test_gradescope_without_roster_uses_sids(course, tmp_path, capsys):
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "gs.zip", GRADESCOPE)))
    assert code == 0, out
    assert {p.name for p in (course / "submitted").iterdir()} == {"777", "888", "999"}


# -- plain folders and the roster -------------------------------------------------------------
def test_plain_folder_student_not_in_roster(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    export = tmp_path / "plain"
    (export / "s001").mkdir(parents=True)
    (export / "s001" / "f1.ipynb").write_text(notebook("f1", "grace"))
    (export / "zed").mkdir()
    (export / "zed" / "f1.ipynb").write_text(notebook("f1", "zed"))
    (export / "s002.ipynb").write_text(notebook("f2", "ada"))
    code, out = run(capsys, course, "f1", str(export))
    assert code == 1
    assert marker(submitted(course, "s001")) == "grace"
    assert "zed" in out.split("not in the roster:")[1]
    assert "s002: f1.ipynb (s002.ipynb) has the cells of f2" in out


def test_a_notebook_without_nbgrader_cells_is_not_called_foreign(course, tmp_path, capsys):
    export = tmp_path / "plain"
    export.mkdir()
    (export / "bob.ipynb").write_text(json.dumps({"cells": [], "metadata": {"marker": "b"}}))
    code, out = run(capsys, course, "f1", str(export))
    assert code == 0 and marker(submitted(course, "bob")) == "b"


def test_roster_errors_are_clear(course, tmp_path, capsys):
    (course / "roster.csv").write_text("name,email\nGrace,g@x\n")
    assert main(["--course", str(course), "collect", "f1", str(tmp_path)]) == 2
    assert "no 'id' column" in capsys.readouterr().err


MOODLE_WORKSHEET = (
    '"Identifier","Full name","Email address","Status","Grade","Last modified (submission)"\n'
    '"Participant 777","Grace Hopper","grace@uni.edu","Submitted for grading","",'
    '"Wednesday, 30 September 2026, 10:00 PM"\n'
    '"Participant 779","Ada Lovelace","ada@uni.edu",'
    '"Submitted for grading - Assignment was submitted 1 day 2 hours late","",'
    '"Friday, 2 October 2026, 2:00 AM"\n'
)


def test_moodle_grading_worksheet_adds_times_late_flags_and_emails(course, tmp_path, capsys):
    write_roster(course, ROSTER)
    files = {**MOODLE, "grading worksheet.csv": MOODLE_WORKSHEET}
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "moodle.zip", files)))
    assert code == 0, out
    assert lms_data(course, "s002")["late"] is True
    assert lms_data(course, "s001")["late"] is False
    assert lms_data(course, "s002")["email"] == "ada@uni.edu"
    assert submitted(course, "s002", "timestamp.txt").read_text().startswith("2026-10-02 02:00:00")
    assert "unmatched" not in out  # the worksheet is read, not reported


def test_an_export_zipped_again_with_its_folder_and_a_receipt_without_file(
    course, tmp_path, capsys
):
    files = {f"submissions/{name}": data for name, data in CANVAS.items()}
    files["submissions/f1_ghost_attempt_2026-10-01-08-00-00.txt"] = receipt("Ghost", "ghost", "")
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "again.zip", files)))
    assert marker(submitted(course, "hoppergrace")) == "grace"
    assert "unmatched" not in out
    assert "an LMS submission without any file:" in out and "ghost" in out
    assert not (course / "submitted" / "ghost").exists()
    assert not (course / "submitted" / "submissions").exists()


def test_moodle_namesakes_without_roster_are_both_collected(course, tmp_path, capsys):
    files = {
        "John Smith_801_assignsubmission_file_/f1.ipynb": notebook("f1", "john-801"),
        "John Smith_802_assignsubmission_file_/f1.ipynb": notebook("f1", "john-802"),
    }
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "moodle.zip", files)))
    assert code == 0, out
    got = {marker(submitted(course, s)) for s in ("john-smith", "john-smith-802")}
    assert got == {"john-801", "john-802"}


def test_blackboard_receipt_gives_the_original_file_names(course, tmp_path, capsys):
    stored = "f1_ivan_attempt_2026-10-01-12-30-00_helpers_1.py"
    files = {
        "f1_ivan_attempt_2026-10-01-12-30-00_f1.ipynb": notebook("f1", "ivan"),
        stored: "X = 2\n",
        "f1_ivan_attempt_2026-10-01-12-30-00.txt": receipt(
            "Ivan Petrov", "ivan", "", [("my helpers.py", stored)]
        ),
    }
    code, out = run(capsys, course, "f1", str(make_zip(tmp_path / "bb.zip", files)))
    assert code == 0, out
    assert submitted(course, "ivan", "my helpers.py").read_text() == "X = 2\n"
