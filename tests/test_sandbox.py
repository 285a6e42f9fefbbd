"""The student-kernel sandbox: files, network, memory, processes and time are contained."""

from __future__ import annotations

import socket

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from traitlets.config import Config

from coursekit.instructor.sandbox import (
    Limits,
    SandboxedKernelManager,
    bwrap_usable,
    sandboxed_command,
)

pytestmark = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is unusable here")


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
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
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
        "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
        "            time.sleep(3); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)",
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


def test_command_line_hides_instructor_files_and_binds_scratch(tmp_path):
    argv = sandboxed_command(
        ["python", "-c", "1"],
        submission_dir=tmp_path / "sub",
        scratch_dir=tmp_path / "scratch",
        limits=Limits(memory=10**9, processes=8, cpu_seconds=5, output_bytes=10**6),
        hide=(tmp_path,),
    )
    text = " ".join(argv)
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert f"--bind {tmp_path / 'scratch'} {tmp_path / 'scratch'}" in text
    assert f"--ro-bind {tmp_path / 'sub'} {tmp_path / 'sub'}" in text
    assert "--as=1000000000" in argv and "--nproc=8" in argv and "--fsize=1000000" in argv
    assert argv[-3:] == ["python", "-c", "1"]
    with pytest.raises(TypeError, match="limits"):
        sandboxed_command(["true"], submission_dir=".", scratch_dir=".", limits={"memory": 1})


def test_without_bubblewrap_only_limits_apply_with_a_loud_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    bwrap_usable.cache_clear()
    try:
        argv = sandboxed_command(["python"], submission_dir=tmp_path, scratch_dir=tmp_path)
    finally:
        monkeypatch.undo()
        bwrap_usable.cache_clear()
    assert argv[0] == "prlimit" and argv[-1] == "python" and "--unshare-net" not in argv
    assert "WITHOUT a sandbox" in caplog.text
