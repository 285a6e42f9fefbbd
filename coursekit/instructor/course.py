"""Locating an nbgrader course directory and checking it before anything runs.

A course is a directory holding ``nbgrader_config.py``; every other path (source,
release, submitted, autograded and feedback directories, the gradebook) comes from that
configuration, exactly as plain ``nbgrader`` reads it. Problems an instructor can fix
(wrong directory, missing configuration, unknown assignment or student) raise
:class:`CourseError` with a message that says what to do; the command line prints it and
exits with status 2.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

CONFIG_NAME = "nbgrader_config.py"
STATE_DIRECTORY = ".coursekit"


class CourseError(ValueError):
    """A problem with the course directory or the command's arguments that the instructor can fix."""


def ensure_tools_on_path() -> None:
    """Put the running interpreter's ``bin`` directory first on ``PATH``.

    nbgrader runs the ``alembic`` executable when it creates a gradebook, and Jupyter
    resolves kernels through ``PATH``; inside a virtualenv that was not activated neither
    would be found.
    """
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *[p for p in parts if p]])


def load_config(config_file: str | os.PathLike, root: str | os.PathLike | None = None):
    """Read an ``nbgrader_config.py`` the way nbgrader does, with ``CourseDirectory.root`` set.

    Parameters
    ----------
    config_file : path
        The configuration file (executed as Python, with ``get_config`` available).
    root : path, optional
        Course root to record in the configuration; defaults to the file's directory.
        A scratch copy of the course passes its own directory here.
    """
    from traitlets.config.loader import PyFileConfigLoader

    config_file = Path(config_file).resolve()
    loader = PyFileConfigLoader(config_file.name, path=str(config_file.parent))
    config = loader.load_config()
    config.CourseDirectory.root = str(Path(root).resolve() if root else config_file.parent)
    return config


@dataclass(frozen=True)
class Course:
    """An nbgrader course on disk. Build it with :meth:`locate`."""

    root: Path

    @classmethod
    def locate(cls, directory: str | os.PathLike | None = None) -> Course:
        """The course at ``directory`` (default: the current directory), checked.

        Raises
        ------
        CourseError
            If the directory does not exist or holds no ``nbgrader_config.py``.
        """
        root = Path(directory if directory is not None else os.getcwd()).expanduser()
        if not root.is_dir():
            raise CourseError(f"course directory {str(root)!r} does not exist (see --course)")
        root = root.resolve()
        if not (root / CONFIG_NAME).is_file():
            hint = ""
            for parent in root.parents:
                if (parent / CONFIG_NAME).is_file():
                    hint = f"; did you mean --course {parent}?"
                    break
            raise CourseError(
                f"{root} is not an nbgrader course: it has no {CONFIG_NAME}{hint} "
                "(run coursekit from the course root or pass --course DIR)"
            )
        ensure_tools_on_path()
        return cls(root)

    # -- configuration ---------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_NAME

    @cached_property
    def config(self):
        try:
            return load_config(self.config_file)
        except Exception as exc:  # noqa: BLE001 - any error in the file is the instructor's to fix
            raise CourseError(
                f"cannot read {self.config_file}: {type(exc).__name__}: {exc}"
            ) from exc

    @cached_property
    def coursedir(self):
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config)

    def directory(self, step: str) -> Path:
        """The directory of an nbgrader step: ``"source"``, ``"release"``, ``"submitted"``, ..."""
        return self.root / getattr(self.coursedir, f"{step}_directory")

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    @property
    def gradebook_path(self) -> Path:
        prefix = "sqlite:///"
        if not self.db_url.startswith(prefix):
            raise CourseError(f"coursekit needs an SQLite gradebook, the course uses {self.db_url}")
        return Path(self.db_url[len(prefix) :])

    @property
    def state_directory(self) -> Path:
        """Where coursekit keeps its own files (grading journal, run scratch space)."""
        return self.root / STATE_DIRECTORY

    # -- assignments and students ---------------------------------------------------------
    def assignments(self) -> list[str]:
        """Assignments with a source directory, sorted."""
        source = self.directory("source")
        if not source.is_dir():
            return []
        return sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))

    def require_assignments(self, names: list[str] | None) -> list[str]:
        """``names`` checked against the source directory (all assignments when empty)."""
        known = self.assignments()
        if not names:
            if not known:
                raise CourseError(f"no assignments in {self.directory('source')}")
            return known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CourseError(
                f"unknown assignment {', '.join(map(repr, unknown))}; "
                f"the course has: {', '.join(known) or 'none'} (in {self.directory('source')})"
            )
        return list(names)

    def require_released(self, assignment: str) -> None:
        """Check that ``assignment`` exists and is in the gradebook (``coursekit release``)."""
        self.require_assignments([assignment])
        from nbgrader.api import Gradebook, MissingEntry

        if self.gradebook_path.exists():
            with Gradebook(self.db_url) as gb:
                try:
                    gb.find_assignment(assignment)
                    return
                except MissingEntry:
                    pass
        raise CourseError(
            f"assignment {assignment!r} is not in the gradebook yet; "
            f"run `coursekit release {assignment}` first"
        )

    def students(self, assignment: str) -> list[str]:
        """Students with a submission of ``assignment``, sorted."""
        submitted = self.directory("submitted")
        if not submitted.is_dir():
            return []
        return sorted(
            p.name
            for p in submitted.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / assignment).is_dir()
        )

    def require_students(self, assignment: str, names: list[str] | None) -> list[str]:
        """``names`` checked against the submissions of ``assignment`` (all when empty)."""
        known = self.students(assignment)
        if not names:
            return known
        unknown = [n for n in names if n not in known]
        if unknown:
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise CourseError(
                f"no submission of {assignment!r} from student {', '.join(map(repr, unknown))} "
                f"in {self.directory('submitted')}; students with one: {shown or 'none'}"
            )
        return list(dict.fromkeys(names))

    def submission_directory(self, assignment: str, student: str) -> Path:
        return self.directory("submitted") / student / assignment
