"""FullyConnectedNet: gradients against central differences and a PyTorch twin, modes, init, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeded_rngs, small_dim

from coursekit.dropout import dropout_forward
from coursekit.gradcheck import numerical_gradient, rel_error
from coursekit.models import FullyConnectedNet

TORCH_ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.01),
    "elu": lambda t: F.elu(t, 1.0),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def make_problem(rng, n, d, c):
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    return X, y


def replay_dropout_masks(state, model: FullyConnectedNet, n: int) -> list[np.ndarray]:
    """The scaled masks a training pass starting from generator ``state`` draws, layer by layer.

    Dropout of ones returns the scaled mask itself, and the draws depend only on the shapes.
    """
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return [
        dropout_forward(np.ones((n, h)), model.dropout, mode="train", rng=rng)[0]
        for h in model.hidden_dims
    ]


def torch_twin_loss(model: FullyConnectedNet, X, y, masks):
    """The same network written with torch.nn.functional; returns loss, grads and running stats."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    running = {k: torch.tensor(v) for k, v in model.buffers.items()}
    act = TORCH_ACTIVATIONS[model.activation]
    h = torch.tensor(X)
    for layer in range(1, model.num_layers):
        h = h @ params[f"W{layer}"] + params[f"b{layer}"]
        if model.normalization == "batchnorm":
            h = F.batch_norm(
                h,
                running[f"running_mean{layer}"],
                running[f"running_var{layer}"],
                params[f"gamma{layer}"],
                params[f"beta{layer}"],
                training=True,
                momentum=0.1,
                eps=1e-5,
            )
        elif model.normalization == "layernorm":
            h = F.layer_norm(
                h, (h.shape[1],), params[f"gamma{layer}"], params[f"beta{layer}"], eps=1e-5
            )
        h = act(h)
        if masks:
            h = h * torch.tensor(masks[layer - 1])
    L = model.num_layers
    scores = h @ params[f"W{L}"] + params[f"b{L}"]
    loss = F.cross_entropy(scores, torch.tensor(y))
    weights = [p for k, p in params.items() if k.startswith("W")]
    loss = loss + 0.5 * model.weight_decay * sum((w**2).sum() for w in weights)
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in params.items()}
    return loss.item(), grads, {k: v.numpy() for k, v in running.items()}


@given(
    rng=seeded_rngs(),
    n=small_dim(2, 8),
    d=small_dim(1, 6),
    hidden=st.lists(small_dim(1, 6), min_size=0, max_size=3),
    c=small_dim(2, 5),
    activation=st.sampled_from(sorted(TORCH_ACTIVATIONS)),
    normalization=st.sampled_from([None, "batchnorm", "layernorm"]),
    dropout=st.sampled_from([0.0, 0.3]),
    weight_decay=st.sampled_from([0.0, 0.05]),
)
def test_loss_and_gradients_match_pytorch(
    rng, n, d, hidden, c, activation, normalization, dropout, weight_decay
):
    model = FullyConnectedNet(
        d,
        hidden,
        c,
        activation=activation,
        normalization=normalization,
        dropout=dropout,
        weight_decay=weight_decay,
        seed=int(rng.integers(2**31)),
    )
    # Perturb gamma/beta away from 1/0 so their gradients are exercised in general position.
    for k, v in model.params.items():
        if k.startswith(("gamma", "beta", "b")):
            v += 0.3 * rng.standard_normal(v.shape)
    X, y = make_problem(rng, n, d, c)
    masks = replay_dropout_masks(model.rng.bit_generator.state, model, n) if dropout else []
    expected_loss, expected_grads, expected_running = torch_twin_loss(model, X, y, masks)
    loss, grads = model.loss(X, y)
    assert list(grads) == list(model.params)
    assert loss == pytest.approx(expected_loss, rel=1e-10, abs=1e-12)
    for k, g in grads.items():
        assert g.shape == model.params[k].shape and g.dtype == np.float64
        np.testing.assert_allclose(g, expected_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for k, v in model.buffers.items():  # running statistics updated like F.batch_norm's
        np.testing.assert_allclose(v, expected_running[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize(
    ("dropout", "weight_decay"), [(0.0, 0.0), (0.25, 0.0), (0.0, 0.1), (0.3, 0.2)]
)
def test_every_gradient_passes_the_gradient_check(normalization, dropout, weight_decay):
    rng = np.random.default_rng(11)
    model = FullyConnectedNet(
        5,
        [7, 6],
        4,
        activation="tanh",
        normalization=normalization,
        dropout=dropout,
        weight_decay=weight_decay,
        seed=3,
    )
    X, y = make_problem(rng, 9, 5, 4)
    seed_state = model.rng.bit_generator.state

    def loss_with_fixed_mask(_):
        model.rng.bit_generator.state = seed_state  # the same dropout mask on every call
        return model.loss(X, y)[0]

    _, grads = model.loss(X, y)
    for name, param in model.params.items():
        numeric = numerical_gradient(loss_with_fixed_mask, param)
        if normalization == "batchnorm" and name in ("b1", "b2"):
            # BatchNorm subtracts the batch mean, so a bias before it has no effect at all.
            assert np.abs(grads[name]).max() < 1e-15 and np.abs(numeric).max() < 1e-9
        else:
            assert rel_error(grads[name], numeric) < 1e-6, name


def test_gradient_check_catches_a_wrong_gradient():
    # Sanity of the check above: a gradient missing the L2 term is detected.
    model = FullyConnectedNet(4, [5], 3, activation="tanh", weight_decay=0.5, seed=0)
    X, y = make_problem(np.random.default_rng(0), 6, 4, 3)
    _, grads = model.loss(X, y)
    wrong = grads["W1"] - 0.5 * model.params["W1"]
    numeric = numerical_gradient(lambda _: model.loss(X, y)[0], model.params["W1"])
    assert rel_error(grads["W1"], numeric) < 1e-6
    assert rel_error(wrong, numeric) > 1e-3


def test_l2_penalty_covers_weights_only():
    rng = np.random.default_rng(1)
    X, y = make_problem(rng, 10, 6, 3)
    plain = FullyConnectedNet(6, [8], 3, normalization="layernorm", seed=5)
    decayed = FullyConnectedNet(6, [8], 3, normalization="layernorm", weight_decay=0.3, seed=5)
    loss0, g0 = plain.loss(X, y)
    loss1, g1 = decayed.loss(X, y)
    weights = [v for k, v in plain.params.items() if k.startswith("W")]
    assert loss1 - loss0 == pytest.approx(0.15 * sum((w**2).sum() for w in weights), rel=1e-12)
    for k in plain.params:
        extra = 0.3 * plain.params[k] if k.startswith("W") else 0.0
        np.testing.assert_allclose(g1[k], g0[k] + extra, rtol=1e-12, atol=1e-15, err_msg=k)


def test_test_mode_uses_running_statistics_and_no_dropout():
    rng = np.random.default_rng(2)
    model = FullyConnectedNet(4, [6], 3, normalization="batchnorm", dropout=0.5, seed=1)
    X, y = make_problem(rng, 16, 4, 3)
    X = 3.0 + 2.0 * X  # far from the initial running mean 0 / variance 1
    for _ in range(5):
        model.loss(X, y)
    rm, rv = model.buffers["running_mean1"], model.buffers["running_var1"]
    assert not np.allclose(rm, 0.0)
    state = model.rng.bit_generator.state
    p = model.params
    h = X @ p["W1"] + p["b1"]
    h = (h - rm) / np.sqrt(rv + 1e-5) * p["gamma1"] + p["beta1"]
    expected = np.maximum(h, 0) @ p["W2"] + p["b2"]
    before = {k: v.copy() for k, v in model.buffers.items()}
    scores = model.scores(X, mode="test")
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    # test mode neither moves the running statistics nor consumes dropout randomness
    for k in before:
        np.testing.assert_array_equal(model.buffers[k], before[k])
    assert model.rng.bit_generator.state == state
    # ... and a sample's score does not depend on the rest of the batch
    np.testing.assert_allclose(model.scores(X[:1], mode="test"), scores[:1], rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.argmax(scores, axis=1))
    # train mode differs (batch statistics, dropout) and moves the statistics
    assert not np.allclose(model.scores(X, mode="train"), scores)
    assert not np.array_equal(model.buffers["running_mean1"], before["running_mean1"])


def test_small_init_starts_at_ln_C():
    rng = np.random.default_rng(3)
    X, y = make_problem(rng, 200, 10, 7)
    model = FullyConnectedNet(10, [50, 50], 7, init=0.001, seed=0)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(math.log(7), abs=1e-3)


def test_init_schemes_and_seeding():
    he = FullyConnectedNet(400, [300], 10, init="he", seed=0)
    assert he.params["W1"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert he.params["W2"].std() == pytest.approx(math.sqrt(1 / 300), rel=0.05)  # linear output
    tanh = FullyConnectedNet(400, [300], 10, init="he", activation="tanh", seed=0)
    assert tanh.params["W1"].std() == pytest.approx(5 / 3 / math.sqrt(400), rel=0.02)
    xavier = FullyConnectedNet(400, [300], 10, init="xavier", seed=0)
    assert xavier.params["W1"].std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    fixed = FullyConnectedNet(400, [300], 10, init=0.01, seed=0)
    assert fixed.params["W1"].std() == pytest.approx(0.01, rel=0.02)
    assert np.all(fixed.params["b1"] == 0)
    again = FullyConnectedNet(400, [300], 10, init="he", seed=0)
    other = FullyConnectedNet(400, [300], 10, init="he", seed=1)
    np.testing.assert_array_equal(he.params["W1"], again.params["W1"])
    assert not np.array_equal(he.params["W1"], other.params["W1"])


def test_parameter_and_buffer_layout():
    model = FullyConnectedNet(8, [5, 4], 3, normalization="batchnorm", seed=0)
    assert list(model.params) == [
        "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3",
    ]  # fmt: skip
    assert model.params["W1"].shape == (8, 5) and model.params["W3"].shape == (4, 3)
    assert sorted(model.buffers) == [
        "running_mean1",
        "running_mean2",
        "running_var1",
        "running_var2",
    ]
    np.testing.assert_array_equal(model.buffers["running_var2"], np.ones(4))
    ln = FullyConnectedNet(8, [5], 3, normalization="layernorm", seed=0)
    assert "gamma1" in ln.params and ln.buffers == {}
    softmax_regression = FullyConnectedNet(8, [], 3, seed=0)
    assert list(softmax_regression.params) == ["W1", "b1"]


def test_float32_model_computes_in_float32():
    model = FullyConnectedNet(6, [5], 3, dtype=np.float32, normalization="batchnorm", seed=0)
    assert all(v.dtype == np.float32 for v in model.params.values())
    X, y = make_problem(np.random.default_rng(0), 4, 6, 3)
    loss, grads = model.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.scores(X, mode="test").dtype == np.float32
    # The same seed draws the same weights (in float64, then rounded to float32).
    reference = FullyConnectedNet(6, [5], 3, normalization="batchnorm", seed=0)
    for k, v in reference.params.items():
        np.testing.assert_array_equal(model.params[k], v.astype(np.float32))
    assert loss == pytest.approx(reference.loss(X, y)[0], rel=1e-5)


def test_integer_inputs_are_converted():
    model = FullyConnectedNet(64, [10], 10, seed=0)
    X = np.arange(128).reshape(2, 64) % 17
    np.testing.assert_array_equal(
        model.scores(X, mode="test"), model.scores(X.astype(np.float64), mode="test")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_dim": -1}, ValueError, "input_dim must be a positive integer, got -1"),
        ({"input_dim": 2.5}, TypeError, "input_dim must be an integer"),
        (
            {"hidden_dims": [10, -5]},
            ValueError,
            r"hidden_dims\[1\] must be a positive integer, got -5",
        ),
        ({"hidden_dims": 10}, TypeError, "hidden_dims must be a list"),
        ({"num_classes": 0}, ValueError, "num_classes must be a positive integer, got 0"),
        ({"activation": "swish"}, ValueError, "activation must be one of .* got 'swish'"),
        (
            {"normalization": "groupnorm"},
            ValueError,
            "normalization must be None, 'batchnorm' or 'layernorm', got 'groupnorm'",
        ),
        ({"init": "orthogonal"}, ValueError, "init must be one of .* got 'orthogonal'"),
        ({"init": -0.1}, ValueError, "std must be >= 0, got -0.1"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": "0.5"}, TypeError, "dropout must be a number"),
        ({"weight_decay": -1e-3}, ValueError, "weight_decay must be >= 0, got -0.001"),
        ({"dtype": np.int32}, TypeError, "dtype must be a floating dtype"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"input_dim": 4, "hidden_dims": [3], "num_classes": 2, **kwargs}
    with pytest.raises(error, match=match):
        FullyConnectedNet(
            args.pop("input_dim"), args.pop("hidden_dims"), args.pop("num_classes"), **args
        )


def test_bad_inputs_name_the_shapes():
    model = FullyConnectedNet(64, [10], 10, seed=0)
    X = np.zeros((5, 63))
    with pytest.raises(ValueError, match=r"input_dim=64.*shape \(5, 63\)"):
        model.loss(X, np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"input_dim=64.*shape \(5, 63\)"):
        model.predict(X)
    good = np.zeros((5, 64))
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        model.loss(good, np.zeros(5))
    with pytest.raises(ValueError, match=r"labels in \[0, 10\), got min 0 and max 10"):
        model.loss(good, np.array([0, 1, 2, 3, 10]))
    with pytest.raises(ValueError, match=r"y must have shape \(5,\)"):
        model.loss(good, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="mode must be 'train' or 'test', got 'eval'"):
        model.scores(good, mode="eval")
