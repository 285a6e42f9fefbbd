"""Deadlines, extensions and the late policies (per day, late-day budget)."""

from datetime import datetime, timezone

import pytest
from traitlets.config import Config

from coursekit.instructor.deadlines import CoursekitDeadlines, Deadlines, parse_time

UTC = timezone.utc


def deadlines(**settings) -> Deadlines:
    config = Config()
    config.CoursekitDeadlines.timezone = "UTC"
    config.CoursekitDeadlines.duedates = {"a1": "2026-10-01 23:59", "a2": "2026-10-15 23:59"}
    for key, value in settings.items():
        config.CoursekitDeadlines[key] = value
    return Deadlines(CoursekitDeadlines(config=config))


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_per_day_penalty_counts_started_days_and_caps():
    d = deadlines(policy="per_day", penalty_per_day=0.1, max_late_days=3)
    on_time = d.lateness("a1", "x", {"a1": {"submitted": at("2026-10-01T23:59:00")}})
    assert not on_time.late and on_time.penalty(10, 10) == 0
    one = d.lateness("a1", "x", {"a1": {"submitted": at("2026-10-02T00:00:30")}})
    assert one.days == 1 and one.penalty(10, 8) == pytest.approx(1.0)
    three = d.lateness("a1", "x", {"a1": {"submitted": at("2026-10-04T12:00:00")}})
    assert three.days == 3 and three.penalty(10, 8) == pytest.approx(3.0)
    four = d.lateness("a1", "x", {"a1": {"submitted": at("2026-10-05T12:00:00")}})
    assert four.days == 4 and four.penalty(10, 8) == 8  # no credit, never below zero
    assert "no credit" in four.note


def test_extensions_as_days_or_dates_and_grace():
    d = deadlines(
        policy="per_day",
        grace_minutes=10,
        extensions={"a1": {"ivan": 2, "ada": "2026-10-10 12:00"}},
    )
    submitted = {"a1": {"submitted": at("2026-10-03T20:00:00")}}
    assert d.lateness("a1", "ivan", submitted).days == 0
    assert d.lateness("a1", "ada", submitted).days == 0
    assert d.lateness("a1", "bob", submitted).days == 2
    grace = {"a1": {"submitted": at("2026-10-02T00:05:00")}}
    assert d.lateness("a1", "bob", grace).days == 0


def test_late_day_budget_is_spent_in_deadline_order():
    d = deadlines(policy="late_days", late_day_budget=3, penalty_per_day=0.2)
    info = {
        "a2": {"submitted": at("2026-10-17T10:00:00")},  # 2 days late
        "a1": {"submitted": at("2026-10-03T10:00:00")},  # 2 days late, earlier deadline
    }
    first = d.lateness("a1", "x", info)
    assert (first.days, first.free_days, first.penalty_fraction) == (2, 2, 0)
    assert first.note.startswith("2 days late, 2 of them from the late-day budget: no penalty")
    second = d.lateness("a2", "x", info)
    assert (second.days, second.free_days) == (2, 1)
    assert second.penalty_fraction == pytest.approx(0.2)
    assert "1 of them from the late-day budget" in second.note
    assert first.budget_left == 1 and second.budget_left == 0
    assert second.note.endswith("0 late day(s) left this term")


def test_lms_late_flag_without_time_counts_one_day_and_none_policy_only_reports():
    d = deadlines(policy="per_day", penalty_per_day=0.5)
    flagged = d.lateness("a1", "x", {"a1": {"submitted": None, "late": True}})
    assert flagged.days == 1 and flagged.penalty_fraction == 0.5
    assert "counted as 1 day" in flagged.note
    report_only = deadlines(policy="none").lateness(
        "a1", "x", {"a1": {"submitted": at("2026-10-05T00:00:00")}}
    )
    assert report_only.days == 4 and report_only.penalty_fraction == 0
    assert "no penalty" in report_only.note


def test_no_deadline_means_never_late_and_times_are_parsed_like_nbgrader():
    d = deadlines(policy="per_day")
    assert not d.lateness("a3", "x", {"a3": {"submitted": at("2030-01-01T00:00:00")}}).late
    nbgrader_style = parse_time("2026-10-01 12:30:00.000000 UTC", UTC)
    assert nbgrader_style == at("2026-10-01T12:30:00")
    assert parse_time("2026-10-01T14:30:00+02:00", UTC) == at("2026-10-01T12:30:00")


def test_nbgrader_duedate_from_the_gradebook_is_the_fallback():
    config = Config()
    config.CoursekitDeadlines.policy = "per_day"
    gradebook = {"a1": at("2026-10-01T12:00:00")}  # as read from nbgrader's Assignment.duedate
    d = Deadlines(CoursekitDeadlines(config=config), gradebook)
    assert d.deadline("a1") == at("2026-10-01T12:00:00")
    assert d.lateness("a1", "x", {"a1": {"submitted": at("2026-10-02T11:00:00")}}).days == 1
    config.CoursekitDeadlines.duedates = {"a1": "2026-10-03 12:00+00:00"}  # the course's wins
    d = Deadlines(CoursekitDeadlines(config=config), gradebook)
    assert d.deadline("a1") == at("2026-10-03T12:00:00")
