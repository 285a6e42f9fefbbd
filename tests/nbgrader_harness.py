"""Drive the real nbgrader on a throw-away copy of the course, for the assignment tests.

Every assignment found in ``solutions/aN/`` is tested the same way by
``tests/test_assignments.py``; an assignment author only adds two catalogue modules.

Mistake catalogue: ``tests/mistakes/aN.py``
    Defines ``MISTAKES: list[coursekit.grading.submissions.Mutation]``. Each mutation is one
    realistic student mistake applied to the reference answer of one answer cell::

        Mutation(
            name="softmax_no_max_shift",          # unique, becomes the student id
            cell="softmax",                       # grade_id of the ANSWER cell to edit
            old="z = logits - logits.max(axis=-1, keepdims=True)",  # exact snippet, once
            new="z = logits",                     # what the student wrote instead
            tests=("test_softmax",),              # grade_ids of TEST cells that must lose points
            description="forgot to subtract the row max before exp",
        )

    ``old`` must occur exactly once in the reference answer (the text between the
    ``### BEGIN SOLUTION``/``### END SOLUTION`` markers, markers removed). Every named test
    cell must score below its maximum when the mutant is autograded (kill rate 100%).
    Whether the mistake also passes the *public* tests is measured and reported; at least one
    mistake per assignment must pass them (the hidden tests must add something).

Alternative solutions: ``tests/alternatives/aN.py``
    Defines ``ALTERNATIVES``: either a ``list[Mutation]`` (``tests`` is ignored; use ``()``)
    or a ``dict[str, dict[str, str]]`` mapping a name to replacement answers
    ``{answer_grade_id: full cell code}``. Each alternative is a different but valid
    formulation and must get full marks on every autograded cell.

Everything about one assignment (reference solution, unmodified release, every mistake,
every alternative) is graded by ONE ``nbgrader autograde aN`` call in ONE course directory;
:func:`grade_class` returns plain JSON-able results that the tests assert on.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import nbformat

from coursekit.grading import submissions
from coursekit.grading.submissions import Mutation

REPO_ROOT = Path(__file__).resolve().parents[1]
SOLUTION_STUDENT = "reference"
BLANK_STUDENT = "blank"
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


# -- what exists ---------------------------------------------------------------------------
def assignment_ids(root: Path = REPO_ROOT) -> list[str]:
    """Names of the assignments in ``solutions/`` (folders holding at least one notebook)."""
    source = root / "solutions"
    if not source.is_dir():
        return []
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def notebook_names(assignment: str, root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.name for p in (root / "solutions" / assignment).glob("*.ipynb"))


def mistakes(assignment: str) -> list[Mutation]:
    """The catalogue ``tests/mistakes/<assignment>.py`` (empty if the module does not exist)."""
    module = _catalogue_module("mistakes", assignment)
    return list(getattr(module, "MISTAKES", [])) if module else []


def alternatives(assignment: str) -> dict[str, Mutation | dict[str, str]]:
    """``{name: Mutation or replacement answers}`` from ``tests/alternatives/<assignment>.py``."""
    module = _catalogue_module("alternatives", assignment)
    found = getattr(module, "ALTERNATIVES", {}) if module else {}
    if isinstance(found, Mapping):
        return dict(found)
    return {m.name: m for m in found}


def _catalogue_module(package: str, assignment: str):
    tests_dir = str(Path(__file__).resolve().parent)
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    try:
        return importlib.import_module(f"{package}.{assignment}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{package}.{assignment}":
            return None
        raise


# -- cells ---------------------------------------------------------------------------------
def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_autograded_test(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


def autograded_test_ids(nb) -> list[str]:
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells if is_autograded_test(c)]


def hidden_test_lines(nb) -> list[str]:
    """The stripped lines between the hidden-test markers of every cell."""
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == HIDDEN_MARKERS[0]:
                inside = True
            elif line.strip() == HIDDEN_MARKERS[1]:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def strip_hidden_tests(nb):
    """A copy of ``nb`` without its hidden-test blocks (what a student can run)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        kept, inside = [], False
        for line in cell.source.splitlines():
            if line.strip() == HIDDEN_MARKERS[0]:
                inside = True
            elif line.strip() == HIDDEN_MARKERS[1]:
                inside = False
            elif not inside:
                kept.append(line)
        cell.source = "\n".join(kept)
    return nb


# -- the course ----------------------------------------------------------------------------
_ROUTINE_LOG = re.compile(
    r"\| INFO\]|Attribute 'checksum' for cell|Kernel is running over TCP without encryption"
)


def _without_routine_lines(log: str) -> str:
    """nbgrader's log without the lines every run prints, so that its traceback is kept."""
    return "\n".join(line for line in log.splitlines() if not _ROUTINE_LOG.search(line))


class Course:
    """A course directory: ``nbgrader_config.py``, ``solutions/``, ``assignments/``, gradebook."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def build(cls, root: Path, assignments: list[str], source_root: Path = REPO_ROOT) -> Course:
        """Copy the config and the given source assignments, then release them with nbgrader."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(source_root / "nbgrader_config.py", root / "nbgrader_config.py")
        for aid in assignments:
            shutil.copytree(
                source_root / "solutions" / aid,
                root / "solutions" / aid,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
        course = cls(root)
        for aid in assignments:
            course.nbgrader("generate_assignment", aid, "--force")
        return course

    def nbgrader(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run the ``nbgrader`` command line of this Python in the course directory."""
        # nbgrader runs ``alembic`` from PATH to create the gradebook: use this environment's.
        bindir = os.path.dirname(sys.executable)
        env = {
            **os.environ,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"nbgrader {' '.join(args)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout[-4000:]}\n{_without_routine_lines(proc.stderr)[-12000:]}"
            )
        return proc

    def notebooks(self, kind: str, assignment: str) -> dict[str, nbformat.NotebookNode]:
        """``{filename: notebook}`` of ``kind`` = "solutions" | "assignments" for an assignment."""
        folder = self.root / kind / assignment
        return {p.name: submissions.read(p) for p in sorted(folder.glob("*.ipynb"))}

    def submit(self, assignment: str, student: str, notebooks: Mapping[str, object]) -> None:
        folder = self.root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, str(folder / name))

    def autograde(self, assignment: str) -> subprocess.CompletedProcess:
        return self.nbgrader("autograde", assignment, "--create", "--force")

    def scores(self, assignment: str) -> dict[str, dict[str, list[float | None]]]:
        """``{student: {grade_id: [score, max_score]}}`` from the gradebook.

        ``score`` is the autograded score (``None`` for a manually graded cell).
        """
        from nbgrader.api import Gradebook

        result: dict[str, dict[str, list[float | None]]] = {}
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            for sub in gb.assignment_submissions(assignment):
                cells = result.setdefault(sub.student.id, {})
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        cells[grade.name] = [grade.auto_score, grade.max_score]
        return result


# -- submissions ---------------------------------------------------------------------------
def build_submission(
    source: Mapping[str, object],
    released: Mapping[str, object],
    mutation: Mutation | None = None,
    answers: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Released notebooks filled with the reference answers, optionally changed.

    See :func:`coursekit.grading.submissions.assignment_submission`.
    """
    return submissions.assignment_submission(source, released, mutation, answers)


def student_id(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# -- public tests --------------------------------------------------------------------------
def run_public_tests(paths: list[Path]) -> list[dict[str, bool]]:
    """Run submissions as a student would (released test cells only), in ONE kernel.

    Returns, per notebook, ``{test grade_id: the cell ran without error}``. The kernel's
    namespace is reset between notebooks; one kernel instead of one per notebook keeps
    mutation testing fast.
    """
    from nbclient import NotebookClient

    if not paths:
        return []
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebooks = [nbformat.read(str(p), as_version=4) for p in paths]
    client = NotebookClient(
        notebooks[0],
        timeout=120,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(paths[0]).parent)}},
    )
    results = []
    with client.setup_kernel():
        for nb in notebooks:
            reset = nbformat.v4.new_code_cell("%reset -f")
            client.execute_cell(reset, 0)
            passed = {}
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                client.execute_cell(cell, index)
                if is_autograded_test(cell):
                    passed[nbgrader_meta(cell)["grade_id"]] = not any(
                        out.output_type == "error" for out in cell.outputs
                    )
            results.append(passed)
    return results


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- everything about one assignment -------------------------------------------------------
def grade_class(assignment: str, workdir: Path) -> dict:
    """Grade the reference, the blank release, every mistake and alternative in one course.

    Returns a JSON-able dict::

        {"course": path, "tests": [test grade_ids], "scores": {student: {grade_id: [score, max]}},
         "mistakes": {name: {"student": id, "tests": [...], "public": {grade_id: bool}}},
         "alternatives": {name: student id}, "seconds": {"release": s, "autograde": s, ...}}
    """
    seconds = {}
    start = time.perf_counter()
    course = Course.build(Path(workdir) / "course", [assignment])
    seconds["release"] = time.perf_counter() - start
    source = course.notebooks("solutions", assignment)
    released = course.notebooks("assignments", assignment)

    course.submit(assignment, SOLUTION_STUDENT, build_submission(source, released))
    course.submit(assignment, BLANK_STUDENT, released)
    mistake_info = {}
    for mutation in mistakes(assignment):
        sid = student_id("mistake", mutation.name)
        course.submit(assignment, sid, build_submission(source, released, mutation=mutation))
        mistake_info[mutation.name] = {"student": sid, "tests": list(mutation.tests)}
    alternative_ids = {}
    for name, alt in alternatives(assignment).items():
        sid = student_id("alternative", name)
        if isinstance(alt, Mutation):
            nbs = build_submission(source, released, mutation=alt)
        else:
            nbs = build_submission(source, released, answers=alt)
        course.submit(assignment, sid, nbs)
        alternative_ids[name] = sid

    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    course.autograde(assignment)
    seconds["autograde"] = time.perf_counter() - start
    # CPU time of nbgrader and its kernels: comparable across machines and loads.
    seconds["autograde_cpu"] = _children_cpu_seconds() - cpu_start
    n_students = 2 + len(mistake_info) + len(alternative_ids)
    seconds["autograde_per_submission"] = seconds["autograde"] / n_students
    seconds["autograde_cpu_per_submission"] = seconds["autograde_cpu"] / n_students

    # Public tests: the submission as the student has it (released test cells only), run in
    # a copy outside submitted/ so that nothing nbgrader reads changes.
    start = time.perf_counter()
    copies = []
    for name, info in mistake_info.items():
        submitted = course.root / "submitted" / info["student"] / assignment
        for nb_path in sorted(submitted.glob("*.ipynb")):
            target = Path(workdir) / "public" / info["student"] / nb_path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(nb_path, target)
            copies.append((name, target))
    results = run_public_tests([p for _, p in copies]) if copies else []
    for (name, _), public in zip(copies, results):
        mistake_info[name].setdefault("public", {}).update(public)
    seconds["public_tests"] = time.perf_counter() - start

    return {
        "course": str(course.root),
        "tests": [t for nb in source.values() for t in autograded_test_ids(nb)],
        "scores": course.scores(assignment),
        "mistakes": mistake_info,
        "alternatives": alternative_ids,
        "seconds": seconds,
    }
