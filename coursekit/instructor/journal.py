"""The grading journal: completed results, written atomically, so that grading can resume.

One JSON file per student and assignment holds the full :class:`GradingResult` (grades,
failure messages, the autograded files). It is written before the gradebook is touched,
with write-to-temporary, ``fsync`` and ``rename``, so after Ctrl-C, a crash or a power loss
a file is either complete or absent. A second small marker file records that the result
was imported into the gradebook; a result without its marker is imported again on the
next run (imports are idempotent, so nothing is counted twice).
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

    def results(self) -> list[GradingResult]:
        """Every recorded result, sorted by student."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                out.append(result_from_json(json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda r: r.student)
