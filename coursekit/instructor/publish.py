"""``coursekit publish DIR``: the student edition of the course, as a git-ready folder.

This repository is the instructor's private course; students get the *student edition*,
a separate public repository the instructor fills with this command. What goes in is an
allowlist, so an instructor file added later never leaks by default:

- ``lectures/`` (every file but checkpoints and caches);
- ``assignments/<aN>/``: the release directory (nbgrader's student versions), and a
  pristine copy of each released notebook plus the grader's settings (per-cell timeout,
  notebook wall time, output limit) in ``coursekit/student/edition/``, which
  ``coursekit check`` compares the student's notebook with;
- the library: the top-level modules of ``coursekit`` and the subpackages in
  :data:`LIBRARY_PACKAGES` (never ``coursekit.grading``, ``coursekit.instructor`` or the
  instructor command line ``coursekit.cli``);
- a student ``pyproject.toml`` (the ``student`` extra as its dependencies, and a
  ``coursekit`` command that only offers ``check``), ``README.md``, ``LICENSE``,
  ``constraints.txt`` and ``.gitignore``.

Before anything is written, the edition is scanned for hidden material (:func:`leaks`):
solution and hidden-test markers, hidden seeds, lines of the solutions and hidden tests
that the release does not show. Re-running updates the folder in place: files the last
publish wrote and this one does not are removed, other files (``.git``, anything the
instructor added) are left alone, and the changes are listed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import tomllib

import coursekit
from coursekit.instructor.course import Course, CourseError

__all__ = ["LIBRARY_PACKAGES", "Outcome", "PublishError", "edition_files", "leaks", "publish"]

#: Subpackages of ``coursekit`` that ship in the student edition (an allowlist).
LIBRARY_PACKAGES = ("data", "optim", "student", "torch_extras")
#: Where ``coursekit check`` finds the release copies and the grader's settings.
EDITION_DATA = "coursekit/student/edition"
#: The list of files the last publish wrote (relative paths), kept in the edition.
MANIFEST = ".coursekit-edition.json"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MIN_LINE = 12
#: Consecutive solution lines a lecture may not show.
RUN = 4
_TEMPLATES = Path(__file__).with_name("edition")
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git", ".venv"}
#: The grader's kernel environment (set by the course's nbgrader_config.py), shipped so
#: that ``coursekit check`` runs notebooks the same way.
_KERNEL_ENV = (
    "MPLBACKEND",
    "PYTHONWARNINGS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


class PublishError(CourseError):
    """The edition cannot be published (hidden material found, assignment not released)."""


@dataclass
class Outcome:
    """What a publish changed in the edition folder (relative paths)."""

    directory: Path
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def render(self) -> str:
        lines = [f"student edition: {self.directory}"]
        for verb, paths in (("added", self.added), ("changed", self.changed)):
            lines += [f"  {verb:8s} {p}" for p in paths]
        lines += [f"  removed  {p}" for p in self.removed]
        lines.append(
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )
        return "\n".join(lines)


def _files_under(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                found.append(Path(root) / name)
    return found


def _library_files() -> dict[str, bytes]:
    package = Path(coursekit.__file__).resolve().parent
    files = {}
    for path in sorted(package.glob("*.py")):
        files[f"coursekit/{path.name}"] = path.read_bytes()
    for sub in LIBRARY_PACKAGES:
        for path in _files_under(package / sub):
            rel = path.relative_to(package).as_posix()
            if rel.startswith("student/edition/"):
                continue  # the data of an earlier edition, never the instructor's
            files[f"coursekit/{rel}"] = path.read_bytes()
    init = files["coursekit/__init__.py"].decode()
    # the grading package stays with the instructor: not a lazily importable submodule here
    files["coursekit/__init__.py"] = init.replace('    "grading",\n', "").encode()
    return files


def _grader_settings(course: Course, assignments: dict[str, list[str]]) -> dict:
    from nbgrader.preprocessors import Execute

    from coursekit.instructor.sandbox import Limits

    config = course.config  # loading it sets the grader's kernel environment
    limits = Limits()
    return {
        "course_id": course.coursedir.course_id or course.root.name,
        "cell_timeout": Execute(config=config).timeout,
        "notebook_seconds": limits.notebook_seconds,
        "notebook_output_bytes": limits.notebook_output_bytes,
        "kernel_env": {k: os.environ[k] for k in _KERNEL_ENV if k in os.environ},
        "assignments": assignments,
        # which test cells the hidden tests grade (their ids only: the release names them)
        "hidden_graded": _hidden_graded(course, assignments),
    }


def _hidden_graded(course: Course, assignments: dict[str, list[str]]) -> dict:
    """``{assignment: [grade ids of test cells with hidden tests]}`` from the source notebooks."""
    found = {}
    for name, notebooks in assignments.items():
        ids = []
        for notebook in notebooks:
            path = course.directory("source") / name / notebook
            if not path.is_file():
                continue
            for cell in nbformat.read(str(path), as_version=4).cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if meta.get("grade") and "BEGIN HIDDEN TESTS" in cell.get("source", ""):
                    ids.append(meta.get("grade_id"))
        found[name] = ids
    return found


def _student_requirements() -> list[str]:
    pyproject = Path(coursekit.__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
        return list(extras["student"])
    return ["numpy>=1.24", "matplotlib>=3.7", "jupyterlab>=4.2", "ipywidgets>=8.1"]


def _torch_pin(constraints: str) -> str:
    match = re.search(r"^torch==([^\s;]+)", constraints, flags=re.M)
    return match.group(1) if match else "2.13.0"


def edition_files(course: Course, title: str = "Training deep networks") -> dict[str, bytes]:
    """``{relative path: content}`` of the student edition of ``course`` (nothing written)."""
    files: dict[str, bytes] = {}
    lectures = course.root / "lectures"
    if lectures.is_dir():
        for path in _files_under(lectures):
            files[path.relative_to(course.root).as_posix()] = path.read_bytes()
    release = course.directory("release")
    notebooks: dict[str, list[str]] = {}
    for name in course.assignments():
        released = release / name
        if not released.is_dir():
            raise PublishError(
                f"assignment {name!r} has not been released; run `coursekit release {name}` first"
            )
        notebooks[name] = []
        for path in _files_under(released):
            rel = path.relative_to(released).as_posix()
            files[f"assignments/{name}/{rel}"] = path.read_bytes()
            if path.suffix == ".ipynb":
                notebooks[name].append(rel)
                files[f"{EDITION_DATA}/release/{name}/{rel}"] = path.read_bytes()
    files.update(_library_files())
    settings = _grader_settings(course, notebooks)
    files[f"{EDITION_DATA}/grader.json"] = (json.dumps(settings, indent=1) + "\n").encode()

    repo = Path(coursekit.__file__).resolve().parents[1]
    constraints = (
        (repo / "constraints.txt").read_text() if (repo / "constraints.txt").is_file() else ""
    )
    meta = {"version": coursekit.__version__, "license": "MIT"}
    if (repo / "pyproject.toml").is_file():
        project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
        meta["license"] = project.get("license", {}).get("text", "MIT")
    deps = ",\n".join(f'    "{r}"' for r in _student_requirements())
    template = (_TEMPLATES / "pyproject.toml.in").read_text()
    files["pyproject.toml"] = template.format(dependencies=deps, **meta).encode()
    readme = (_TEMPLATES / "README.md").read_text()
    files["README.md"] = readme.format(
        title=title,
        torch=_torch_pin(constraints),
        cell_timeout=settings["cell_timeout"],
        notebook_minutes=f"{settings['notebook_seconds'] / 60:g}",
        output_mib=f"{settings['notebook_output_bytes'] / 1024**2:g}",
    ).encode()
    own_licence = next((course.root / n for n in ("LICENSE", "LICENSE.md", "LICENSE.txt")), None)
    if own_licence is not None and own_licence.is_file():
        files["LICENSE"] = own_licence.read_bytes()
    else:
        files["LICENSE"] = (_TEMPLATES / "LICENSE").read_text().format(title=title).encode()
    if constraints:
        files["constraints.txt"] = constraints.encode()
    files[".gitignore"] = (_TEMPLATES / "gitignore").read_bytes()
    return files


# -- the leak scan --------------------------------------------------------------------------


def _hidden_regions(source: str) -> tuple[list[list[str]], list[str]]:
    """(solution regions as lists of lines, hidden-test lines) of one source cell, stripped."""
    solution, hidden, region = [], [], None
    for line in source.splitlines():
        text = line.strip()
        if "BEGIN SOLUTION" in text:
            region = []
            solution.append(region)
        elif "BEGIN HIDDEN TESTS" in text:
            region = hidden
        elif "END SOLUTION" in text or "END HIDDEN TESTS" in text:
            region = None
        elif region is not None and text:
            region.append(text)
    return solution, hidden


@dataclass
class Secrets:
    """What the course's source notebooks hide from students."""

    solution: set[str]
    hidden: set[str]
    seeds: set[int]
    regions: list[list[str]]


def secrets(course: Course) -> Secrets:
    """Solution lines and regions, hidden-test lines and hidden seeds of the source notebooks."""
    found = Secrets(set(), set(), set(), [])
    for path in sorted(course.directory("source").glob("*/*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            regions, hidden = _hidden_regions(cell.get("source", ""))
            found.regions += regions
            found.solution.update(s for r in regions for s in r if len(s) >= MIN_LINE)
            found.hidden.update(s for s in hidden if len(s) >= MIN_LINE)
            for line in hidden:
                found.seeds.update(int(s) for s in re.findall(r"\bseed\s*=\s*(\d+)", line))
    return found


def _sequence(path: str, content: bytes) -> list[str]:
    """The stripped, non-empty lines of a file (of its cells' sources, for a notebook)."""
    text = content.decode("utf-8", errors="replace")
    if path.endswith(".ipynb"):
        try:
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(c.get("source", "") for c in nb.cells)
        except Exception:  # noqa: BLE001 - an unreadable notebook is scanned as text
            pass
    return [s for s in (line.strip() for line in text.splitlines()) if s]


def _runs(lines: list[str], size: int = RUN) -> set[tuple[str, ...]]:
    return {tuple(lines[i : i + size]) for i in range(len(lines) - size + 1)}


def _verbatim_library(path: str, content: bytes) -> bool:
    if not path.startswith("coursekit/") or path.startswith(f"{EDITION_DATA}/"):
        return False
    original = Path(coursekit.__file__).resolve().parent / path[len("coursekit/") :]
    if not original.is_file():
        return False
    expected = original.read_bytes()
    if path == "coursekit/__init__.py":
        expected = expected.replace(b'    "grading",\n', b"")
    return content == expected


def leaks(course: Course, files: dict[str, bytes]) -> list[str]:
    """Hidden material in ``files``: markers, seeds, solution or hidden-test lines.

    Nowhere: a solution or hidden-test marker, a hidden seed, a hidden-test line, the
    course secret (``.coursekit/secret``, from which the grader draws hidden inputs). A
    solution line (of 12 or more characters) that the release does not show is a leak
    anywhere but in the library and the lectures, which are public teaching material: the
    library holds the reference implementations by design (the README says so) and ships
    verbatim, and a lecture may share a line with a solution, but not a run of
    :data:`RUN` consecutive solution lines.
    """
    found = secrets(course)
    released: set[str] = set()
    for path, content in files.items():
        if path.startswith("assignments/"):
            released.update(_sequence(path, content))
    solution = found.solution - released
    runs = set()
    for region in found.regions:
        runs |= {r for r in _runs(region) if sum(s in solution for s in r) >= 2}
    seed_re = re.compile(r"\bseed\s*=\s*(" + "|".join(map(str, sorted(found.seeds))) + r")\b")
    secret_file = course.state_directory / "secret"  # hidden inputs are drawn from it
    course_secret = secret_file.read_text().strip() if secret_file.is_file() else ""
    problems = []
    for path, content in sorted(files.items()):
        text = content.decode("utf-8", errors="replace")
        problems += [f"{path}: marker {m!r}" for m in MARKERS if m in text]
        if len(course_secret) >= 16 and course_secret.lower() in text.lower():
            problems.append(f"{path}: the course secret")
        if found.seeds and (hit := seed_re.search(text)):
            problems.append(f"{path}: hidden seed {hit.group(0)!r}")
        lines = _sequence(path, content)
        problems += [
            f"{path}: hidden-test line {s[:60]!r}" for s in sorted(found.hidden & set(lines))
        ]
        if _verbatim_library(path, content):
            pass
        elif path.startswith("lectures/"):
            for run in sorted(runs & _runs(lines)):
                problems.append(f"{path}: solution lines {run[0][:40]!r} ... {run[-1][:40]!r}")
        else:
            problems += [f"{path}: solution line {s[:60]!r}" for s in sorted(solution & set(lines))]
        parts = Path(path).parts
        if parts[:2] in (
            ("coursekit", "grading"),
            ("coursekit", "instructor"),
            ("coursekit", "cli"),
        ):
            problems.append(f"{path}: instructor package")
        if parts[0] in ("solutions", "tests", ".coursekit") or "secret" in Path(path).name:
            problems.append(f"{path}: instructor file")
    return problems


# -- writing ----------------------------------------------------------------------------------


def publish(course: Course, directory: str | os.PathLike) -> Outcome:
    """Write (or update) the student edition of ``course`` in ``directory``."""
    target = Path(directory).expanduser().resolve()
    if target == course.root or course.root in target.parents:
        raise PublishError(f"publish the edition outside the course, not into {target}")
    if target.exists() and not target.is_dir():
        raise PublishError(f"{target} exists and is not a directory")
    files = edition_files(course)
    problems = leaks(course, files)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise PublishError(f"hidden material in the edition, nothing written:\n  {shown}")
    manifest_path = target / MANIFEST
    previous: list[str] = []
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text()).get("files", [])
    outcome = Outcome(target)
    for rel, content in sorted(files.items()):
        path = target / rel
        if path.is_file() and path.read_bytes() == content:
            outcome.unchanged += 1
            continue
        (outcome.changed if path.exists() else outcome.added).append(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for rel in sorted(set(previous) - set(files)):
        path = target / rel
        if path.is_file():
            path.unlink()
            outcome.removed.append(rel)
            parent = path.parent
            while parent != target and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    manifest_path.write_text(json.dumps({"files": sorted(files)}, indent=1) + "\n")
    return outcome
