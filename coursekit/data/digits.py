"""The 8×8 handwritten digits that ship with coursekit, and seeded train/val/test splits.

The data (1797 grey-scale images of the digits 0..9, pixel values 0..16) are the test part of
the UCI "Optical Recognition of Handwritten Digits" data set by E. Alpaydin and C. Kaynak
(1998), CC BY 4.0; ``DIGITS.md`` beside this file gives the attribution and how the file was
made. Everything is read from the package, never from the network.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from coursekit._validation import as_array, check_probability, make_rng

NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8)
MAX_PIXEL = 16


def load_digits(*, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load the 1797 digits as a data matrix and labels.

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel values by 16 so that ``X`` lies in ``[0, 1]``:
        :math:`x = \\text{pixel} / 16`. With ``scale=False`` ``X`` holds the raw counts 0..16.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        One flattened 8×8 image per row (row-major, ``X[i].reshape(8, 8)`` is the image).
    y : ndarray of shape (1797,), int64
        The digit shown, 0..9.
    """
    if not isinstance(scale, (bool, np.bool_)):
        raise TypeError(f"scale must be True or False, got {type(scale).__name__}")
    with resources.files("coursekit.data").joinpath("digits.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as archive:
            images = archive["images"]
            labels = archive["labels"]
    X = images.reshape(images.shape[0], -1).astype(np.float64)
    if scale:
        X /= MAX_PIXEL
    return X, labels.astype(np.int64)


def as_images(X, name: str = "X") -> tuple[np.ndarray, tuple[int, ...]]:
    """View digits given as ``(N, 64)`` rows or ``(N, 8, 8)`` images as ``(N, 8, 8)``.

    Returns the images and the shape ``X`` had, so results can be given back in that shape.
    """
    X = as_array(X, name)
    size = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if X.ndim == 2 and X.shape[1] == size:
        return X.reshape(-1, *IMAGE_SHAPE), X.shape
    if X.ndim == 3 and X.shape[1:] == IMAGE_SHAPE:
        return X, X.shape
    raise ValueError(f"{name} must have shape (N, {size}) or (N, 8, 8), got {X.shape}")


def stratified_split_indices(
    y: np.ndarray, fractions: tuple[float, ...], *, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split ``range(len(y))`` into ``len(fractions) + 1`` disjoint, class-balanced parts.

    For every class ``c`` with :math:`n_c` samples, part ``k`` (``k < len(fractions)``) receives
    :math:`\\operatorname{round}(f_k n_c)` randomly chosen samples of that class; the last part
    receives the rest. Each part is then shuffled, so classes are interleaved.

    Parameters
    ----------
    y : ndarray of shape (N,), integer
        Class labels.
    fractions : tuple of float
        The fractions of the leading parts; their sum must be below 1.
    rng : numpy.random.Generator
        The only source of randomness, so equal generator states give equal splits.

    Returns
    -------
    list of ndarray of int64
        The index arrays, leading parts first, the remainder last.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        start = 0
        for k, f in enumerate(fractions):
            count = int(round(f * members.size))
            parts[k].append(members[start : start + count])
            start += count
        parts[-1].append(members[start:])
    return [rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts]


def digits_splits(
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    standardize: bool = False,
    scale: bool = True,
) -> dict[str, np.ndarray]:
    """Seeded, stratified train/validation/test splits of the digits.

    Every class is split in the same proportions (``round(fraction * class size)`` samples of
    each class go to validation and to test, the rest to training), so the splits keep the
    class balance; the same ``seed`` always gives the same split.

    Parameters
    ----------
    seed : int, default 0
        Seed of the generator that shuffles the samples.
    val_fraction, test_fraction : float, default 0.2
        Fractions of each class held out for validation and test; each in ``[0, 1)`` with a sum
        below 1.
    standardize : bool, default False
        Standardize every feature with the **training** statistics,
        :math:`x' = (x - \\mu_\\text{train}) / \\sigma_\\text{train}`, applied to all three
        splits (a feature that is constant on the training set, like a corner pixel, is only
        centred: its :math:`\\sigma` is taken as 1). The statistics are returned as ``mean``
        and ``std``.
    scale : bool, default True
        Passed to :func:`load_digits` (pixels divided by 16).

    Returns
    -------
    dict
        ``X_train, y_train, X_val, y_val, X_test, y_test`` (float64 ``X`` of shape
        ``(n, 64)``, int64 ``y``), plus ``mean`` and ``std`` of shape ``(64,)`` when
        ``standardize`` is true. With the defaults the sizes are 1079 / 359 / 359.
    """
    val_fraction = check_probability(val_fraction, "val_fraction")
    test_fraction = check_probability(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "val_fraction + test_fraction must be below 1 to leave training data, "
            f"got {val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be True or False, got {type(standardize).__name__}")
    X, y = load_digits(scale=scale)
    val_idx, test_idx, train_idx = stratified_split_indices(
        y, (val_fraction, test_fraction), rng=make_rng(seed=seed)
    )
    out = {
        "X_train": X[train_idx],
        "y_train": y[train_idx],
        "X_val": X[val_idx],
        "y_val": y[val_idx],
        "X_test": X[test_idx],
        "y_test": y[test_idx],
    }
    if standardize:
        mean = out["X_train"].mean(axis=0)
        std = out["X_train"].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        for split in ("train", "val", "test"):
            out[f"X_{split}"] = (out[f"X_{split}"] - mean) / std
        out["mean"] = mean
        out["std"] = std
    return out
