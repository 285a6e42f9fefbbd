"""nbgrader plugins for the course, registered in the repository's ``nbgrader_config.py``.

nbgrader's ``determine_grade`` gives a graded code cell zero points as soon as the cell has
*any* output on ``stderr``, so a correct answer that triggers a harmless warning (a numpy
``RuntimeWarning``, a matplotlib or torch deprecation notice) would lose all its points.
:class:`HarmlessStderrToStdout` runs right after execution during ``nbgrader autograde``
and renames the stderr streams of every cell that finished *without* an error to stdout,
so the text stays visible in the feedback but no longer counts as a failure. A cell that
raised keeps its stderr and its error, and still gets zero.
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class HarmlessStderrToStdout(Preprocessor):
    """Move the stderr text of cells without an error output to stdout."""

    enabled = Bool(True, help="Whether to move harmless stderr before grading").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.get("cell_type") != "code":
            return cell, resources
        outputs = cell.get("outputs", [])
        if any(out.get("output_type") == "error" for out in outputs):
            return cell, resources
        for out in outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["name"] = "stdout"
        return cell, resources


def autograde_preprocessors() -> list:
    """nbgrader's default autograde pipeline with :class:`HarmlessStderrToStdout` after ``Execute``.

    Built from nbgrader's own default so that a new nbgrader release keeps its pipeline.
    """
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if Execute not in default:
        raise RuntimeError("nbgrader's autograde pipeline has no Execute step to follow")
    at = default.index(Execute) + 1
    return [*default[:at], HarmlessStderrToStdout, *default[at:]]
