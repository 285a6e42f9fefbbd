"""``coursekit release``: generate the student versions of assignments with nbgrader.

Runs nbgrader's ``generate_assignment`` (solution code replaced by the stub, hidden tests
removed, outputs cleared, checksums recorded) from the source directory into the release
directory and records the assignment's cells and points in the gradebook, exactly as
``nbgrader generate_assignment --force`` does.
"""

from __future__ import annotations

from coursekit.instructor.course import Course
from coursekit.instructor.nbgrader_run import run_converter


def release(course: Course, assignments: list[str] | None = None) -> list[str]:
    """Release ``assignments`` (default: all); return the released names."""
    from nbgrader.converters import GenerateAssignment

    names = course.require_assignments(assignments)
    for name in names:
        run_converter(
            course, GenerateAssignment, assignment=name, force=True, create_assignment=True
        )
    return names
