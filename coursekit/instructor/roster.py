"""The class list: who the students are and what each learning-management system calls them.

A roster is a CSV file with a header row. Only ``id`` (the nbgrader student id, used for
``submitted/<id>/``) is required; the other columns are optional and matched
case-insensitively, spaces and dashes counting as underscores:

===================  ==========================================================================
``id``               the nbgrader student id (letters, digits, ``.``, ``-``)
``name``             full name as the student is known (``first_name`` + ``last_name`` also work)
``email``            e-mail address
``canvas_id``        Canvas's numeric user id (the ``ID`` column of a Canvas gradebook export)
``sis_user_id``      Canvas's ``SIS User ID``; ``sis_login_id``: Canvas's ``SIS Login ID``
``section``          Canvas's ``Section``
``moodle_id``        Moodle's participant id (``Participant 123`` in a grading worksheet)
``blackboard_id``    Blackboard's user name (the one in ``..._<user>_attempt_...`` file names)
``gradescope_id``    Gradescope's ``SID``
===================  ==========================================================================

``coursekit collect`` reads ``roster.csv`` in the course directory when it exists (or the
file given with ``--roster``) and ``coursekit export`` takes names and e-mail addresses
from it.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.instructor.course import Course, CourseError

ROSTER_NAME = "roster.csv"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")

_LMS_COLUMNS = ("canvas_id", "moodle_id", "blackboard_id", "gradescope_id")
_SYNONYMS = {
    "student_id": "id",
    "nbgrader_id": "id",
    "full_name": "name",
    "student": "name",
    "e_mail": "email",
    "email_address": "email",
    "first": "first_name",
    "last": "last_name",
    "canvas": "canvas_id",
    "canvas_user_id": "canvas_id",
    "moodle": "moodle_id",
    "blackboard": "blackboard_id",
    "blackboard_username": "blackboard_id",
    "gradescope": "gradescope_id",
    "sid": "gradescope_id",
}


def fold(text: str) -> str:
    """``text`` without accents, case, spaces or punctuation (``"Gödel, K."`` -> ``"godelk"``)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", plain.casefold())


def slug(text: str) -> str:
    """A student id made from a name: ASCII letters and digits, words joined by ``-``."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.findall(r"[a-z0-9]+", plain.casefold())
    return "-".join(words)


def name_keys(name: str) -> set[str]:
    """Folded spellings of a full name: ``first last``, ``last first`` (as Canvas writes it)
    and, for names given as ``Last, First``, the same two orders."""
    name = (name or "").strip()
    if not name:
        return set()
    if "," in name:
        last, _, first = name.partition(",")
        words = first.split() + last.split()
    else:
        words = name.split()
    keys = {fold(" ".join(words))}
    if len(words) > 1:
        keys.add(fold(" ".join(words[-1:] + words[:-1])))
        keys.add(fold(" ".join(words[1:] + words[:1])))
    return {k for k in keys if k}


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    lms_ids: dict = field(default_factory=dict, hash=False, compare=False)


class Roster:
    """The students of a roster file, with look-ups by id, LMS id, e-mail and name."""

    def __init__(self, students: list[Student], path: Path | None = None):
        self.path = path
        self.students = list(students)
        self.by_id = {s.id: s for s in self.students}
        self._by_email = {s.email.casefold(): s for s in self.students if s.email}
        self._by_lms: dict[tuple[str, str], Student] = {}
        self._by_name: dict[str, list[Student]] = {}
        for s in self.students:
            for lms, value in s.lms_ids.items():
                self._by_lms[(lms, value)] = s
            for key in name_keys(s.name):
                self._by_name.setdefault(key, []).append(s)

    def __len__(self) -> int:
        return len(self.students)

    def get(self, student_id: str) -> Student | None:
        return self.by_id.get(student_id)

    def by_lms(self, lms: str, value: str | None) -> Student | None:
        return self._by_lms.get((lms, str(value))) if value else None

    def by_email(self, email: str | None) -> Student | None:
        return self._by_email.get(email.casefold()) if email else None

    def by_name(self, name: str | None) -> list[Student]:
        """Students whose name folds to ``name`` in either order (several when namesakes)."""
        found: dict[str, Student] = {}
        for key in name_keys(name or "") | ({fold(name)} if name else set()):
            for s in self._by_name.get(key, []):
                found[s.id] = s
        return list(found.values())


def _column(header: str) -> str:
    key = re.sub(r"[\s\-]+", "_", header.strip().casefold())
    return _SYNONYMS.get(key, key)


def read_roster(path: str | Path) -> Roster:
    """The roster in the CSV file ``path`` (see the module docstring).

    Raises
    ------
    CourseError
        If the file is missing, has no ``id`` column, or an id is invalid or repeated.
    """
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"roster {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [_column(h) for h in next(reader)]
        except StopIteration:
            raise CourseError(f"roster {path} is empty") from None
        if "id" not in header:
            raise CourseError(
                f"roster {path} has no 'id' column (the nbgrader student id); its columns: "
                f"{', '.join(header)}"
            )
        students, seen = [], set()
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            values = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
            sid = values["id"]
            if not STUDENT_ID.match(sid):
                raise CourseError(
                    f"roster {path}, line {line}: id {sid!r} is not a valid student id "
                    "(letters, digits, '.', '-', starting with a letter or digit)"
                )
            if sid in seen:
                raise CourseError(f"roster {path}, line {line}: id {sid!r} appears twice")
            seen.add(sid)
            name = values.get("name") or " ".join(
                v for v in (values.get("first_name", ""), values.get("last_name", "")) if v
            )
            students.append(
                Student(
                    id=sid,
                    name=name,
                    email=values.get("email", ""),
                    sis_user_id=values.get("sis_user_id", ""),
                    sis_login_id=values.get("sis_login_id", ""),
                    section=values.get("section", ""),
                    lms_ids={
                        lms.removesuffix("_id"): values[lms]
                        for lms in _LMS_COLUMNS
                        if values.get(lms)
                    },
                )
            )
    return Roster(students, path)


def course_roster(course: Course, path: str | Path | None = None) -> Roster | None:
    """The roster given by ``path``, else the course's ``roster.csv``, else ``None``."""
    if path is not None:
        return read_roster(path)
    default = course.root / ROSTER_NAME
    return read_roster(default) if default.is_file() else None
