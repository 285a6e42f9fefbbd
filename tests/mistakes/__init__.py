"""Mistake catalogues for mutation testing, one module per assignment (``aN.py``).

Each module defines ``MISTAKES: list[coursekit.grading.submissions.Mutation]``: one realistic
student mistake per entry, applied to the reference answer of one answer cell (``cell`` is the
answer cell's grade_id; ``old`` must occur exactly once in the reference answer with the
solution markers removed; ``tests`` names the autograded test cells that must lose points).
``tests/test_assignments.py`` grades every mutant with the real ``nbgrader autograde`` and
requires a 100% kill rate; see ``tests/nbgrader_harness.py`` for the full format.
``measure.py`` (this package) grades the same catalogue in-process in seconds, on several
seeds, and measures how many kills a task's ``Mistake`` names; ``tests/test_mistake_catalogue.py``
holds it to that.
"""
