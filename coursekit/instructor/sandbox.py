"""Running a student's code in a sandbox with resource limits.

Student code runs with the instructor's rights under plain nbgrader. Here every student
kernel, and every process that runs hidden cases (:mod:`coursekit.instructor.hidden`), runs
under bubblewrap (``bwrap``):

* the file system is the machine's, read only, with ``/root``, ``/home``, ``/work``, ``/tmp``,
  ``/srv``, ``/mnt`` and every path in ``hide`` (the course directory: ``solutions/``, the
  gradebook, other students' submissions; the source checkout coursekit was installed
  from) replaced by empty in-memory directories;
* only the Python installation and the coursekit the kernel imports (:func:`kernel_package`)
  are put back at their own paths; the student's submission appears read only at
  ``/tmp/sandbox/submission`` and the only writable place is ``/tmp/sandbox/home`` (``HOME``
  and ``TMPDIR``),
  an in-memory file system of :attr:`Limits.disk` bytes, so nothing in the sandbox names an
  instructor path;
* bubblewrap reads its arguments from a file (``--args``), so ``/proc/1/cmdline`` shows
  none of them, and the environment is built from an allowlist (:func:`sandbox_env`);
* private network, process, IPC and host-name namespaces, a new session, and the processes
  die with the grader (``--die-with-parent``);
* the code runs as an unprivileged user of its own (:func:`sandbox_uid`) with limits
  (``prlimit``): address space per process, processes of that user, CPU seconds, size of a
  written file, no core dumps; and a :class:`Watchdog` in the grader kills the whole sandbox
  when all its processes together use more than :attr:`Limits.memory` of memory.

Wall time per cell is nbclient's ``timeout`` (nbgrader's ``Execute.timeout``), and the
whole notebook has its own wall time (:attr:`Limits.notebook_seconds`): cells still waiting
when it runs out are not run. Output is capped per notebook before it is stored
(:attr:`Limits.notebook_output_bytes`). The kernel talks to the grader over Unix sockets
in a short private directory under ``/tmp`` (socket paths are limited to 107 bytes), since
it has no network, and is interrupted by message.

:func:`configure_sandbox` switches nbgrader's ``Autograde`` to :class:`SandboxedExecute`:
hidden-test regions are removed from the cells before the kernel sees them, and after the
notebook ran, the hidden checks are graded by :mod:`coursekit.instructor.hidden` and decide
every test cell's score.

Where bubblewrap is missing or cannot create namespaces (a container without the
privilege), or ``COURSEKIT_NO_BWRAP=1`` is set, :func:`sandboxed_command` logs a loud
warning and falls back to the resource limits alone, still as the unprivileged sandbox user
when the grader runs as root: student code can then read what that user may read (files
readable by everyone) and reach the network.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import AsyncKernelClient, AsyncKernelManager
from nbgrader.preprocessors import Execute
from traitlets import Bool, DottedObjectName, Int, List, Type, Unicode

log = logging.getLogger(__name__)

#: The first of the unprivileged user ids sandboxes run as (one per grading process and
#: role, so that ``RLIMIT_NPROC``, counted per user, is not shared).
SANDBOX_UID = 200000
#: Added to a kernel's user id for the process that runs its hidden cases: Linux's largest
#: possible pid (PID_MAX_LIMIT, 2**22), so that no kernel's id is ever another's runner's.
RUNNER_UID_OFFSET = 1 << 22
#: Directories hidden behind an empty tmpfs unless something in them is put back.
HIDDEN = ("/root", "/home", "/work", "/tmp", "/var/tmp", "/srv", "/mnt")
#: Where the sandboxed code sees its files.
SUBMISSION = "/tmp/sandbox/submission"
HOME = "/tmp/sandbox/home"
CONNECTION = "/tmp/sandbox/run/kernel.json"
#: The file the grader writes beside a notebook's scratch space with every test cell's
#: status (read by :mod:`coursekit.instructor.grade`).
VERDICTS_FILE = "verdicts.json"
#: Beside it: the seconds the hidden step took after each notebook, all notebooks together.
TIMINGS_FILE = "timings.json"
#: Environment variables a sandbox inherits from the grader; everything else is set.
ENV_ALLOWED = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")

#: The grader's variable that gives each kernel its share of the cores for BLAS threads
#: (set by :class:`coursekit.instructor.executors.LocalExecutor` in its workers).
KERNEL_THREADS = "COURSEKIT_KERNEL_THREADS"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one student kernel (and of its hidden-case process).

    Attributes
    ----------
    memory : int
        Memory of all the sandbox's processes together (resident, watched by
        :class:`Watchdog`), and the address space of each one (``RLIMIT_AS``); numpy and
        torch need about 1 GiB to import.
    processes : int
        Processes and threads of the sandbox user (``RLIMIT_NPROC``).
    cpu_seconds : int
        CPU time of each process (``RLIMIT_CPU``); wall time per cell is nbclient's timeout.
    output_bytes : int
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    disk : int
        Size of the writable home (an in-memory file system).
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
    disk: int = 256 * 1024**2
    notebook_seconds: int = 900
    notebook_output_bytes: int = 4 * 1024**2

    def rlimits(self) -> dict[str, int]:
        """The per-process limits, by ``resource`` name (what a warm kernel sets itself)."""
        return {
            "RLIMIT_AS": self.memory,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_FSIZE": self.output_bytes,
            "RLIMIT_CORE": 0,
        }

    def prlimit_args(self) -> list[str]:
        """The same limits as a ``prlimit`` command prefix (what a cold kernel starts under)."""
        flags = {"RLIMIT_AS": "as", "RLIMIT_NPROC": "nproc", "RLIMIT_CPU": "cpu"}
        flags.update(RLIMIT_FSIZE="fsize", RLIMIT_CORE="core")
        return ["prlimit", *(f"--{flags[k]}={v}" for k, v in self.rlimits().items()), "--"]


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


class SandboxError(RuntimeError):
    """The grading environment cannot run student code as configured (stops the run)."""


@functools.lru_cache(maxsize=8)
def kernel_package(python: str, name: str = "coursekit") -> str:
    """The directory of the package ``name`` that ``python`` imports, resolved the way a
    kernel resolves it (the grader's allowlisted environment, a neutral working directory).

    Raises :class:`SandboxError` when that interpreter cannot import it.
    """
    code = f"import {name}, os; print(os.path.realpath(os.path.dirname({name}.__file__)))"
    try:
        done = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            env=sandbox_env({}),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"cannot start the kernel's Python {python}: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxError(
            f"the kernel's Python ({python}) cannot import {name}: {last}. Install coursekit "
            "into the environment the kernel runs in (pip install -e <course checkout>)."
        )
    return done.stdout.strip().splitlines()[-1]


def kernel_python(kernel_name: str = "python3") -> str:
    """The interpreter Jupyter starts for ``kernel_name`` (as jupyter_client resolves it)."""
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except Exception:  # noqa: BLE001 - no such kernel spec: the grader's own interpreter
        return sys.executable
    first = argv[0] if argv else "python"
    major, minor = sys.version_info[:2]
    if first in ("python", f"python{major}", f"python{major}.{minor}"):
        return sys.executable
    return shutil.which(first) or first


def _source_checkout(package: str) -> str | None:
    """The source checkout a package was installed from (editable install), if any: its
    other files (the course's ``solutions/``...) are hidden."""
    parent = Path(package).parent
    if (parent / "pyproject.toml").exists() or (parent / "setup.py").exists():
        return str(parent)
    return None


def visible_paths(package: str | None = None) -> list[str]:
    """What sandboxed code needs to run: the Python installation and ``package`` (the
    coursekit the kernel imports; the grader's by default)."""
    if package is None:
        import coursekit

        package = str(Path(coursekit.__file__).resolve().parent)
    paths = {sys.prefix, sys.base_prefix, os.path.realpath(sys.executable), package}
    return sorted(p for p in paths if os.path.exists(p))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _traversable_by_others(path: str) -> bool:
    """Whether every parent of ``path`` lets other users through (``o+x``)."""
    return all(os.stat(p).st_mode & 0o001 for p in Path(path).parents)


def sandbox_uid() -> int:
    """The user id of this grading process's kernels (unique among running processes)."""
    return SANDBOX_UID + os.getpid()


def kernel_threads() -> int:
    """BLAS threads for this worker's kernels: :data:`KERNEL_THREADS` when it holds a
    positive whole number (the worker's share of the cores), else 1."""
    value = os.environ.get(KERNEL_THREADS, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def sandbox_env(extra: dict[str, str], threads: int = 1) -> dict[str, str]:
    """A sandbox's whole environment: :data:`ENV_ALLOWED` from the grader's, ``threads``
    BLAS and OpenMP threads, plus ``extra``."""
    env = {k: os.environ[k] for k in ENV_ALLOWED if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    count = str(max(1, int(threads)))
    env.update(OMP_NUM_THREADS=count, OPENBLAS_NUM_THREADS=count, MKL_NUM_THREADS=count)
    # numba would compile LayerNorm's fused kernels afresh in every sandbox (seconds of CPU;
    # its cache is read-only there): numpy's path gives the same result.
    env["COURSEKIT_NUMBA"] = "0"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Mount:
    """``source`` (a host path) seen at ``target`` in the sandbox; with no source, an empty
    in-memory file system of ``size`` bytes (hiding what was there), or without a size a
    new directory inside another mount."""

    source: str | None
    target: str
    writable: bool = False
    size: int | None = None


def sandboxed_command(
    cmd: list[str],
    *,
    mounts: list[Mount],
    cwd: str,
    limits: Limits = Limits(),
    hide: tuple[str | os.PathLike, ...] = (),
    uid: int | None = None,
    package: str | None = None,
    args_dir: str | os.PathLike | None = None,
    fallback_dirs: tuple[str, ...] = (),
    nursery: bool = False,
) -> list[str]:
    """The argv that runs ``cmd`` in the sandbox described in the module docstring.

    ``mounts`` say what the sandbox sees where (see :class:`Mount`); ``cwd`` is inside it.
    Bubblewrap's own arguments go to a file in ``args_dir`` (a directory the sandbox does
    not see). Without a usable bubblewrap only the limits apply (warning), the mounts'
    host paths are used as they are, and ``fallback_dirs`` must be reachable by ``uid``.

    With ``nursery``, ``cmd`` is a :mod:`~coursekit.instructor.nursery`: it stays root
    with the capabilities to build each kernel's sandbox itself (and sets each kernel's
    limits), and runs no student code. It needs bubblewrap.
    """
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
    uid = str(sandbox_uid() if uid is None else uid)
    setpriv = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--"]
    if nursery and not bwrap_usable():
        raise SandboxError("a nursery needs bubblewrap")
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
        # that user can reach the directories through their real parents.
        drop = os.geteuid() == 0 and shutil.which("setpriv") is not None
        if drop and not all(map(_traversable_by_others, fallback_dirs)):
            log.warning(
                "the sandboxed code runs as root: the parents of %s are not traversable by "
                "other users, so the process limit does not apply",
                ", ".join(fallback_dirs),
            )
            drop = False
        return [*limits.prlimit_args(), *(setpriv if drop else []), *cmd]
    package = package or visible_paths()[-1]
    hidden = [os.path.realpath(p) for p in (*HIDDEN, *hide)]
    checkout = _source_checkout(package)
    if checkout:
        hidden.append(checkout)
    hidden = sorted({p for p in hidden if os.path.isdir(p)}, key=len)
    tops = [h for h in hidden if not any(h != o and _under(h, o) for o in hidden)]
    argv = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session",
        # Only to drop to the sandbox user; capabilities vanish with the uid. A nursery
        # also mounts and unshares for each kernel before it drops.
        "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
        *(["--cap-add", "CAP_SYS_ADMIN"] if nursery else []),
    ]  # fmt: skip
    for top in tops:
        argv += ["--perms", "0755", "--tmpfs", top]
    made: set[str] = set()

    def parents(path: str) -> list[str]:
        # Parents created under a tmpfs are 0700 unless told; the sandbox user must
        # traverse them.
        out = []
        for p in reversed(Path(path).parents):
            p = str(p)
            if p != "/" and p not in made and _in_tops(p, tops):
                made.add(p)
                out += ["--perms", "0755", "--dir", p]
        return out

    visible = visible_paths(package)
    for path in visible:
        nested = any(path != other and _under(path, other) for other in visible)
        if _in_tops(path, tops) and not nested:
            argv += parents(path) + ["--ro-bind", path, path]
            made.add(path)
    for mount in mounts:
        argv += parents(mount.target)
        if mount.source is None:
            argv += ["--perms", "01777" if mount.writable else "0755"]
            if mount.size:
                argv += ["--size", str(mount.size), "--tmpfs", mount.target]
            else:
                argv += ["--dir", mount.target]
        else:
            kind = "--bind" if mount.writable else "--ro-bind"
            argv += [kind, os.path.realpath(mount.source), mount.target]
        made.add(mount.target)
    # The kernel would watch its parent's pid, which does not exist in its pid namespace.
    argv += ["--chdir", cwd, "--unsetenv", "JPY_PARENT_PID"]
    args_dir = args_dir or tempfile.gettempdir()
    fd, args_file = tempfile.mkstemp(prefix="bwrap-", suffix=".args", dir=args_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"".join(a.encode() + b"\0" for a in argv))
    # sh only opens the files on descriptors 3 and 4 and becomes bwrap: /proc shows "bwrap
    # --args 3" and the command, none of the host paths the options name.
    inner = (
        ["prlimit", "--core=0", "--", *cmd] if nursery else [*limits.prlimit_args(), *setpriv, *cmd]
    )
    program = sandbox_filter()
    if program is None:
        log.warning(
            "no seccomp filter for %s: sandboxes can take file locks and use keyrings",
            os.uname().machine,
        )
        script = 'f="$1"; shift; exec "$0" --args 3 -- "$@" 3<"$f"'
        return ["/bin/sh", "-c", script, shutil.which("bwrap"), args_file, *inner]
    filter_file = os.path.join(args_dir, "sandbox.bpf")
    if not os.path.exists(filter_file):
        fd, tmp = tempfile.mkstemp(prefix="bpf-", dir=args_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(program)
        os.replace(tmp, filter_file)
    script = 'f="$1"; s="$2"; shift 2; exec "$0" --args 3 --seccomp 4 -- "$@" 3<"$f" 4<"$s"'
    return ["/bin/sh", "-c", script, shutil.which("bwrap"), args_file, filter_file, *inner]


# -- what no sandbox may do: channels between sandboxes, memory no limit sees -----------------
_BPF = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO, _EPERM = 0x7FFF0000, 0x00050000, 1
#: Per machine: the audit arch, fcntl's number, and the system calls that always fail.
_SYSCALLS = {
    "x86_64": (
        0xC000003E,
        72,
        {
            "flock": 73,
            "shmget": 29,
            "memfd_create": 319,
            "memfd_secret": 447,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "inotify_init": 253,
            "inotify_init1": 294,
            "fanotify_init": 300,
        },
    ),
    "aarch64": (
        0xC00000B7,
        25,
        {
            "flock": 32,
            "shmget": 194,
            "memfd_create": 279,
            "memfd_secret": 447,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "inotify_init1": 26,
            "fanotify_init": 262,
        },
    ),
}
#: fcntl commands that set a lock: F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW.
_FCNTL_SET_LOCK = (6, 7, 37, 38)


def sandbox_filter() -> bytes | None:
    """A seccomp program (for ``bwrap --seccomp``) under which these system calls fail with
    EPERM, or ``None`` on a machine it does not know:

    * file locks (``flock``, and the ``fcntl`` commands that set one): sandboxes see the
      same read-only files (the Python installation), and a lock taken on one is visible to
      every process on the machine, whatever its namespaces, so two sandboxes running at
      once (a student's kernel and another's hidden-case runner) could talk through locks;
    * kernel keyrings (``add_key``, ``request_key``, ``keyctl``): they belong to a user id,
      not a namespace, and outlive the processes that made them, so a kernel could leave a
      message for the next one that runs as the same user;
    * file watches (``inotify``, ``fanotify``): a watch on a shared read-only file sees
      another sandbox open it;
    * memory that belongs to no process (``memfd_create``, ``memfd_secret``, ``shmget``):
      pages written there count in no process's resident memory, so the watchdog's limit
      would not see them.

    Nothing a notebook or the runner needs makes these calls.
    """
    import platform

    known = _SYSCALLS.get(platform.machine())
    if known is None:
        return None
    arch, fcntl, denied = known
    numbers = sorted(set(denied.values()))
    n, m = len(_FCNTL_SET_LOCK), len(numbers)
    # Jump offsets count from the next instruction; ALLOW and ERRNO are the last two.
    program = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 0, m + 3 + n, arch),  # another arch: allow
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    for i, number in enumerate(numbers):
        program.append((_JEQ_K, (m - 1 - i) + 3 + n, 0, number))  # always EPERM
    program += [
        (_JEQ_K, 0, 1 + n, fcntl),  # not fcntl: allow
        (_LD_W_ABS, 0, 0, 24),  # args[1], low 32 bits (little endian)
    ]
    for i, cmd in enumerate(_FCNTL_SET_LOCK):
        program.append((_JEQ_K, n - i, 0, cmd))  # a lock command: EPERM
    program += [
        (_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        (_RET_K, 0, 0, _SECCOMP_RET_ERRNO | _EPERM),
    ]
    return b"".join(_BPF.pack(*ins) for ins in program)


def _in_tops(path: str, tops: list[str]) -> bool:
    return any(_under(path, t) and path != t for t in tops)


def prepare_submission(submission_dir: str | os.PathLike) -> None:
    """Make the submission readable by the sandbox user."""
    for root, _dirs, files in os.walk(submission_dir):
        os.chmod(root, os.stat(root).st_mode | 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


def prepare_dirs(
    submission_dir: str | os.PathLike, scratch_dir: str | os.PathLike, uid: int | None = None
) -> None:
    """Make the submission readable and the scratch directory writable by the sandbox user."""
    uid = sandbox_uid() if uid is None else uid
    os.makedirs(scratch_dir, exist_ok=True)
    os.chown(scratch_dir, uid, uid)
    os.chmod(scratch_dir, 0o700)
    prepare_submission(submission_dir)


def matplotlib_font_list() -> str | None:
    """The grader's matplotlib font list (built if missing), or ``None``.

    A fresh kernel home without it makes matplotlib scan every font again at the first
    figure, about 0.4 s per notebook. The list only names font files, which the sandbox can
    read anyway.
    """
    try:
        import matplotlib
        from matplotlib import font_manager  # builds and saves the list if it is missing
    except ImportError:
        return None
    name = f"fontlist-v{font_manager.FontManager.__version__}.json"
    source = os.path.join(matplotlib.get_cachedir(), name)
    return source if os.path.exists(source) else None


def seed_matplotlib_cache(directory: str, uid: int) -> None:
    """Copy the grader's matplotlib font list into ``directory`` (a kernel's
    ``MPLCONFIGDIR`` outside bubblewrap), owned by ``uid``."""
    source = matplotlib_font_list()
    os.makedirs(directory, exist_ok=True)
    if source:
        shutil.copyfile(source, os.path.join(directory, os.path.basename(source)))
    for path in (directory, *(os.path.join(directory, n) for n in os.listdir(directory))):
        os.chown(path, uid, uid)


#: Whether this kernel lists each task's children (CONFIG_PROC_CHILDREN): the watchdog then
#: walks only its sandbox's processes (orphans are adopted by the sandbox's own init, which
#: bubblewrap's new PID namespace puts inside the tree) instead of every process's parent.
_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants: by each task's ``children`` file where the kernel has
    it (a few reads per scan), else by a scan of every process's parent."""
    if not _PROC_CHILDREN:
        return _tree_by_scan(root)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    todo += [int(child) for child in fh.read().split()]
            except (OSError, ValueError):
                continue
    return tree


def _tree_by_scan(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


#: What the watchdog counts for each file or folder in a watched directory, whatever its size.
_BLOCK = 4096


class Watchdog:
    """Kills a sandbox (the process ``pid`` and all its descendants) when together they hold
    more than ``memory`` bytes of resident memory, or the files in ``directories`` grow
    past ``disk`` bytes. ``reason`` says why it struck.

    Without ``count_root`` the memory of ``pid`` itself is left out: a warm kernel's init
    (:mod:`~coursekit.instructor.nursery`) holds only pages it shares with the kernel, which
    would otherwise be counted twice."""

    def __init__(
        self, pid: int, memory: int, directories=(), disk: int = 0, every=0.1, count_root=True
    ):
        self.pid, self.memory, self.directories, self.disk = pid, memory, directories, disk
        self._count_root = count_root
        self.reason: str | None = None
        self._stop = threading.Event()
        self._every = every
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{pid}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _tree(self) -> list[int]:
        return process_tree(self.pid)

    def _tree_by_scan(self) -> list[int]:
        return _tree_by_scan(self.pid)

    def _resident(self, pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm", "rb") as fh:
                    total += int(fh.read().split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                continue
        return total

    def _disk(self) -> int:
        """Bytes of the files under ``directories``, at any depth; every entry counts at
        least one block, so that a flood of empty files or folders is counted too."""
        total, todo = 0, list(self.directories)
        while todo and total <= self.disk:
            try:
                with os.scandir(todo.pop()) as entries:
                    for entry in entries:
                        total += _BLOCK
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            pids = self._tree()
            if len(pids) == 1 and not os.path.exists(f"/proc/{self.pid}"):
                return
            counted = pids if self._count_root else [p for p in pids if p != self.pid]
            if self._resident(counted) > self.memory:
                self.reason = (
                    f"its processes together used more than {self.memory / 1024**3:.1f} GiB "
                    "of memory"
                )
            elif self.disk and self._disk() > self.disk:
                self.reason = f"it wrote more than {self.disk / 1024**2:.0f} MiB of files"
            if self.reason:
                for pid in reversed(pids):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        continue
                return


class SandboxedKernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the kernel answers and its status messages
    for that answer have come through IOPub.

    jupyter_client's ``wait_for_ready`` then waits for 0.2 s of silence on IOPub to flush
    it, on every kernel start. The messages it would flush are those of the ``kernel_info``
    request (nbclient reads only what answers its own requests anyway); they end with the
    kernel's ``idle`` status for that request, so the wait can end there.
    """

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        from queue import Empty

        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
                while reply["parent_header"].get("msg_id") != request:
                    reply = await self.shell_channel.get_msg(timeout=1)
                while True:  # IOPub is connected once the request's statuses come through
                    msg = await self.iopub_channel.get_msg(timeout=0.2)
                    if (
                        msg["msg_type"] == "status"
                        and msg["parent_header"].get("msg_id") == request
                        and msg["content"].get("execution_state") == "idle"
                    ):
                        self._handle_kernel_info_reply(reply)
                        return
            except Empty:
                pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    wait_for_ready = _async_wait_for_ready  # the async client binds the name to its own


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in :func:`sandboxed_command`'s sandbox.

    Configure it with ``scratch_dir`` (required; the connection file and bubblewrap's
    arguments, never seen by the kernel), ``submission_dir`` (default: the working
    directory the notebook runs in), ``hide`` and the limits.
    """

    scratch_dir = Unicode("", help="Grader-side scratch directory of the kernel.").tag(config=True)
    submission_dir = Unicode("", help="Student's directory (default: cwd).").tag(config=True)
    hide = List(Unicode(), help="More directories to make invisible.").tag(config=True)
    memory = Int(Limits.memory).tag(config=True)
    processes = Int(Limits.processes).tag(config=True)
    cpu_seconds = Int(Limits.cpu_seconds).tag(config=True)
    output_bytes = Int(Limits.output_bytes).tag(config=True)
    disk = Int(Limits.disk).tag(config=True)
    client_class = DottedObjectName("coursekit.instructor.sandbox.SandboxedKernelClient")
    client_factory = Type(klass=AsyncKernelClient, default_value=SandboxedKernelClient)
    warm = Bool(True, help="Fork kernels from the grading process's nursery where it can run.").tag(
        config=True
    )

    def __init__(self, **kwargs):
        from coursekit.instructor.nursery import new_stage

        super().__init__(**kwargs)
        if not self.scratch_dir:
            raise ValueError("SandboxedKernelManager.scratch_dir must be set, got ''")
        os.makedirs(self.scratch_dir, exist_ok=True)
        self.transport = "ipc"
        # Unix socket paths are limited to 107 bytes: keep them in a short private directory.
        self._stage = new_stage()
        self._socket_dir = os.path.join(self._stage, "s")
        # Removed at shutdown, or when the manager goes away after a kernel that died.
        weakref.finalize(self, shutil.rmtree, self._stage, True)
        self.ip = os.path.join(self._socket_dir, "k")
        self.connection_file = os.path.join(self.scratch_dir, "kernel.json")
        self.watchdog: Watchdog | None = None

    @property
    def limits(self) -> Limits:
        return Limits(
            memory=self.memory,
            processes=self.processes,
            cpu_seconds=self.cpu_seconds,
            output_bytes=self.output_bytes,
            disk=self.disk,
        )

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        submission = os.path.realpath(self.submission_dir or kw.get("cwd") or os.getcwd())
        uid = sandbox_uid()
        prepare_submission(submission)
        os.chown(self._socket_dir, uid, uid)
        if os.path.exists(self.connection_file):
            os.chown(self.connection_file, uid, uid)
        package = kernel_package(kernel_cmd[0])
        if bwrap_usable():
            home = HOME
            font_list = matplotlib_font_list()
            mounts = [
                Mount(submission, SUBMISSION),
                Mount(None, HOME, writable=True, size=self.disk),
                Mount(None, f"{HOME}/.matplotlib", writable=True),
                Mount(self.connection_file, CONNECTION),
                Mount(self._socket_dir, self._socket_dir, writable=True),
            ]
            if font_list:
                target = f"{HOME}/.matplotlib/{os.path.basename(font_list)}"
                mounts.append(Mount(font_list, target))
            cmd = [CONNECTION if a == self.connection_file else a for a in kernel_cmd]
            cwd = SUBMISSION
        else:
            home = os.path.join(self.scratch_dir, "home")
            prepare_dirs(submission, home, uid)
            seed_matplotlib_cache(os.path.join(home, ".matplotlib"), uid)
            mounts, cmd, cwd = [], list(kernel_cmd), submission
        kw["env"] = sandbox_env(
            {"HOME": home, "TMPDIR": home, "MPLCONFIGDIR": f"{home}/.matplotlib"},
            threads=kernel_threads(),
        )
        if bwrap_usable() and self.warm:
            kernel = self._fork_warm(kernel_cmd, submission, uid, package, kw["env"], mounts)
            if kernel is not None:
                self.provisioner.process, self.provisioner.pid = kernel, kernel.pid
                self.provisioner.pgid, self.provisioner.cwd = None, "/"
                self._watch(kernel.pid, warm=True)
                self._reconcile_connection_info(self.provisioner.connection_info)
                await self._sockets_bound(kernel)
                return None
        argv = sandboxed_command(
            cmd,
            mounts=mounts,
            cwd=cwd,
            limits=self.limits,
            hide=tuple(self.hide),
            uid=uid,
            package=package,
            args_dir=self.scratch_dir,
            fallback_dirs=(submission, home),
        )
        kw["cwd"] = "/" if bwrap_usable() else submission
        connection_info = await super()._async_launch_kernel(argv, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            self._watch(process.pid)
            await self._sockets_bound(process)
        return connection_info

    async def _sockets_bound(self, process, seconds: float = 60.0) -> None:
        """Return once the kernel has bound its five sockets (or died, or ``seconds``
        passed; nbclient then reports it). A client that connects before a socket exists
        retries only after ZeroMQ's reconnect interval (0.1 s): a wait on every notebook."""
        import asyncio

        ports = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        paths = [f"{self.ip}-{getattr(self, port)}" for port in ports]
        deadline = time.monotonic() + seconds
        while not all(map(os.path.exists, paths)) and time.monotonic() < deadline:
            if process.poll() is not None:
                return
            await asyncio.sleep(0.002)

    def _watch(self, pid: int, warm: bool = False) -> None:
        self.watchdog = Watchdog(
            pid, self.memory, directories=(self._socket_dir,), disk=self.disk, count_root=not warm
        )

    def _fork_warm(self, kernel_cmd, submission, uid, package, env, mounts):
        """The kernel forked by this process's nursery, or ``None`` to start it cold (the
        command is not ipykernel's usual one, or no nursery can run here)."""
        from coursekit.instructor import nursery

        launcher, options = kernel_cmd[1:5], kernel_cmd[5:]
        if launcher != ["-m", "ipykernel_launcher", "-f", self.connection_file] or not all(
            o.startswith("--") for o in options
        ):
            return None
        python, hide, threads = kernel_cmd[0], tuple(self.hide), kernel_threads()
        key = (python, package, hide, threads, uid)
        shared = nursery.Nursery.shared(
            key, lambda: self._start_nursery(python, package, hide, threads, uid, mounts)
        )
        if shared is None:
            return None
        order = {
            "uid": uid,
            "submission": SUBMISSION,
            "home": HOME,
            "home_dirs": [".matplotlib"],
            "home_files": [
                m.target[len(HOME) + 1 :]
                for m in mounts
                if m.target.startswith(f"{HOME}/.matplotlib/")
            ],
            "disk": self.disk,
            "cwd": SUBMISSION,
            "env": env,
            "argv": ["-f", f"{nursery.RUN}/{os.path.basename(self.connection_file)}", *options],
            "limits": self.limits.rlimits(),
        }
        try:
            return shared.spawn(self._stage, submission, self.connection_file, order)
        except nursery.NotStaged as exc:
            log.info("this kernel starts cold: its files cannot be staged exactly (%s)", exc)
            return None
        except (OSError, nursery.NurseryUnavailable) as exc:
            nursery.Nursery.refuse(key, f"the nursery could not fork a kernel: {exc}")
            return None

    def _start_nursery(self, python, package, hide, threads, uid, mounts):
        """A new :class:`~coursekit.instructor.nursery.Nursery`: the kernel's sandbox with
        the stages of this process in place of one student's files."""
        from coursekit.instructor import nursery

        stages = nursery.staging_root()
        keep = [m for m in mounts if m.target in (HOME, f"{HOME}/.matplotlib")]
        keep += [m for m in mounts if m.target.startswith(f"{HOME}/.matplotlib/")]
        argv = sandboxed_command(
            [python, "-c", "from coursekit.instructor.nursery import serve; serve()"],
            mounts=[
                Mount(None, SUBMISSION),
                Mount(None, nursery.RUN),
                Mount(None, nursery.KEEP),
                *keep,
                Mount(stages, stages, writable=True),
            ],
            cwd="/",
            limits=self.limits,
            hide=hide,
            uid=uid,
            package=package,
            args_dir=self.scratch_dir,
            nursery=True,
        )
        env = sandbox_env(
            {
                "HOME": HOME,
                "TMPDIR": HOME,
                "MPLCONFIGDIR": f"{HOME}/.matplotlib",
                # As ipykernel sets it before a cold kernel's student imports matplotlib.
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            },
            threads=threads,
        )
        return nursery.Nursery(key=(python, package, hide, threads, uid), argv=argv, env=env)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # A killed sandbox is gone within milliseconds: jupyter_client's steps of 0.1 s
        # would add a tenth of a second to every notebook.
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.watchdog is not None:
            self.watchdog.stop()
        if not restart:
            shutil.rmtree(self._stage, ignore_errors=True)

    async def _async_signal_kernel(self, signum: int) -> None:
        # A signal to the sandbox's process group would stop bubblewrap, not the kernel (it
        # runs in its own session): interrupt with a message, as Windows kernels do.
        if signum == signal.SIGINT and self.has_kernel:
            self._connect_control_socket()
            self.session.send(self._control_socket, self.session.msg("interrupt_request"))
            return
        await super()._async_signal_kernel(signum)


def runner_command(
    tasks,
    *,
    scratch_dir: str,
    runtime_root: str,
    hide: tuple[str, ...],
    limits: Limits,
    python: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` of the sandboxed process that runs the hidden cases of ``tasks``
    (:mod:`coursekit.grading.runner`), with coursekit replaced by the runtime of
    :func:`coursekit.instructor.hidden.build_runtime` and PyTorch hidden unless a task
    needs it."""
    import importlib.util

    from coursekit.instructor.hidden import build_runtime

    python = python or kernel_python()
    package = kernel_package(python)
    from coursekit.grading.core import get_task, task_names

    # Every task's references are disabled (an earlier assignment's softmax must not serve
    # a later one's loss); only a task graded on notebook values (a trained model, which may
    # use the whole library) gets a runtime without its own references alone.
    if any(t.notebook_state for t in tasks):
        disabled = list(tasks)
    else:
        disabled = [get_task(name) for name in task_names()]
    runtime = str(build_runtime(runtime_root, disabled))
    uid = sandbox_uid() + RUNNER_UID_OFFSET
    cmd = [python, "-I", "-m", "coursekit.grading.runner"]
    limits = Limits(
        memory=limits.memory,
        processes=8,
        cpu_seconds=limits.cpu_seconds,
        output_bytes=limits.output_bytes,
        disk=64 * 1024**2,
    )
    if bwrap_usable():
        mounts = [Mount(None, HOME, writable=True, size=limits.disk), Mount(runtime, package)]
        torch = importlib.util.find_spec("torch")
        if torch is not None and torch.origin and not any(t.needs_torch for t in tasks):
            mounts.append(Mount(None, os.path.dirname(torch.origin), size=4096))
        home, cwd = HOME, HOME
    else:
        # Without bubblewrap the runtime goes first on the runner's path (the references
        # stay readable on disk: the fallback's warning says so), as the sandbox user.
        home = cwd = tempfile.mkdtemp(prefix="runner-", dir=scratch_dir)
        os.chown(home, uid, uid)
        mounts = []
        boot = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from coursekit.grading.runner import main; main()"
        )
        cmd = [python, "-I", "-c", boot, os.path.dirname(runtime)]
    env = sandbox_env({"HOME": home, "TMPDIR": home, "PYTHONDONTWRITEBYTECODE": "1"})
    argv = sandboxed_command(
        cmd,
        mounts=mounts,
        cwd=cwd,
        limits=limits,
        hide=hide,
        uid=uid,
        package=package,
        args_dir=scratch_dir,
        fallback_dirs=(home,),
    )
    return argv, env


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with a sandboxed kernel and hidden tests judged apart.

    Before the notebook runs, hidden-test regions are removed from the cells (the kernel
    never sees their source or seeds). After it ran, every hidden check is graded by
    :func:`coursekit.instructor.hidden.run_hidden_checks`, and each graded test cell's
    outputs are rewritten so that nbgrader's score is coursekit's: an error the kernel
    raised in the cell becomes a stderr note starting with ``public test failed:``, a value
    the cell returned becomes plain display data (nbgrader would read it as a score), and a
    failed hidden check appends a ``GradingError``. The statuses go to
    :data:`VERDICTS_FILE` in the scratch directory.
    """

    notebook_timeout = Int(Limits.notebook_seconds, help="Wall time of the notebook.").tag(
        config=True
    )
    max_output_bytes = Int(
        Limits.notebook_output_bytes, help="Output kept for the whole notebook."
    ).tag(config=True)
    secret_file = Unicode("", help="The course secret hidden inputs are drawn from.").tag(
        config=True
    )
    runtime_root = Unicode("", help="Cache of the hidden-case runtimes (default: scratch).").tag(
        config=True
    )

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        # A grading kernel has nothing to save: killing it (bubblewrap takes the kernel with
        # it) saves the graceful shutdown's wait, about 0.4 s per notebook.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)
        self._deadline = float("inf")
        self._output_left = self.max_output_bytes
        self._truncated: set[int] = set()
        self._dead: str | None = None
        self._export_index: int | None = None

    def _get_timeout(self, cell):
        """The cell's own timeout, cut to what is left of the notebook's (at least 1 s)."""
        left = self._deadline - time.monotonic()
        return max(1.0, min(super()._get_timeout(cell) or float("inf"), left))

    def preprocess_cell(self, cell, resources, index):
        if self._deadline == float("inf"):  # the clock starts with the first cell
            self._deadline = time.monotonic() + self.notebook_timeout
        if cell.cell_type != "code":
            return cell, resources
        if self._dead is not None:
            cell.outputs = [nbformat_error("NotRun", f"not run: {self._dead}")]
            return cell, resources
        if time.monotonic() >= self._deadline:
            cell.outputs = [
                nbformat_error(
                    "NotebookTimeout",
                    f"not run: the notebook used up its {self.notebook_timeout} s of wall "
                    "time before this cell",
                )
            ]
            return cell, resources
        from nbclient.exceptions import DeadKernelError

        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            watchdog = getattr(self.km, "watchdog", None)
            why = watchdog.reason if watchdog is not None and watchdog.reason else None
            self._dead = "the kernel had died in an earlier cell" + (f" ({why})" if why else "")
            cell.outputs.append(
                nbformat_error("DeadKernelError", "the kernel died" + (f": {why}" if why else ""))
            )
            return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        if cell_index == self._export_index:
            return super().output(outs, msg, display_id, cell_index)
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
        from coursekit.grading.state import MIME
        from coursekit.instructor import hidden

        scratch = self.config.SandboxedKernelManager.get("scratch_dir")
        if not scratch:
            raise ValueError("SandboxedKernelManager.scratch_dir must be set, got nothing")
        os.makedirs(scratch, exist_ok=True)
        self._deadline = float("inf")
        self._output_left, self._truncated, self._dead = self.max_output_bytes, set(), None
        # The kernel never sees hidden-test source.
        tests: dict[int, tuple[str, list]] = {}
        for index, cell in enumerate(nb.cells):
            if _is_test(cell):
                tests[index] = (cell.source, hidden.hidden_checks(cell.source))
                cell.source = hidden.strip_hidden(cell.source)
        units = hidden.extract_units(
            (i + 1, c.source)
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and i not in tests
        )
        checks = [c for _, found in tests.values() for c in found]
        factory = self._runner_factory()
        names = _state_request(checks, units)
        self._export_index = None
        if names is not None:
            from nbformat.v4 import new_code_cell

            nb.cells.append(
                new_code_cell(
                    f"__import__('coursekit.grading.state', fromlist=['export']).export({names!r})"
                )
            )
            self._export_index = len(nb.cells) - 1
        secret = self._submission_secret(units) if checks else None
        # The runners start now, so their start-up overlaps the notebook; they get the
        # student's definitions only after the kernel is gone (hidden.prestart). The
        # reference's answers, which need no student code, are computed meanwhile too.
        started = hidden.prestart(checks, factory)
        references = _compute_references(checks, secret)
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        except BaseException:
            hidden.close_all(started)
            raise
        finally:
            references.join()
            exported = None
            if self._export_index is not None:
                export_cell = nb.cells.pop(self._export_index)
                exported = _exported_state(export_cell, MIME)

                self._export_index = None
            for index, (source, _) in tests.items():
                nb.cells[index].source = source
        began = time.perf_counter()
        # The definitions go to the runners only now, after the kernel is gone: nothing the
        # notebook ran can reach a runner that holds them (a shared file lock is a channel).
        try:
            verdicts = self._grade_hidden(checks, units, exported, factory, started, secret)
        finally:
            hidden.close_all(started)
        self._add_timing(scratch, time.perf_counter() - began)
        statuses = {}
        for index, (_, found) in tests.items():
            cell = nb.cells[index]
            public_error = _neutralize_outputs(cell)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", str(index))
            statuses[grade_id] = _cell_status(found, verdicts, public_error)
            if statuses[grade_id]["status"] != "passed":
                # A cell without a hidden check is judged by its public asserts, as nbgrader
                # would (coursekit validate warns about such cells).
                cell.outputs.append(nbformat_error("GradingError", statuses[grade_id]["message"]))
        self._write_verdicts(scratch, resources, statuses)
        return nb, resources

    def _runner_factory(self):
        from coursekit.instructor import hidden

        manager = self.config.SandboxedKernelManager
        scratch = manager.get("scratch_dir")
        limits = Limits(
            memory=manager.get("memory", Limits.memory),
            cpu_seconds=manager.get("cpu_seconds", Limits.cpu_seconds),
            output_bytes=manager.get("output_bytes", Limits.output_bytes),
        )
        hide = tuple(manager.get("hide", ()))
        runtimes = self.runtime_root or os.path.join(scratch, "runtimes")
        return hidden.ProcessFactory(
            lambda tasks: runner_command(
                tasks, scratch_dir=scratch, runtime_root=runtimes, hide=hide, limits=limits
            ),
            watch=lambda pid: Watchdog(pid, limits.memory),
        )

    def _submission_secret(self, units) -> bytes | None:
        """The key this submission's hidden inputs are drawn with (None without a secret)."""
        from coursekit.instructor import hidden

        if not self.secret_file:
            return None
        course_secret = hidden.load_secret(os.path.dirname(self.secret_file))
        return hidden.submission_secret(course_secret, units)

    def _grade_hidden(self, checks, units, exported, factory, started, secret):
        from coursekit.grading.trusted import integrity_problems
        from coursekit.instructor import hidden

        if not checks:
            return {}
        timeout = float(self.timeout or 300)
        verdicts = hidden.run_hidden_checks(
            checks,
            units,
            factory,
            secret=secret,
            timeout=timeout,
            state=(lambda _names: exported),
            started=started,
        )
        problems = integrity_problems([src for _, src in units.units], [c.task for c in checks])
        for check in checks:
            if check.task in problems and verdicts[check].passed:
                verdicts[check] = hidden.TaskVerdict(check.task, "integrity", problems[check.task])
        return verdicts

    def _add_timing(self, scratch, seconds: float) -> None:
        """Add the wall time the hidden step took after the notebook to
        :data:`TIMINGS_FILE` (what grading spends beyond plain nbgrader)."""
        path = Path(scratch) / TIMINGS_FILE
        try:
            total = float(json.loads(path.read_text()).get("hidden", 0.0))
        except (OSError, ValueError, AttributeError):
            total = 0.0
        path.write_text(json.dumps({"hidden": total + seconds}))

    def _write_verdicts(self, scratch, resources, statuses) -> None:
        name = (resources or {}).get("unique_key") or "notebook"
        path = Path(scratch) / VERDICTS_FILE
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError):
            existing = {}
        existing[name] = statuses
        path.write_text(json.dumps(existing, indent=1))


def _compute_references(checks, secret) -> threading.Thread:
    """A started thread that stores the reference's answers to ``checks`` for the judge
    (:func:`coursekit.grading.core.prepare_expected`); join it before judging. A reference
    that fails here is left to the judge, which computes it again and reports the failure."""
    from coursekit.grading.core import get_task, prepare_expected

    def work() -> None:
        for check in checks:
            try:
                prepare_expected(get_task(check.task), check.seed, secret)
            except Exception:  # noqa: BLE001 - see the docstring
                continue

    thread = threading.Thread(target=work, name="coursekit-references", daemon=True)
    thread.start()
    return thread


_SEVERITY = ("integrity", "missing", "error", "timeout", "failed", "passed")


def _state_request(checks, units) -> list[str] | None:
    from coursekit.grading.core import get_task
    from coursekit.instructor.hidden import state_names

    roots = []
    for check in checks:
        try:
            if get_task(check.task).notebook_state:
                roots += check.names
        except KeyError:
            continue
    return state_names(units, roots) if roots else None


def _exported_state(cell, mime: str) -> str | None:
    for out in cell.get("outputs", []):
        data = out.get("data", {}) if out.get("output_type") == "display_data" else {}
        if mime in data:
            value = data[mime]
            text = value if isinstance(value, str) else json.dumps(value)
            return text if len(text) <= 256 * 1024**2 else None
    return None


def _neutralize_outputs(cell) -> str | None:
    """Make the kernel's outputs of a test cell unable to decide its score: an error
    becomes a ``public test failed:`` stderr note (returned), a returned value becomes
    display data."""
    from nbformat.v4 import new_output

    outputs, error = [], None
    for out in cell.outputs:
        if out.output_type == "error":
            error = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
            outputs.append(
                new_output("stream", name="stderr", text=f"public test failed: {error}\n")
            )
        elif out.output_type == "execute_result":
            outputs.append(new_output("display_data", data=out.get("data", {})))
        else:
            outputs.append(out)
    cell.outputs = outputs
    return error


def _cell_status(found, verdicts, public_error) -> dict:
    if not found:
        # A test cell without a hidden check is judged by its public asserts.
        if public_error:
            return {"status": "failed", "message": f"public test failed: {public_error}"}
        return {"status": "passed", "message": ""}
    results = [verdicts[c] for c in found if c in verdicts]
    worst = min(results, key=lambda v: _SEVERITY.index(v.status), default=None)
    if worst is None or worst.passed:
        return {"status": "passed", "message": ""}
    message = "\n".join(v.message for v in results if not v.passed)
    return {"status": worst.status, "message": message}


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


def nbformat_error(ename: str, evalue: str):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def configure_sandbox(
    config,
    *,
    scratch_dir,
    hide=(),
    limits: Limits = Limits(),
    secret_file=None,
    runtime_root=None,
) -> None:
    """Make nbgrader's ``Autograde`` run every kernel sandboxed, with hidden tests graded
    apart (:class:`SandboxedExecute`), in coursekit's pipeline
    (:func:`coursekit.grading.nbgrader_plugins.grading_pipeline`).

    ``config`` is the course's traitlets ``Config`` (changed in place); ``hide`` should name
    the course directory and the grader's scratch root; ``secret_file`` is the course
    secret (:func:`coursekit.instructor.hidden.load_secret`); ``runtime_root`` where the
    runtimes of the hidden-case processes are cached (shared by a run's submissions).
    """
    from coursekit.grading.nbgrader_plugins import grading_pipeline

    config.SandboxedKernelManager.scratch_dir = str(scratch_dir)
    config.SandboxedKernelManager.hide = [str(p) for p in hide]
    config.SandboxedKernelManager.memory = limits.memory
    config.SandboxedKernelManager.processes = limits.processes
    config.SandboxedKernelManager.cpu_seconds = limits.cpu_seconds
    config.SandboxedKernelManager.output_bytes = limits.output_bytes
    config.SandboxedKernelManager.disk = limits.disk
    config.SandboxedExecute.notebook_timeout = limits.notebook_seconds
    config.SandboxedExecute.max_output_bytes = limits.notebook_output_bytes
    if secret_file:
        config.SandboxedExecute.secret_file = str(secret_file)
    if runtime_root:
        config.SandboxedExecute.runtime_root = str(runtime_root)
    grading_pipeline(config, execute=SandboxedExecute)
