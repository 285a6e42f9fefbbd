"""coursekit: training deep networks, a course library in numpy.

The submodules are loaded on first use, so ``import coursekit`` is quick and never
imports matplotlib or torch::

    import coursekit as ck
    out, cache = ck.layers.affine_forward(x, w, b)
    ck.gradcheck.check_layer_gradients(...)

See the README for the table of the public API.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "activation_stats",
    "activations",
    "averaging",
    "clipping",
    "data",
    "dropout",
    "early_stopping",
    "gradcheck",
    "grading",
    "init",
    "layers",
    "losses",
    "models",
    "normalization",
    "ops",
    "optim",
    "regularization",
    "schedules",
    "trainer",
    "viz",
)

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
