"""The whole-class benchmark (benchmarks/whole_class.py) runs end to end on a small class."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import whole_class  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_a_small_class_is_graded_and_projected():
    result = whole_class.run(students=3, executor="local", workers=2, assignments=["a1", "a3"])
    assert set(result["assignments"]) == {"a1", "a3"}
    for name, entry in result["assignments"].items():
        assert entry["notebooks"] == 3, name  # every student of the class has a result
        assert entry["wall_s"] > 0 and entry["worker_step_median_s"] > 0, name
    assert result["notebooks"] == 6
    rate = result["notebooks_per_core_minute"]
    assert rate == pytest.approx(6 / (result["wall_s"] / 60 * 2))
    # twice the cores, half the time: the projection is the measured rate scaled by cores
    minutes = {(p["machines"], p["cores_per_machine"]): p["minutes"] for p in result["projection"]}
    assert minutes[(1, 8)] == pytest.approx(minutes[(1, 2)] / 4)
    assert minutes[(1, 2)] == pytest.approx(6 / (rate * 2))


def test_the_class_has_the_same_students_in_every_assignment(tmp_path):
    course = whole_class.build_class(tmp_path / "course", 4, ["a1", "a2"])
    assert course.students("a1") == course.students("a2") == ["s0001", "s0002", "s0003", "s0004"]
