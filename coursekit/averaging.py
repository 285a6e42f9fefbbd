"""Parameter averaging for test time: exponential moving average (EMA) and Polyak averaging.

Training keeps updating the live weights; a running average of them is kept on the side and
used for evaluation, a cheap ensemble of the checkpoints of one run::

    ema = ExponentialMovingAverage(model.params, decay=0.995)
    for X, y in batches:
        loss, grads = model.loss(X, y)
        opt.step(grads)
        ema.update(model.params)
    with ema.average_parameters(model.params):
        acc = np.mean(model.predict(X_val) == y_val)   # averaged weights
    # the live weights are back here

The lecture's loop writes the same average as ``x_test = 0.995*x_test + 0.005*x``
(``decay=0.995``).

Both classes follow ``torch.optim.swa_utils.AveragedModel``: the **first** ``update`` copies
the parameters (the initialization never enters the average), every later one blends them in,
``ExponentialMovingAverage`` as with ``multi_avg_fn=get_ema_multi_avg_fn(decay)`` and
``PolyakAverage`` as with the default (uniform, SWA) averaging.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np

from coursekit._named_arrays import as_named_arrays, check_matching_arrays, copy_arrays, copy_into

__all__ = ["ExponentialMovingAverage", "PolyakAverage"]


class _ParameterAverage:
    """Bookkeeping shared by the averages: the averaged copies, swapping, state."""

    def __init__(self, params: Mapping[str, np.ndarray]):
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a dict of named numpy arrays, got {type(params).__name__}"
            )
        as_named_arrays(params, "params")
        self.averaged: dict[str, np.ndarray] = copy_arrays(params)
        self.num_updates = 0

    def _weight(self) -> float:
        """How much of the new parameters enters the average at update ``num_updates + 1``."""
        raise NotImplementedError

    def update(self, params: Mapping[str, np.ndarray]) -> None:
        """Fold the current parameters into the average (call after each optimizer step)."""
        check_matching_arrays(self.averaged, params, "params")
        if self.num_updates == 0:
            copy_into(self.averaged, params)
        else:
            w = self._weight()
            for name, avg in self.averaged.items():
                _lerp_(avg, params[name], w)
        self.num_updates += 1

    def copy_to(self, params: Mapping[str, np.ndarray]) -> None:
        """Overwrite ``params`` in place with the averaged values (for good: no restore)."""
        check_matching_arrays(self.averaged, params, "params")
        copy_into(params, self.averaged)

    @contextmanager
    def average_parameters(self, params: Mapping[str, np.ndarray]) -> Iterator:
        """Temporarily put the averaged values into ``params``' arrays.

        The live values are restored when the block ends, also when it raises. The arrays are
        changed in place, so a model (or optimizer) holding them sees the averaged weights
        inside the block.
        """
        check_matching_arrays(self.averaged, params, "params")
        live = copy_arrays(params)
        copy_into(params, self.averaged)
        try:
            yield params
        finally:
            copy_into(params, live)

    def _hyperparams(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """Copies of the averaged arrays, the update count and the hyperparameters."""
        return {
            **self._hyperparams(),
            "num_updates": self.num_updates,
            "averaged": copy_arrays(self.averaged),
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore what :meth:`state_dict` returned (same names and shapes)."""
        check_matching_arrays(self.averaged, state_dict["averaged"], "state_dict['averaged']")
        for key in self._hyperparams():
            setattr(self, key, state_dict[key])
        self.num_updates = int(state_dict["num_updates"])
        self.averaged = copy_arrays(state_dict["averaged"])

    def __repr__(self) -> str:
        hp = "".join(f", {k}={v!r}" for k, v in self._hyperparams().items())
        return f"{type(self).__name__}(num_updates={self.num_updates}{hp})"


class ExponentialMovingAverage(_ParameterAverage):
    r"""Exponential moving average of the parameters.

    .. math::

        \bar w_1 = w_1, \qquad \bar w_t = d_t\,\bar w_{t-1} + (1 - d_t)\,w_t \quad (t \ge 2)

    where :math:`w_t` are the parameters passed to the :math:`t`-th :meth:`update` and
    :math:`d_t` = ``decay``. This is ``AveragedModel(model,
    multi_avg_fn=get_ema_multi_avg_fn(decay))`` of ``torch.optim.swa_utils``. The average
    forgets with a time constant of about :math:`1/(1-d)` updates.

    With ``warmup=True`` the decay ramps up as in TensorFlow's ``ExponentialMovingAverage``
    with ``num_updates``: :math:`d_t = \min(d, \frac{t}{t + 9})`, so early updates, when the
    weights still move fast, are not held back by a decay meant for the end of training.

    Parameters
    ----------
    params : dict of str -> ndarray
        The live parameters (copied: their current values are the average before the first
        update).
    decay : float
        :math:`d \in [0, 1]` (PyTorch's default ``0.999``).
    warmup : bool
        Use the ramped decay above.

    Attributes
    ----------
    averaged : dict of str -> ndarray
        The averaged parameters.
    num_updates : int
        How many times :meth:`update` has run.
    """

    def __init__(
        self, params: Mapping[str, np.ndarray], decay: float = 0.999, *, warmup: bool = False
    ):
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
            raise TypeError(f"decay must be a number in [0, 1], got {type(decay).__name__}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if not isinstance(warmup, bool):
            raise TypeError(f"warmup must be True or False, got {type(warmup).__name__}")
        super().__init__(params)
        self.decay = float(decay)
        self.warmup = warmup

    def current_decay(self) -> float:
        """:math:`d_t` for the next update (``t = num_updates + 1``)."""
        if not self.warmup:
            return self.decay
        t = self.num_updates + 1
        return min(self.decay, t / (t + 9.0))

    def _weight(self) -> float:
        return 1.0 - self.current_decay()

    def _hyperparams(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup}


class PolyakAverage(_ParameterAverage):
    r"""Polyak (uniform) averaging: the plain mean of every parameter vector seen so far.

    .. math::

        \bar w_t = \frac{1}{t}\sum_{s=1}^{t} w_s
                 = \bar w_{t-1} + \frac{1}{t}\,(w_t - \bar w_{t-1})

    computed with the running form on the right. This is ``AveragedModel(model)`` of
    ``torch.optim.swa_utils`` with its default averaging, the average used by stochastic
    weight averaging (SWA). Start updating it late in training (for example over the last
    epochs), since it never forgets early, poor weights.

    Parameters, attributes and methods are as in :class:`ExponentialMovingAverage`, without
    the decay.
    """

    def _weight(self) -> float:
        return 1.0 / (self.num_updates + 1)


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start += weight * (end - start)`` in place, rounded as ``torch.lerp`` rounds it.

    PyTorch switches to ``end - (1 - weight) * (end - start)`` for ``weight >= 0.5``, which
    is more accurate there; doing the same keeps the trajectories bit-for-bit comparable.
    """
    diff = end - start
    if weight < 0.5:
        start += weight * diff
    else:
        start[...] = end - (1.0 - weight) * diff
