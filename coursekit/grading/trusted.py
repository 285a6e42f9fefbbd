"""The static integrity check: code that names the graded reference or the grading machinery.

Hidden tests are graded where the references cannot be imported and student code cannot
reach the grader (:mod:`coursekit.instructor.hidden`), so tampering gains nothing. This
check makes such attempts visible: :func:`integrity_problems` reads the code the student
wrote and names what it found, and the test gets no credit with that evidence.
"""

from __future__ import annotations

import ast

from coursekit.grading.core import get_task

__all__ = ["MACHINERY", "integrity_problems"]


#: Names only the grading machinery uses: student code that mentions them tampers with it.
MACHINERY = (
    "coursekit.grading.core",
    "coursekit.grading.trusted",
    "coursekit.grading.tasks",
    "_REGISTRY",
    "get_task",
    "collect_outputs",
    "outcomes_to_json",
    "coursekit.grading.runner",
    "coursekit.grading.state",
    "set_custom_exc",
    "showtraceback",
    "excepthook",
)


def _attributes(tree: ast.AST) -> set[str]:
    """The attribute names a parsed cell looks up (``np.exp`` gives ``exp``)."""
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def _mentions(tree: ast.AST) -> set[str]:
    """Dotted names, imported modules and string constants of a parsed cell."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return found


def _rebinds_check(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "check":
                return True
            if isinstance(target, ast.Attribute) and target.attr == "check":
                return True
    return False


def integrity_problems(student_sources: list[str], task_names: list[str]) -> dict[str, str]:
    """``{task: reason}`` for the tasks a submission's own code must get no credit for.

    A heuristic on the code the student wrote (every cell nbgrader does not restore):
    calling one of the task's ``library_functions`` (coursekit's reference implementation),
    or naming the grading machinery (:data:`MACHINERY`, rebinding ``check``). The trusted
    comparison above is what makes tampering useless; this check makes it visible.
    """
    mentions: set[str] = set()
    attributes: set[str] = set()
    tampering = []
    for source in student_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        mentions |= _mentions(tree)
        attributes |= _attributes(tree)
        if _rebinds_check(tree):
            tampering.append("rebinds check")
    tampering += [f"uses {name}" for name in MACHINERY if name in mentions]
    problems = {}
    for task_name in task_names:
        task = get_task(task_name)
        used = []
        for dotted in task.library_functions:
            module, _, name = dotted.rpartition(".")
            # ``from module import name``, or ``import module`` and then ``module.name``
            # (a student's own function of the same name is no use of the library's).
            if dotted in mentions or (module in mentions and name in attributes):
                used.append(dotted)
        if used:
            problems[task_name] = (
                f"integrity: the submission calls coursekit's own implementation "
                f"({', '.join(used)}) instead of writing the function"
            )
        elif tampering:
            problems[task_name] = (
                "integrity: the submission tampers with the grading machinery ("
                + "; ".join(sorted(set(tampering)))
                + ")"
            )
    return problems
