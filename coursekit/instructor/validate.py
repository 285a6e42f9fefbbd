"""``coursekit validate``: check that assignments are ready to hand out and to grade.

For each assignment, in a temporary copy of the course (the course itself is not touched):

* **no drift, deterministic**: regenerating the release twice with nbgrader gives the same
  files, equal to the course's release directory (notebooks compared as JSON);
* **no leaks**: the released notebooks hold no solution or hidden-test markers and no line
  of a solution or hidden-test region of the source (lines of at least 12 characters that
  do not also occur elsewhere in the source);
* **solutions pass**: the released notebooks filled with the reference answers, graded by
  :func:`~coursekit.instructor.grade.grade_submission`, get every autograded point;
* **releases fail**: the unmodified released notebooks are graded without error and get 0
  on every autograded cell.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.grading import submissions
from coursekit.instructor.course import CONFIG_NAME, Course, CourseError
from coursekit.instructor.executors import LocalExecutor
from coursekit.instructor.grade import GRADED, GradingJob, grade_submission
from coursekit.instructor.release import release

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_MIN_LINE = 12


@dataclass
class ValidationReport:
    assignment: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, problems: list[str]) -> None:
        self.checks.append((name, not problems, "; ".join(problems[:10])))

    def warn(self, problems: list[str]) -> None:
        """Problems worth fixing that do not fail validation."""
        self.warnings += problems

    def render(self) -> str:
        lines = [f"{self.assignment}: {'OK' if self.ok else 'FAILED'}"]
        for name, ok, detail in self.checks:
            lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))
        lines += [f"  [warn] {w}" for w in self.warnings]
        return "\n".join(lines)


def _tree(directory: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        out[rel] = (
            json.loads(path.read_text("utf-8")) if path.suffix == ".ipynb" else path.read_bytes()
        )
    return out


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Differences between two release directories (notebooks compared as JSON)."""
    if not expected.is_dir():
        return [f"{expected} does not exist (run `coursekit release`)"]
    a, b = _tree(expected), _tree(actual)
    problems = [f"missing {name}" for name in sorted(set(b) - set(a))]
    problems += [f"unexpected {name}" for name in sorted(set(a) - set(b))]
    problems += [f"{name} differs" for name in sorted(set(a) & set(b)) if a[name] != b[name]]
    return problems


def _regions(source: str) -> tuple[list[str], list[str]]:
    """(lines inside solution/hidden regions, lines outside), stripped."""
    inside, outside, depth = [], [], 0
    for line in source.splitlines():
        if any(f"BEGIN {m}" in line for m in ("SOLUTION", "HIDDEN TESTS")):
            depth += 1
        elif any(f"END {m}" in line for m in ("SOLUTION", "HIDDEN TESTS")):
            depth = max(0, depth - 1)
        elif line.strip():
            (inside if depth else outside).append(line.strip())
    return inside, outside


def find_leaks(source_nb, released_nb) -> list[str]:
    """Solution or hidden-test text of ``source_nb`` found in ``released_nb``."""
    released_text = json.dumps(nbformat.from_dict(released_nb), ensure_ascii=False)
    released_lines = {
        line.strip() for cell in released_nb.cells for line in cell.get("source", "").splitlines()
    }
    problems = [f"marker {m!r} present" for m in MARKERS if m in released_text]
    secret, public = set(), set()
    for cell in source_nb.cells:
        inside, outside = _regions(cell.get("source", ""))
        secret.update(inside)
        public.update(outside)
    for line in sorted(secret - public):
        if len(line) >= _MIN_LINE and line in released_lines:
            problems.append(f"released line from a solution or hidden test: {line[:60]!r}")
    return problems


def validate(course: Course, assignments: list[str] | None = None, workers: int | None = None):
    """Validate ``assignments`` (default: all); return one :class:`ValidationReport` each."""
    names = course.require_assignments(assignments)
    reports = []
    with tempfile.TemporaryDirectory(prefix="coursekit-validate-") as tmp:
        tmp = Path(tmp)
        jobs, expectations = [], {}
        for name in names:
            report = ValidationReport(name)
            reports.append(report)
            work = tmp / name
            source = course.directory("source") / name
            shutil.copytree(source, work / course.coursedir.source_directory / name)
            shutil.copy2(course.config_file, work / CONFIG_NAME)
            scratch = Course.locate(work)
            try:
                release(scratch, [name])
                first = tmp / f"{name}-first"
                shutil.copytree(scratch.directory("release") / name, first)
                release(scratch, [name])
            except CourseError as exc:
                report.add("release generates", [str(exc)])
                continue
            regenerated = scratch.directory("release") / name
            problems = [f"second generation: {p}" for p in compare_trees(first, regenerated)]
            report.add("regeneration is deterministic", problems)
            report.add(
                "release directory matches the source (no drift)",
                compare_trees(course.directory("release") / name, regenerated),
            )
            leaks = []
            for src_path in sorted(source.glob("*.ipynb")):
                rel_path = regenerated / src_path.name
                if rel_path.exists():
                    leaks += [
                        f"{src_path.name}: {p}"
                        for p in find_leaks(submissions.read(src_path), submissions.read(rel_path))
                    ]
            report.add("release holds no solution code or hidden tests", leaks)
            report.warn(_public_only(source))
            for kind in ("solution", "released"):
                sub_dir = scratch.submission_directory(name, kind)
                sub_dir.mkdir(parents=True)
                for src_path in sorted(source.glob("*.ipynb")):
                    released = submissions.read(regenerated / src_path.name)
                    nb = released
                    if kind == "solution":
                        nb = submissions.submission(submissions.read(src_path), released)
                    nbformat.write(nb, str(sub_dir / src_path.name))
                job = GradingJob(
                    config_file=str(scratch.config_file),
                    assignment=name,
                    student=kind,
                    submission_dir=str(sub_dir),
                    source_dir=str(scratch.directory("source") / name),
                    gradebook=str(scratch.gradebook_path),
                    scratch_root=str(tmp / "scratch"),
                )
                jobs.append(job)
                expectations[(name, kind)] = report
        if jobs:
            executor = LocalExecutor(
                min(workers or len(jobs), len(jobs)), log_path=str(tmp / "workers.log")
            )
            try:
                outcomes = {
                    (job.assignment, job.student): out
                    for job, out in executor.run(grade_submission, jobs)
                }
            finally:
                executor.close()
            for (name, kind), report in expectations.items():
                report.add(*_judge(kind, outcomes.get((name, kind))))
    return reports


def _public_only(source: Path) -> list[str]:
    """Autograded test cells without a ``check(...)``: such a cell is scored by what the
    student's kernel did, which student code can influence (coursekit grade scores every
    other test cell by its hidden verdict alone)."""
    from coursekit.instructor.hidden import hidden_checks

    problems = []
    for path in sorted(source.glob("*.ipynb")):
        for cell in submissions.read(path).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            is_test = cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")
            if is_test and not hidden_checks(cell.source):
                problems.append(
                    f"{path.name}: test cell {meta.get('grade_id')} has no hidden check "
                    '(add check("task", fn, seed=N) between the hidden-test markers)'
                )
    return problems


def _judge(kind: str, result) -> tuple[str, list[str]]:
    title = "solutions get full marks" if kind == "solution" else "released notebooks score 0"
    if result is None or isinstance(result, BaseException):
        return title, [f"grading failed: {result!r}"]
    if result.status != GRADED or (kind == "solution" and result.reason):
        return title, [f"not gradable: {result.reason}"]
    problems = []
    for t in result.tests:
        if not t["autograded"]:
            continue
        if kind == "solution" and not t["passed"]:
            problems.append(f"{t['cell']}: {t['points']:g}/{t['max_points']:g} ({t['message']})")
        if kind == "released" and t["points"] > 0:
            problems.append(f"{t['cell']} gets {t['points']:g} points unanswered")
    return title, problems
