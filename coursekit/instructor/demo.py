"""``coursekit demo``: the whole instructor workflow on a synthesized class.

Builds a temporary course from this repository (its ``nbgrader_config.py`` and one
assignment's source), synthesizes a class, then runs release, grade (in parallel),
feedback, export and report, and prints the grade table and where the files are.

The class, built with :mod:`coursekit.grading.submissions`:

* ``correct-N``: the reference answers (at least three, more to reach the class size);
* ``blank-1``, ``blank-2``: the released notebooks, unanswered;
* ``mistake-<name>``: one per entry of the mistake catalogue ``tests/mistakes/<a>.py``;
* ``alternative-<name>``: one per valid alternative in ``tests/alternatives/<a>.py``;
* ``broken-*``: malformed JSON, an empty file, a renamed notebook, stripped nbgrader
  metadata, a deleted test cell, and a kernel that dies.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import nbformat

import coursekit
from coursekit.grading import submissions
from coursekit.instructor.course import CONFIG_NAME, Course, CourseError


def repository_root() -> Path:
    """The checkout this package was installed from (editable install or source tree)."""
    root = Path(coursekit.__file__).resolve().parents[1]
    if not (root / CONFIG_NAME).is_file():
        raise CourseError(
            f"coursekit demo needs a repository checkout with {CONFIG_NAME}; "
            f"{root} has none (install coursekit with `pip install -e <checkout>`)"
        )
    return root


def load_list(path: Path, name: str):
    """``name`` from the Python file at ``path`` (a mistake or alternative catalogue)."""
    if not path.is_file():
        return [] if name == "MISTAKES" else {}
    spec = importlib.util.spec_from_file_location(f"_coursekit_demo_{path.stem}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _student_id(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)


def synthesize_class(
    source_dir: Path, release_dir: Path, mistakes, alternatives, size: int
) -> dict:
    """``{student: {filename: notebook node or bytes}}`` for the class described above."""
    names = sorted(p.name for p in source_dir.glob("*.ipynb"))
    sources = {n: submissions.read(source_dir / n) for n in names}
    released = {n: submissions.read(release_dir / n) for n in names}

    def build(mutation=None, answers=None) -> dict:
        return submissions.assignment_submission(sources, released, mutation, answers)

    klass: dict = {}
    for i in (1, 2):
        klass[f"blank-{i}"] = dict(released)
    for mutation in mistakes:
        klass[_student_id(f"mistake-{mutation.name}")] = build(mutation=mutation)
    # Alternatives come as {name: answers or a mutation} or as a list of mutations.
    if not isinstance(alternatives, dict):
        alternatives = {m.name: m for m in alternatives}
    for name, alternative in alternatives.items():
        if isinstance(alternative, submissions.Mutation):
            klass[_student_id(f"alternative-{name}")] = build(mutation=alternative)
        else:
            klass[_student_id(f"alternative-{name}")] = build(answers=alternative)
    first = names[0]
    correct = build()
    bad = copy.deepcopy(correct)
    klass["broken-malformed-json"] = {**bad, first: nbformat.writes(bad[first])[:-200].encode()}
    klass["broken-empty-file"] = {**bad, first: b""}
    klass["broken-renamed-notebook"] = {
        **{k: v for k, v in bad.items() if k != first},
        first.replace(".ipynb", " (1).ipynb"): bad[first],
    }
    stripped = copy.deepcopy(correct[first])
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    klass["broken-stripped-metadata"] = {**bad, first: stripped}
    deleted = copy.deepcopy(correct[first])
    tests = [
        c
        for c in deleted.cells
        if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
    ]
    if tests:
        deleted.cells.remove(tests[0])
    klass["broken-deleted-test-cell"] = {**bad, first: deleted}
    answer_cells = sorted(submissions.reference_answers(sources[first]))
    if answer_cells:
        klass["broken-kernel-dies"] = build(answers={answer_cells[0]: "import os\nos._exit(1)"})
    n_correct = max(3, size - len(klass))
    for i in range(1, n_correct + 1):
        klass[f"correct-{i}"] = correct
    return klass


def write_class(course: Course, assignment: str, klass: dict) -> None:
    for student, files in klass.items():
        directory = course.submission_directory(assignment, student)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            if isinstance(content, bytes):
                (directory / name).write_bytes(content)
            else:
                nbformat.write(content, str(directory / name))


def build_demo_course(
    directory: Path, assignment: str | None, size: int
) -> tuple[Course, str, dict]:
    """The temporary course with a released assignment and a synthesized class."""
    import shutil

    from coursekit.instructor.release import release

    repo = Course.locate(repository_root())
    known = repo.assignments()
    catalogue = repo.root / "tests" / "mistakes"
    if assignment is None:
        with_mistakes = [a for a in known if (catalogue / f"{a}.py").is_file()]
        if not (with_mistakes or known):
            raise CourseError(f"the repository has no assignments in {repo.directory('source')}")
        assignment = (with_mistakes or known)[0]
    repo.require_assignments([assignment])
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(repo.config_file, directory / CONFIG_NAME)
    shutil.copytree(
        repo.directory("source") / assignment,
        directory / repo.coursedir.source_directory / assignment,
    )
    course = Course.locate(directory)
    release(course, [assignment])
    mistakes = load_list(catalogue / f"{assignment}.py", "MISTAKES")
    alternatives = load_list(
        repo.root / "tests" / "alternatives" / f"{assignment}.py", "ALTERNATIVES"
    )
    klass = synthesize_class(
        course.directory("source") / assignment,
        course.directory("release") / assignment,
        mistakes,
        alternatives,
        size,
    )
    write_class(course, assignment, klass)
    return course, assignment, klass


def run_demo(directory=None, assignment=None, students: int = 30, workers=None, out=None) -> int:
    from coursekit.instructor.batch import (
        SUMMARY_HEADERS,
        format_table,
        grade_assignment,
        manual_points,
        summary_rows,
    )
    from coursekit.instructor.export import export
    from coursekit.instructor.feedback import write_feedback
    from coursekit.instructor.report import write_report

    out = out or sys.stdout
    start = time.perf_counter()
    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="coursekit-demo-"))
    print(f"building a demo course in {directory} ...", file=out, flush=True)
    course, assignment, klass = build_demo_course(directory, assignment, students)
    print(
        f"released {assignment}; synthesized {len(klass)} students; grading ...",
        file=out,
        flush=True,
    )
    summary = grade_assignment(course, assignment, workers=workers)
    pages = write_feedback(course, assignment)
    csv_path, json_path = export(course, assignment)
    report = write_report(course, assignment)
    print(
        format_table(SUMMARY_HEADERS, summary_rows(summary.results)),
        file=out,
    )
    print(f"\n{report.text}\n", file=out)
    print(
        f"written answers ({manual_points(summary.results):g} points) are left for grading "
        "by hand\n"
        f"graded {len(summary.results)} submissions in {summary.seconds:.0f} s "
        f"(total {time.perf_counter() - start:.0f} s)\n"
        f"course:      {course.root}\n"
        f"gradebook:   {course.gradebook_path}\n"
        f"feedback:    {course.directory('feedback')} ({len(pages)} pages)\n"
        f"grades:      {csv_path}, {json_path}\n"
        f"report:      {report.directory / 'report.md'}, {report.directory / 'histogram.png'}\n"
        f"try:         coursekit --course {course.root} report {assignment}",
        file=out,
    )
    return 0 if summary.ok else 1
