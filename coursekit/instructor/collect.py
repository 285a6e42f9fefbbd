"""``coursekit collect``: import a class's submissions from a folder or a zip.

RULES is the documentation shown by ``coursekit collect --help``.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.instructor.course import Course, CourseError

RULES = """\
Import submissions of ASSIGNMENT from PATH (a folder, or a .zip as a learning management
system exports it) into submitted/<student>/<ASSIGNMENT>/.

File-name rules (student ids are letters, digits, '.', '-' and must start with a letter or
digit; everything after the first '_' is free):
  <student>/...                  a folder per student: its files are taken as they are
                                 (a nested <student>/<ASSIGNMENT>/ folder is unwrapped)
  <student>.ipynb                a notebook of <student>
  <student>_<anything>.ipynb     a notebook of <student>; it is stored under the released
                                 notebook's name when the assignment has one notebook, or
                                 under the released name that <anything> ends with
  <student>_<anything>           any other file of <student>, stored as <anything>
Hidden files, __MACOSX/ and files matching none of the rules are listed as unmatched.
An existing submission is never overwritten silently: identical ones are left alone,
different ones are skipped and listed unless --force is given (the old one is then moved
to .coursekit/replaced/).
"""

_STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


@dataclass
class CollectOutcome:
    assignment: str
    collected: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unmatched and not self.conflicts

    def render(self) -> str:
        lines = [f"collected {len(self.collected)} submissions of {self.assignment}"]
        for student, files in sorted(self.collected.items()):
            note = " (replaced, old one backed up)" if student in self.replaced else ""
            lines.append(f"  {student}: {', '.join(files)}{note}")
        if self.unchanged:
            lines.append(f"unchanged (already collected): {', '.join(sorted(self.unchanged))}")
        if self.conflicts:
            lines.append("NOT collected, a different submission exists (use --force to replace):")
            lines += [f"  {s}" for s in sorted(self.conflicts)]
        if self.unmatched:
            lines.append("unmatched files (no student id recognised, see --help):")
            lines += [f"  {u}" for u in self.unmatched]
        return "\n".join(lines)


def _released_notebooks(course: Course, assignment: str) -> list[str]:
    for step in ("release", "source"):
        names = sorted(p.name for p in (course.directory(step) / assignment).glob("*.ipynb"))
        if names:
            return names
    return []


def _notebook_name(rest: str, released: list[str]) -> str:
    if len(released) == 1:
        return released[0]
    for name in sorted(released, key=len, reverse=True):
        if rest.endswith(name):
            return name
    return rest


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)


def plan(root: Path, assignment: str, released: list[str]) -> tuple[dict, list[str]]:
    """``({student: {stored name: source path}}, unmatched)`` for the files under ``root``."""
    students: dict[str, dict[str, Path]] = {}
    unmatched = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _hidden(rel):
            continue
        first = rel.parts[0]
        if len(rel.parts) > 1:
            if not _STUDENT.match(first):
                unmatched.append(rel.as_posix())
                continue
            inner = Path(*rel.parts[1:])
            if inner.parts[0] == assignment and len(inner.parts) > 1:
                inner = Path(*inner.parts[1:])
            students.setdefault(first, {})[inner.as_posix()] = path
            continue
        stem, _, rest = first.partition("_")
        if first.endswith(".ipynb") and not rest:
            stem = first[: -len(".ipynb")]
        if not _STUDENT.match(stem) or (not rest and not first.endswith(".ipynb")):
            unmatched.append(rel.as_posix())
            continue
        if first.endswith(".ipynb"):
            name = _notebook_name(rest or first, released)
        else:
            name = rest
        files = students.setdefault(stem, {})
        if name in files:
            unmatched.append(f"{rel.as_posix()} (a second file for {stem}/{name})")
            continue
        files[name] = path
    return students, unmatched


def _same(existing: Path, files: dict[str, Path]) -> bool:
    present = {p.relative_to(existing).as_posix() for p in existing.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    return all(filecmp.cmp(existing / name, src, shallow=False) for name, src in files.items())


def collect(course: Course, assignment: str, path, *, force: bool = False) -> CollectOutcome:
    """Import the submissions at ``path`` (folder or zip); see :data:`RULES`."""
    course.require_assignments([assignment])
    path = Path(path)
    if not path.exists():
        raise CourseError(f"no such folder or zip file: {path}")
    outcome = CollectOutcome(assignment)
    released = _released_notebooks(course, assignment)
    with tempfile.TemporaryDirectory(prefix="coursekit-collect-") as tmp:
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise CourseError(f"{path} is neither a folder nor a zip file")
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    target = (Path(tmp) / info.filename).resolve()
                    if not str(target).startswith(str(Path(tmp).resolve())):
                        outcome.unmatched.append(f"{info.filename} (unsafe path)")
                        continue
                    zf.extract(info, tmp)
            root = Path(tmp)
        else:
            root = path
        students, unmatched = plan(root, assignment, released)
        outcome.unmatched += unmatched
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for student, files in sorted(students.items()):
            dest = course.submission_directory(assignment, student)
            if dest.exists():
                if _same(dest, files):
                    outcome.unchanged.append(student)
                    continue
                if not force:
                    outcome.conflicts.append(student)
                    continue
                backup = course.state_directory / "replaced" / stamp / student / assignment
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(dest), str(backup))
                outcome.replaced.append(student)
            for name, src in files.items():
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
            outcome.collected[student] = sorted(files)
    return outcome
