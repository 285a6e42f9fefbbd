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

import functools

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


@functools.cache
def _compiled_check():
    """nbgrader's ``CheckCellMetadata`` with a compiled schema, built on first use (nbgrader
    is imported only where the instructor's tools run).

    ``jsonschema.validate`` checks the schema itself again for every cell it validates:
    about 20 ms per notebook, twice per notebook in ``autograde``. This check compiles the
    schema once per process. The checks and errors are nbgrader's: cells of another schema
    version go through nbgrader's own ``validate_cell``, and a violation raises the error
    ``jsonschema.validate`` would (the best match).
    """
    import traceback

    import jsonschema
    from jsonschema.exceptions import best_match
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError
    from nbgrader.nbgraderformat.common import BaseMetadataValidator
    from nbgrader.preprocessors import CheckCellMetadata

    class CompiledSchemaCheck(BaseMetadataValidator):
        """The schema step of nbgrader's ``validate_cell``; placed after nbgrader's current
        validator in the method order, so that its own checks run around it as before."""

        compiled = None

        def validate_cell(self, cell) -> None:
            meta = cell.metadata.get("nbgrader")
            if meta is None or meta.get("schema_version", 0) != self.schema_version:
                return super().validate_cell(cell)  # nbgrader's version errors
            if CompiledSchemaCheck.compiled is None:
                cls = jsonschema.validators.validator_for(self.schema)
                cls.check_schema(self.schema)
                CompiledSchemaCheck.compiled = cls(self.schema)
            error = best_match(CompiledSchemaCheck.compiled.iter_errors(meta))
            if error is not None:
                raise error

    class CompiledMetadataValidator(MetadataValidator, CompiledSchemaCheck):
        pass

    class CompiledCheckCellMetadata(CheckCellMetadata):
        def preprocess(self, nb, resources):
            try:
                CompiledMetadataValidator().validate_nb(nb)
            except ValidationError:  # reported as nbgrader reports it
                self.log.error(traceback.format_exc())
                msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
                self.log.error(msg)
                raise ValidationError(msg) from None
            return nb, resources

    return CheckCellMetadata, CompiledCheckCellMetadata


def compiled_metadata_check(preprocessors: list, execute=None) -> list:
    """``preprocessors`` with nbgrader's ``CheckCellMetadata`` replaced by the same check
    on a compiled schema (:func:`_compiled_check`) and, given ``execute``, nbgrader's
    ``Execute`` replaced by it; the order is kept."""
    from nbgrader.preprocessors import Execute

    original, compiled = _compiled_check()
    swaps = {original: compiled, "nbgrader.preprocessors.CheckCellMetadata": compiled}
    if execute is not None:
        swaps.update({Execute: execute, "nbgrader.preprocessors.Execute": execute})
    return [swaps.get(p, p) for p in preprocessors]


def grading_pipeline(config, execute) -> None:
    """Set the two preprocessor lists of ``config.Autograde`` (the course's, else nbgrader's
    defaults) to the pipeline coursekit grades with: ``execute`` in place of nbgrader's
    ``Execute`` and the compiled metadata check (:func:`compiled_metadata_check`)."""
    from nbgrader.converters import Autograde

    for step in ("sanitize_preprocessors", "autograde_preprocessors"):
        steps = config.Autograde.get(step) or getattr(Autograde, step).default()
        config.Autograde[step] = compiled_metadata_check(list(steps), execute)
