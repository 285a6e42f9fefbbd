"""Grading one submission: nbgrader's own autograde in an isolated scratch copy of the course.

:func:`grade_submission` is the whole per-submission step. It takes a :class:`GradingJob`
(plain, picklable data naming the files to grade) and returns a :class:`GradingResult`
(plain data: the autograded files, every grade and comment nbgrader wrote, the failure
message of each test cell, and why the submission could not be graded, if so). It never
touches the course's gradebook: it runs ``nbgrader autograde`` with the course's own
``nbgrader_config.py`` in a scratch directory holding

* a copy of the student's submission (``submitted/<student>/<assignment>/``),
* a link to the assignment's source directory (nbgrader copies its non-notebook files),
* a private copy of a snapshot of the gradebook (master cells, points, extensions and any
  manual grades, so that nbgrader computes exactly what it would compute in place).

The batch runner (:mod:`coursekit.instructor.batch`) imports the result into the real
gradebook in the parent process, so scores equal those of plain ``nbgrader autograde``.
A submission nbgrader cannot grade (unreadable JSON, old metadata, a dead kernel, ...) gets
zero on every graded cell and a recorded reason instead of stopping the batch.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from coursekit.instructor import statuses
from coursekit.instructor.cell_roles import CellRole, release_roles, restore_submission
from coursekit.instructor.course import ensure_tools_on_path, load_config
from coursekit.instructor.submission_files import copy_submission

GRADED = "graded"
UNGRADABLE = "ungradable"
#: The grading machinery failed (e.g. a kernel did not start on an overloaded machine); the
#: result is not recorded and the submission is graded again by the next run.
ERROR = "error"
#: Log lines of failures that are not the submission's fault; such a job is retried.
TRANSIENT = (
    "Kernel didn't respond",
    "Kernel died before replying to kernel_info",
    "Address already in use",
)
#: Failures of the machine, not of the submission: never recorded as a score.
ENVIRONMENT = (("No space left on device", "the grader ran out of disk space"),)
#: Where the hidden-test judge writes its structured verdicts, under the sandbox scratch.
VERDICTS_NAME = "verdicts.json"
ATTEMPTS = 2
# nbgrader changes process-wide state while it grades (the working directory, environment
# variables), so two gradings must never share a process concurrently. Executors run one
# job per process; this lock keeps threaded workers (a Dask worker with several threads)
# correct, at the price of grading one submission at a time in such a process.
_PROCESS_LOCK = threading.Lock()


@dataclass(frozen=True)
class GradingJob:
    """Everything :func:`grade_submission` needs, as paths the worker can read.

    Attributes
    ----------
    config_file : str
        The course's ``nbgrader_config.py``.
    assignment, student : str
        Which submission to grade.
    submission_dir : str
        ``submitted/<student>/<assignment>`` of the course.
    source_dir : str
        The assignment's source directory (``solutions/<assignment>``).
    gradebook : str
        A snapshot of the course gradebook taken before the batch started (read only).
    scratch_root : str
        Directory under which the worker creates (and removes) its scratch course.
    fingerprint : str
        Digest of the submission and the assignment's source, recorded with the result.
    assignment_digest : str
        Digest of the assignment's source and the course configuration (provenance).
    """

    config_file: str
    assignment: str
    student: str
    submission_dir: str
    source_dir: str
    gradebook: str
    scratch_root: str
    fingerprint: str = ""
    assignment_digest: str = ""


@dataclass
class GradingResult:
    """What grading one submission produced (plain data; JSON-friendly apart from ``files``).

    Attributes
    ----------
    status : str
        ``"graded"`` (nbgrader finished) or ``"ungradable"`` (every graded cell scored 0).
    reason : str or None
        Why the submission could not be (fully) graded; ``None`` when nothing went wrong.
    timestamp : str or None
        The submission time nbgrader read from ``timestamp.txt`` (ISO format).
    notebooks : dict
        ``{notebook: {"late_submission_penalty": float | None, "flagged": bool,
        "grades": {cell: {"auto_score": float | None, "needs_manual_grade": bool}},
        "comments": {cell: str | None}}}``: the gradebook fields autograde writes.
    tests : list of dict
        One entry per graded cell: ``notebook``, ``cell``, ``points``, ``max_points``,
        ``autograded`` (a code test cell), ``passed``, the ``status`` of an autograded
        cell (:mod:`coursekit.instructor.statuses`) and its ``message``.
    files : dict
        ``{relative path: bytes}`` of ``autograded/<student>/<assignment>/``.
    seconds, timings : float, dict
        Wall time of the whole step, and of its stages ``prepare`` (scratch course),
        ``autograde`` (nbgrader) and ``collect`` (reading results back): the first and the
        last are coursekit's overhead over plain nbgrader.
    provenance : dict
        Where it was graded (:mod:`coursekit.instructor.provenance`): ``environment``,
        ``environment_digest``, ``assignment_digest`` and ``graded_at`` (UTC, ISO).
    """

    assignment: str
    student: str
    fingerprint: str
    status: str
    reason: str | None = None
    timestamp: str | None = None
    notebooks: dict = field(default_factory=dict)
    tests: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return float(sum(t["points"] for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t["max_points"] for t in self.tests))


def grade_submission(job: GradingJob) -> GradingResult:
    """Autograde one submission with nbgrader in a scratch course; never raises for bad input."""
    start = time.perf_counter()
    Path(job.scratch_root).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{job.student}-", dir=job.scratch_root))
    with _PROCESS_LOCK:
        try:
            result = _grade_in(scratch, job)
        except Exception as exc:  # noqa: BLE001 - a failure of the step is reported, not raised
            result = GradingResult(
                job.assignment,
                job.student,
                job.fingerprint,
                ERROR,
                reason=f"grading failed: {type(exc).__name__}: {exc}",
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def _grade_in(scratch: Path, job: GradingJob) -> GradingResult:
    timings = {"prepare": 0.0, "autograde": 0.0}
    for _attempt in range(ATTEMPTS):
        t0 = time.perf_counter()
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        config, roles, restored = _prepare_scratch(job, scratch)
        t1 = time.perf_counter()
        success, log = _autograde(job, config)
        timings["prepare"] += t1 - t0
        timings["autograde"] += time.perf_counter() - t1
        transient = not success and any(t in log for t in TRANSIENT)
        if not transient:
            break
    t2 = time.perf_counter()
    result = _collect(job, scratch, config, success, log, roles, restored)
    result.timings = {**timings, "collect": time.perf_counter() - t2}
    try:  # the hidden step after the notebook (coursekit.instructor.sandbox)
        hidden = json.loads((scratch / "sandbox" / "timings.json").read_text())["hidden"]
        result.timings["hidden"] = float(hidden)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result.provenance = _provenance(job, config)
    if transient:
        result.status = ERROR
        result.reason = f"the grading machinery failed {ATTEMPTS} times: {_last_error(log)}"
    machine = None if success else _environment_failure(log, job.scratch_root)
    if machine:
        result.status = ERROR
        result.reason = f"{machine} (in {job.scratch_root}); nothing was recorded"
    return result


def _provenance(job: GradingJob, config) -> dict:
    """The environment this result was graded in (never fails the grading)."""
    from datetime import datetime, timezone

    from coursekit.instructor import provenance

    out = {
        "assignment_digest": job.assignment_digest,
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
    }
    try:
        env = provenance.environment(config)
        out["environment"] = env
        out["environment_digest"] = provenance.environment_digest(env)
    except Exception as exc:  # noqa: BLE001 - a missing description must not cost a grade
        out["environment_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _environment_failure(log: str, scratch_root: str) -> str | None:
    """A failure of the machine: a full scratch disk, measured, not read from text (the
    notebooks' outputs, file names and so nbgrader's log hold what the student wrote: a
    printed "No space left on device" must not make a submission ungradable)."""
    del log
    try:
        stats = os.statvfs(scratch_root)
    except OSError:
        return None
    if stats.f_bavail * stats.f_frsize < 1024**2:
        return ENVIRONMENT[0][1]
    return None


# -- the three stages -----------------------------------------------------------------------
def _prepare_scratch(job: GradingJob, scratch: Path):
    config = load_config(job.config_file, root=scratch)
    config.CourseDirectory.db_url = f"sqlite:///{scratch / 'gradebook.db'}"
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    submitted = Path(
        coursedir.format_path(coursedir.submitted_directory, job.student, job.assignment)
    )
    # No symlink followed, no special file opened, every read bounded.
    copy_notes = copy_submission(job.submission_dir, submitted)
    source = Path(coursedir.format_path(coursedir.source_directory, ".", job.assignment))
    source.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.abspath(job.source_dir), source, target_is_directory=True)
    shutil.copyfile(job.gradebook, scratch / "gradebook.db")
    # Cells back in their release roles, so that changed metadata costs only those cells.
    roles = release_roles(config.CourseDirectory.db_url, job.assignment)
    restored = copy_notes + restore_submission(submitted, roles)
    # Sandboxed student kernels; hidden tests graded apart (coursekit.instructor.sandbox).
    from coursekit.instructor.hidden import SECRET_FILE, load_secret
    from coursekit.instructor.sandbox import configure_sandbox

    course_root = Path(job.config_file).resolve().parent
    state = course_root / ".coursekit"
    load_secret(state)  # created on the course's first grading
    hide = (course_root, job.scratch_root, job.source_dir)
    configure_sandbox(
        config,
        scratch_dir=scratch / "sandbox",
        hide=hide,
        secret_file=state / SECRET_FILE,
        runtime_root=Path(job.scratch_root) / "runtimes",
    )
    return config, roles, restored


def _job_logger(job: GradingJob) -> logging.Logger:
    # One logger per job (workers may be threads of one process, as in a Dask LocalCluster),
    # so that nbgrader's log captured for a submission holds only that submission's lines.
    logger = logging.getLogger(f"coursekit.autograde.{os.getpid()}.{threading.get_ident()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(logging.NullHandler())
    return logger


def _autograde(job: GradingJob, config) -> tuple[bool, str]:
    ensure_tools_on_path()
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = job.assignment
    coursedir.student_id = job.student
    app = Autograde(coursedir=coursedir, config=config, log=_job_logger(job))
    app.force = True
    app.create_student = True
    out = capture_log(app)
    log = out.get("log", "") + ("\n" + out["error"] if out.get("error") else "")
    return bool(out["success"]), log


def _collect(
    job: GradingJob,
    scratch: Path,
    config,
    success: bool,
    log: str,
    roles: dict[str, dict[str, CellRole]],
    restored: list[str],
) -> GradingResult:
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    result = GradingResult(job.assignment, job.student, job.fingerprint, GRADED, log=log)
    cells = {
        (nb_name, grade_id): (role.points, role.grade and role.code)
        for nb_name, notebook in roles.items()
        for grade_id, role in notebook.items()
        if role.grade or role.task
    }
    _read_gradebook(scratch / "gradebook.db", job.assignment, job.student, cells, result)
    out_dir = Path(
        coursedir.format_path(coursedir.autograded_directory, job.student, job.assignment)
    )
    submitted = Path(
        coursedir.format_path(coursedir.submitted_directory, job.student, job.assignment)
    )
    # Paths of the scratch course mean nothing to a student: strip them from what is kept.
    roots = (str(submitted), str(out_dir), str(scratch), str(job.scratch_root))
    if out_dir.is_dir():
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".ipynb":
                    text = data.decode("utf-8", "replace")
                    data = statuses.sanitize(text, roots).encode("utf-8")
                result.files[path.relative_to(out_dir).as_posix()] = data

    if not success:
        result.status = UNGRADABLE
        result.reason = failure_reason(log, Path(job.submission_dir))
        result.files = {}
        for notebook in result.notebooks.values():
            notebook["flagged"] = True
            for grade in notebook["grades"].values():
                grade["auto_score"] = 0.0
                grade["needs_manual_grade"] = True
    verdicts = read_verdicts(scratch / "sandbox" / _verdicts_name())
    outcomes = cell_outcomes(result.files)
    problems = []
    for (nb_name, cell_name), (max_points, autograded) in sorted(cells.items()):
        grade = result.notebooks[nb_name]["grades"][cell_name]
        points = float(grade["auto_score"] or 0.0)
        found = result.status == GRADED and grade["auto_score"] is not None
        status, message = None, None
        if autograded and result.status == GRADED:
            verdict = verdicts.get(nb_name, {}).get(cell_name)
            status, message = cell_status(
                outcomes.get((nb_name, cell_name)), verdict, points, max_points, found
            )
            if not found:
                problems.append(f"{nb_name}/{cell_name}")
        elif autograded:
            status, message = statuses.UNGRADABLE, None
        result.tests.append(
            {
                "notebook": nb_name,
                "cell": cell_name,
                "points": points,
                "max_points": max_points,
                "autograded": autograded,
                "passed": autograded and found and points >= max_points,
                "status": status,
                "message": statuses.sanitize(message, roots) if message else None,
            }
        )
    if result.status == GRADED:
        notes = _missing_notebook_notes(result, Path(job.submission_dir)) + restored
        if _timed_out(result.files):
            notes.append("a cell ran past the time limit and was interrupted")
        died = _kernel_died(result.files)
        if died:
            notes.append(f"the kernel died in {died}; the cells after it were not run")
        if problems:
            notes.append(
                "test cells missing from the submission (deleted, or their metadata was "
                f"stripped or changed), scored 0: {', '.join(problems)}"
            )
        result.reason = "; ".join(notes) or None
    result.reason = statuses.sanitize(result.reason, roots)
    return result


def _verdicts_name() -> str:
    """``verdicts.json`` (the sandbox module's name for it, once it defines one)."""
    try:
        from coursekit.instructor import sandbox

        return getattr(sandbox, "VERDICTS_FILE", VERDICTS_NAME)
    except ImportError:
        return VERDICTS_NAME


def read_verdicts(path: Path) -> dict:
    """``{notebook: {grade_id: {"status", "message"}}}`` of the hidden-test judge, or ``{}``."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cell_status(
    outcome: dict | None, verdict: dict | None, points: float, max_points, found: bool
) -> tuple[str, str | None]:
    """``(status, message)`` of an autograded test cell of a graded submission.

    The hidden verdict (``verdicts.json``) decides when there is one; otherwise the cell's
    outputs in the autograded notebook do (:func:`cell_outcomes`).
    """
    if not found:
        return statuses.NOT_RUN, "test cell not found in the submission (deleted, or changed)"
    outcome = outcome or {}
    if isinstance(verdict, dict) and verdict.get("status") in statuses.VERDICTS:
        status = statuses.VERDICTS[verdict["status"]]
        message = verdict.get("message") or None
        own = _PUBLIC_ERROR.match(message or "")
        if status == statuses.FAILED and own and own.group(1) not in ("AssertionError",):
            # a test cell judged by its public asserts, where the student's code raised
            status = _PUBLIC_STATUS.get(own.group(1), statuses.ERROR)
            if own.group(1) == "NameError" and "time limit" in (outcome.get("earlier") or ""):
                status = statuses.TIMEOUT
        used = sorted(set(_UNAVAILABLE.findall(message or "")))
        if status == statuses.ERROR and used:
            # The function called coursekit's own implementation, which the hidden cases
            # refuse: evidence of an integrity problem, not a bug of the student's.
            status = statuses.INTEGRITY
            message = (
                f"integrity: the submission calls coursekit's own implementation "
                f"({', '.join(used)}) instead of writing the function\n{message}"
            )
        if status == statuses.PASSED and max_points is not None and points < max_points:
            # The verdict passed but nbgrader gave less (a stderr rule, a changed cell).
            status, message = statuses.FAILED, outcome.get("summary") or message
        if status == statuses.NOT_RUN and "time limit" in (outcome.get("earlier") or ""):
            status = statuses.TIMEOUT  # the function's cell was stopped by the time limit
        if status in (statuses.NOT_RUN, statuses.TIMEOUT) and outcome.get("earlier"):
            message = f"{message or 'not run'}; {outcome['earlier']}"
        if (
            outcome.get("public")
            and status != statuses.PASSED
            and outcome["public"] not in (message or "")
        ):
            message = f"{message}\n{outcome['public']}" if message else outcome["public"]
        return status, message
    if max_points is not None and points >= max_points:
        return statuses.PASSED, None
    return outcome.get("status", statuses.FAILED), outcome.get("summary")


def _read_gradebook(db: Path, assignment: str, student: str, cells: dict, result) -> None:
    """Fill ``result.notebooks`` from a scratch gradebook; ``cells`` is ``{(nb, cell): ...}``
    of the assignment's graded cells (ungraded submissions get every one of them)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            submission = None
        if submission is None:
            result.notebooks = {
                name: {
                    "late_submission_penalty": None,
                    "flagged": False,
                    "grades": {
                        c: {"auto_score": None, "needs_manual_grade": True}
                        for n, c in cells
                        if n == name
                    },
                    "comments": {},
                }
                for name in {n for n, _ in cells}
            }
            return
        result.timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        for nb in submission.notebooks:
            result.notebooks[nb.name] = {
                "late_submission_penalty": nb.late_submission_penalty,
                "flagged": bool(nb.flagged),
                "grades": {
                    g.name: {
                        "auto_score": g.auto_score,
                        "needs_manual_grade": bool(g.needs_manual_grade),
                    }
                    for g in nb.grades
                },
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }


# -- messages and reasons ---------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_messages(files: dict) -> dict:
    """``{(notebook, cell): message}`` for graded code cells that raised or wrote to stderr."""
    messages = {}
    for rel, data in files.items():
        if not rel.endswith(".ipynb") or "/" in rel:
            continue
        try:
            # nbgrader wrote and validated this file; plain JSON parsing is enough (and fast)
            nb = json.loads(data.decode("utf-8"))
        except ValueError:
            continue
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") != "code" or not meta.get("grade"):
                continue
            message = None
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    message = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
                    if out.get("ename") == "CellTimeoutError":
                        message = "CellTimeoutError: the cell ran past the time limit"
                    break
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    message = message or ("wrote to stderr: " + "".join(out.get("text", ""))[:300])
            if message is not None:
                messages[(rel[: -len(".ipynb")], meta.get("grade_id"))] = _ANSI.sub(
                    "", message
                ).strip()
    return messages


#: How the hidden-case process words a call into a graded reference (coursekit.grading.runner).
_UNAVAILABLE = re.compile(r"(coursekit(?:\.\w+)+) is not available while the hidden tests run")
_PUBLIC_ERROR = re.compile(r"public test failed: (\w+)")
#: What the error of a test cell judged by its public asserts says about the cell.
_PUBLIC_STATUS = {
    "NameError": statuses.NOT_RUN,
    "NotRun": statuses.NOT_RUN,
    "NotebookTimeout": statuses.TIMEOUT,
    "CellTimeoutError": statuses.TIMEOUT,
    "KeyboardInterrupt": statuses.TIMEOUT,
}
_TIMEOUTS = ("CellTimeoutError", "NotebookTimeout", "KeyboardInterrupt")
_FRAME = re.compile(r"(?:Cell In ?\[(\d+)\]|Input In ?\[(\d+)\]), line (\d+)")
_ARROW = re.compile(r"^-+>\s*\d+\s?(.*)$")


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _cell_name(cell, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {grade_id}" if grade_id else f"cell {index + 1}"


def student_line(nb: dict, error: dict) -> str | None:
    """Where in the student's own code an error was raised: ``cell add, line 4: raise ...``.

    Read from the IPython traceback; frames in test cells (which may show hidden tests)
    and in library files are skipped.
    """
    by_count = {
        c.get("execution_count"): (i, c)
        for i, c in enumerate(nb.get("cells", []))
        if c.get("cell_type") == "code" and c.get("execution_count") is not None
    }
    found = None
    for chunk in error.get("traceback", []):
        lines = _ANSI.sub("", chunk).splitlines()
        for at, line in enumerate(lines):
            match = _FRAME.search(line)
            if not match:
                continue
            count = int(match.group(1) or match.group(2))
            where = by_count.get(count)
            if where is None or _is_test_cell(where[1]):
                continue
            code = next(
                (m.group(1).strip() for ln in lines[at + 1 :] if (m := _ARROW.match(ln))), ""
            )
            found = f"{_cell_name(where[1], where[0])}, line {match.group(3)}" + (
                f": {code}" if code else ""
            )
    return found


def cell_outcomes(files: dict) -> dict:
    """``{(notebook, grade_id): {"status", "summary", "public", "earlier"}}`` of every
    autograded test cell, read from its outputs in the autograded notebook.

    This is how a cell's status is found when the hidden-test judge wrote no verdict:
    a time limit, an integrity problem named by the grader, a function that is not
    defined (``not_run``, with the earlier cell that failed), the student's own error
    (``error``, quoted with the line of their code), or wrong values (``failed``).
    """
    out = {}
    for rel, data in files.items():
        if not rel.endswith(".ipynb") or "/" in rel:
            continue
        try:
            nb = json.loads(data.decode("utf-8"))
        except ValueError:
            continue
        earlier = None
        for index, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            outputs = cell.get("outputs", [])
            errors = [o for o in outputs if o.get("output_type") == "error"]
            if not _is_test_cell(cell):
                if errors and earlier is None:
                    e = errors[0]
                    name = _cell_name(cell, index)
                    if e.get("ename") in _TIMEOUTS:
                        earlier = f"{name} ran past the time limit and was interrupted"
                    elif e.get("ename") == "DeadKernelError":
                        earlier = f"the kernel died in {name}: {_error_text(e)}"
                    else:
                        earlier = f"an earlier cell failed: {name}: {_error_text(e)}"
                continue
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            out[(rel[: -len(".ipynb")], grade_id)] = _outcome(nb, outputs, errors, earlier)
    return out


def _error_text(error: dict) -> str:
    return _ANSI.sub("", f"{error.get('ename', 'Error')}: {error.get('evalue', '')}").strip()


def _outcome(nb: dict, outputs: list, errors: list, earlier: str | None) -> dict:
    grading = [
        _ANSI.sub("", str(e.get("evalue", ""))) for e in errors if e.get("ename") == "GradingError"
    ]
    kernel = [e for e in errors if e.get("ename") != "GradingError"]
    streams = [
        _ANSI.sub("", "".join(o.get("text", "")))
        for o in outputs
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]
    public = next((t.strip() for t in streams if t.startswith("public test failed")), None)
    grading_text = "\n".join(grading).strip() or None
    no_result = grading_text is not None and "left no result" in grading_text
    out = {"public": public, "earlier": earlier}
    first = kernel[0] if kernel else None
    if first is not None and first.get("ename") in _TIMEOUTS:
        text = str(first.get("evalue", "")) if first.get("ename") == "NotebookTimeout" else ""
        return {
            **out,
            "status": statuses.TIMEOUT,
            "summary": text or "the cell ran past the time limit and was interrupted",
        }
    if grading_text and "integrity" in grading_text:
        return {**out, "status": statuses.INTEGRITY, "summary": grading_text}
    if first is not None:
        text = _error_text(first)
        if first.get("ename") in ("NameError", "NotRun"):
            summary = f"not run: {text}" + (f"; {earlier}" if earlier else "")
            late = earlier is not None and "time limit" in earlier
            status = statuses.TIMEOUT if late else statuses.NOT_RUN
            return {**out, "status": status, "summary": summary}
        if grading_text and not no_result:
            return {**out, "status": statuses.FAILED, "summary": f"{grading_text}\n{text}"}
        line = student_line(nb, first)
        if first.get("ename") == "AssertionError" and line is None:
            summary = text + ("\n(the hidden tests did not run)" if no_result else "")
            return {**out, "status": statuses.FAILED, "summary": summary}
        summary = text + (f"\n  raised in your {line}" if line else "")
        return {**out, "status": statuses.ERROR, "summary": summary}
    if public and not grading_text:
        return {**out, "status": statuses.FAILED, "summary": public}
    if grading_text:
        summary = grading_text + (f"\n{public}" if public else "")
        return {**out, "status": statuses.FAILED, "summary": summary}
    if streams:
        return {
            **out,
            "status": statuses.FAILED,
            "summary": "wrote to stderr: " + "".join(streams)[:300],
        }
    return {**out, "status": statuses.FAILED, "summary": None}


def _kernel_died(files: dict) -> str | None:
    """The cell in which a notebook's kernel died (``cell add``), or ``None``."""
    for rel, data in sorted(files.items()):
        if not rel.endswith(".ipynb") or b"DeadKernelError" not in data:
            continue
        try:
            nb = json.loads(data.decode("utf-8"))
        except ValueError:
            continue
        for index, cell in enumerate(nb.get("cells", [])):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") == "DeadKernelError":
                    return f"{_cell_name(cell, index)} of {rel[: -len('.ipynb')]}"
    return None


def _timed_out(files: dict) -> bool:
    return any(
        rel.endswith(".ipynb") and b"CellTimeoutError" in data for rel, data in files.items()
    )


def _missing_notebook_notes(result: GradingResult, submission_dir: Path) -> list[str]:
    present = {p.stem for p in submission_dir.glob("*.ipynb")}
    missing = sorted(set(result.notebooks) - present)
    if not missing:
        return []
    extra = sorted(present - set(result.notebooks))
    found = f" (found instead: {', '.join(e + '.ipynb' for e in extra)})" if extra else ""
    return [f"notebook {', '.join(m + '.ipynb' for m in missing)} missing, scored 0{found}"]


_REASONS = (
    (("exists multiple times",), "a graded cell appears more than once (duplicated cell)"),
    (("DeadKernelError", "Kernel died"), "the kernel died while running the notebook"),
    (
        ("UnresponsiveKernelError", "kernel became unresponsive"),
        "the kernel hung and could not be interrupted",
    ),
    (("SchemaTooOldError", "old version"), "the notebook carries old or altered nbgrader metadata"),
    (
        ("SchemaTooNewError", "newer version"),
        "the notebook carries nbgrader metadata of a newer version",
    ),
    (
        ("NotJSONError", "JSONDecodeError", "does not appear to be JSON"),
        "the notebook file is not valid JSON",
    ),
    (
        ("the nbgrader metadata may be corrupted", "Inconsistent checksums"),
        "the notebook's nbgrader metadata is corrupted beyond what coursekit can restore",
    ),
    (("ValidationError", "NotebookValidationError"), "the notebook file is not a valid notebook"),
    (("No notebooks were matched", "No notebooks found"), "no notebook found in the submission"),
)


def failure_reason(log: str, submission_dir: Path) -> str:
    """A one-line reason for a failed autograde, from nbgrader's log and the submitted files."""
    text = _ANSI.sub("", log)
    empty = [
        p.name
        for p in submission_dir.glob("*.ipynb")
        if not p.is_symlink() and p.is_file() and p.stat().st_size == 0
    ]
    if empty:
        return f"empty notebook file: {', '.join(empty)}"
    if not list(submission_dir.glob("*.ipynb")):
        others = sorted(p.name for p in submission_dir.iterdir())[:5]
        return "no notebook found in the submission" + (
            f" (files: {', '.join(others)})" if others else ""
        )
    if "Skipping unknown notebook" in text and "No notebooks found" in text:
        names = sorted(p.name for p in submission_dir.glob("*.ipynb"))[:5]
        return f"no notebook with the expected name (found: {', '.join(names)})"
    for needles, reason in _REASONS:
        if any(n in text for n in needles):
            return reason
    return f"nbgrader could not grade it: {_last_error(text)}"


def _last_error(log: str) -> str:
    """The last exception line of a log, skipping nbgrader's closing summary exception."""
    lines = [
        ln.strip()
        for ln in _ANSI.sub("", log).splitlines()
        if re.match(r"\s*\w+(\.\w+)*(Error|Exception)\b", ln) and "NbGraderException" not in ln
    ]
    return lines[-1][:300] if lines else "unknown error (see the log)"


# -- serialization (the grading journal stores results as JSON) ------------------------------
def result_to_json(result: GradingResult) -> dict:
    """A JSON-ready dict of ``result`` (file contents base64-encoded)."""
    data = {k: v for k, v in vars(result).items() if k != "files"}
    data["files"] = {k: base64.b64encode(v).decode("ascii") for k, v in result.files.items()}
    return data


def result_from_json(data: dict) -> GradingResult:
    """Inverse of :func:`result_to_json` (fields a newer coursekit added are ignored)."""

    known = {f.name for f in fields(GradingResult)}
    data = {k: v for k, v in data.items() if k in known}
    data["files"] = {k: base64.b64decode(v) for k, v in data.get("files", {}).items()}
    return GradingResult(**data)
