"""Learning-rate schedules: as functions of the step, and as objects that drive an optimizer.

Each schedule is first a plain function ``f(step, base_lr, ...) -> lr`` (easy to plot and
to test), then a class mirroring ``torch.optim.lr_scheduler`` that calls the function::

    opt = SGD(model.params, lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=30, gamma=0.1)   # sets opt.lr to the value at step 0
    for epoch in range(90):
        train_one_epoch(opt)
        sched.step()                                # opt.lr = step_lr(epoch + 1, 0.1, 30)

``step`` counts calls to ``sched.step()``: epochs or iterations, whichever the trainer
uses. ``warmup`` (function) and :class:`WarmupLR` (object) put a linear warmup in front of
any schedule.

Every real argument must be a finite number: NaN or infinity, which PyTorch's schedulers
accept and turn into NaN or infinite learning rates, raise ``ValueError`` here.

Differences from PyTorch: a coursekit optimizer has a single learning rate, so
``get_last_lr()`` returns a float rather than a one-element list; the objects compute each
value in closed form (PyTorch's chainable updates give the same values up to rounding);
there is no ``last_epoch`` constructor argument (resume with ``load_state_dict``).
"""

from __future__ import annotations

import bisect
import copy
import math
import numbers
from collections.abc import Callable, Iterable

from coursekit._validation import check_positive_int

__all__ = [
    "step_lr",
    "multistep_lr",
    "exponential_lr",
    "inverse_time_lr",
    "cosine_annealing_lr",
    "linear_lr",
    "linear_decay_lr",
    "inverse_sqrt_lr",
    "warmup",
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "InverseTimeLR",
    "CosineAnnealingLR",
    "LinearLR",
    "InverseSqrtLR",
    "LambdaLR",
    "WarmupLR",
]


# -- argument checks ----------------------------------------------------------------------
def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _finite(value: float, name: str) -> float:
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _nonnegative(value, name: str) -> float:
    # ``not >=`` so that NaN is refused too (it would make every learning rate NaN).
    if not _real(value, name) >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return _finite(float(value), name)


def _positive(value, name: str) -> float:
    if not _real(value, name) > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return _finite(float(value), name)


def _nonnegative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def _factor(value, name: str, low_open: bool = False) -> float:
    value = _real(value, name)
    if not (0 < value <= 1 if low_open else 0 <= value <= 1):
        raise ValueError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {value}")
    return value


# -- schedules as functions of the step ---------------------------------------------------
def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    r"""Step decay: multiply by ``gamma`` every ``step_size`` steps (``torch``'s ``StepLR``).

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    The seeds' "halve the learning rate every few epochs" is ``gamma=0.5``.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    step_size = check_positive_int(step_size, "step_size")
    gamma = _positive(gamma, "gamma")
    return base_lr * gamma ** (step // step_size)


def multistep_lr(step: int, base_lr: float, milestones: Iterable[int], gamma: float = 0.1) -> float:
    r"""Multiply by ``gamma`` at each milestone (``torch``'s ``MultiStepLR``).

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{m \in \text{milestones} : m \le t\}}

    A milestone listed twice decays twice, as in PyTorch. The seeds' ResNet recipe
    (multiply by 0.1 after epochs 30, 60 and 90) is ``milestones=[30, 60, 90]``.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
        raise TypeError(
            f"milestones must be a list of non-negative integers, got {type(milestones).__name__}"
        )
    marks = sorted(_nonnegative_int(m, "each milestone") for m in milestones)
    gamma = _positive(gamma, "gamma")
    return base_lr * gamma ** bisect.bisect_right(marks, step)


def exponential_lr(step: int, base_lr: float, gamma: float) -> float:
    r"""Exponential decay (``torch``'s ``ExponentialLR``).

    .. math:: \eta_t = \eta_0 \, \gamma^t

    The seeds write :math:`\eta_0 e^{-kt}`: that is ``gamma = exp(-k)``.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    gamma = _positive(gamma, "gamma")
    return base_lr * gamma**step


def inverse_time_lr(step: int, base_lr: float, decay_rate: float, decay_steps: int = 1) -> float:
    r"""1/t decay (no PyTorch class; Keras's ``InverseTimeDecay``).

    .. math:: \eta_t = \frac{\eta_0}{1 + k\, t / s}

    with :math:`k` = ``decay_rate`` and :math:`s` = ``decay_steps``; the seeds'
    :math:`\eta_0 / (1 + kt)` is ``decay_steps=1``.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    decay_rate = _nonnegative(decay_rate, "decay_rate")
    decay_steps = check_positive_int(decay_steps, "decay_steps")
    return base_lr / (1 + decay_rate * step / decay_steps)


def cosine_annealing_lr(step: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps (``torch``'s
    ``CosineAnnealingLR``).

    .. math:: \eta_t = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})\,(1 + \cos(\pi t / T_{max}))

    Past ``T_max`` the curve continues as the same cosine and rises again (period
    ``2 * T_max``), as PyTorch's does; set ``T_max`` to the length of training for a single
    decay. (One seed prints :math:`\tfrac12\eta_0(1 - t/T)`, which is the linear schedule's
    shape halved; the cosine is the formula above.)
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    T_max = check_positive_int(T_max, "T_max")
    eta_min = _nonnegative(eta_min, "eta_min")
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max)) / 2


def linear_lr(
    step: int,
    base_lr: float,
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> float:
    r"""Linear change of the factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, constant afterwards (``torch``'s ``LinearLR``, same defaults).

    .. math::

        \eta_t = \eta_0 \left(f_s + (f_e - f_s)\, \frac{\min(t, T)}{T}\right)

    Linear decay to zero, the seeds' :math:`\eta_0 (1 - t/T)`, is
    ``linear_lr(t, base_lr, 1.0, 0.0, T)`` (or :func:`linear_decay_lr`). Unlike PyTorch,
    ``start_factor=0`` is allowed.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    start_factor = _factor(start_factor, "start_factor")
    end_factor = _factor(end_factor, "end_factor")
    total_iters = check_positive_int(total_iters, "total_iters")
    progress = min(step, total_iters) / total_iters
    return base_lr * (start_factor + (end_factor - start_factor) * progress)


def linear_decay_lr(step: int, base_lr: float, total_steps: int) -> float:
    r"""Linear decay to zero at ``total_steps`` (zero afterwards).

    .. math:: \eta_t = \eta_0 \, (1 - \min(t, T) / T)
    """
    return linear_lr(step, base_lr, 1.0, 0.0, total_steps)


def inverse_sqrt_lr(step: int, base_lr: float, warmup_steps: int = 1) -> float:
    r"""Inverse square-root decay, constant for the first ``warmup_steps`` steps.

    .. math:: \eta_t = \eta_0 \sqrt{\frac{w}{\max(t, w)}}

    Continuous at :math:`t = w`. With :math:`w = 1` this is the seeds'
    :math:`\eta_0/\sqrt t` (and :math:`\eta_0` at :math:`t = 0`). Put :func:`warmup` with
    the same ``warmup_steps`` in front for the Transformer schedule (a linear ramp to
    :math:`\eta_0`, then :math:`\propto 1/\sqrt t`); no PyTorch class.
    """
    step = _nonnegative_int(step, "step")
    base_lr = _nonnegative(base_lr, "base_lr")
    warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
    return base_lr * math.sqrt(warmup_steps / max(step, warmup_steps))


def warmup(
    schedule_fn: Callable[[int], float], warmup_steps: int, start_factor: float = 0.0
) -> Callable[[int], float]:
    r"""Put a linear warmup of ``warmup_steps`` steps in front of ``schedule_fn``.

    Parameters
    ----------
    schedule_fn : callable
        ``step -> lr``, e.g. ``functools.partial(cosine_annealing_lr, base_lr=0.1, T_max=90)``.
    warmup_steps : int
        Length of the ramp :math:`w` (0 means no warmup).
    start_factor : float, default 0
        The ramp starts at ``start_factor * schedule_fn(0)``.

    Returns
    -------
    callable
        ``step -> lr`` with

        .. math::

            \eta_t = \eta^{s}_0 \left(f + (1 - f)\, t / w\right) \quad (t < w), \qquad
            \eta_t = \eta^{s}_{t - w} \quad (t \ge w)

        where :math:`\eta^s` is ``schedule_fn``: the ramp rises to the schedule's first
        value :math:`\eta^s_0` and the schedule then runs from its own step 0, with no jump.
        The seeds recommend ramping from 0 over the first few thousand iterations when a
        high initial learning rate makes the loss explode.

    Notes
    -----
    PyTorch's
    ``SequentialLR([LinearLR(opt, start_factor, 1.0, w), schedule], milestones=[w])``
    gives the same values **only when the schedule starts at the base rate**
    (:math:`\eta^s_0 = \eta_0`, true of ``StepLR``, ``ExponentialLR``,
    ``CosineAnnealingLR`` and of any ``LambdaLR`` with ``lr_lambda(0) == 1``): its
    ``LinearLR`` ramps towards the optimizer's base rate :math:`\eta_0`, whatever the next
    schedule starts at, and the rate then jumps to :math:`\eta^s_0` at step :math:`w`.
    Here the ramp is scaled to end at :math:`\eta^s_0`. (PyTorch also refuses
    ``start_factor=0``; the ramp here may start at 0.)
    """
    if not callable(schedule_fn):
        raise TypeError(
            f"schedule_fn must be a function step -> lr, got {type(schedule_fn).__name__}"
        )
    warmup_steps = _nonnegative_int(warmup_steps, "warmup_steps")
    start_factor = _factor(start_factor, "start_factor")

    def warmed_up(step: int) -> float:
        step = _nonnegative_int(step, "step")
        if step >= warmup_steps:
            return schedule_fn(step - warmup_steps)
        return schedule_fn(0) * (start_factor + (1 - start_factor) * step / warmup_steps)

    return warmed_up


# -- schedules as objects driving an optimizer --------------------------------------------
class LRScheduler:
    """Base class: owns the step count and sets ``optimizer.lr`` from :meth:`lr_at`.

    Building a scheduler records ``base_lr = optimizer.lr`` and sets ``optimizer.lr`` to the
    value at step 0; each :meth:`step` advances ``last_epoch`` by one and sets the next
    value. Subclasses implement :meth:`lr_at` by calling the matching function.
    """

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                "optimizer must be a coursekit.optim optimizer (with an lr attribute), "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self._last_lr = self._set_lr()

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step`` (0 = when the scheduler was built)."""
        raise NotImplementedError

    def _set_lr(self) -> float:
        lr = self.lr_at(self.last_epoch)
        self.optimizer.lr = lr
        return lr

    def step(self) -> None:
        """Advance one step (epoch or iteration) and set ``optimizer.lr``."""
        self.last_epoch += 1
        self._last_lr = self._set_lr()

    def get_last_lr(self) -> float:
        """The learning rate this scheduler set last."""
        return self._last_lr

    def _own_state(self) -> dict:
        return {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if key != "optimizer" and not callable(value) and not isinstance(value, LRScheduler)
        }

    def state_dict(self) -> dict:
        """Everything but the optimizer and functions, deep-copied (as PyTorch)."""
        return self._own_state()

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict` and set ``optimizer.lr`` to the restored value.

        The keys must be this scheduler's, and the restored arguments are checked as the
        constructor checks them (by computing the learning rate at the restored step);
        otherwise ``TypeError``/``ValueError`` is raised and nothing changes.
        """
        expected = set(self._own_state())
        if not isinstance(state_dict, dict) or set(state_dict) != expected:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(
                f"state_dict for {type(self).__name__} must have keys {sorted(expected)}, got {got}"
            )
        saved = dict(self.__dict__)
        self.__dict__.update(copy.deepcopy(state_dict))
        try:
            self._check_loaded()
        except (TypeError, ValueError) as exc:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise type(exc)(f"state_dict for {type(self).__name__} is invalid: {exc}") from exc
        self.optimizer.lr = self._last_lr

    def _check_loaded(self) -> None:
        """Recompute the restored step's learning rate: this validates every argument."""
        _nonnegative_int(self.last_epoch, "last_epoch")
        _nonnegative(self.base_lr, "base_lr")
        _nonnegative(self._last_lr, "_last_lr")
        self.lr_at(self.last_epoch)

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.state_dict().items() if not k.startswith("_")
        )
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """``base_lr * gamma ** (step // step_size)``; see :func:`step_lr`."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return step_lr(step, self.base_lr, self.step_size, self.gamma)


class MultiStepLR(LRScheduler):
    """Multiply by ``gamma`` at each milestone; see :func:`multistep_lr`."""

    def __init__(self, optimizer, milestones: Iterable[int], gamma: float = 0.1):
        self.milestones = list(milestones) if isinstance(milestones, Iterable) else milestones
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return multistep_lr(step, self.base_lr, self.milestones, self.gamma)


class ExponentialLR(LRScheduler):
    """``base_lr * gamma ** step``; see :func:`exponential_lr`."""

    def __init__(self, optimizer, gamma: float):
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return exponential_lr(step, self.base_lr, self.gamma)


class InverseTimeLR(LRScheduler):
    """``base_lr / (1 + decay_rate * step / decay_steps)``; see :func:`inverse_time_lr`."""

    def __init__(self, optimizer, decay_rate: float, decay_steps: int = 1):
        self.decay_rate = decay_rate
        self.decay_steps = decay_steps
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return inverse_time_lr(step, self.base_lr, self.decay_rate, self.decay_steps)


class CosineAnnealingLR(LRScheduler):
    """Cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps; see
    :func:`cosine_annealing_lr`."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return cosine_annealing_lr(step, self.base_lr, self.T_max, self.eta_min)


class LinearLR(LRScheduler):
    """Factor linear from ``start_factor`` to ``end_factor`` over ``total_iters`` steps;
    see :func:`linear_lr`."""

    def __init__(
        self,
        optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ):
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return linear_lr(step, self.base_lr, self.start_factor, self.end_factor, self.total_iters)


class InverseSqrtLR(LRScheduler):
    """``base_lr * sqrt(warmup_steps / max(step, warmup_steps))``; see
    :func:`inverse_sqrt_lr`."""

    def __init__(self, optimizer, warmup_steps: int = 1):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return inverse_sqrt_lr(step, self.base_lr, self.warmup_steps)


class LambdaLR(LRScheduler):
    """``base_lr * lr_lambda(step)`` for any function ``lr_lambda`` (``torch``'s ``LambdaLR``).

    ``lr_lambda`` is not part of :meth:`state_dict` (pass the same one when resuming).
    """

    def __init__(self, optimizer, lr_lambda: Callable[[int], float]):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda should be a function, but got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        step = _nonnegative_int(step, "step")
        return self.base_lr * _real(self.lr_lambda(step), "lr_lambda(step)")


class WarmupLR(LRScheduler):
    """Linear warmup, then another schedule; see :func:`warmup`.

    Parameters
    ----------
    optimizer : Optimizer
    warmup_steps : int
        Length of the ramp.
    start_factor : float, default 0
        The ramp starts at ``start_factor`` times the following schedule's first value.
    after : LRScheduler or None
        The schedule that takes over at step ``warmup_steps`` (run from its own step 0).
        Build it on the same optimizer first, then wrap it; step only the ``WarmupLR``.
        ``None`` holds ``base_lr`` constant after the ramp.

    Notes
    -----
    The ramp rises to ``after``'s first value, not to the optimizer's base rate. That is
    PyTorch's ``SequentialLR([LinearLR(...), after], milestones=[warmup_steps])`` only when
    ``after`` starts at the base rate (StepLR, ExponentialLR, CosineAnnealingLR, ...); for
    a schedule starting elsewhere (``LinearLR`` with ``start_factor < 1``, a ``LambdaLR``
    with ``lr_lambda(0) != 1``) PyTorch ramps to the base rate and then jumps, while this
    ramp ends where ``after`` begins. See :func:`warmup`.

    Examples
    --------
    Five steps of warmup from 0, then a cosine over the remaining 95::

        opt = SGD(model.params, lr=0.1, momentum=0.9)
        sched = WarmupLR(opt, warmup_steps=5, after=CosineAnnealingLR(opt, T_max=95))
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 0.0, after=None):
        if after is not None and not isinstance(after, LRScheduler):
            raise TypeError(f"after must be an LRScheduler or None, got {type(after).__name__}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("after must be built on the same optimizer as the WarmupLR")
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor
        self.after = after
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        following = self.after.lr_at if self.after is not None else (lambda _: self.base_lr)
        return warmup(following, self.warmup_steps, self.start_factor)(step)

    def state_dict(self) -> dict:
        state = self._own_state()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, dict) or "after" not in state_dict:
            raise ValueError("state_dict for WarmupLR must come from WarmupLR.state_dict()")
        state_dict = dict(state_dict)
        after_state = state_dict.pop("after")
        if (after_state is None) != (self.after is None):
            raise ValueError(
                "state_dict and this WarmupLR disagree on whether a schedule follows the warmup"
            )
        if self.after is None:
            super().load_state_dict(state_dict)
            return
        previous, lr = self.after.state_dict(), self.optimizer.lr
        self.after.load_state_dict(after_state)
        try:
            super().load_state_dict(state_dict)
        except (TypeError, ValueError):
            self.after.load_state_dict(previous)  # leave both, and the optimizer, as they were
            self.optimizer.lr = lr
            raise
