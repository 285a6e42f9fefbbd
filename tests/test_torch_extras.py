"""coursekit.torch_extras: the DataGrad / double-backprop penalty and SAM."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coursekit.torch_extras import SAM, input_gradient_penalty

DT = torch.float64


def _mlp_params(seed=0, sizes=(3, 4, 3)):
    g = torch.Generator().manual_seed(seed)
    a, h, c = sizes
    return [
        torch.randn(a, h, generator=g, dtype=DT),
        torch.randn(h, generator=g, dtype=DT) * 0.1,
        torch.randn(h, c, generator=g, dtype=DT),
        torch.randn(c, generator=g, dtype=DT) * 0.1,
    ]


def _mlp(params):
    W1, b1, W2, b2 = params
    return lambda x: torch.tanh(x @ W1 + b1) @ W2 + b2


def _data(seed=1, n=5, d=3, c=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randint(0, c, (n,), generator=g)


# -- DataGrad / double backpropagation -----------------------------------------------------------


@pytest.mark.parametrize("norm", ["l2", "squared_l2"])
def test_penalty_gradients_pass_gradcheck_and_gradgradcheck(norm):
    x, y = _data()
    params = [p.requires_grad_() for p in _mlp_params()]
    x = x.requires_grad_()

    def total(x, *ps):
        return input_gradient_penalty(F.cross_entropy, _mlp(ps), x, y, 0.7, norm=norm)

    assert torch.autograd.gradcheck(total, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-6)
    assert torch.autograd.gradgradcheck(total, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("norm", ["l2", "squared_l2"])
def test_penalty_value_equals_the_closed_form_for_a_linear_model(norm):
    """Squared error of x @ W + b: dL/dx = 2/(N K) (x W + b - y) W^T."""
    rng = np.random.default_rng(0)
    N, D, K = 6, 4, 2
    x, W, b, y = (
        rng.normal(size=(N, D)),
        rng.normal(size=(D, K)),
        rng.normal(size=K),
        rng.normal(size=(N, K)),
    )
    lam = 0.3
    total = input_gradient_penalty(
        F.mse_loss,
        lambda t: t @ torch.tensor(W) + torch.tensor(b),
        torch.tensor(x),
        torch.tensor(y),
        lam,
        norm=norm,
    )
    residual = x @ W + b - y
    loss = np.mean(residual**2)
    grad_x = 2.0 / (N * K) * residual @ W.T
    penalty = np.linalg.norm(grad_x) if norm == "l2" else np.sum(grad_x**2)
    np.testing.assert_allclose(total.item(), loss + lam * penalty, rtol=1e-12)


@pytest.mark.parametrize("norm", ["l2", "squared_l2"])
def test_zero_strength_gives_the_plain_loss_gradients(norm):
    x, y = _data()
    params = [p.requires_grad_() for p in _mlp_params()]
    total = input_gradient_penalty(F.cross_entropy, _mlp(params), x, y, 0.0, norm=norm)
    grads = torch.autograd.grad(total, params)
    plain = F.cross_entropy(_mlp(params)(x), y)
    expected = torch.autograd.grad(plain, params)
    assert total.item() == plain.item()
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-14, atol=0)


def test_penalty_gradient_differs_from_the_plain_gradient():
    """The create_graph path really adds d(penalty)/d(params) (a detached penalty would not)."""
    x, y = _data()
    params = [p.requires_grad_() for p in _mlp_params()]
    lam = 0.5
    total = input_gradient_penalty(F.cross_entropy, _mlp(params), x, y, lam)
    grads = torch.autograd.grad(total, params)

    def penalty_only(*ps):
        xx = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(F.cross_entropy(_mlp(ps)(xx), y), xx, create_graph=True)
        return torch.linalg.vector_norm(gx)

    plain = torch.autograd.grad(F.cross_entropy(_mlp(params)(x), y), params)
    pen = torch.autograd.grad(penalty_only(*params), params)
    for g, a, b in zip(grads, plain, pen):
        torch.testing.assert_close(g, a + lam * b, rtol=1e-12, atol=1e-14)
        assert torch.linalg.vector_norm(b) > 1e-3


def test_inputs_that_require_grad_are_used_as_they_are():
    x, y = _data()
    x.requires_grad_()
    model = torch.nn.Linear(3, 3).double()
    input_gradient_penalty(F.cross_entropy, model, x, y, 0.1).backward()
    assert x.grad is not None and model.weight.grad is not None
    x2, _ = _data()
    input_gradient_penalty(F.cross_entropy, model, x2, y, 0.1)
    assert not x2.requires_grad and x2.grad is None  # a detached copy was differentiated


def test_penalty_bad_input():
    x, y = _data()
    model = torch.nn.Linear(3, 3).double()
    with pytest.raises(ValueError, match="strength must be >= 0, got -1"):
        input_gradient_penalty(F.cross_entropy, model, x, y, -1.0)
    with pytest.raises(TypeError, match="strength must be a non-negative number, got str"):
        input_gradient_penalty(F.cross_entropy, model, x, y, "1")
    with pytest.raises(ValueError, match=r"norm must be one of \('l2', 'squared_l2'\), got 'l1'"):
        input_gradient_penalty(F.cross_entropy, model, x, y, 1.0, norm="l1")
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        input_gradient_penalty(F.cross_entropy, model, x.numpy(), y, 1.0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        input_gradient_penalty(F.cross_entropy, model, y, y, 1.0)
    per_example = lambda out, t: F.cross_entropy(out, t, reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar tensor, got \(5,\)"):
        input_gradient_penalty(per_example, model, x, y, 1.0)


# -- SAM ----------------------------------------------------------------------------------------


def _loss(params, x, y):
    return F.cross_entropy(_mlp(params)(x), y)


def _hand_sam_step(params, base, x, y, rho):
    """g at w, e = rho g/||g||, g' at w + e, then the base optimizer steps from w with g'."""
    g = torch.autograd.grad(_loss(params, x, y), params)
    norm = torch.sqrt(sum((gi * gi).sum() for gi in g))
    e = [rho * gi / norm for gi in g]
    perturbed = [(p + ei).detach().requires_grad_() for p, ei in zip(params, e)]
    g_prime = torch.autograd.grad(_loss(perturbed, x, y), perturbed)
    for p, gp in zip(params, g_prime):
        p.grad = gp.clone()
    base.step()
    return e


def _closure(opt, params, x, y):
    def closure():
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize(
    "base_cls,kwargs",
    [
        (torch.optim.SGD, {"lr": 0.1}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
        (torch.optim.Adam, {"lr": 1e-2}),
        (torch.optim.Adam, {"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-2}),
    ],
)
def test_sam_step_equals_the_hand_computed_two_step_update(base_cls, kwargs):
    x, y = _data()
    rho = 0.2
    ours = [p.requires_grad_() for p in _mlp_params()]
    ref = [p.detach().clone().requires_grad_() for p in ours]
    sam = SAM(ours, base_cls, rho=rho, **kwargs)
    ref_opt = base_cls(ref, **kwargs)
    for _ in range(4):  # several steps: momentum / Adam state must carry over
        start = [p.detach().clone() for p in ref]
        loss = sam.step(_closure(sam, ours, x, y))
        e = _hand_sam_step(ref, ref_opt, x, y, rho)
        assert loss.item() == pytest.approx(_loss(start, x, y).item(), rel=1e-14)
        for p, r, ei in zip(ours, ref, e):
            torch.testing.assert_close(p.detach(), r.detach(), rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(sam.state[p]["e_w"], ei, rtol=1e-10, atol=1e-14)


def test_first_then_second_step_returns_exactly_to_w_apart_from_the_base_step():
    x, y = _data()
    params = [p.requires_grad_() for p in _mlp_params()]
    w = [p.detach().clone() for p in params]
    rho = 0.5
    sam = SAM(params, torch.optim.SGD, rho=rho, lr=0.0)  # the base step changes nothing
    _loss(params, x, y).backward()
    g = [p.grad.clone() for p in params]
    norm = torch.sqrt(sum((gi * gi).sum() for gi in g))
    sam.first_step(zero_grad=True)
    for p, wi, gi in zip(params, w, g):
        torch.testing.assert_close(p.detach(), wi + rho * gi / norm, rtol=1e-13, atol=1e-12)
        assert p.grad is None
    total = torch.sqrt(sum((sam.state[p]["e_w"] ** 2).sum() for p in params))
    assert total.item() == pytest.approx(rho, rel=1e-12)  # ||e_w|| = rho
    _loss(params, x, y).backward()
    sam.second_step()
    for p, wi in zip(params, w):
        assert torch.equal(p.detach(), wi)  # bit for bit


def test_adaptive_perturbation_is_asam():
    x, y = _data()
    params = [p.requires_grad_() for p in _mlp_params()]
    w = [p.detach().clone() for p in params]
    rho = 0.3
    sam = SAM(params, torch.optim.SGD, rho=rho, adaptive=True, lr=0.1)
    _loss(params, x, y).backward()
    g = [p.grad.clone() for p in params]
    norm = torch.sqrt(sum(((wi.abs() * gi) ** 2).sum() for wi, gi in zip(w, g)))
    sam.first_step()
    for p, wi, gi in zip(params, w, g):
        torch.testing.assert_close(p.detach(), wi + rho * wi**2 * gi / norm, rtol=1e-12, atol=1e-15)


def test_rho_zero_is_the_base_optimizer():
    x, y = _data()
    ours = [p.requires_grad_() for p in _mlp_params()]
    ref = [p.detach().clone().requires_grad_() for p in ours]
    sam = SAM(ours, torch.optim.Adam, rho=0.0, lr=1e-2)
    ref_opt = torch.optim.Adam(ref, lr=1e-2)
    for _ in range(3):
        sam.step(_closure(sam, ours, x, y))
        ref_opt.zero_grad()
        _loss(ref, x, y).backward()
        ref_opt.step()
    for p, r in zip(ours, ref):
        assert torch.equal(p.detach(), r.detach())


def test_instance_base_optimizer_scheduler_and_state_dict():
    x, y = _data()
    a = [p.requires_grad_() for p in _mlp_params()]
    b = [p.detach().clone().requires_grad_() for p in a]
    sam_a = SAM(a, torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    sam_b = SAM(b, torch.optim.SGD(b, lr=0.1, momentum=0.9), rho=0.1)
    sched = torch.optim.lr_scheduler.StepLR(sam_a, step_size=1, gamma=0.5)
    sched_b = torch.optim.lr_scheduler.StepLR(sam_b, step_size=1, gamma=0.5)
    for _ in range(2):
        sam_a.step(_closure(sam_a, a, x, y))
        sam_b.step(_closure(sam_b, b, x, y))
        sched.step()
        sched_b.step()
    assert sam_a.base_optimizer.param_groups[0]["lr"] == 0.025  # the scheduler reaches the base
    for p, q in zip(a, b):
        assert torch.equal(p, q)

    # resume from a state_dict in a fresh SAM over copies: same trajectory afterwards
    c = [p.detach().clone().requires_grad_() for p in a]
    sam_c = SAM(c, torch.optim.SGD, rho=0.7, lr=1.0, momentum=0.0)
    # deepcopy: torch's state_dict holds references to the live momentum buffers
    sam_c.load_state_dict(copy.deepcopy(sam_a.state_dict()))
    assert sam_c.param_groups is sam_c.base_optimizer.param_groups
    assert sam_c.param_groups[0]["rho"] == 0.1
    for _ in range(2):
        sam_a.step(_closure(sam_a, a, x, y))
        sam_c.step(_closure(sam_c, c, x, y))
    for p, q in zip(a, c):
        assert torch.equal(p, q)


def test_sam_bad_input():
    params = [torch.zeros(2, dtype=DT, requires_grad=True)]
    with pytest.raises(ValueError, match="rho must be >= 0, got -0.1"):
        SAM(params, torch.optim.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(TypeError, match="rho must be a non-negative number, got str"):
        SAM(params, torch.optim.SGD, rho="0.1", lr=0.1)
    with pytest.raises(TypeError, match="base_optimizer must be a torch.optim.Optimizer"):
        SAM(params, "SGD", lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):  # the base optimizer's check
        SAM(params, torch.optim.SGD, lr=-1.0)
    other = [torch.zeros(2, dtype=DT, requires_grad=True)]
    with pytest.raises(ValueError, match="base_optimizer must optimize exactly the parameters"):
        SAM(params, torch.optim.SGD(other, lr=0.1))
    with pytest.raises(TypeError, match=r"only accepted when base_optimizer is a class.*\['lr'\]"):
        SAM(params, torch.optim.SGD(params, lr=0.1), lr=0.2)
    sam = SAM(params, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="SAM.step needs a closure"):
        sam.step()
    with pytest.raises(RuntimeError, match="second_step called without first_step"):
        sam.second_step()
    with pytest.raises(RuntimeError, match="found no gradients"):
        sam.first_step()
