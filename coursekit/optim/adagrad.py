"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from coursekit.optim import functional as F
from coursekit.optim.base import Optimizer, check_flag, check_lr, check_nonnegative


class Adagrad(Optimizer):
    r"""Adagrad, exactly ``torch.optim.Adagrad``.

    For each parameter :math:`p` with gradient :math:`\nabla` at step :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla + \lambda p_{t-1} \\
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta) \\
        G_t &= G_{t-1} + g_t^2 \\
        p_t &= p_{t-1} - \tilde\gamma_t \, g_t / (\sqrt{G_t} + \epsilon)

    with :math:`G_0` = ``initial_accumulator_value``. Coordinates that have seen large
    gradients get a small effective step, rarely-moved ones a large step; because
    :math:`G` only grows, the steps shrink for good, which often stops training too early
    (RMSprop's motivation).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Updated in place.
    lr : float, default 1e-2
        :math:`\gamma`.
    lr_decay : float, default 0
        :math:`\eta`, a 1/t decay of the learning rate built into the optimizer.
    weight_decay : float, default 0
        :math:`\lambda`, L2 folded into the gradient.
    initial_accumulator_value : float, default 0
        :math:`G_0`.
    eps : float, default 1e-10
        :math:`\epsilon`, added **outside** the square root.
    maximize : bool, default False
        Ascend instead of descend.

    Notes
    -----
    State per parameter: ``"step"`` (:math:`t`, an int) and ``"sum"`` (:math:`G`).

    The CS231n seed writes the same rule with ``1e-7`` outside the root
    (``x -= lr * dx / (np.sqrt(grad_squared) + 1e-7)``). Géron's slides put
    :math:`\epsilon` inside, :math:`\eta\,g / \sqrt{s + \epsilon}`; the two differ only while
    :math:`G` is of the order of :math:`\epsilon`.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )

    def _validate_hyperparams(self, hp: dict) -> None:
        hp["lr"] = check_lr(hp["lr"])
        hp["lr_decay"] = check_nonnegative(hp["lr_decay"], "lr_decay")
        hp["weight_decay"] = check_nonnegative(hp["weight_decay"], "weight_decay")
        hp["initial_accumulator_value"] = check_nonnegative(
            hp["initial_accumulator_value"], "initial_accumulator_value"
        )
        hp["eps"] = check_nonnegative(hp["eps"], "eps", "epsilon")
        hp["maximize"] = check_flag(hp["maximize"], "maximize")

    def _init_state(self, param: np.ndarray) -> dict:
        return {
            "step": 0,
            "sum": np.full_like(param, self.hyperparams["initial_accumulator_value"]),
        }

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        hp = self.hyperparams
        state["step"] += 1
        self._apply_blockwise(
            F.adagrad,
            param,
            grad,
            state["sum"],
            step=state["step"],
            lr=hp["lr"],
            lr_decay=hp["lr_decay"],
            weight_decay=hp["weight_decay"],
            eps=hp["eps"],
            maximize=hp["maximize"],
        )
