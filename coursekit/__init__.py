"""coursekit: training deep networks, a course library in numpy."""

__version__ = "0.1.0"
