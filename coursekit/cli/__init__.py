"""The ``coursekit`` instructor command line; see :mod:`coursekit.cli.main`."""
