import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import scores_and_labels

from coursekit.gradcheck import numerical_gradient, rel_error
from coursekit.losses import softmax_loss, svm_loss

TOL = {"rtol": 1e-10, "atol": 1e-12}
WIDE = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=64)


def torch_loss_and_grad(loss_fn, scores, y):
    s = torch.tensor(scores, requires_grad=True)
    loss = loss_fn(s, torch.from_numpy(y))
    loss.backward()
    return loss.item(), s.grad.numpy()


@given(st.one_of(scores_and_labels(), scores_and_labels(elements=WIDE)))
def test_softmax_loss_matches_torch_cross_entropy(case):
    scores, y = case
    loss, dscores = softmax_loss(scores, y)
    expected_loss, expected_grad = torch_loss_and_grad(F.cross_entropy, scores, y)
    assert loss == pytest.approx(expected_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dscores, expected_grad, **TOL)


def test_softmax_loss_is_finite_for_huge_logits():
    scores = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    y = np.array([1, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dscores = softmax_loss(scores, y)
    expected_loss, expected_grad = torch_loss_and_grad(F.cross_entropy, scores, y)
    assert np.isfinite(loss) and loss == pytest.approx(expected_loss, rel=1e-12)
    assert loss == pytest.approx((2e4 + 2e4 + np.log(2)) / 2, rel=1e-12)
    np.testing.assert_allclose(dscores, expected_grad, **TOL)


def test_initial_softmax_loss_is_log_of_the_class_count():
    # The sanity check from the lecture: equal scores give ln C (1.0986 for 3 classes).
    loss, _ = softmax_loss(np.zeros((5, 3)), np.array([0, 1, 2, 0, 1]))
    assert loss == pytest.approx(np.log(3)) and round(loss, 4) == 1.0986


@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0])
@given(case=st.one_of(scores_and_labels(), scores_and_labels(elements=WIDE)))
def test_svm_loss_is_num_classes_times_torch_multi_margin_loss(margin, case):
    scores, y = case
    c = scores.shape[1]
    loss, dscores = svm_loss(scores, y, margin=margin)
    expected_loss, expected_grad = torch_loss_and_grad(
        lambda s, t: F.multi_margin_loss(s, t, p=1, margin=margin), scores, y
    )
    assert loss == pytest.approx(c * expected_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dscores, c * expected_grad, **TOL)


def test_svm_loss_by_hand():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0]])
    y = np.array([0, 1])
    loss, dscores = svm_loss(scores, y)
    # Row 0: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9; row 1: 0.
    assert loss == pytest.approx(2.9 / 2)
    np.testing.assert_allclose(dscores, [[-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    # Equal scores: each wrong class violates by exactly the margin.
    assert svm_loss(np.zeros((4, 5)), np.zeros(4, dtype=int), margin=0.5)[0] == pytest.approx(2.0)


def test_svm_gradient_is_zero_at_the_kink():
    scores = np.array([[1.0, 0.0, 2.0]])  # class 1 violates by exactly 0
    _, dscores = svm_loss(scores, np.array([0]))
    np.testing.assert_array_equal(dscores, [[-1.0, 0.0, 1.0]])


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_gradients_pass_the_numerical_check(loss_fn, seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((6, 4)) * 2
    y = rng.integers(0, 4, 6)
    _, dscores = loss_fn(scores, y)
    numeric = numerical_gradient(lambda s: loss_fn(s, y)[0], scores)
    assert rel_error(dscores, numeric) < 1e-7


def test_numerical_check_catches_a_planted_loss_bug():
    rng = np.random.default_rng(3)
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    _, dscores = softmax_loss(scores, y)
    numeric = numerical_gradient(lambda s: softmax_loss(s, y)[0], scores)
    assert rel_error(dscores * scores.shape[0], numeric) > 0.5  # forgot to divide by N


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_bad_input(loss_fn):
    scores = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 4\), got min 0 and max 4"):
        loss_fn(scores, np.array([0, 4, 1]))
    with pytest.raises(
        ValueError, match=r"y must have shape \(3,\) to match the 3 rows, got \(2,\)"
    ):
        loss_fn(scores, np.array([0, 1]))
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        loss_fn(scores, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"scores must be 2-D, got shape \(4,\)"):
        loss_fn(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=r"scores must hold at least one row, got shape \(0, 4\)"):
        loss_fn(np.zeros((0, 4)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("margin", [float("nan"), float("inf"), -float("inf")])
def test_svm_margin_must_be_finite(margin):
    scores, y = np.zeros((2, 3)), np.array([0, 1])
    # torch takes a NaN margin and reports a loss of 0: every comparison with NaN is False.
    if np.isnan(margin):
        assert F.multi_margin_loss(torch.zeros(2, 3), torch.tensor([0, 1]), margin=margin) == 0
    with pytest.raises(ValueError, match=f"margin must be a finite number, got {margin}"):
        svm_loss(scores, y, margin=margin)
