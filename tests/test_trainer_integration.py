"""The trainer with every optimizer and all the regularization tools at once.

Each run trains a small net on the digits with a learning-rate schedule (per epoch or per
step), gradient clipping by norm, an EMA of the parameters and early stopping, and checks
that every piece did its job inside the trainer, not only on its own.
"""

from __future__ import annotations

import numpy as np
import pytest

from coursekit.averaging import ExponentialMovingAverage, PolyakAverage
from coursekit.clipping import clip_grad_norm_
from coursekit.data import digits_splits
from coursekit.early_stopping import EarlyStopping
from coursekit.losses import softmax_loss
from coursekit.models import FullyConnectedNet
from coursekit.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from coursekit.regularization import l2_penalty
from coursekit.schedules import ExponentialLR, StepLR
from coursekit.trainer import Trainer

BATCH = 64
MAX_NORM = 0.3

OPTIMIZERS = {
    "sgd": (SGD, {"lr": 0.3}),
    "sgd_nesterov": (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    "adagrad": (Adagrad, {"lr": 0.1}),
    "rmsprop": (RMSprop, {"lr": 2e-3, "momentum": 0.5, "centered": True}),
    "adam": (Adam, {"lr": 1e-2, "amsgrad": True}),
    "adamw": (AdamW, {"lr": 1e-2, "weight_decay": 1e-2}),
}


@pytest.fixture(scope="module")
def digits():
    return digits_splits(seed=0)


class RecordingClip:
    """clip_grad_norm_ that also records the norms before and after clipping."""

    def __init__(self, max_norm):
        self.max_norm = max_norm
        self.before, self.after = [], []

    def __call__(self, grads):
        self.before.append(clip_grad_norm_(grads, self.max_norm))
        self.after.append(np.sqrt(sum(np.sum(g * g) for g in grads.values())))


@pytest.mark.parametrize("interval", ["epoch", "step"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_with_schedule_clipping_ema_and_early_stopping(digits, name, interval):
    cls, kwargs = OPTIMIZERS[name]
    model = FullyConnectedNet(64, [32], 10, seed=1)
    opt = cls(model.params, **kwargs)
    base_lr = kwargs["lr"]
    if interval == "epoch":
        schedule = StepLR(opt, step_size=2, gamma=0.5)
    else:
        schedule = ExponentialLR(opt, gamma=0.995)
    clip = RecordingClip(MAX_NORM)
    ema = ExponentialMovingAverage(model.params, decay=0.9)
    stopper = EarlyStopping(patience=3, mode="max")
    trainer = Trainer(
        model, digits, opt, batch_size=BATCH, num_epochs=6, schedule=schedule,
        schedule_interval=interval, clip=clip, ema=ema, early_stopping=stopper, seed=2,
    )  # fmt: skip
    history = trainer.train()
    steps = trainer.num_steps
    steps_per_epoch = -(-digits["X_train"].shape[0] // BATCH)

    # it learned
    assert max(history["val_acc_history"]) > 0.85, history["val_acc_history"]
    # the schedule set the learning rate each step used
    i = np.arange(steps)
    expected_lr = (
        base_lr * 0.5 ** ((i // steps_per_epoch) // 2)
        if interval == "epoch"
        else base_lr * 0.995**i
    )
    np.testing.assert_allclose(history["lr_history"], expected_lr, rtol=1e-12)
    # every step's gradients were clipped to the global norm, and clipping was active
    assert len(clip.before) == len(clip.after) == steps
    assert max(clip.after) <= MAX_NORM * (1 + 1e-12)
    assert max(clip.before) > MAX_NORM
    clipped = np.array(clip.before) > MAX_NORM
    np.testing.assert_allclose(
        np.array(clip.after)[clipped], MAX_NORM * np.array(clip.before)[clipped]
        / (np.array(clip.before)[clipped] + 1e-6), rtol=1e-10,
    )  # fmt: skip
    # the average saw every step
    assert ema.num_updates == steps
    # early stopping saw every evaluation, and its best is the trainer's best
    evals = history["val_acc_history"]
    assert stopper.num_steps == len(evals)
    assert stopper.best_metric == max(evals) == trainer.best_val_acc
    assert stopper.best_step == int(np.argmax(evals))
    for k, v in trainer.best_params.items():
        np.testing.assert_array_equal(stopper.best_params[k], v)
    assert trainer.stopped_early == (stopper.num_bad_steps >= stopper.patience)
    assert trainer.stopped_early or trainer.epoch == 6


def test_clipping_bounds_every_sgd_step(digits):
    """Plain SGD with gradients clipped to norm c moves the weights by at most lr * c a step."""
    lr, c = 0.5, 1e-3
    model = FullyConnectedNet(64, [32], 10, seed=3)
    start = np.concatenate([v.ravel().copy() for v in model.params.values()])
    clip = RecordingClip(c)
    trainer = Trainer(
        model, digits, SGD(model.params, lr=lr), batch_size=BATCH, num_epochs=1, clip=clip,
        restore_best=False,
    )  # fmt: skip
    trainer.train()
    end = np.concatenate([v.ravel() for v in model.params.values()])
    # every gradient was far larger than c, so every step had length lr * c (up to eps)
    assert min(clip.before) > 100 * c
    moved = np.linalg.norm(end - start)
    assert moved <= trainer.num_steps * lr * c * (1 + 1e-9)
    assert moved > 0.5 * trainer.num_steps * lr * c  # consecutive steps mostly agree


def test_ema_with_zero_decay_is_the_live_model(digits):
    """decay = 0 averages nothing away: the run is bitwise the run without an average."""

    def run(ema_factory):
        model = FullyConnectedNet(64, [32], 10, seed=4)
        opt = Adam(model.params, lr=1e-2)
        ema = ema_factory(model.params) if ema_factory else None
        trainer = Trainer(model, digits, opt, batch_size=BATCH, num_epochs=2, ema=ema, seed=1)
        return trainer.train(), model.params

    h_plain, p_plain = run(None)
    h_ema, p_ema = run(lambda params: ExponentialMovingAverage(params, decay=0.0))
    assert h_plain == h_ema
    for k in p_plain:
        np.testing.assert_array_equal(p_plain[k], p_ema[k])


def test_polyak_average_in_the_trainer(digits):
    model = FullyConnectedNet(64, [32], 10, seed=5)
    avg = PolyakAverage(model.params)
    trainer = Trainer(
        model, digits, SGD(model.params, lr=0.1, momentum=0.9), batch_size=BATCH, num_epochs=2,
        ema=avg, restore_best=False,
    )  # fmt: skip
    history = trainer.train()
    assert avg.num_updates == trainer.num_steps
    with avg.average_parameters(model.params):
        acc = trainer.check_accuracy(digits["X_val"], digits["y_val"])
    assert history["val_acc_history"][-1] == acc > 0.8


def test_early_stopping_restore_gives_the_best_evaluation_back(digits):
    model = FullyConnectedNet(64, [32], 10, seed=6)
    stopper = EarlyStopping(patience=1, mode="min")  # watches the validation loss
    trainer = Trainer(
        model, digits, SGD(model.params, lr=2.0), batch_size=BATCH, num_epochs=15,
        early_stopping=stopper, restore_best=False,
    )  # fmt: skip
    history = trainer.train()  # lr = 2 is too high: the validation loss soon goes up
    losses = history["val_loss_history"]
    assert trainer.stopped_early and len(losses) < 15
    assert stopper.best_metric == min(losses) and stopper.best_step == int(np.argmin(losses))
    stopper.restore(model.params)
    scores = model.scores(digits["X_val"], mode="test")
    assert softmax_loss(scores, digits["y_val"])[0] == pytest.approx(min(losses), rel=1e-12)


def test_model_weight_decay_is_l2_penalty_on_the_weights(digits):
    """FullyConnectedNet(weight_decay=λ) adds exactly l2_penalty(params, λ, keys=W*)."""
    lam = 0.05
    X, y = digits["X_train"][:50], digits["y_train"][:50]
    decayed = FullyConnectedNet(64, [16, 8], 10, weight_decay=lam, seed=7)
    plain = FullyConnectedNet(64, [16, 8], 10, seed=7)
    loss_d, grads_d = decayed.loss(X, y)
    loss_p, grads_p = plain.loss(X, y)
    pen, pen_grads = l2_penalty(plain.params, lam, keys=lambda k: k.startswith("W"))
    assert loss_d == pytest.approx(loss_p + pen, rel=1e-12)
    assert sorted(pen_grads) == ["W1", "W2", "W3"]
    for k in grads_p:
        np.testing.assert_allclose(grads_d[k], grads_p[k] + pen_grads.get(k, 0.0), rtol=1e-12)
