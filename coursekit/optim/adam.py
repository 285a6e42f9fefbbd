"""Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from coursekit.optim import functional as F
from coursekit.optim.base import Optimizer, check_betas, check_flag, check_lr, check_nonnegative


class Adam(Optimizer):
    r"""Adam, exactly ``torch.optim.Adam`` (plus an optional switch to drop bias correction).

    For each parameter :math:`p` with gradient :math:`\nabla` at step :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla + \lambda p_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t) \\
        p_t &= p_{t-1} - \gamma\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    with :math:`m_0 = v_0 = 0`. With ``amsgrad=True``,
    :math:`v^{max}_t = \max(v^{max}_{t-1}, v_t)` replaces :math:`v_t` in :math:`\hat v_t`.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Updated in place.
    lr : float, default 1e-3
        :math:`\gamma`.
    betas : (float, float), default (0.9, 0.999)
        :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
    eps : float, default 1e-8
        :math:`\epsilon`, added outside the square root of :math:`\hat v`.
    weight_decay : float, default 0
        :math:`\lambda` as an **L2 penalty in the gradient**: it passes through
        :math:`m` and :math:`v`, so coordinates with large gradients are barely decayed.
        For decay that acts on the weights directly use :class:`AdamW`.
    amsgrad : bool, default False
        Use the running maximum of :math:`v`.
    maximize : bool, default False
        Ascend instead of descend.
    bias_correction : bool, default True
        **Not in PyTorch** (which always corrects); ``False`` uses :math:`m_t` and
        :math:`v_t` directly, for the lecture that shows why the correction matters.

    Notes
    -----
    State per parameter: ``"step"`` (:math:`t`, an int), ``"exp_avg"`` (:math:`m`),
    ``"exp_avg_sq"`` (:math:`v`) and, with ``amsgrad``, ``"max_exp_avg_sq"``.

    **Why bias correction.** At :math:`t = 1`, :math:`m_1 = (1 - \beta_1) g` and
    :math:`v_1 = (1 - \beta_2) g^2`: both are biased towards their zero start. Corrected,
    :math:`\hat m_1 / \sqrt{\hat v_1} = \operatorname{sign}(g)`, a first step of about
    :math:`\gamma` per coordinate. Uncorrected the step is
    :math:`\gamma (1 - \beta_1)/\sqrt{1 - \beta_2}\,\operatorname{sign}(g) \approx 3.16\,\gamma`
    for the default betas: the first steps are too large, the opposite of what a small
    :math:`\gamma` promised.

    **Seed forms.** The CS231n seed loops ``for t in range(num_iterations)`` and divides by
    ``1 - beta1 ** t``: :math:`t` must start at 1 (at :math:`t = 0` the correction divides
    by zero), as it does here. It uses ``1e-7`` for :math:`\epsilon`; Géron's slides put
    :math:`\epsilon` inside the root, :math:`\sqrt{\hat s + \epsilon}`.
    """

    _rule = staticmethod(F.adam)
    _optional_state = frozenset({"max_exp_avg_sq"})

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        bias_correction: bool = True,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            bias_correction=bias_correction,
        )

    def _validate_hyperparams(self, hp: dict) -> None:
        hp["lr"] = check_lr(hp["lr"])
        hp["eps"] = check_nonnegative(hp["eps"], "eps", "epsilon")
        hp["betas"] = check_betas(hp["betas"])
        hp["weight_decay"] = check_nonnegative(hp["weight_decay"], "weight_decay")
        hp["amsgrad"] = check_flag(hp["amsgrad"], "amsgrad")
        hp["maximize"] = check_flag(hp["maximize"], "maximize")
        hp["bias_correction"] = check_flag(hp["bias_correction"], "bias_correction")

    def _init_state(self, param: np.ndarray) -> dict:
        state = {"step": 0, "exp_avg": np.zeros_like(param), "exp_avg_sq": np.zeros_like(param)}
        if self.hyperparams["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param)
        return state

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        hp = self.hyperparams
        if hp["amsgrad"]:  # switched on later by load_state_dict
            state.setdefault("max_exp_avg_sq", np.zeros_like(param))
        state["step"] += 1
        beta1, beta2 = hp["betas"]
        self._apply_blockwise(
            self._rule,
            param,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state.get("max_exp_avg_sq") if hp["amsgrad"] else None,
            step=state["step"],
            lr=hp["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=hp["eps"],
            weight_decay=hp["weight_decay"],
            amsgrad=hp["amsgrad"],
            maximize=hp["maximize"],
            bias_correction=hp["bias_correction"],
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, exactly ``torch.optim.AdamW``.

    Each step first shrinks the weights, then takes a plain Adam step (no L2 in the
    gradient):

    .. math::

        p &\leftarrow p\,(1 - \gamma\lambda) \\
        p &\leftarrow \text{Adam step on } \nabla \text{ (see } :class:`Adam`\text{)}

    so the decay never passes through :math:`m` and :math:`v`: every weight shrinks by the
    same factor, however large its gradients. For plain SGD the two kinds of decay are the
    same thing; for adaptive methods they are not, and AdamW's is the one that acts like
    weight decay.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Updated in place.
    lr, betas, eps, amsgrad, maximize, bias_correction
        As in :class:`Adam`.
    weight_decay : float, default 1e-2
        :math:`\lambda`, the decoupled decay coefficient (PyTorch's default 1e-2).

    Notes
    -----
    State per parameter: as in :class:`Adam`.

    **The paper's form.** The seeds show Loshchilov & Hutter's Algorithm 2,
    :math:`\theta_t = \theta_{t-1} - \eta_t(\alpha\,\hat m_t/(\sqrt{\hat v_t} + \epsilon) +
    \lambda\theta_{t-1})`, where the decay is scaled by the schedule multiplier
    :math:`\eta_t` but not by :math:`\alpha`. PyTorch (and coursekit) scale it by the whole
    learning rate :math:`\gamma = \eta_t\alpha`, so the paper's :math:`\lambda` equals
    ``weight_decay * lr`` at the base learning rate (PyTorch's default 1e-2 with
    ``lr=1e-3`` is the paper's :math:`\lambda = 10^{-5}`). PyTorch also decays the old
    weights *before* computing the Adam step, as the paper does (:math:`\lambda\theta_{t-1}`).
    """

    _rule = staticmethod(F.adamw)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        bias_correction: bool = True,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            bias_correction=bias_correction,
        )
