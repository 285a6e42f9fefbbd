"""Grading throughput: ``coursekit grade`` (parallel) vs plain sequential ``nbgrader autograde``.

:func:`run` builds a temporary course from the repository with the largest assignment (the
one with the most code cells in its source notebooks), synthesizes ``n`` submissions
(reference answers, every catalogued mistake, valid alternatives, blank notebooks), and
grades the same submissions ``repeats`` times with each tool, each run in a fresh copy of
the released course and as a subprocess, so both pay their start-up. It checks that both
gradebooks hold identical grades and returns the median wall times, their ratio and the
per-submission overhead of coursekit's grading step: with one worker, the median over
submissions of the grading step's wall time minus the bare execution of the same notebooks
(:func:`bare_seconds`: a fresh kernel, every cell, nothing else).

Run it directly: ``python benchmarks/grading.py --n 40 --repeats 3``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit.instructor.course import CONFIG_NAME, Course
from coursekit.instructor.demo import load_list, repository_root, synthesize_class, write_class
from coursekit.instructor.executors import usable_cores
from coursekit.instructor.release import release

BIN = os.path.dirname(sys.executable)


def largest_assignment(course: Course) -> str:
    import nbformat

    def size(name: str) -> int:
        return sum(
            sum(c.cell_type == "code" for c in nbformat.read(str(p), as_version=4).cells)
            for p in (course.directory("source") / name).glob("*.ipynb")
        )

    return max(course.assignments(), key=size)


def build_course(directory: Path, n: int, assignment: str | None = None) -> tuple[Path, str]:
    """A released course with ``n`` well-formed submissions of ``assignment``."""
    repo = Course.locate(repository_root())
    assignment = assignment or largest_assignment(repo)
    directory.mkdir(parents=True)
    shutil.copy2(repo.config_file, directory / CONFIG_NAME)
    shutil.copytree(
        repo.directory("source") / assignment,
        directory / repo.coursedir.source_directory / assignment,
    )
    course = Course.locate(directory)
    release(course, [assignment])
    tests = repo.root / "tests"
    klass = synthesize_class(
        course.directory("source") / assignment,
        course.directory("release") / assignment,
        load_list(tests / "mistakes" / f"{assignment}.py", "MISTAKES"),
        load_list(tests / "alternatives" / f"{assignment}.py", "ALTERNATIVES"),
        size=n,
    )
    # plain nbgrader stops a whole batch at some broken files; compare on gradable ones
    klass = {s: f for s, f in klass.items() if not s.startswith("broken-")}
    names = sorted(klass, key=lambda s: (not s.startswith("correct"), s))
    extra = 0
    while len(names) < n:
        extra += 1
        klass[f"correct-x{extra}"] = klass["correct-1"]
        names.append(f"correct-x{extra}")
    write_class(course, assignment, {s: klass[s] for s in names[:n]})
    return directory, assignment


def grades(root: Path) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                for nb in sub.notebooks:
                    for g in nb.grades:
                        out[(sub.student.id, nb.name, g.name)] = (
                            g.auto_score,
                            g.needs_manual_grade,
                        )
    return out


def engine_overhead(root: Path, assignment: str) -> list[float]:
    """Per submission: prepare + collect times recorded in the journal."""
    from coursekit.instructor.batch import journal_for

    course = Course.locate(root)
    return [
        r.timings.get("prepare", 0.0) + r.timings.get("collect", 0.0)
        for r in journal_for(course, assignment).results()
    ]


def bare_seconds(root: Path, assignment: str, shutdown: str = "graceful") -> dict[str, float]:
    """``{student: seconds}``: each submission's notebooks executed as they are, one fresh
    kernel per notebook (start, every cell, shutdown), with nbclient and no grading around
    it; the floor that grading's overhead is measured from.

    ``shutdown`` is nbclient's ``shutdown_kernel``: ``"graceful"`` (its default, what running
    a notebook with nbclient or nbconvert costs: the kernel is asked to stop and waited for,
    about 0.4 s) or ``"immediate"`` (the kernel is killed, as coursekit's grading does).
    """
    import nbformat
    from nbclient import NotebookClient

    out = {}
    for student_dir in sorted((root / "submitted").iterdir()):
        notebooks = sorted((student_dir / assignment).glob("*.ipynb"))
        total, readable = 0.0, bool(notebooks)
        for path in notebooks:
            try:
                nb = nbformat.read(str(path), as_version=4)
            except Exception:  # noqa: BLE001 - an unreadable submission has no bare time
                readable = False
                break
            with tempfile.TemporaryDirectory() as cwd:
                client = NotebookClient(
                    nb,
                    timeout=600,
                    allow_errors=True,
                    resources={"metadata": {"path": cwd}},
                    shutdown_kernel=shutdown,
                )
                start = time.perf_counter()
                client.execute()
                total += time.perf_counter() - start
        if readable:
            out[student_dir.name] = total
    return out


def _timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=24 * 3600)
    return time.perf_counter() - start


def run(
    n: int = 40,
    repeats: int = 3,
    workers: int | None = None,
    assignment: str | None = None,
    overhead: bool = True,
) -> dict:
    """Benchmark as described in the module docstring; returns a dict of the measurements.

    Raises
    ------
    AssertionError
        If coursekit's grades differ from plain nbgrader's on any cell.
    """
    workers = workers or usable_cores()
    with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
        tmp = Path(tmp)
        pristine, assignment = build_course(tmp / "pristine", n, assignment)
        plain_times, ck_times, identical, steps, differences = [], [], True, [], {}

        def coursekit(dest: Path, w: int) -> float:
            cmd = [sys.executable, "-m", "coursekit.cli.main", "--course", str(dest)]
            return _timed(cmd + ["grade", assignment, "--workers", str(w), "--quiet"], dest)

        for i in range(repeats):
            plain = tmp / f"plain-{i}"
            shutil.copytree(pristine, plain)
            plain_times.append(
                _timed([os.path.join(BIN, "nbgrader"), "autograde", assignment], plain)
            )
            ours = tmp / f"coursekit-{i}"
            shutil.copytree(pristine, ours)
            ck_times.append(coursekit(ours, workers))
            a, b = grades(plain), grades(ours)
            steps += engine_overhead(ours, assignment)
            identical &= a == b and len(a) > 0
            differences.update(
                {
                    "/".join(key): {"nbgrader": a.get(key), "coursekit": b.get(key)}
                    for key in sorted(set(a) | set(b))
                    if a.get(key) != b.get(key)
                }
            )
            shutil.rmtree(plain)
            shutil.rmtree(ours)
        result = {
            "assignment": assignment,
            "n": n,
            "workers": workers,
            "repeats": repeats,
            "plain_seconds": plain_times,
            "coursekit_seconds": ck_times,
            "plain_median_s": statistics.median(plain_times),
            "coursekit_median_s": statistics.median(ck_times),
            "ratio": statistics.median(plain_times) / statistics.median(ck_times),
            "scores_identical": identical,
            "differences": differences,
            # coursekit's own work per submission, measured directly: scratch course set-up
            # and reading results back (in the worker) + journal, files and gradebook (parent)
            "engine_overhead_per_submission_s": statistics.median(steps) if steps else None,
        }
        if overhead:
            single = tmp / "coursekit-1worker"
            shutil.copytree(pristine, single)
            one = coursekit(single, 1)
            result["coursekit_1worker_s"] = one
            bare = bare_seconds(pristine, assignment)
            from coursekit.instructor.batch import journal_for

            worker = {
                r.student: r.seconds
                for r in journal_for(Course.locate(single), assignment).results()
            }
            both = sorted(set(bare) & set(worker))
            result["bare_median_s"] = statistics.median(bare[s] for s in both)
            result["grading_step_median_s"] = statistics.median(worker[s] for s in both)
            # The grading step (one worker: kernel, sandbox, hidden cases, nbgrader, files)
            # minus the bare execution of the same notebooks, per submission.
            extra_seconds = [worker[s] - bare[s] for s in both]
            result["overhead_per_notebook_all_s"] = extra_seconds
            result["overhead_per_notebook_s"] = statistics.median(extra_seconds)
            # The same against a bare run that kills its kernel as grading does (no wait for
            # a graceful shutdown): the stricter floor.
            killed = bare_seconds(pristine, assignment, shutdown="immediate")
            both_killed = sorted(set(killed) & set(worker))
            result["bare_immediate_median_s"] = statistics.median(killed[s] for s in both_killed)
            strict = [worker[s] - killed[s] for s in both_killed]
            result["overhead_vs_immediate_shutdown_all_s"] = strict
            result["overhead_vs_immediate_shutdown_s"] = statistics.median(strict)
            result["overhead_vs_plain_per_submission_s"] = (one - result["plain_median_s"]) / n
    assert result["scores_identical"], (
        f"coursekit and plain nbgrader grades differ: {json.dumps(result['differences'])[:3000]}"
    )
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--assignment", default=None)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.repeats, args.workers, args.assignment), indent=1))
