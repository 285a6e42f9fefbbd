"""Whole-class grading: every assignment of the course for a synthesized class, end to end.

:func:`run` builds a course with every assignment of the repository released and, for each
assignment, ``students`` submissions synthesized as in ``coursekit demo`` (reference
answers, every catalogued mistake, valid alternatives, blank and broken notebooks) under
the same student ids. It then grades the whole class with ``coursekit grade`` as an
instructor would, one assignment after the other, each a fresh process that pays its own
start-up and preflight, on one of two executors:

* ``local``: ``--workers W`` (a process pool on this machine);
* ``dask``: a ``distributed.LocalCluster`` of ``W`` single-threaded worker processes,
  reached through ``--scheduler ADDRESS``, the path a cluster of machines takes.

It reports each assignment's wall time, the throughput in notebooks per core-minute
(``notebooks / (minutes * cores used)``) and the projection of that throughput to a
cluster of ``N`` machines of ``C`` cores. The projection assumes what grading is: jobs
that share nothing but the scheduler, so that time scales with cores until the parent's
bookkeeping (journal, files and one gradebook transaction per result, a few hundredths of
a second each) becomes the limit, at some thousands of notebooks per minute.

Run it directly: ``python benchmarks/whole_class.py --students 300 --executor local``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit.instructor.course import CONFIG_NAME, Course
from coursekit.instructor.demo import load_list, repository_root, synthesize_class, write_class
from coursekit.instructor.release import release

BIN = os.path.dirname(sys.executable)
#: (machines, cores per machine) for the projection table.
CLUSTERS = ((1, 2), (1, 8), (4, 8), (16, 8), (64, 8))


def build_class(directory: Path, students: int, assignments: list[str] | None = None) -> Course:
    """A course with ``assignments`` (default: all) released and ``students`` submissions
    of each, written under ids ``s0001``... (the same student across assignments)."""
    repo = Course.locate(repository_root())
    names = assignments or repo.assignments()
    directory.mkdir(parents=True)
    shutil.copy2(repo.config_file, directory / CONFIG_NAME)
    for name in names:
        shutil.copytree(
            repo.directory("source") / name,
            directory / repo.coursedir.source_directory / name,
        )
    course = Course.locate(directory)
    release(course, names)
    tests = repo.root / "tests"
    ids = [f"s{i:04d}" for i in range(1, students + 1)]
    for name in names:
        klass = synthesize_class(
            course.directory("source") / name,
            course.directory("release") / name,
            load_list(tests / "mistakes" / f"{name}.py", "MISTAKES"),
            load_list(tests / "alternatives" / f"{name}.py", "ALTERNATIVES"),
            size=students,
        )
        kinds = sorted(klass)[:students]
        random.Random(name).shuffle(kinds)
        write_class(course, name, {s: klass[k] for s, k in zip(ids, kinds)})
    return course


def _grade(root: Path, assignment: str, workers: int, scheduler: str | None) -> float:
    cmd = [sys.executable, "-m", "coursekit.cli.main", "--course", str(root), "grade", assignment]
    cmd += ["--scheduler", scheduler] if scheduler else ["--workers", str(workers)]
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    start = time.perf_counter()
    done = subprocess.run(cmd + ["--quiet"], cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"coursekit grade {assignment} failed:\n{done.stderr[-2000:]}")
    return seconds


def _step_seconds(course: Course, assignment: str) -> list[float]:
    from coursekit.instructor.batch import journal_for

    return [r.seconds for r in journal_for(course, assignment).results()]


def run(
    students: int = 300,
    executor: str = "local",
    workers: int = 2,
    assignments: list[str] | None = None,
) -> dict:
    """Grade the class as described in the module docstring; a dict of the measurements."""
    cluster = None
    with tempfile.TemporaryDirectory(prefix="coursekit-class-") as tmp:
        t0 = time.perf_counter()
        course = build_class(Path(tmp) / "course", students, assignments)
        built = time.perf_counter() - t0
        scheduler = None
        if executor == "dask":
            from distributed import LocalCluster

            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            scheduler = cluster.scheduler_address
        try:
            per = {}
            for name in assignments or course.assignments():
                seconds = _grade(course.root, name, workers, scheduler)
                steps = _step_seconds(course, name)
                per[name] = {
                    "notebooks": len(steps),
                    "wall_s": seconds,
                    "per_notebook_s": seconds / max(1, len(steps)),
                    "worker_step_median_s": statistics.median(steps) if steps else None,
                }
        finally:
            if cluster is not None:
                cluster.close()
    notebooks = sum(p["notebooks"] for p in per.values())
    wall = sum(p["wall_s"] for p in per.values())
    throughput = notebooks / (wall / 60 * workers)
    return {
        "students": students,
        "executor": executor,
        "workers": workers,
        "cores_used": workers,
        "build_s": built,
        "assignments": per,
        "notebooks": notebooks,
        "wall_s": wall,
        "notebooks_per_core_minute": throughput,
        "projection": [
            {
                "machines": m,
                "cores_per_machine": c,
                "minutes": notebooks / (throughput * m * c),
            }
            for m, c in CLUSTERS
        ],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--executor", choices=("local", "dask"), default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--assignments", nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    result = run(args.students, args.executor, args.workers, args.assignments)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
