"""The single writer of the course gradebook.

Workers never open the course gradebook; the parent imports each :class:`GradingResult`
here, in **one transaction per submission**: the student and the submission rows are
created if needed (mirroring ``Gradebook.add_submission``, without its intermediate
commit), then every field ``nbgrader autograde`` writes is set (submission timestamp,
late-submission penalty, ``auto_score`` and ``needs_manual_grade`` of every grade,
``auto_comment`` of every comment), then the transaction commits. Manual scores and extra
credit are never touched. Importing the same result twice leaves the same gradebook.

nbgrader's own autograde marks a cell that has a manual score as needing grading again
whenever it grades the notebook again. With ``keep_manual=True`` (the submission did not
change since it was graded by hand, e.g. ``coursekit grade --force``) a TA's grade stands:
such a cell keeps ``needs_manual_grade`` as the TA left it.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from coursekit.instructor.grade import GradingResult


def snapshot(db_path: str | Path, dest: str | Path) -> None:
    """A consistent copy of an SQLite gradebook (SQLite's online backup)."""
    src = sqlite3.connect(str(db_path))
    dst = sqlite3.connect(str(dest))
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


class GradebookWriter:
    """Imports grading results into the gradebook at ``db_url``. Use as a context manager."""

    def __init__(self, db_url: str):
        from nbgrader.api import Gradebook

        self.gradebook = Gradebook(db_url)

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.gradebook.close()

    def has_submission(self, assignment: str, student: str) -> bool:
        from nbgrader.api import MissingEntry

        try:
            self.gradebook.find_submission(assignment, student)
            return True
        except MissingEntry:
            return False

    def import_result(self, result: GradingResult, keep_manual: bool = False) -> None:
        """Write ``result`` into the gradebook in a single transaction.

        ``keep_manual``: the submission is the one a TA graded; cells with a manual score
        keep their ``needs_manual_grade``.
        """
        from nbgrader import utils
        from nbgrader.api import Student

        session = self.gradebook.db
        try:
            with session.no_autoflush:
                student = session.get(Student, result.student)
                if student is None:
                    student = Student(id=result.student)
                    session.add(student)
                submission = self._submission(result.assignment, student)
                if result.timestamp is not None:
                    submission.timestamp = utils.parse_utc(result.timestamp)
                for notebook in submission.notebooks:
                    data = result.notebooks.get(notebook.name)
                    if data is None:
                        continue
                    notebook.late_submission_penalty = data["late_submission_penalty"]
                    if data.get("flagged"):
                        notebook.flagged = True
                    for grade in notebook.grades:
                        values = data["grades"].get(grade.name)
                        if values is not None:
                            grade.auto_score = values["auto_score"]
                            if not (keep_manual and grade.manual_score is not None):
                                grade.needs_manual_grade = values["needs_manual_grade"]
                    for comment in notebook.comments:
                        if comment.name in data["comments"]:
                            comment.auto_comment = data["comments"][comment.name]
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def _submission(self, assignment: str, student):
        from nbgrader.api import (
            Comment,
            Grade,
            MissingEntry,
            SubmittedAssignment,
            SubmittedNotebook,
        )

        try:
            return self.gradebook.find_submission(assignment, student.id)
        except MissingEntry:
            pass
        submission = SubmittedAssignment(
            assignment=self.gradebook.find_assignment(assignment), student=student
        )
        for notebook in submission.assignment.notebooks:
            nb = SubmittedNotebook(notebook=notebook, assignment=submission)
            for cell in notebook.grade_cells:
                Grade(cell_id=cell.id, notebook=nb)
            for cell in notebook.solution_cells:
                Comment(cell_id=cell.id, notebook=nb)
            for cell in notebook.task_cells:
                Comment(cell_id=cell.id, notebook=nb)
                Grade(cell_id=cell.id, notebook=nb)
        self.gradebook.db.add(submission)
        self.gradebook.db.flush()
        return submission


def install_files(destination: Path, files: dict[str, bytes], permissions: int = 0o444) -> None:
    """Make ``destination`` hold exactly ``files`` (``{relative path: bytes}``).

    The new tree is written beside the old one and swapped in with renames; with no files
    the directory is removed, as nbgrader removes the output of a failed autograde.
    """
    destination = Path(destination)
    parent = destination.parent
    tmp = parent / f".{destination.name}.new"
    old = parent / f".{destination.name}.old"
    parent.mkdir(parents=True, exist_ok=True)
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    if files:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(permissions)
    if destination.exists():
        destination.rename(old)
    if files:
        tmp.rename(destination)
    if old.exists():
        shutil.rmtree(old)
