"""Watching a student's function while the hidden cases run: who did it call?

The static check in :func:`coursekit.grading.trusted.integrity_problems` reads the names a
submission mentions; ``getattr(importlib.import_module("coursekit." + "ops"), "soft" +
"max")`` mentions none of them. So while the grader records a student's function on the
hidden cases, :class:`ReferenceWatch` runs it under a profiler hook (``sys.setprofile``)
that sees every Python call and every call into C:

* a call into one of the task's ``library_functions`` (coursekit's reference
  implementation) is recognised by its code (file and function name), however the student
  got hold of it: imported under another name, looked up with ``getattr``, reloaded;
* a way out of the hook's sight is noted as tampering: replacing or removing the hook
  (``sys.setprofile``, ``sys.settrace``, or a hook found missing afterwards), starting a
  thread, forking or spawning a process.

The hook lives in the student's kernel, so a student who studies this module could still
find a way around it; together with the static check and the trusted comparison it makes
calling the reference visible, not impossible (see ``coursekit grade``'s documentation).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable

__all__ = ["ReferenceWatch"]

# Calls into C that leave the hook's sight (the hook sees the call before it happens).
_ESCAPES: dict[object, str] = {
    sys.setprofile: "replaces the profiler hook (sys.setprofile)",
    sys.settrace: "installs a trace hook (sys.settrace)",
    threading._start_new_thread: "starts a thread",  # type: ignore[attr-defined]
}
for _name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
    if hasattr(os, _name):
        _ESCAPES[getattr(os, _name)] = f"starts a process (os.{_name})"


def _code_key(fn: Callable) -> tuple[str, str] | None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return os.path.realpath(code.co_filename), code.co_name


def _resolve(dotted: str) -> Callable | None:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class ReferenceWatch:
    """Profile calls made while the student's function runs.

    Parameters
    ----------
    library_functions : iterable of str
        Dotted names of the reference implementations the function must not call.

    Attributes
    ----------
    problems : list of str
        What was seen, in words, in the order first seen (empty for an honest function).
    """

    def __init__(self, library_functions: Iterable[str]):
        self.names = {}
        for dotted in library_functions:
            key = _code_key(_resolve(dotted))
            if key is not None:
                self.names[key] = dotted
        self.problems: list[str] = []
        self._events = 0
        self._leaving = False

    def _note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def _hook(self, frame, event, arg):
        if self._leaving:
            return
        self._events += 1
        if event == "call":
            code = frame.f_code
            dotted = self.names.get((os.path.realpath(code.co_filename), code.co_name))
            if dotted is not None:
                self._note(f"calls coursekit's own implementation ({dotted})")
        elif event == "c_call":
            escape = _ESCAPES.get(arg)
            if escape is not None:
                self._note(escape)

    def call(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` under the hook; the hook is removed afterwards."""
        previous = sys.getprofile()
        events = self._events
        sys.setprofile(self._hook)
        try:
            return fn(*args, **kwargs)
        finally:
            hook_still_set = sys.getprofile() == self._hook
            self._leaving = True  # our own sys.setprofile below is no escape
            sys.setprofile(previous)
            self._leaving = False
            if not hook_still_set or self._events == events:
                self._note("removed the profiler hook")

    def wrap(self, fn: Callable) -> Callable:
        """``fn`` with every call made under the hook."""

        def watched(*args, **kwargs):
            return self.call(fn, *args, **kwargs)

        watched.__name__ = getattr(fn, "__name__", "watched")
        return watched
