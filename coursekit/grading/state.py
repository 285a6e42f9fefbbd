"""Notebook values in plain form, for the hidden tests of a task that needs them.

A few graded functions depend on what the notebook computed: ``final_predict(X)`` uses the
model the student trained. The hidden cases run in a fresh process that holds the
student's definitions only (:mod:`coursekit.grading.runner`), so the grader asks the
student's kernel, after the notebook ran, for the notebook variables such a function reads
(:func:`export`) and passes them on (:func:`decode_state`). What crosses is data, checked on
both sides:

* ``None``, booleans, integers, floats (exact, NaN and inf included), strings;
* numeric numpy arrays (bytes, dtype and shape; never object arrays);
* lists, tuples and dicts of those (string or integer keys);
* instances of coursekit's own classes (a model, an optimizer): the class by name and the
  instance's attributes, encoded the same way; ``numpy.random.Generator`` by its state;
  numeric dtypes by name.

Anything else (a function, an open file, an instance of the student's own class) is not
passed: it arrives as ``None`` and the note says which value it was. Nothing is pickled.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np

from coursekit.grading.arrays import decode_array, encode_array

__all__ = ["MIME", "decode_state", "encode_state", "export"]

#: The mime type of the kernel's answer in the notebook's output.
MIME = "application/vnd.coursekit.state+json"
MAX_DEPTH = 12
#: Modules whose classes may cross (``coursekit.<name>``); never the grading machinery.
_CLASS_MODULES_DENIED = ("coursekit.grading", "coursekit.instructor", "coursekit.cli")


class _Encoder:
    def __init__(self, limit: int):
        self.left = limit
        self.skipped: list[str] = []

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ValueError("the notebook values are too large to pass to the hidden tests")

    def encode(self, value: Any, path: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            self.skipped.append(f"{path} (nested too deeply)")
            return {"none": None}
        if value is None:
            return {"none": None}
        if isinstance(value, (bool, np.bool_)):
            return {"bool": bool(value)}
        if isinstance(value, (int, np.integer)):
            return {"int": str(int(value))}
        if isinstance(value, (float, np.floating)):
            return {"float": float(value).hex()}
        if isinstance(value, str):
            self.take(len(value))
            return {"str": value}
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                self.skipped.append(f"{path} (an array of dtype {value.dtype})")
                return {"none": None}
            self.take(value.nbytes)
            return {"array": encode_array(value)}
        if isinstance(value, (list, tuple)):
            kind = "list" if isinstance(value, list) else "tuple"
            return {kind: [self.encode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]}
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    self.skipped.append(f"{path} (a key of type {type(k).__name__})")
                    continue
                items.append([k, self.encode(v, f"{path}[{k!r}]", depth + 1)])
            return {"dict": items}
        if isinstance(value, np.dtype):
            return {"dtype": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"dtype": np.dtype(value).str}
        if isinstance(value, np.random.Generator):
            state = value.bit_generator.state
            return {"generator": self.encode(state, f"{path}.state", depth + 1)}
        cls = type(value)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if _class_allowed(cls.__module__) and hasattr(value, "__dict__"):
            return {
                "object": name,
                "attributes": self.encode(dict(vars(value)), f"{path}", depth + 1),
            }
        self.skipped.append(f"{path} (a {cls.__name__})")
        return {"none": None}


def _class_allowed(module: str) -> bool:
    return module.startswith("coursekit.") and not module.startswith(_CLASS_MODULES_DENIED)


def encode_state(values: dict, limit: int = 64 * 1024**2) -> dict:
    """``{"values": {name: node}, "skipped": [...]}`` for the named notebook values."""
    encoder = _Encoder(limit)
    encoded = {name: encoder.encode(value, name) for name, value in values.items()}
    return {"values": encoded, "skipped": encoder.skipped}


def export(names: list[str], namespace: dict | None = None) -> None:
    """Display the named values of the notebook's namespace in plain form (run by the
    grader in the student's kernel after the notebook; the grader reads the output)."""
    from IPython.display import display

    if namespace is None:
        from IPython import get_ipython

        shell = get_ipython()
        namespace = shell.user_ns if shell is not None else __import__("__main__").__dict__
    present = {n: namespace[n] for n in names if n in namespace}
    state = encode_state(present)
    state["missing"] = [n for n in names if n not in namespace]
    display({MIME: state}, raw=True)


# -- the receiving side ---------------------------------------------------------------------
def _decode(node: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH + 2:
        raise ValueError("notebook values nested too deeply")
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError("malformed notebook value")
    kind = next(iter(node))
    body = node[kind]
    if kind == "none":
        return None
    if kind == "bool":
        return bool(body)
    if kind == "int":
        return int(str(body))
    if kind == "float":
        return float.fromhex(str(body))
    if kind == "str":
        if not isinstance(body, str):
            raise ValueError("malformed string value")
        return body
    if kind == "array":
        return decode_array(body, kinds="biuf")
    if kind in ("list", "tuple"):
        items = [_decode(v, depth + 1) for v in body]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        out = {}
        for key, value in body:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ValueError("dict keys are strings or integers")
            out[key] = _decode(value, depth + 1)
        return out
    if kind == "dtype":
        dtype = np.dtype(str(body))
        if dtype.kind not in "biuf":
            raise ValueError(f"dtypes of numbers only, got {dtype}")
        return dtype
    if kind == "generator":
        state = _decode(body, depth + 1)
        bit_generator = getattr(np.random, str(state["bit_generator"]))()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    if kind == "object":
        module, _, name = str(body).rpartition(".")
        if not _class_allowed(module):
            raise ValueError(f"objects of {body} cannot be passed")
        cls = getattr(importlib.import_module(module), name)
        obj = cls.__new__(cls)
        attributes = _decode(node["attributes"], depth + 1)
        if not isinstance(attributes, dict):
            raise ValueError("an object's attributes must be a dict")
        obj.__dict__.update(attributes)
        return obj
    raise ValueError(f"unknown kind of notebook value {kind!r}")


def decode_state(text: str) -> dict:
    """The notebook values of :func:`export`'s output, rebuilt (raises ``ValueError``)."""
    state = json.loads(text)
    if not isinstance(state, dict) or not isinstance(state.get("values"), dict):
        raise ValueError("malformed notebook values")
    return {str(name): _decode(node) for name, node in state["values"].items()}
