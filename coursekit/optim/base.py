"""The interface every coursekit optimizer follows.

An optimizer owns references to a dict of named parameter arrays and updates them
**in place** from a dict of gradients with the same keys and shapes::

    opt = Adam(model.params, lr=1e-3)
    loss, grads = model.loss(X, y)
    opt.step(grads)

Its state is explicit, as in optax: ``opt.state[name]`` is a plain dict of arrays and
counters for parameter ``name`` (for example ``{"step": 3, "exp_avg": ..., "exp_avg_sq": ...}``,
PyTorch's names), and ``opt.hyperparams`` holds the hyperparameters (``lr`` among them).
``state_dict()`` returns deep copies of both; ``load_state_dict()`` restores them, so a run
can be paused and resumed and any worked example replayed step by step. Schedules change
``opt.lr``.

Differences from ``torch.optim``: there is one parameter group (one set of hyperparameters
for every parameter), the state is created when the optimizer is built rather than at the
first step, and ``"step"`` is a Python ``int`` rather than a tensor.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping

import numpy as np

from coursekit._named_arrays import check_matching_arrays
from coursekit._validation import check_float_array

# Elementwise update rules are applied block by block so their temporaries stay in the
# CPU cache: for large parameters this is several times faster than whole-array passes.
_BLOCK_BYTES = 1 << 18


def check_real(value, name: str) -> float:
    """A real number (not a bool): the type check behind every hyperparameter check."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_lr(lr) -> float:
    """``lr >= 0`` with PyTorch's message; NaN is refused too (``not 0 <= lr``, as torch.optim.Adam)."""
    if not check_real(lr, "lr") >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    return float(lr)


def check_nonnegative(value, name: str, label: str | None = None) -> float:
    """``value >= 0`` (NaN refused) with PyTorch's message ``Invalid <label> value: <value>``."""
    if not check_real(value, name) >= 0.0:
        raise ValueError(f"Invalid {label or name} value: {value}")
    return float(value)


def check_betas(betas) -> tuple[float, float]:
    """A pair ``(beta1, beta2)`` with each in ``[0, 1)``, with PyTorch's messages."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= check_real(beta, f"betas[{i}]") < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    return float(betas[0]), float(betas[1])


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Optimizer:
    """Base class: parameter bookkeeping, gradient validation and state (de)serialization.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The named parameters, floating point. They are updated in place, so keep passing
        the same arrays (``model.params``) rather than copies.
    **hyperparams
        Stored in ``self.hyperparams``; ``lr`` is required.

    Notes
    -----
    Subclasses implement ``_validate_hyperparams(hp)`` (raise on bad values),
    ``_init_state(param)`` (the fresh per-parameter state) and
    ``_update(name, param, grad, state)``, which changes ``param`` and ``state`` in place by
    calling the matching rule of :mod:`coursekit.optim.functional`.
    """

    def __init__(self, params: Mapping[str, np.ndarray], **hyperparams):
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a dict of named numpy arrays, got {type(params).__name__}"
            )
        if not params:
            raise ValueError("params is empty: there is nothing to optimize")
        for name, p in params.items():
            check_float_array(p, f"parameter {name!r}")
        self.hyperparams = dict(hyperparams)
        self._validate_hyperparams(self.hyperparams)
        self.params = params
        self.state: dict[str, dict] = {name: self._init_state(p) for name, p in params.items()}

    # -- the learning rate is what schedules change ---------------------------------------
    @property
    def lr(self) -> float:
        """The current learning rate (``hyperparams["lr"]``); schedules set it."""
        return self.hyperparams["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyperparams["lr"] = check_lr(value)

    # -- the update -----------------------------------------------------------------------
    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (same keys, same shapes).

        ``grads`` itself is never modified.
        """
        self._check_grads(grads)
        for name, param in self.params.items():
            if name not in self.state:  # a parameter added to the dict after construction
                self.state[name] = self._init_state(check_float_array(param, f"parameter {name!r}"))
            self._update(name, param, grads[name], self.state[name])

    def _check_grads(self, grads: Mapping[str, np.ndarray]) -> None:
        check_matching_arrays(self.params, grads, "grads")
        for name in self.params:
            check_float_array(grads[name], f"grads[{name!r}]")

    def _apply_blockwise(
        self, rule: Callable, param: np.ndarray, grad: np.ndarray, *buffers, **kwargs
    ) -> None:
        """Call ``rule(param, grad, *buffers, inplace=True, **kwargs)`` one cache-sized block
        at a time.

        Every rule in :mod:`coursekit.optim.functional` is elementwise, so running it on
        matching flat slices gives exactly the result of one whole-array call. ``None``
        buffers (unused options) are passed through; arrays that are not C-contiguous (so
        have no flat view to write through) get one whole-array call.
        """
        arrays = [param, *(b for b in buffers if b is not None)]
        block = max(1, _BLOCK_BYTES // param.itemsize)
        if param.size <= block or not all(
            a.flags.c_contiguous and a.shape == param.shape for a in arrays
        ):
            rule(param, grad, *buffers, inplace=True, **kwargs)
            return
        flat_param = param.reshape(-1)
        flat_grad = np.ravel(grad)
        flat_buffers = [None if b is None else b.reshape(-1) for b in buffers]
        for start in range(0, param.size, block):
            s = slice(start, start + block)
            rule(
                flat_param[s],
                flat_grad[s],
                *(None if b is None else b[s] for b in flat_buffers),
                inplace=True,
                **kwargs,
            )

    def _validate_hyperparams(self, hp: dict) -> None:
        check_lr(hp.get("lr"))

    def _init_state(self, param: np.ndarray) -> dict:
        return {}

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Deep copies of the hyperparameters and the per-parameter state.

        Returns
        -------
        dict
            ``{"hyperparams": {...}, "state": {name: {...}}}``; changing it does not touch
            the optimizer.
        """
        return {
            "hyperparams": copy.deepcopy(self.hyperparams),
            "state": copy.deepcopy(self.state),
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore what ``state_dict()`` returned (deep-copied, so the argument stays independent).

        Everything is checked before anything changes, so a malformed state fails here, with
        a message naming the entry, rather than at the next :meth:`step`: the
        hyperparameters are validated as in the constructor; the state must name exactly
        this optimizer's parameters; each parameter's entry must have the keys this
        optimizer keeps (``"step"`` a non-negative int, the buffers floating-point arrays of
        the parameter's shape). On failure the optimizer is left as it was.
        """
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"hyperparams", "state"}:
            got = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict)
            raise ValueError(
                f"state_dict must be a dict with keys ['hyperparams', 'state'], got {got}"
            )
        if not isinstance(state_dict["hyperparams"], Mapping):
            raise TypeError(
                "state_dict['hyperparams'] must be a dict, got "
                f"{type(state_dict['hyperparams']).__name__}"
            )
        hyperparams = copy.deepcopy(dict(state_dict["hyperparams"]))
        if set(hyperparams) != set(self.hyperparams):
            raise ValueError(
                f"state_dict hyperparams {sorted(hyperparams)} are not "
                f"{type(self).__name__}'s {sorted(self.hyperparams)}"
            )
        self._validate_hyperparams(hyperparams)
        state = state_dict["state"]
        if not isinstance(state, Mapping):
            raise TypeError(f"state_dict['state'] must be a dict, got {type(state).__name__}")
        if set(state) != set(self.params):
            raise ValueError(
                f"state_dict is for parameters {sorted(state)}, "
                f"this optimizer has {sorted(self.params)}"
            )
        for name, entries in state.items():
            self._check_loaded_state(name, entries, hyperparams)
        self.hyperparams = hyperparams
        self.state = copy.deepcopy({name: dict(entries) for name, entries in state.items()})

    # State entries that an update creates when missing (options switched on after the
    # state was made); subclasses list theirs.
    _optional_state: frozenset = frozenset()

    def _check_loaded_state(self, name: str, entries, hyperparams: dict) -> None:
        """Check one parameter's loaded state against what this optimizer would create."""
        where = f"state_dict['state'][{name!r}]"
        if not isinstance(entries, Mapping):
            raise TypeError(f"{where} must be a dict, got {type(entries).__name__}")
        param = self.params[name]
        saved, self.hyperparams = self.hyperparams, hyperparams
        try:
            template = self._init_state(param)
        finally:
            self.hyperparams = saved
        missing = sorted(set(template) - set(entries) - self._optional_state)
        unknown = sorted(set(entries) - set(template) - self._optional_state)
        if missing or unknown:
            raise ValueError(
                f"{where} has keys {sorted(entries)}: missing {missing}, unexpected {unknown} "
                f"({type(self).__name__} keeps {sorted(set(template) | self._optional_state)})"
            )
        for key, value in entries.items():
            if key == "step":
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise TypeError(f"{where}['step'] must be an int, got {type(value).__name__}")
                if value < 0:
                    raise ValueError(f"{where}['step'] must be >= 0, got {value}")
                continue
            if value is None and key in template and template[key] is None:
                continue  # a buffer created at the first step (SGD's momentum_buffer)
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"{where}[{key!r}] must be a floating-point array, got {kind}")
            if value.shape != param.shape:
                raise ValueError(
                    f"{where}[{key!r}] has shape {value.shape} "
                    f"but params[{name!r}] has shape {param.shape}"
                )

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({hp})"
