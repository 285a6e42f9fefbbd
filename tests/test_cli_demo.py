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


@pytest.mark.parametrize("assignment", ["a1", "a2", "a3", "a4", "a5"])
def test_every_assignment_synthesizes_a_class_with_its_alternatives(tmp_path, assignment):
    """Alternatives are written as answers per cell or as mutations of the solution (in a
    dict or a list); every kind becomes a student of the class."""
    root = repository_root()
    _, _, klass = build_demo_course(tmp_path / "demo", assignment, 10)
    alternatives = load_list(root / "tests" / "alternatives" / f"{assignment}.py", "ALTERNATIVES")
    names = alternatives if isinstance(alternatives, dict) else [m.name for m in alternatives]
    assert names
    for name in names:
        assert f"alternative-{name}".replace("_", "-") in klass, name
