"""Submitted cells are put back in their release roles before nbgrader grades them."""

from __future__ import annotations

import copy

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.instructor.cell_roles import (
    CellRole,
    restore_cell_roles,
    restore_stripped,
    restore_submission,
    source_order,
)

ROLES = {
    "answer": CellRole(solution=True),
    "test": CellRole(grade=True, locked=True, points=3.0),
    "intro": CellRole(locked=True),
}


def _cell(grade_id, source="x = 1", **flags):
    meta = {"grade_id": grade_id, "grade": False, "solution": False, "locked": False}
    meta.update(flags)
    return new_code_cell(source, metadata={"nbgrader": meta})


def released():
    return new_notebook(
        cells=[
            _cell("intro", locked=True),
            _cell("answer", solution=True),
            _cell("test", "assert x == 1", grade=True, locked=True, points=3.0),
            new_markdown_cell("no metadata"),
        ]
    )


def test_an_untouched_notebook_is_left_exactly_as_it_was():
    nb = released()
    before = copy.deepcopy(nb)
    assert restore_cell_roles(nb, ROLES) == []
    assert nb == before


def test_a_test_cell_made_an_answer_gets_its_flags_and_points_back():
    nb = released()
    meta = nb.cells[2].metadata.nbgrader
    meta.update(solution=True, grade=False, locked=False, points=100)
    changes = restore_cell_roles(nb, ROLES)
    assert changes == [
        "cell test: grade, solution, locked, points changed, restored from the release"
    ]
    assert nb.cells[2].metadata.nbgrader == released().cells[2].metadata.nbgrader


def test_unknown_and_repeated_grade_ids_become_ordinary_cells():
    nb = released()
    nb.cells.insert(3, copy.deepcopy(nb.cells[2]))  # a pasted copy of the test cell
    nb.cells.append(_cell("mine"))
    nb.cells.append(new_code_cell("y = 2", metadata={"nbgrader": {"solution": True}}))
    nb.cells.append(new_code_cell("z = 3", metadata={"nbgrader": "garbled"}))
    nb.cells.append(new_code_cell("w = 4", metadata={"nbgrader": {"grade_id": ["test"]}}))
    changes = restore_cell_roles(nb, ROLES)
    assert changes == [
        "cell test appears again: graded as an ordinary cell",
        "cell mine is not in the release: graded as an ordinary cell",
        *["cell (without an id) is not in the release: graded as an ordinary cell"] * 3,
    ]
    assert "nbgrader" in nb.cells[2].metadata  # the first copy keeps its role
    assert [("nbgrader" in c.metadata) for c in nb.cells[3:]] == [False] * 6
    assert nb.cells[3].source == "assert x == 1"  # the code itself stays


def test_submission_files_are_rewritten_only_when_something_changed(tmp_path):
    nbformat.write(released(), tmp_path / "hw.ipynb")
    changed = released()
    changed.cells[0].metadata.nbgrader["locked"] = False
    nbformat.write(changed, tmp_path / "other.ipynb")
    (tmp_path / "broken.ipynb").write_text("{not json")
    untouched = (tmp_path / "hw.ipynb").stat().st_mtime_ns
    roles = {"hw": ROLES, "other": ROLES, "broken": ROLES}
    changes = restore_submission(tmp_path, roles)
    assert changes == ["other: cell intro: locked changed, restored from the release"]
    assert (tmp_path / "hw.ipynb").stat().st_mtime_ns == untouched
    restored = nbformat.read(tmp_path / "other.ipynb", as_version=4)
    assert [c.metadata for c in restored.cells] == [c.metadata for c in released().cells]
    assert (tmp_path / "broken.ipynb").read_text() == "{not json"


# -- stripped metadata: cells found again by aligning the notebook with the release ----------
RELEASE_ROLES = {
    "intro": CellRole(locked=True, code=False, source="# Homework\n\nImplement `double`."),
    "answer": CellRole(
        solution=True,
        source="def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
        checksum="abc",
    ),
    "test": CellRole(
        grade=True,
        locked=True,
        points=3.0,
        source="assert double(2) == 4, 'double(2) should be 4'\n"
        "### BEGIN HIDDEN TESTS\nassert double(-1) == -2\n### END HIDDEN TESTS",
    ),
    "question": CellRole(locked=True, code=False, source="Why is `double` linear?"),
    "written": CellRole(
        grade=True, solution=True, code=False, points=1.0, source="YOUR ANSWER HERE"
    ),
}


def stripped_submission():
    return new_notebook(
        cells=[
            new_markdown_cell("# Homework\n\nImplement `double`."),
            new_code_cell("import numpy as np"),  # the student's own cell
            new_code_cell("def double(x):\n    return 2 * x"),
            new_code_cell("assert double(2) == 4, 'double(2) should be 4'"),
            new_markdown_cell("Why is `double` linear?"),
            new_markdown_cell("Because 2(a + b) = 2a + 2b."),
        ]
    )


def test_stripped_cells_get_their_release_roles_back_in_order():
    nb = stripped_submission()
    changes = restore_stripped(nb, RELEASE_ROLES, list(RELEASE_ROLES))
    roles = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert roles == ["intro", None, "answer", "test", "question", "written"]
    assert changes == [
        "cells without nbgrader metadata put back in their release roles: "
        "intro, answer, test, question, written"
    ]
    test = nb.cells[3].metadata.nbgrader
    assert test["grade"] and test["locked"] and test["points"] == 3.0 and not test["solution"]
    answer = nb.cells[2].metadata.nbgrader
    assert answer["solution"] and not answer["grade"] and answer["checksum"] == "abc"
    written = nb.cells[5].metadata.nbgrader
    assert written["grade"] and written["solution"] and written["points"] == 1.0
    # a second pass changes nothing
    assert restore_stripped(nb, RELEASE_ROLES, list(RELEASE_ROLES)) == []


def test_a_rewritten_test_cell_is_not_taken_for_the_release_test():
    nb = stripped_submission()
    nb.cells[3].source = "print('I trust my code')"
    changes = restore_stripped(nb, RELEASE_ROLES, list(RELEASE_ROLES))
    assert "nbgrader" not in nb.cells[3].metadata
    assert changes[0].endswith("(not found: test)")
    # the cells that kept their metadata anchor the alignment; nothing else moves
    nb = stripped_submission()
    nb.cells[0].metadata["nbgrader"] = {"grade_id": "intro", "locked": True}
    restore_stripped(nb, RELEASE_ROLES, list(RELEASE_ROLES))
    assert nb.cells[0].metadata.nbgrader == {"grade_id": "intro", "locked": True}
    assert nb.cells[3].metadata.nbgrader["grade_id"] == "test"


def test_source_order_is_read_next_to_a_scratch_submission(tmp_path):
    submitted = tmp_path / "submitted" / "alice" / "hw"
    submitted.mkdir(parents=True)
    (tmp_path / "solutions" / "hw").mkdir(parents=True)
    source = released()
    nbformat.write(source, tmp_path / "solutions" / "hw" / "hw.ipynb")
    assert source_order(submitted, "hw") == ["intro", "answer", "test"]
    assert source_order(submitted, "other") is None
