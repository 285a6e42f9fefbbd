"""The grading journal: completed results, written atomically, so that grading can resume.

One JSON file per student and assignment holds the full :class:`GradingResult` (grades,
failure messages, the autograded files). It is written before the gradebook is touched,
with write-to-temporary, ``fsync`` and ``rename``, so after Ctrl-C, a crash or a power loss
a file is either complete or absent. A second small marker file records that the result
was imported into the gradebook; a result without its marker is imported again on the
next run (imports are idempotent, so nothing is counted twice).

A ``--force`` run leaves a third file, ``.force.json`` (when it started and whom it
regrades), until every one of those students has a result graded after it started: a run
stopped half-way is finished by a plain rerun, which regrades exactly the students the
forced run did not reach.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from coursekit.instructor.grade import GradingResult, result_from_json, result_to_json


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Completed grading results of one assignment, in ``directory``."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def _path(self, student: str, suffix: str) -> Path:
        return self.directory / f"{quote(student, safe='')}{suffix}"

    def load(self, student: str) -> GradingResult | None:
        """The recorded result of ``student``, or ``None`` (also for an unreadable file)."""
        try:
            return result_from_json(json.loads(self._path(student, ".json").read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def record(self, result: GradingResult) -> None:
        """Store ``result`` durably and mark it as not yet imported."""
        self._path(result.student, ".imported").unlink(missing_ok=True)
        write_atomic(
            self._path(result.student, ".json"), json.dumps(result_to_json(result)).encode("utf-8")
        )

    def mark_imported(self, result: GradingResult) -> None:
        write_atomic(self._path(result.student, ".imported"), result.fingerprint.encode("ascii"))

    def is_imported(self, result: GradingResult) -> bool:
        try:
            return self._path(result.student, ".imported").read_text("ascii") == result.fingerprint
        except OSError:
            return False

    # -- an unfinished --force run -----------------------------------------------------------
    @property
    def _force_path(self) -> Path:
        return self.directory / ".force.json"

    def start_force(self, students: list[str], started: str) -> None:
        """Record that a forced run started at ``started`` (UTC, ISO) regrades ``students``."""
        pending = self.force_pending()
        if pending is not None:  # an earlier forced run that did not finish: keep its students
            students = sorted(set(students) | set(pending["students"]))
            started = min(started, pending["started"])
        data = {"started": started, "students": sorted(students)}
        write_atomic(self._force_path, json.dumps(data).encode("utf-8"))

    def force_pending(self) -> dict | None:
        """``{"started", "students"}`` of a forced run that did not finish, or ``None``."""
        try:
            data = json.loads(self._force_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("students"), list):
            return None
        return data

    def finish_force(self) -> None:
        self._force_path.unlink(missing_ok=True)

    def results(self) -> list[GradingResult]:
        """Every recorded result, sorted by student."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                out.append(result_from_json(json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda r: r.student)
