"""Preflight: grade the reference solution and the blank release before any student.

A grading environment that cannot run the course (a kernel that imports another coursekit,
or none; a kernel that never starts; a full scratch disk) would otherwise give every
student 0 and exit 0. So before ``coursekit grade`` grades a student, two canaries go
through exactly the path the students take (:func:`~coursekit.instructor.grade.
grade_submission` on the same executor, with the same course configuration, gradebook
snapshot, scratch root, sandbox, limits and timeouts; they are the first jobs of the run,
and the students' results are held back until both canaries are judged):

* ``solution``: the released notebooks filled with the reference answers, which must get
  every autograded point;
* ``blank``: the released notebooks as handed out, which must get 0.

Unless both hold, :class:`PreflightError` stops the run before the gradebook is touched,
with a message naming the cause where it can be found (for example which ``coursekit`` the
grader and a student's kernel each import). A passed preflight is remembered in
``.coursekit/preflight/<assignment>.json`` for the environment and assignment digests it
ran with; a run in the same environment does not repeat it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from coursekit.instructor import provenance
from coursekit.instructor.course import Course, CourseError
from coursekit.instructor.grade import ERROR, GRADED, GradingJob, GradingResult
from coursekit.instructor.journal import write_atomic

#: Student ids of the two canaries in the scratch gradebook (never in the course's).
SOLUTION = "coursekit-preflight-solution"
BLANK = "coursekit-preflight-blank"


class PreflightError(CourseError):
    """The grading environment cannot grade this assignment; nothing was recorded."""


@dataclass
class Preflight:
    """The outcome of a preflight (``cached``: a passed preflight of the same environment)."""

    assignment: str
    key: str
    cached: bool = False
    problems: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def cache_path(course: Course, assignment: str) -> Path:
    return course.state_directory / "preflight" / f"{assignment}.json"


def cache_key(env_digest: str, assignment_digest: str) -> str:
    return f"{env_digest}:{assignment_digest}"


def cached(course: Course, assignment: str, key: str) -> bool:
    """Whether a preflight passed for ``key`` (environment and assignment digests)."""
    try:
        data = json.loads(cache_path(course, assignment).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("key") == key and data.get("passed") is True


def remember(course: Course, assignment: str, key: str, env: dict) -> None:
    data = {
        "key": key,
        "passed": True,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": env,
    }
    write_atomic(cache_path(course, assignment), json.dumps(data, indent=1).encode("utf-8"))


def canary_jobs(
    course: Course, assignment: str, directory: Path, template: GradingJob
) -> list[GradingJob]:
    """The solution and blank submissions, written under ``directory``, as grading jobs
    that differ from a student's job (``template``) only in who and what is graded."""
    from coursekit.grading import submissions

    source = course.directory("source") / assignment
    release = course.directory("release") / assignment
    jobs = []
    for student in (SOLUTION, BLANK):
        target = directory / student / assignment
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for src_path in sorted(source.glob("*.ipynb")):
            released = submissions.read(release / src_path.name)
            nb = released
            if student == SOLUTION:
                nb = submissions.submission(submissions.read(src_path), released)
            nbformat.write(nb, str(target / src_path.name))
        jobs.append(
            GradingJob(
                config_file=template.config_file,
                assignment=assignment,
                student=student,
                submission_dir=str(target),
                source_dir=template.source_dir,
                gradebook=template.gradebook,
                scratch_root=template.scratch_root,
                fingerprint="preflight",
                assignment_digest=template.assignment_digest,
            )
        )
    return jobs


def judge(solution, blank) -> list[str]:
    """What is wrong with the two canaries' results (empty: the environment grades)."""
    problems = []
    canaries = (("reference solution", solution, True), ("blank release", blank, False))
    for name, result, want_full in canaries:
        if result is None or isinstance(result, BaseException):
            problems.append(f"the {name} could not be graded: {result!r}")
            continue
        if result.status == ERROR:
            problems.append(f"the {name} could not be graded: {result.reason}")
            continue
        if result.status != GRADED:
            problems.append(f"the {name} could not be graded: {result.reason}")
            continue
        auto = [t for t in result.tests if t["autograded"]]
        score = sum(t["points"] for t in auto)
        maximum = sum(t["max_points"] for t in auto)
        if want_full and score < maximum:
            failed = [t for t in auto if t["points"] < t["max_points"]]
            detail = "; ".join(f"{t['cell']}: {_first_line(t.get('message'))}" for t in failed[:3])
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            problems.append(
                f"the {name} got {score:g}/{maximum:g} instead of full marks: {detail}{more}"
            )
        if not want_full and score > 0:
            passed = [t["cell"] for t in auto if t["points"] > 0]
            problems.append(
                f"the {name} got {score:g}/{maximum:g} instead of 0 (points for "
                f"{', '.join(passed[:5])}): its hidden tests accept an unanswered notebook"
            )
    return problems


def _first_line(message: str | None) -> str:
    return (message or "no message").strip().splitlines()[0][:200] if message else "no message"


_MISSING_MODULE = re.compile(r"No module named '([^']+)'")


def diagnose(problems: list[str], results: list, env: dict) -> list[str]:
    """Causes worth naming for failed canaries: which coursekit the grader and a kernel
    import, modules a kernel cannot import, a kernel that did not start, a full disk."""
    text = "\n".join(problems)
    for result in results:
        if isinstance(result, GradingResult):
            text += "\n" + (result.reason or "") + "\n"
            text += "\n".join(t.get("message") or "" for t in result.tests)
            text += "\n" + result.log[-4000:]
    causes = []
    grader = env.get("coursekit", {}).get("path")
    kernel = env.get("kernel_coursekit", {}).get("path")
    if kernel != grader:
        causes.append(
            f"the grader imports coursekit from {grader}, a student's kernel from "
            f"{kernel or 'nowhere (it cannot import coursekit)'}; install the course's "
            "coursekit in the grading environment (`pip install -e .` in the course "
            "directory) or grade from the checkout the environment points at"
        )
    missing = sorted(set(_MISSING_MODULE.findall(text)))
    if missing:
        causes.append(
            f"student kernels cannot import {', '.join(missing)} (the kernel runs "
            f"{provenance.kernel_argv()[0]}; the grader imports coursekit from {grader})"
        )
    if "Kernel didn't respond" in text or "Kernel died before replying" in text:
        causes.append(
            "the kernel did not start (check the kernelspec `jupyter kernelspec list` and "
            "that its interpreter runs)"
        )
    if "No space left on device" in text or "disk space" in text:
        causes.append("the disk holding the grading scratch directory is full")
    return causes


def plan_preflight(
    course: Course,
    assignment: str,
    template: GradingJob,
    directory: Path,
    env: dict,
    *,
    force: bool = False,
) -> tuple[Preflight, list[GradingJob]]:
    """The preflight of ``assignment`` and the canary jobs it needs (none when a passed
    preflight of the same environment is cached). The caller runs the jobs first on the
    students' executor and hands their results to :func:`conclude` before it records any
    student's result."""
    key = cache_key(provenance.environment_digest(env), template.assignment_digest)
    outcome = Preflight(assignment, key)
    if not force and cached(course, assignment, key):
        outcome.cached = True
        return outcome, []
    return outcome, canary_jobs(course, assignment, directory, template)


def conclude(course: Course, outcome: Preflight, results: dict, env: dict) -> Preflight:
    """Judge the canaries' ``results`` (``{student: GradingResult or exception}``); raise
    :class:`PreflightError` when they are not graded as expected, else remember the pass."""
    assignment = outcome.assignment
    outcome.results = results
    outcome.problems = judge(results.get(SOLUTION), results.get(BLANK))
    if outcome.problems:
        causes = diagnose(outcome.problems, list(results.values()), env)
        lines = [
            f"preflight failed for {assignment}: the grading environment does not grade "
            "the reference solution and the blank release as expected, so no student was "
            "graded and the gradebook is unchanged."
        ]
        lines += [f"  - {p}" for p in outcome.problems]
        if causes:
            lines.append("likely cause:")
            lines += [f"  - {c}" for c in causes]
        lines.append(
            "`coursekit validate` runs the same check; fix the environment and rerun "
            f"`coursekit grade {assignment}`."
        )
        raise PreflightError("\n".join(lines))
    remember(course, assignment, outcome.key, env)
    return outcome
