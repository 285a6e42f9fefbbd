"""Synthesize student submissions from an nbgrader source notebook.

A realistic submission is the *released* notebook with each answer cell filled in. The
reference answer of a cell is its source-notebook text with the ``### BEGIN SOLUTION`` /
``### END SOLUTION`` marker lines removed. A :class:`Mutation` edits that text to model one
student mistake; mutation testing, the alternative-solution tests and ``coursekit demo``
all build submissions this way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import nbformat

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_answer_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution")) and cell.get("cell_type") == "code"


def reference_answers(source_nb) -> dict[str, str]:
    """``{grade_id: code}`` for every answer cell of a source notebook, markers removed."""
    answers = {}
    for cell in source_nb.cells:
        if _is_answer_cell(cell):
            lines = [
                line for line in cell.source.splitlines() if line.strip() not in SOLUTION_MARKERS
            ]
            answers[_grade_id(cell)] = "\n".join(lines)
    return answers


def fill_answers(released_nb, answers: Mapping[str, str]):
    """A copy of the released notebook with the given answer cells replaced."""
    nb = copy.deepcopy(released_nb)
    known = {_grade_id(c) for c in nb.cells if _is_answer_cell(c)}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise KeyError(f"no answer cell with grade_id {unknown}; answer cells are {sorted(known)}")
    for cell in nb.cells:
        if _is_answer_cell(cell) and _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    return nb


@dataclass(frozen=True)
class Mutation:
    """One realistic mistake: replace ``old`` by ``new`` in the answer cell ``cell``.

    ``tests`` lists the grade_ids of the autograded test cells that must lose points.
    """

    name: str
    cell: str
    old: str
    new: str
    tests: tuple[str, ...]
    description: str = ""

    def apply(self, answers: Mapping[str, str]) -> dict[str, str]:
        if self.cell not in answers:
            raise KeyError(f"mutation {self.name!r}: no answer cell {self.cell!r}")
        code = answers[self.cell]
        count = code.count(self.old)
        if count != 1:
            raise ValueError(
                f"mutation {self.name!r}: expected the snippet exactly once in cell "
                f"{self.cell!r}, found it {count} times: {self.old!r}"
            )
        return {**answers, self.cell: code.replace(self.old, self.new)}


def submission(source_nb, released_nb, mutation: Mutation | None = None, answers=None):
    """The released notebook filled with the reference answers (optionally mutated)."""
    filled = dict(reference_answers(source_nb))
    if answers:
        filled.update(answers)
    if mutation is not None:
        filled = mutation.apply(filled)
    return fill_answers(released_nb, filled)


def assignment_submission(
    source: Mapping[str, object],
    released: Mapping[str, object],
    mutation: Mutation | None = None,
    answers: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """A whole assignment's submission: ``{notebook file name: filled released notebook}``.

    ``source`` and ``released`` map file names to notebooks; ``mutation`` and ``answers``
    name answer cells by grade_id, in whichever notebook of the assignment holds them.
    """
    owner = {}
    for name, nb in source.items():
        for gid in reference_answers(nb):
            owner[gid] = name
    wanted = set(answers or {}) | ({mutation.cell} if mutation else set())
    unknown = sorted(wanted - set(owner))
    if unknown:
        raise KeyError(f"no answer cell with grade_id {unknown}; answer cells are {sorted(owner)}")
    missing = sorted(set(released) - set(source))
    if missing:
        raise KeyError(f"released notebooks {missing} have no source notebook")
    result = {}
    for name in released:
        mine = {k: v for k, v in (answers or {}).items() if owner[k] == name}
        mut = mutation if mutation is not None and owner[mutation.cell] == name else None
        result[name] = submission(source[name], released[name], mut, mine or None)
    return result


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)
