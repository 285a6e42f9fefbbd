"""Say precisely what differs and where, when no known mistake explains a wrong answer.

:func:`coursekit.grading.core.describe_mismatch` decides *whether* a result is right and says
how many entries are off. A student needs more: which output, which entry, what was
expected there and what came out, and, when the whole wrong answer has a simple relation to
the right one, that relation ("exactly 2 times the expected values", "the transpose", "shape
(4, 1) where (4,) was expected: an axis kept"). This module computes that from the two plain
results alone (trusted side, after :func:`~coursekit.grading.core.to_plain`), so it works for
every task, including mistakes no task lists.

Two entry points:

* :func:`explain_mismatch` ``(got, want, rtol, atol)`` -> ``None`` when ``got`` matches, else one
  line naming the output, the first wrong entry with expected and actual values, and a
  relation when one holds;
* :func:`explain_error` ``(message)`` -> a hint for the common numpy errors a student's
  function raises (broadcasting a reduced axis, ``@`` with shapes that do not line up, an
  index past the end), or ``None``.

Messages show values of the graded outputs only (never the hidden inputs, never code).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["explain_error", "explain_mismatch", "relation"]


def _fmt(value: float, digits: int = 6) -> str:
    if np.isnan(value) or np.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def _pair(want: float, got: float) -> str:
    """``expected A, got B`` with enough digits to show where they part."""
    digits = 6
    if np.isfinite(want) and np.isfinite(got) and want != got:
        rel = abs(got - want) / max(abs(want), abs(got))
        if rel > 0:
            digits = int(min(17, max(6, np.ceil(-np.log10(rel)) + 2)))
    return f"expected {_fmt(want, digits)}, got {_fmt(got, digits)}"


def _index(idx: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def explain_mismatch(got: Any, want: Any, rtol: float, atol: float, where: str = "") -> str | None:
    """``None`` if ``got`` matches ``want``; otherwise what differs, where, and how.

    ``got`` and ``want`` are plain results (arrays, tuples and dicts of arrays). The first
    differing output is described: its path (``output[1]``, ``output['running_mean']``), the
    number of wrong entries, the first of them with the expected and actual value, and a
    relation between the two arrays when one holds (see :func:`relation`).

    It never raises: on anything it cannot read it returns ``None``, so a caller keeps its
    own verdict and message (``explain_mismatch(...) or describe_mismatch(...)``).
    """
    try:
        with np.errstate(all="ignore"):
            return _explain(got, want, rtol, atol, where)
    except Exception:  # noqa: BLE001 - a diagnosis must never break a verdict
        return None


def _explain(got: Any, want: Any, rtol: float, atol: float, where: str = "") -> str | None:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"output{where} should be a dict with keys {sorted(want)}, got {_kind(got)}"
        if set(got) != set(want):
            missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
            parts = [f"missing keys {missing}"] * bool(missing) + [f"extra keys {extra}"] * bool(
                extra
            )
            return f"output{where}: " + ", ".join(parts)
        for key in want:
            if _property_fails(got[key], want[key], key):
                return f"this does not hold: {key}"
            msg = _explain(got[key], want[key], rtol, atol, f"{where}[{key!r}]")
            if msg:
                return msg
        return None
    if isinstance(want, tuple):
        if not isinstance(got, tuple):
            return f"output{where} should be {len(want)} values (a tuple), got {_kind(got)}"
        if len(got) != len(want):
            return f"output{where} has {len(got)} values, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = _explain(g, w, rtol, atol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(got, (tuple, dict)):
        return f"output{where} should be a single array, got {_kind(got)}"
    return _explain_array(np.asarray(got), np.asarray(want), rtol, atol, f"output{where}")


def _property_fails(got: Any, want: Any, key: str) -> bool:
    """A named yes/no property of the output (``{"x unchanged": 1.0}``) came out 0."""
    return (
        " " in key
        and isinstance(got, np.ndarray)
        and isinstance(want, np.ndarray)
        and got.size == want.size == 1
        and want.item() == 1.0
        and got.item() == 0.0
    )


def _kind(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    return f"an array of shape {np.shape(value)}"


def _explain_shape(got: np.ndarray, want: np.ndarray, label: str) -> str:
    head = f"{label} has shape {got.shape}, expected {want.shape}"
    g, w = got.shape, want.shape
    if len(g) == len(w) == 2 and g == w[::-1]:
        return head + " — the transpose (rows and columns swapped)"
    if tuple(s for s in g if s != 1) == tuple(s for s in w if s != 1):
        if len(g) > len(w):
            return head + " — an extra axis of size 1: a reduction with keepdims=True?"
        return head + " — an axis of size 1 is missing (keepdims=True, or [:, None])"
    if got.size == want.size:
        return head + " — the same number of entries in another shape (reshape back?)"
    if len(g) == len(w) + 1 and g[1:] == w:
        return head + " — a sum over the rows (axis=0) is missing"
    if len(w) >= 1 and len(g) == len(w) and g[1:] == w[1:]:
        return head + f" — {g[0]} rows instead of {w[0]}"
    if len(w) == 0:
        return head + " — a single number was expected (reduce, e.g. with max or sum)"
    return head


def _explain_array(got: np.ndarray, want: np.ndarray, rtol: float, atol: float, label: str):
    if got.shape != want.shape:
        return _explain_shape(got, want, label)
    if want.dtype.kind in "iub":
        wrong = np.argwhere(got != want)
        if not len(wrong):
            return None
        first = tuple(wrong[0])
        at = _index(first) if want.ndim else ""
        msg = (
            f"{label}: {len(wrong)} of {want.size} entries are wrong; "
            f"{'first at ' + at + ': ' if at else ''}{_pair(float(want[first]), float(got[first]))}"
        )
        rel = relation(got.astype(float), want.astype(float), rtol, atol) if want.size > 1 else None
        return msg + (f" — {rel}" if rel else "")
    with np.errstate(all="ignore"):
        close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    wrong = np.argwhere(~close)
    first = tuple(wrong[0])
    at = ("first at " + _index(first) + ": ") if want.ndim else ""
    msg = (
        f"{label}: {len(wrong)} of {want.size} entries differ; {at}"
        f"{_pair(float(want[first]), float(got[first]))}"
    )
    rel = relation(got, want, rtol, atol)
    return msg + (f" — {rel}" if rel else "")


def relation(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    """A simple relation between a wrong array and the right one, in words, or ``None``.

    Tried in order: NaN or inf where the expected values are finite; the transpose; the
    opposite sign; a constant factor; a constant offset; the square or the square root;
    zeros where non-zero values are expected; only some rows, columns or the last entry
    wrong; agreement to about float32's precision.
    """
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    with np.errstate(all="ignore"):
        return _relation(got, want, rtol, atol)


def _relation(got, want, rtol, atol):
    def same(a, b):
        return bool(np.all(np.isclose(a, b, rtol=max(rtol, 1e-9), atol=atol, equal_nan=True)))

    finite = np.isfinite(want)
    bad_nan = np.isnan(got) & finite
    if bad_nan.any():
        first = _index(tuple(np.argwhere(bad_nan)[0])) if got.ndim else ""
        return (
            f"NaN in {int(bad_nan.sum())} entries{', first at ' + first if first else ''}: "
            "0/0, inf - inf or the square root of a negative number"
        )
    bad_inf = np.isinf(got) & finite
    if bad_inf.any():
        return f"inf in {int(bad_inf.sum())} entries: overflow (exp of a large number?)"
    scale = np.maximum(np.abs(want), atol)
    rel = np.abs(got - want) / scale
    if np.all(rel < 1e-5) and np.max(rel) > 1e-9:
        return (
            f"right to about {round(-np.log10(max(np.max(rel), 1e-16)))} significant digits only: "
            "float32 somewhere, or a formula that loses accuracy"
        )
    if got.ndim == 2 and got.shape[0] == got.shape[1] and got.shape[0] > 1 and same(got, want.T):
        return "the transpose of the expected values"
    nonzero = np.abs(want) > atol
    if nonzero.any() and same(got, -want):
        return "the expected values with the opposite sign"
    if nonzero.sum() >= 1 and np.all(np.abs(got[~nonzero]) <= atol):
        ratios = got[nonzero] / want[nonzero]
        factor = float(np.median(ratios))
        if factor != 0 and np.isfinite(factor) and same(got, factor * want):
            if want.size > 1 or _nice(factor):  # any ratio "fits" a single number
                return f"exactly {_fmt_factor(factor)} times the expected values"
    offset = float(np.median(got - want))
    if want.size > 1 and offset != 0 and same(got, want + offset):
        return f"the expected values shifted by the constant {_fmt(offset)}"
    if nonzero.any() and same(got, want**2) and not same(want, want**2):
        return "the squares of the expected values: a square root missing?"
    if np.all(want >= 0) and same(got, np.sqrt(want)) and not same(want, np.sqrt(want)):
        return "the square roots of the expected values: the squares were expected"
    if want.size == 1:
        return None  # one number: "expected A, got B" says it all
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    zeros = bool(np.all(np.abs(got[~close]) <= atol))
    if got.ndim == 2 and got.shape[0] > 1 and got.shape[1] > 1:
        for axis, name in ((1, "row"), (0, "column")):
            wrong = np.flatnonzero(~close.all(axis=axis))
            if len(wrong) < got.shape[1 - axis] and len(wrong) <= 3:
                text = f"only {name}{'s' * (len(wrong) > 1)} {', '.join(map(str, wrong))} "
                text += "differ" if len(wrong) > 1 else "differs"
                text += " (all 0)" if zeros else ""
                if zeros and list(wrong) == [got.shape[1 - axis] - 1]:
                    text += ": the last one; a loop that stops one step early?"
                return text
    if got.ndim == 2 and min(got.shape) > 1:
        found = _per_line(got, want, same, nonzero)
        if found:
            return found
    if got.ndim >= 1 and got.size > 2 and (~close).sum() == 1 and not close.flat[-1]:
        return "only the last entry differs: a loop that stops one step early?"
    if zeros:
        return f"{int((~close).sum())} entries are 0 where the expected values are not"
    return None


def _per_line(got, want, same, nonzero):
    """A constant offset or factor per column (a per-feature term) or per row (per sample)."""
    with np.errstate(all="ignore"):
        for axis, line, term in (
            (0, "column", "a per-column (per-feature) term such as a bias, beta or a column mean"),
            (1, "row", "a per-row (per-sample) term such as a row maximum, mean or norm"),
        ):
            offset = np.median(got - want, axis=axis, keepdims=True)
            if np.any(offset != 0) and same(got, want + offset):
                return f"each {line} is off by its own constant: {term} is wrong"
            if nonzero.all():
                factor = np.median(got / want, axis=axis, keepdims=True)
                if np.all(np.isfinite(factor)) and same(got, want * factor):
                    return (
                        f"each {line} is scaled by its own factor: a per-{line} scale (a "
                        "standard deviation, a norm, gamma, a sum) is wrong"
                    )
    return None


def _nice(factor: float) -> bool:
    """A factor a formula slip makes: ±n or ±1/n (n up to 64), or a power of ten."""
    size = abs(factor)
    candidates = [float(n) for n in range(1, 65)] + [1.0 / n for n in range(2, 65)]
    candidates += [10.0**k for k in range(-12, 13)]
    return any(np.isclose(size, c, rtol=1e-9) for c in candidates)


def _fmt_factor(factor: float) -> str:
    for n in range(2, 65):
        if np.isclose(factor, 1.0 / n, rtol=1e-9):
            return f"1/{n}"
    return _fmt(factor)


_BROADCAST = re.compile(r"operands could not be broadcast together with shapes? (.+)")
_MATMUL = re.compile(r"matmul: Input operand \d+ has a mismatch in its core dimension")
_SHAPES = re.compile(r"\(([\d, ]*)\)")


def explain_error(message: str) -> str | None:
    """A hint for a numpy error a student's function raised, or ``None``.

    ``message`` is the recorded error text (``"raised ValueError: operands could not be
    broadcast together with shapes (4,6) (4,)"``). It never raises.
    """
    try:
        return _error_hint(str(message))
    except Exception:  # noqa: BLE001 - a diagnosis must never break a verdict
        return None


def _error_hint(message: str) -> str | None:
    found = _BROADCAST.search(message)
    if found:
        shapes = [
            tuple(int(s) for s in m.split(",") if s.strip())
            for m in _SHAPES.findall(found.group(1))
        ]
        if len(shapes) >= 2:
            a, b = shapes[0], shapes[1]
            if len(a) == len(b) + 1 and b == a[:-1]:
                return (
                    f"shapes {a} and {b} do not broadcast: an array reduced over the last axis "
                    "lost it; keep it with keepdims=True (or index [:, None])"
                )
            if len(b) == len(a) + 1 and a == b[:-1]:
                return (
                    f"shapes {a} and {b} do not broadcast: an array reduced over the last axis "
                    "lost it; keep it with keepdims=True (or index [:, None])"
                )
            if len(a) == len(b) and a == b[::-1]:
                return f"shapes {a} and {b} do not broadcast: one of them is transposed"
        return "two arrays do not broadcast: write down the shape of every intermediate result"
    if _MATMUL.search(message) or "shapes" in message and "not aligned" in message:
        return (
            "the shapes do not line up for a matrix product: (N, D) @ (D, M); is one operand "
            "transposed, or not flattened to (N, D)?"
        )
    if "out of bounds" in message and "index" in message:
        return "an index past the end of an axis: check loop ranges and which axis is indexed"
    if "division by zero" in message:
        return "a division by zero: guard the denominator (a batch of 1? a zero norm?)"
    if "NoneType" in message:
        return "the function returned None where a value was expected: is a return missing?"
    unpack = re.search(r"(?:too many|not enough) values to unpack \(expected (\d+)", message)
    if unpack:
        return (
            f"a result was unpacked into {unpack.group(1)} names but holds another number of "
            "values: return exactly the values the docstring lists, in that order"
        )
    name = re.search(r"NameError: name '(\w+)' is not defined", message)
    if name:
        return (
            f"'{name.group(1)}' is not defined where your function runs: the hidden tests run "
            "your functions on their own, so define or import everything they use in your "
            "own cells (not only in a test cell or an experiment)"
        )
    return None
