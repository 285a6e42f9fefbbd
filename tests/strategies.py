"""Hypothesis strategies shared by the whole test suite."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Bounded, well-scaled float64 values: gradients are compared at tight tolerances, so
# the strategies avoid values where float64 itself cannot resolve the answer.
FLOATS = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False, width=64)


def small_dim(min_value: int = 1, max_value: int = 7):
    return st.integers(min_value=min_value, max_value=max_value)


def float64_arrays(shape, elements=FLOATS):
    """float64 arrays of a fixed shape (or a strategy of shapes)."""
    return hnp.arrays(np.float64, shape, elements=elements)


def matrix_shapes(min_rows: int = 1, max_rows: int = 8, min_cols: int = 1, max_cols: int = 8):
    return st.tuples(small_dim(min_rows, max_rows), small_dim(min_cols, max_cols))


def batch_shapes(min_batch: int = 1, max_batch: int = 8, max_features: int = 8):
    """(N, D) shapes including N == 1."""
    return matrix_shapes(min_batch, max_batch, 1, max_features)


@st.composite
def seeded_rngs(draw):
    """A numpy Generator drawn from a Hypothesis-controlled seed (shrinkable, reproducible)."""
    return np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))


def away_from_zero(values: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Push values off the kink at 0 (ReLU-like functions are not differentiable there)."""
    values = values.copy()
    near = np.abs(values) < margin
    values[near] = np.where(values[near] >= 0, margin, -margin)
    return values


# --- ops, layers, activations, losses -----------------------------------------------------


def batched_shapes(min_dims: int = 2, max_dims: int = 4, max_side: int = 5):
    """Shapes ``(N, d1, ..., dk)`` of a batch, including N == 1 and several feature axes."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


@st.composite
def point_sets(draw, max_points: int = 8, max_features: int = 6, elements=FLOATS):
    """Two float64 point sets ``X`` (N, D) and ``Y`` (M, D) with the same feature dimension."""
    n, m = draw(small_dim(1, max_points)), draw(small_dim(1, max_points))
    d = draw(small_dim(1, max_features))
    return draw(float64_arrays((n, d), elements)), draw(float64_arrays((m, d), elements))


@st.composite
def scores_and_labels(
    draw, max_batch: int = 8, min_classes: int = 2, max_classes: int = 8, elements=FLOATS
):
    """Class scores ``(N, C)`` in float64 with int64 labels ``(N,)`` in ``[0, C)``."""
    n = draw(small_dim(1, max_batch))
    c = draw(small_dim(min_classes, max_classes))
    scores = draw(float64_arrays((n, c), elements))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return scores, y


@st.composite
def normalization_inputs(draw, min_batch: int = 1, max_batch: int = 8, max_features: int = 8):
    """``(x, gamma, beta, dout)`` in float64 for a normalization layer on ``x`` of shape (N, D)."""
    n, d = draw(matrix_shapes(min_batch, max_batch, 1, max_features))
    x = draw(float64_arrays((n, d)))
    gamma = draw(float64_arrays((d,)))
    beta = draw(float64_arrays((d,)))
    dout = draw(float64_arrays((n, d)))
    return x, gamma, beta, dout


@st.composite
def named_param_dicts(draw, elements=FLOATS, max_dim: int = 7):
    """A two-layer net's parameters ``{"W1": (a, b), "b1": (b,), "W2": (b, c)}`` in float64.

    The shape of a model's ``params`` (or of its gradients) for the optimizer, clipping and
    penalty tests; ``elements`` controls the values (e.g. larger ones to make clipping act).
    """
    a, b, c = (draw(small_dim(1, max_dim)) for _ in range(3))
    return {
        "W1": draw(float64_arrays((a, b), elements)),
        "b1": draw(float64_arrays((b,), elements)),
        "W2": draw(float64_arrays((b, c), elements)),
    }


# --- non-finite and empty input (PyTorch's semantics for inf, NaN and empty slices) ---------

# Mostly ordinary values, with +inf, -inf and NaN mixed in.
WITH_NONFINITE = st.one_of(FLOATS, st.sampled_from([np.inf, -np.inf, np.nan]))


@st.composite
def arrays_with_axis(draw, elements=FLOATS, min_side: int = 1, max_dims: int = 3):
    """A float64 array of 1 to ``max_dims`` dimensions and a valid axis of it (negative too).

    ``min_side=0`` includes empty arrays, whose reductions PyTorch defines (a sum of no terms).
    """
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=min_side, max_side=5))
    x = draw(float64_arrays(shape, elements))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))
