"""nbgrader configuration of the course (read by ``nbgrader`` and ``coursekit`` from the repo root).

Instructors edit the source notebooks in ``solutions/`` and release the student versions into
``assignments/`` with ``nbgrader generate_assignment aN`` (or ``coursekit release``).
"""

import os

from coursekit.grading.nbgrader_plugins import autograde_preprocessors

c = get_config()

c.CourseDirectory.course_id = "coursekit"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# Every notebook runs top to bottom in well under a minute; one cell never needs more.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# After a cell's reply, nbgrader waits this long for the cell's last output and fails the
# whole notebook if it does not come (its default, 4 s, is shorter than a busy 2-core machine
# sometimes needs to deliver it).
c.Execute.iopub_timeout = 30

# A passing cell must never lose its points to harmless stderr (nbgrader zeroes any graded
# cell with stderr output): warnings of cells that finished without an error move to stdout.
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# The kernels nbgrader starts inherit this environment: plots render off-screen, library
# deprecation notices stay quiet, and one grading kernel uses one core.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::PendingDeprecationWarning"
)
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
