"""Sharpness-aware minimization (SAM) around any ``torch.optim`` optimizer."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

__all__ = ["SAM"]


class SAM(torch.optim.Optimizer):
    r"""Sharpness-aware minimization: step with the gradient taken at the worst nearby point.

    SAM minimizes :math:`\max_{\|\epsilon\|_2 \le \rho} L(w + \epsilon)`, the loss at the
    worst point of a ball around :math:`w`, which favours flat minima. A first-order
    approximation of the inner maximum gives :math:`\hat\epsilon(w) = \rho\, g / \|g\|_2`, and
    one SAM step is

    .. math::

        g = \nabla L(w), \qquad
        e_w = \rho \frac{g}{\|g\|_2 + 10^{-12}}, \qquad
        g' = \nabla L(w + e_w), \qquad
        w \leftarrow \text{base\_step}(w, g')

    i.e. the base optimizer (SGD, Adam, ...) steps **from** :math:`w` using the gradient
    :math:`g'` of the perturbed point. :math:`\|g\|_2` is the norm of all parameters'
    gradients together. Each step costs two forward-backward passes.

    With ``adaptive=True`` this is ASAM (Kwon et al., 2021): the ball is scaled per weight by
    :math:`T_w = |w|`, giving :math:`e_w = \rho\, T_w^2 g / \|T_w g\|_2`, which makes the
    sharpness measure invariant to rescaling the weights.

    Use either :meth:`step` with a closure::

        def closure():
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss

        loss = opt.step(closure)     # zeroes the gradients itself before each call

    or the two halves by hand::

        loss_fn(model(x), y).backward()
        opt.first_step(zero_grad=True)          # w -> w + e_w
        loss_fn(model(x), y).backward()
        opt.second_step(zero_grad=True)         # back to w, base step with g'

    Parameters
    ----------
    params : iterable of Tensor or of dict
        The parameters (or parameter groups; a group may set its own ``rho``).
    base_optimizer : type or torch.optim.Optimizer
        An optimizer class, instantiated on the same parameter groups with ``**kwargs``, or an
        optimizer instance over exactly the same parameters (then no ``kwargs``).
    rho : float
        Radius :math:`\rho \ge 0` of the neighbourhood (default 0.05, the paper's).
    adaptive : bool
        ASAM's scale-invariant perturbation.
    **kwargs
        Hyperparameters of the base optimizer (``lr``, ``momentum``, ...).

    Notes
    -----
    SAM shares its ``param_groups`` with the base optimizer, so learning-rate schedulers built
    on the SAM object act on the base optimizer. ``state_dict()`` / ``load_state_dict()`` are
    the base optimizer's (SAM's own state only lives between the two halves of a step).

    References
    ----------
    P. Foret, A. Kleiner, H. Mobahi and B. Neyshabur, "Sharpness-aware minimization for
    efficiently improving generalization", ICLR 2021.

    J. Kwon, J. Kim, H. Park and I. K. Choi, "ASAM: Adaptive sharpness-aware minimization for
    scale-invariant learning of deep neural networks", ICML 2021.
    """

    def __init__(self, params, base_optimizer, rho: float = 0.05, adaptive: bool = False, **kwargs):
        if isinstance(rho, bool) or not isinstance(rho, numbers.Real):
            raise TypeError(f"rho must be a non-negative number, got {type(rho).__name__}")
        if not rho >= 0:
            raise ValueError(f"Invalid rho: rho must be >= 0, got {rho}")
        if not isinstance(adaptive, bool):
            raise TypeError(f"adaptive must be True or False, got {type(adaptive).__name__}")
        super().__init__(params, {"rho": float(rho), "adaptive": adaptive})

        if isinstance(base_optimizer, torch.optim.Optimizer):
            if kwargs:
                raise TypeError(
                    "keyword arguments for the base optimizer are only accepted when "
                    f"base_optimizer is a class, got an instance and {sorted(kwargs)}"
                )
            mine = {id(p) for g in self.param_groups for p in g["params"]}
            theirs = {id(p) for g in base_optimizer.param_groups for p in g["params"]}
            if mine != theirs:
                raise ValueError(
                    "base_optimizer must optimize exactly the parameters given to SAM: "
                    f"SAM has {len(mine)}, base_optimizer has {len(theirs)}, "
                    f"{len(mine & theirs)} in common"
                )
            for group in base_optimizer.param_groups:
                group.setdefault("rho", float(rho))
                group.setdefault("adaptive", adaptive)
            self.base_optimizer = base_optimizer
        elif isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer):
            self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        else:
            raise TypeError(
                "base_optimizer must be a torch.optim.Optimizer subclass or instance, "
                f"got {base_optimizer!r}"
            )
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self._perturbed = False

    def add_param_group(self, param_group: dict) -> None:
        if not hasattr(self, "base_optimizer"):  # called by Optimizer.__init__
            super().add_param_group(param_group)
            return
        param_group.setdefault("rho", self.defaults["rho"])
        param_group.setdefault("adaptive", self.defaults["adaptive"])
        self.base_optimizer.add_param_group(param_group)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            torch.linalg.vector_norm((p.abs() if group["adaptive"] else 1.0) * p.grad)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            raise RuntimeError("SAM.first_step found no gradients: run backward() first")
        return torch.linalg.vector_norm(torch.stack(norms))

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to the perturbed point :math:`w + e_w` (remembering :math:`w` and :math:`e_w`)."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e_w = p.grad * scale.to(p)
                if group["adaptive"]:
                    e_w = e_w * p.pow(2)
                state = self.state[p]
                state["old_p"] = p.detach().clone()
                state["e_w"] = e_w
                p.add_(e_w)
        self._perturbed = True
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Go back to :math:`w` exactly and let the base optimizer step with the new gradients."""
        if not self._perturbed:
            raise RuntimeError("SAM.second_step called without first_step before it")
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self._perturbed = False
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One full SAM step; ``closure`` computes the loss, calls ``backward()`` and returns it.

        The closure runs twice, at :math:`w` and at :math:`w + e_w`; gradients are zeroed
        before each call. Returns the loss at :math:`w`.
        """
        if closure is None:
            raise ValueError(
                "SAM.step needs a closure that computes the loss and calls backward(); "
                "or call first_step() and second_step() yourself"
            )
        closure = torch.enable_grad()(closure)
        self.zero_grad()
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
