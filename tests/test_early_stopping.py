"""EarlyStopping: patience / min_delta / mode semantics and restoring the best parameters."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.early_stopping import EarlyStopping


def _run(stopper, metrics):
    return [stopper.step(m) for m in metrics]


def test_max_mode_patience_two():
    s = EarlyStopping(patience=2, mode="max")
    assert _run(s, [0.5, 0.6, 0.6, 0.55]) == [False, False, False, True]
    assert (s.best_metric, s.best_step, s.num_bad_steps) == (0.6, 1, 2)


def test_min_mode_improvement_resets_the_count():
    s = EarlyStopping(patience=3, mode="min")
    flags = _run(s, [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.88])
    assert flags == [False, False, False, False, False, False, True]
    assert (s.best_metric, s.best_step, s.num_bad_steps, s.num_steps) == (0.85, 3, 3, 7)


def test_seed_keras_example_min_delta_and_patience_one():
    """EarlyStopping(monitor='accuracy', min_delta=0.05, patience=1) from the slides."""
    s = EarlyStopping(patience=1, min_delta=0.05, mode="max")
    assert _run(s, [0.50, 0.56, 0.60]) == [False, False, True]  # +0.04 is not enough
    assert (s.best_metric, s.best_step) == (0.56, 1)


@pytest.mark.parametrize("mode,metrics", [("max", [1.0, 1.125, 1.5]), ("min", [1.0, 0.875, 0.5])])
def test_min_delta_is_a_strict_margin(mode, metrics):
    # dyadic values: the comparisons below are exact in floating point
    s = EarlyStopping(patience=5, min_delta=0.25, mode=mode)
    _run(s, metrics)
    # 1.125 / 0.875 is within 0.25 of the best: no improvement; 1.5 / 0.5 beats it by more
    assert (s.best_metric, s.best_step, s.num_bad_steps) == (metrics[2], 2, 0)
    s.step(metrics[2] + (0.25 if mode == "max" else -0.25))  # exactly min_delta better
    assert s.best_step == 2 and s.num_bad_steps == 1


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_zero_and_one_stop_at_the_first_bad_step(patience):
    s = EarlyStopping(patience=patience, mode="min")
    assert _run(s, [3.0, 2.0, 2.5]) == [False, False, True]


def test_nan_never_improves():
    s = EarlyStopping(patience=2, mode="min")
    assert _run(s, [1.0, math.nan, math.nan]) == [False, False, True]
    assert s.best_metric == 1.0


@given(
    metrics=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
    patience=st.integers(0, 5),
)
def test_max_mode_against_its_definition(metrics, patience):
    s = EarlyStopping(patience=patience, mode="max")
    for n, m in enumerate(metrics, start=1):
        stop = s.step(m)
        prefix = metrics[:n]
        best = max(prefix)
        first_best = prefix.index(best)  # ties are not improvements
        assert s.best_metric == best and s.best_step == first_best
        assert s.num_bad_steps == n - 1 - first_best
        assert stop == (s.num_bad_steps > 0 and s.num_bad_steps >= patience)


def test_restore_gives_back_the_best_params_bitwise():
    rng = np.random.default_rng(0)
    live = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    arrays = {k: id(v) for k, v in live.items()}
    s = EarlyStopping(patience=10, mode="max")
    snapshots = []
    for acc in [0.1, 0.4, 0.3, 0.2]:
        for v in live.values():
            v += rng.normal(size=v.shape) / 3.0  # in place, as an optimizer does
        snapshots.append({k: v.copy() for k, v in live.items()})
        s.step(acc, live)
    assert s.best_step == 1
    s.restore(live)
    for k in live:
        assert id(live[k]) == arrays[k]
        np.testing.assert_array_equal(live[k], snapshots[1][k])
        assert live[k].tobytes() == snapshots[1][k].tobytes()
    live["W"] += 1.0  # the kept copy is independent of the live arrays
    np.testing.assert_array_equal(s.best_params["W"], snapshots[1]["W"])


def test_restore_needs_params():
    s = EarlyStopping()
    with pytest.raises(RuntimeError, match="no step\\(\\) has received params"):
        s.restore({"W": np.ones(2)})
    live = {"W": np.ones(2)}
    s.step(0.5, live)
    s.step(0.9)  # a better step without params must not leave a stale copy behind
    with pytest.raises(RuntimeError):
        s.restore(live)


def test_state_dict_round_trip():
    s = EarlyStopping(patience=3, min_delta=0.01, mode="min")
    live = {"W": np.arange(3.0)}
    for m in [1.0, 0.5, 0.6]:
        s.step(m, live)
        live["W"] += 1.0
    t = EarlyStopping()
    t.load_state_dict(s.state_dict())
    assert (t.patience, t.min_delta, t.mode) == (3, 0.01, "min")
    for m in [0.7, 0.8]:
        assert s.step(m, live) == t.step(m, live)
    assert t.step(0.9, live) is True and t.best_step == 1
    t.restore(live)
    np.testing.assert_array_equal(live["W"], [1.0, 2.0, 3.0])


def test_bad_input():
    with pytest.raises(ValueError, match="patience must be a non-negative integer, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="patience must be a non-negative integer, got float"):
        EarlyStopping(patience=2.5)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'auto'"):
        EarlyStopping(mode="auto")
    with pytest.raises(ValueError, match="min_delta must be >= 0, got -0.1"):
        EarlyStopping(min_delta=-0.1)
    s = EarlyStopping()
    with pytest.raises(TypeError, match="metric must be a number, got str"):
        s.step("0.5")
    with pytest.raises(ValueError, match=r"metric must be a scalar, got shape \(2,\)"):
        s.step(np.array([0.5, 0.6]))
    s.step(np.float64(0.5), {"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"missing \['W'\], unexpected \['V'\]"):
        s.step(0.6, {"V": np.ones(2)})
    with pytest.raises(ValueError, match=r"params\['W'\] must have shape \(2,\), got \(3,\)"):
        s.restore({"W": np.ones(3)})
    assert s.num_steps == 1  # rejected steps are not counted
