r"""Gradient checking: compare an analytic gradient with centered finite differences.

The numerical gradient perturbs one coordinate at a time by ``±h``,

.. math::

    \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},

whose truncation error is :math:`O(h^2)` (the one-sided difference
:math:`(f(x + h e_i) - f(x)) / h` has :math:`O(h)`). Round-off adds an error of about
:math:`\varepsilon |f| / h`, so ``h`` cannot shrink forever; ``h = 1e-5`` balances both in
float64. Gradient checks therefore require float64 input: in float32 the round-off term
alone is larger than any useful tolerance.

Perturbation happens **in place** on the caller's array (that is how ``f`` sees it), and
every perturbed entry is written back bit for bit, even when ``f`` raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from coursekit._validation import (
    check_finite,
    check_float_array,
    check_nonnegative,
    check_positive,
    make_rng,
)

__all__ = [
    "GradientCheckError",
    "rel_error",
    "numerical_gradient",
    "numerical_gradient_array",
    "sparse_gradcheck",
    "check_layer_gradients",
]


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one.

    Attributes
    ----------
    errors : dict[str, float]
        Maximum relative error per input.
    failed : list[str]
        The inputs whose error exceeds ``tol``.
    tol : float
    """

    def __init__(self, message: str, errors: dict[str, float], failed: list[str], tol: float):
        super().__init__(message)
        self.errors = errors
        self.failed = failed
        self.tol = tol


def rel_error(x, y, eps: float = 1e-8) -> float:
    r"""Maximum elementwise relative error between two arrays of the same shape.

    .. math::

        \operatorname{rel\_error}(x, y) = \max_i
        \frac{|x_i - y_i|}{\max(\varepsilon,\ |x_i| + |y_i|)}

    The ratio is taken **elementwise** and then maximized, so one wrong entry among many
    large correct ones is still caught. It lies in ``[0, 1]``; ``eps`` keeps entries where
    both values are 0 from dividing by zero. In float64 a correct gradient typically gives
    below ``1e-7``; near kinks (ReLU at 0) ``1e-2`` can still be correct. Entries much
    smaller than the round-off of a numerical gradient (about :math:`\varepsilon |f| / h`)
    give large ratios even for a correct gradient; :func:`check_layer_gradients` therefore
    floors the denominator at that round-off level.

    Returns
    -------
    float
        0.0 for empty arrays.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x has shape {x.shape} but y has shape {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(eps, np.abs(x) + np.abs(y))))


def _check_point(x, name: str) -> np.ndarray:
    """The array to perturb: writable, finite float64 (a float32 check is meaningless)."""
    x = check_float_array(x, name)
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} must be float64 for a gradient check, got {x.dtype}: with a step of "
            f"about 1e-5 its round-off swamps the derivative; convert it with "
            f"{name}.astype(np.float64)"
        )
    check_finite(x, name)
    if not x.flags.writeable:
        raise ValueError(
            f"{name} is read-only; the gradient check perturbs it in place, pass a writable copy"
        )
    return x


def _centered_differences(evaluate: Callable[[], float], x: np.ndarray, h: float) -> np.ndarray:
    """``(evaluate() at x + h e_i - evaluate() at x - h e_i) / 2h`` for every index ``i``.

    Each entry is restored to its exact original value (assignment of the saved float,
    not ``x[i] -= h``, which can leave a round-off trace) before moving on.
    """
    check_positive(h, "h")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        try:
            x[idx] = old + h
            plus = evaluate()
            x[idx] = old - h
            minus = evaluate()
        finally:
            x[idx] = old
        grad[idx] = (plus - minus) / (2.0 * h)
    return grad


def _scalar(value) -> float:
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(
            f"f must return a scalar, got an array of shape {value.shape}; for array-valued "
            f"functions use numerical_gradient_array with an upstream gradient dout"
        )
    return float(value.reshape(()))


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5):
    r"""Centered-difference gradient of a scalar function.

    .. math:: g_i = \frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Parameters
    ----------
    f : callable
        ``f(x) -> float``. It is called with ``x`` itself, perturbed in place.
    x : ndarray of float64
        The point; restored exactly afterwards, even if ``f`` raises.
    h : float, default 1e-5

    Returns
    -------
    ndarray, same shape as ``x``
    """
    x = _check_point(x, "x")
    return _centered_differences(lambda: _scalar(f(x)), x, h)


def _upstream(dout, name: str = "dout") -> np.ndarray:
    dout = check_float_array(dout, name)
    return check_finite(dout, name)


def numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    r"""Centered-difference gradient of ``sum(f(x) * dout)`` for an array-valued ``f``.

    .. math:: g_i = \sum_k \frac{f(x + h e_i)_k - f(x - h e_i)_k}{2h}\, \text{dout}_k

    This is the vector-Jacobian product a layer's backward pass computes from the
    upstream gradient ``dout``.

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` of the same shape as ``dout``; called with ``x`` perturbed in
        place. Its output is copied, so ``f`` may return a buffer it reuses.
    x : ndarray of float64
        Restored exactly afterwards, even if ``f`` raises.
    dout : ndarray
        Upstream gradient, same shape as ``f(x)``.
    h : float, default 1e-5

    Returns
    -------
    ndarray, same shape as ``x``
    """
    x = _check_point(x, "x")
    dout = _upstream(dout)

    def evaluate() -> float:
        out = np.array(f(x), dtype=np.float64, copy=True)
        if out.shape != dout.shape:
            raise ValueError(f"f returned an array of shape {out.shape} but dout has {dout.shape}")
        return float(np.sum(out * dout))

    return _centered_differences(evaluate, x, h)


def sparse_gradcheck(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Check a scalar function's gradient at a few random coordinates only.

    For large parameter arrays the full numerical gradient costs two evaluations of ``f``
    per entry; sampling ``num_checks`` entries (with replacement) is usually enough to
    catch a bug.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``, called with ``x`` perturbed in place.
    x : ndarray of float64
        Restored exactly afterwards.
    analytic_grad : ndarray, same shape as ``x``
    num_checks : int, default 10
    h : float, default 1e-5
    rng, seed :
        The source of the random coordinates (exactly one of them).

    Returns
    -------
    ndarray, shape (num_checks,)
        ``rel_error`` between the analytic and the centered-difference derivative at each
        sampled coordinate.
    """
    x = _check_point(x, "x")
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(f"analytic_grad has shape {analytic_grad.shape} but x has {x.shape}")
    if isinstance(num_checks, bool) or not isinstance(num_checks, (int, np.integer)):
        raise TypeError(f"num_checks must be an integer, got {type(num_checks).__name__}")
    check_positive(num_checks, "num_checks")
    check_positive(h, "h")
    if x.size == 0:
        raise ValueError("x is empty: there is no coordinate to check")
    generator = make_rng(rng, seed)
    flat = generator.integers(x.size, size=num_checks)
    errors = np.empty(num_checks)
    for k, i in enumerate(flat):
        idx = np.unravel_index(i, x.shape)
        old = x[idx]
        try:
            x[idx] = old + h
            plus = _scalar(f(x))
            x[idx] = old - h
            minus = _scalar(f(x))
        finally:
            x[idx] = old
        errors[k] = rel_error(analytic_grad[idx], (plus - minus) / (2.0 * h))
    return errors


def _as_gradient_tuple(grads, names: list[str]) -> tuple:
    if isinstance(grads, np.ndarray):
        grads = (grads,)
    if not isinstance(grads, (tuple, list)):
        raise TypeError(
            f"backward must return an array or a tuple of arrays, got {type(grads).__name__}"
        )
    if len(grads) != len(names):
        raise ValueError(
            f"backward returned {len(grads)} gradient(s) but inputs has {len(names)} "
            f"({', '.join(names)}); pass every differentiable input in inputs, in the "
            f"order the forward takes them, and the others as keyword arguments"
        )
    return tuple(grads)


# Round-off of one evaluation of sum(out * dout) is about eps * sum|out * dout| (each product and
# each partial sum is rounded once); the safety factor covers forward passes whose intermediates
# are larger than their output (measured: at most 2.5x, see check_layer_gradients' docstring).
_ROUNDOFF_SAFETY = 10.0
_EPS64 = float(np.finfo(np.float64).eps)


def _table(title: str, rows: list[tuple[str, ...]]) -> str:
    header = ("input", "shape", "max rel. error", "round-off floor", "result")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [title]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _roundoff_floor(out: np.ndarray, dout: np.ndarray, h: float) -> float:
    r"""Estimated absolute round-off of a centered difference of ``sum(out * dout)``.

    .. math:: R = 10\,\varepsilon \sum_k |\text{out}_k\, \text{dout}_k| \,/\, h
    """
    magnitude = float(np.sum(np.abs(np.asarray(out, dtype=np.float64) * dout)))
    return _ROUNDOFF_SAFETY * _EPS64 * magnitude / h


def _floored_error(grad: np.ndarray, numeric: np.ndarray, tol: float, atol: float) -> float:
    """``max |a - n| / max(|a| + |n|, atol / tol, 1e-8)``: ``<= tol`` iff every entry passes."""
    if grad.size == 0:
        return 0.0
    grad = np.asarray(grad, dtype=np.float64)
    floor = 1e-8
    if tol > 0 and atol > 0:
        floor = max(floor, atol / tol)
    denominator = np.maximum(np.abs(grad) + np.abs(numeric), floor)
    return float(np.max(np.abs(grad - numeric) / denominator))


def check_layer_gradients(
    forward: Callable,
    backward: Callable,
    inputs: Mapping[str, np.ndarray],
    *,
    dout: np.ndarray | None = None,
    seed: int = 0,
    h: float = 1e-5,
    tol: float = 1e-7,
    atol: float | None = None,
    verbose: bool = True,
    raise_on_failure: bool = True,
    **forward_kwargs,
) -> dict[str, float]:
    r"""Gradient-check a ``forward``/``backward`` pair against centered differences.

    Runs ``out, cache = forward(*inputs.values(), **forward_kwargs)``, draws a random
    upstream gradient ``dout`` (standard normal, from ``seed``) unless one is given, runs
    ``backward(dout, cache)`` and compares the gradient ``a`` it returns for each input with
    the numerical gradient ``n`` of :func:`numerical_gradient_array` (``forward`` with
    respect to that input, the same ``dout``).

    **The error measure.** Every entry is compared relative to its size, but never below
    the round-off that the numerical gradient itself carries:

    .. math::

        \text{error} = \max_i \frac{|a_i - n_i|}
        {\max\left(|a_i| + |n_i|,\ \text{atol} / \text{tol},\ 10^{-8}\right)},
        \qquad
        \text{atol} = R = \frac{10\,\varepsilon \sum_k |\text{out}_k\,\text{dout}_k|}{h}

    with :math:`\varepsilon = 2.2 \times 10^{-16}` (float64). The check passes when
    ``error <= tol``, that is when every entry satisfies
    :math:`|a_i - n_i| \le \max(\text{tol}\,(|a_i| + |n_i|),\ \text{atol})`: a discrepancy
    is reported only if it is larger than ``tol`` relative to the entry **and** larger than
    the round-off level ``R`` (a smaller one is beyond any finite-difference check). Why
    the floor: each evaluation of
    :math:`\sum_k \text{out}_k \text{dout}_k` is rounded by about
    :math:`\varepsilon \sum_k |\text{out}_k \text{dout}_k|`, and the centered difference
    divides that by ``2h``. Entries far smaller than ``R`` (a saturated ``tanh``, BatchNorm's
    ``dx`` entries that nearly cancel, small softmax probabilities) are therefore known only
    to about ``R`` in absolute terms, and :func:`rel_error` of a correct gradient can reach
    ``1e-5`` to ``1e-1`` on them. Measured on correct layers (BatchNorm, LayerNorm, affine,
    tanh, sigmoid, ELU, softmax and SVM losses, from 1 × 3 to 64 × 100), every entry that
    missed ``tol`` relative to its size was within :math:`0.91\,R / 10` of the numerical
    gradient for inputs whose mean is up to 10 times their spread, and within
    :math:`2.5\,R / 10` at 100 times: the factor 10 is a margin of four over the worst case.

    **Thresholds** (float64, ``h=1e-5``): a correct gradient gives an error around
    ``1e-10`` to ``1e-8``; the default ``tol=1e-7`` leaves room for truncation error
    (:math:`h^2 |f'''| / 6` relative); errors from ``1e-6`` to ``1e-3`` usually mean a badly
    scaled input (``h`` too large for inputs whose spread is below about ``1e-2``, or large
    intermediates cancelling inside the forward pass: pass a larger ``atol``); above
    ``1e-2`` is a bug, or an input within ``h`` of a kink (ReLU at 0).

    Parameters
    ----------
    forward : callable
        ``forward(*arrays, **forward_kwargs) -> (out, cache)``.
    backward : callable
        ``backward(dout, cache) -> grad`` or a tuple of gradients, one per entry of
        ``inputs`` and in the same order (the coursekit layer convention).
    inputs : dict[str, ndarray]
        The differentiable inputs, float64, passed to ``forward`` positionally in this
        order; the names label the report. Each is restored exactly afterwards.
    dout : ndarray, optional
        Upstream gradient, shape of ``out``. Default: drawn from ``seed``.
    seed : int, default 0
    h : float, default 1e-5
    tol : float, default 1e-7
        Largest acceptable error (relative to the entry, above the round-off floor).
        ``tol=0`` demands exact agreement.
    atol : float, optional
        The absolute round-off floor. Default: the estimate ``R`` above, taken at the
        unperturbed inputs. ``atol=0`` gives the plain elementwise :func:`rel_error`.
    verbose : bool, default True
        Print a table of the errors and of the floor.
    raise_on_failure : bool, default True
        Raise :class:`GradientCheckError` if any error exceeds ``tol``.
    **forward_kwargs
        Passed to every ``forward`` call (hyperparameters, ``mode=...``). A forward
        argument named like one of the options above (``seed``, ``h``, ``tol``, ...) is
        bound with ``functools.partial(forward, seed=...)`` instead.

    Returns
    -------
    dict[str, float]
        ``{input name: max error}`` as defined above; ``inf`` where the gradient has the
        wrong shape, ``nan`` where it holds NaN.

    Raises
    ------
    GradientCheckError
        Naming each failing input and its error (an ``AssertionError``, so it reads as a
        test failure).
    TypeError
        For non-float or non-float64 inputs.
    ValueError
        For non-finite inputs, a negative or non-finite ``atol``, or a ``dout`` of the
        wrong shape.
    """
    if not isinstance(inputs, Mapping) or not inputs:
        raise TypeError(
            "inputs must be a non-empty dict mapping names to float64 arrays, got "
            f"{type(inputs).__name__ if not isinstance(inputs, Mapping) else 'an empty dict'}"
        )
    names = list(inputs)
    arrays = [_check_point(inputs[name], name) for name in names]
    check_positive(tol, "tol", allow_zero=True)
    check_positive(h, "h")
    if atol is not None:
        atol = check_nonnegative(atol, "atol")
        if not np.isfinite(atol):
            raise ValueError(f"atol must be finite, got {atol}")

    def run_forward():
        result = forward(*arrays, **forward_kwargs)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError("forward must return a pair (out, cache)")
        return result

    out, cache = run_forward()
    out = np.asarray(out)
    if dout is None:
        dout = make_rng(seed=seed).standard_normal(out.shape)
    dout = _upstream(dout)
    if dout.shape != out.shape:
        raise ValueError(f"dout has shape {dout.shape} but forward's output has {out.shape}")
    floor = _roundoff_floor(out, dout, h) if atol is None else atol
    grads = _as_gradient_tuple(backward(dout, cache), names)

    errors: dict[str, float] = {}
    notes: dict[str, str] = {}
    for name, x, grad in zip(names, arrays, grads):
        grad = np.asarray(grad)
        if grad.shape != x.shape:
            errors[name] = float("inf")
            notes[name] = f"gradient has shape {grad.shape} but {name} has {x.shape}"
            continue
        numeric = numerical_gradient_array(lambda _: run_forward()[0], x, dout, h)
        errors[name] = _floored_error(grad, numeric, tol, floor)

    failed = [name for name in names if not errors[name] <= tol]
    if verbose:
        title = (
            f"gradient check of {getattr(forward, '__name__', 'forward')} / "
            f"{getattr(backward, '__name__', 'backward')} (h={h:g}, tol={tol:g})"
        )
        rows = [
            (
                name,
                str(x.shape),
                f"{errors[name]:.2e}",
                f"{floor:.1e}",
                "FAIL" + (f" ({notes[name]})" if name in notes else "") if name in failed else "ok",
            )
            for name, x in zip(names, arrays)
        ]
        print(_table(title, rows))
    if failed and raise_on_failure:
        details = "; ".join(
            f"{name}: "
            + (notes[name] if name in notes else f"max relative error {errors[name]:.2e}")
            for name in failed
        )
        passed = ", ".join(f"{name}: {errors[name]:.1e}" for name in names if name not in failed)
        message = f"gradient check failed for {', '.join(failed)} (tol={tol:g}): {details}"
        if passed:
            message += f" [passed: {passed}]"
        message += f" [round-off floor {floor:.1e}]"
        raise GradientCheckError(message, errors, failed, tol)
    return errors
