"""Keep ``import nbformat`` from compiling grammars nothing here uses.

jsonschema checks the ``iri`` and ``iri-reference`` string formats with the optional
package ``rfc3987_syntax`` when it is installed (JupyterLab's dependencies install it), and
that package builds 39 lark grammars when it is imported: about 1.2 s of CPU in every
process that imports nbformat (the command line, each grading worker, ``coursekit check``),
more than grading a notebook's hidden tests. nbformat's notebook schema uses neither
format, so coursekit's own processes mark the package as absent before jsonschema looks
for it; jsonschema then simply has no checker for those two formats.
"""

from __future__ import annotations

import sys

UNUSED = ("rfc3987_syntax",)


def skip_unused_schema_formats() -> None:
    """Mark :data:`UNUSED` as not installed, unless something already imported it."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)
