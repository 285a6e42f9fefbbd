"""The process that runs a student's graded functions on the hidden cases.

``coursekit grade`` starts it (``python -I -m coursekit.grading.runner``) in a fresh sandbox
while the student's notebook runs, and sends it the first frame only after the kernel is
gone, so none of the notebook's code has run in it and nothing the notebook ran can reach
it while it holds the student's definitions. What it holds and does, in this order:

1. Before any student code: it takes the grader's channel (its standard output) for
   itself, points file descriptors 1 and 2 at ``/dev/null`` and reads the setup frame.
2. It executes the student's definitions, one unit at a time (the imports, functions,
   classes and constants the grader extracted from the notebook; a unit that fails is
   reported, the others still run; plotting libraries are imported when first used,
   :mod:`coursekit.grading.deferred`), and, for a task that needs them, the notebook values
   the grader passed in plain form (:mod:`coursekit.grading.state`).
3. For each case the grader sends, it runs the task's harness on the student's function and
   sends back the plain outputs (:func:`coursekit.grading.core.run_case`), or the error
   with the line of the student's code that raised it.

The grader sends one case at a time and reads exactly one answer for it, so whatever the
student's code does (patch numpy, write to the channel, start threads), what the grader
receives for a case was produced after that case was chosen and before the next one.
Frames from the grader are pickled (trusted direction); frames to the grader are JSON of
numbers only. The graded references are not importable here: the grader mounts a copy of
coursekit in which they raise (:mod:`coursekit.instructor.hidden`).
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import struct
import sys
import types

from coursekit.grading.core import student_line
from coursekit.grading.deferred import deferred_bindings

HEADER = struct.Struct(">Q")
#: Largest frame either side accepts.
MAX_FRAME = 256 * 1024**2


def read_frame(fd: int, limit: int = MAX_FRAME) -> bytes | None:
    """One length-prefixed frame from ``fd``; ``None`` at end of file."""
    head = _read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > limit:
        raise ValueError(f"frame of {size} bytes exceeds the limit of {limit}")
    body = _read_exactly(fd, size)
    if body is None:
        raise EOFError("the channel closed in the middle of a frame")
    return body


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            if left == size:
                return None
            raise EOFError("the channel closed in the middle of a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _define(units: list, namespace: dict) -> list[str]:
    """Execute the student's units in ``namespace``, one top-level statement at a time (an
    import that fails here does not take the functions after it along); the problems, one
    line each."""
    import ast

    notes = []
    for label, source in units:
        filename = f"<{label}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            statements = ast.parse(source, filename).body
        except SyntaxError as exc:
            notes.append(f"{label}, line {exc.lineno}: SyntaxError: {exc.msg}")
            continue
        for statement in statements:
            deferred = deferred_bindings(statement)
            if deferred is not None:  # a plotting library: imported when first used
                namespace.update(deferred)
                continue
            module = ast.Module(body=[statement], type_ignores=[])
            try:
                exec(compile(module, filename, "exec"), namespace)  # noqa: S102 - the point
            except BaseException as exc:  # noqa: BLE001 - reported, the others still run
                if isinstance(exc, KeyboardInterrupt):
                    raise
                where = student_line(exc) or f"{label}, line {statement.lineno}"
                notes.append(f"{where}: {type(exc).__name__}: {exc}")
    return notes


def _functions(namespace: dict, names) -> tuple:
    if isinstance(names, str):
        names = (names,)
    missing = [n for n in names if not callable(namespace.get(n))]
    if missing:
        raise LookupError(", ".join(missing))
    found = tuple(namespace[n] for n in names)
    return found if len(found) > 1 else found[0]


def serve(channel_in: int, channel_out: int) -> None:
    from coursekit.grading.core import Outcome, _short, outcome_record, run_case

    setup = pickle.loads(read_frame(channel_in))
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    sys.modules["__main__"] = main = types.ModuleType("__main__")
    main.__dict__.update(namespace)
    namespace = main.__dict__
    notes = []
    if setup.get("state") is not None:
        from coursekit.grading.state import decode_state

        try:
            namespace.update(decode_state(setup["state"]))
        except (ValueError, TypeError, KeyError) as exc:
            notes.append(f"the notebook values the task needs could not be used: {exc}")
    notes += _define(setup["units"], namespace)
    write_frame(channel_out, json.dumps({"ready": True, "notes": notes}).encode())
    while (frame := read_frame(channel_in)) is not None:
        try:
            request = pickle.loads(frame)
            run = pickle.loads(request["run"])  # the harness, pickled once by the grader
        except Exception as exc:  # noqa: BLE001 - the grader's fault, said as such
            reply = {"label": "", "error": f"the grader could not set up a case: {exc!r}"}
            write_frame(channel_out, json.dumps(reply).encode())
            continue
        case = request["case"]
        try:
            fn = _functions(namespace, request["names"])
        except LookupError as exc:
            reply = {"label": case.label, "missing": str(exc)}
        else:
            try:
                outcome = run_case(run, fn, case)
            except BaseException as exc:  # noqa: BLE001 - SystemExit and friends too
                outcome = Outcome(case.label, error=f"raised {type(exc).__name__}: {_short(exc)}")
            reply = outcome_record(outcome)
        write_frame(channel_out, json.dumps(reply).encode())


def main() -> None:
    # The channel to the grader is a private copy of stdout; what student code prints goes
    # nowhere.
    channel_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process' life
    serve(0, channel_out)


if __name__ == "__main__":
    main()
