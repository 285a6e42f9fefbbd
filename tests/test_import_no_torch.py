"""Importing coursekit and every numpy module must not import torch (torch is an optional extra).

Each check runs in a fresh interpreter: the test process itself has torch loaded already.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import coursekit

TORCH_PACKAGE = "coursekit.torch_extras"


def _numpy_modules() -> list[str]:
    """Every module under coursekit/ except the PyTorch part, found without importing them."""
    root = Path(coursekit.__file__).parent
    names = []
    for info in pkgutil.walk_packages([str(root)], prefix="coursekit."):
        name = info.name
        if name == TORCH_PACKAGE or name.startswith(TORCH_PACKAGE + "."):
            continue
        if name.split(".")[-1] == "__main__":
            continue
        names.append(name)
    return sorted(names)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_module_list_covers_the_regularization_modules():
    modules = _numpy_modules()
    for name in [
        "coursekit.regularization",
        "coursekit.clipping",
        "coursekit.averaging",
        "coursekit.early_stopping",
    ]:
        assert name in modules
    assert not any(m.startswith(TORCH_PACKAGE) for m in modules)


def test_numpy_modules_do_not_import_torch():
    modules = _numpy_modules()
    code = (
        "import sys, importlib\n"
        "import coursekit\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'torch' not in sys.modules, f'importing {name} imported torch'\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_torch_extras_says_how_to_install_torch_when_it_is_missing():
    # sys.modules["torch"] = None makes "import torch" fail as if torch were not installed
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import coursekit, coursekit.clipping\n"
        "try:\n"
        f"    import {TORCH_PACKAGE}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without torch')\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert 'pip install "coursekit[torch]"' in result.stdout
