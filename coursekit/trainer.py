"""Minibatch training of a model with any coursekit optimizer (the "solver").

::

    model = FullyConnectedNet(64, [100], 10)
    trainer = Trainer(model, digits_splits(), Adam(model.params, lr=1e-3), num_epochs=20)
    history = trainer.train()   # model now holds the best-validation parameters

One **step** takes a minibatch, computes ``loss, grads = model.loss(X, y)``, optionally clips
``grads`` in place, calls ``optimizer.step(grads)``, updates the parameter average and, with
``schedule_interval="step"``, the schedule. An **epoch** is one pass over a fresh random
permutation of the training set in minibatches of ``batch_size`` (the last one may be smaller;
a single leftover sample joins the previous minibatch, since BatchNorm needs two).
After every epoch (or every ``eval_every`` steps) the trainer measures accuracy on up to
``num_train_samples`` training samples and on the whole validation set, keeps a copy of the
parameters with the best validation accuracy, and asks the early-stopping helper whether to
stop. All randomness (minibatch order, the training subsample) comes from generators seeded
by ``seed``, so two runs with equal seeds produce bitwise identical histories and parameters.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from coursekit._named_arrays import copy_arrays, copy_into
from coursekit._validation import as_array, check_labels, check_positive_int
from coursekit.losses import softmax_loss

HISTORY_KEYS = (
    "loss_history",
    "lr_history",
    "train_acc_history",
    "val_acc_history",
    "val_loss_history",
    "eval_epochs",
)
_META = "__meta__"


class Trainer:
    """Train ``model`` on ``data`` with ``optimizer``, recording histories.

    Parameters
    ----------
    model
        Anything with ``params`` (dict of arrays), ``loss(X, y) -> (loss, grads)`` (train
        mode), ``scores(X, mode="test")`` and ``predict(X)``; optionally ``buffers`` (dict of
        arrays, e.g. BatchNorm running statistics) and ``rng`` (its dropout Generator), which
        are saved in checkpoints and, for ``buffers``, with the best parameters.
    data : dict
        ``X_train, y_train, X_val, y_val`` (e.g. from :func:`coursekit.data.digits_splits`).
    optimizer : coursekit.optim.Optimizer
        Built on ``model.params``; ``step(grads)`` updates them in place.
    batch_size : int, default 100
    num_epochs : int, default 10
    schedule : object with ``step()``, optional
        A learning-rate schedule that sets ``optimizer.lr``; called once per epoch or once per
        step after the optimizer step (as in PyTorch).
    schedule_interval : {"epoch", "step"}, default "epoch"
    clip : callable, optional
        ``clip(grads)`` modifies the gradient dict in place before the step, e.g.
        ``functools.partial(clip_grad_norm_, max_norm=1.0)``.
    ema : object, optional
        A parameter average with ``update(params)`` and the context manager
        ``average_parameters(params)``: updated after every step; evaluations (and so the
        best parameters) use the averaged weights.
    early_stopping : object, optional
        With ``step(metric, params) -> bool``; called after every evaluation with the
        validation accuracy, or with the validation loss if its ``mode`` is ``"min"``.
        Training stops when it returns True.
    seed : int, default 0
        Seeds the minibatch order and the training-accuracy subsample (independent streams).
    progress : bool, default False
        Show a tqdm progress bar if tqdm is installed, else print one line per evaluation.
    eval_every : "epoch" or int, default "epoch"
        Evaluate after every epoch, or every that many steps.
    num_train_samples : int or None, default 1000
        Training accuracy is estimated on a random subsample of this size (None: all).
    restore_best : bool, default True
        At the end of :meth:`train`, put the best-validation parameters (and buffers) into the
        model. The last ("live") parameters stay available for resuming: a later ``train()``
        call and :meth:`save_checkpoint` continue from them.

    Attributes
    ----------
    history : dict of lists
        ``loss_history`` and ``lr_history`` (one entry per step: the minibatch loss and the
        learning rate the step used), ``train_acc_history``, ``val_acc_history``,
        ``val_loss_history`` (test-mode loss on the validation set) and ``eval_epochs`` (the
        epoch, possibly fractional, of each evaluation).
    best_val_acc : float
    best_params, best_buffers : dict of arrays
        Copies taken at the best evaluation.
    epoch, num_steps : int
        Completed epochs and optimizer steps.
    """

    def __init__(
        self,
        model,
        data: Mapping[str, np.ndarray],
        optimizer,
        *,
        batch_size: int = 100,
        num_epochs: int = 10,
        schedule=None,
        schedule_interval: str = "epoch",
        clip: Callable | None = None,
        ema=None,
        early_stopping=None,
        seed: int = 0,
        progress: bool = False,
        eval_every: str | int = "epoch",
        num_train_samples: int | None = 1000,
        restore_best: bool = True,
    ):
        for attr in ("params", "loss", "scores", "predict"):
            if not hasattr(model, attr):
                raise TypeError(f"model must have a {attr!r} attribute, got {type(model).__name__}")
        if not hasattr(optimizer, "step"):
            raise TypeError(
                f"optimizer must have a step(grads) method, got {type(optimizer).__name__}"
            )
        if getattr(optimizer, "params", model.params) is not model.params:
            raise ValueError(
                "optimizer must be built on model.params (e.g. Adam(model.params, lr=...)), "
                "got an optimizer holding another dict of parameters"
            )
        self.model = model
        self.optimizer = optimizer
        self.data = self._check_data(data)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        if schedule is not None and not hasattr(schedule, "step"):
            raise TypeError(f"schedule must have a step() method, got {type(schedule).__name__}")
        if schedule_interval not in ("epoch", "step"):
            raise ValueError(
                f"schedule_interval must be 'epoch' or 'step', got {schedule_interval!r}"
            )
        if clip is not None and not callable(clip):
            raise TypeError(f"clip must be callable (grads -> None), got {type(clip).__name__}")
        if ema is not None and not (hasattr(ema, "update") and hasattr(ema, "average_parameters")):
            raise TypeError(
                "ema must have update(params) and average_parameters(params), "
                f"got {type(ema).__name__}"
            )
        if early_stopping is not None and not hasattr(early_stopping, "step"):
            raise TypeError(
                "early_stopping must have step(metric, params) -> bool, "
                f"got {type(early_stopping).__name__}"
            )
        if eval_every != "epoch":
            if isinstance(eval_every, str):
                raise ValueError(
                    f"eval_every must be 'epoch' or a number of steps, got {eval_every!r}"
                )
            eval_every = check_positive_int(eval_every, "eval_every")
        if num_train_samples is not None:
            num_train_samples = check_positive_int(num_train_samples, "num_train_samples")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        self.schedule = schedule
        self.schedule_interval = schedule_interval
        self.clip = clip
        self.ema = ema
        self.early_stopping = early_stopping
        self.seed = int(seed)
        self.progress = bool(progress)
        self.eval_every = eval_every
        self.num_train_samples = num_train_samples
        self.restore_best = bool(restore_best)

        batch_seed, eval_seed = np.random.SeedSequence(self.seed).spawn(2)
        self._batch_rng = np.random.default_rng(batch_seed)
        self._eval_rng = np.random.default_rng(eval_seed)
        self.epoch = 0
        self.num_steps = 0
        self.stopped_early = False
        self.history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
        self.best_val_acc = -math.inf
        self.best_params = copy_arrays(model.params)
        self.best_buffers = copy_arrays(self._buffers)
        # The live state while the model holds the restored best parameters (see train()).
        self._live: tuple[dict, dict] | None = None

    # -- checks -------------------------------------------------------------------------------
    def _check_data(self, data) -> dict[str, np.ndarray]:
        if not isinstance(data, Mapping):
            raise TypeError(
                f"data must be a dict with X_train, y_train, X_val, y_val, got {type(data).__name__}"
            )
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data is missing {missing}; it needs X_train, y_train, X_val, y_val")
        out = {}
        for split in ("train", "val"):
            X = as_array(data[f"X_{split}"], f"X_{split}")
            if X.ndim < 2 or X.shape[0] == 0:
                raise ValueError(f"X_{split} must be a non-empty (N, D) array, got shape {X.shape}")
            out[f"X_{split}"] = X
            out[f"y_{split}"] = check_labels(data[f"y_{split}"], X.shape[0], None, f"y_{split}")
        return out

    @property
    def _buffers(self) -> dict[str, np.ndarray]:
        return getattr(self.model, "buffers", {})

    # -- evaluation -----------------------------------------------------------------------------
    def _scores(self, X: np.ndarray, batch_size: int) -> np.ndarray:
        parts = [
            self.model.scores(X[i : i + batch_size], mode="test")
            for i in range(0, X.shape[0], batch_size)
        ]
        return np.concatenate(parts)

    def check_accuracy(
        self,
        X,
        y,
        batch_size: int = 1000,
        *,
        num_samples: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> float:
        """Fraction of correctly predicted labels, :math:`\\frac1N\\sum_n [\\hat y_n = y_n]`.

        Predictions use ``model.predict`` (test mode) in chunks of ``batch_size`` rows. With
        ``num_samples`` (and ``rng``) only a random subset of that size is scored.
        """
        X = as_array(X, "X")
        y = check_labels(y, X.shape[0], None)
        batch_size = check_positive_int(batch_size, "batch_size")
        if num_samples is not None and num_samples < X.shape[0]:
            if rng is None:
                raise ValueError("check_accuracy needs rng= to draw num_samples samples")
            idx = rng.choice(X.shape[0], size=num_samples, replace=False)
            X, y = X[idx], y[idx]
        if X.shape[0] == 0:
            raise ValueError("check_accuracy needs at least one sample")
        predictions = np.concatenate(
            [self.model.predict(X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        )
        return float(np.mean(predictions == y))

    def _evaluate(self, steps_per_epoch: int) -> bool:
        """Record accuracies, keep the best parameters; return True if training should stop."""
        d = self.data
        average = self.ema.average_parameters(self.model.params) if self.ema else nullcontext()
        with average:
            train_acc = self.check_accuracy(
                d["X_train"],
                d["y_train"],
                num_samples=self.num_train_samples,
                rng=self._eval_rng,
            )
            val_scores = self._scores(d["X_val"], 1000)
            val_acc = float(np.mean(np.argmax(val_scores, axis=1) == d["y_val"]))
            val_loss = float(softmax_loss(val_scores, d["y_val"])[0])
            if val_acc > self.best_val_acc:
                self.best_val_acc = val_acc
                self.best_params = copy_arrays(self.model.params)
                self.best_buffers = copy_arrays(self._buffers)
            stop = False
            if self.early_stopping is not None:
                minimize = getattr(self.early_stopping, "mode", "max") == "min"
                metric = val_loss if minimize else val_acc
                stop = bool(self.early_stopping.step(metric, self.model.params))
        h = self.history
        h["train_acc_history"].append(train_acc)
        h["val_acc_history"].append(val_acc)
        h["val_loss_history"].append(val_loss)
        h["eval_epochs"].append(self.num_steps / steps_per_epoch)
        return stop

    # -- training --------------------------------------------------------------------------------
    def _step(self, X: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.model.loss(X, y)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss} at step {self.num_steps + 1}; lower the learning rate"
            )
        if self.clip is not None:
            self.clip(grads)
        self.history["lr_history"].append(float(self.optimizer.lr))
        self.optimizer.step(grads)
        if self.ema is not None:
            self.ema.update(self.model.params)
        if self.schedule is not None and self.schedule_interval == "step":
            self.schedule.step()
        self.num_steps += 1
        self.history["loss_history"].append(float(loss))
        return float(loss)

    def _report(self, bar) -> None:
        h = self.history
        if not self.progress or not h["val_acc_history"]:
            return
        text = (
            f"epoch {self.epoch}/{self.num_epochs}  loss {h['loss_history'][-1]:.4f}  "
            f"train acc {h['train_acc_history'][-1]:.3f}  val acc {h['val_acc_history'][-1]:.3f}"
        )
        if bar is not None:
            bar.set_postfix_str(text)
        else:
            print(text, file=sys.stdout, flush=True)

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, initial=self.num_steps, unit="step", leave=True)

    def train(self) -> dict[str, list[float]]:
        """Run until ``num_epochs`` epochs are complete (or early stopping) and return the history.

        Resumes where the previous call (or a loaded checkpoint) left off. With
        ``restore_best`` the model ends holding the parameters and buffers of the evaluation
        with the best validation accuracy (the first one on ties).
        """
        if self._live is not None:  # continue from the live state, not from the restored best
            copy_into(self.model.params, self._live[0])
            copy_into(self._buffers, self._live[1])
            self._live = None
        X, y = self.data["X_train"], self.data["y_train"]
        n = X.shape[0]
        starts = list(range(0, n, self.batch_size))
        if n - starts[-1] == 1 and len(starts) > 1:
            starts.pop()  # a lone leftover sample joins the previous batch (BatchNorm needs 2)
        batches = list(zip(starts, [*starts[1:], n]))
        steps_per_epoch = len(batches)
        bar = self._progress_bar(self.num_epochs * steps_per_epoch)
        try:
            while self.epoch < self.num_epochs and not self.stopped_early:
                order = self._batch_rng.permutation(n)
                for start, stop in batches:
                    idx = order[start:stop]
                    self._step(X[idx], y[idx])
                    if bar is not None:
                        bar.update(1)
                    if self.eval_every != "epoch" and self.num_steps % self.eval_every == 0:
                        self.stopped_early = self._evaluate(steps_per_epoch)
                        self._report(bar)
                        if self.stopped_early:
                            break
                self.epoch += 1
                if self.schedule is not None and self.schedule_interval == "epoch":
                    self.schedule.step()
                if self.eval_every == "epoch":
                    self.stopped_early = self._evaluate(steps_per_epoch)
                    self._report(bar)
        finally:
            if bar is not None:
                bar.close()
        if self.restore_best and self.history["val_acc_history"]:
            self._live = (copy_arrays(self.model.params), copy_arrays(self._buffers))
            copy_into(self.model.params, self.best_params)
            copy_into(self._buffers, self.best_buffers)
        return self.history

    # -- checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict:
        params, buffers = self._live or (self.model.params, self._buffers)
        state = {
            "params": copy_arrays(params),
            "buffers": copy_arrays(buffers),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "num_steps": self.num_steps,
            "stopped_early": self.stopped_early,
            "history": {k: list(v) for k, v in self.history.items()},
            "best_val_acc": self.best_val_acc,
            "best_params": self.best_params,
            "best_buffers": self.best_buffers,
            "batch_rng": self._batch_rng.bit_generator.state,
            "eval_rng": self._eval_rng.bit_generator.state,
            "restored_best": self._live is not None,
        }
        model_rng = getattr(self.model, "rng", None)
        if isinstance(model_rng, np.random.Generator):
            state["model_rng"] = model_rng.bit_generator.state
        for name in ("schedule", "ema", "early_stopping"):
            obj = getattr(self, name)
            if obj is not None and hasattr(obj, "state_dict"):
                state[name] = obj.state_dict()
        return state

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write the complete training state to an ``.npz`` file and return its path.

        Saved: the live parameters and buffers, the optimizer's ``state_dict()`` (flattened:
        every array is its own entry, everything else goes into a JSON record), the epoch and
        step counters, the histories, the best parameters, the states of the random generators
        (the trainer's and ``model.rng``) and ``state_dict()`` of the schedule, EMA and early
        stopping when they have one. :meth:`load_checkpoint` restores all of it, so training
        resumes exactly as if it had not been interrupted. ``.npz`` is appended to ``path`` if
        missing. The file is read without pickle.
        """
        path = Path(os.fspath(path))
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, np.ndarray] = {}
        meta = _encode(self._state(), "", arrays)
        np.savez(path, **{_META: np.array(json.dumps(meta))}, **arrays)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a state written by :meth:`save_checkpoint` into this trainer and its model.

        The model and optimizer must have the same parameter names and shapes as when the
        checkpoint was saved; the arrays are overwritten in place, so the optimizer keeps
        referring to ``model.params``.
        """
        with np.load(os.fspath(path), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        state = _decode(json.loads(str(arrays.pop(_META))), arrays)
        for name, current, saved in (
            ("params", self.model.params, state["params"]),
            ("buffers", self._buffers, state["buffers"]),
        ):
            mismatch = {
                k: (np.shape(current.get(k)), np.shape(v))
                for k, v in saved.items()
                if k not in current or np.shape(current[k]) != np.shape(v)
            }
            if mismatch or set(current) != set(saved):
                raise ValueError(
                    f"the checkpoint's {name} do not fit the model: model has "
                    f"{ {k: v.shape for k, v in current.items()} }, checkpoint has "
                    f"{ {k: v.shape for k, v in saved.items()} }"
                )
        copy_into(self.model.params, state["params"])
        copy_into(self._buffers, state["buffers"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = state["epoch"]
        self.num_steps = state["num_steps"]
        self.stopped_early = state["stopped_early"]
        self.history = {k: list(state["history"].get(k, [])) for k in HISTORY_KEYS}
        self.best_val_acc = state["best_val_acc"]
        self.best_params = state["best_params"]
        self.best_buffers = state["best_buffers"]
        self._batch_rng.bit_generator.state = state["batch_rng"]
        self._eval_rng.bit_generator.state = state["eval_rng"]
        if "model_rng" in state and isinstance(
            getattr(self.model, "rng", None), np.random.Generator
        ):
            self.model.rng.bit_generator.state = state["model_rng"]
        for name in ("schedule", "ema", "early_stopping"):
            obj = getattr(self, name)
            if obj is not None and name in state and hasattr(obj, "load_state_dict"):
                obj.load_state_dict(state[name])
        self._live = None
        if state["restored_best"]:
            # Saved after train() restored the best weights: the model shows them again.
            self._live = (copy_arrays(self.model.params), copy_arrays(self._buffers))
            copy_into(self.model.params, self.best_params)
            copy_into(self._buffers, self.best_buffers)


# -- a small tree codec for checkpoints: arrays as npz entries, the rest as JSON -------------
def _encode(obj, key: str, arrays: dict[str, np.ndarray]):
    if isinstance(obj, np.ndarray):
        arrays[key.lstrip("/")] = obj
        return {"__array__": key.lstrip("/")}
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, Mapping):
        for k in obj:
            if not isinstance(k, str):
                raise TypeError(f"checkpoint keys must be strings, got {k!r} under {key!r}")
        return {"__dict__": {k: _encode(v, f"{key}/{k}", arrays) for k, v in obj.items()}}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {key!r} in a checkpoint")


def _decode(obj, arrays: dict[str, np.ndarray]):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return arrays[obj["__array__"]]
    if "__scalar__" in obj:
        return np.dtype(obj["__scalar__"]).type(obj["value"])
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    return {k: _decode(v, arrays) for k, v in obj["__dict__"].items()}
