"""Grading a class: plan, run the jobs on an executor, import results, resume after a stop.

:func:`grade_assignment` is what ``coursekit grade`` runs:

1. take the course's grading lock (one grading run per course at a time);
2. fingerprint every selected submission (its files, the assignment's source files and the
   course configuration); a student whose journal entry carries the same fingerprint and
   is in the gradebook is done, one whose entry was not imported yet is imported now, all
   others are graded (``force=True`` grades every selected student again);
3. snapshot the gradebook, run :func:`~coursekit.instructor.grade.grade_submission` for
   each job on the executor, and for each result, as it arrives: record it in the journal,
   install the autograded files, import it into the gradebook (one transaction), and mark
   it imported.

An interrupted run therefore loses at most the submissions that were being graded, and
the next run grades exactly those.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from coursekit.instructor.course import Course, CourseError
from coursekit.instructor.executors import make_executor, start_fork_server
from coursekit.instructor.grade import (
    ERROR,
    UNGRADABLE,
    GradingJob,
    GradingResult,
    grade_submission,
)
from coursekit.instructor.gradebook import GradebookWriter, install_files, snapshot
from coursekit.instructor.journal import Journal


@dataclass
class BatchSummary:
    """What one grading run did."""

    assignment: str
    results: list[GradingResult] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0
    #: parent-side time per imported result (journal, files, gradebook transaction)
    commit_seconds: list[float] = field(default_factory=list)
    #: ``{student: why}`` for stored results graded again although their files did not
    #: change (another environment, an unfinished ``--force`` run)
    regraded: dict[str, str] = field(default_factory=dict)
    #: ``"passed"``, ``"cached"`` (a passed preflight of the same environment) or ``None``
    preflight: str | None = None
    force: bool = False
    #: students a stopped ``--force`` run still has to regrade
    force_left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.interrupted

    def resume_hint(self) -> str | None:
        """What to run after an interrupted run, in words that are right after ``--force``."""
        if not self.interrupted:
            return None
        if self.force:
            return (
                f"interrupted: {len(self.graded)} submissions were graded again, "
                f"{len(self.force_left)} not yet; rerun `coursekit grade {self.assignment}` "
                "(without --force) to grade exactly those"
            )
        return "interrupted: rerun the same command to grade what is missing"


def journal_for(course: Course, assignment: str) -> Journal:
    return Journal(course.state_directory / "journal" / assignment)


@contextlib.contextmanager
def grading_lock(course: Course):
    """Exclusive lock on the course's grading state; the gradebook keeps a single writer."""
    course.state_directory.mkdir(parents=True, exist_ok=True)
    with open(course.state_directory / "grade.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CourseError(
                f"another coursekit grading run holds {course.state_directory / 'grade.lock'}; "
                "wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _digest_tree(h, directory: Path) -> None:
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())


def assignment_digest(course: Course, assignment: str) -> str:
    h = hashlib.sha256(course.config_file.read_bytes())
    _digest_tree(h, course.directory("source") / assignment)
    return h.hexdigest()


def submission_fingerprint(course: Course, assignment: str, student: str, base: str) -> str:
    from coursekit.instructor.submission_files import digest_submission

    h = hashlib.sha256(base.encode())
    # Student files: no link followed, no special file opened, reads bounded.
    digest_submission(course.submission_directory(assignment, student), h)
    return h.hexdigest()


def grade_assignment(
    course: Course,
    assignment: str,
    *,
    students: list[str] | None = None,
    workers: int | None = None,
    force: bool = False,
    scheduler=None,
    progress: bool = True,
    stream=None,
) -> BatchSummary:
    """Grade the selected submissions of ``assignment``; see the module docstring.

    Parameters
    ----------
    course : Course
    assignment : str
    students : list of str, optional
        Only these students (default: every student with a submission).
    workers : int, optional
        Local worker processes (default: one per core). Ignored with ``scheduler``.
    force : bool
        Grade again even when the journal holds a result for the same files. Manual
        grades of unchanged submissions are kept.
    scheduler : str or distributed.Client, optional
        Run the jobs on this Dask cluster instead of local processes.
    progress : bool
        Show a progress bar on ``stream`` (default ``sys.stderr``).

    Raises
    ------
    PreflightError
        The reference solution or the blank release is not graded as expected in this
        environment (see :mod:`coursekit.instructor.preflight`); nothing was recorded.
    """
    from coursekit.instructor import preflight, provenance

    start = time.perf_counter()
    stream = stream or sys.stderr
    if scheduler is None:
        start_fork_server()  # its imports overlap with the checks below
    course.require_assignments([assignment])
    selected = course.require_students(assignment, students)
    if not selected:
        raise CourseError(
            f"no submissions of {assignment!r} in {course.directory('submitted')} "
            "(see `coursekit collect`)"
        )
    course.require_released(assignment)
    summary = BatchSummary(assignment, force=force)
    journal = journal_for(course, assignment)
    with grading_lock(course), GradebookWriter(course.db_url) as writer:
        base = assignment_digest(course, assignment)
        env = provenance.environment(course.config)
        env_digest = provenance.environment_digest(env)
        todo: list[GradingJob] = []
        pending: list[GradingResult] = []  # recorded but not yet in the gradebook
        unchanged: set[str] = set()  # same files as the stored result: keep manual grades
        run_dir = course.state_directory / "runs" / assignment
        done: dict[str, GradingResult] = {}
        started = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        unfinished = None if force else journal.force_pending()

        def commit(result: GradingResult) -> None:
            t0 = time.perf_counter()
            journal.record(result)
            autograded = course.directory("autograded") / result.student / assignment
            install_files(autograded, result.files)
            writer.import_result(result, keep_manual=result.student in unchanged)
            journal.mark_imported(result)
            done[result.student] = result
            summary.commit_seconds.append(time.perf_counter() - t0)

        for student in selected:
            fingerprint = submission_fingerprint(course, assignment, student, base)
            previous = journal.load(student)
            same_files = previous is not None and previous.fingerprint == fingerprint
            if same_files:
                unchanged.add(student)
            why = _regrade_reason(previous, env, env_digest, unfinished, student)
            if not force and same_files and why is None:
                if not (
                    journal.is_imported(previous) and writer.has_submission(assignment, student)
                ):
                    pending.append(previous)
                done[student] = previous
                summary.reused.append(student)
                continue
            if same_files and why is not None and not force:
                summary.regraded[student] = why
            todo.append(
                GradingJob(
                    config_file=str(course.config_file),
                    assignment=assignment,
                    student=student,
                    submission_dir=str(course.submission_directory(assignment, student)),
                    source_dir=str(course.directory("source") / assignment),
                    gradebook=str(run_dir / "gradebook.db"),
                    scratch_root=str(run_dir / "scratch"),
                    fingerprint=fingerprint,
                    assignment_digest=base,
                )
            )

        if todo:
            # Holding the lock, anything left in runs/ is from a stopped run.
            shutil.rmtree(run_dir, ignore_errors=True)
            try:
                (run_dir / "scratch").mkdir(parents=True)
                snapshot(course.gradebook_path, run_dir / "gradebook.db")
            except (OSError, sqlite3.Error) as exc:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise CourseError(
                    f"cannot prepare the grading scratch space {run_dir}: {exc} (is its disk "
                    "full?); nothing was graded"
                ) from exc
            executor = make_executor(workers, scheduler, log_path=str(run_dir / "workers.log"))
            bar = None
            remaining = {job.student for job in todo}
            try:
                check, canaries = preflight.plan_preflight(
                    course, assignment, todo[0], run_dir / "preflight", env
                )
                # The canaries go first in the same stream as the students, so that the
                # workers never wait on the preflight; nothing is recorded before it passed.
                canary_results: dict = {}
                held: list[tuple[GradingJob, object]] = []
                bar = _progress_bar(len(todo), len(selected), progress, stream)

                def record(job: GradingJob, outcome) -> None:
                    if isinstance(outcome, BaseException):
                        summary.errors[job.student] = f"{type(outcome).__name__}: {outcome}"
                    elif outcome.status == ERROR:
                        summary.errors[job.student] = outcome.reason
                    else:
                        commit(outcome)
                        summary.graded.append(job.student)
                        remaining.discard(job.student)

                def passed() -> None:
                    summary.preflight = "cached" if check.cached else "passed"
                    for result in pending:
                        commit(result)
                    if force:
                        journal.start_force([job.student for job in todo], started)

                if not canaries:
                    passed()
                for job, outcome in executor.run(grade_submission, [*canaries, *todo]):
                    if any(job is canary for canary in canaries):
                        canary_results[job.student] = outcome
                        if len(canary_results) == len(canaries):
                            preflight.conclude(course, check, canary_results, env)
                            passed()
                            for waiting in held:
                                record(*waiting)
                            held.clear()
                        continue
                    if len(canary_results) < len(canaries):
                        held.append((job, outcome))
                    else:
                        record(job, outcome)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(job.student[:20])
            except KeyboardInterrupt:
                summary.interrupted = True
                executor.cancel()
            except preflight.PreflightError:
                executor.cancel()  # the students graded meanwhile are dropped, unrecorded
                raise
            finally:
                if bar is not None:
                    bar.close()
                executor.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            summary.force_left = sorted(remaining)
        else:
            for result in pending:
                commit(result)
        left = journal.force_pending()
        if left is not None and not _force_left(journal, left, course.students(assignment)):
            journal.finish_force()
    summary.results = [done[s] for s in selected if s in done]
    summary.seconds = time.perf_counter() - start
    return summary


def _graded_at(result: GradingResult) -> str:
    return (result.provenance or {}).get("graded_at") or ""


def _regrade_reason(previous, env: dict, env_digest: str, unfinished, student) -> str | None:
    """Why a stored result for the same files must be graded again, or ``None``."""
    from coursekit.instructor import provenance

    if previous is None:
        return None
    if unfinished is not None and student in unfinished["students"]:
        if _graded_at(previous) < unfinished["started"]:
            return "not reached by an interrupted --force run"
    recorded = (previous.provenance or {}).get("environment_digest")
    if recorded is None:
        return "graded by an older coursekit that recorded no environment"
    if recorded != env_digest:
        old = previous.provenance.get("environment") or {}
        return f"graded in another environment ({provenance.describe_difference(old, env)})"
    return None


def _force_left(journal: Journal, pending: dict, present: list[str]) -> list[str]:
    """Students of an unfinished forced run without a result graded after it started
    (among those who still have a submission)."""
    left = []
    for student in sorted(set(pending["students"]) & set(present)):
        result = journal.load(student)
        if result is None or _graded_at(result) < pending["started"]:
            left.append(student)
    return left


def _progress_bar(total: int, selected: int, enabled: bool, stream):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"grading {total}/{selected}", unit="sub", file=stream)


SUMMARY_HEADERS = ["student", "autograded", "status", "notes"]


def summary_rows(results: list[GradingResult]) -> list[list[str]]:
    """Rows of the grade table: student, autograded score / points, status, notes."""
    rows = []
    for r in results:
        auto = [t for t in r.tests if t["autograded"]]
        failed = [
            t["cell"] + (f" ({t['status']})" if t.get("status") not in (None, "failed") else "")
            for t in auto
            if not t["passed"]
        ]
        status = r.status if r.status == UNGRADABLE else ("full" if not failed else "partial")
        note = r.reason or (f"failed: {', '.join(failed)}" if failed else "")
        score = sum(t["points"] for t in auto)
        points = sum(t["max_points"] for t in auto)
        rows.append([r.student, f"{score:g}/{points:g}", status, note])
    return rows


def manual_points(results: list[GradingResult]) -> float:
    """Points per submission left for grading by hand (written answers)."""
    return max(
        (sum(t["max_points"] for t in r.tests if not t["autograded"]) for r in results), default=0.0
    )


def format_table(headers: list[str], rows: list[list[str]], max_width: int = 70) -> str:
    """A plain-text table; long cells are cut to ``max_width`` characters."""
    cells = [
        [str(c) if len(str(c)) <= max_width else str(c)[: max_width - 1] + "…" for c in row]
        for row in rows
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in cells)) if cells else len(h)
        for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(s.rstrip() for s in out)
