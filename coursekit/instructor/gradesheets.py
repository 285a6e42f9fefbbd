"""Grade sheets an instructor uploads: a Canvas gradebook CSV and a plain CSV with the roster.

Both take every score from the gradebook (autograded and manual points: a TA's grade in
the formgrader counts), subtract the late penalty of the course's policy
(:mod:`coursekit.instructor.deadlines`), and take names, e-mail addresses and LMS ids from
the roster (:mod:`coursekit.instructor.roster`), falling back to what ``coursekit collect``
stored from the LMS export (``submission.json``).

Canvas gradebook import (``<stem>-canvas.csv``, one assignment)
    The columns Canvas requires, in its order: ``Student`` (``Last, First``), ``ID``
    (Canvas's numeric user id), ``SIS User ID``, ``SIS Login ID``, ``Section``, then only
    the assignment's own column, so an upload changes nothing else; the second row is
    Canvas's ``Points Possible`` row. Canvas matches a student by ``ID`` (or SIS ids) and
    an assignment column by its header, ``Name (assignment id)`` as Canvas exports it; set
    ``c.CoursekitExport.canvas_columns = {"a1": "A1 Vectorization (123456)"}`` to match
    an existing column, otherwise Canvas creates an assignment named after the header.
    A blank cell changes nothing in Canvas: students who still await manual grading are
    left blank (no partial score is posted) and listed. (Canvas guides "How do I import
    grades in the Gradebook?"; OSU's "Import a CSV file into Carmen Grades": student name or
    ID or SIS User ID, SIS Login ID, Section and the assignment columns; upload only the
    changed columns.)

Plain CSV (``<stem>-roster.csv``, every assignment)
    One row per roster student (and per student with a submission) and assignment:
    ``student_id, name, email, assignment, submitted_at, days_late, autograded, manual,
    score_before_penalty, late_penalty, score, max_score, status, awaiting_manual_grading``
    where ``status`` is ``graded``, ``ungradable``, ``awaiting manual grading`` or
    ``no submission``, and ``awaiting_manual_grading`` the number of cells still to grade
    by hand (0 when none).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from traitlets import Dict
from traitlets.config import Configurable

from coursekit.instructor.course import Course
from coursekit.instructor.deadlines import METADATA_NAME, lateness_table
from coursekit.instructor.progress import progress_bar
from coursekit.instructor.roster import Roster, course_roster

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"
PLAIN_COLUMNS = [
    "student_id",
    "name",
    "email",
    "assignment",
    "submitted_at",
    "days_late",
    "autograded",
    "manual",
    "score_before_penalty",
    "late_penalty",
    "score",
    "max_score",
    "status",
    "awaiting_manual_grading",
]


class CoursekitExport(Configurable):
    """``c.CoursekitExport`` in ``nbgrader_config.py``."""

    canvas_columns = Dict(help="{assignment: Canvas column header, 'Name (id)'}").tag(config=True)


def _lms_data(course: Course, assignment: str, student: str) -> dict:
    path = course.submission_directory(assignment, student) / METADATA_NAME
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def assignment_scores(course: Course, assignment: str) -> dict[str, dict]:
    """``{student: {"autograded", "manual", "score", "max_score", "pending"}}`` from the
    gradebook (``pending``: cells still to grade by hand)."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, dict] = {}
    if not course.gradebook_path.exists():
        return out
    with Gradebook(course.db_url) as gb:
        try:
            record = gb.find_assignment(assignment)
        except MissingEntry:
            return out
        max_score = float(record.max_score)
        for submission in record.submissions:
            auto = manual = 0.0
            pending = 0
            for nb in submission.notebooks:
                for grade in nb.grades:
                    if grade.manual_score is not None:
                        manual += float(grade.manual_score)
                    elif grade.auto_score is not None:
                        auto += float(grade.auto_score)
                    if grade.needs_manual_grade:
                        pending += 1
            out[submission.student.id] = {
                "autograded": auto,
                "manual": manual,
                "score": float(submission.score),
                "max_score": max_score,
                "pending": pending,
            }
    return out


def _journal_status(course: Course, assignment: str) -> dict[str, str]:
    from coursekit.instructor.batch import journal_for

    try:
        return {r.student: r.status for r in journal_for(course, assignment).results()}
    except Exception:  # noqa: BLE001 - a missing or damaged journal only loses the status
        return {}


def assignment_rows(
    course: Course, assignment: str, roster: Roster | None, progress: bool = False
) -> list[dict]:
    """The rows of the plain CSV for ``assignment`` (see the module docstring)."""
    scores = assignment_scores(course, assignment)
    submitted = set(course.students(assignment))
    students = list(dict.fromkeys([*(s.id for s in roster.students)] if roster else []))
    students += sorted((set(scores) | submitted) - set(students))
    late = lateness_table(course, assignment, sorted(submitted))
    status_of = _journal_status(course, assignment)
    rows = []
    for sid in progress_bar(students, f"export {assignment}", progress):
        person = roster.get(sid) if roster else None
        lms = _lms_data(course, assignment, sid) if sid in submitted else {}
        s = scores.get(sid)
        row = {
            "student_id": sid,
            "name": (person.name if person else "") or lms.get("name", ""),
            "email": (person.email if person else "") or lms.get("email", ""),
            "assignment": assignment,
            "submitted_at": "",
            "days_late": "",
            "autograded": "",
            "manual": "",
            "score_before_penalty": "",
            "late_penalty": "",
            "score": "",
            "max_score": "",
            "status": "no submission",
            "awaiting_manual_grading": 0,
        }
        lt = late.get(sid)
        if lt is not None:
            row["submitted_at"] = lt.submitted.isoformat() if lt.submitted else ""
            row["days_late"] = lt.days
        if s is not None:
            penalty = lt.penalty(s["max_score"], s["score"]) if lt is not None else 0.0
            row.update(
                autograded=_num(s["autograded"]),
                manual=_num(s["manual"]),
                score_before_penalty=_num(s["score"]),
                late_penalty=_num(penalty),
                score=_num(s["score"] - penalty),
                max_score=_num(s["max_score"]),
                awaiting_manual_grading=s["pending"],
            )
            row["status"] = status_of.get(sid) or "graded"
            if s["pending"] and row["status"] != "ungradable":
                row["status"] = "awaiting manual grading"
        elif sid in submitted:
            row["status"] = "not graded yet"
        rows.append(row)
    return rows


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def write_plain_csv(
    course: Course, assignments: list[str], path: Path, roster=None, progress: bool = False
) -> Path:
    """The plain CSV of ``assignments`` at ``path``."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PLAIN_COLUMNS)
        writer.writeheader()
        for assignment in assignments:
            writer.writerows(assignment_rows(course, assignment, roster, progress))
    return Path(path)


def _last_first(name: str) -> str:
    words = name.split()
    if "," in name or len(words) < 2:
        return name
    return f"{words[-1]}, {' '.join(words[:-1])}"


def canvas_rows(course: Course, assignment: str, roster: Roster | None) -> tuple[list, list]:
    """``(rows, problems)`` of the Canvas CSV: rows without the header and the Points
    Possible row; problems say which students Canvas cannot match or are left blank."""
    problems = []
    rows = []
    for row in assignment_rows(course, assignment, roster):
        sid = row["student_id"]
        person = roster.get(sid) if roster else None
        lms = _lms_data(course, assignment, sid)
        canvas_id = (person.lms_ids.get("canvas", "") if person else "") or (
            lms.get("lms_id", "") if lms.get("lms") == "canvas" else ""
        )
        sis_user = person.sis_user_id if person else ""
        sis_login = person.sis_login_id if person else ""
        if not (canvas_id or sis_user or sis_login):
            problems.append(f"{sid}: no Canvas ID or SIS id (add canvas_id to the roster)")
        score = row["score"]
        if row["status"] == "awaiting manual grading":
            problems.append(
                f"{sid}: left blank, {row['awaiting_manual_grading']} cell(s) await manual grading"
            )
            score = ""
        if row["status"] == "ungradable":
            problems.append(f"{sid}: could not be graded, {score or 0} posted (see the report)")
        if row["status"] == "no submission" and not person:
            continue
        rows.append(
            [
                _last_first(row["name"] or sid),
                canvas_id,
                sis_user,
                sis_login,
                person.section if person else "",
                score,
            ]
        )
    return rows, problems


def write_canvas_csv(
    course: Course, assignment: str, path: Path, roster=None
) -> tuple[Path, list[str]]:
    """The Canvas gradebook CSV of ``assignment`` at ``path``; returns it and the problems."""
    settings = CoursekitExport(config=course.config)
    column = settings.canvas_columns.get(assignment, assignment)
    rows, problems = canvas_rows(course, assignment, roster)
    scores = assignment_scores(course, assignment)
    maximum = next((s["max_score"] for s in scores.values()), None)
    if maximum is None:
        maximum = _release_points(course, assignment)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CANVAS_COLUMNS, column])
        writer.writerow([POINTS_POSSIBLE, "", "", "", "", _num(maximum or 0.0)])
        writer.writerows(rows)
    return Path(path), problems


def _release_points(course: Course, assignment: str) -> float:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        try:
            return float(gb.find_assignment(assignment).max_score)
        except MissingEntry:
            return 0.0


def export_sheets(
    course: Course, assignment: str | None, csv_path: Path, roster_path=None, progress=False
) -> tuple[list[Path], list[str]]:
    """Write the plain CSV (and, for one assignment, the Canvas CSV) beside ``csv_path``."""
    roster = course_roster(course, roster_path)
    names = course.require_assignments([assignment] if assignment else None)
    stem = Path(csv_path).with_suffix("")
    written = [write_plain_csv(course, names, Path(f"{stem}-roster.csv"), roster, progress)]
    problems = []
    if assignment:
        path, problems = write_canvas_csv(course, assignment, Path(f"{stem}-canvas.csv"), roster)
        written.append(path)
    if roster is None:
        problems.insert(0, "no roster.csv: names and e-mails come from the LMS exports only")
    return written, problems
