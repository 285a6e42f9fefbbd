"""Where grading jobs run: a pool of local processes (default) or a Dask cluster.

An executor runs a picklable function on each job and yields ``(job, outcome)`` as jobs
finish, where ``outcome`` is the function's return value or the exception that escaped
it (a lost worker, a cancelled task). Results travel back to the parent; executors never
write course files. ``cancel()`` stops outstanding work after Ctrl-C.

* :class:`LocalExecutor`: ``concurrent.futures.ProcessPoolExecutor`` whose workers are
  forked from a fresh fork server that has imported nbgrader (or spawned where there is no
  fork server); they never inherit the parent's gradebook connection, threads or sockets. Workers ignore SIGINT, so Ctrl-C reaches only the parent, which then cancels
  pending jobs and stops the workers; their kernels exit when their parent goes away.
* :class:`DaskExecutor`: ``dask.distributed`` (``--scheduler ADDRESS``, or a ``Client``).
  The course directory must be visible at the same path on every Dask worker (a shared
  file system), and coursekit and nbgrader must be installed there.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol


class Executor(Protocol):
    def run(self, fn: Callable, jobs: Iterable) -> Iterator[tuple[Any, Any]]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def usable_cores() -> int:
    """Cores this process may run on (the CPU affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _init_local_worker(log_path: str | None, kernel_threads: int = 1) -> None:
    from coursekit.instructor.sandbox import KERNEL_THREADS

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each worker's kernels get its share of the cores for BLAS: all of them with one worker
    # (as a notebook run by hand), one each when there are as many workers as cores.
    os.environ[KERNEL_THREADS] = str(kernel_threads)
    if log_path:
        # Kernels inherit the worker's stdout/stderr; keep their chatter off the terminal.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    import warnings

    warnings.filterwarnings("ignore")


# Imported once by the fork server, so that workers start with nbgrader loaded instead of
# each importing it again (several seconds of CPU per worker).
PRELOAD = [
    "coursekit.instructor.grade",
    "nbgrader.converters",
    "nbgrader.api",
    "nbclient",
    "matplotlib.font_manager",  # the sandbox copies its font list into each kernel's home
]


def _worker_context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def start_fork_server() -> None:
    """Start the workers' fork server now: it imports :data:`PRELOAD` (several seconds,
    mostly nbgrader) on another core while the caller gets on with its own work."""
    if _worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class LocalExecutor:
    """Run jobs in ``workers`` local processes (default: one per core)."""

    def __init__(self, workers: int | None = None, log_path: str | None = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers or usable_cores()
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_worker_context(),
            initializer=_init_local_worker,
            initargs=(log_path, max(1, usable_cores() // self.workers)),
        )
        self._futures: dict = {}

    def run(self, fn, jobs):
        self._futures = {self._pool.submit(fn, job): job for job in jobs}
        for future in cf.as_completed(self._futures):
            if future.cancelled():
                continue
            exc = future.exception()
            yield self._futures[future], exc if exc is not None else future.result()

    def cancel(self) -> None:
        for future in self._futures:
            future.cancel()
        # The pool has no public way to stop a running task; terminate its processes.
        for process in list(getattr(self._pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Run jobs on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        The scheduler address (``tcp://host:8786``) or an existing client.
    """

    def __init__(self, scheduler):
        from distributed import Client

        if isinstance(scheduler, Client):
            self.client, self._own_client = scheduler, False
        else:
            self.client, self._own_client = Client(scheduler), True
        self._futures: list = []

    def run(self, fn, jobs):
        from distributed import as_completed

        jobs = list(jobs)
        self._futures = self.client.map(fn, jobs, pure=False)
        by_key = {f.key: job for f, job in zip(self._futures, jobs)}
        for future in as_completed(self._futures):
            job = by_key[future.key]
            if future.status == "finished":
                yield job, future.result()
            elif future.status != "cancelled":
                yield job, future.exception()

    def cancel(self) -> None:
        if self._futures:
            self.client.cancel(self._futures)

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def make_executor(workers: int | None = None, scheduler=None, log_path: str | None = None):
    """The executor for ``--workers`` / ``--scheduler``."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    return LocalExecutor(workers, log_path=log_path)
