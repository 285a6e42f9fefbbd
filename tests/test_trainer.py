"""Trainer: learning on digits, determinism, checkpoints, schedules/clipping/EMA/early stopping."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from coursekit.averaging import ExponentialMovingAverage
from coursekit.clipping import clip_grad_norm_
from coursekit.data import digits_splits
from coursekit.early_stopping import EarlyStopping
from coursekit.models import FullyConnectedNet
from coursekit.optim import SGD, Adam
from coursekit.schedules import StepLR
from coursekit.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    return digits_splits(seed=0)


def small_data(digits, n_train=200, n_val=100):
    return {
        "X_train": digits["X_train"][:n_train],
        "y_train": digits["y_train"][:n_train],
        "X_val": digits["X_val"][:n_val],
        "y_val": digits["y_val"][:n_val],
    }


def make_run(data, *, num_epochs=4, seed=0, extras=False, **kwargs):
    """A trainer over a net with BatchNorm and dropout (every source of randomness in play)."""
    model = FullyConnectedNet(64, [32, 16], 10, normalization="batchnorm", dropout=0.2, seed=seed)
    opt = Adam(model.params, lr=5e-3)
    if extras:
        kwargs.update(
            schedule=StepLR(opt, step_size=2, gamma=0.5),
            ema=ExponentialMovingAverage(model.params, decay=0.9),
            early_stopping=EarlyStopping(patience=50),
            clip=functools.partial(clip_grad_norm_, max_norm=5.0),
        )
    return Trainer(model, data, opt, batch_size=32, num_epochs=num_epochs, seed=seed, **kwargs)


def test_overfits_50_digits_with_a_three_layer_net(digits):
    data = {
        "X_train": digits["X_train"][:50],
        "y_train": digits["y_train"][:50],
        "X_val": digits["X_val"],
        "y_val": digits["y_val"],
    }
    model = FullyConnectedNet(64, [100, 100], 10, seed=0)
    trainer = Trainer(model, data, Adam(model.params, lr=1e-2), batch_size=25, num_epochs=20)
    history = trainer.train()
    assert history["train_acc_history"][-1] == 1.0
    assert history["loss_history"][-1] < 0.05
    # overfitting: far better on the 50 training digits than on unseen ones
    assert trainer.best_val_acc < 0.95


def test_two_layer_net_reaches_95_percent_on_digits_within_20_epochs(digits):
    model = FullyConnectedNet(64, [100], 10, seed=0)
    trainer = Trainer(model, digits, Adam(model.params, lr=1e-2), batch_size=50, num_epochs=20)
    history = trainer.train()
    assert len(history["val_acc_history"]) == 20
    assert len(history["loss_history"]) == 20 * 22  # ceil(1079 / 50) steps per epoch
    assert max(history["val_acc_history"]) >= 0.95
    # the model ends with the best validation parameters
    assert trainer.check_accuracy(digits["X_val"], digits["y_val"]) == trainer.best_val_acc
    assert trainer.best_val_acc == max(history["val_acc_history"])
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, trainer.best_params[k])
    # and generalizes to the untouched test split
    assert trainer.check_accuracy(digits["X_test"], digits["y_test"]) >= 0.93


def test_same_seed_gives_bitwise_identical_runs(digits):
    data = small_data(digits)
    a, b = make_run(data, extras=True), make_run(data, extras=True)
    ha, hb = a.train(), b.train()
    assert ha == hb  # lists of floats compared exactly
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    for k in a.model.buffers:
        np.testing.assert_array_equal(a.model.buffers[k], b.model.buffers[k])
    other = make_run(data, seed=1, extras=True).train()
    assert other["loss_history"] != ha["loss_history"]


def assert_same_state(a: Trainer, b: Trainer):
    assert a.history == b.history
    assert (a.epoch, a.num_steps, a.best_val_acc) == (b.epoch, b.num_steps, b.best_val_acc)
    for name in ("params", "buffers"):
        da, db = getattr(a.model, name), getattr(b.model, name)
        assert list(da) == list(db)
        for k in da:
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{name}[{k}]")
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["hyperparams"] == sb["hyperparams"]
    for k in sa["state"]:
        for key, value in sa["state"][k].items():
            np.testing.assert_array_equal(value, sb["state"][k][key])


@pytest.mark.parametrize("extras", [False, True])
def test_checkpoint_resume_equals_an_uninterrupted_run(digits, tmp_path, extras):
    data = small_data(digits)
    straight = make_run(data, num_epochs=4, extras=extras)
    straight.train()

    first = make_run(data, num_epochs=2, extras=extras)
    first.train()
    path = first.save_checkpoint(tmp_path / "run")
    assert path.name == "run.npz" and path.exists()

    # a fresh model, optimizer and trainer (different seed: everything must come from the file)
    resumed = make_run(data, num_epochs=4, seed=5, extras=extras)
    resumed.load_checkpoint(path)
    assert resumed.epoch == 2 and resumed.history == first.history
    resumed.train()
    assert_same_state(resumed, straight)
    if extras:
        assert resumed.optimizer.lr == straight.optimizer.lr == 5e-3 * 0.25
        np.testing.assert_array_equal(resumed.ema.averaged["W1"], straight.ema.averaged["W1"])


def test_checkpoint_round_trip_is_exact(digits, tmp_path):
    data = small_data(digits)
    trainer = make_run(data, num_epochs=1, extras=True)
    trainer.train()
    path = trainer.save_checkpoint(tmp_path / "ckpt.npz")
    loaded = make_run(data, num_epochs=1, seed=9, extras=True)
    loaded.load_checkpoint(path)
    assert_same_state(loaded, trainer)
    assert loaded.schedule.state_dict() == trainer.schedule.state_dict()
    assert loaded.early_stopping.best_metric == trainer.early_stopping.best_metric
    assert loaded.model.rng.bit_generator.state == trainer.model.rng.bit_generator.state
    for k, v in trainer.best_params.items():
        np.testing.assert_array_equal(loaded.best_params[k], v)
    # types survive the JSON part: ints stay ints, tuples stay tuples
    step = loaded.optimizer.state["W1"]["step"]
    assert type(step) is type(trainer.optimizer.state["W1"]["step"])
    assert loaded.optimizer.hyperparams["betas"] == trainer.optimizer.hyperparams["betas"]
    assert isinstance(loaded.optimizer.hyperparams["betas"], tuple)
    # the file loads without pickle
    with np.load(path, allow_pickle=False) as archive:
        assert "params/W1" in archive.files


def test_load_checkpoint_rejects_another_architecture(digits, tmp_path):
    data = small_data(digits)
    trainer = make_run(data, num_epochs=1)
    trainer.train()
    path = trainer.save_checkpoint(tmp_path / "a.npz")
    model = FullyConnectedNet(64, [20], 10)
    other = Trainer(model, data, Adam(model.params))
    with pytest.raises(ValueError, match="do not fit the model"):
        other.load_checkpoint(path)


def test_schedule_per_epoch_and_per_step(digits):
    data = small_data(digits, n_train=100)  # 4 steps per epoch with batch_size 32

    def lrs(interval):
        model = FullyConnectedNet(64, [16], 10)
        opt = SGD(model.params, lr=0.1)
        schedule = StepLR(opt, step_size=1, gamma=0.5)
        trainer = Trainer(
            model, data, opt, batch_size=32, num_epochs=3, schedule=schedule,
            schedule_interval=interval,
        )  # fmt: skip
        return trainer.train()["lr_history"]  # the rate each step used

    np.testing.assert_allclose(lrs("epoch"), [0.1] * 4 + [0.05] * 4 + [0.025] * 4, rtol=1e-15)
    np.testing.assert_allclose(lrs("step"), 0.1 * 0.5 ** np.arange(12), rtol=1e-15)


def test_clip_runs_on_the_gradients_before_the_step(digits):
    data = small_data(digits, n_train=64)
    model = FullyConnectedNet(64, [16], 10)
    start = {k: v.copy() for k, v in model.params.items()}
    seen = []

    def zero_grads(grads):
        seen.append(sorted(grads))
        for g in grads.values():
            g[...] = 0.0

    trainer = Trainer(
        model, data, SGD(model.params, lr=1.0), batch_size=32, num_epochs=2, clip=zero_grads
    )
    trainer.train()
    assert len(seen) == 4 and seen[0] == sorted(model.params)
    for k, v in model.params.items():  # zeroed in place, so SGD never moved anything
        np.testing.assert_array_equal(v, start[k])


def test_evaluation_uses_the_averaged_parameters(digits):
    data = small_data(digits)
    model = FullyConnectedNet(64, [32], 10)
    opt = SGD(model.params, lr=0.2, momentum=0.9)
    ema = ExponentialMovingAverage(model.params, decay=0.8)
    trainer = Trainer(model, data, opt, batch_size=32, num_epochs=2, ema=ema, restore_best=False)
    history = trainer.train()
    assert ema.num_updates == trainer.num_steps == 14
    with ema.average_parameters(model.params):
        averaged_acc = trainer.check_accuracy(data["X_val"], data["y_val"])
    assert history["val_acc_history"][-1] == averaged_acc
    live_acc = trainer.check_accuracy(data["X_val"], data["y_val"])
    assert averaged_acc != live_acc  # the check above can tell the two apart


def test_early_stopping_ends_training_and_restores_the_best(digits):
    data = small_data(digits)
    model = FullyConnectedNet(64, [16], 10)
    # lr = 0: the validation accuracy never improves after the first evaluation
    stopper = EarlyStopping(patience=2)
    trainer = Trainer(model, data, SGD(model.params, lr=0.0), num_epochs=20, early_stopping=stopper)
    history = trainer.train()
    assert trainer.stopped_early and trainer.epoch == 3
    assert len(history["val_acc_history"]) == 3
    # a stopper watching a loss receives the validation loss
    model = FullyConnectedNet(64, [16], 10)
    stopper = EarlyStopping(patience=100, mode="min")
    trainer = Trainer(
        model, data, Adam(model.params, lr=1e-2), num_epochs=3, early_stopping=stopper
    )
    history = trainer.train()
    assert stopper.best_metric == min(history["val_loss_history"])


def test_a_lone_leftover_sample_joins_the_last_batch(digits):
    data = small_data(digits, n_train=65)  # 32 + 32 + 1
    model = FullyConnectedNet(64, [8], 10, normalization="batchnorm")
    trainer = Trainer(model, data, Adam(model.params), batch_size=32, num_epochs=2)
    trainer.train()  # BatchNorm would reject a batch of one sample
    assert trainer.num_steps == 4


def test_eval_every_steps(digits):
    data = small_data(digits, n_train=100)
    model = FullyConnectedNet(64, [16], 10)
    trainer = Trainer(model, data, Adam(model.params), batch_size=20, num_epochs=2, eval_every=3)
    history = trainer.train()
    assert trainer.num_steps == 10
    np.testing.assert_allclose(history["eval_epochs"], [0.6, 1.2, 1.8])
    assert len(history["train_acc_history"]) == 3


def test_train_accuracy_is_estimated_on_a_subsample(digits):
    model = FullyConnectedNet(64, [16], 10)
    trainer = Trainer(model, digits, Adam(model.params), num_epochs=1, num_train_samples=7)
    history = trainer.train()
    assert history["train_acc_history"][0] * 7 == pytest.approx(
        round(history["train_acc_history"][0] * 7)
    )


def test_progress_output(digits, capsys):
    data = small_data(digits, n_train=50)
    model = FullyConnectedNet(64, [8], 10)
    Trainer(model, data, Adam(model.params), num_epochs=2).train()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    model = FullyConnectedNet(64, [8], 10)
    Trainer(model, data, Adam(model.params), num_epochs=2, progress=True).train()
    captured = capsys.readouterr()
    assert "val acc" in captured.out + captured.err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        ({"batch_size": -5}, ValueError, "batch_size must be a positive integer, got -5"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"num_epochs": 0}, ValueError, "num_epochs must be a positive integer, got 0"),
        (
            {"schedule_interval": "batch"},
            ValueError,
            "schedule_interval must be 'epoch' or 'step', got 'batch'",
        ),
        ({"eval_every": "never"}, ValueError, "eval_every must be 'epoch' or a number of steps"),
        ({"eval_every": 0}, ValueError, "eval_every must be a positive integer, got 0"),
        ({"num_train_samples": -1}, ValueError, "num_train_samples must be a positive integer"),
        ({"clip": 1.0}, TypeError, "clip must be callable"),
        ({"schedule": 0.5}, TypeError, "schedule must have a step"),
        ({"ema": object()}, TypeError, "ema must have update"),
        ({"early_stopping": 3}, TypeError, "early_stopping must have step"),
    ],
)
def test_bad_trainer_arguments(digits, kwargs, error, match):
    model = FullyConnectedNet(64, [8], 10)
    with pytest.raises(error, match=match):
        Trainer(model, small_data(digits), Adam(model.params), **kwargs)


def test_bad_data_and_optimizer(digits):
    model = FullyConnectedNet(64, [8], 10)
    opt = Adam(model.params)
    data = small_data(digits)
    with pytest.raises(ValueError, match=r"data is missing \['X_val', 'y_val'\]"):
        Trainer(model, {"X_train": data["X_train"], "y_train": data["y_train"]}, opt)
    with pytest.raises(
        TypeError, match="y_train must hold integer class labels, got dtype float64"
    ):
        Trainer(model, {**data, "y_train": data["y_train"].astype(float)}, opt)
    with pytest.raises(ValueError, match=r"y_val must have shape \(100,\)"):
        Trainer(model, {**data, "y_val": data["y_val"][:10]}, opt)
    with pytest.raises(TypeError, match="data must be a dict"):
        Trainer(model, [data["X_train"]], opt)
    other = FullyConnectedNet(64, [8], 10)
    with pytest.raises(ValueError, match="optimizer must be built on model.params"):
        Trainer(model, data, Adam(other.params))
    wrong_features = {**data, "X_train": data["X_train"][:, :60]}
    trainer = Trainer(model, wrong_features, opt, num_epochs=1)
    with pytest.raises(
        ValueError, match=r"input_dim=64.*\(32, 60\)|input_dim=64.*shape \(\d+, 60\)"
    ):
        trainer.train()
    model = FullyConnectedNet(64, [8], 10)
    diverging = Trainer(model, data, SGD(model.params, lr=1e200), num_epochs=3)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match="the loss became .* lower the learning rate"):
            diverging.train()


def test_check_accuracy(digits):
    model = FullyConnectedNet(64, [16], 10)
    trainer = Trainer(model, small_data(digits), Adam(model.params))
    X, y = digits["X_val"], digits["y_val"]
    expected = np.mean(model.predict(X) == y)
    assert trainer.check_accuracy(X, y) == expected
    assert trainer.check_accuracy(X, y, 7) == expected  # chunking changes nothing
    rng = np.random.default_rng(0)
    sub = trainer.check_accuracy(X, y, num_samples=50, rng=rng)
    assert round(sub * 50) == pytest.approx(sub * 50)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        trainer.check_accuracy(X, y, batch_size=0)
    with pytest.raises(ValueError, match="needs rng="):
        trainer.check_accuracy(X, y, num_samples=5)
    with pytest.raises(ValueError, match=r"y must have shape \(359,\)"):
        trainer.check_accuracy(X, y[:3])
