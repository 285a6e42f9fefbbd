"""The bundled digits, the splits, the toy problems and the shift augmentation."""

from __future__ import annotations

import hashlib
import socket
from importlib import resources

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeded_rngs

from coursekit.data import (
    as_images,
    correlated_covariance,
    digits_splits,
    load_digits,
    make_blobs,
    make_correlated_gaussian,
    make_spirals,
    make_three_class,
    shift_digits,
    shift_image,
)

# -- digits ------------------------------------------------------------------------------------


def test_load_digits_shapes_values_and_checksum():
    X, y = load_digits(scale=False)
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.array_equal(X, np.round(X))
    assert set(np.unique(y)) == set(range(10))
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # The checksums documented in DIGITS.md: the shipped file is the documented data.
    pixels = X.astype(np.uint8).reshape(-1, 8, 8)
    assert hashlib.sha256(pixels.tobytes()).hexdigest().startswith("8f26b2bd9d135c25")
    assert int(X.sum()) == 561718


def test_load_digits_scales_to_unit_interval():
    X_raw, y_raw = load_digits(scale=False)
    X, y = load_digits()
    np.testing.assert_array_equal(X, X_raw / 16)
    np.testing.assert_array_equal(y, y_raw)
    assert X.min() == 0.0 and X.max() == 1.0


def test_digits_load_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("coursekit.data tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    X, y = load_digits()
    assert X.shape == (1797, 64)
    assert digits_splits()["X_train"].shape[1] == 64


def test_attribution_file_ships_with_the_data():
    package = resources.files("coursekit.data")
    assert package.joinpath("digits.npz").is_file()
    text = package.joinpath("DIGITS.md").read_text(encoding="utf-8")
    for needle in (
        "Alpaydin",
        "Kaynak",
        "1998",
        "CC BY 4.0",
        "Optical Recognition of Handwritten Digits",
    ):
        assert needle in text
    assert "savez_compressed" in text  # how the file was produced


def test_splits_are_disjoint_stratified_and_cover_everything():
    d = digits_splits(seed=3)
    X_all, y_all = load_digits()
    sizes = [d[f"y_{s}"].size for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes == [1079, 359, 359]
    # Every sample appears in exactly one split (rows are unique images up to duplicates, so
    # compare multisets of rows via sorting).
    stacked = np.concatenate([d["X_train"], d["X_val"], d["X_test"]])
    np.testing.assert_array_equal(np.unique(stacked, axis=0), np.unique(X_all, axis=0))
    np.testing.assert_array_equal(
        np.sort(np.concatenate([d["y_train"], d["y_val"], d["y_test"]])), np.sort(y_all)
    )
    # Stratified: each class is split 60/20/20 up to rounding.
    for split, frac in (("val", 0.2), ("test", 0.2)):
        counts = np.bincount(d[f"y_{split}"], minlength=10)
        np.testing.assert_array_equal(counts, np.round(frac * np.bincount(y_all)).astype(int))
    # Shuffled: the training labels are not sorted by class.
    assert np.any(np.diff(d["y_train"]) < 0)


def test_splits_are_deterministic_and_seed_dependent():
    a, b, c = digits_splits(seed=7), digits_splits(seed=7), digits_splits(seed=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["y_train"], c["y_train"])


def test_standardize_uses_training_statistics():
    d = digits_splits(seed=1, standardize=True)
    raw = digits_splits(seed=1)
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0.0, atol=1e-12)
    varying = raw["X_train"].std(axis=0) > 0
    np.testing.assert_allclose(d["X_train"].std(axis=0)[varying], 1.0, rtol=1e-12)
    # The validation set is transformed with the training mean/std, not its own.
    np.testing.assert_allclose(d["X_val"], (raw["X_val"] - d["mean"]) / d["std"], rtol=1e-12)
    assert np.all(np.isfinite(d["X_test"]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"val_fraction": -0.1}, ValueError, "val_fraction must be in"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction must be in"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, ValueError, "must be below 1"),
        ({"val_fraction": "0.2"}, TypeError, "val_fraction must be a number"),
        ({"standardize": "yes"}, TypeError, "standardize must be True or False"),
    ],
)
def test_split_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        digits_splits(**kwargs)


def test_as_images_rejects_wrong_shapes():
    assert as_images(np.zeros((3, 64)))[0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"\(N, 64\) or \(N, 8, 8\), got \(3, 63\)"):
        as_images(np.zeros((3, 63)))


# -- toy problems ------------------------------------------------------------------------------


@given(n=st.integers(1, 30), c=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_spirals_shapes_labels_and_determinism(n, c, seed):
    X, y = make_spirals(n, c, 0.2, seed=seed)
    assert X.shape == (n * c, 2) and X.dtype == np.float64
    np.testing.assert_array_equal(y, np.repeat(np.arange(c), n))
    assert np.all(np.linalg.norm(X, axis=1) <= 1.0 + 1e-12)  # radius r in [0, 1]
    X2, _ = make_spirals(n, c, 0.2, seed=seed)
    np.testing.assert_array_equal(X, X2)


def test_spirals_without_noise_follow_the_formula():
    X, y = make_spirals(5, 3, 0.0, seed=0)
    r = np.linspace(0, 1, 5)
    theta = 2 * np.pi * (1 / 3 + 0.65 * r)  # class 1
    np.testing.assert_allclose(X[y == 1], np.column_stack([r * np.cos(theta), r * np.sin(theta)]))


def test_blobs_center_on_the_circle():
    X, y = make_blobs(2000, 4, std=0.1, radius=3.0, seed=0)
    means = np.stack([X[y == c].mean(axis=0) for c in range(4)])
    angles = 2 * np.pi * np.arange(4) / 4
    expected = 3.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    np.testing.assert_allclose(means, expected, atol=0.02)
    X3, _ = make_blobs(5, 2, centers=[[0, 0, 0], [1, 1, 1]], seed=0)
    assert X3.shape == (10, 3)
    with pytest.raises(ValueError, match=r"centers must have shape \(n_classes, D\) = \(3, D\)"):
        make_blobs(5, 3, centers=[[0, 0]], seed=0)


def test_three_class_problem():
    d = make_three_class()
    assert d["X_train"].shape == (120, 2) and d["X_test"].shape == (60, 2)
    assert np.bincount(d["y_train"]).tolist() == [40, 40, 40]
    again = make_three_class()
    for key in d:
        np.testing.assert_array_equal(d[key], again[key])
    # train and test are different draws
    assert not np.allclose(d["X_train"][:60], d["X_test"])
    # A classifier with zero scores starts at ln 3, the seed's 1.0986.
    from coursekit.losses import softmax_loss

    loss, _ = softmax_loss(np.zeros((120, 3)), d["y_train"])
    assert loss == pytest.approx(1.0986, abs=1e-4)


def test_three_class_problem_invites_overfitting():
    from coursekit.models import FullyConnectedNet
    from coursekit.optim import Adam

    d = make_three_class()
    model = FullyConnectedNet(2, [50, 50], 3, init=0.1, seed=0)
    assert model.loss(d["X_train"], d["y_train"])[0] == pytest.approx(np.log(3), abs=0.01)
    opt = Adam(model.params, lr=1e-2)
    for _ in range(600):
        opt.step(model.loss(d["X_train"], d["y_train"])[1])
    train_acc = np.mean(model.predict(d["X_train"]) == d["y_train"])
    test_acc = np.mean(model.predict(d["X_test"]) == d["y_test"])
    assert train_acc >= 0.9 and test_acc <= train_acc - 0.25


def test_correlated_gaussian_covariance():
    cov = correlated_covariance((2.0, 0.5), 0.8)
    np.testing.assert_allclose(cov, [[4.0, 0.8], [0.8, 0.25]])
    X = make_correlated_gaussian(200_000, std=(2.0, 0.5), correlation=0.8, mean=[1, -1], seed=0)
    np.testing.assert_allclose(X.mean(axis=0), [1, -1], atol=0.02)
    np.testing.assert_allclose(np.cov(X.T), cov, atol=0.03)
    # An explicit 3-D covariance, including a singular one (correlation 1).
    full = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]])
    X3 = make_correlated_gaussian(200_000, full, seed=1)
    np.testing.assert_allclose(np.cov(X3.T), full, atol=0.03)
    X1 = make_correlated_gaussian(100, std=(1.0, 1.0), correlation=1.0, seed=0)
    np.testing.assert_allclose(X1[:, 0], X1[:, 1], atol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: make_spirals(-1, seed=0), ValueError, "n_per_class must be a positive integer"),
        (lambda: make_spirals(10, 0, seed=0), ValueError, "n_classes must be a positive integer"),
        (lambda: make_spirals(2.5, seed=0), TypeError, "n_per_class must be an integer"),
        (lambda: make_spirals(10, noise=-1, seed=0), ValueError, "noise must be >= 0"),
        (lambda: make_spirals(10), ValueError, "seed"),
        (lambda: make_blobs(-3, seed=0), ValueError, "n_per_class must be a positive integer"),
        (lambda: make_three_class(n_train=2), ValueError, "n_train must be at least 3"),
        (lambda: make_correlated_gaussian(-5, seed=0), ValueError, "n must be a positive"),
        (lambda: make_correlated_gaussian(5, correlation=1.5, seed=0), ValueError, "correlation"),
        (
            lambda: make_correlated_gaussian(5, [[1, 2], [2, 1]], seed=0),
            ValueError,
            "semi-definite",
        ),
        (lambda: make_correlated_gaussian(5, [[1, 0.1], [0, 1]], seed=0), ValueError, "symmetric"),
        (
            lambda: make_correlated_gaussian(5, np.eye(2), mean=[0, 0, 0], seed=0),
            ValueError,
            r"\(2,\)",
        ),
    ],
)
def test_toy_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- augmentation ------------------------------------------------------------------------------


def test_shift_image_moves_ink_down_and_right():
    img = np.zeros((8, 8))
    img[2, 3] = 5.0
    out = shift_image(img, 1, -2)
    assert out[3, 1] == 5.0 and out.sum() == 5.0
    assert shift_image(img, 0, 0) is not img
    np.testing.assert_array_equal(shift_image(img, 0, 0), img)
    np.testing.assert_array_equal(shift_image(img, 9, 0), np.zeros((8, 8)))  # all gone
    flat = shift_image(img.ravel(), 1, -2)
    np.testing.assert_array_equal(flat, out.ravel())


@given(dy=st.integers(-9, 9), dx=st.integers(-9, 9))
def test_shift_image_matches_roll_with_zero_fill(dy, dx):
    img = np.arange(64, dtype=float).reshape(8, 8) + 1
    expected = np.roll(img, (dy, dx), axis=(0, 1))
    rows, cols = np.indices((8, 8))
    outside = (rows - dy < 0) | (rows - dy >= 8) | (cols - dx < 0) | (cols - dx >= 8)
    expected[outside] = 0.0
    np.testing.assert_array_equal(shift_image(img, dy, dx), expected)


@given(rng=seeded_rngs(), max_shift=st.integers(0, 3), n=st.integers(1, 12))
def test_shift_digits_equals_per_image_shifts(rng, max_shift, n):
    X = rng.integers(0, 17, size=(n, 64)).astype(np.float64)
    out, shifts = shift_digits(X, max_shift, rng=rng, return_shifts=True)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert np.all(np.abs(shifts) <= max_shift)
    for i in range(n):
        np.testing.assert_array_equal(out[i], shift_image(X[i], *shifts[i]))


@given(rng=seeded_rngs(), max_shift=st.integers(1, 2))
def test_shifts_preserve_pixel_mass_when_nothing_falls_off(rng, max_shift):
    images = np.zeros((20, 8, 8))
    inner = slice(max_shift, 8 - max_shift)
    images[:, inner, inner] = rng.integers(0, 17, size=(20, 8 - 2 * max_shift, 8 - 2 * max_shift))
    out = shift_digits(images, max_shift, rng=rng)
    assert out.shape == (20, 8, 8)
    np.testing.assert_array_equal(out.sum(axis=(1, 2)), images.sum(axis=(1, 2)))


def test_shift_digits_actually_moves_images_and_is_seeded():
    X, _ = load_digits()
    a = shift_digits(X[:200], 1, seed=0)
    b = shift_digits(X[:200], 1, seed=0)
    np.testing.assert_array_equal(a, b)
    moved = np.any(a != X[:200], axis=1).mean()
    assert 0.75 < moved < 1.0  # 8 of the 9 shifts move the image
    np.testing.assert_array_equal(shift_digits(X[:5], 0, seed=0), X[:5])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: shift_digits(np.zeros((2, 64)), -1, seed=0), ValueError, "max_shift must be >= 0"),
        (
            lambda: shift_digits(np.zeros((2, 64)), 1.5, seed=0),
            TypeError,
            "max_shift must be an integer",
        ),
        (lambda: shift_digits(np.zeros((2, 10)), 1, seed=0), ValueError, r"got \(2, 10\)"),
        (lambda: shift_image(np.zeros((8, 8)), 0.5, 0), TypeError, "dy must be an integer"),
        (lambda: shift_image(np.zeros(10), 1, 0), ValueError, r"\(64,\), got \(10,\)"),
    ],
)
def test_augment_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
