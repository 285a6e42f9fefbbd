"""Put each submitted cell back in the role the release gave it, before nbgrader grades.

nbgrader restores a locked cell's source from the gradebook, but it trusts the rest of the
cell's nbgrader metadata, and some changes make it refuse the whole notebook: a grade id it
does not know (``CheckCellMetadata`` fails), a test cell turned into an answer cell
(``Inconsistent checksums``), a graded cell pasted twice (``exists multiple times``). A
student can make the last one by copying a cell in JupyterLab. So before grading, in the
scratch copy (the submission itself is never changed):

- a cell whose grade id is not in the release, or repeats an earlier cell's, loses its
  nbgrader metadata and becomes an ordinary cell of the student's (it still runs);
- a cell whose ``grade``, ``solution``, ``locked`` or ``task`` flag or points differ from
  the release gets the release's back; nbgrader then restores a locked cell's source.

Each change is reported in words, so the instructor sees it in the grading report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["CellRole", "release_roles", "restore_cell_roles", "restore_submission"]

_FLAGS = ("grade", "solution", "locked", "task")


@dataclass(frozen=True)
class CellRole:
    """What the release says one nbgrader cell is (``code``: a code cell, not markdown)."""

    grade: bool = False
    solution: bool = False
    locked: bool = False
    task: bool = False
    points: float | None = None
    code: bool = True


def release_roles(gradebook_url: str, assignment: str) -> dict[str, dict[str, CellRole]]:
    """``{notebook: {grade_id: CellRole}}`` for every cell the gradebook knows."""
    from nbgrader.api import Gradebook, MissingEntry

    roles: dict[str, dict[str, CellRole]] = {}
    with Gradebook(gradebook_url) as gb:
        try:
            notebooks = gb.find_assignment(assignment).notebooks
        except MissingEntry:
            return roles
        for nb in notebooks:
            graded = {c.name: float(c.max_score) for c in nb.grade_cells}
            tasks = {c.name: float(c.max_score) for c in nb.task_cells}
            solutions = {c.name for c in nb.solution_cells}
            roles[nb.name] = {
                c.name: CellRole(
                    grade=c.name in graded,
                    solution=c.name in solutions,
                    locked=bool(c.locked),
                    task=c.name in tasks,
                    points=graded.get(c.name, tasks.get(c.name)),
                    code=c.cell_type == "code",
                )
                for c in nb.source_cells
            }
    return roles


def restore_cell_roles(nb, roles: dict[str, CellRole]) -> list[str]:
    """Give ``nb``'s cells (changed in place) their release roles; what changed, in words."""
    changes = []
    seen: set[str] = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if not isinstance(grade_id, str) or grade_id not in roles or grade_id in seen:
            del cell.metadata["nbgrader"]
            known = isinstance(grade_id, str) and grade_id in roles
            why = "appears again" if known else "is not in the release"
            name = grade_id if isinstance(grade_id, str) and grade_id else "(without an id)"
            changes.append(f"cell {name} {why}: graded as an ordinary cell")
            continue
        seen.add(grade_id)
        role = roles[grade_id]
        changed = [flag for flag in _FLAGS if bool(meta.get(flag, False)) != getattr(role, flag)]
        for flag in changed:
            meta[flag] = getattr(role, flag)
        if role.points is not None and meta.get("points") != role.points:
            if meta.get("points") is not None:
                changed.append("points")
            meta["points"] = role.points
        if changed:
            changes.append(
                f"cell {grade_id}: {', '.join(changed)} changed, restored from the release"
            )
    return changes


def restore_submission(directory: str | Path, roles: dict[str, dict[str, CellRole]]) -> list[str]:
    """:func:`restore_cell_roles` on every notebook of a submission directory, in place.

    A notebook that cannot be read is left alone: nbgrader reports why it cannot be graded.
    """
    changes = []
    for path in sorted(Path(directory).glob("*.ipynb")):
        if path.stem not in roles:
            continue
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 - unreadable notebooks are nbgrader's to report
            continue
        notes = restore_cell_roles(nb, roles[path.stem])
        if notes:
            nbformat.write(nb, str(path))
            changes += [f"{path.stem}: {note}" for note in notes]
    return changes
