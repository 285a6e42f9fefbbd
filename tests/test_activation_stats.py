"""The 10-layer, 500-unit experiment reproduces the lecture's qualitative table."""

import functools

import numpy as np
import pytest
import torch

from coursekit.activation_stats import ActivationStatistics, activation_statistics
from coursekit.init import init_weight


@functools.cache
def run(activation: str, init) -> ActivationStatistics:
    """The lecture's configuration: 10 layers of 500 units on 1000 standard normal samples."""
    return activation_statistics(activation=activation, init=init, seed=0)


def test_tanh_with_small_weights_collapses_forward_and_backward():
    r = run("tanh", 0.01)
    # Each layer multiplies the spread by about 0.01 * sqrt(500) ~ 0.22 (the seed: 0.213,
    # 0.048, 0.011, ..., 0.000000 at layer 10).
    assert 0.19 < r.stds[0] < 0.24
    assert np.all(np.diff(r.stds) < 0)
    assert r.stds[-1] < 1e-4
    np.testing.assert_allclose(r.stds[1:4] / r.stds[:3], 0.22, rtol=0.1)
    # The backward signal fades the same way on its way to the first layers.
    assert r.input_grad_std < 1e-4 * r.grad_stds[-1]


def test_tanh_with_unit_weights_saturates():
    r = run("tanh", 1.0)
    for h in r.activations:
        # Almost every unit near -1 or +1 (the seed's std 0.98), where the local
        # derivative 1 - tanh^2 is below 0.19.
        assert np.mean(np.abs(h) > 0.9) > 0.9
    np.testing.assert_allclose(r.stds, 0.98, atol=0.01)


def test_tanh_with_unit_weights_makes_gradients_explode_not_vanish():
    # What the module docstring says: saturated units pass almost nothing, but W^T scales
    # by about sqrt(500) and the derivatives' root mean square is about 0.155, so the
    # gradient grows by about 3.5 per layer on its way down.
    r = run("tanh", 1.0)
    derivatives = [1 - h**2 for h in r.activations]
    for d in derivatives:
        assert np.mean(d < 0.01) > 0.85
        assert 0.13 < np.sqrt(np.mean(d**2)) < 0.18
    growth = r.grad_stds[:-1] / r.grad_stds[1:]
    assert np.all((3.0 < growth) & (growth < 4.0))
    assert r.grad_stds[0] > 5e4 and r.input_grad_std > 1e5


def test_xavier_keeps_tanh_alive():
    r = run("tanh", "xavier")
    # The seed: 0.63, 0.49, 0.41, ... 0.23 at layer 10; decays slowly, never collapses.
    assert 0.55 < r.stds[0] < 0.7
    assert 0.15 < r.stds[-1] < 0.35
    assert np.all(r.stds[1:] / r.stds[:-1] > 0.7)
    assert r.input_grad_std > 0.1 * r.grad_stds[-1]


def test_he_keeps_relu_std_roughly_constant():
    r = run("relu", "he")
    # The seed: 0.83, 0.83, 0.81, ..., 0.84 over 10 layers.
    assert np.all((r.stds > 0.6) & (r.stds < 1.0))
    assert r.stds.max() / r.stds.min() < 1.3
    assert np.all((r.grad_stds > 0.7) & (r.grad_stds < 1.3))


def test_xavier_halves_relu_variance_layer_after_layer():
    r = run("relu", "xavier")
    # ReLU zeroes half its inputs, so with variance 1/fan_in each layer halves the second
    # moment: consecutive stds shrink by about 1/sqrt(2) (the seed: 0.58, 0.40, 0.28, ...).
    ratios = r.stds[1:] / r.stds[:-1]
    assert np.all((ratios > 0.6) & (ratios < 0.8))
    assert abs(np.exp(np.mean(np.log(ratios))) - 1 / np.sqrt(2)) < 0.03
    variance_ratios = ratios**2
    assert abs(np.mean(variance_ratios) - 0.5) < 0.05
    assert r.stds[-1] < 0.05


def test_table_lists_every_layer_with_forward_and_backward_columns():
    r = run("tanh", 0.01)
    text = r.table()
    lines = text.splitlines()
    assert "tanh" in lines[0] and "0.01" in lines[0]
    assert lines[1].split() == ["layer", "act", "mean", "act", "std", "grad", "mean", "grad", "std"]
    assert lines[2].split()[0] == "input"
    assert [line.split()[0] for line in lines[3:]] == [str(i) for i in range(1, 11)]
    # Values are printed, not placeholders: the first layer's std as the seed prints it.
    assert f"{r.stds[0]:.6f}" in lines[3]
    assert str(r) == text


def test_shapes_reproducibility_and_zero_weights():
    a = activation_statistics(
        depth=3, width=20, num_samples=50, activation="relu", init="he", seed=1
    )
    b = activation_statistics(
        depth=3, width=20, num_samples=50, activation="relu", init="he", seed=1
    )
    c = activation_statistics(
        depth=3, width=20, num_samples=50, activation="relu", init="he", seed=2
    )
    assert a.depth == 3 and len(a.activations) == 3 and a.activations[0].shape == (50, 20)
    for name in ("means", "stds", "grad_means", "grad_stds", "weight_grad_stds"):
        assert getattr(a, name).shape == (3,)
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.stds, c.stds)
    # The statistics are those of the stored activations and gradients.
    np.testing.assert_allclose(a.stds, [h.std() for h in a.activations])
    np.testing.assert_allclose(a.grad_stds, [g.std() for g in a.gradients])
    assert [g.shape for g in a.gradients] == [(50, 20)] * 3
    # The last gradient is the standard normal upstream one.
    assert abs(a.gradients[-1].std() - 1) < 0.15
    z = activation_statistics(depth=2, width=10, num_samples=20, activation="tanh", init="zeros")
    assert np.all(z.stds == 0) and z.input_grad_std == 0


def test_weight_gradients_are_tiny_when_activations_are():
    small = run("tanh", 0.01)
    # dW_l = h_{l-1}^T delta_l: with vanishing activations the deep layers' weights barely move
    # compared with the Xavier network's.
    assert small.weight_grad_stds[-1] < 1e-3 * run("tanh", "xavier").weight_grad_stds[-1]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"depth": 0}, ValueError, "depth must be a positive integer, got 0"),
        ({"width": -5}, ValueError, "width must be a positive integer, got -5"),
        ({"num_samples": 2.5}, TypeError, "num_samples must be an integer"),
        ({"activation": "swish"}, ValueError, "activation must be one of .*got 'swish'"),
        ({"init": "glorot"}, ValueError, "init must be one of .*got 'glorot'"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        activation_statistics(**{"depth": 2, "width": 4, "num_samples": 3, **kwargs})


@pytest.mark.parametrize("activation, init", [("tanh", "xavier"), ("relu", "he"), ("sigmoid", 0.5)])
def test_forward_and_backward_match_torch_autograd(activation, init):
    depth, width, n, seed = 3, 6, 5, 4
    r = activation_statistics(
        depth=depth, width=width, num_samples=n, activation=activation, init=init, seed=seed
    )
    # Same draws as the experiment: data, the weights layer by layer, then the upstream gradient.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width))
    gain = "relu" if init == "he" else "linear"
    weights = [
        torch.tensor(init_weight(init, (width, width), nonlinearity=gain, rng=rng))
        for _ in range(depth)
    ]
    upstream = torch.tensor(rng.standard_normal((n, width)))
    f = getattr(torch, activation)
    hs = [torch.tensor(x, requires_grad=True)]
    for w in weights:
        hs.append(f(hs[-1] @ w))
        hs[-1].retain_grad()
    hs[-1].backward(upstream)
    for ours, h in zip(r.activations, hs[1:]):
        np.testing.assert_allclose(ours, h.detach().numpy(), rtol=1e-12, atol=1e-15)
    for ours, h in zip(r.gradients, hs[1:]):
        np.testing.assert_allclose(ours, h.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert r.input_grad_std == pytest.approx(hs[0].grad.std(unbiased=False).item(), rel=1e-10)
