"""EMA and Polyak averaging against torch.optim.swa_utils.AveragedModel."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeded_rngs
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from coursekit.averaging import ExponentialMovingAverage, PolyakAverage

SHAPES = {"W1": (4, 3), "b1": (3,), "W2": (3, 2)}


def _random_params(rng):
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def _trajectory(rng, steps):
    """Parameter values after each of ``steps`` optimizer steps (a noisy drift)."""
    params = _random_params(rng)
    out = []
    for _ in range(steps):
        params = {k: v - 0.1 * v + 0.3 * rng.normal(size=v.shape) for k, v in params.items()}
        out.append(params)
    return out


def _torch_model(params):
    return torch.nn.ParameterDict(
        {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    )


def _run_both(ours, reference, live, torch_live, trajectory):
    for values in trajectory:
        for k, v in values.items():
            live[k][...] = v  # in place, as an optimizer does
        with torch.no_grad():
            for k, v in values.items():
                torch_live[k].copy_(torch.tensor(v))
        ours.update(live)
        reference.update_parameters(torch_live)
        for k in SHAPES:
            np.testing.assert_allclose(
                ours.averaged[k], reference.module[k].detach().numpy(), rtol=1e-12, atol=1e-14
            )


@given(rng=seeded_rngs(), steps=st.integers(1, 12), decay=st.sampled_from([0.0, 0.5, 0.9, 0.995]))
def test_ema_equals_torch_averaged_model(rng, steps, decay):
    init = _random_params(rng)
    live = {k: v.copy() for k, v in init.items()}
    torch_live = _torch_model(init)
    reference = AveragedModel(torch_live, multi_avg_fn=get_ema_multi_avg_fn(decay))
    ema = ExponentialMovingAverage(live, decay=decay)
    _run_both(ema, reference, live, torch_live, _trajectory(rng, steps))
    assert ema.num_updates == steps == int(reference.n_averaged)


@given(rng=seeded_rngs(), steps=st.integers(1, 12))
def test_polyak_equals_torch_averaged_model(rng, steps):
    init = _random_params(rng)
    live = {k: v.copy() for k, v in init.items()}
    torch_live = _torch_model(init)
    reference = AveragedModel(torch_live)
    avg = PolyakAverage(live)
    trajectory = _trajectory(rng, steps)
    _run_both(avg, reference, live, torch_live, trajectory)
    for k in SHAPES:  # and it is the plain mean
        mean = np.mean([t[k] for t in trajectory], axis=0)
        np.testing.assert_allclose(avg.averaged[k], mean, rtol=1e-10, atol=1e-12)


def test_ema_closed_form_and_the_seed_recurrence():
    w = {"x": np.array([0.0])}
    ema = ExponentialMovingAverage(w, decay=0.995)
    values = [2.0, 4.0, -1.0]
    x_test = None
    for v in values:
        w["x"][...] = v
        ema.update(w)
        x_test = v if x_test is None else 0.995 * x_test + 0.005 * v  # the lecture's loop
    assert ema.averaged["x"][0] == pytest.approx(x_test, rel=1e-15)


def test_ema_warmup_decay_schedule():
    w = {"x": np.array([0.0])}
    ema = ExponentialMovingAverage(w, decay=0.9, warmup=True)
    decays = []
    expected = 0.0
    for t in range(1, 100):
        decays.append(ema.current_decay())
        w["x"][...] = float(t)
        ema.update(w)
        d = min(0.9, t / (t + 9))
        expected = float(t) if t == 1 else d * expected + (1 - d) * t
        assert ema.averaged["x"][0] == pytest.approx(expected, rel=1e-13)
    assert decays[:3] == pytest.approx([0.1, 2 / 11, 3 / 12])
    assert decays[-1] == 0.9


def test_average_before_any_update_is_the_initial_copy():
    live = {"W": np.arange(3.0)}
    ema = ExponentialMovingAverage(live)
    live["W"] += 10.0
    np.testing.assert_array_equal(ema.averaged["W"], np.arange(3.0))


def _ema_with_history():
    rng = np.random.default_rng(0)
    live = _random_params(rng)
    ema = ExponentialMovingAverage(live, decay=0.9)
    for values in _trajectory(rng, 5):
        for k, v in values.items():
            live[k][...] = v
        ema.update(live)
    return live, ema


def test_average_parameters_swaps_in_place_and_restores():
    live, ema = _ema_with_history()
    arrays = {k: id(v) for k, v in live.items()}
    before = {k: v.copy() for k, v in live.items()}
    with ema.average_parameters(live) as inside:
        assert inside is live
        for k in SHAPES:
            assert id(live[k]) == arrays[k]  # same arrays: a model holding them sees the swap
            np.testing.assert_array_equal(live[k], ema.averaged[k])
    for k in SHAPES:
        assert id(live[k]) == arrays[k]
        np.testing.assert_array_equal(live[k], before[k])
        assert not np.array_equal(live[k], ema.averaged[k])


def test_average_parameters_restores_on_exception():
    live, ema = _ema_with_history()
    before = {k: v.copy() for k, v in live.items()}
    with pytest.raises(ZeroDivisionError):
        with ema.average_parameters(live):
            live["W1"][0, 0] = 123.0  # even changes made inside are undone
            raise ZeroDivisionError("raised inside the block")
    for k in SHAPES:
        np.testing.assert_array_equal(live[k], before[k])


def test_copy_to_is_permanent_and_independent():
    live, ema = _ema_with_history()
    ema.copy_to(live)
    for k in SHAPES:
        np.testing.assert_array_equal(live[k], ema.averaged[k])
        assert live[k] is not ema.averaged[k]
    live["W1"] += 1.0
    assert not np.array_equal(live["W1"], ema.averaged["W1"])


@pytest.mark.parametrize(
    "cls,kwargs", [(ExponentialMovingAverage, {"decay": 0.8}), (PolyakAverage, {})]
)
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    rng = np.random.default_rng(1)
    live = _random_params(rng)
    trajectory = _trajectory(rng, 10)
    a = cls(live, **kwargs)
    for values in trajectory[:4]:
        a.update(values)
    state = a.state_dict()
    state_copy = {k: v.copy() for k, v in state["averaged"].items()}
    b = cls(_random_params(rng), **({"decay": 0.1} if kwargs else {}))
    b.load_state_dict(state)
    for values in trajectory[4:]:
        a.update(values)
        b.update(values)
    assert b.num_updates == a.num_updates == 10
    for k in SHAPES:
        np.testing.assert_array_equal(a.averaged[k], b.averaged[k])
        np.testing.assert_array_equal(state["averaged"][k], state_copy[k])  # a copy, not a view
    if kwargs:
        assert b.decay == 0.8


def test_bad_input():
    live = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got -0.1"):
        ExponentialMovingAverage(live, decay=-0.1)
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
        ExponentialMovingAverage(live, decay=1.5)
    with pytest.raises(TypeError, match="decay must be a number"):
        ExponentialMovingAverage(live, decay="0.9")
    with pytest.raises(TypeError, match="params must be a dict of named numpy arrays, got list"):
        PolyakAverage([np.ones(2)])
    with pytest.raises(TypeError, match=r"params\['W'\] must have a floating dtype"):
        PolyakAverage({"W": np.ones(2, dtype=int)})
    ema = ExponentialMovingAverage(live)
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        ema.update({"W": np.ones((2, 2)), "c": np.zeros(2)})
    with pytest.raises(ValueError, match=r"params\['b'\] must have shape \(2,\), got \(3,\)"):
        ema.update({"W": np.ones((2, 2)), "b": np.zeros(3)})
    with pytest.raises(ValueError, match="missing"):
        with ema.average_parameters({"W": np.ones((2, 2))}):
            pytest.fail("average_parameters must refuse mismatched names before swapping")
    assert ema.num_updates == 0
