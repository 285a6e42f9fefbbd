"""Double backpropagation / DataGrad: penalize the loss gradient with respect to the inputs."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

__all__ = ["input_gradient_penalty"]

NORMS = ("l2", "squared_l2")


def input_gradient_penalty(
    loss_fn: Callable,
    model: Callable,
    x: torch.Tensor,
    y,
    strength: float,
    *,
    norm: str = "l2",
) -> torch.Tensor:
    r"""The loss plus a penalty on the norm of its gradient with respect to the inputs.

    .. math::

        L_{DG}(x, y, \Theta) = L(x, y, \Theta)
            + \lambda \left\| \frac{\partial L(x, y, \Theta)}{\partial x} \right\|_2
        \quad (\text{norm}=\text{"l2"}), \qquad
        L + \lambda \left\| \frac{\partial L}{\partial x} \right\|_2^2
        \quad (\text{norm}=\text{"squared_l2"})

    with :math:`L` = ``loss_fn(model(x), y)`` and :math:`\lambda` = ``strength``. The norm is
    taken over the whole input batch (all entries of :math:`\partial L / \partial x`). A small
    input gradient means the loss changes little when an input is perturbed, which favours
    smooth, robust decision functions.

    The input gradient is computed with ``torch.autograd.grad(..., create_graph=True)``, so it
    is itself part of the graph: ``total.backward()`` differentiates the penalty with respect
    to the parameters, which is a second backward pass through the network ("double
    backpropagation"). Gradients of the model's parameters therefore need second derivatives
    (piecewise-linear activations such as ReLU have zero second derivative, but the penalty
    still depends on the parameters through the first derivative).

    The lecture notes use the plain L2 norm, as DataGrad does (Ororbia et al., 2016);
    Drucker & LeCun's double backpropagation penalizes the **squared** norm of the input
    gradient (``norm="squared_l2"``). The plain norm is not differentiable where the input
    gradient is exactly zero; PyTorch then uses the subgradient 0.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(outputs, y)`` returning a scalar tensor (for example
        ``torch.nn.functional.cross_entropy``).
    model : callable
        ``model(x)`` returning the outputs (an ``nn.Module`` or any function of tensors).
    x : Tensor
        Floating-point inputs. If ``x`` does not require gradients a detached copy that does
        is used; if it does, it is used as it is (and ``total.backward()`` also fills
        ``x.grad``).
    y : Tensor or anything ``loss_fn`` takes
        Targets.
    strength : float
        :math:`\lambda \ge 0`. With ``0`` the result equals the plain loss and so do its
        gradients.
    norm : {"l2", "squared_l2"}
        Which penalty (see above).

    Returns
    -------
    Tensor
        The scalar total :math:`L + \lambda\,\text{penalty}`; call ``.backward()`` on it.

    References
    ----------
    H. Drucker and Y. LeCun, "Improving generalization performance using double
    backpropagation", IEEE Transactions on Neural Networks 3(6), 1992.

    A. G. Ororbia II, C. L. Giles and D. Kifer, "Unifying adversarial training algorithms
    with flexible deep data gradient regularization" (DataGrad), arXiv:1601.07213, 2016.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).double()
    >>> x, y = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0])
    >>> total = input_gradient_penalty(torch.nn.functional.cross_entropy, model, x, y, 0.1)
    >>> total.backward()   # model.weight.grad includes the penalty's gradient
    """
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real):
        raise TypeError(f"strength must be a non-negative number, got {type(strength).__name__}")
    if not strength >= 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor to be differentiated, got {x.dtype}")
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)

    loss = loss_fn(model(x), y)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
    (grad_x,) = torch.autograd.grad(loss, x, create_graph=True)
    if norm == "l2":
        penalty = torch.linalg.vector_norm(grad_x)
    else:
        penalty = grad_x.pow(2).sum()
    return loss + strength * penalty
