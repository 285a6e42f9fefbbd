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
  the release gets the release's back; nbgrader then restores a locked cell's source;
- a release cell missing from the notebook because its metadata was stripped (a notebook
  saved by another editor, a copy pasted into a new notebook) is found again among the
  cells without metadata, by aligning the notebook with the release
  (:func:`restore_stripped`): the cells keep their order, a read-only cell (a test, an
  instruction) is recognised by its text, an answer cell by its place between them and
  its resemblance to the release's stub. Found cells get the release's metadata back.

Each change is reported in words, so the instructor sees it in the grading report.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "CellRole",
    "release_roles",
    "restore_cell_roles",
    "restore_stripped",
    "restore_submission",
]

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
    #: the cell's text as the gradebook keeps it (hidden tests included, answers cleared)
    source: str = ""
    checksum: str | None = None


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
                    source=c.source or "",
                    checksum=c.checksum,
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


_HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
#: How alike a cell without metadata and a read-only release cell must be to be matched.
MIN_LOCKED_SIMILARITY = 0.7


def _release_text(role: CellRole) -> str:
    """The text the student received: the gradebook's source without hidden tests."""
    out, inside = [], False
    for line in role.source.splitlines():
        if _HIDDEN[0] in line:
            inside = True
        elif _HIDDEN[1] in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out).strip()


def _lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, stripped: cells are compared line by line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader")


def restore_stripped(nb, roles: dict[str, CellRole], order: list[str] | None = None) -> list[str]:
    """Give release roles back to cells whose nbgrader metadata is gone (``nb`` changed in
    place); what changed, in words.

    ``order`` lists the grade ids in the release's cell order (default: the order of
    ``roles``). Cells are aligned with the release in order, as a weighted longest common
    subsequence: a cell that kept its metadata anchors its release cell; a cell without
    metadata can take a release cell missing from the notebook, of the same cell type,
    if it is a read-only cell with at least :data:`MIN_LOCKED_SIMILARITY` of its lines,
    or an answer cell (its place decides, its likeness to the stub breaks ties).
    """
    order = [g for g in (order or list(roles)) if g in roles]
    present = {m.get("grade_id") for c in nb.cells if isinstance(m := _meta(c), dict)}
    missing = [g for g in order if g not in present]
    stripped = [j for j, c in enumerate(nb.cells) if _meta(c) is None]
    if not missing or not stripped:
        return []
    cells = nb.cells
    n, m = len(order), len(cells)
    matchers = {}

    def score(i: int, j: int) -> float | None:
        grade_id, cell = order[i], cells[j]
        meta = _meta(cell)
        if meta is not None:
            return 10.0 if isinstance(meta, dict) and meta.get("grade_id") == grade_id else None
        role = roles[grade_id]
        if grade_id in present or role.code != (cell.get("cell_type") == "code"):
            return None
        if grade_id not in matchers:
            matchers[grade_id] = difflib.SequenceMatcher(None, autojunk=False)
            matchers[grade_id].set_seq2(_lines(_release_text(role)))
        matcher = matchers[grade_id]
        matcher.set_seq1(_lines(str(cell.get("source", ""))))
        if role.locked and not role.solution:
            # cheap upper bounds first: most pairs are far apart
            if (
                matcher.real_quick_ratio() < MIN_LOCKED_SIMILARITY
                or matcher.quick_ratio() < MIN_LOCKED_SIMILARITY
            ):
                return None
            similarity = matcher.ratio()
            return 2.0 * similarity if similarity >= MIN_LOCKED_SIMILARITY else None
        if role.solution:
            return 0.2 + matcher.quick_ratio()  # only breaks ties between places
        return None

    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    take = [[False] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            value = max(best[i - 1][j], best[i][j - 1])
            s = score(i - 1, j - 1) if best[i - 1][j - 1] + 10.0 > value else None
            if s is not None and best[i - 1][j - 1] + s > value:
                value, take[i][j] = best[i - 1][j - 1] + s, True
            best[i][j] = value
    matches = []
    i, j = n, m
    while i and j:
        if take[i][j]:
            matches.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif best[i - 1][j] >= best[i][j - 1]:
            i -= 1
        else:
            j -= 1
    found = []
    for i, j in reversed(matches):
        grade_id, cell = order[i], cells[j]
        if _meta(cell) is not None:
            continue
        role = roles[grade_id]
        meta = {
            "grade": role.grade,
            "grade_id": grade_id,
            "locked": role.locked,
            "schema_version": 3,
            "solution": role.solution,
            "task": role.task,
        }
        if role.points is not None:
            meta["points"] = role.points
        if role.solution and role.checksum:
            meta["checksum"] = role.checksum
        cell.setdefault("metadata", {})["nbgrader"] = meta
        found.append(grade_id)
    if not found:
        return []
    lost = [g for g in missing if g not in found]
    note = f"cells without nbgrader metadata put back in their release roles: {', '.join(found)}"
    if lost:
        note += f" (not found: {', '.join(lost)})"
    return [note]


def source_order(directory: str | Path, notebook: str) -> list[str] | None:
    """The grade ids of ``notebook`` in the release's order, from the assignment's source
    notebook next to a scratch submission (``<scratch>/<source>/<assignment>/``), if found."""
    directory = Path(directory)
    if len(directory.parents) < 3:
        return None
    scratch, assignment = directory.parents[2], directory.name
    for pattern in (f"*/{assignment}/{notebook}.ipynb", f"*/*/{assignment}/{notebook}.ipynb"):
        for path in sorted(scratch.glob(pattern)):
            top = path.relative_to(scratch).parts[0]
            if top in ("submitted", "autograded", "feedback", "release", "sandbox"):
                continue
            try:
                nb = nbformat.read(str(path), as_version=4)
            except Exception:  # noqa: BLE001 - no order then; the gradebook's is used
                return None
            return [
                m["grade_id"]
                for c in nb.cells
                if isinstance(m := _meta(c), dict) and isinstance(m.get("grade_id"), str)
            ]
    return None


def restore_submission(directory: str | Path, roles: dict[str, dict[str, CellRole]]) -> list[str]:
    """:func:`restore_cell_roles` and :func:`restore_stripped` on every notebook of a
    submission directory, in place.

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
        order = source_order(directory, path.stem)
        notes += restore_stripped(nb, roles[path.stem], order)
        if notes:
            nbformat.write(nb, str(path))
            changes += [f"{path.stem}: {note}" for note in notes]
    return changes
