"""The student-kernel sandbox: files, network, memory, processes and time are contained."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from traitlets.config import Config

from coursekit.instructor.sandbox import (
    HOME,
    KERNEL_THREADS,
    NO_BWRAP_ENV,
    SUBMISSION,
    Limits,
    Mount,
    SandboxedExecute,
    SandboxedKernelManager,
    bwrap_usable,
    kernel_threads,
    sandbox_env,
    sandboxed_command,
    seed_matplotlib_cache,
)

pytestmark = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is unusable here")


# Forks until the process limit stops it; prints how many children it made.
FORK_FLOOD = (
    "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
    "            time.sleep(3); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)"
)


def code_notebook(sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def run_cells(tmp_path, sources, *, timeout=60, hide=(), **limits):
    """Run code cells in a sandboxed kernel; return the executed notebook."""
    submission = tmp_path / "course" / "submitted" / "alice" / "a1"
    submission.mkdir(parents=True, exist_ok=True)
    (submission / "mine.txt").write_text("alice's data")
    config = Config()
    config.SandboxedKernelManager.scratch_dir = str(tmp_path / "scratch")
    config.SandboxedKernelManager.hide = [str(tmp_path / "course"), *map(str, hide)]
    for name, value in limits.items():
        setattr(config.SandboxedKernelManager, name, value)
    nb = code_notebook(sources)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_manager_class=SandboxedKernelManager,
        config=config,
        allow_errors=True,
        resources={"metadata": {"path": str(submission)}},
    )
    client.execute()
    return nb


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def course(tmp_path):
    solutions = tmp_path / "course" / "solutions" / "a1"
    solutions.mkdir(parents=True)
    (solutions / "answers.txt").write_text("the reference answers")
    other = tmp_path / "course" / "submitted" / "bob" / "a1"
    other.mkdir(parents=True)
    (other / "bob.txt").write_text("bob's work")
    return tmp_path / "course"


def test_files_network_memory_and_processes_are_contained(tmp_path, course):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe = "def probe(f):\n    try:\n        return repr(f())\n    except Exception as e:\n        return type(e).__name__\n"
    cells = [
        probe,
        f"print(probe(lambda: open({str(course / 'solutions/a1/answers.txt')!r}).read()))",
        f"print(probe(lambda: open({str(course / 'submitted/bob/a1/bob.txt')!r}).read()))",
        "print(probe(lambda: open('mine.txt').read()))",
        f"print(probe(lambda: open({str(tmp_path / 'escape.txt')!r}, 'w').write('x')))",
        "print(probe(lambda: open('/etc/escape.txt', 'w').write('x')))",
        "import os\nprint(probe(lambda: open(os.environ['HOME'] + '/ok.txt', 'w').write('x')))",
        f"import socket\nprint(probe(lambda: socket.create_connection(('127.0.0.1', {port}), 2)))",
        "print(probe(lambda: bytearray(2 * 1024**3)))",
        FORK_FLOOD,
        "print(probe(lambda: open(os.environ['HOME'] + '/big.bin', 'wb').write(b'x' * 4_000_000)))",
        "import os\nprint(os.getuid(), sorted(os.listdir('/work')) if os.path.isdir('/work') else '')",
    ]
    nb = run_cells(
        tmp_path, cells, memory=1024**3 + 512 * 1024**2, processes=16, output_bytes=1_000_000
    )
    server.close()
    out = [stdout(c).strip() for c in nb.cells]
    assert out[1] in ("FileNotFoundError", "PermissionError")  # solutions are invisible
    assert out[2] in ("FileNotFoundError", "PermissionError")  # so is another student
    assert out[3] == '"alice\'s data"'  # the student's own files are readable
    assert out[4] in ("FileNotFoundError", "PermissionError", "OSError")
    assert not (tmp_path / "escape.txt").exists()
    assert out[5] in ("PermissionError", "OSError")
    assert out[6] == "1"  # the scratch directory is writable
    assert out[7] in ("ConnectionRefusedError", "OSError", "TimeoutError")
    assert out[8] == "MemoryError"
    assert 0 < int(out[9]) < 16  # the fork flood stops at the process limit
    assert out[10] in ("OSError", "PermissionError")  # RLIMIT_FSIZE: "File too large"
    uid, _, listing = out[11].partition(" ")
    assert int(uid) >= 200000  # an unprivileged user of its own
    assert "main" not in listing or "solutions" not in listing


def test_an_infinite_loop_times_out(tmp_path, course):
    with pytest.raises(CellTimeoutError):
        run_cells(tmp_path, ["while True:\n    pass"], timeout=3)


def test_command_line_hides_instructor_files_and_keeps_them_off_proc(tmp_path):
    argv = sandboxed_command(
        ["python", "-c", "1"],
        mounts=[
            Mount(str(tmp_path / "sub"), SUBMISSION),
            Mount(None, HOME, writable=True, size=10**7),
        ],
        cwd=SUBMISSION,
        limits=Limits(memory=10**9, processes=8, cpu_seconds=5, output_bytes=10**6),
        hide=(tmp_path,),
        args_dir=tmp_path,
    )
    # bubblewrap's options (every host path) come from a file the sandbox cannot see
    assert argv[:3] == ["/bin/sh", "-c", argv[2]] and str(tmp_path) not in " ".join(argv[6:])
    assert argv[5].endswith("sandbox.bpf")  # the seccomp program, read on descriptor 4
    options = Path(argv[4]).read_bytes().split(b"\0")
    text = b" ".join(options).decode()
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in options[:-1] or flag.encode() in options
    assert f"--ro-bind {tmp_path / 'sub'} {SUBMISSION}" in text
    assert f"--size 10000000 --tmpfs {HOME}" in text and "--tmpfs /tmp " in text  # tmp_path
    assert "--as=1000000000" in argv and "--nproc=8" in argv and "--fsize=1000000" in argv
    assert argv[-3:] == ["python", "-c", "1"]
    with pytest.raises(TypeError, match="limits"):
        sandboxed_command(["true"], mounts=[], cwd="/", limits={"memory": 1})


def test_without_bubblewrap_only_limits_apply_with_a_loud_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(NO_BWRAP_ENV, "1")
    argv = sandboxed_command(["python"], mounts=[], cwd="/", fallback_dirs=(str(tmp_path),))
    assert argv[0] == "prlimit" and argv[-1] == "python" and "--unshare-net" not in argv
    assert "WITHOUT a sandbox" in caplog.text and NO_BWRAP_ENV in caplog.text
    if os.geteuid() != 0:
        return
    # root ignores RLIMIT_NPROC, so the kernel drops to its own user where it can reach its
    # directories, and says so where it cannot (pytest's temporary root is private)
    assert "setpriv" not in argv and "process limit does not apply" in caplog.text
    open_dir = Path(tempfile.mkdtemp(prefix="coursekit-fallback-"))
    try:
        open_dir.chmod(0o755)
        argv = sandboxed_command(["python"], mounts=[], cwd="/", fallback_dirs=(str(open_dir),))
    finally:
        open_dir.rmdir()
    assert argv[argv.index("setpriv") + 1] == "--reuid" and argv[-1] == "python"


def test_environment_proc_disk_and_memory_of_the_whole_kernel(tmp_path, course, monkeypatch):
    monkeypatch.setenv("COURSEKIT_TEST_SECRET", "hunter2")
    hog = (
        "import os, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n"
        "    if pid == 0:\n        try:\n            block = bytearray(700 * 1024**2)\n"
        "            block[::4096] = b'x' * len(block[::4096])\n        finally:\n"
        "            time.sleep(30)\n            os._exit(0)\n    kids.append(pid)\n"
        "time.sleep(20)\nprint('survived')"
    )
    cells = [
        "import os\nprint(sorted(os.environ.items()))",
        "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))",
        "import os\nprint(os.getcwd(), os.environ['HOME'])",
        "try:\n    open(os.environ['HOME'] + '/fill', 'wb').write(b'x' * 50_000_000)\n"
        "    print('wrote')\nexcept OSError as exc:\n    print('stopped', exc.errno)",
        hog,
        "print('after')",
    ]
    nb = run_graded(
        tmp_path,
        cells,
        kernel_traits={"memory": 2 * 1024**3, "disk": 20 * 1024**2},
        timeout=60,
    )
    text = "\n".join(stdout(c) for c in nb.cells)
    assert "hunter2" not in text and "COURSEKIT_TEST_SECRET" not in text
    assert str(tmp_path) not in text  # no instructor path in the environment, /proc or cwd
    assert f"{SUBMISSION} {HOME}" in stdout(nb.cells[2])
    assert stdout(nb.cells[3]).startswith("stopped")  # the home is 20 MiB
    assert "survived" not in stdout(nb.cells[4])
    died = [o for o in nb.cells[4].outputs if o.output_type == "error"]
    assert died and "memory" in died[0].evalue, nb.cells[4].outputs
    assert [o.ename for o in nb.cells[5].outputs] == ["NotRun"]


def test_each_kernel_gets_its_workers_share_of_the_cores_for_blas(tmp_path, monkeypatch):
    """A grading worker's kernels run BLAS on the worker's share of the cores (all of them
    with one worker, as a notebook run by hand); anything but a positive count means 1, and
    the grader's own variable stays out of the kernel."""
    import functools

    from coursekit.instructor.executors import LocalExecutor, usable_cores

    for value, want in [("3", 3), ("", 1), ("two", 1), ("0", 1), ("-2", 1)]:
        monkeypatch.setenv(KERNEL_THREADS, value)
        assert kernel_threads() == want
        env = sandbox_env({}, threads=kernel_threads())
        assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == str(want)
        assert env["COURSEKIT_NUMBA"] == "0"  # no numba compile in a sandbox
        assert KERNEL_THREADS not in env
    monkeypatch.setenv(KERNEL_THREADS, "2")
    cell = "import os\nprint(os.environ['OPENBLAS_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    nb = run_cells(tmp_path, [cell, f"print({KERNEL_THREADS!r} in os.environ)"])
    assert [stdout(c).strip() for c in nb.cells] == ["2 2", "False"]
    executor = LocalExecutor(workers=1)
    try:
        ((_, share),) = executor.run(functools.partial(os.getenv, KERNEL_THREADS), [None])
    finally:
        executor.close()
    assert share == str(usable_cores())


def test_the_fallback_still_stops_memory_bombs_and_fork_floods(monkeypatch, caplog):
    monkeypatch.setenv(NO_BWRAP_ENV, "1")
    # Without bubblewrap the kernel's user reaches its directories through their real
    # parents, so they must be traversable (pytest's own temporary root is not).
    tmp_path = Path(tempfile.mkdtemp(prefix="coursekit-fallback-"))
    tmp_path.chmod(0o755)
    cells = [
        "try:\n    bytearray(2 * 1024**3)\n    print('allocated')\nexcept MemoryError:\n"
        "    print('MemoryError')",
        FORK_FLOOD,
        "import os\nprint(os.getuid())",
    ]
    nb = run_cells(tmp_path, cells, memory=1024**3 + 512 * 1024**2, processes=16)
    shutil.rmtree(tmp_path, ignore_errors=True)
    out = [stdout(c).strip() for c in nb.cells]
    assert out[0] == "MemoryError"
    assert 0 < int(out[1]) < 16
    if os.geteuid() == 0:
        assert int(out[2]) >= 200000
    assert "WITHOUT a sandbox" in caplog.text


def run_graded(tmp_path, sources, kernel_traits=None, **traits):
    """Run cells through :class:`SandboxedExecute` (what ``coursekit grade`` runs)."""
    submission = tmp_path / "submitted" / "alice" / "a1"
    submission.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.SandboxedKernelManager.scratch_dir = str(tmp_path / "scratch")
    config.SandboxedKernelManager.hide = [str(tmp_path)]
    for name, value in (kernel_traits or {}).items():
        setattr(config.SandboxedKernelManager, name, value)
    for name, value in traits.items():
        setattr(config.SandboxedExecute, name, value)
    nb = code_notebook(sources)
    resources = {"metadata": {"path": str(submission)}}
    SandboxedExecute(config=config).preprocess(nb, resources)
    return nb


def test_the_notebook_wall_time_limit_stops_the_cells_left(tmp_path):
    # no per-cell timeout: only the notebook's limit can stop the 30 s cell
    cells = ["import time\nprint('first')", "time.sleep(30)", "print('third')"]
    nb = run_graded(tmp_path, cells, timeout=None, notebook_timeout=4)
    assert stdout(nb.cells[0]).strip() == "first"
    assert "CellTimeoutError" in [o.ename for o in nb.cells[1].outputs if o.output_type == "error"]
    assert len(nb.cells[2].outputs) == 1, nb.cells[2].outputs
    error = nb.cells[2].outputs[0]
    assert error.ename == "NotebookTimeout" and "4 s" in error.evalue


def test_output_is_capped_per_notebook_before_it_is_stored(tmp_path):
    flood = "for _ in range(200):\n    print('x' * 50_000)"
    nb = run_graded(tmp_path, [flood, "print('after')"], max_output_bytes=200_000)
    kept = sum(len(o.get("text", "")) for c in nb.cells for o in c.outputs)
    assert 0 < kept < 300_000  # 10 MB were printed
    assert "output truncated" in stdout(nb.cells[0])
    assert "after" not in stdout(nb.cells[1])  # the budget is for the whole notebook


def test_each_kernel_home_gets_the_graders_matplotlib_font_list(tmp_path):
    import matplotlib
    from matplotlib import font_manager

    name = f"fontlist-v{font_manager.FontManager.__version__}.json"
    seed_matplotlib_cache(str(tmp_path / "mpl"), os.getuid())
    copied = tmp_path / "mpl" / name
    assert copied.read_bytes() == (Path(matplotlib.get_cachedir()) / name).read_bytes()
    # and a sandboxed kernel looks for it there
    nb = run_cells(tmp_path, ["import matplotlib, os\nprint(matplotlib.get_cachedir())"])
    assert stdout(nb.cells[0]).strip().endswith(".matplotlib")


def test_test_cells_are_scored_by_coursekit_not_by_their_outputs(tmp_path):
    def test_cell(source, grade_id):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": True,
            "points": 1,
            "grade_id": grade_id,
            "schema_version": 3,
        }
        return cell

    nb = code_notebook(
        [
            "get_ipython().events.register('post_run_cell', "
            "lambda *a: get_ipython().displayhook('ok'))"
        ]
    )
    nb.cells += [
        test_cell("assert 1 == 2, 'public assert'", "public_only_fails"),
        test_cell("assert True", "public_only_passes"),
        test_cell("1 + 1", "returns_a_value"),
    ]
    submission = tmp_path / "submitted" / "alice" / "a1"
    submission.mkdir(parents=True)
    config = Config()
    config.SandboxedKernelManager.scratch_dir = str(tmp_path / "scratch")
    SandboxedExecute(config=config).preprocess(
        nb, {"metadata": {"path": str(submission)}, "unique_key": "nb"}
    )
    kinds = [[o.output_type for o in c.outputs] for c in nb.cells[1:]]
    # an execute_result is never left in a test cell (nbgrader would read it as the score)
    assert all("execute_result" not in k for k in kinds), kinds
    failing, passing, value = nb.cells[1:]
    assert [o.ename for o in failing.outputs if o.output_type == "error"] == ["GradingError"]
    assert "public test failed: AssertionError: public assert" in stdout(failing) + "".join(
        o.get("text", "") for o in failing.outputs
    )
    assert not [o for o in passing.outputs + value.outputs if o.output_type == "error"]
    import json

    verdicts = json.loads((tmp_path / "scratch" / "verdicts.json").read_text())["nb"]
    assert verdicts["public_only_fails"]["status"] == "failed"
    assert verdicts["public_only_passes"]["status"] == "passed"


def test_no_sandbox_can_take_a_file_lock(tmp_path, course):
    # A lock on a file every sandbox can open is a channel between two of them.
    cells = [
        "import fcntl, os\nf = open(os.__file__, 'rb')\nout = []\n"
        "for take in (lambda: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB),\n"
        "             lambda: fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)):\n"
        "    try:\n        take()\n        out.append('taken')\n"
        "    except OSError as exc:\n        out.append(exc.errno)\n"
        "out.append(fcntl.fcntl(f, fcntl.F_GETFD) >= 0)\nprint(out)",
    ]
    nb = run_cells(tmp_path, cells)
    assert stdout(nb.cells[0]).strip() == "[1, 1, True]"  # EPERM twice; fcntl still works


#: keyctl's number (test-side, not the module's table): x86_64, aarch64.
KEYCTL = {"x86_64": 250, "aarch64": 219}
#: Channels between sandboxes and memory outside every process: each must fail with EPERM
#: (1) in a sandbox, and works outside one.
PROBE_DENIED = """
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(call):
    try:
        result = call()
    except OSError as exc:
        return exc.errno
    return ctypes.get_errno() if result == -1 else 0
def shared_segment():
    segment = libc.shmget(0, 4096, 0o1000 | 0o600)
    if segment >= 0:
        libc.shmctl(segment, 0, None)  # IPC_RMID: nothing left behind
    return segment
print([
    errno_of(lambda: os.memfd_create('m')),
    errno_of(shared_segment),
    errno_of(lambda: libc.inotify_init1(0)),
    errno_of(lambda: libc.syscall(%d, 0, -4, 0)),  # KEYCTL_GET_KEYRING_ID, the user keyring
])
"""


def test_no_sandbox_can_use_keyrings_file_watches_or_memory_outside_its_processes(
    tmp_path, course, monkeypatch
):
    import platform
    import subprocess
    import sys

    if platform.machine() not in KEYCTL:
        pytest.skip("no filter for this machine")
    probe = PROBE_DENIED % KEYCTL[platform.machine()]
    outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    # the probe works outside a sandbox (a container's own filter may deny keyrings already)
    assert outside.stdout.strip().startswith("[0, 0, 0, "), outside.stderr
    for warm in ("1", "0"):
        monkeypatch.setenv("COURSEKIT_WARM_KERNELS", warm)
        nb = run_cells(tmp_path / warm, [probe])
        assert stdout(nb.cells[0]).strip() == "[1, 1, 1, 1]", warm


def test_the_seccomp_program_is_well_formed():
    from coursekit.instructor.sandbox import sandbox_filter

    program = sandbox_filter()
    if program is None:
        pytest.skip("no filter for this machine")
    import struct

    rows = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    # every jump lands inside the program, on one of the two returns or the next test
    for index, (code, jt, jf, _k) in enumerate(rows):
        if code == 0x15:
            assert index + 1 + max(jt, jf) < len(rows)
    assert rows[-2][0] == rows[-1][0] == 0x06


def test_the_watchdog_finds_every_descendant_and_kills_the_tree_over_its_memory():
    """The children-file walk and the full /proc scan agree on a tree with an orphan (a
    grandchild whose parent exited, adopted by the tree's own subreaper), and a tree over
    its memory limit is killed as a whole."""
    import subprocess
    import sys
    import time

    from coursekit.instructor.sandbox import Watchdog

    script = (
        "import ctypes, os, time\n"
        "ctypes.CDLL(None).prctl(36, 1)\n"  # PR_SET_CHILD_SUBREAPER: orphans come back here
        "for _ in range(2):\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"  # the grandchild is orphaned
        "os.wait()\nos.wait()\n"
        "blob = bytearray(64 * 1024**2)\n"
        "time.sleep(60)\n"
    )
    root = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        watch = Watchdog(root.pid, memory=10 * 1024**3, every=3600)
        while time.monotonic() < deadline and len(watch._tree_by_scan()) < 3:
            time.sleep(0.05)
        time.sleep(0.3)
        assert sorted(watch._tree()) == sorted(watch._tree_by_scan())
        assert len(watch._tree()) == 3  # the root and the two adopted grandchildren
        watch.stop()
        killer = Watchdog(root.pid, memory=32 * 1024**2, every=0.05)
        assert root.wait(timeout=20) == -9
        assert killer.reason and "memory" in killer.reason
    finally:
        root.kill()
        root.wait()


def test_the_watchdog_can_leave_out_a_root_that_only_shares_its_pages():
    """A warm kernel's init holds nothing but pages it shares with the kernel: left out, the
    tree is judged by its other processes' memory."""
    import subprocess
    import sys
    import time

    from coursekit.instructor.sandbox import Watchdog, process_tree

    script = (
        "import os, time\nblob = bytearray(96 * 1024**2)\nblob[::4096] = b'x' * len(blob[::4096])\n"
        "if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\ntime.sleep(60)\n"
    )
    for count_root, survives in ((False, True), (True, False)):
        root = subprocess.Popen([sys.executable, "-c", script])
        try:
            deadline = time.monotonic() + 30
            while len(process_tree(root.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # the child exists once both hold the 96 MiB (shared)
            time.sleep(0.2)
            watch = Watchdog(root.pid, memory=160 * 1024**2, every=0.05, count_root=count_root)
            time.sleep(1.0)
            assert (root.poll() is None) == survives, (count_root, watch.reason)
            watch.stop()
        finally:
            root.kill()
            root.wait()


def test_files_in_the_sockets_directory_count_against_the_disk_limit_at_any_depth(tmp_path):
    """The kernel's sockets' directory is the one writable place on the grader's disk: what
    the kernel writes there, in folders of folders too, counts against its disk limit."""
    fill = (
        "import json, os, time\n"
        "sockets = os.path.dirname(json.load(open('/tmp/sandbox/run/kernel.json'))['ip'])\n"
        "deep = os.path.join(sockets, 'd', 'e')\nos.makedirs(deep)\n"
        "for i in range(6):\n"
        "    with open(os.path.join(deep, str(i)), 'wb') as fh:\n"
        "        fh.write(b'x' * 8 * 1024**2)\n"
        "time.sleep(10)\nprint('survived')"
    )
    nb = run_graded(tmp_path, [fill, "print('after')"], kernel_traits={"disk": 16 * 1024**2})
    assert "survived" not in stdout(nb.cells[0])
    died = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert died and "MiB of files" in died[0].evalue, nb.cells[0].outputs
