"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 decay."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from coursekit.optim import functional as F
from coursekit.optim.base import Optimizer, check_flag, check_lr, check_nonnegative, check_real


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly ``torch.optim.SGD``.

    For each parameter :math:`p` with gradient :math:`\nabla` at step :math:`t`:

    .. math::

        g_t &= \nabla + \lambda p_{t-1} \\
        b_t &= g_t \ (t = 1), \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \ (t > 1) \\
        d_t &= g_t + \mu b_t \ \text{(nesterov)}, \qquad d_t = b_t \ \text{(otherwise)} \\
        p_t &= p_{t-1} - \gamma d_t

    (with ``momentum == 0`` simply :math:`p_t = p_{t-1} - \gamma g_t`).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Updated in place.
    lr : float, default 1e-3
        :math:`\gamma`.
    momentum : float, default 0
        :math:`\mu`, the weight of the **old** buffer (the seeds' :math:`\rho` or
        :math:`\beta`, typically 0.9 or 0.99).
    dampening : float, default 0
        :math:`\tau`: the new gradient enters the buffer scaled by :math:`1 - \tau`.
    weight_decay : float, default 0
        :math:`\lambda`, an L2 penalty :math:`\tfrac{\lambda}{2}\lVert p \rVert^2` folded
        into the gradient. Without momentum this *is* decoupled decay of
        :math:`\gamma\lambda` per step:
        :math:`p - \gamma(\nabla + \lambda p) = (1 - \gamma\lambda)p - \gamma\nabla`.
        With momentum the two differ (the L2 term is accumulated in the buffer, the
        decoupled decay is not), although the seeds call them equivalent for
        SGD+Momentum too. (A seed writing the penalty as
        :math:`\lambda\lVert w\rVert^2`, gradient :math:`2\lambda w`, means
        ``weight_decay = 2λ``.)
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend instead of descend (the gradient is negated).

    Notes
    -----
    State per parameter: ``"momentum_buffer"`` (:math:`b`, ``None`` until the first step
    with momentum).

    **The velocity forms in the lecture seeds give the same trajectory.** With constant
    :math:`\gamma`, ``dampening = 0`` and :math:`\rho = \mu`:

    * CS231n's ``v = rho * v + dx; x -= lr * v`` is this update with :math:`v = b`.
    * Sutskever's ``v = rho * v - lr * dx; x += v`` (and Géron's
      :math:`m \leftarrow \beta m + \eta\nabla,\ w \leftarrow w - m`) keep the learning
      rate inside the velocity: :math:`v_t = -\gamma b_t`, by induction from
      :math:`v_1 = -\gamma g_1 = -\gamma b_1` and
      :math:`v_t = \rho v_{t-1} - \gamma g_t = -\gamma(\mu b_{t-1} + g_t)`. The two differ
      only when :math:`\gamma` changes during training: the velocity form keeps the old
      learning rate in :math:`v`, PyTorch's rescales the whole buffer at once.

    **Nesterov.** The seeds' look-ahead form evaluates the gradient at :math:`x_t + \rho v_t`:
    :math:`v_{t+1} = \rho v_t - \gamma\nabla f(x_t + \rho v_t)`, :math:`x_{t+1} = x_t + v_{t+1}`.
    With the change of variables :math:`\tilde x_t = x_t + \rho v_t` the gradient is taken at
    the stored point: :math:`\tilde x_{t+1} = \tilde x_t - \rho v_t + (1 + \rho) v_{t+1}`.
    Substituting :math:`v = -\gamma b` and :math:`b_{t+1} - \rho b_t = g_{t+1}`:
    :math:`\tilde x_{t+1} = \tilde x_t - \gamma(g_{t+1} + \rho b_{t+1})`, which is the
    ``nesterov=True`` update above with the parameter holding :math:`\tilde x`.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )

    def _validate_hyperparams(self, hp: dict) -> None:
        hp["lr"] = check_lr(hp["lr"])
        hp["momentum"] = check_nonnegative(hp["momentum"], "momentum")
        hp["dampening"] = check_real(hp["dampening"], "dampening")
        if math.isnan(hp["dampening"]):  # torch.optim.SGD does not check; NaN poisons b
            raise ValueError(f"Invalid dampening value: {hp['dampening']}")
        hp["weight_decay"] = check_nonnegative(hp["weight_decay"], "weight_decay")
        hp["nesterov"] = check_flag(hp["nesterov"], "nesterov")
        hp["maximize"] = check_flag(hp["maximize"], "maximize")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _init_state(self, param: np.ndarray) -> dict:
        return {"momentum_buffer": None}

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        if self.hyperparams["momentum"] != 0 and state["momentum_buffer"] is None:
            # The first step creates the buffer (b_1 = g_1), so it runs on the whole array.
            _, state["momentum_buffer"] = F.sgd(param, grad, None, inplace=True, **self.hyperparams)
        else:
            self._apply_blockwise(F.sgd, param, grad, state["momentum_buffer"], **self.hyperparams)
