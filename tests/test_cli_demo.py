"""``coursekit demo`` builds its class from the repository: catalogue, broken files, size."""

import pytest

from coursekit.instructor.demo import build_demo_course, load_list, repository_root

pytestmark = pytest.mark.slow


def test_demo_class_covers_the_catalogue_and_the_broken_cases(tmp_path):
    root = repository_root()
    course, assignment, klass = build_demo_course(tmp_path / "demo", None, 30)
    mistakes = load_list(root / "tests" / "mistakes" / f"{assignment}.py", "MISTAKES")
    assert mistakes, "the demo picks an assignment with a mistake catalogue"
    for mutation in mistakes:
        assert f"mistake-{mutation.name}".replace("_", "-") in klass
    for broken in (
        "broken-malformed-json",
        "broken-empty-file",
        "broken-renamed-notebook",
        "broken-stripped-metadata",
        "broken-deleted-test-cell",
        "broken-kernel-dies",
    ):
        assert broken in klass
    assert {"blank-1", "blank-2", "correct-1", "correct-2", "correct-3"} <= set(klass)
    assert len(klass) >= 30
    assert sorted(course.students(assignment)) == sorted(klass)
    # the released notebooks exist and the gradebook knows the assignment
    course.require_released(assignment)
    assert (course.directory("release") / assignment).is_dir()


def test_load_list_of_a_missing_catalogue_is_empty(tmp_path):
    assert load_list(tmp_path / "a9.py", "MISTAKES") == []
    assert load_list(tmp_path / "a9.py", "ALTERNATIVES") == {}
