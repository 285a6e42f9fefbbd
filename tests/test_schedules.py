"""coursekit.schedules against torch.optim.lr_scheduler and the closed forms."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from coursekit import schedules as S
from coursekit.optim import SGD, Adam

STEPS = 200
BASE_LR = 0.1


def torch_values(make_scheduler, steps=STEPS, base_lr=BASE_LR):
    """Learning rates torch's scheduler gives at steps 0 .. steps-1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make_scheduler(opt)
    values = []
    for _ in range(steps):
        values.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return np.array(values)


def object_values(make_scheduler, steps=STEPS, base_lr=BASE_LR):
    """The same for a coursekit scheduler, also checking that it drives optimizer.lr."""
    opt = SGD({"w": np.zeros(1)}, lr=base_lr)
    sched = make_scheduler(opt)
    values = []
    for _ in range(steps):
        assert opt.lr == sched.get_last_lr()
        values.append(opt.lr)
        sched.step()
    return np.array(values)


def function_values(fn, steps=STEPS):
    return np.array([fn(t) for t in range(steps)])


def assert_close(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


LR = torch.optim.lr_scheduler

TORCH_CASES = [
    (
        "step",
        functools.partial(S.step_lr, base_lr=BASE_LR, step_size=30, gamma=0.5),
        lambda o: S.StepLR(o, step_size=30, gamma=0.5),
        lambda o: LR.StepLR(o, step_size=30, gamma=0.5),
    ),
    (
        "step-default-gamma",
        functools.partial(S.step_lr, base_lr=BASE_LR, step_size=7),
        lambda o: S.StepLR(o, step_size=7),
        lambda o: LR.StepLR(o, step_size=7),
    ),
    (
        "multistep",
        functools.partial(S.multistep_lr, base_lr=BASE_LR, milestones=[30, 60, 90], gamma=0.1),
        lambda o: S.MultiStepLR(o, milestones=[30, 60, 90]),
        lambda o: LR.MultiStepLR(o, milestones=[30, 60, 90]),
    ),
    (
        "multistep-unsorted-repeated",
        functools.partial(S.multistep_lr, base_lr=BASE_LR, milestones=[120, 10, 50, 50], gamma=0.3),
        lambda o: S.MultiStepLR(o, milestones=[120, 10, 50, 50], gamma=0.3),
        lambda o: LR.MultiStepLR(o, milestones=[120, 10, 50, 50], gamma=0.3),
    ),
    (
        "exponential",
        functools.partial(S.exponential_lr, base_lr=BASE_LR, gamma=0.97),
        lambda o: S.ExponentialLR(o, gamma=0.97),
        lambda o: LR.ExponentialLR(o, gamma=0.97),
    ),
    (
        "cosine",
        functools.partial(S.cosine_annealing_lr, base_lr=BASE_LR, T_max=200),
        lambda o: S.CosineAnnealingLR(o, T_max=200),
        lambda o: LR.CosineAnnealingLR(o, T_max=200),
    ),
    (
        "cosine-past-T_max-with-eta_min",
        functools.partial(S.cosine_annealing_lr, base_lr=BASE_LR, T_max=45, eta_min=1e-3),
        lambda o: S.CosineAnnealingLR(o, T_max=45, eta_min=1e-3),
        lambda o: LR.CosineAnnealingLR(o, T_max=45, eta_min=1e-3),
    ),
    (
        "linear-defaults",
        functools.partial(S.linear_lr, base_lr=BASE_LR),
        lambda o: S.LinearLR(o),
        lambda o: LR.LinearLR(o),
    ),
    (
        "linear-decay",
        functools.partial(
            S.linear_lr, base_lr=BASE_LR, start_factor=1.0, end_factor=0.0, total_iters=150
        ),
        lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=150),
        lambda o: LR.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=150),
    ),
    (
        "linear-warmup-shape",
        functools.partial(
            S.linear_lr, base_lr=BASE_LR, start_factor=0.1, end_factor=1.0, total_iters=50
        ),
        lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=50),
        lambda o: LR.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=50),
    ),
    (
        "lambda",
        None,
        lambda o: S.LambdaLR(o, lambda t: 1.0 / (1 + t) ** 0.7),
        lambda o: LR.LambdaLR(o, lambda t: 1.0 / (1 + t) ** 0.7),
    ),
    # Schedules torch has no class for, through torch's LambdaLR with the closed form.
    (
        "inverse-time",
        functools.partial(S.inverse_time_lr, base_lr=BASE_LR, decay_rate=0.5, decay_steps=10),
        lambda o: S.InverseTimeLR(o, decay_rate=0.5, decay_steps=10),
        lambda o: LR.LambdaLR(o, lambda t: 1 / (1 + 0.5 * t / 10)),
    ),
    (
        "inverse-sqrt",
        functools.partial(S.inverse_sqrt_lr, base_lr=BASE_LR, warmup_steps=16),
        lambda o: S.InverseSqrtLR(o, warmup_steps=16),
        lambda o: LR.LambdaLR(o, lambda t: math.sqrt(16 / max(t, 16))),
    ),
    (
        "linear-decay-to-zero",
        functools.partial(S.linear_decay_lr, base_lr=BASE_LR, total_steps=120),
        lambda o: S.LinearLR(o, 1.0, 0.0, 120),
        lambda o: LR.LambdaLR(o, lambda t: 1 - min(t, 120) / 120),
    ),
]


@pytest.mark.parametrize(
    ("label", "fn", "ours", "theirs"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES]
)
def test_schedules_match_torch_over_200_steps(label, fn, ours, theirs):
    expected = torch_values(theirs)
    got = object_values(ours)
    assert_close(got, expected)
    if fn is not None:
        assert_close(function_values(fn), expected)
    assert len(set(np.round(expected, 12))) > 1  # the schedule changes the rate


def test_warmup_then_cosine_matches_torch_sequential_lr():
    def theirs(o):
        return LR.SequentialLR(
            o,
            [LR.LinearLR(o, start_factor=0.1, total_iters=20), LR.CosineAnnealingLR(o, T_max=180)],
            milestones=[20],
        )

    expected = torch_values(theirs)
    cosine = functools.partial(S.cosine_annealing_lr, base_lr=BASE_LR, T_max=180)
    assert_close(function_values(S.warmup(cosine, 20, start_factor=0.1)), expected)

    def ours(o):
        return S.WarmupLR(o, 20, start_factor=0.1, after=S.CosineAnnealingLR(o, T_max=180))

    assert_close(object_values(ours), expected)


@pytest.mark.parametrize("start_factor", [0.0, 0.25])
@pytest.mark.parametrize("warmup_steps", [1, 10])
def test_warmup_ramps_linearly_then_hands_over(start_factor, warmup_steps):
    following = functools.partial(S.step_lr, base_lr=0.4, step_size=25, gamma=0.5)
    fn = S.warmup(following, warmup_steps, start_factor)
    ramp = [fn(t) for t in range(warmup_steps)]
    expected_ramp = 0.4 * (
        start_factor + (1 - start_factor) * np.arange(warmup_steps) / warmup_steps
    )
    np.testing.assert_allclose(ramp, expected_ramp, rtol=1e-14, atol=0)
    assert ramp[0] == pytest.approx(0.4 * start_factor)
    if warmup_steps > 2:
        assert np.allclose(np.diff(ramp), np.diff(ramp)[0])  # linear
    for t in range(warmup_steps, warmup_steps + 100):
        assert fn(t) == following(t - warmup_steps)
    assert S.warmup(following, 0)(7) == following(7)  # no warmup at all


def test_warmup_lr_without_a_following_schedule_holds_base_lr():
    values = object_values(lambda o: S.WarmupLR(o, warmup_steps=4), steps=8, base_lr=0.2)
    np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2])


def test_inverse_sqrt_closed_form_and_seed_form():
    # w = 1 is the seed's lr0 / sqrt(t)
    for t in range(1, 50):
        assert S.inverse_sqrt_lr(t, 0.3) == pytest.approx(0.3 / math.sqrt(t), rel=1e-15)
    assert S.inverse_sqrt_lr(0, 0.3) == 0.3
    # constant through the warmup window, continuous at its end
    assert S.inverse_sqrt_lr(5, 0.3, warmup_steps=9) == 0.3
    assert S.inverse_sqrt_lr(9, 0.3, warmup_steps=9) == pytest.approx(0.3)
    assert S.inverse_sqrt_lr(36, 0.3, warmup_steps=9) == pytest.approx(0.15)


def test_inverse_time_and_exponential_match_the_seed_formulas():
    k = 0.05
    for t in range(100):
        assert S.inverse_time_lr(t, 0.1, k) == pytest.approx(0.1 / (1 + k * t), rel=1e-15)
        assert S.exponential_lr(t, 0.1, math.exp(-k)) == pytest.approx(
            0.1 * math.exp(-k * t), rel=1e-12
        )


@given(
    base_lr=st.floats(0.0, 10.0),
    step=st.integers(0, 10_000),
    T_max=st.integers(1, 1000),
    eta_min=st.floats(0.0, 1.0),
)
def test_cosine_stays_between_eta_min_and_base(base_lr, step, T_max, eta_min):
    lr = S.cosine_annealing_lr(step, base_lr, T_max, eta_min)
    lo, hi = min(base_lr, eta_min), max(base_lr, eta_min)
    assert lo - 1e-12 <= lr <= hi + 1e-12
    if step % (2 * T_max) == 0:
        assert lr == pytest.approx(base_lr)
    if step % (2 * T_max) == T_max:
        assert lr == pytest.approx(eta_min, abs=1e-12)


# -- objects: optimizer coupling and state ------------------------------------------------
def test_scheduler_changes_the_optimizers_updates():
    params = {"w": np.array([1.0])}
    opt = SGD(params, lr=1.0)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    moves = []
    for _ in range(4):
        before = params["w"].copy()
        opt.step({"w": np.array([1.0])})
        moves.append(float(before[0] - params["w"][0]))
        sched.step()
    np.testing.assert_allclose(moves, [1.0, 0.5, 0.25, 0.125])


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.StepLR(o, step_size=3, gamma=0.5),
        lambda o: S.MultiStepLR(o, milestones=[2, 9]),
        lambda o: S.CosineAnnealingLR(o, T_max=17, eta_min=1e-4),
        lambda o: S.InverseSqrtLR(o, warmup_steps=4),
        lambda o: S.WarmupLR(o, 5, 0.1, after=S.ExponentialLR(o, gamma=0.9)),
    ],
    ids=["step", "multistep", "cosine", "inverse-sqrt", "warmup-exponential"],
)
def test_scheduler_state_dict_resumes_the_same_sequence(make):
    opt_a = Adam({"w": np.zeros(2)}, lr=0.1)
    sched_a = make(opt_a)
    straight = []
    for _ in range(30):
        sched_a.step()
        straight.append(opt_a.lr)

    opt_b = Adam({"w": np.zeros(2)}, lr=0.1)
    sched_b = make(opt_b)
    resumed = []
    for _ in range(12):
        sched_b.step()
        resumed.append(opt_b.lr)
    saved = sched_b.state_dict()
    saved_copy = {k: v for k, v in saved.items()}
    opt_c = Adam({"w": np.zeros(2)}, lr=0.1)
    sched_c = make(opt_c)
    sched_c.load_state_dict(saved)
    assert opt_c.lr == resumed[-1]
    for _ in range(18):
        sched_c.step()
        resumed.append(opt_c.lr)
    assert resumed == straight
    assert saved == saved_copy  # loading and stepping did not write into the dict


def test_load_state_dict_rejects_another_schedulers_state():
    opt = SGD({"w": np.zeros(1)}, lr=0.1)
    with pytest.raises(ValueError, match="state_dict for CosineAnnealingLR must have keys"):
        S.CosineAnnealingLR(opt, T_max=5).load_state_dict(S.StepLR(opt, 3).state_dict())


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: S.step_lr(-1, 0.1, 10), ValueError, "step must be a non-negative integer, got -1"),
        (lambda: S.step_lr(1.5, 0.1, 10), TypeError, "step must be an integer, got float"),
        (lambda: S.step_lr(1, -0.1, 10), ValueError, r"base_lr must be >= 0, got -0.1"),
        (lambda: S.step_lr(1, 0.1, 0), ValueError, "step_size must be a positive integer, got 0"),
        (lambda: S.step_lr(1, 0.1, 5, gamma=0), ValueError, "gamma must be > 0, got 0"),
        (lambda: S.multistep_lr(1, 0.1, 30), TypeError, "milestones must be a list"),
        (lambda: S.multistep_lr(1, 0.1, [3, -1]), ValueError, "each milestone must be a non-neg"),
        (lambda: S.exponential_lr(1, 0.1, -0.5), ValueError, "gamma must be > 0, got -0.5"),
        (lambda: S.inverse_time_lr(1, 0.1, -1.0), ValueError, "decay_rate must be >= 0, got -1.0"),
        (lambda: S.inverse_time_lr(1, 0.1, 1.0, 0), ValueError, "decay_steps must be a positive"),
        (lambda: S.cosine_annealing_lr(1, 0.1, 0), ValueError, "T_max must be a positive integer"),
        (lambda: S.cosine_annealing_lr(1, 0.1, 10, -1e-3), ValueError, "eta_min must be >= 0"),
        (
            lambda: S.linear_lr(1, 0.1, 1.5),
            ValueError,
            r"start_factor must be in \[0, 1\], got 1.5",
        ),
        (lambda: S.linear_lr(1, 0.1, 0.5, -0.1), ValueError, r"end_factor must be in \[0, 1\]"),
        (lambda: S.linear_lr(1, 0.1, 0.5, 1.0, 0), ValueError, "total_iters must be a positive"),
        (lambda: S.inverse_sqrt_lr(1, 0.1, 0), ValueError, "warmup_steps must be a positive"),
        (
            lambda: S.warmup(0.1, 5),
            TypeError,
            "schedule_fn must be a function step -> lr, got float",
        ),
        (lambda: S.warmup(lambda t: 0.1, -1), ValueError, "warmup_steps must be a non-negative"),
        (lambda: S.warmup(lambda t: 0.1, 3, 2.0), ValueError, r"start_factor must be in \[0, 1\]"),
        (lambda: S.StepLR(object(), 3), TypeError, "optimizer must be a coursekit.optim optimizer"),
        (
            lambda: S.LambdaLR(SGD({"w": np.zeros(1)}), 0.5),
            TypeError,
            "lr_lambda should be a function",
        ),
        (lambda: S.StepLR(SGD({"w": np.zeros(1)}), step_size=0), ValueError, "step_size must be"),
        (
            lambda: S.WarmupLR(SGD({"w": np.zeros(1)}), 5, after=0.1),
            TypeError,
            "after must be an LRScheduler",
        ),
    ],
)
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_warmup_lr_after_must_drive_the_same_optimizer():
    a, b = SGD({"w": np.zeros(1)}), SGD({"w": np.zeros(1)})
    with pytest.raises(ValueError, match="same optimizer"):
        S.WarmupLR(a, 5, after=S.StepLR(b, 3))


# -- NaN and infinity ---------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: S.step_lr(3, 0.1, 2, gamma=NAN), "gamma must be > 0, got nan"),
        (lambda: S.step_lr(3, 0.1, 2, gamma=INF), "gamma must be finite, got inf"),
        (lambda: S.step_lr(3, NAN, 2), "base_lr must be >= 0, got nan"),
        (lambda: S.step_lr(3, INF, 2), "base_lr must be finite, got inf"),
        (lambda: S.multistep_lr(3, 0.1, [1, 2], gamma=NAN), "gamma must be > 0, got nan"),
        (lambda: S.exponential_lr(3, 0.1, NAN), "gamma must be > 0, got nan"),
        (lambda: S.exponential_lr(3, 0.1, INF), "gamma must be finite, got inf"),
        (lambda: S.inverse_time_lr(3, 0.1, NAN), "decay_rate must be >= 0, got nan"),
        (lambda: S.inverse_time_lr(0, 0.1, INF), "decay_rate must be finite, got inf"),
        (lambda: S.cosine_annealing_lr(3, 0.1, 10, NAN), "eta_min must be >= 0, got nan"),
        (lambda: S.linear_lr(3, 0.1, NAN), r"start_factor must be in \[0, 1\], got nan"),
        (lambda: S.linear_lr(3, 0.1, 0.5, NAN), r"end_factor must be in \[0, 1\], got nan"),
        (lambda: S.warmup(lambda t: 0.1, 3, NAN), r"start_factor must be in \[0, 1\], got nan"),
        (lambda: S.StepLR(SGD({"w": np.zeros(1)}), 3, gamma=NAN), "gamma must be > 0, got nan"),
        (lambda: S.ExponentialLR(SGD({"w": np.zeros(1)}), INF), "gamma must be finite"),
        (lambda: S.StepLR(Adam({"w": np.zeros(1)}, lr=INF), 3), "base_lr must be finite"),
    ],
)
def test_nan_and_infinite_arguments_are_refused(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize(
    "make",
    [
        lambda o: LR.MultiStepLR(o, [1, 2], gamma=NAN),
        lambda o: LR.ExponentialLR(o, gamma=NAN),
        lambda o: LR.CosineAnnealingLR(o, T_max=10, eta_min=NAN),
        lambda o: LR.LinearLR(o, start_factor=NAN),
        lambda o: LR.ExponentialLR(o, gamma=INF),
    ],
    ids=["multistep", "exponential", "cosine", "linear", "exponential-inf"],
)
def test_torch_accepts_what_is_refused_here_and_produces_a_useless_rate(make):
    # The reason to refuse: PyTorch takes these and the rate stops being a number.
    with np.errstate(invalid="ignore"):
        values = torch_values(make, steps=4)
    assert not np.all(np.isfinite(values[1:]))


def test_a_lambda_returning_nan_is_refused_by_the_optimizer():
    opt = SGD({"w": np.zeros(1)}, lr=0.1)
    sched = S.LambdaLR(opt, lambda t: 1.0 if t < 2 else NAN)
    sched.step()
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        sched.step()


# -- state checked at load ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "change", "error", "pattern"),
    [
        (lambda o: S.StepLR(o, 3), {"gamma": NAN}, ValueError, "gamma must be > 0, got nan"),
        (lambda o: S.StepLR(o, 3), {"step_size": 0}, ValueError, "step_size must be a positive"),
        (lambda o: S.StepLR(o, 3), {"last_epoch": -2}, ValueError, "last_epoch must be a non-neg"),
        (lambda o: S.StepLR(o, 3), {"last_epoch": "4"}, TypeError, "last_epoch must be an integer"),
        (lambda o: S.CosineAnnealingLR(o, 9), {"base_lr": INF}, ValueError, "base_lr must be fin"),
        (
            lambda o: S.MultiStepLR(o, [2]),
            {"milestones": 5},
            TypeError,
            "milestones must be a list",
        ),
        (lambda o: S.LinearLR(o), {"_last_lr": NAN}, ValueError, "_last_lr must be >= 0, got nan"),
        (
            lambda o: S.WarmupLR(o, 4, after=S.ExponentialLR(o, 0.9)),
            {"start_factor": 3.0},
            ValueError,
            r"start_factor must be in \[0, 1\], got 3.0",
        ),
    ],
)
def test_scheduler_load_state_dict_checks_the_values(make, change, error, pattern):
    opt = SGD({"w": np.zeros(1)}, lr=0.1)
    sched = make(opt)
    for _ in range(3):
        sched.step()
    saved = sched.state_dict()
    fresh_opt = SGD({"w": np.zeros(1)}, lr=0.1)
    fresh = make(fresh_opt)
    before, lr_before = fresh.state_dict(), fresh_opt.lr
    with pytest.raises(
        error, match=f"state_dict for {type(fresh).__name__} is invalid: .*{pattern}"
    ):
        fresh.load_state_dict({**saved, **change})
    assert fresh.state_dict() == before and fresh_opt.lr == lr_before
    fresh.load_state_dict(saved)  # the unchanged state loads
    assert fresh_opt.lr == opt.lr


def test_warmup_lr_whose_following_state_is_bad_changes_nothing():
    opt = SGD({"w": np.zeros(1)}, lr=0.1)
    sched = S.WarmupLR(opt, 4, after=S.ExponentialLR(opt, 0.9))
    saved = sched.state_dict()
    saved["after"] = {**saved["after"], "gamma": NAN}
    with pytest.raises(ValueError, match="ExponentialLR is invalid: gamma must be > 0, got nan"):
        sched.load_state_dict(saved)
    assert sched.after.gamma == 0.9


# -- WarmupLR against SequentialLR: equal when the schedule starts at the base rate ---------
def test_warmup_equals_sequential_lr_only_for_a_schedule_starting_at_the_base_rate():
    def theirs(following):
        return lambda o: LR.SequentialLR(
            o, [LR.LinearLR(o, start_factor=0.2, total_iters=3), following(o)], milestones=[3]
        )

    def ours(following):
        return lambda o: S.WarmupLR(o, 3, start_factor=0.2, after=following(o))

    starts_at_base = (lambda o: LR.ExponentialLR(o, 0.9), lambda o: S.ExponentialLR(o, 0.9))
    assert_close(
        object_values(ours(starts_at_base[1]), 12), torch_values(theirs(starts_at_base[0]), 12)
    )

    # A schedule starting at half the base rate: PyTorch ramps to the base rate and then
    # jumps down; WarmupLR ramps to where the schedule begins. Same values from step 3 on.
    half = (lambda o: LR.LinearLR(o, 0.5, 1.0, 4), lambda o: S.LinearLR(o, 0.5, 1.0, 4))
    expected = torch_values(theirs(half[0]), 12)
    got = object_values(ours(half[1]), 12)
    assert_close(got[:3], 0.5 * expected[:3])
    assert_close(got[3:], expected[3:])
    assert expected[2] > expected[3] and got[2] < got[3]  # the jump, and its absence
