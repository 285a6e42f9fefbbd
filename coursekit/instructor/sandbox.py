"""Running a student's kernel in a sandbox with resource limits.

Student code runs with the instructor's rights under plain nbgrader. Here every student
kernel runs under bubblewrap (``bwrap``):

* the file system is the machine's, read only, with ``/root``, ``/home``, ``/work``, ``/tmp``,
  ``/srv``, ``/mnt`` and every path in ``hide`` (the course directory: ``solutions/``, the
  gradebook, other students' submissions) replaced by empty in-memory directories;
* only the Python installation, coursekit itself, the student's submission directory (read
  only) and a scratch directory (the only writable place, also ``HOME`` and ``TMPDIR``) are
  put back, at their own paths;
* private network, process, IPC and host-name namespaces (``--unshare-net`` leaves only a
  loopback that reaches nothing on the machine), a new session, and the kernel dies with the
  grader (``--die-with-parent``);
* the kernel runs as an unprivileged user of its own (:func:`sandbox_uid`) with limits
  (``prlimit``): address space (``RLIMIT_AS``), processes (``RLIMIT_NPROC``, counted per
  user, so it is enforced for that user and not for root), CPU seconds (``RLIMIT_CPU``),
  size of any file written (``RLIMIT_FSIZE``), and no core dumps.

Wall time per cell is nbclient's ``timeout`` (nbgrader's ``Execute.timeout``), and the
whole notebook has its own wall time (:attr:`Limits.notebook_seconds`): cells still waiting
when it runs out are not run. Output is capped per notebook before it is stored
(:attr:`Limits.notebook_output_bytes`). The kernel
talks to the grader over Unix sockets in a short private directory under ``/tmp`` (socket
paths are limited to 107 bytes), since it has no network, and is interrupted by message.

:func:`configure_sandbox` switches nbgrader's ``Autograde`` to :class:`SandboxedExecute`,
which runs each notebook on a :class:`SandboxedKernelManager` and then decides every hidden
test in the grader (:mod:`coursekit.grading.trusted`). ``coursekit grade`` does this for
every submission. The submission and scratch directories should lie under a hidden
directory (``/tmp``, the course directory, ...): their parents are then recreated
traversable; elsewhere, their real parents must be traversable by other users.

Where bubblewrap is missing or cannot create namespaces (a container without the
privilege), or ``COURSEKIT_NO_BWRAP=1`` is set, :func:`sandboxed_command` logs a loud
warning and falls back to the resource limits alone, still as the unprivileged sandbox user
when the grader runs as root: student code can then read what that user may read (files
readable by everyone) and reach the network.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import AsyncKernelManager
from nbgrader.preprocessors import Execute
from traitlets import Int, List, Unicode

from coursekit.grading.trusted import (
    RECORD_ENV,
    clear_records,
    hidden_checks,
    integrity_problems,
    trusted_verdict,
)

log = logging.getLogger(__name__)

#: The first of the unprivileged user ids kernels run as (one per grading process, so that
#: ``RLIMIT_NPROC``, counted per user, is not shared by kernels graded in parallel).
SANDBOX_UID = 200000
#: Directories hidden behind an empty tmpfs unless something in them is put back.
HIDDEN = ("/root", "/home", "/work", "/tmp", "/var/tmp", "/srv", "/mnt")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one student kernel.

    Attributes
    ----------
    memory : int
        Address space in bytes (``RLIMIT_AS``); numpy and torch need about 1 GiB to import.
    processes : int
        Processes and threads of the sandbox user (``RLIMIT_NPROC``).
    cpu_seconds : int
        CPU time of the kernel (``RLIMIT_CPU``); wall time per cell is nbclient's timeout.
    output_bytes : int
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    notebook_seconds : int
        Wall time of a whole notebook, all cells together (each cell also has nbgrader's
        ``Execute.timeout``). Cells left when it runs out are not run and get an error.
    notebook_output_bytes : int
        Output a notebook may print or display, all cells together; what comes after is
        dropped before it is stored, and the cell says so.
    """

    memory: int = 3 * 1024**3
    processes: int = 64
    cpu_seconds: int = 600
    output_bytes: int = 64 * 1024**2
    notebook_seconds: int = 900
    notebook_output_bytes: int = 4 * 1024**2

    def prlimit_args(self) -> list[str]:
        return [
            "prlimit",
            f"--as={self.memory}",
            f"--nproc={self.processes}",
            f"--cpu={self.cpu_seconds}",
            f"--fsize={self.output_bytes}",
            "--core=0",
            "--",
        ]


#: Set to 1 to grade without bubblewrap even where it works (the fallback, resource limits
#: only; for machines where namespaces misbehave, and to test the fallback).
NO_BWRAP_ENV = "COURSEKIT_NO_BWRAP"


def bwrap_usable() -> bool:
    """Whether bubblewrap is installed and can create the namespaces the sandbox uses."""
    return not os.environ.get(NO_BWRAP_ENV) and _bwrap_works()


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    probe = [exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def visible_paths() -> list[str]:
    """What the kernel needs to run: the Python installation and coursekit's own package."""
    import coursekit

    paths = {sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)}
    paths.add(str(Path(coursekit.__file__).resolve().parent))
    return sorted(p for p in paths if os.path.exists(p))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _traversable_by_others(path: str) -> bool:
    """Whether every parent of ``path`` lets other users through (``o+x``)."""
    return all(os.stat(p).st_mode & 0o001 for p in Path(path).parents)


def sandbox_uid() -> int:
    """The user id of this grading process's kernels (unique among running processes)."""
    return SANDBOX_UID + os.getpid()


def sandboxed_command(
    cmd: list[str],
    *,
    submission_dir: str | os.PathLike,
    scratch_dir: str | os.PathLike,
    limits: Limits = Limits(),
    hide: tuple[str | os.PathLike, ...] = (),
    uid: int | None = None,
    writable: tuple[str | os.PathLike, ...] = (),
) -> list[str]:
    """The argv that runs ``cmd`` in the sandbox described in the module docstring.

    ``cmd`` keeps its paths: the submission and scratch directories appear at their own
    paths. ``scratch_dir`` must be writable by ``uid`` (default :func:`sandbox_uid`, see
    :func:`prepare_dirs`). Without a usable bubblewrap, only the limits apply (warning).
    """
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
    submission = os.path.realpath(submission_dir)
    scratch = os.path.realpath(scratch_dir)
    uid = str(sandbox_uid() if uid is None else uid)
    setpriv = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--"]
    if not bwrap_usable():
        log.warning(
            "bubblewrap is unusable here (%s): student code runs WITHOUT a sandbox (it can "
            "read what the grader's files allow and reach the network); only resource "
            "limits apply",
            "disabled by " + NO_BWRAP_ENV
            if os.environ.get(NO_BWRAP_ENV)
            else "not installed or no permission to create namespaces",
        )
        # As root, still drop to the sandbox user (root is exempt from RLIMIT_NPROC), when
        # that user can reach the two directories through their real parents.
        drop = os.geteuid() == 0 and shutil.which("setpriv") is not None
        if drop and not all(map(_traversable_by_others, (submission, scratch))):
            log.warning(
                "the kernel runs as root: the parents of %s or %s are not traversable by "
                "other users, so the process limit does not apply",
                submission,
                scratch,
            )
            drop = False
        return [*limits.prlimit_args(), *(setpriv if drop else []), *cmd]
    hidden = [os.path.realpath(p) for p in (*HIDDEN, *hide)]
    hidden = sorted({p for p in hidden if os.path.isdir(p)}, key=len)
    tops = [h for h in hidden if not any(h != o and _under(h, o) for o in hidden)]
    argv = [
        shutil.which("bwrap"),
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session",
        # Only to drop to the sandbox user with setpriv; capabilities vanish with the uid.
        "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
    ]  # fmt: skip
    for top in tops:
        argv += ["--perms", "0755", "--tmpfs", top]
    made: set[str] = set()
    binds = [(p, "--ro-bind") for p in visible_paths()]
    binds += [(submission, "--ro-bind"), (scratch, "--bind")]
    binds += [(os.path.realpath(p), "--bind") for p in writable]
    for path, kind in binds:
        top = next((t for t in tops if _under(path, t)), None)
        if top is None and kind == "--ro-bind":
            continue  # already visible, read only
        if top is not None:
            # Parents created under a tmpfs are 0700 unless told; nobody must traverse them.
            parent = Path(path).parent
            for p in reversed([parent, *parent.parents]):
                if _under(str(p), top) and str(p) != top and str(p) not in made:
                    made.add(str(p))
                    argv += ["--perms", "0755", "--dir", str(p)]
        argv += [kind, path, path]
    argv += ["--chdir", submission, "--setenv", "HOME", scratch, "--setenv", "TMPDIR", scratch]
    # The kernel would watch its parent's pid, which does not exist in its pid namespace.
    argv += ["--unsetenv", "JPY_PARENT_PID"]
    return [*argv, "--", *limits.prlimit_args(), *setpriv, *cmd]


def prepare_dirs(
    submission_dir: str | os.PathLike, scratch_dir: str | os.PathLike, uid: int | None = None
) -> None:
    """Make the submission readable and the scratch directory writable by the sandbox user."""
    uid = sandbox_uid() if uid is None else uid
    os.makedirs(scratch_dir, exist_ok=True)
    os.chown(scratch_dir, uid, uid)
    os.chmod(scratch_dir, 0o700)
    for root, _dirs, files in os.walk(submission_dir):
        os.chmod(root, os.stat(root).st_mode | 0o755)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)


def seed_matplotlib_cache(directory: str, uid: int) -> None:
    """Give a fresh kernel home the grader's matplotlib font list.

    A home without it makes matplotlib scan every font again at the first figure, about
    0.4 s per notebook. The list only names font files, which the sandbox can read anyway.
    """
    try:
        import matplotlib
        from matplotlib import font_manager  # builds and saves the list if it is missing
    except ImportError:
        return
    name = f"fontlist-v{font_manager.FontManager.__version__}.json"
    source = os.path.join(matplotlib.get_cachedir(), name)
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(source):
        shutil.copyfile(source, os.path.join(directory, name))
    for path in (directory, os.path.join(directory, name)):
        if os.path.exists(path):
            os.chown(path, uid, uid)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in :func:`sandboxed_command`'s sandbox.

    Configure it with ``scratch_dir`` (required), ``submission_dir`` (default: the working
    directory the notebook runs in), ``hide`` and the limits. The kernel's connection file
    lives in the scratch directory, and the kernel's environment gets
    :data:`RECORD_ENV` so that hidden tests only record outputs (see
    :mod:`coursekit.grading.trusted`).
    """

    scratch_dir = Unicode("", help="Writable scratch directory of the kernel.").tag(config=True)
    submission_dir = Unicode("", help="Student's directory (default: cwd).").tag(config=True)
    hide = List(Unicode(), help="More directories to make invisible.").tag(config=True)
    memory = Int(Limits.memory).tag(config=True)
    processes = Int(Limits.processes).tag(config=True)
    cpu_seconds = Int(Limits.cpu_seconds).tag(config=True)
    output_bytes = Int(Limits.output_bytes).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.scratch_dir:
            raise ValueError("SandboxedKernelManager.scratch_dir must be set, got ''")
        os.makedirs(self.scratch_dir, exist_ok=True)
        self.transport = "ipc"
        # Unix socket paths are limited to 107 bytes: keep them in a short private directory.
        self._socket_dir = tempfile.mkdtemp(prefix="ck-", dir="/tmp")
        # Removed at shutdown, or when the manager goes away after a kernel that died.
        weakref.finalize(self, shutil.rmtree, self._socket_dir, True)
        self.ip = os.path.join(self._socket_dir, "k")
        self.connection_file = os.path.join(self.scratch_dir, "kernel.json")

    @property
    def record_dir(self) -> str:
        return os.path.join(self.scratch_dir, "records")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        submission = self.submission_dir or kw.get("cwd") or os.getcwd()
        prepare_dirs(submission, self.scratch_dir)
        os.makedirs(self.record_dir, exist_ok=True)
        os.chown(self.record_dir, sandbox_uid(), sandbox_uid())
        os.chown(self._socket_dir, sandbox_uid(), sandbox_uid())
        if os.path.exists(self.connection_file):
            os.chown(self.connection_file, sandbox_uid(), sandbox_uid())
        env = dict(kw.get("env") or os.environ)
        env[RECORD_ENV] = self.record_dir
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env.update(HOME=self.scratch_dir, TMPDIR=self.scratch_dir)  # also without bubblewrap
        mpl_dir = os.path.join(self.scratch_dir, ".matplotlib")
        seed_matplotlib_cache(mpl_dir, sandbox_uid())
        env["MPLCONFIGDIR"] = mpl_dir
        kw["env"] = env
        limits = Limits(self.memory, self.processes, self.cpu_seconds, self.output_bytes)
        argv = sandboxed_command(
            list(kernel_cmd),
            submission_dir=submission,
            scratch_dir=self.scratch_dir,
            limits=limits,
            hide=tuple(self.hide),
            writable=(self._socket_dir,),
        )
        return await super()._async_launch_kernel(argv, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def _async_signal_kernel(self, signum: int) -> None:
        # A signal to the sandbox's process group would stop bubblewrap, not the kernel (it
        # runs in its own session): interrupt with a message, as Windows kernels do.
        if signum == signal.SIGINT and self.has_kernel:
            self._connect_control_socket()
            self.session.send(self._control_socket, self.session.msg("interrupt_request"))
            return
        await super()._async_signal_kernel(signum)


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with a sandboxed kernel and the trusted hidden-test verdict.

    After the notebook ran, every graded test cell that calls ``check`` is judged here, in
    the grader, from the outputs its kernel recorded; a cell that fails gets an error output
    (so nbgrader scores it 0 and the feedback shows why), whatever the kernel printed.
    """

    notebook_timeout = Int(Limits.notebook_seconds, help="Wall time of the notebook.").tag(
        config=True
    )
    max_output_bytes = Int(
        Limits.notebook_output_bytes, help="Output kept for the whole notebook."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        # A grading kernel has nothing to save: killing it (bubblewrap takes the kernel with
        # it) saves the graceful shutdown's wait, about 0.4 s per notebook.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)
        self._deadline = float("inf")
        self._output_left = self.max_output_bytes
        self._truncated: set[int] = set()

    def _get_timeout(self, cell):
        """The cell's own timeout, cut to what is left of the notebook's (at least 1 s)."""
        left = self._deadline - time.monotonic()
        return max(1.0, min(super()._get_timeout(cell) or float("inf"), left))

    def preprocess_cell(self, cell, resources, index):
        if self._deadline == float("inf"):  # the clock starts with the first cell
            self._deadline = time.monotonic() + self.notebook_timeout
        if cell.cell_type == "code" and time.monotonic() >= self._deadline:
            cell.outputs = [
                nbformat_error(
                    "NotebookTimeout",
                    f"not run: the notebook used up its {self.notebook_timeout} s of wall "
                    "time before this cell",
                )
            ]
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        size = _content_bytes(msg.get("content", {}))
        if size > self._output_left:
            self._output_left = 0
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(_truncation_note(self.max_output_bytes))
            return None
        self._output_left -= size
        return super().output(outs, msg, display_id, cell_index)

    def preprocess(self, nb, resources=None, km=None):
        scratch = self.config.SandboxedKernelManager.get("scratch_dir")
        if not scratch:
            raise ValueError("SandboxedKernelManager.scratch_dir must be set, got nothing")
        record_dir = os.path.join(scratch, "records")
        os.makedirs(record_dir, exist_ok=True)
        clear_records(record_dir)
        self._deadline = float("inf")
        self._output_left, self._truncated = self.max_output_bytes, set()
        nb, resources = super().preprocess(nb, resources, km=km)
        tests = [c for c in nb.cells if _is_test(c) and hidden_checks(c.source)]
        tasks = sorted({name for c in tests for name, _ in hidden_checks(c.source)})
        student = [c.source for c in nb.cells if c.cell_type == "code" and not _restored(c)]
        problems = integrity_problems(student, tasks)
        for cell in tests:
            passed, message = trusted_verdict(cell.source, record_dir)
            reasons = [] if passed else [message]
            reasons += sorted({problems[n] for n, _ in hidden_checks(cell.source) if n in problems})
            if reasons:
                cell.outputs.append(nbformat_error("GradingError", "\n".join(reasons)))
        return nb, resources


def _content_bytes(content: dict) -> int:
    """Roughly the bytes an output message adds to the notebook (its text and data)."""
    size = len(content.get("text", ""))
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(str(value))
    return size + sum(len(line) for line in content.get("traceback", []))


def _truncation_note(limit: int):
    from nbformat.v4 import new_output

    text = f"\n[output truncated: the notebook printed more than {limit:,} bytes]\n"
    return new_output("stream", name="stdout", text=text)


def _is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _restored(cell) -> bool:
    """Whether nbgrader restored this cell from the gradebook (a locked cell)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("locked")) and not meta.get("solution")


def nbformat_error(ename: str, evalue: str):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def configure_sandbox(config, *, scratch_dir, hide=(), limits: Limits = Limits()) -> None:
    """Make nbgrader's ``Autograde`` run every kernel sandboxed, with trusted hidden tests.

    ``config`` is the course's traitlets ``Config`` (changed in place); ``hide`` should name
    the course directory and the grader's scratch root.
    """
    from nbgrader.converters import Autograde

    config.SandboxedKernelManager.scratch_dir = str(scratch_dir)
    config.SandboxedKernelManager.hide = [str(p) for p in hide]
    config.SandboxedKernelManager.memory = limits.memory
    config.SandboxedKernelManager.processes = limits.processes
    config.SandboxedKernelManager.cpu_seconds = limits.cpu_seconds
    config.SandboxedKernelManager.output_bytes = limits.output_bytes
    config.SandboxedExecute.notebook_timeout = limits.notebook_seconds
    config.SandboxedExecute.max_output_bytes = limits.notebook_output_bytes
    current = (
        config.Autograde.get("autograde_preprocessors")
        or Autograde.autograde_preprocessors.default()
    )
    config.Autograde.autograde_preprocessors = [
        SandboxedExecute if p is Execute or p == "nbgrader.preprocessors.Execute" else p
        for p in current
    ]
