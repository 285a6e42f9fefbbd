"""Watching a student's function while the hidden cases run: who did it call?

The static check in :func:`coursekit.grading.trusted.integrity_problems` reads the names a
submission mentions; ``getattr(importlib.import_module("coursekit." + "ops"), "soft" +
"max")`` mentions none of them. So while the grader records a student's function on the
hidden cases, :class:`ReferenceWatch` runs it under a profiler hook (``sys.setprofile``)
that sees every Python call and every call into C:

* a call into the task's reference (its ``reference`` and its ``library_functions``:
  coursekit's own implementation, a class standing for all its methods) is recognised by
  its code (file, first line and name), however the student got hold of it: imported under
  another name, looked up with ``getattr``, fetched from the grading registry, subclassed,
  reloaded;
* a way out of the hook's sight is noted as tampering: replacing or removing the hook
  (``sys.setprofile``, ``sys.settrace``, or a hook found missing afterwards), starting a
  thread, forking or spawning a process.

The hook lives in the student's kernel, so a student who studies this module could still
find a way around it; together with the static check and the trusted comparison it makes
calling the reference visible, not impossible (see ``coursekit grade``'s documentation).
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4096)
def _realpath(filename: str) -> str:
    return os.path.realpath(filename)


def _key(code) -> tuple[str, int, str]:
    # File, first line and name rather than the code object itself: a reloaded module or
    # its source compiled again gives new code objects at the same place.
    return _realpath(code.co_filename), code.co_firstlineno, code.co_name


def _codes(fn: object) -> list:
    """The code objects behind ``fn``: a function's, or every method's of a class."""
    if isinstance(fn, type):
        members = []
        for member in vars(fn).values():
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            elif isinstance(member, property):
                members += [f for f in (member.fget, member.fset, member.fdel) if f is not None]
                continue
            members.append(member)
        return [code for member in members if (code := getattr(member, "__code__", None))]
    code = getattr(fn, "__code__", None)
    return [code] if code is not None else []


def _resolve(dotted: str) -> object | None:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _describe(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class ReferenceWatch:
    """Profile the calls made while a hidden case runs the student's code.

    Parameters
    ----------
    references : iterable of str or callable
        The reference implementations the function must not call: dotted names (for
        example ``"coursekit.ops.softmax"``) or the functions and classes themselves (a
        class stands for all of its methods).

    Attributes
    ----------
    problems : list of str
        What was seen, in words, in the order first seen (empty for an honest function).
    """

    def __init__(self, references: Iterable[str | Callable]):
        self.names: dict[tuple[str, int, str], str] = {}
        for ref in references:
            fn = _resolve(ref) if isinstance(ref, str) else ref
            label = ref if isinstance(ref, str) else _describe(ref)
            for code in _codes(fn):
                self.names.setdefault(_key(code), label)
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
            dotted = self.names.get(_key(frame.f_code))
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
