"""The attack catalogue: submissions that try to game ``coursekit grade``.

Every case is a wrong answer plus one attack, on a small course cut from an assignment
(:class:`Target`: a1's ``softmax``, a3's ``adam``): one cell of imports, the answer cell
and its test cells, and a control test whose answer is right. ``wrong`` is the wrong answer
alone, the baseline no attack may beat; ``correct`` submissions are canaries graded in the
same batch.

Code attacks are appended to the answer cell, after the wrong function, and may use
``{course}`` (the course directory), ``{port}`` (a listener on the grader's loopback),
``{fn}`` / ``{params}`` / ``{call}`` (the graded function, its parameters and a call of
coursekit's reference with them), ``{ref_module}`` / ``{ref_name}`` (that reference) and
``{table}`` (answers to the hidden cases as they would be without the course secret).
Notebook attacks edit the submitted notebook; file attacks add files to the submission.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursekit.grading import submissions

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    """The graded function an attack is aimed at, in a course cut from one assignment."""

    assignment: str
    notebook: str
    keep: tuple[str, ...]
    answer: str  # grade id of the answer cell
    test: str  # grade id of the attacked test cell
    control: str  # grade id of a test cell whose answer stays right
    fn: str
    params: str
    call: str
    ref_module: str
    ref_name: str
    task: str
    seed: int
    wrong: str  # the whole answer cell, wrong in ``fn`` only
    points: float  # of ``test``
    full_marks: float

    @property
    def source(self) -> Path:
        return REPO / "solutions" / self.assignment / self.notebook


A1 = Target(
    assignment="a1",
    notebook="vectorization.ipynb",
    keep=("softmax", "test_softmax", "logsumexp", "test_logsumexp"),
    answer="softmax",
    test="test_softmax",
    control="test_logsumexp",
    fn="softmax",
    params="logits",
    call="_ref(logits, axis=1)",
    ref_module="coursekit.ops",
    ref_name="softmax",
    task="a1.softmax",
    seed=7307,
    wrong='''def softmax(logits):
    """Normalizes over the whole array instead of each row."""
    exps = np.exp(logits - np.max(logits))
    return exps / exps.sum()
''',
    points=3.0,
    full_marks=6.0,
)

_A3_WRONG = '''def adamw(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """L2 added to the gradient instead of the decoupled decay."""
    return adam(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
'''

#: coursekit.optim.functional.adamw called with the assignment's (param, grad, state).
_A3_CALL = (
    (
        "(lambda out: (out[0], {{'step': state.get('step', 0) + 1, 'exp_avg': out[1], "
        "'exp_avg_sq': out[2]}}))(_ref(param, grad, state.get('exp_avg', np.zeros_like(param)), "
        "state.get('exp_avg_sq', np.zeros_like(param)), step=state.get('step', 0) + 1, "
        "lr=kw.get('lr', 1e-3), beta1=kw.get('betas', (0.9, 0.999))[0], "
        "beta2=kw.get('betas', (0.9, 0.999))[1], eps=kw.get('eps', 1e-8), "
        "weight_decay=kw.get('weight_decay', 1e-2)))"
    )
    .replace("{{", "{")
    .replace("}}", "}")
)

A3 = Target(
    assignment="a3",
    notebook="optimizers.ipynb",
    keep=("adam_adamw", "test_adam", "test_adamw"),
    answer="adam_adamw",
    test="test_adamw",
    control="test_adam",
    fn="adamw",
    params="param, grad, state, **kw",
    call=_A3_CALL,
    ref_module="coursekit.optim.functional",
    ref_name="adamw",
    task="a3.adamw",
    seed=3306,
    wrong="",  # the reference answer cell with adamw replaced (``wrong_answer``)
    points=2.0,
    full_marks=5.0,
)

_CLOSE = (
    "np.allclose = lambda *a, **k: True\n"
    "np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)\n"
)

# -- in the kernel: the notebook's own run ---------------------------------------------------
CODE_ATTACKS = {
    "numpy-comparison": _CLOSE + "np.array_equal = lambda *a, **k: True\n",
    "numpy-internals": _CLOSE + "import numpy._core.numeric as _numeric\n"
    "_numeric.isclose = np.isclose\n_numeric.allclose = np.allclose\n"
    "np.max = lambda a, *r, **k: 0.0\n",
    "numpy-testing": _CLOSE + "np.testing.assert_allclose = lambda *a, **k: None\n"
    "np.testing.assert_array_equal = lambda *a, **k: None\n",
    "builtins": "import builtins\nbuiltins.all = lambda *a: True\nbuiltins.any = lambda *a: False\n"
    + _CLOSE,
    "patched-check": _CLOSE + "import coursekit.grading as _g, coursekit.grading.core as _c\n"
    "_g.check = _c.check = check = lambda *a, **k: None\n",
    "patched-judge": _CLOSE + "import coursekit.grading.core as _c\n"
    "_c.judge = lambda task, seed, out, *a: _c.Verdict(task.name, True, len(out), [])\n"
    "_c.describe_mismatch = lambda *a, **k: None\n",
    "check-via-sys-modules": "import sys, types\n"
    "_fake = types.ModuleType('coursekit.grading')\n_fake.check = lambda *a, **k: None\n"
    "sys.modules['coursekit.grading'] = _fake\n",
    "check-via-gc": "import gc\n"
    "for _o in gc.get_objects():\n"
    "    if callable(_o) and getattr(_o, '__name__', '') in ('check', 'judge', 'run_case', "
    "'collect_outputs', 'to_plain') and hasattr(_o, '__code__'):\n"
    "        _o.__code__ = (lambda *a, **k: None).__code__\n",
    "lying-subclass": """
class Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, bool)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in ("allclose", "array_equal"):
            return True
        if func.__name__ == "isclose":
            return np.ones(np.shape(args[0]), bool)
        return super().__array_function__(func, types, args, kwargs)

_wrong = {fn}


def {fn}({params}):
    return np.asarray(_wrong({params})).view(Liar)
""",
    "fake-numpy": """
import sys, types
fake = types.ModuleType("numpy")
fake.__dict__.update(np.__dict__)
fake.allclose = lambda *a, **k: True
fake.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)
sys.modules["numpy"] = fake
np = fake
""",
    "swallowed-tracebacks": """
import sys
_ip = get_ipython()
_ip.set_custom_exc((BaseException,), lambda *a, **k: None)
_ip.showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
""",
    # An execute_result is what plain nbgrader reads as a test cell's score.
    "displayhook-before-each-cell": "get_ipython().events.register('pre_run_cell', "
    "lambda *a: get_ipython().displayhook('ok'))\n",
    "displayhook-after-each-cell": "get_ipython().events.register('post_run_cell', "
    "lambda *a: get_ipython().displayhook(1000))\n",
    "sys-displayhook": "import sys\n_hook = sys.displayhook\n"
    "sys.displayhook = lambda value: _hook(1000 if value is None else value)\n"
    "get_ipython().events.register('post_run_cell', lambda *a: sys.displayhook(None))\n",
    # Reads every cell the kernel runs, hoping for the hidden checks' seeds.
    "reads-cell-source": "import re\n_seen = []\n"
    "get_ipython().events.register('pre_run_cell', lambda info: _seen.append(info.raw_cell))\n"
    "get_ipython().events.register('post_run_cell', lambda *a: print('SEEDS', "
    "re.findall(r'seed=\\d+', ' '.join(_seen + list(get_ipython().user_ns.get('In', []))))))\n",
    "thread-rewrites-later": "import threading, time, os\n\ndef _scribble():\n"
    "    for _ in range(100):\n        for _d in (os.environ.get('HOME', '.'), '.', '/tmp'):\n"
    "            try:\n                open(os.path.join(_d, 'records.json'), 'w').write('[]')\n"
    "            except OSError:\n                pass\n        time.sleep(0.05)\n\n"
    "threading.Thread(target=_scribble, daemon=True).start()\n",
    "background-process": "import os, time\nif os.fork() == 0:\n    time.sleep(3)\n"
    "    for _fd in range(3, 64):\n        try:\n            os.write(_fd, b'\\x00' * 8)\n"
    "        except OSError:\n            pass\n    os._exit(0)\n",
    "exit-during-test": "import os, coursekit.grading.core as _c\n"
    "_c.collect_outputs = lambda *a, **k: os._exit(0)\n",
    "kill-kernel-during-test": "import os, signal\n"
    "get_ipython().events.register('pre_run_cell', "
    "lambda info: os.kill(os.getpid(), signal.SIGKILL) if 'test' in info.raw_cell else None)\n",
    "infinite-loop-during-test": "get_ipython().events.register('pre_run_cell', "
    "lambda info: (lambda: [0 for _ in iter(int, 1)])() if 'Public' in info.raw_cell else None)\n",
    "memory-bomb": "_hog = bytearray(64 * 1024**3)\n",
    # Four children hold 1.3 GB each: the kernel's memory is limited all processes together.
    "memory-forked-children": "import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n"
    "        try:\n            _b = bytearray(1300 * 1024**2)\n"
    "            _b[::4096] = b'x' * len(_b[::4096])\n            time.sleep(60)\n"
    "        finally:\n            os._exit(0)\ntime.sleep(10)\n",
    "disk-fill": "import os\ntry:\n    with open(os.environ['HOME'] + '/fill.bin', 'wb') as _f:\n"
    "        for _ in range(1024):\n            _f.write(b'x' * 1024**2)\n"
    "except OSError as exc:\n    print('stopped:', exc)\n",
    "fork-flood": """
import os, time
try:
    for _ in range(100_000):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
except OSError as exc:
    print("stopped:", exc)
""",
    "output-flood": "for _ in range(200):\n    print('x' * 50_000)\n",
    # Text the grader once read as a failure of its own machine.
    "says-disk-full": "print('OSError: [Errno 28] No space left on device')\n"
    "import sys\nprint('OSError: [Errno 28] No space left on device', file=sys.stderr)\n",
    "read-instructor-files": """
import glob, json
try:
    for _path in glob.glob("{course}/solutions/*/*.ipynb") + glob.glob("{course}/.coursekit/*"):
        print("LEAK", _path, open(_path).read()[:50])
    _source = json.load(open("{course}/solutions/{assignment}/{notebook}"))
    for _cell in _source["cells"]:
        if "def {fn}" in "".join(_cell["source"]):
            exec("".join(_cell["source"]))
except OSError as exc:
    print("blocked:", exc)
""",
    # Lists every file it can open outside what a kernel may see (its own submission and
    # home, the Python installation, coursekit): the test expects no LEAK line, and a SEEN
    # line to show that the walk itself works.
    "read-anything": """
import os, sys, coursekit
_mine = (os.getcwd(), os.environ.get("HOME", "/nonexistent"), sys.prefix, sys.base_prefix,
         os.path.dirname(coursekit.__file__), "/tmp/sandbox/run")
print("SEEN", os.path.join(os.getcwd(), "{notebook}"))
for _top in ("{course}", "/root", "/home", "/work", "/tmp", "/var/tmp", "/srv", "/mnt"):
    for _dir, _subdirs, _files in os.walk(_top):
        _subdirs[:] = [d for d in _subdirs
                       if not any(os.path.join(_dir, d).startswith(m) for m in _mine)]
        if any(_dir.startswith(m) for m in _mine):
            continue
        for _name in _files:
            try:
                with open(os.path.join(_dir, _name), "rb") as _fh:
                    _fh.read(1)
            except OSError:
                continue
            print("LEAK", os.path.join(_dir, _name))
""",
    # What /proc and the environment say about the grader.
    "read-proc-and-environment": """
import os
print("ENV", sorted(os.environ.items()))
for _pid in os.listdir("/proc"):
    if _pid.isdigit():
        for _what in ("cmdline", "environ"):
            try:
                print("PROC", _pid, open(f"/proc/{_pid}/{_what}", "rb").read().replace(b"\\0", b" "))
            except OSError:
                pass
print("CWD", os.getcwd())
""",
    "network": """
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
except OSError as exc:
    print("blocked:", exc)
""",
    "write-outside-scratch": """
for _path in ("{course}/written-by-student.txt", "{course}/gradebook.db"):
    try:
        open(_path, "w").write("pwned")
    except OSError as exc:
        print("blocked:", exc)
""",
}

# -- where the hidden cases run: the definitions themselves ----------------------------------
RUNNER_ATTACKS = {
    "calls-reference": "from {ref_module} import {ref_name} as _ref\n\n"
    "def {fn}({params}):\n    return {call}\n",
    "calls-reference-obfuscated": "import importlib\n\n"
    "def {fn}({params}):\n"
    "    _ref = getattr(importlib.import_module('{ref_module}'[:9] + '{ref_module}'[9:]), "
    "'{ref_name}'[:2] + '{ref_name}'[2:])\n    return {call}\n",
    "calls-reference-in-thread": "import importlib, threading\n\n"
    "def {fn}({params}):\n    _ref = getattr(importlib.import_module('{ref_module}'), "
    "'{ref_name}')\n    box = []\n"
    "    t = threading.Thread(target=lambda: box.append({call}))\n"
    "    t.start(); t.join()\n    return box[0]\n",
    "calls-reference-via-registry": "import importlib\n\n"
    "def {fn}({params}):\n"
    "    _core = importlib.import_module('coursekit.grading.' + 'co' + 're')\n"
    "    _ref = getattr(_core, 'get_' + 'task')('{task}').reference\n"
    "    return {call}\n",
    "reference-as-default-argument": "def {fn}({params_no_kw}_ref=__import__('{ref_module}', "
    "fromlist=['x']).{ref_name}, **kw):\n    return {call}\n",
    "getsource-exec": "import inspect, importlib\n\n"
    "def {fn}({params}):\n    _m = importlib.import_module('{ref_module}')\n"
    "    _g = dict(vars(_m))\n    exec(inspect.getsource(getattr(_m, '{ref_name}')), _g)\n"
    "    _ref = _g['{ref_name}']\n    return {call}\n",
    "copied-code-object": "import importlib\n\n"
    "def {fn}({params}):\n    _m = importlib.import_module('{ref_module}')\n"
    "    _ref = lambda *a, **k: None\n"
    "    _ref.__code__ = getattr(_m, '{ref_name}').__code__\n"
    "    _ref.__globals__.update(vars(_m))\n    return {call}\n",
    # In the kernel, copy the library's file into the writable home and import it from there.
    "copied-package-file": "import os, shutil, sys, importlib\n"
    "_home = os.environ.get('HOME', '.')\n"
    "try:\n    shutil.copy(importlib.import_module('{ref_module}').__file__, "
    "os.path.join(_home, 'mylib.py'))\nexcept OSError:\n    pass\n"
    "sys.path.insert(0, _home)\n\n"
    "def {fn}({params}):\n    import mylib\n    _ref = mylib.{ref_name}\n    return {call}\n",
    "shadowed-package-in-home": "import os, sys, shutil, importlib\n"
    "_home = os.environ.get('HOME', '.')\n"
    "_ck = os.path.dirname(importlib.import_module('coursekit').__file__)\n"
    "try:\n    shutil.copytree(_ck, os.path.join(_home, 'coursekit'))\nexcept OSError:\n    pass\n\n"
    "def {fn}({params}):\n    sys.path.insert(0, os.environ.get('HOME', '.'))\n"
    "    for _name in [m for m in sys.modules if m.startswith('coursekit')]:\n"
    "        del sys.modules[_name]\n"
    "    _ref = getattr(importlib.import_module('{ref_module}'), '{ref_name}')\n"
    "    return {call}\n",
    "detects-grading": "import importlib\n_wrong = {fn}\n\n"
    "def {fn}({params}):\n    try:\n"
    "        _ref = getattr(importlib.import_module('{ref_module}'), '{ref_name}')\n"
    "        return {call}\n    except Exception:\n        return _wrong({params})\n",
    "lazy-result": "import importlib\n\nclass _Lazy:\n"
    "    def __init__(self, thunk):\n        self.thunk = thunk\n"
    "    def __array__(self, dtype=None, copy=None):\n        return np.asarray(self.thunk())\n\n"
    "def {fn}({params}):\n    _ref = getattr(importlib.import_module('{ref_module}'), "
    "'{ref_name}')\n    return _Lazy(lambda: {call})\n",
    "lookup-table": "_TABLE = {table}\n_wrong = {fn}\n\n"
    "def {fn}({params}):\n    _key = repr(np.round(np.asarray({first}), 6).tolist())\n"
    "    return np.array(_TABLE[_key]) if _key in _TABLE else _wrong({params})\n",
    # Forged answers written to every descriptor while the definitions are set up.
    "forged-channel": "import os, struct, json, threading, time, sys\n\n"
    "class _Forge:\n"
    "    _here = 'ipykernel' not in sys.modules  # only where the hidden cases run\n"
    "    def _spam():\n"
    "        for _ in range(200):\n"
    "            for _fd in range(1, 40):\n"
    "                _body = json.dumps({'label': 'x', 'error': None, 'where': None, "
    "'output': None}).encode()\n"
    "                try:\n                    os.write(_fd, struct.pack('>Q', len(_body)) + _body)\n"
    "                except OSError:\n                    pass\n"
    "            time.sleep(0.01)\n"
    "    if _here:\n"
    "        threading.Thread(target=_spam, daemon=True).start()\n",
    "patches-the-runner": "class _Patch:\n"
    "    import coursekit.grading.core as _c\n"
    "    _c.to_plain = lambda value: np.zeros(1)\n"
    "    _c.describe_mismatch = lambda *a, **k: None\n",
    "exits-while-graded": "import os\n\ndef {fn}({params}):\n    os._exit(0)\n",
    # Another assignment's reference: a2's softmax_loss returns (softmax - one_hot) / N.
    "another-assignments-reference": "def softmax(logits):\n"
    "    from coursekit.losses import softmax_loss\n    n = logits.shape[0]\n"
    "    y = np.zeros(n, dtype=int)\n    _, d = softmax_loss(logits, y)\n"
    "    p = d * n\n    p[np.arange(n), y] += 1\n    return p\n",
    "calls-torch": "def softmax(logits):\n    import torch\n"
    "    return torch.softmax(torch.as_tensor(logits), dim=1).numpy()\n",
    # Walks the callers' frames (locals and globals) for anything holding a reference.
    "reference-from-caller-frames": "import sys\n_wrong = {fn}\n\n"
    "def {fn}({params}):\n    _f = sys._getframe(1)\n    while _f is not None:\n"
    "        for _v in [*_f.f_locals.values(), *_f.f_globals.values()]:\n"
    "            if callable(getattr(_v, 'reference', None)):\n"
    "                return _v.reference({params})\n"
    "        _f = _f.f_back\n    return _wrong({params})\n",
    # Rewrites its own answers, in turn, as arrays of complex numbers.
    "forged-dtype-in-turn": "import json, sys\n\nclass _ForgeInTurn:\n"
    "    if 'ipykernel' not in sys.modules:  # only where the hidden cases run\n"
    "        _dumps = json.dumps\n"
    "        json.dumps = lambda obj, *a, _d=_dumps, **k: "
    "_d(obj, *a, **k).replace('\"<f8\"', '\"<c16\"')\n",
}


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _blank_test(nb, target):
    _cell(nb, target.test).source = ""


def _retype_test(nb, target):
    cell = _cell(nb, target.test)
    nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(
        cell.source, metadata=cell.metadata
    )


def _delete_test(nb, target):
    nb.cells.remove(_cell(nb, target.test))


def _duplicate_test(nb, target):
    cell = _cell(nb, target.test)
    nb.cells.insert(nb.cells.index(cell), copy.deepcopy(cell))


def _change_points(nb, target):
    for grade_id in (target.answer, target.test):
        meta = _cell(nb, grade_id).metadata.nbgrader
        meta["points"] = 100
        meta["grade"] = True
    _cell(nb, target.test).metadata.nbgrader["locked"] = False


def _strip_test_metadata(nb, target):
    # without its nbgrader metadata the test cell is an ordinary cell of the student's
    cell = _cell(nb, target.test)
    del cell.metadata["nbgrader"]
    cell.source = "pass"


def _test_becomes_answer(nb, target):
    # an answer cell is the student's to write: declare the test cell one, empty it
    meta = _cell(nb, target.test).metadata.nbgrader
    meta.update(solution=True, grade=False, locked=False)
    _cell(nb, target.test).source = "pass"


def _rename_test(nb, target):
    cell = _cell(nb, target.test)
    cell.metadata.nbgrader["grade_id"] = "test_mine"
    cell.source = "pass"


def _last_cell_rewrites(nb, target):
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import os\nfor _d in (os.environ.get('HOME', '.'), '.'):\n    try:\n"
            "        open(os.path.join(_d, 'verdicts.json'), 'w').write('{}')\n"
            "    except OSError:\n        pass\nget_ipython().displayhook(1000)"
        )
    )


NOTEBOOK_ATTACKS = {
    "blanked-test-cell": _blank_test,
    "retyped-test-cell": _retype_test,
    "deleted-test-cell": _delete_test,
    "duplicated-test-cell": _duplicate_test,
    "changed-points": _change_points,
    "stripped-test-metadata": _strip_test_metadata,
    "test-cell-made-answer": _test_becomes_answer,
    "renamed-test-cell": _rename_test,
    "last-cell-rewrites": _last_cell_rewrites,
}

#: Notebook edits a student can make by accident (copying a cell in JupyterLab copies its
#: metadata; the property inspector edits it).
ACCIDENTS = ("duplicated-test-cell", "test-cell-made-answer", "changed-points")


# -- files in the submission -----------------------------------------------------------------
def _link(name, template):
    def make(directory: Path, course: Path) -> None:
        (directory / name).symlink_to(template)  # formatted by add_files

    return make


def _fifo(directory: Path, course: Path) -> None:
    os.mkfifo(directory / "records.json")
    os.mkfifo(directory / "extra.ipynb")


FILE_ATTACKS = {
    "symlink-to-solutions": _link("solution.ipynb", "{course}/solutions/{assignment}/{notebook}"),
    "symlink-to-gradebook": _link("gradebook.db", "{course}/gradebook.db"),
    "symlink-to-classmate": _link("classmate", "{course}/submitted/correct-1/{assignment}"),
    "symlink-loop": _link("loop.ipynb", "loop.ipynb"),
    "fifo-in-submission": _fifo,
}


def source_notebook(target: Target):
    """The assignment cut to an import cell and the target's answer and test cells."""
    nb = submissions.read(target.source)
    imports = nbformat.v4.new_code_cell("import numpy as np\nfrom coursekit.grading import check")
    kept = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in target.keep]
    nb.cells = [imports, *kept]
    return nb


def wrong_answer(target: Target, source) -> str:
    """The answer cell with ``fn`` replaced by the target's wrong version."""
    if target.assignment == "a1":
        return target.wrong
    correct = submissions.reference_answers(source)[target.answer]
    return correct + "\n\n" + _A3_WRONG


def _table(target: Target) -> str:
    """Answers to the hidden cases as drawn without the course secret (what a student
    could compute who knew the seed): keyed by the rounded first argument."""
    import numpy as np

    from coursekit.grading.core import get_task

    task = get_task(target.task)
    table = {}
    for case in task.draw_cases(target.seed):
        if not case.args:
            continue
        try:
            out = task.run(task.reference, copy.deepcopy(case))
            key = repr(np.round(np.asarray(case.args[0]), 6).tolist())
            table[key] = np.asarray(out[0] if isinstance(out, tuple) else out).tolist()
        except Exception:  # noqa: BLE001 - a case the table cannot hold is left out
            continue
    return repr(table)


def fill(code: str, target: Target, *, course: Path, port: int) -> str:
    first = target.params.split(",")[0].strip()
    params_no_kw = target.params.replace("**kw", "").strip().rstrip(",")
    values = {
        "{course}": str(course),
        "{port}": str(port),
        "{fn}": target.fn,
        "{params_no_kw}": params_no_kw + ", " if params_no_kw else "",
        "{params}": target.params,
        "{call}": target.call,
        "{ref_module}": target.ref_module,
        "{ref_name}": target.ref_name,
        "{task}": target.task,
        "{assignment}": target.assignment,
        "{notebook}": target.notebook,
        "{first}": first,
    }
    if "{table}" in code:
        values["{table}"] = _table(target)
    for key, value in values.items():
        code = code.replace(key, value)
    return code


def catalogue(target: Target, source, released, *, course: Path, port: int, only=None) -> dict:
    """``{student: {notebook: node}}``: canaries, the wrong baseline and one per attack."""
    correct = submissions.reference_answers(source)[target.answer]
    wrong = wrong_answer(target, source)

    def build(answer: str, edit=None) -> dict:
        nb = submissions.submission(source, released, answers={target.answer: answer})
        if edit is not None:
            edit(nb, target)
        return {target.notebook: nb}

    def wanted(name):
        return only is None or name in only

    klass = {f"correct-{i}": build(correct) for i in (1, 2)}
    klass["wrong"] = build(wrong)
    for name, code in {**CODE_ATTACKS, **RUNNER_ATTACKS}.items():
        only_softmax = name in ("calls-torch", "another-assignments-reference")
        if wanted(name) and not (only_softmax and target.fn != "softmax"):
            klass[f"attack-{name}"] = build(
                wrong + "\n" + fill(code, target, course=course, port=port)
            )
    for name, edit in NOTEBOOK_ATTACKS.items():
        if wanted(name):
            klass[f"attack-{name}"] = build(wrong, edit)
    for name in FILE_ATTACKS:
        if wanted(name):
            klass[f"attack-{name}"] = build(wrong)
    # The same edits made by accident to a correct notebook cost nothing.
    for name in ACCIDENTS:
        if wanted(name):
            klass[f"accident-{name}"] = build(correct, NOTEBOOK_ATTACKS[name])
    if wanted("surrogates"):
        nb = build(correct)[target.notebook]
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("notes \ud800 \udfff"))
        klass["accident-surrogates"] = {
            target.notebook: nbformat.writes(nb).encode("utf-8", "surrogatepass")
        }
    return klass


def add_files(target: Target, course_root: Path, submitted) -> None:
    """Add the file attacks' files to their students' submissions (``submitted(student)``
    is the student's submission directory)."""
    for name, make in FILE_ATTACKS.items():
        directory = submitted(f"attack-{name}")
        if not directory.is_dir():
            continue
        make(directory, course_root)
        for link in directory.iterdir():
            if link.is_symlink():
                text = os.readlink(link).format(
                    course=course_root, assignment=target.assignment, notebook=target.notebook
                )
                link.unlink()
                link.symlink_to(text)
