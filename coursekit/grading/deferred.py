"""Deferred imports of plotting and display libraries in the hidden-case runner.

A graded notebook starts with ``import matplotlib.pyplot as plt``; the runner executes that
line with the student's other definitions, and importing pyplot costs about 0.4 s of CPU,
more than all the hidden cases of an assignment. Graded functions return arrays, so the
runner binds such a name to a :class:`DeferredModule` that imports the real module the first
time one of its attributes is used. A function that does plot still works, at the usual
price, when it is called.

Only ``import a.b [as c]`` statements of the packages in :data:`DEFERRED` are deferred, and
only when the module exists (an import that would fail still fails, with its own message).
``from a import b`` is left alone: ``b`` could be a class or a constant, which a stand-in
cannot imitate.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import types

#: Top-level packages whose plain imports are deferred: plotting, widgets, display, progress.
DEFERRED = frozenset({"matplotlib", "seaborn", "ipywidgets", "IPython", "tqdm", "plotly"})


class DeferredModule(types.ModuleType):
    """Stands in for the module ``name`` until an attribute is used, then imports it (and the
    submodules in ``also``, as ``import a.b`` makes ``a.b`` an attribute of ``a``)."""

    def __init__(self, name: str, also: tuple[str, ...] = ()):
        super().__init__(name)
        object.__setattr__(self, "_deferred", (name, also))

    def _load(self) -> types.ModuleType:
        name, also = object.__getattribute__(self, "_deferred")
        for sub in also:
            importlib.import_module(sub)
        return importlib.import_module(name)

    def __getattr__(self, attribute: str):
        return getattr(self._load(), attribute)

    def __setattr__(self, attribute: str, value) -> None:
        setattr(self._load(), attribute, value)

    def __dir__(self):
        return dir(self._load())

    def __repr__(self) -> str:
        return f"<deferred module {object.__getattribute__(self, '_deferred')[0]!r}>"


def module_exists(dotted: str) -> bool:
    """Whether ``dotted`` names an importable module, found without importing any package
    on the way (``importlib.util.find_spec`` would run ``a/__init__.py`` to find ``a.b``)."""
    parts = dotted.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    for depth in range(1, len(parts)):
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            return False
        name = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, list(locations))
    return spec is not None


def deferred_bindings(statement: ast.stmt) -> dict[str, DeferredModule] | None:
    """The names an ``import`` statement would bind, as deferred modules, or ``None`` when
    the statement is to be executed as written."""
    if not isinstance(statement, ast.Import):
        return None
    if not all(a.name.split(".")[0] in DEFERRED and module_exists(a.name) for a in statement.names):
        return None
    bindings: dict[str, DeferredModule] = {}
    for alias in statement.names:
        if alias.asname:
            bindings[alias.asname] = DeferredModule(alias.name)
        else:
            top = alias.name.split(".")[0]
            earlier = bindings.get(top)
            also = (*object.__getattribute__(earlier, "_deferred")[1],) if earlier else ()
            extra = (alias.name,) if alias.name != top else ()
            bindings[top] = DeferredModule(top, also + extra)
    return bindings
