"""The environment a submission was graded in, recorded with every result.

A grade is only as good as the environment that produced it: the coursekit whose hidden
tests and reference judged it, the Python and the packages the student's code ran on, the
limits it ran under. :func:`environment` describes the grading process's environment:

* ``coursekit``: where the grader imports coursekit from and a digest of its source
  (every ``.py`` file of the package);
* ``kernel_coursekit``: the same for the coursekit a student's kernel imports, found by
  starting the kernel's interpreter the way Jupyter starts it (its ``argv[0]``, the
  grader's environment, the working directory of a submission), outside the sandbox;
* ``python`` and the versions of the packages grading depends on (:data:`PACKAGES`);
* ``limits``: the sandbox limits and nbgrader's per-cell timeout.

:func:`environment_digest` hashes all of it; a stored result whose digest differs from the
current one was graded somewhere else and is graded again by the next run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

#: Packages whose version can change a grade or whether grading works at all.
PACKAGES = (
    "numpy",
    "nbgrader",
    "nbclient",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "jupyter_client",
    "traitlets",
    "matplotlib",
    "torch",
)

_PROBE = r"""
import importlib.util, json, os, sys
out = {"executable": sys.executable, "python": sys.version.split()[0]}
try:
    spec = importlib.util.find_spec("coursekit")
    if spec is None or not spec.origin:
        out["coursekit"] = None
        out["error"] = "ModuleNotFoundError: No module named 'coursekit'"
    else:
        out["coursekit"] = os.path.dirname(os.path.realpath(spec.origin))
except Exception as exc:
    out["coursekit"] = None
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def source_digest(package_dir: str | os.PathLike) -> str:
    """sha256 of every ``.py`` file under ``package_dir`` (paths and contents)."""
    root = Path(package_dir)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def grader_coursekit() -> str:
    """The directory of the coursekit package this process imported."""
    import coursekit

    return str(Path(coursekit.__file__).resolve().parent)


def kernel_argv(kernel_name: str = "python3") -> list[str]:
    """The command Jupyter would start for ``kernel_name`` (``python`` is this interpreter)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = list(KernelSpecManager().get_kernel_spec(kernel_name).argv)
    except Exception:  # noqa: BLE001 - no kernelspec: jupyter_client's native kernel
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if argv and argv[0] in {"python", f"python{sys.version_info[0]}"}:
        argv[0] = sys.executable  # what jupyter_client does for the native kernel
    return argv


def kernel_coursekit(kernel_name: str = "python3", timeout: float = 60.0) -> dict:
    """Where a student's kernel imports coursekit from: ``{"coursekit": dir or None, ...}``.

    The sandbox's own resolution (:func:`coursekit.instructor.sandbox.kernel_package`: the
    kernel's interpreter, its allowlisted environment, a neutral working directory) where
    the sandbox module has it, so that the record names what the kernel really imports.
    """
    try:
        from coursekit.instructor.sandbox import SandboxError, kernel_package, kernel_python
    except ImportError:
        return _probe_kernel_coursekit(kernel_name, timeout)
    python = kernel_python(kernel_name)
    try:
        return {"coursekit": kernel_package(python), "executable": python}
    except SandboxError as exc:
        return {"coursekit": None, "error": str(exc), "executable": python}


def _probe_kernel_coursekit(kernel_name: str, timeout: float) -> dict:
    """Where a student's kernel imports coursekit from: ``{"coursekit": dir or None, ...}``.

    Asks the kernel's interpreter's import system (``find_spec``, nothing is imported), run with the grader's environment in an empty working
    directory (a kernel runs in the submission's directory, which holds only notebooks).
    """
    exe = kernel_argv(kernel_name)[0]
    with tempfile.TemporaryDirectory(prefix="ck-probe-") as cwd:
        try:
            proc = subprocess.run(
                [exe, "-c", _PROBE],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"coursekit": None, "error": f"{type(exc).__name__}: {exc}", "executable": exe}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"coursekit": None, "error": proc.stderr.strip()[-300:], "executable": exe}


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def limits(config=None) -> dict:
    """The sandbox limits and nbgrader's cell timeout (from ``config`` when given)."""
    try:
        from coursekit.instructor.sandbox import Limits

        out = dict(asdict(Limits()))
    except (ImportError, TypeError) as exc:  # a broken sandbox module is reported, not hidden
        out = {"error": f"{type(exc).__name__}: {exc}"}
    timeout = None
    if config is not None:
        timeout = config.get("Execute", {}).get("timeout")
    out["cell_timeout"] = timeout
    return out


@functools.lru_cache(maxsize=8)
def _environment(kernel_name: str, cell_timeout) -> str:
    grader = grader_coursekit()
    kernel = kernel_coursekit(kernel_name)
    kernel_dir = kernel.get("coursekit")
    env = {
        "coursekit": {"path": grader, "digest": source_digest(grader)},
        "kernel_coursekit": {
            "path": kernel_dir,
            "digest": (
                source_digest(kernel_dir)
                if kernel_dir and kernel_dir != grader and os.path.isdir(kernel_dir)
                else (source_digest(grader) if kernel_dir == grader else None)
            ),
            "error": kernel.get("error"),
        },
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages": {name: _version(name) for name in PACKAGES},
        "limits": {**limits(), "cell_timeout": cell_timeout},
    }
    return json.dumps(env, sort_keys=True)


def environment(config=None, kernel_name: str = "python3") -> dict:
    """The description of this process's grading environment (see the module docstring).

    Cached per process: a worker describes its environment once.
    """
    timeout = None
    if config is not None:
        timeout = config.get("Execute", {}).get("timeout")
    return json.loads(_environment(kernel_name, timeout))


def environment_digest(env: dict) -> str:
    """A short digest of an :func:`environment` description (paths excluded)."""
    relevant = {
        "coursekit": env.get("coursekit", {}).get("digest"),
        "kernel_coursekit": env.get("kernel_coursekit", {}).get("digest"),
        "python": env.get("python"),
        "packages": env.get("packages"),
        "limits": env.get("limits"),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def describe_difference(old: dict, new: dict) -> str:
    """What differs between two recorded environments, in a few words."""
    parts = []
    if old.get("coursekit", {}).get("digest") != new.get("coursekit", {}).get("digest"):
        parts.append("coursekit source changed")
    if old.get("kernel_coursekit", {}).get("digest") != new.get("kernel_coursekit", {}).get(
        "digest"
    ):
        parts.append("the kernel's coursekit changed")
    if old.get("python") != new.get("python"):
        parts.append(f"Python {old.get('python')} -> {new.get('python')}")
    oldp, newp = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(oldp) | set(newp)):
        if oldp.get(name) != newp.get(name):
            parts.append(f"{name} {oldp.get(name)} -> {newp.get(name)}")
    if old.get("limits") != new.get("limits"):
        parts.append("limits changed")
    return ", ".join(parts) or "unknown difference"


def mismatch(env: dict) -> str | None:
    """Why the grader and the kernel would judge with different coursekits, or ``None``."""
    grader = env.get("coursekit", {}).get("path")
    kernel = env.get("kernel_coursekit", {})
    if kernel.get("path") is None:
        return (
            f"the grader imports coursekit from {grader}, but a student's kernel "
            f"({kernel_argv()[0]}) cannot import coursekit at all"
            + (f" ({kernel['error']})" if kernel.get("error") else "")
        )
    if kernel.get("path") != grader and kernel.get("digest") != env["coursekit"].get("digest"):
        return (
            f"the grader imports coursekit from {grader}, but a student's kernel imports "
            f"it from {kernel['path']} (different source)"
        )
    return None
