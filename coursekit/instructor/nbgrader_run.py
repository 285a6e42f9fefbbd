"""Running one of nbgrader's converters in-process with the course configuration."""

from __future__ import annotations

import logging

from coursekit.instructor.course import Course, CourseError


def run_converter(
    course: Course, converter_class, *, assignment: str, student: str = ".", **traits
):
    """Run an nbgrader converter (``GenerateAssignment``, ...) and return its captured log.

    Raises
    ------
    CourseError
        If nbgrader reports a failure; the message holds nbgrader's own error lines.
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=course.config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    logger = logging.getLogger(f"coursekit.nbgrader.{converter_class.__name__}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    app = converter_class(coursedir=coursedir, config=course.config, log=logger)
    for name, value in traits.items():
        setattr(app, name, value)
    out = capture_log(app)
    if not out["success"]:
        errors = [ln for ln in out.get("log", "").splitlines() if "ERROR" in ln or "Error" in ln]
        detail = "\n".join(errors[-8:]) or out.get("error", "")
        raise CourseError(
            f"nbgrader {converter_class.__name__} failed for {assignment!r}:\n{detail}"
        )
    return out.get("log", "")
