"""RMSprop: Adagrad with a leaky (exponentially weighted) average of squared gradients."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from coursekit.optim import functional as F
from coursekit.optim.base import Optimizer, check_flag, check_lr, check_nonnegative


class RMSprop(Optimizer):
    r"""RMSprop, exactly ``torch.optim.RMSprop``.

    For each parameter :math:`p` with gradient :math:`\nabla`:

    .. math::

        g &= \nabla + \lambda p \\
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g, \qquad
            \tilde v = v - \bar g^2 \quad \text{(centered)};
            \qquad \tilde v = v \quad \text{(otherwise)} \\
        b &\leftarrow \mu b + g / (\sqrt{\tilde v} + \epsilon), \qquad
            p \leftarrow p - \gamma b \quad (\mu > 0) \\
        p &\leftarrow p - \gamma\, g / (\sqrt{\tilde v} + \epsilon) \quad (\mu = 0)

    All buffers start at zero. ``centered=True`` divides by an estimate of the gradient's
    standard deviation instead of its root mean square.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Updated in place.
    lr : float, default 1e-2
        :math:`\gamma`.
    alpha : float, default 0.99
        :math:`\alpha`, the weight of the old average (the seeds' ``decay_rate``; Keras
        calls it ``rho`` and defaults to 0.9).
    eps : float, default 1e-8
        :math:`\epsilon`, added **outside** the square root.
    weight_decay : float, default 0
        :math:`\lambda`, L2 folded into the gradient.
    momentum : float, default 0
        :math:`\mu`, momentum on the normalized step.
    centered : bool, default False
        Subtract the squared running mean of the gradient.
    maximize : bool, default False
        Ascend instead of descend.

    Notes
    -----
    State per parameter: ``"step"`` (an int; counted, not used in the update),
    ``"square_avg"`` (:math:`v`), ``"momentum_buffer"`` (:math:`b`, only when
    ``momentum > 0``) and ``"grad_avg"`` (:math:`\bar g`, only when ``centered``).

    The CS231n seed writes ``x -= lr * dx / (np.sqrt(grad_squared) + 1e-7)``, the same rule;
    Géron's slides put :math:`\epsilon` inside the root, :math:`\eta\,g/\sqrt{s + \epsilon}`.
    """

    _optional_state = frozenset({"momentum_buffer", "grad_avg"})

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )

    def _validate_hyperparams(self, hp: dict) -> None:
        hp["lr"] = check_lr(hp["lr"])
        hp["eps"] = check_nonnegative(hp["eps"], "eps", "epsilon")
        hp["momentum"] = check_nonnegative(hp["momentum"], "momentum")
        hp["weight_decay"] = check_nonnegative(hp["weight_decay"], "weight_decay")
        hp["alpha"] = check_nonnegative(hp["alpha"], "alpha")
        hp["centered"] = check_flag(hp["centered"], "centered")
        hp["maximize"] = check_flag(hp["maximize"], "maximize")

    def _init_state(self, param: np.ndarray) -> dict:
        state = {"step": 0, "square_avg": np.zeros_like(param)}
        if self.hyperparams["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param)
        if self.hyperparams["centered"]:
            state["grad_avg"] = np.zeros_like(param)
        return state

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        hp = self.hyperparams
        # Buffers for options switched on later (by load_state_dict) start at zero.
        if hp["momentum"] > 0:
            state.setdefault("momentum_buffer", np.zeros_like(param))
        if hp["centered"]:
            state.setdefault("grad_avg", np.zeros_like(param))
        state["step"] += 1
        self._apply_blockwise(
            F.rmsprop,
            param,
            grad,
            state["square_avg"],
            state.get("grad_avg"),
            state.get("momentum_buffer"),
            **hp,
        )
