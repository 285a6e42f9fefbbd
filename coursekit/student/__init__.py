"""The student side of the course: ``coursekit check`` (see :mod:`coursekit.student.check`).

The student edition (``coursekit publish``) ships this package with the library; it needs
neither nbgrader nor the instructor package.
"""

from coursekit._lean_imports import skip_unused_schema_formats

skip_unused_schema_formats()
