"""Deadlines, extensions and the late policy of a course, and the late penalty they give.

Configuration, in the course's ``nbgrader_config.py`` (all optional)::

    c.CoursekitDeadlines.timezone = "Europe/Paris"       # how to read times without a zone
    c.CoursekitDeadlines.duedates = {"a1": "2026-10-01 23:59", "a2": "2026-10-15 23:59"}
    c.CoursekitDeadlines.extensions = {"a1": {"ivan": "2026-10-03 23:59", "grace": 2}}
    c.CoursekitDeadlines.policy = "per_day"      # "none" | "per_day" | "late_days"
    c.CoursekitDeadlines.penalty_per_day = 0.1   # fraction of the maximum score per late day
    c.CoursekitDeadlines.max_late_days = 5       # later than this: no credit (0 = no limit)
    c.CoursekitDeadlines.late_day_budget = 4     # "late_days": free late days for the term
    c.CoursekitDeadlines.grace_minutes = 5       # upload delays forgiven

An assignment without an entry in ``duedates`` falls back to nbgrader's own due date in
the gradebook (``nbgrader db assignment add a1 --duedate=...`` or
``c.CourseDirectory.db_assignments``); one without either has no deadline. An extension is
a new deadline for one student, or a number of extra days.

A submission is late by ``ceil((submitted - deadline - grace) / 1 day)`` started days. The
submission time is the one ``coursekit collect`` stored (``timestamp.txt``, as nbgrader's
own collect writes it); a learning-management system's ``LATE`` flag without a time counts
as one day late.

Policies
    ``none``: lateness is reported, never penalised. ``per_day``: the penalty is
    ``min(1, days * penalty_per_day) * max_score``, and the whole score after
    ``max_late_days``. ``late_days``: every student has ``late_day_budget`` free days for the
    term, spent in the order of the deadlines; days beyond the budget are penalised as in
    ``per_day``.

The penalty is applied by ``coursekit export`` (score after penalty) and shown on the
feedback pages; the gradebook's own scores are never changed, so ``nbgrader export`` and
the formgrader keep showing the raw scores (and nbgrader's ``LateSubmissionPlugin`` still
works on its own for those who prefer it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from traitlets import Dict, Enum, Float, Integer, Unicode
from traitlets.config import Configurable

from coursekit.instructor.course import Course, CourseError

DAY = timedelta(days=1)
METADATA_NAME = "submission.json"


class CoursekitDeadlines(Configurable):
    """Deadlines and late policy (``c.CoursekitDeadlines`` in ``nbgrader_config.py``)."""

    timezone = Unicode("", help="IANA zone for times without one (default: this machine's)").tag(
        config=True
    )
    duedates = Dict(help="{assignment: due date}").tag(config=True)
    extensions = Dict(help="{assignment: {student: new due date or extra days}}").tag(config=True)
    policy = Enum(("none", "per_day", "late_days"), default_value="none").tag(config=True)
    penalty_per_day = Float(0.1, help="fraction of the maximum score per late day").tag(config=True)
    max_late_days = Integer(0, help="no credit after this many late days (0: no limit)").tag(
        config=True
    )
    late_day_budget = Integer(0, help="free late days per student for the term").tag(config=True)
    grace_minutes = Float(0.0, help="minutes after the deadline that do not count").tag(config=True)


def zone_named(name: str) -> tzinfo:
    """The time zone ``name`` (IANA), or this machine's when empty."""
    if not name:
        return datetime.now().astimezone().tzinfo
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CourseError(f"c.CoursekitDeadlines.timezone: unknown time zone {name!r}") from exc


def parse_time(value, zone: tzinfo) -> datetime:
    """``value`` (ISO text, ``datetime``) as an aware datetime; naive ones are in ``zone``."""
    if isinstance(value, datetime):
        moment = value
    else:
        import dateutil.parser

        text = str(value).strip()
        parts = text.split(" ")
        # nbgrader's own timestamp format: "2026-10-01 12:30:00.000000 UTC"
        if len(parts) == 3 and parts[2].isalpha():
            import dateutil.tz

            moment = dateutil.parser.parse(" ".join(parts[:2])).replace(
                tzinfo=dateutil.tz.gettz(parts[2])
            )
        else:
            moment = dateutil.parser.parse(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


@dataclass
class Lateness:
    """How late one submission is and what it costs."""

    deadline: datetime | None
    submitted: datetime | None
    flagged_late: bool = False
    days: int = 0
    free_days: int = 0
    penalty_fraction: float = 0.0
    note: str = ""
    budget_left: int | None = None  # late days left after this one ("late_days" policy)

    @property
    def late(self) -> bool:
        return self.days > 0

    def penalty(self, max_score: float, score: float) -> float:
        """Points taken off (never more than ``score``)."""
        return min(score, self.penalty_fraction * max_score)


class Deadlines:
    """The course's deadlines and late policy; build it with :meth:`for_course`."""

    def __init__(self, settings: CoursekitDeadlines, gradebook_duedates: dict | None = None):
        self.settings = settings
        self.zone = zone_named(settings.timezone)
        self._gradebook = gradebook_duedates or {}

    @classmethod
    def for_course(cls, course: Course) -> Deadlines:
        settings = CoursekitDeadlines(config=course.config)
        duedates = {}
        if course.gradebook_path.exists():
            from nbgrader.api import Gradebook

            with Gradebook(course.db_url) as gb:
                for a in gb.assignments:
                    if a.duedate is not None:
                        duedates[a.name] = a.duedate.replace(tzinfo=timezone.utc)
        return cls(settings, duedates)

    @property
    def policy(self) -> str:
        return self.settings.policy

    def deadline(self, assignment: str, student: str | None = None) -> datetime | None:
        base = self.settings.duedates.get(assignment)
        due = parse_time(base, self.zone) if base else self._gradebook.get(assignment)
        extension = (self.settings.extensions.get(assignment) or {}).get(student)
        if extension is None or (due is None and isinstance(extension, (int, float))):
            return due
        if isinstance(extension, (int, float)):
            return due + timedelta(days=float(extension))
        return parse_time(extension, self.zone)

    def days_late(
        self, assignment: str, student: str, submitted: datetime | None, flagged: bool = False
    ) -> tuple[datetime | None, int]:
        due = self.deadline(assignment, student)
        if submitted is not None and due is not None:
            over = submitted - due - timedelta(minutes=self.settings.grace_minutes)
            days = math.ceil(over / DAY) if over > timedelta(0) else 0
            # The stored time wins over the LMS's flag: it knows extensions and grace.
            return due, days
        return due, 1 if flagged else 0

    def lateness(self, assignment: str, student: str, info: dict) -> Lateness:
        """The :class:`Lateness` of ``student``'s submission of ``assignment``.

        ``info``: ``{assignment: {"submitted": datetime | None, "late": bool | None}}`` of
        the student's submissions (every assignment, for the late-day budget).
        """
        spent = 0
        result = None
        order = sorted(
            info,
            key=lambda a: self.deadline(a, student) or datetime.max.replace(tzinfo=timezone.utc),
        )
        for name in order:
            entry = info[name]
            due, days = self.days_late(
                name, student, entry.get("submitted"), bool(entry.get("late"))
            )
            free = 0
            if self.policy == "late_days":
                free = min(days, max(0, self.settings.late_day_budget - spent))
                spent += free
            if name == assignment:
                result = self._price(due, entry, days, free)
                if self.policy == "late_days":
                    result.budget_left = max(0, self.settings.late_day_budget - spent)
                    if result.late:
                        result.note += f"; {result.budget_left} late day(s) left this term"
                break
        if result is None:
            result = Lateness(self.deadline(assignment, student), None)
        return result

    def _price(self, due, entry, days, free) -> Lateness:
        s = self.settings
        out = Lateness(due, entry.get("submitted"), bool(entry.get("late")), days, free)
        if days == 0:
            return out
        charged = days - free
        if self.policy == "none":
            out.note = f"{days} day{'s' * (days != 1)} late (no penalty in this course)"
            return out
        if s.max_late_days and days > s.max_late_days:
            out.penalty_fraction = 1.0
            out.note = f"{days} days late, more than the {s.max_late_days} accepted: no credit"
            return out
        out.penalty_fraction = min(1.0, charged * s.penalty_per_day)
        used = f", {free} of them from the late-day budget" if free else ""
        cost = (
            f"-{100 * out.penalty_fraction:g}% of the maximum score"
            if out.penalty_fraction
            else "no penalty"
        )
        out.note = f"{days} day{'s' * (days != 1)} late{used}: {cost}"
        if entry.get("submitted") is None:
            out.note += " (flagged late by the LMS, no submission time: counted as 1 day)"
        return out


def read_submission_info(course: Course, assignment: str, student: str) -> dict:
    """``{"submitted": datetime | None, "late": bool | None, ...}`` of one submission, from
    the ``timestamp.txt`` and ``submission.json`` that ``coursekit collect`` stores."""
    directory = course.submission_directory(assignment, student)
    info: dict = {"submitted": None, "late": None}
    meta = directory / METADATA_NAME
    if meta.is_file():
        try:
            info.update(json.loads(meta.read_text("utf-8")))
        except (ValueError, OSError):
            pass
    zone = zone_named(CoursekitDeadlines(config=course.config).timezone)
    stamp = directory / "timestamp.txt"
    text = info.get("submitted_at")
    if stamp.is_file():
        text = stamp.read_text("utf-8").strip() or text
    if text:
        try:
            info["submitted"] = parse_time(text, zone)
        except (ValueError, OverflowError):
            info["submitted"] = None
    return info


def lateness_table(course: Course, assignment: str, students: list[str]) -> dict[str, Lateness]:
    """``{student: Lateness}`` for the submissions of ``assignment`` (the late-day budget
    counts the student's other assignments too)."""
    deadlines = Deadlines.for_course(course)
    out = {}
    for student in students:
        info = {}
        for name in course.assignments():
            if course.submission_directory(name, student).is_dir():
                info[name] = read_submission_info(course, name, student)
        out[student] = deadlines.lateness(assignment, student, info)
    return out
