"""Deferred imports in the hidden-case runner (coursekit.grading.deferred)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from coursekit.grading.deferred import DeferredModule, deferred_bindings, module_exists


def _bindings(source: str):
    return deferred_bindings(ast.parse(source).body[0])


def test_plotting_imports_are_deferred_and_bound_to_the_names_import_would_bind():
    plain = _bindings("import matplotlib.pyplot as plt")
    assert set(plain) == {"plt"} and isinstance(plain["plt"], DeferredModule)
    dotted = _bindings("import matplotlib.pyplot")
    assert set(dotted) == {"matplotlib"}
    several = _bindings("import matplotlib, tqdm.auto as progress")
    assert set(several) == {"matplotlib", "progress"}


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np",  # not a plotting library: runs as written
        "import matplotlib.pyplot, numpy",  # mixed: runs as written
        "from matplotlib import pyplot as plt",  # could be a class or a constant
        "import matplotlib.no_such_module as m",  # must fail with its own ImportError
        "x = 1",
    ],
)
def test_everything_else_runs_as_written(source):
    assert _bindings(source) is None


def test_module_exists_does_not_import_the_package():
    code = (
        "import sys; from coursekit.grading.deferred import module_exists\n"
        "assert module_exists('matplotlib.pyplot')\n"
        "assert not module_exists('matplotlib.not_there')\n"
        "assert not module_exists('no_such_package_at_all')\n"
        "print('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_deferred_module_imports_on_first_use_and_behaves_as_the_module():
    code = (
        "import ast, sys\n"
        "from coursekit.grading.deferred import deferred_bindings\n"
        "ns = deferred_bindings(ast.parse('import matplotlib.pyplot').body[0])\n"
        "before = 'matplotlib.pyplot' in sys.modules\n"
        "mpl = ns['matplotlib']\n"
        "backend = mpl.pyplot.get_backend()\n"  # import a.b makes a.b an attribute of a
        "import matplotlib\n"
        "print(before, 'matplotlib.pyplot' in sys.modules, mpl.__version__ == matplotlib.__version__)"
    )
    env = {"MPLBACKEND": "agg", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]
    assert module_exists("matplotlib")
