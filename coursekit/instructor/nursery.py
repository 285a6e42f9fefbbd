"""Warm kernels: the kernel's libraries imported once per grading worker, not once per student.

A fresh kernel spends most of its CPU importing: IPython, ipykernel, jupyter_client, numpy,
matplotlib and coursekit take about 1 s of the 1.6 s that a whole assignment notebook costs.
A *nursery* is a process in a bubblewrap sandbox of its own that imports them once, runs no
student code, and forks each student's kernel. Every fork builds the sandbox of
:mod:`coursekit.instructor.sandbox` around itself before it runs anything of the student's:

1. ``unshare``: new mount, process, network, IPC and host-name namespaces; the kernel is the
   first process of its own process namespace, so it sees no other process, and all its
   processes die with it;
2. its own mounts: the student's submission read only at ``/tmp/sandbox/submission``, the
   connection file at ``/tmp/sandbox/run``, a fresh in-memory home of
   :attr:`~coursekit.instructor.sandbox.Limits.disk` bytes, a fresh ``/proc``, and an empty
   file system over the nursery's staging directory (no other student's files);
3. the limits of :class:`~coursekit.instructor.sandbox.Limits` (``setrlimit``), then the
   sandbox user: no groups, its own uid, so every capability is gone, and no new privileges;
4. the seccomp filter without file locks is bubblewrap's, inherited from the nursery.

The nursery itself runs as root in bubblewrap with only the capabilities that step 1 and 3
need (``CAP_SYS_ADMIN``, ``CAP_SETUID``, ``CAP_SETGID``), reads its orders on a pipe from the
grader, and dies with the grader. The grader finds each kernel's process by its process
namespace ids, watches its memory with the same :class:`~coursekit.instructor.sandbox.Watchdog`
and kills it with ``SIGKILL``, which takes the kernel's whole namespace with it.

What a fork inherits is only what the nursery imported: module state before any student
code ran. Python's ``random`` reseeds itself in a fork, and numpy's global generator is
reseeded here, so two students' kernels never share random numbers. ``matplotlib``'s inline
backend is not imported before the fork: it hooks into the kernel's shell when it loads.

:class:`Nursery` is the grader's side; :func:`serve` runs in the sandbox
(``python -c "from coursekit.instructor.nursery import serve; serve()"``). Where the
nursery cannot start or fork (bubblewrap missing, a container without the privilege), the
kernel manager starts a cold kernel in a sandbox of its own, as before, and says so once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

#: What the nursery imports before it forks (a module that is missing is skipped): what
#: every kernel imports as it starts (ipykernel with its debugger, IPython's inspector and
#: history store), what plotting needs short of the inline backend, and what the course's
#: notebooks import.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.debugger",
    "IPython.core.oinspect",
    "IPython.core.pylabtools",
    "IPython.core.completerlib",
    "IPython.core.logger",
    "IPython.extensions.storemagic",
    "tornado.platform.asyncio",
    "sqlite3",
    "numpy",
    "numpy.random",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
    "PIL.BmpImagePlugin",
    "PIL.GifImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.PpmImagePlugin",
    "coursekit",
    "coursekit.grading",
    "coursekit.gradcheck",
    "coursekit.data",
    "coursekit.layers",
    "coursekit.losses",
    "coursekit.models",
    "coursekit.normalization",
    "coursekit.dropout",
    "coursekit.optim",
    "coursekit.trainer",
)
#: Where a fork moves its own staging directory while it hides the others.
KEEP = "/tmp/sandbox/keep"
#: The kernel's connection directory inside the sandbox.
RUN = "/tmp/sandbox/run"
#: Parts of a fresh ``/proc`` put back read only, as bubblewrap does.
_PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")

# Linux's constants (linux/sched.h, linux/mount.h, linux/prctl.h).
_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x2000, 0x4000, 0x40000
_MNT_DETACH = 2
_PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 4, 38


# -- in the sandbox ---------------------------------------------------------------------------
def serve() -> None:
    """The nursery's loop: import :data:`PRELOAD`, answer ``ready``, then fork one kernel
    per order read from standard input (one JSON object per line) and answer each with the
    kernel's process id in the nursery's namespace, or the error that stopped it."""
    orders = os.fdopen(os.dup(0), "rb", buffering=0)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # an import that prints must not write into the answers
    os.close(null)
    loaded = _preload()
    _answer(answers, {"ready": True, "preloaded": loaded})
    for line in orders:
        _reap()
        try:
            order = json.loads(line)
            _answer(answers, {"pid": _spawn(order, keep_open=(orders, answers))})
        except Exception as exc:  # noqa: BLE001 - the grader falls back to a cold kernel
            _answer(answers, {"error": f"{type(exc).__name__}: {exc}"})


def _preload() -> list[str]:
    """Import :data:`PRELOAD`; what the imports print (debugpy warns about frozen modules)
    goes nowhere, as a kernel's own start-up chatter does."""
    import importlib

    loaded = []
    stderr = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the kernel imports it itself, or fails as it would
                continue
            loaded.append(name)
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
    return loaded


def _answer(stream, message: dict) -> None:
    stream.write(json.dumps(message).encode() + b"\n")


def _reap() -> None:
    """Collect the exit of every fork that has finished (they are not waited for)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _spawn(order: dict, keep_open) -> int:
    """Fork the kernel of ``order``; its pid in the nursery's namespace once it is ready to
    run the kernel (its sandbox built), or ``RuntimeError`` with the step that failed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: new namespaces, then the kernel as their first process
        code = 1
        try:
            os.close(read)
            for stream in keep_open:
                stream.close()
            _unshare(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS)
            kernel = os.fork()
            if kernel == 0:
                _become_kernel(order, write)  # never returns
            os.write(write, f"pid {kernel}\n".encode())
            os.close(write)
            _, status = os.waitpid(kernel, 0)
            code = os.waitstatus_to_exitcode(status) & 0xFF
        except BaseException as exc:  # noqa: BLE001 - reported to the nursery, then gone
            _report(write, exc)
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        said = fh.read().decode(errors="replace").split("\n")
    kernel_pid = next((int(s[4:]) for s in said if s.startswith("pid ")), None)
    if "ok" not in said or kernel_pid is None:
        problem = next((s for s in said if s.startswith("error ")), "error the fork gave no answer")
        raise RuntimeError(problem[6:])
    return kernel_pid


def _report(fd: int, exc: BaseException) -> None:
    try:
        os.write(fd, f"error {type(exc).__name__}: {exc}\n".encode())
    except OSError:
        pass


def _become_kernel(order: dict, report: int) -> None:
    """Build this process's sandbox (module docstring), tell the nursery ``ok`` on
    ``report``, and become the init of the kernel's namespace: fork the kernel, collect
    every process that ends in the namespace, and leave when the kernel does (which ends
    them all, as bubblewrap's init does). Never returns."""
    import signal

    code = 1
    try:
        _sandbox_self(order)
        os.setsid()  # a session of its own, as bubblewrap's --new-session gives
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Python's handler would let a signal end it
        os.write(report, b"ok\n")
        os.close(report)
        kernel = os.fork()
        if kernel == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                _run_kernel(order)
                code = 0
            finally:
                os._exit(code)
        while True:
            pid, status = os.wait()
            if pid == kernel:
                code = os.waitstatus_to_exitcode(status) & 0xFF
                break
    except BaseException as exc:  # noqa: BLE001
        _report(report, exc)
    finally:
        os._exit(code)


def _sandbox_self(order: dict) -> None:
    """Steps 2 and 3 of the module docstring, for the process that becomes the kernel's init
    (step 1, the namespaces, was its parent's)."""
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount_stage(order["stage"], order["submission"])
    _fresh_home(order)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    for covered in _PROC_READ_ONLY:  # as bubblewrap covers them (a kernel's knobs)
        path = f"/proc/{covered}"
        if os.path.exists(path):
            _mount(path, path, None, _MS_BIND | _MS_REC)
            _mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    _become_sandbox_user(order)
    os.chdir(order["cwd"])
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _mount_stage(stage: str, submission: str) -> None:
    """Hold this kernel's stage aside, hide the nursery's stages, and put back only what the
    kernel needs: its sockets' directory at its own path, the submission and the connection
    file where the kernel expects them (read only)."""
    _mount(stage, KEEP, None, _MS_BIND | _MS_REC)
    _mount("tmpfs", os.path.dirname(stage), "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=65536")
    os.makedirs(f"{stage}/s")
    _mount(f"{KEEP}/s", f"{stage}/s", None, _MS_BIND)
    ro = _MS_NOSUID | _MS_NODEV | _MS_RDONLY
    for source, target in ((f"{KEEP}/submission", submission), (f"{KEEP}/run", RUN)):
        _mount(source, target, None, _MS_BIND | _MS_REC)
        _mount(None, target, None, _MS_BIND | _MS_REMOUNT | ro)
    _umount(KEEP)


def _fresh_home(order: dict) -> None:
    """An empty in-memory home of ``disk`` bytes owned by the sandbox user, with the files
    of the nursery's home that ``home_files`` names (matplotlib's font list), and an empty
    read-only ``/dev/shm``."""
    home, disk, uid = order["home"], int(order["disk"]), int(order["uid"])
    carried = {}
    for name in order.get("home_files", ()):
        with open(os.path.join(home, name), "rb") as fh:
            carried[name] = fh.read()
    _mount("tmpfs", home, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode=0700,size={disk}")
    # The nursery's /dev/shm is shared by its forks: each kernel gets an empty one, read
    # only as in a cold kernel's bubblewrap (memory there would count in no process).
    _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_RDONLY, "mode=0755,size=4096")
    for directory in order.get("home_dirs", ()):
        os.makedirs(os.path.join(home, directory), exist_ok=True)
    for name, content in carried.items():
        with open(os.path.join(home, name), "wb") as fh:
            fh.write(content)
    for folder, _dirs, files in os.walk(home):
        for path in (folder, *(os.path.join(folder, f) for f in files)):
            os.chown(path, uid, uid)


def _become_sandbox_user(order: dict) -> None:
    """The kernel's limits, then its user: no groups, its uid (which drops every
    capability), no new privileges; checked."""
    import resource

    uid = int(order["uid"])
    for name, value in order["limits"].items():
        limit = getattr(resource, name)
        resource.setrlimit(limit, (int(value), int(value)))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to another uid: every capability is dropped
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if os.getuid() != uid or _capabilities() != 0:
        raise RuntimeError("the kernel kept privileges after dropping to the sandbox user")


def _run_kernel(order: dict) -> None:
    import resource

    # The nursery's pipes and anything else it held.
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    # A process whose uid changed is not dumpable (its /proc files belong to root); a cold
    # kernel, started by exec, is. The init stays undumpable: the kernel cannot trace it.
    _prctl(_PR_SET_DUMPABLE, 1)
    os.environ.clear()
    os.environ.update(order["env"])
    if "numpy" in sys.modules:  # a fresh kernel draws its seed from the system, too
        sys.modules["numpy"].random.seed()
    if sys.path and sys.path[0] == "":  # as ipykernel_launcher does
        del sys.path[0]
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = ["ipykernel_launcher", *order["argv"]]
    IPKernelApp.launch_instance(argv=order["argv"])


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _unshare(flags: int) -> None:
    _, libc = _libc()
    _check(libc.unshare(flags), "unshare")


def _mount(source, target: str, fstype, flags: int, data: str | None = None) -> None:
    ctypes, libc = _libc()
    encoded = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    result = libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3])
    _check(result, f"mount {target}")


def _umount(target: str) -> None:
    _, libc = _libc()
    _check(libc.umount2(target.encode(), _MNT_DETACH), f"umount {target}")


def _prctl(option: int, value: int) -> None:
    ctypes, libc = _libc()
    _check(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def _capabilities() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


# -- the grader's side ------------------------------------------------------------------------
#: Set to 0 to start every kernel cold, in a sandbox of its own (slower; the same sandbox).
WARM_ENV = "COURSEKIT_WARM_KERNELS"


class NurseryUnavailable(RuntimeError):
    """The nursery cannot start or fork here; kernels start cold."""


class NotStaged(RuntimeError):
    """This submission cannot be staged exactly for a fork; this kernel starts cold."""


class Nursery:
    """A running nursery (module docstring) for one sandbox configuration ``key``.

    :meth:`shared` gives the grading process's nursery, started on first use and started
    again when the configuration changes or the nursery has died.
    """

    _shared: Nursery | None = None
    _refused: set = set()  # configurations whose nursery failed to start (said once)
    # Workers may be threads of one process (a Dask worker): one order at a time.
    _lock = threading.RLock()
    #: Seconds to wait for the nursery's imports, and for one fork's answer.
    START_SECONDS, FORK_SECONDS = 120.0, 30.0

    def __init__(self, key: tuple, argv: list[str], env: dict[str, str]):
        import subprocess

        self.key, self.owner = key, os.getpid()
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/"
        )
        try:
            ready = self._ask(None, self.START_SECONDS)
            if not ready.get("ready"):
                raise NurseryUnavailable(f"the nursery did not start: {ready}")
        except BaseException:
            self.close()
            raise
        self.preloaded = ready.get("preloaded", [])

    @classmethod
    def refuse(cls, key: tuple, why: object) -> None:
        """Start kernels cold for ``key`` from now on in this process, saying ``why`` once."""
        import logging

        with cls._lock:
            if cls._shared is not None and cls._shared.key == key:
                cls._shared.close()
                cls._shared = None
            if key in cls._refused:
                return
            cls._refused.add(key)
        logging.getLogger(__name__).warning(
            "warm kernels are unavailable here (%s): every kernel starts cold, in a sandbox "
            "of its own",
            why,
        )

    @classmethod
    def shared(cls, key: tuple, start) -> Nursery | None:
        """The nursery for ``key`` (``start()`` makes one), or ``None`` where none can run."""
        with cls._lock:
            current = cls._shared
            if current is not None and current.owner != os.getpid():
                current = cls._shared = None  # a forked grader's copy: the parent's nursery
            if current is not None and current.key == key and current.process.poll() is None:
                return current
            if current is not None:
                current.close()
                cls._shared = None
            if key in cls._refused or os.environ.get(WARM_ENV, "1").strip() == "0":
                return None
            try:
                cls._shared = start()
            except (OSError, NurseryUnavailable) as exc:
                error = exc
            else:
                return cls._shared
        cls.refuse(key, error)
        return None

    def spawn(self, stage: str, submission: str, connection_file: str, order: dict):
        """Fork a kernel for ``order`` (see :func:`_sandbox_self`) with ``submission`` and
        ``connection_file`` staged in ``stage``: its :class:`WarmKernel` handle."""
        import shutil

        from coursekit.instructor.sandbox import prepare_submission
        from coursekit.instructor.submission_files import copy_submission

        # The grader's copy of a submission is bounded and holds regular files only; any
        # other directory is staged only if it copies exactly (a cold kernel binds it).
        try:
            notes = copy_submission(submission, os.path.join(stage, "submission"))
            run = os.path.join(stage, "run")
            os.makedirs(run, mode=0o755)
            shutil.copyfile(connection_file, os.path.join(run, os.path.basename(connection_file)))
            for directory in ("submission", "run"):
                prepare_submission(os.path.join(stage, directory))  # readable by the kernel
        except OSError as exc:
            notes = [str(exc)]
        if notes:
            for directory in ("submission", "run"):
                shutil.rmtree(os.path.join(stage, directory), ignore_errors=True)
            raise NotStaged("; ".join(notes))
        with self._lock:
            answer = self._ask({**order, "stage": stage}, self.FORK_SECONDS)
        if "pid" not in answer:
            raise NurseryUnavailable(answer.get("error", f"no answer: {answer}"))
        host_pid = self._host_pid(int(answer["pid"]))
        if host_pid is None:
            raise NurseryUnavailable(f"the kernel {answer['pid']} was not found")
        return WarmKernel(host_pid)

    def _ask(self, order: dict | None, seconds: float) -> dict:
        """Send ``order`` (none: only read) and read the one-line answer within ``seconds``."""
        import select

        try:
            if order is not None:
                self.process.stdin.write(json.dumps(order).encode() + b"\n")
                self.process.stdin.flush()
            line, deadline = b"", time.monotonic() + seconds
            out = self.process.stdout.fileno()
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([out], [], [], left)[0]:
                    raise NurseryUnavailable(f"the nursery did not answer within {seconds:.0f} s")
                chunk = os.read(out, 65536)
                if not chunk:
                    status = self.process.poll()
                    raise NurseryUnavailable(f"the nursery exited (status {status})")
                line += chunk
        except OSError as exc:
            raise NurseryUnavailable(f"the nursery stopped answering: {exc}") from exc
        return json.loads(line)

    def _host_pid(self, nursery_pid: int) -> int | None:
        """The grader's pid of the process the nursery knows as ``nursery_pid`` (the first
        process of a namespace of its own: ``NSpid`` reads host, nursery, 1)."""
        from coursekit.instructor.sandbox import process_tree

        for pid in process_tree(self.process.pid):
            ids = _namespace_pids(pid)
            if len(ids) == 3 and ids[1] == nursery_pid and ids[2] == 1:
                return pid
        return None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


_staging: dict[int, str] = {}


def staging_root() -> str:
    """This grading process's directory of kernel stages under ``/tmp`` (short: kernel
    socket paths are limited to 107 bytes), made on first use, removed at exit."""
    root = _staging.get(os.getpid())
    if root is None:
        import atexit
        import shutil
        import tempfile

        root = _staging[os.getpid()] = tempfile.mkdtemp(prefix="ck-", dir="/tmp")
        os.chmod(root, 0o711)
        atexit.register(shutil.rmtree, root, True)
        # A multiprocessing worker leaves by os._exit, past atexit, but runs its finalizers.
        from multiprocessing.util import Finalize

        Finalize(None, shutil.rmtree, args=(root, True), exitpriority=0)
    return root


def new_stage() -> str:
    """A new directory for one kernel in :func:`staging_root`: ``s`` for its sockets now;
    ``submission`` and ``run`` when a nursery forks it (:meth:`Nursery.spawn`)."""
    import tempfile

    stage = tempfile.mkdtemp(dir=staging_root(), prefix="")
    os.chmod(stage, 0o755)
    os.mkdir(os.path.join(stage, "s"), mode=0o700)
    return stage


def _namespace_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return None if fields[0] == b"Z" else int(fields[19])


class WarmKernel:
    """The part of ``subprocess.Popen`` that jupyter_client's provisioner uses, for a kernel
    forked by the nursery: alive while its process is (the same pid and start time).

    The grader does not learn the exit status: ``returncode`` is ``-9`` after
    :meth:`kill` and ``1`` when the kernel ended by itself. A kernel is the first process of
    its namespace, which ignores ``SIGTERM``: :meth:`terminate` kills it (a grading kernel
    has nothing to save)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        import signal

        self.pid = pid
        self.returncode: int | None = None
        self._started = _start_time(pid)
        self._kill = signal.SIGKILL
        self._killed = False

    def poll(self) -> int | None:
        if self.returncode is None and _start_time(self.pid) != self._started:
            self.returncode = -self._kill if self._killed else 1
        if self.returncode is None and self._started is None:
            self.returncode = 1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            if signum == self._kill:
                self._killed = True
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(self._kill)

    def terminate(self) -> None:
        self.kill()
