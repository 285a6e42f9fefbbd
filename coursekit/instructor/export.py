"""``coursekit export``: grades as CSV (``nbgrader export``'s format) and per-test JSON.

The CSV is written by nbgrader's own ``CsvExportPlugin``, so its columns and values are
those of ``nbgrader export`` (one row per student and assignment, zeros for students who
did not submit). The JSON beside it (same name, ``.json``) holds, for every assignment and
student with a submission, each graded cell's points from the gradebook, its status
(:func:`coursekit.instructor.statuses.test_status`: ``passed``, ``failed``, ``error``,
``not_run``, ``timeout``, ``integrity``, ``ungradable``, ``manual``, ``graded``) with its
message, a TA's comment, whether it passed, plus the reason a submission could not be
graded and the environment it was graded in::

    {"assignments": {"a1": {"alice": {"score": 7.0, "max_score": 10.0, "status": "graded",
     "reason": null, "environment": "3f2a...", "tests": [{"notebook": "a1",
     "cell": "test_softmax", "points": 2.0, "max_points": 2.0, "needs_manual_grade": false,
     "status": "passed", "passed": true, "message": null, "comment": null}]}}}}
"""

from __future__ import annotations

import json
from pathlib import Path

from coursekit.instructor import statuses
from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course
from coursekit.instructor.journal import write_atomic


def per_test_results(course: Course, assignments: list[str]) -> dict:
    """``{assignment: {student: {...}}}`` as described in the module docstring."""
    from nbgrader.api import Gradebook

    out: dict = {}
    with Gradebook(course.db_url) as gb:
        for assignment in gb.assignments:
            if assignment.name not in assignments:
                continue
            recorded = {r.student: r for r in journal_for(course, assignment.name).results()}
            students = out.setdefault(assignment.name, {})
            for submission in sorted(assignment.submissions, key=lambda s: s.student.id):
                result = recorded.get(submission.student.id)
                messages = {}
                if result is not None:
                    messages = {(t["notebook"], t["cell"]): t for t in result.tests}
                tests = []
                for nb in sorted(submission.notebooks, key=lambda n: n.name):
                    comments = {c.name: c.manual_comment for c in nb.comments}
                    for grade in sorted(nb.grades, key=lambda g: g.name):
                        info = messages.get((nb.name, grade.name))
                        status, message = statuses.test_status(
                            info,
                            result_status=result.status if result else None,
                            reason=result.reason if result else None,
                            autograded=None if info else grade.cell.cell_type == "code",
                            needs_manual_grade=bool(grade.needs_manual_grade),
                            manual_score=grade.manual_score,
                            score=float(grade.score),
                            max_score=float(grade.max_score),
                        )
                        tests.append(
                            {
                                "notebook": nb.name,
                                "cell": grade.name,
                                "points": float(grade.score),
                                "max_points": float(grade.max_score),
                                "needs_manual_grade": bool(grade.needs_manual_grade),
                                "status": status,
                                "passed": (info or {}).get("passed"),
                                "message": message,
                                "comment": comments.get(grade.name),
                            }
                        )
                students[submission.student.id] = {
                    "score": float(submission.score),
                    "max_score": float(submission.max_score),
                    "status": result.status if result else None,
                    "reason": statuses.sanitize(result.reason) if result else None,
                    "environment": (result.provenance or {}).get("environment_digest")
                    if result
                    else None,
                    "tests": tests,
                }
    return out


def export(
    course: Course, assignment: str | None = None, to: str | None = None
) -> tuple[Path, Path]:
    """Write the grades CSV and the per-test JSON; return both paths."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    names = course.require_assignments([assignment] if assignment else None)
    csv_path = Path(to) if to else course.root / "grades.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    plugin = CsvExportPlugin(to=str(csv_path), assignment=[assignment] if assignment else [])
    with Gradebook(course.db_url) as gb:
        plugin.export(gb)
    json_path = csv_path.with_suffix(".json")
    data = {"assignments": per_test_results(course, names)}
    write_atomic(json_path, json.dumps(data, indent=1).encode("utf-8"))
    return csv_path, json_path
