"""Hidden tests, run where no student code can reach the grader.

After a student's notebook has run in its sandboxed kernel (where the hidden-test source
never arrives: :func:`strip_hidden`), :func:`run_hidden_checks` grades every hidden check of
the notebook like this:

1. **What crosses from the submission** (:func:`extract_units`): the student's
   definitions, read from the notebook's source (not from the kernel): the imports,
   functions, classes and simple constants of every code cell that is not a test cell.
   Statements that compute (training loops, plots) are left out. A task that needs notebook
   values (``Task.notebook_state``, e.g. a trained model) also receives the notebook
   variables its functions read (:func:`state_names`), exported by the kernel in plain form
   (:mod:`coursekit.grading.state`).
2. **Where it runs**: a fresh process (:mod:`coursekit.grading.runner`) in the same sandbox
   as the kernel, but without the submission's files, the kernel's scratch space or the
   network, with its own small in-memory home, and a copy of coursekit in which the graded
   references (every task's ``reference`` and ``library_functions``, with the private
   helpers they call) raise instead of computing, and no ``coursekit.grading.tasks``,
   ``coursekit.instructor`` or ``coursekit.cli`` (:func:`build_runtime`). PyTorch is hidden
   unless a task declares ``needs_torch``.
3. **Which inputs**: the grader draws every case itself from the course secret
   (:func:`coursekit.grading.core.case_rng`), sends them one at a time and reads exactly
   one answer per case (:class:`HiddenProcess`); anything written out of turn voids the
   rest of that process's answers.
4. **Who judges**: :func:`coursekit.grading.core.judge`, here, on the plain numbers.
"""

from __future__ import annotations

import ast
import builtins
import compileall
import functools
import hashlib
import hmac
import importlib
import inspect
import json
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cloudpickle

from coursekit.grading.core import Outcome, Task, get_task, judge, outcome_from_record
from coursekit.grading.runner import HEADER

__all__ = [
    "HiddenCheck",
    "HiddenProcess",
    "ProcessFactory",
    "TaskVerdict",
    "build_runtime",
    "extract_units",
    "hidden_checks",
    "load_secret",
    "submission_secret",
    "run_hidden_checks",
    "state_names",
    "strip_hidden",
]

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
#: Largest answer the runner may send for one case.
MAX_ANSWER = 64 * 1024**2


# -- the hidden checks of a test cell -------------------------------------------------------
@dataclass(frozen=True)
class HiddenCheck:
    """One ``check("task", fn, seed=N)`` line of a test cell."""

    task: str
    seed: int
    names: tuple[str, ...]


def hidden_checks(source: str) -> list[HiddenCheck]:
    """The ``check("task", fn, seed=N)`` calls of a test cell (``fn`` a name or a tuple of
    names)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check"):
            continue
        seeds = [k.value for k in node.keywords if k.arg == "seed"]
        if not (
            len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and len(seeds) == 1
            and isinstance(seeds[0], ast.Constant)
            and isinstance(seeds[0].value, int)
        ):
            continue
        target = node.args[1]
        elements = target.elts if isinstance(target, ast.Tuple) else [target]
        if all(isinstance(e, ast.Name) for e in elements):
            names = tuple(e.id for e in elements)
            calls.append(HiddenCheck(node.args[0].value, seeds[0].value, names))
    return calls


def strip_hidden(source: str) -> str:
    """A test cell's source without its hidden-test regions (what the kernel may see)."""
    lines, out, hidden = source.splitlines(keepends=True), [], False
    for line in lines:
        if line.strip() == BEGIN_HIDDEN:
            hidden = True
        elif line.strip() == END_HIDDEN:
            hidden = False
        elif not hidden:
            out.append(line)
    return "".join(out)


# -- the course secret ----------------------------------------------------------------------
SECRET_FILE = "secret"


def load_secret(state_directory: str | os.PathLike, *, create: bool = True) -> bytes:
    """The course secret (``<course>/.coursekit/secret``), created on first use.

    Hidden inputs are drawn from it; the sandboxes never see the course directory. Keep it
    with the course (deleting it changes every hidden input, and grades change with them).
    """
    path = Path(state_directory) / SECRET_FILE
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no course secret at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(os.urandom(32).hex() + "\n")
        try:
            os.link(tmp, path)  # atomic, and never replaces a secret another worker made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError as exc:
        raise ValueError(f"the course secret in {path} is not hexadecimal") from exc
    if len(secret) < 16:
        raise ValueError(f"the course secret in {path} is too short (need 16+ bytes of hex)")
    return secret


def submission_secret(course_secret: bytes, units: Units) -> bytes:
    """The secret a submission's hidden inputs are drawn from: the course secret keyed by
    the student's definitions. Regrading the same code draws the same inputs (grades are
    reproducible); changed code (say, a table of inputs a failure message once showed)
    draws new ones, and no two different submissions share their inputs."""
    digest = hashlib.sha256(json.dumps(units.units).encode("utf-8", "surrogatepass")).digest()
    return hmac.new(course_secret, b"submission:" + digest, hashlib.sha256).digest()


# -- the student's definitions ----------------------------------------------------------------
_SAFE_CALL_ROOTS = {"np", "numpy", "math", "functools"}
_SAFE_BUILTINS = {
    "float", "int", "bool", "str", "tuple", "list", "dict", "set", "frozenset", "range",
    "len", "abs", "min", "max", "round", "sum", "sorted", "zip", "enumerate", "pow",
}  # fmt: skip


def _call_root(func: ast.expr) -> str | None:
    while isinstance(func, ast.Attribute):
        func = func.value
    return func.id if isinstance(func, ast.Name) else None


def _simple_value(node: ast.expr, modules: set[str]) -> bool:
    """Whether an assigned value is a constant the definitions may use: no calls but into
    numpy, math, functools or harmless builtins (``EPS = np.finfo(float).eps``)."""
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
        if isinstance(sub, ast.Call):
            root = _call_root(sub.func)
            if isinstance(sub.func, ast.Name):
                if root not in _SAFE_BUILTINS:
                    return False
            elif root not in modules:
                return False
    return True


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _SAFE_CALL_ROOTS:
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def _kept(node: ast.stmt, modules: set[str], defined: set[str]) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module != "__future__"
    if isinstance(node, (ast.Import, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        targets_ok = all(isinstance(t, ast.Name) for t in node.targets)
    elif isinstance(node, ast.AnnAssign):
        targets_ok = isinstance(node.target, ast.Name) and node.value is not None
    else:
        return False
    # A constant only if everything it reads is defined by what crosses (not ``data``).
    reads = _free_names(node.value)
    known = all(n in defined or hasattr(builtins, n) for n in reads)
    return targets_ok and known and _simple_value(node.value, modules)


def _python_source(source: str) -> str:
    """A cell's source with IPython syntax (magics, ``!cmd``) turned into Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython could not read it; Python will say why
        return source


@dataclass
class Units:
    """The student's definitions: ``units`` ``[(label, source)]`` in notebook order, the
    names the kept statements bind, the names other statements bind, and problems."""

    units: list[tuple[str, str]] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)
    computed: set[str] = field(default_factory=set)
    trees: dict[str, ast.AST] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    names, todo = set(), [node]
    scopes = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
    while todo:
        sub = todo.pop()
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        todo += [c for c in ast.iter_child_nodes(sub) if not isinstance(c, scopes)]
    return names


def extract_units(cells: Iterable[tuple[int, str]]) -> Units:
    """The definitions of the student's code cells ``[(cell number, source)]``.

    Each cell becomes one unit holding its kept statements at their own line numbers (the
    other lines blank), so a traceback names the student's cell and line.
    """
    result = Units()
    for number, source in cells:
        label = f"cell {number}"
        code = _python_source(source)
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            result.notes.append(f"{label} has a syntax error (line {exc.lineno}): {exc.msg}")
            continue
        modules = _imported_modules(tree)
        lines = code.splitlines()
        keep = [False] * len(lines)
        for node in tree.body:
            if _kept(node, modules, result.defined):
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                for i in range(first - 1, node.end_lineno):
                    keep[i] = True
                result.defined |= _bound_names(node)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    result.trees[node.name] = node
            else:
                result.computed |= _bound_names(node)
        if any(keep):
            text = "\n".join(line if k else "" for line, k in zip(lines, keep)) + "\n"
            result.units.append((label, text))
    result.computed -= result.defined
    return result


def _free_names(node: ast.AST) -> set[str]:
    """Names a function or class reads that it does not bind itself (an over-estimate of
    the globals it uses)."""
    loads, stores = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (loads if isinstance(sub.ctx, ast.Load) else stores).add(sub.id)
        elif isinstance(sub, ast.arg):
            stores.add(sub.arg)
    return loads - stores


def state_names(units: Units, roots: Iterable[str]) -> list[str]:
    """The notebook variables that the functions ``roots`` (and the student's functions
    they use) read but that no kept definition binds: what a ``notebook_state`` task
    receives from the kernel."""
    seen, needed, todo = set(), set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = units.trees.get(name)
        if tree is None:
            continue
        for free in _free_names(tree):
            if free in units.trees:
                todo.append(free)
            elif free not in units.defined and not hasattr(builtins, free):
                needed.add(free)
    return sorted(needed)


# -- the runtime: coursekit without the graded references ---------------------------------------
#: Parts of the package that never reach the hidden-case process.
_EXCLUDED = ("grading/tasks", "grading/trusted.py", "instructor", "cli")


def _forbidden_definitions(tasks: Iterable[Task]) -> dict[str, set[str]]:
    """``{module file (relative to the package): {top-level names}}`` to disable."""
    import coursekit

    package = Path(coursekit.__file__).resolve().parent
    found: dict[str, set[str]] = {}
    for task in tasks:
        references = task.reference if isinstance(task.reference, tuple) else (task.reference,)
        objects = list(references)
        for dotted in task.library_functions:
            module, _, name = dotted.rpartition(".")
            try:
                objects.append(getattr(importlib.import_module(module), name))
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"task {task.name}: library function {dotted} not found") from exc
        for obj in objects:
            obj = inspect.unwrap(obj)
            try:
                path = Path(inspect.getsourcefile(obj)).resolve()
            except TypeError:
                continue
            if package not in path.parents:
                continue
            relative = path.relative_to(package).as_posix()
            if relative.startswith(_EXCLUDED):
                continue  # not shipped at all
            qualname = getattr(obj, "__qualname__", "")
            if qualname and "." not in qualname and "<" not in qualname:
                found.setdefault(relative, set()).add(qualname)
    return found


def _stub(name: str, what: str, is_class: bool) -> list[ast.stmt]:
    message = (
        f"{what} is not available while the hidden tests run: a graded function must "
        "compute its answer itself"
    )
    if is_class:
        code = (
            f"class {name}:\n"
            f"    def __init__(self, *args, **kwargs):\n"
            f"        raise RuntimeError({message!r})\n"
        )
    else:
        code = f"def {name}(*args, **kwargs):\n    raise RuntimeError({message!r})\n"
    return ast.parse(code).body


def disable_definitions(source: str, names: set[str], module: str) -> str:
    """``source`` with the top-level functions and classes ``names`` (and the private
    helpers of the same module that they use) replaced by stubs that raise."""
    tree = ast.parse(source)
    defs = {
        n.name: n
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    todo, disabled = [n for n in names if n in defs], set()
    while todo:
        name = todo.pop()
        if name in disabled:
            continue
        disabled.add(name)
        for free in _free_names(defs[name]):
            if free.startswith("_") and free in defs:
                todo.append(free)
    body = []
    for node in tree.body:
        name = getattr(node, "name", None)
        if name in disabled:
            body += _stub(name, f"{module}.{name}", isinstance(node, ast.ClassDef))
        else:
            body.append(node)
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def package_digest(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_runtime(root: str | os.PathLike, tasks: Iterable[Task]) -> Path:
    """A copy of the coursekit package for the hidden-case process of ``tasks`` (cached
    under ``root`` by content): the graded references disabled, the grading tasks, the
    instructor package and the command line left out, byte code compiled, readable by
    everyone."""
    import coursekit

    tasks = list(tasks)
    package = Path(coursekit.__file__).resolve().parent
    forbidden = _forbidden_definitions(tasks)
    key = hashlib.sha256(
        json.dumps(
            [package_digest(package), sorted((k, sorted(v)) for k, v in forbidden.items())]
        ).encode()
    ).hexdigest()[:20]
    target = Path(root) / f"runtime-{key}"
    if (target / "coursekit").is_dir():
        return target / "coursekit"
    Path(root).mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="runtime-", dir=root))
    out = building / "coursekit"
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package).as_posix()
        if "__pycache__" in path.parts or relative.startswith(_EXCLUDED) or not path.is_file():
            continue
        dest = out / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if relative in forbidden:
            module = "coursekit." + relative[: -len(".py")].replace("/", ".")
            module = module.removesuffix(".__init__")
            dest.write_text(disable_definitions(path.read_text(), forbidden[relative], module))
        else:
            shutil.copyfile(path, dest)
    compileall.compile_dir(str(out), quiet=2, workers=1)
    for path in [building, *building.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        os.rename(building, target)
    except OSError:  # another worker built it first
        shutil.rmtree(building, ignore_errors=True)
    return target / "coursekit"


_modules_seen = 0


def dumps_by_value(obj) -> bytes:
    """Pickle ``obj`` with the grading task modules' functions and classes by value: those
    modules hold the references and never exist where the hidden cases run."""
    import sys

    global _modules_seen
    if len(sys.modules) != _modules_seen:  # a task module imported since the last look
        for name, module in list(sys.modules.items()):
            if name.startswith("coursekit.grading.tasks.") and module is not None:
                cloudpickle.register_pickle_by_value(module)
        _modules_seen = len(sys.modules)
    return cloudpickle.dumps(obj)


@functools.lru_cache(maxsize=64)
def pickled_harness(run: Callable) -> bytes:
    """A task's harness, pickled by value once per grading process (it is the same for
    every case; pickling it by value is most of the cost of sending a case)."""
    return dumps_by_value(run)


# -- the process ------------------------------------------------------------------------------------
class ChannelError(RuntimeError):
    """The runner broke the protocol (an answer out of turn, malformed, too large)."""


class ProcessStopped(ChannelError):
    """The runner process ended (the student's code exited, crashed or was killed)."""


class HiddenProcess:
    """The runner process: setup once, then one case at a time.

    ``argv`` starts ``python -I -m coursekit.grading.runner`` (in a sandbox); ``env`` is its
    whole environment.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str = "/", watch=None):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        # ``watch(pid)`` returns a watchdog with ``stop()`` (memory of the process tree).
        self._watch = watch(self.proc.pid) if watch is not None else None

    def _send(self, payload: bytes, deadline: float) -> None:
        """Write one frame, never blocking past ``deadline`` (a runner that stops reading
        its input must not hang the grader: ``TimeoutError``)."""
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(HEADER.pack(len(payload)) + payload)
        while view:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise TimeoutError
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ProcessStopped("the process that runs the hidden tests stopped") from exc

    def _receive(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        head = self._read(fd, HEADER.size, deadline)
        (size,) = HEADER.unpack(head)
        if size > MAX_ANSWER:
            raise ChannelError(f"an answer of {size} bytes is larger than allowed")
        body = self._read(fd, size, deadline)
        try:
            reply = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ChannelError("an answer that is not JSON") from exc
        if not isinstance(reply, dict):
            raise ChannelError("an answer that is not a record")
        return reply

    def _read(self, fd: int, size: int, deadline: float) -> bytes:
        chunks, left = [], size
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise ProcessStopped("the process that runs the hidden tests stopped")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _check_quiet(self) -> None:
        """Raise unless nothing was written out of turn (and the process still runs)."""
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], 0)[0]:
            if not os.read(fd, 1):
                raise ProcessStopped("the process that runs the hidden tests stopped")
            raise ChannelError("the submission wrote to the grader's channel out of turn")

    ready = False

    def setup(self, units: list, state: str | None, deadline: float) -> list[str]:
        """Send the definitions (and notebook values) and read the runner's notes on them."""
        self._send(pickle.dumps({"units": units, "state": state}), deadline)
        reply = self._receive(deadline)
        self.ready = True
        if reply.get("ready") is not True or not isinstance(reply.get("notes"), list):
            raise ChannelError("a malformed answer to the setup")
        # The student's text (exception messages): short, so no input rides out on it.
        return [str(n)[:200] for n in reply["notes"]][:50]

    def run(self, run: Callable, names: tuple, case, deadline: float) -> Outcome | str:
        """The outcome of one case, or the name(s) missing from the submission."""
        self._check_quiet()
        # Grader-only data (held-out labels, targets) never leaves the grader.
        request = {"run": pickled_harness(run), "names": names, "case": case.public()}
        self._send(dumps_by_value(request), deadline)
        reply = self._receive(deadline)
        if "missing" in reply:
            return str(reply["missing"])
        try:
            outcome = outcome_from_record(reply)
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
            OverflowError,
        ) as exc:
            raise ChannelError(f"a malformed answer ({exc})") from exc
        if outcome.label != case.label:
            raise ChannelError("an answer for another case")
        return outcome

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- grading a notebook's hidden checks ----------------------------------------------------------------
@dataclass
class TaskVerdict:
    """The verdict of one hidden check, with a status for feedback pages.

    ``status``: ``"passed"``, ``"failed"`` (wrong values), ``"error"`` (the student's
    function raised), ``"missing"`` (not defined in the submission), ``"timeout"``,
    ``"integrity"`` (with the evidence in ``message``).
    """

    task: str
    status: str
    message: str = ""

    def __post_init__(self) -> None:
        # What the student's code raised may hold text that cannot be encoded (lone
        # surrogates): escaped here, before it reaches a feedback page.
        self.message = self.message.encode("utf-8", "backslashreplace").decode("utf-8")

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _setup_message(notes: list[str], names: tuple, units: Units) -> str:
    lines = []
    for note in notes:
        lines.append(f"your definitions: {note}")
    used = [n for n in names if n in units.computed]
    if used:
        lines.append(
            f"{', '.join(used)} is computed by a statement the hidden tests do not run: "
            "define graded functions with def"
        )
    return "\n".join(lines)


def _verdict_from_outcomes(task: Task, check: HiddenCheck, outcomes, secret) -> TaskVerdict:
    verdict = judge(task, check.seed, outcomes, secret)
    if verdict.passed:
        return TaskVerdict(task.name, "passed")
    errors = [o for o in outcomes if o.error is not None]
    message = verdict.message()
    where = next((o.where for o in errors if o.where), None)
    if where:
        message += f"\n  raised in your code at {where}"
    status = "error" if errors and len(errors) == len(outcomes) else "failed"
    called = sorted({m.group(1) for o in errors if (m := UNAVAILABLE.search(o.error or ""))})
    if called:
        # The runtime's stubs raised: the submission called a graded reference.
        status = "integrity"
        message = (
            "integrity: the submission calls coursekit's own implementation "
            f"({', '.join(called)}) instead of writing the function\n" + message
        )
    return TaskVerdict(task.name, status, message)


#: The runtime's stub message (:func:`_stub`), naming the reference that was called.
UNAVAILABLE = re.compile(r"(coursekit(?:\.\w+)+) is not available while the hidden tests run")


@dataclass
class ProcessFactory:
    """Starts a sandboxed runner: ``start(tasks) -> (argv, env)`` builds the command for a
    group of tasks (the runtime without their references)."""

    start: Callable[[list[Task]], tuple[list[str], dict[str, str]]]
    watch: Callable[[int], object] | None = None

    def process(self, tasks: list[Task]) -> HiddenProcess:
        argv, env = self.start(tasks)
        return HiddenProcess(argv, env, watch=self.watch)


def _task_groups(checks: list[HiddenCheck]):
    """``(groups, unknown)``: the checks by runner (tasks that need notebook values apart
    from the rest; those that need torch apart), and verdicts for unknown tasks."""
    unknown: dict[HiddenCheck, TaskVerdict] = {}
    groups: dict[tuple[bool, bool], list[HiddenCheck]] = {}
    for check in checks:
        try:
            task = get_task(check.task)
        except KeyError:
            unknown[check] = TaskVerdict(check.task, "failed", f"unknown task {check.task!r}")
            continue
        groups.setdefault((task.notebook_state, task.needs_torch), []).append(check)
    return groups, unknown


def prestart(checks: list[HiddenCheck], factory: ProcessFactory) -> dict:
    """Start the runner of each group of ``checks`` ahead of need (while the notebook runs):
    interpreter, sandbox and imports. A started runner has run no student code; it gets the
    definitions from :func:`run_hidden_checks`, after the kernel is gone."""
    groups, _ = _task_groups(checks)
    started = {}
    try:
        for key, group in groups.items():
            started[key] = factory.process([get_task(c.task) for c in group])
    except BaseException:
        close_all(started)
        raise
    return started


def close_all(started: dict) -> None:
    """Stop the runners :func:`prestart` started and nothing used."""
    while started:
        started.popitem()[1].close()


def run_hidden_checks(
    checks: list[HiddenCheck],
    units: Units,
    factory: ProcessFactory,
    *,
    secret: bytes | None,
    timeout: float,
    state: Callable[[list[str]], str | None] | None = None,
    started: dict | None = None,
) -> dict[HiddenCheck, TaskVerdict]:
    """Grade ``checks`` in runner processes (one per group of tasks: those that need
    notebook values apart from the rest; those that need torch apart). ``timeout`` is the
    wall time of one check (all its cases). ``state(names)`` returns the kernel's export of
    those notebook variables (JSON), or ``None``. ``started`` holds the runners of
    :func:`prestart` (taken from it; the rest are stopped)."""
    started = {} if started is None else started
    groups, verdicts = _task_groups(checks)
    try:
        for key, group in groups.items():
            tasks = [get_task(c.task) for c in group]
            exported = None
            if key[0] and state is not None:
                exported = state(state_names(units, [n for c in group for n in c.names]))
            verdicts.update(
                _run_group(
                    group, tasks, units, factory, secret, timeout, exported, started.pop(key, None)
                )
            )
    finally:
        close_all(started)
    return verdicts


def _grade_check(process, task, check, units, notes, secret, deadline, timeout) -> TaskVerdict:
    outcomes: list[Outcome] = []
    for case in task.draw_cases(check.seed, secret):
        try:
            result = process.run(task.run, check.names, case, deadline)
        except TimeoutError:
            return TaskVerdict(
                task.name,
                "timeout",
                f"{task.name}: case '{case.label}' ran past the time limit "
                f"({timeout:.0f} s for all the cases of this test)",
            )
        if isinstance(result, str):
            extra = _setup_message(notes, check.names, units)
            message = f"{task.name}: {result} is not defined in your notebook"
            return TaskVerdict(task.name, "missing", message + ("\n" + extra if extra else ""))
        outcomes.append(result)
    verdict = _verdict_from_outcomes(task, check, outcomes, secret)
    extra = _setup_message(notes, check.names, units)
    if extra and not verdict.passed:
        verdict.message += "\n" + extra
    return verdict


def notes_read(process: HiddenProcess | None) -> bool:
    """Whether the runner got past the student's definitions."""
    return bool(process is not None and process.ready)


def _run_group(group, tasks, units, factory, secret, timeout, exported, process=None):
    verdicts: dict[HiddenCheck, TaskVerdict] = {}
    notes, void = [], None
    try:
        for check, task in zip(group, tasks):
            if void is not None:
                verdicts[check] = TaskVerdict(task.name, "integrity", void)
                continue
            deadline = time.monotonic() + timeout
            restart = True
            try:
                if process is None:
                    process = factory.process(tasks)
                if not process.ready:
                    notes = process.setup(units.units, exported, deadline)
                verdict = _grade_check(
                    process, task, check, units, notes, secret, deadline, timeout
                )
                restart = verdict.status == "timeout"
            except TimeoutError:
                verdict = TaskVerdict(task.name, "timeout", "your definitions took too long to run")
            except ProcessStopped:
                when = "while your definitions ran " if not notes_read(process) else ""
                verdict = TaskVerdict(
                    task.name,
                    "error",
                    f"{task.name}: the process that runs your code ended {when}(an exit, a "
                    "crash or the memory limit)",
                )
            except ChannelError as exc:
                void = f"integrity: {exc}; the hidden tests that follow get no credit"
                verdict = TaskVerdict(task.name, "integrity", void)
            if restart and process is not None:
                process.close()
                process = None
            verdicts[check] = verdict
    finally:
        if process is not None:
            process.close()
    return verdicts


def verdicts_to_json(verdicts: dict) -> str:
    return json.dumps(
        {
            f"{c.task}@{c.seed}": {"status": v.status, "message": v.message}
            for c, v in verdicts.items()
        }
    )
