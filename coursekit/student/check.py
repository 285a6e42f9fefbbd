"""``coursekit check aN``: run a notebook the way the grader will, before submitting it.

The grader (``coursekit grade``) takes the submitted notebook, puts every cell back in the
role the release gave it, puts back the release's version of each test cell, and runs the
notebook in a fresh kernel from top to bottom with a time limit per cell, a time limit for
the whole notebook and a limit on the output it keeps. This module does the same on the
student's machine, with what the student edition ships (``coursekit/student/edition/``:
a pristine copy of each released notebook and the grader's settings), and reports:

- the visible tests, passed or failed, with their points;
- graded functions still missing or not written (``raise NotImplementedError``), and
  written answers not given;
- test cells changed (put back by the grader), deleted or stripped of their metadata
  (scored 0), pasted twice (the copy is graded as an ordinary cell);
- a notebook saved under another name than the release's;
- cells that only worked out of order: execution counts of the saved notebook that do not
  increase, and a name used before the cell that defines it when run from the top;
- cells cut by the per-cell or notebook time limit, and output the grader would drop.

Hidden tests are not in the edition: passing here is necessary, not sufficient. The
notebook on disk is never changed; a receipt (its SHA-256 and the time) is written.
In the instructor's course (no edition data) the release directory and the course's
nbgrader configuration are used instead.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CheckError",
    "Report",
    "Settings",
    "check_assignment",
    "check_notebook",
    "compute_checksum",
    "load_release",
    "restore_roles",
]

EDITION = Path(__file__).with_name("edition")
_FLAGS = ("grade", "solution", "locked", "task")


class CheckError(ValueError):
    """A usage problem the student can fix (unknown assignment, no such notebook)."""


@dataclass(frozen=True)
class Settings:
    """The grader's limits, as published with the edition."""

    cell_timeout: int = 120
    notebook_seconds: int = 900
    notebook_output_bytes: int = 4 * 1024**2
    kernel_env: dict = field(default_factory=dict)
    assignments: dict = field(default_factory=dict)
    #: ``{assignment: [test cells the hidden tests grade]}``
    hidden_graded: dict = field(default_factory=dict)


# -- nbgrader's view of a cell (the same rules as nbgrader.utils, without nbgrader) ----------


def _meta(cell) -> dict | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else None


def _flag(cell, name: str) -> bool:
    meta = _meta(cell)
    return bool(meta.get(name, False)) if meta else False


def _locked(cell) -> bool:
    if _meta(cell) is None or _flag(cell, "solution"):
        return False
    return _flag(cell, "grade") or _flag(cell, "locked")


def compute_checksum(cell) -> str:
    """nbgrader's checksum of a cell (source, type, roles, id, points)."""
    digest = hashlib.md5()
    meta = _meta(cell) or {}
    parts = [
        cell.get("source", ""),
        cell.get("cell_type", ""),
        str(bool(meta.get("grade", False))),
        str(bool(meta.get("solution", False))),
        str(_locked(cell)),
        meta.get("grade_id", ""),
    ]
    if meta.get("grade", False):
        parts.append(str(float(meta["points"])))
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _grade_id(cell) -> str | None:
    meta = _meta(cell)
    gid = meta.get("grade_id") if meta else None
    return gid if isinstance(gid, str) else None


def _is_test(cell) -> bool:
    return cell.get("cell_type") == "code" and _flag(cell, "grade") and not _flag(cell, "solution")


def _points(cell) -> float:
    return float((_meta(cell) or {}).get("points") or 0)


# -- the grader's preparation ------------------------------------------------------------------


def restore_roles(nb, release) -> list[str]:
    """Give ``nb``'s cells (changed in place) the roles of the same cells in ``release``.

    The rules of the grader (``coursekit grade``, then nbgrader): a cell whose grade id is
    not in the release, or repeats an earlier one, becomes an ordinary cell; changed flags,
    points and cell types are put back; a locked cell whose content changed gets the
    release's source back. Returns what changed, in words.
    """
    roles = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    notes, seen = [], set()
    for index, cell in enumerate(list(nb.cells)):
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        gid = _grade_id(cell)
        if gid is None or gid not in roles or gid in seen:
            del cell.metadata["nbgrader"]
            if gid in seen:
                what = "test cell" if _is_test(roles[gid]) else "cell"
                notes.append(
                    f"{what} {gid} appears again (cell {index + 1}): the copy is graded as an "
                    "ordinary cell of yours, not as the test"
                )
            else:
                notes.append(
                    f"cell {index + 1} has nbgrader metadata the release does not know "
                    f"({gid or 'no id'}): graded as an ordinary cell"
                )
            continue
        seen.add(gid)
        original = roles[gid]
        meta, ref = cell.metadata.nbgrader, original.metadata.nbgrader
        changed = [f for f in _FLAGS if bool(meta.get(f, False)) != bool(ref.get(f, False))]
        for flag in changed:
            meta[flag] = bool(ref.get(flag, False))
        if ref.get("points") is not None and meta.get("points") != ref.get("points"):
            changed.append("points")
            meta["points"] = ref.get("points")
        if cell.cell_type != original.cell_type:
            changed.append("cell type")
            nb.cells[index] = cell = _retyped(cell, original.cell_type)
            meta = cell.metadata.nbgrader
        meta["checksum"] = ref.get("checksum")
        if _locked(original) and compute_checksum(cell) != ref.get("checksum"):
            if cell.source != original.source:
                changed.append("source")
            cell.source = original.source
        if changed:
            kind = "test cell" if _is_test(original) else "cell"
            notes.append(
                f"{kind} {gid}: {', '.join(changed)} changed; the grader puts the release's "
                "version back"
            )
    return notes


def _retyped(cell, cell_type: str):
    import nbformat

    new = (nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell)(
        cell.source, metadata=cell.metadata
    )
    return new


def missing_cells(nb, release) -> list[tuple[str, float, str]]:
    """``(grade id, points, kind)`` of graded cells of the release that ``nb`` lacks."""
    present = {_grade_id(c) for c in nb.cells if _grade_id(c)}
    found = []
    for cell in release.cells:
        gid = _grade_id(cell)
        if gid and gid not in present and (_flag(cell, "grade") or _flag(cell, "solution")):
            kind = "test" if _is_test(cell) else "answer"
            found.append((gid, _points(cell) if _flag(cell, "grade") else 0.0, kind))
    return found


# -- static checks -----------------------------------------------------------------------------


def _parse(source: str):
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _defined_names(tree) -> set[str]:
    names = set()
    if tree is None:
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _stubs(tree) -> dict[str, bool]:
    """``{function or class name: still a stub}`` for the top level of a cell."""
    found = {}
    if tree is None:
        return found
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = any(
                isinstance(n, ast.Raise)
                and n.exc is not None
                and "NotImplementedError" in ast.unparse(n.exc)
                for n in ast.walk(node)
            )
    return found


def unfinished(nb, release) -> list[str]:
    """Graded functions missing or still stubs, and written answers not given."""
    cells = {_grade_id(c): c for c in nb.cells if _grade_id(c)}
    everywhere = set()
    stubs_now: dict[str, bool] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            tree = _parse(cell.source)
            everywhere |= _defined_names(tree)
            stubs_now.update(_stubs(tree))
    problems = []
    for ref in release.cells:
        gid = _grade_id(ref)
        if not gid or not _flag(ref, "solution"):
            continue
        if ref.cell_type != "code":
            mine = cells.get(gid)
            if _flag(ref, "grade") and (mine is None or mine.source.strip() == ref.source.strip()):
                problems.append(
                    f"written answer {gid} ({_points(ref):g} points, graded by hand) is not given"
                )
            continue
        for name in _stubs(_parse(ref.source)):
            if name not in everywhere:
                problems.append(f"{name} is missing (answer cell {gid})")
            elif stubs_now.get(name, False):
                problems.append(f"{name} is not written yet: it still raises NotImplementedError")
    return problems


def out_of_order(saved) -> list[str]:
    """Execution counts of the saved notebook that do not increase from top to bottom."""
    counts = [
        (i, c.get("execution_count"))
        for i, c in enumerate(saved.cells)
        if c.get("cell_type") == "code" and c.get("execution_count") is not None
    ]
    notes = []
    for (i, a), (j, b) in zip(counts, counts[1:]):
        if b <= a:
            notes.append(
                f"cell {j + 1} ran before cell {i + 1} in your session (execution counts "
                f"{a} then {b}): the grader runs the cells from top to bottom"
            )
    return notes


# -- running -----------------------------------------------------------------------------------


def _client_class():
    from nbclient import NotebookClient

    class GraderLikeClient(NotebookClient):
        """nbclient with the grader's output budget for the whole notebook."""

        def __init__(self, *args, output_budget: int, **kwargs):
            super().__init__(*args, **kwargs)
            self.budget = self.output_left = output_budget
            self.truncated: set[int] = set()

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(
                len(line) for line in content.get("traceback", [])
            )
            for value in (content.get("data") or {}).values():
                size += len(value) if isinstance(value, str) else len(str(value))
            if size > self.output_left:
                self.output_left = 0
                if cell_index not in self.truncated:
                    self.truncated.add(cell_index)
                    from nbformat.v4 import new_output

                    outs.append(
                        new_output(
                            "stream",
                            name="stdout",
                            text=f"\n[output truncated: more than {self.budget:,} bytes]\n",
                        )
                    )
                return None
            self.output_left -= size
            return super().output(outs, msg, display_id, cell_index)

    return GraderLikeClient


def _error(ename: str, evalue: str):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _last_words(kernel_log) -> str:
    """The last line the kernel printed to its own log, for a student whose kernel died."""
    kernel_log.seek(0)
    lines = [line for line in kernel_log.read().decode(errors="replace").splitlines() if line]
    return f" (its last words: {lines[-1][:300]})" if lines else ""


_DEATH = "the kernel stopped (out of memory, or the code ended the process)"


def run_like_grader(nb, settings: Settings) -> dict:
    """Execute ``nb`` (changed in place) in a fresh kernel in an empty scratch directory.

    Returns ``{"timed_out": [cell numbers], "not_run": [...], "truncated": [...],
    "died": [...], "last_words": what a dead kernel printed last}``.
    """
    from nbclient.exceptions import DeadKernelError

    from coursekit.notebooks import poll_shell_in_slices

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    scratch = Path(tempfile.mkdtemp(prefix="coursekit-check-"))
    saved_env = {k: os.environ.get(k) for k in settings.kernel_env}
    os.environ.update(settings.kernel_env)
    client = _client_class()(
        nb,
        timeout=settings.cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than the grader's {settings.cell_timeout} s",
            "traceback": [f"CellTimeoutError: more than {settings.cell_timeout} s"],
        },
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": str(scratch)}},
        output_budget=settings.notebook_output_bytes,
    )
    outcome = {"timed_out": [], "not_run": [], "truncated": [], "died": [], "last_words": ""}
    # The kernel's own log (its start-up notices, a traceback it prints while shutting down)
    # is no business of the student's terminal; it is shown only when the kernel died.
    kernel_log = tempfile.TemporaryFile()
    try:
        with client.setup_kernel(stdout=kernel_log, stderr=kernel_log):
            poll_shell_in_slices(client)
            deadline = time.monotonic() + settings.notebook_seconds
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    cell.outputs = [
                        _error(
                            "NotebookTimeout",
                            f"not run: the notebook used up the grader's "
                            f"{settings.notebook_seconds} s",
                        )
                    ]
                    outcome["not_run"].append(index + 1)
                    continue
                if outcome["died"]:
                    cell.outputs = [_error("KernelDied", "not run: the kernel had stopped")]
                    continue
                client.timeout = max(1, int(min(settings.cell_timeout, left)))
                started = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    outcome["died"].append(index + 1)
                    outcome["last_words"] = _last_words(kernel_log)
                    cell.outputs.append(_error("KernelDied", _DEATH + outcome["last_words"]))
                    continue
                errors = [o.get("ename") for o in cell.get("outputs", []) if "ename" in o]
                # a timeout interrupts the kernel: the cell ends in KeyboardInterrupt
                if time.monotonic() - started >= client.timeout or "CellTimeoutError" in errors:
                    outcome["timed_out"].append(index + 1)
                    if not errors:
                        cell.outputs.append(
                            _error("CellTimeoutError", f"more than {client.timeout} s")
                        )
    finally:
        kernel_log.close()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)
    outcome["truncated"] = sorted(i + 1 for i in client.truncated)
    return outcome


# errors that the report lists under the grader's limits rather than as the code's own errors
_LIMIT_ERRORS = ("CellTimeoutError", "NotebookTimeout", "KeyboardInterrupt", "KernelDied")


def _first_error(cell) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines = str(out.get("evalue", "")).splitlines()
            return out.get("ename", "Error"), (lines[0] if lines else "")
    return None


def used_before_defined(nb) -> list[str]:
    """NameErrors of the fresh run whose name a later cell defines."""
    notes = []
    trees = [(_parse(c.source) if c.cell_type == "code" else None) for c in nb.cells]
    for index, cell in enumerate(nb.cells):
        error = _first_error(cell) if cell.cell_type == "code" else None
        if not error or error[0] != "NameError":
            continue
        match = re.search(r"name '(\w+)' is not defined", error[1])
        if not match:
            continue
        name = match.group(1)
        later = [j for j in range(index + 1, len(nb.cells)) if name in _defined_names(trees[j])]
        if later:
            notes.append(
                f"cell {index + 1} uses {name} before cell {later[0] + 1} defines it: it only "
                "worked when the cells ran out of order"
            )
    return notes


# -- the report ----------------------------------------------------------------------------------


@dataclass
class TestResult:
    """A test cell run as the grader runs it (``hidden``: hidden tests decide its points)."""

    cell: str
    points: float
    passed: bool
    message: str | None = None
    hidden: bool = False


@dataclass
class Report:
    """What ``coursekit check`` found in one notebook."""

    notebook: str
    expected_name: str
    sha256: str
    tests: list[TestResult] = field(default_factory=list)
    missing_tests: list[tuple[str, float]] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    structure: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wrong_name: str | None = None
    unreadable: str | None = None
    checked_at: str = ""

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests if t.passed)

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tests) + sum(p for _, p in self.missing_tests)

    @property
    def ok(self) -> bool:
        return not (
            self.unreadable
            or self.wrong_name
            or self.missing_tests
            or self.unfinished
            or self.limits
            or any(not t.passed for t in self.tests)
            or [o for o in self.order if "uses" in o]
        )

    def verdict(self, cell: str) -> str:
        """``passed``, ``failed`` or ``missing`` for one test cell (as the grader would score it)."""
        if any(gid == cell for gid, _ in self.missing_tests):
            return "missing"
        for test in self.tests:
            if test.cell == cell:
                return "passed" if test.passed else "failed"
        return "missing"

    def render(self) -> str:
        lines = [f"{self.notebook} (SHA-256 {self.sha256[:16]}…)"]
        if self.unreadable:
            lines.append(f"  NOT GRADABLE: {self.unreadable}")
            return "\n".join(lines)
        if self.wrong_name:
            lines.append(f"  WRONG FILE NAME: {self.wrong_name}")
        if self.tests or self.missing_tests:
            lines.append("  visible tests:")
            for test in self.tests:
                mark = "pass" if test.passed else "FAIL"
                why = f"  {test.message}" if test.message and not test.passed else ""
                more = ", plus hidden tests" if test.hidden else ""
                lines.append(f"    {mark}  {test.cell} ({test.points:g} points{more}){why}")
            for gid, points in self.missing_tests:
                lines.append(f"    GONE  {gid} ({points:g} points): deleted, scores 0")
        sections = (
            ("not done", self.unfinished),
            ("cells compared with the release", self.structure),
            ("run order", self.order),
            ("grader limits", self.limits),
            ("errors in other cells", self.errors),
        )
        for title, items in sections:
            if items:
                lines.append(f"  {title}:")
                lines += [f"    - {item}" for item in items]
        lines.append(
            f"  visible tests: {self.points:g} of {self.max_points:g} points; the grade also "
            "depends on hidden tests"
        )
        lines.append("  READY TO SUBMIT" if self.ok else "  NOT READY: fix the points above")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "notebook": self.notebook,
            "sha256": self.sha256,
            "checked_at": self.checked_at,
            "ok": self.ok,
            "visible_points": self.points,
            "visible_max_points": self.max_points,
            "tests": {t.cell: t.passed for t in self.tests},
            "deleted_tests": [gid for gid, _ in self.missing_tests],
            "problems": [
                *([self.unreadable] if self.unreadable else []),
                *([self.wrong_name] if self.wrong_name else []),
                *self.unfinished,
                *self.structure,
                *self.order,
                *self.limits,
            ],
        }


def check_notebook(
    path, release, settings: Settings, expected_name: str | None = None, hidden=()
) -> Report:
    """Check one notebook file against its ``release`` notebook, as the grader would grade it.

    ``hidden`` names the test cells whose points the hidden tests decide: the grader notes
    a failed visible test there and grades the function on the hidden cases, which a
    function that fails the visible test will hardly pass.
    """
    import nbformat

    path = Path(path)
    data = path.read_bytes()
    report = Report(
        notebook=str(path),
        expected_name=expected_name or path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        checked_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if expected_name and path.name != expected_name:
        report.wrong_name = (
            f"the grader looks for {expected_name}, this file is {path.name}: rename it "
            "before you submit (a notebook under another name is not graded)"
        )
    try:
        # lone surrogates (a broken emoji pasted into markdown) do not stop the grader
        saved = nbformat.reads(data.decode("utf-8", errors="surrogatepass"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - whatever makes it unreadable, the grader fails too
        report.unreadable = (
            f"the file is not a notebook the grader can read ({type(exc).__name__}: {exc})"
        )
        return report
    report.order = out_of_order(saved)
    graded = copy.deepcopy(saved)
    report.structure = restore_roles(graded, release)
    report.missing_tests = [
        (g, p) for g, p, kind in missing_cells(graded, release) if kind == "test"
    ]
    report.unfinished = unfinished(graded, release)
    report.unfinished += [
        f"answer cell {g} was deleted"
        for g, _, kind in missing_cells(graded, release)
        if kind == "answer"
    ]
    outcome = run_like_grader(graded, settings)
    report.order += used_before_defined(graded)
    for number in outcome["timed_out"]:
        report.limits.append(
            f"cell {number} ran longer than the grader's {settings.cell_timeout} s per cell: "
            "the grader stops it"
        )
    if outcome["not_run"]:
        report.limits.append(
            f"cells {', '.join(map(str, outcome['not_run']))} were not run: the notebook took "
            f"longer than the grader's {settings.notebook_seconds} s"
        )
    for number in outcome["died"]:
        report.limits.append(
            f"cell {number}: {_DEATH}; the cells after it did not run{outcome['last_words']}"
        )
    for number in outcome["truncated"]:
        report.limits.append(
            f"cell {number}: the notebook printed more than the grader keeps "
            f"({settings.notebook_output_bytes:,} bytes); later output is cut"
        )
    for index, cell in enumerate(graded.cells):
        if cell.cell_type != "code":
            continue
        error = _first_error(cell)
        if _is_test(cell):
            message = (": ".join(part for part in error if part)) if error else None
            gid = _grade_id(cell)
            result = TestResult(gid, _points(cell), error is None, message, gid in hidden)
            report.tests.append(result)
        elif error and error[0] not in _LIMIT_ERRORS:
            report.errors.append(f"cell {index + 1}: {': '.join(p for p in error if p)}")
    return report


# -- where the release and the settings come from -------------------------------------------------


def _edition_settings() -> Settings | None:
    path = EDITION / "grader.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Settings(
        cell_timeout=int(data["cell_timeout"]),
        notebook_seconds=int(data["notebook_seconds"]),
        notebook_output_bytes=int(data["notebook_output_bytes"]),
        kernel_env=dict(data.get("kernel_env", {})),
        assignments={k: list(v) for k, v in data["assignments"].items()},
        hidden_graded={k: list(v) for k, v in data.get("hidden_graded", {}).items()},
    )


def load_release(assignment: str, root: Path) -> tuple[Settings, dict]:
    """The grader's settings and ``{notebook name: release notebook}`` of ``assignment``."""
    import nbformat

    settings = _edition_settings()
    if settings is not None:
        release_dir = EDITION / "release" / assignment
    elif (root / "nbgrader_config.py").is_file():
        settings, release_dir = _course_release(root, assignment)
    else:
        raise CheckError(
            "no release to compare with: this coursekit is neither a student edition nor "
            f"run in an instructor's course ({root})"
        )
    known = sorted(settings.assignments)
    if assignment not in settings.assignments:
        raise CheckError(f"unknown assignment {assignment!r}; the course has: {', '.join(known)}")
    release = {
        name: nbformat.read(str(release_dir / name), as_version=4)
        for name in settings.assignments[assignment]
    }
    return settings, release


def _course_release(root: Path, assignment: str) -> tuple[Settings, Path]:
    from coursekit.instructor.course import Course
    from coursekit.instructor.publish import _grader_settings

    course = Course.locate(root)
    release_dir = course.directory("release")
    notebooks = {
        name: sorted(p.name for p in (release_dir / name).glob("*.ipynb"))
        for name in course.assignments()
        if (release_dir / name).is_dir()
    }
    data = _grader_settings(course, notebooks)
    settings = Settings(
        cell_timeout=int(data["cell_timeout"]),
        notebook_seconds=int(data["notebook_seconds"]),
        notebook_output_bytes=int(data["notebook_output_bytes"]),
        kernel_env=dict(data["kernel_env"]),
        assignments=notebooks,
        hidden_graded=data["hidden_graded"],
    )
    return settings, release_dir / assignment


def find_root(start: Path, assignment: str) -> Path:
    """The edition (or course) folder holding ``assignments/<assignment>``: ``start`` or a parent."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "assignments" / assignment).is_dir() or (
            folder / "nbgrader_config.py"
        ).is_file():
            return folder
    return start


def check_assignment(
    assignment: str,
    notebooks: list[Path] | None = None,
    *,
    root: Path | None = None,
    receipts: Path | None = None,
) -> list[Report]:
    """Check ``assignment``: the given notebook files, or ``assignments/<assignment>/`` of ``root``.

    Writes one receipt per notebook to ``receipts`` (default: ``<root>/receipts``).
    """
    root = find_root(root or Path.cwd(), assignment)
    settings, release = load_release(assignment, root)
    if not notebooks:
        folder = root / "assignments" / assignment
        if not folder.is_dir():
            raise CheckError(f"no folder {folder}: pass the notebook to check")
        notebooks = sorted(p for p in folder.glob("*.ipynb"))
        if not notebooks:
            raise CheckError(f"no notebook in {folder}")
    reports = []
    names = sorted(release)
    for path in notebooks:
        path = Path(path)
        if not path.is_file():
            raise CheckError(f"no such notebook: {path}")
        expected = path.name if path.name in release else None
        if expected is None:
            if len(names) == 1:
                expected = names[0]
            else:
                raise CheckError(
                    f"{path.name} is none of the notebooks of {assignment} ({', '.join(names)}): "
                    "name it like the release"
                )
        hidden = settings.hidden_graded.get(assignment, ())
        reports.append(check_notebook(path, release[expected], settings, expected, hidden))
    folder_names = {Path(p).name for p in notebooks}
    for name in names:
        if name not in folder_names and not any(r.expected_name == name for r in reports):
            raise CheckError(f"{assignment} needs {name}; it is not among the checked files")
    write_receipts(assignment, reports, receipts or root / "receipts")
    return reports


def write_receipts(assignment: str, reports: list[Report], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for report in reports:
        stamp = report.checked_at.replace(":", "").replace("+0000", "Z")
        path = folder / f"{assignment}-{Path(report.expected_name).stem}-{stamp}.json"
        path.write_text(json.dumps({"assignment": assignment, **report.to_json()}, indent=1) + "\n")
        written.append(path)
    return written
