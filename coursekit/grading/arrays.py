"""Arrays as plain JSON: dtype, shape and the raw little-endian bytes in base64.

How numbers cross between grading processes (the runner's answers, the kernel's notebook
values): exact to the last bit (NaN and inf included), about fifty times faster to write and
read than a list of floats, and nothing is unpickled. :func:`decode_array` accepts only the
dtype kinds the caller allows and data whose length matches the shape.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np


def encode_array(value: np.ndarray) -> dict:
    """``{"dtype", "shape", "data"}`` for a numeric array (little-endian, C order)."""
    value = np.asarray(value)
    little = value.astype(value.dtype.newbyteorder("<"), copy=False)
    data = np.ascontiguousarray(little).tobytes()
    return {
        "dtype": little.dtype.str,
        "shape": list(value.shape),
        "data": base64.b64encode(data).decode("ascii"),
    }


def decode_array(body: Any, kinds: str = "if") -> np.ndarray:
    """Inverse of :func:`encode_array`; ``ValueError`` for anything malformed or a dtype
    whose kind is not in ``kinds``."""
    if not isinstance(body, dict):
        raise ValueError(f"malformed array: {type(body).__name__}")
    try:
        dtype = np.dtype(str(body["dtype"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed array dtype: {exc}") from exc
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"arrays hold numbers, got dtype {dtype}")
    try:
        shape = tuple(int(s) for s in body["shape"])
        data = base64.b64decode(str(body["data"]), validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"malformed array: {exc}") from exc
    if any(s < 0 for s in shape) or len(shape) > 32:
        raise ValueError(f"malformed array shape {shape}")
    if len(data) != int(np.prod(shape, dtype=object)) * dtype.itemsize:
        raise ValueError(f"array data of {len(data)} bytes does not fit shape {shape} {dtype}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
