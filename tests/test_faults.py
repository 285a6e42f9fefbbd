"""Grading under faults: nothing lost, nothing counted twice, no zero the machine caused.

Each test grades a small class of the fixture course (tests/fixtures/course) with the real
nbgrader and breaks something on the way: the grader killed with SIGKILL in the middle of
a ``--force`` run, a corrupted grading journal, a full scratch disk (a tmpfs mounted over
the run directory with room for the gradebook snapshot and 96 KiB more; needs root,
skipped otherwise), a kernel that never starts (a kernelspec whose command never answers).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli_grading import cli, fixture_class, gradebook_state, released_course, scores

from coursekit.instructor.batch import journal_for
from coursekit.instructor.course import Course
from coursekit.instructor.preflight import cache_path

pytestmark = pytest.mark.slow

KEEP = {"correct-1", "correct-2", "blank-1", "mistake-subtracts", "broken-malformed-json"}


def small_course(directory: Path) -> Course:
    course = released_course(directory)
    klass = fixture_class(course, size=0, extra_broken=False)
    for student in set(klass) - KEEP:
        shutil.rmtree(course.directory("submitted") / student)
    return course


def grade_process(root: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coursekit.cli.main", "--course", str(root), "grade", "f1"]
        + ["--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )


def test_kill_9_in_a_forced_run_then_a_plain_rerun_finishes_it(tmp_path, capsys):
    course = small_course(tmp_path / "course")
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    reference = gradebook_state(course.root)
    journal = journal_for(course, "f1")
    before = {r.student: r.provenance["graded_at"] for r in journal.results()}
    proc = grade_process(course.root, "--force", "--workers", "1")
    try:
        deadline = time.monotonic() + 300
        while True:
            fresh = [r for r in journal.results() if r.provenance["graded_at"] > before[r.student]]
            if fresh and journal.is_imported(fresh[0]):
                break
            assert proc.poll() is None, "the forced run ended before its first result"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    regraded = {
        r.student for r in journal.results() if r.provenance["graded_at"] > before[r.student]
    }
    assert 1 <= len(regraded) < len(KEEP)
    assert journal.force_pending() is not None
    capsys.readouterr()
    # A plain rerun grades exactly the students the forced run did not reach.
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    out = capsys.readouterr().out
    graded, reused = map(int, re.search(r"graded (\d+), already graded (\d+)", out).groups())
    assert (graded, reused) == (len(KEEP) - len(regraded), len(regraded))
    assert out.count("not reached by an interrupted --force run") == graded
    assert journal.force_pending() is None
    assert gradebook_state(course.root) == reference
    # and the next plain run has nothing left to do
    assert cli("--course", course.root, "grade", "f1", "--quiet") == 0
    assert f"graded 0, already graded {len(KEEP)}" in capsys.readouterr().out


def test_an_interrupted_forced_run_says_how_to_finish(tmp_path):
    course = small_course(tmp_path / "course")
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    journal = journal_for(course, "f1")
    before = {r.student: r.provenance["graded_at"] for r in journal.results()}
    proc = grade_process(course.root, "--force", "--workers", "1")
    try:
        deadline = time.monotonic() + 300
        while not any(r.provenance["graded_at"] > before[r.student] for r in journal.results()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "(without --force) to grade exactly those" in err
    assert "rerun the same command" not in err


def test_a_corrupted_journal_is_graded_again_and_counted_once(tmp_path, capsys):
    course = small_course(tmp_path / "course")
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    reference = gradebook_state(course.root)
    directory = course.state_directory / "journal" / "f1"
    record = directory / "correct-1.json"
    record.write_bytes(record.read_bytes()[: record.stat().st_size // 2])  # torn write
    (directory / "blank-1.json").write_text('{"student": "blank-1", "status": 7}')
    (directory / "mistake-subtracts.imported").write_text("garbage")
    (directory / ".force.json").write_text("{not json")
    capsys.readouterr()
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    out = capsys.readouterr().out
    # the two unreadable results are graded again; the unmarked one is imported again
    assert f"graded 2, already graded {len(KEEP) - 2}" in out
    assert gradebook_state(course.root) == reference
    assert {r.student for r in journal_for(course, "f1").results()} == KEEP


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_scratch_disk_records_no_zero(tmp_path, capsys):
    course = small_course(tmp_path / "course")
    # A first run passes the preflight (cached) and grades one student.
    assert cli("--course", course.root, "grade", "f1", "--student", "correct-1", "--quiet") == 0
    before = gradebook_state(course.root)
    runs = course.state_directory / "runs"
    # The scratch space: room for the gradebook snapshot, not for grading a notebook.
    size = (course.gradebook_path.stat().st_size // 1024 + 96) * 1024
    with small_tmpfs(runs, str(size)):
        capsys.readouterr()
        assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 1
        out = capsys.readouterr().out
        assert "preflight (reference solution and blank release): cached" in out
        errors = re.findall(r"not graded: (\S+): (.*)", out)
        assert {s for s, _ in errors} == KEEP - {"correct-1"}
        assert all("disk space" in why or "No space left" in why for _, why in errors)
        assert gradebook_state(course.root) == before
        # Without the cached preflight, the run stops before grading anyone.
        cache_path(course, "f1").unlink()
        assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 2
        err = capsys.readouterr().err
        assert "preflight failed for f1" in err
        assert "the disk holding the grading scratch directory is full" in err
        assert gradebook_state(course.root) == before
    assert {r.student for r in journal_for(course, "f1").results()} == {"correct-1"}
    # With room again, a rerun grades everyone left.
    assert cli("--course", course.root, "grade", "f1", "--workers", "2", "--quiet") == 0
    assert f"graded {len(KEEP) - 1}, already graded 1" in capsys.readouterr().out
    assert scores(course.root)["correct-2"] == 5.0


def test_a_kernel_that_never_starts_stops_the_run_before_the_gradebook(tmp_path):
    course = small_course(tmp_path / "course")
    with open(course.config_file, "a") as fh:
        fh.write("c.Execute.startup_timeout = 5\n")
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-c", "import time; time.sleep(600)", "{connection_file}"],
                "display_name": "Python 3 (never starts)",
                "language": "python",
            }
        )
    )
    before = gradebook_state(course.root)
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "jupyter")}
    proc = grade_process(course.root, "--workers", "2", env=env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, (out, err)
    assert "preflight failed for f1" in err
    assert "the kernel did not start" in err
    assert gradebook_state(course.root) == before
    assert journal_for(course, "f1").results() == []
    assert not (course.root / "autograded").exists()
