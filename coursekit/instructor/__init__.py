"""The instructor workflow behind the ``coursekit`` command line, on the real nbgrader.

One module per step: :mod:`~.course` (locating and checking a course), :mod:`~.release`,
:mod:`~.validate`, :mod:`~.collect`, :mod:`~.grade` (grading one submission),
:mod:`~.executors`, :mod:`~.batch` (grading a class, resumable), :mod:`~.journal`,
:mod:`~.gradebook` (the single gradebook writer), :mod:`~.feedback`, :mod:`~.export`,
:mod:`~.report` and :mod:`~.demo`.
"""

from coursekit._lean_imports import skip_unused_schema_formats

skip_unused_schema_formats()
