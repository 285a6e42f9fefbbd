"""The nbgrader steps coursekit swaps in do what nbgrader's own do, error for error."""

from __future__ import annotations

import copy
import logging

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.nbgraderformat.common import SchemaMismatchError
from nbgrader.preprocessors import CheckCellMetadata, Execute

from coursekit.grading.nbgrader_plugins import compiled_metadata_check
from coursekit.instructor.demo import repository_root


def _source_notebook():
    path = next((repository_root() / "solutions" / "a1").glob("*.ipynb"))
    return nbformat.read(str(path), as_version=4)


def _graded(nb):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


def _break_points(nb):
    _graded(nb).metadata.nbgrader["points"] = "three"


def _break_type(nb):
    _graded(nb).metadata.nbgrader["grade"] = "yes"


def _break_old_schema(nb):
    _graded(nb).metadata.nbgrader["schema_version"] = 1


def _break_new_schema(nb):
    _graded(nb).metadata.nbgrader["schema_version"] = 99


def _break_missing_id(nb):
    del _graded(nb).metadata.nbgrader["grade_id"]


def _break_duplicate_id(nb):
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    graded[1].metadata.nbgrader["grade_id"] = graded[0].metadata.nbgrader["grade_id"]


def _break_markdown_grade(nb):
    """nbgrader's version-3 rule, checked after the schema: a graded markdown cell must be
    a solution cell."""
    cell = next(c for c in nb.cells if c.cell_type == "markdown")
    cell.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade": True,
        "solution": False,
        "locked": False,
        "grade_id": "essay",
        "points": 1,
    }


def _break_nothing(nb):
    return None


def _outcome(step, nb):
    try:
        step(log=logging.getLogger("test")).preprocess(nb, {})
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return type(exc).__name__, str(exc)
    return "ok", ""


BREAKS = [
    _break_nothing,
    _break_points,
    _break_type,
    _break_old_schema,
    _break_new_schema,
    _break_missing_id,
    _break_duplicate_id,
    _break_markdown_grade,
]


@pytest.mark.parametrize("damage", BREAKS, ids=lambda f: f.__name__)
def test_the_compiled_metadata_check_fails_exactly_where_nbgraders_fails(damage):
    (compiled,) = compiled_metadata_check([CheckCellMetadata])
    assert compiled is not CheckCellMetadata
    nb = _source_notebook()
    damage(nb)
    theirs = _outcome(CheckCellMetadata, copy.deepcopy(nb))
    ours = _outcome(compiled, copy.deepcopy(nb))
    assert ours == theirs
    assert (theirs[0] == "ok") == (damage is _break_nothing)
    if damage is not _break_nothing:  # nbgrader's validator itself fails on it too
        with pytest.raises((ValidationError, SchemaMismatchError, KeyError)):
            MetadataValidator().validate_nb(nb)


def test_only_the_metadata_check_is_swapped_and_the_order_is_kept():
    steps = [Execute, CheckCellMetadata, "nbgrader.preprocessors.CheckCellMetadata", "x.Y"]
    swapped = compiled_metadata_check(steps)
    assert swapped[0] is Execute and swapped[3] == "x.Y"
    assert swapped[1] is swapped[2] and issubclass(swapped[1], CheckCellMetadata)


def test_the_grading_pipeline_swaps_execute_and_the_check_in_both_lists_and_keeps_the_rest():
    from nbgrader.converters import Autograde
    from traitlets.config import Config

    from coursekit.grading.nbgrader_plugins import (
        HarmlessStderrToStdout,
        autograde_preprocessors,
        grading_pipeline,
    )

    class MyExecute(Execute):
        pass

    config = Config()
    config.Autograde.autograde_preprocessors = autograde_preprocessors()  # the course's
    grading_pipeline(config, execute=MyExecute)
    graded = config.Autograde.autograde_preprocessors
    assert Execute not in graded and graded.index(MyExecute) + 1 == graded.index(
        HarmlessStderrToStdout
    )
    sanitize = config.Autograde.sanitize_preprocessors  # nbgrader's default, no Execute
    for steps in (graded, sanitize):
        checks = [p for p in steps if isinstance(p, type) and issubclass(p, CheckCellMetadata)]
        assert checks and all(p is not CheckCellMetadata for p in checks)
    default = list(Autograde.class_traits()["sanitize_preprocessors"].default())
    assert len(sanitize) == len(default)
