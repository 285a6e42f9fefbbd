"""Hidden-test grading: tasks, cases, trusted comparison. See :mod:`coursekit.grading.core`."""

from coursekit.grading.core import (
    Case,
    GradingError,
    Mistake,
    Task,
    Verdict,
    check,
    collect_outputs,
    get_task,
    judge,
    register,
    task_names,
)

__all__ = [
    "Case",
    "GradingError",
    "Mistake",
    "Task",
    "Verdict",
    "check",
    "collect_outputs",
    "get_task",
    "judge",
    "register",
    "task_names",
]
