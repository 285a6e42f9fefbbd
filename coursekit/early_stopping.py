"""Early stopping: stop when a validation metric stops improving, keep the best parameters.

The validation error typically falls, reaches a minimum and rises again as the model starts
to fit the training set's noise. Early stopping treats the number of training steps as a
hyperparameter chosen on the validation set, at the cost of one run::

    stopper = EarlyStopping(patience=5, mode="max")
    for epoch in range(max_epochs):
        train_one_epoch()
        if stopper.step(val_accuracy(), model.params):
            break
    stopper.restore(model.params)   # back to the best epoch's weights

The semantics (``patience``, ``min_delta``, ``mode``) are those of the Keras
``EarlyStopping(monitor=..., min_delta=..., patience=...)`` callback the slides use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from coursekit._named_arrays import as_named_arrays, check_matching_arrays, copy_arrays, copy_into
from coursekit._validation import check_nonnegative

__all__ = ["EarlyStopping"]


class EarlyStopping:
    r"""Track a metric, remember the best parameters, say when to stop.

    A step **improves** on the best metric :math:`m^*` seen so far if

    .. math::

        m - \delta > m^* \;\; (\text{mode} = \text{"max"}), \qquad
        m + \delta < m^* \;\; (\text{mode} = \text{"min"})

    with :math:`\delta` = ``min_delta``. The first step always improves. Every other step adds
    one to ``num_bad_steps``, and :meth:`step` returns ``True`` ("stop") once
    ``num_bad_steps >= patience``: with ``patience=3`` training stops after three consecutive
    steps without improvement. As in Keras the count is only checked after a bad step, so
    ``patience=0`` and ``patience=1`` both stop at the first one. A NaN metric never improves.

    Parameters
    ----------
    patience : int
        Consecutive non-improving steps tolerated, ``>= 0``.
    min_delta : float
        Smallest change that counts as an improvement, ``>= 0``.
    mode : {"max", "min"}
        ``"max"`` for accuracies, ``"min"`` for losses and errors.

    Attributes
    ----------
    best_metric : float
        The best metric so far (``-inf`` / ``inf`` before the first step).
    best_step : int or None
        Index (0-based, counting calls to :meth:`step`) of the step that set ``best_metric``.
    num_bad_steps : int
        Steps since the last improvement.
    num_steps : int
        Calls to :meth:`step` so far.
    should_stop : bool
        What the last :meth:`step` returned.
    best_params : dict of str -> ndarray or None
        Copies of the parameters at ``best_step`` (if parameters were passed to :meth:`step`).
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "max"):
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
            raise TypeError(
                f"patience must be a non-negative integer, got {type(patience).__name__}"
            )
        if patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience = int(patience)
        self.min_delta = check_nonnegative(min_delta, "min_delta")
        self.mode = mode
        self.best_metric = -math.inf if mode == "max" else math.inf
        self.best_step: int | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.num_bad_steps = 0
        self.num_steps = 0
        self.should_stop = False

    def is_improvement(self, metric: float) -> bool:
        """Whether ``metric`` beats ``best_metric`` by more than ``min_delta``."""
        if self.mode == "max":
            return metric - self.min_delta > self.best_metric
        return metric + self.min_delta < self.best_metric

    def step(self, metric: float, params: Mapping[str, np.ndarray] | None = None) -> bool:
        """Record one evaluation; return ``True`` when training should stop.

        Parameters
        ----------
        metric : float
            The monitored value (for example validation accuracy).
        params : dict of str -> ndarray, optional
            The live parameters; copied when ``metric`` improves, for :meth:`restore`.
        """
        if isinstance(metric, bool) or not isinstance(metric, (numbers.Real, np.ndarray)):
            raise TypeError(f"metric must be a number, got {type(metric).__name__}")
        if np.ndim(metric) != 0:
            raise ValueError(f"metric must be a scalar, got shape {np.shape(metric)}")
        metric = float(metric)
        if params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(
                    f"params must be a dict of named numpy arrays, got {type(params).__name__}"
                )
            as_named_arrays(params, "params")
            if self.best_params is not None:
                check_matching_arrays(self.best_params, params, "params")
        if self.is_improvement(metric):
            self.best_metric = metric
            self.best_step = self.num_steps
            self.num_bad_steps = 0
            # without params a stale copy from an earlier best must not be restored later
            self.best_params = None if params is None else copy_arrays(params)
            self.should_stop = False
        else:
            self.num_bad_steps += 1
            self.should_stop = self.num_bad_steps >= self.patience
        self.num_steps += 1
        return self.should_stop

    def restore(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy the best parameters back into ``params``' arrays, in place."""
        if self.best_params is None:
            raise RuntimeError(
                "restore() needs the best parameters, but no step() has received params yet"
            )
        check_matching_arrays(self.best_params, params, "params")
        copy_into(params, self.best_params)

    def state_dict(self) -> dict:
        """Everything needed to resume (copies)."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "best_params": None if self.best_params is None else copy_arrays(self.best_params),
            "num_bad_steps": self.num_bad_steps,
            "num_steps": self.num_steps,
            "should_stop": self.should_stop,
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore what :meth:`state_dict` returned."""
        fresh = EarlyStopping(state_dict["patience"], state_dict["min_delta"], state_dict["mode"])
        self.__dict__.update(fresh.__dict__)
        for key in ("best_metric", "best_step", "num_bad_steps", "num_steps", "should_stop"):
            setattr(self, key, state_dict[key])
        best = state_dict["best_params"]
        self.best_params = None if best is None else copy_arrays(best)

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}, best_metric={self.best_metric}, best_step={self.best_step}, "
            f"num_bad_steps={self.num_bad_steps})"
        )
