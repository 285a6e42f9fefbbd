"""Generated 2-D (and correlated Gaussian) problems for the lectures.

Every generator takes an explicit ``seed`` (or ``rng``) and returns float64 inputs and int64
labels, so a figure or a printed number in a lecture is reproducible.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array, check_nonnegative, check_positive_int, make_rng


def make_spirals(
    n_per_class: int = 100,
    n_classes: int = 3,
    noise: float = 0.2,
    *,
    turns: float = 0.65,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: the classic problem no linear model solves.

    Sample ``i`` of class ``c`` sits at radius :math:`r_i = i / (n - 1)` and angle
    :math:`\\theta_i = 2\\pi(c / C + \\text{turns}\\, r_i) + \\varepsilon_i`,
    :math:`\\varepsilon_i \\sim \\mathcal N(0, \\text{noise}^2)`, i.e.
    :math:`x_i = r_i(\\cos\\theta_i, \\sin\\theta_i)`.

    Parameters
    ----------
    n_per_class : int, default 100
        Points per class.
    n_classes : int, default 3
        Number of arms / classes ``C``.
    noise : float, default 0.2
        Standard deviation of the angular noise (radians).
    turns : float, default 0.65
        How many full turns each arm makes from the centre to radius 1.
    rng, seed
        Source of randomness (exactly one of them).

    Returns
    -------
    X : ndarray of shape (n_classes * n_per_class, 2), float64
    y : ndarray of shape (n_classes * n_per_class,), int64
        Class-major order: the first ``n_per_class`` rows are class 0.
    """
    n = check_positive_int(n_per_class, "n_per_class")
    n_classes = check_positive_int(n_classes, "n_classes")
    noise = check_nonnegative(noise, "noise")
    turns = check_nonnegative(turns, "turns")
    rng = make_rng(rng, seed)
    r = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(1)
    classes = np.arange(n_classes)[:, None]
    theta = 2 * np.pi * (classes / n_classes + turns * r) + noise * rng.standard_normal(
        (n_classes, n)
    )
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1).reshape(-1, 2)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n)
    return X, y


def make_blobs(
    n_per_class: int = 100,
    n_classes: int = 3,
    *,
    std: float = 0.5,
    radius: float = 2.0,
    centers=None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, one per class.

    Class ``c`` is :math:`\\mathcal N(\\mu_c, \\text{std}^2 I)`. Unless ``centers`` is given,
    the centres are spread evenly on a circle,
    :math:`\\mu_c = \\text{radius}\\,(\\cos(2\\pi c / C), \\sin(2\\pi c / C))`.

    Parameters
    ----------
    n_per_class : int, default 100
    n_classes : int, default 3
    std : float, default 0.5
        Standard deviation of every coordinate around the centre.
    radius : float, default 2.0
        Radius of the circle of default centres.
    centers : array-like of shape (n_classes, D), optional
        Explicit centres (any dimension ``D``); overrides ``radius``.
    rng, seed
        Source of randomness (exactly one of them).

    Returns
    -------
    X : ndarray of shape (n_classes * n_per_class, D), float64
    y : ndarray of shape (n_classes * n_per_class,), int64
        Class-major order.
    """
    n = check_positive_int(n_per_class, "n_per_class")
    n_classes = check_positive_int(n_classes, "n_classes")
    std = check_nonnegative(std, "std")
    radius = check_nonnegative(radius, "radius")
    if centers is None:
        angle = 2 * np.pi * np.arange(n_classes) / n_classes
        centers = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        centers = as_array(centers, "centers").astype(np.float64)
        if centers.ndim != 2 or centers.shape[0] != n_classes:
            raise ValueError(
                f"centers must have shape (n_classes, D) = ({n_classes}, D), got {centers.shape}"
            )
    rng = make_rng(rng, seed)
    noise = std * rng.standard_normal((n_classes, n, centers.shape[1]))
    X = (centers[:, None, :] + noise).reshape(-1, centers.shape[1])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n)
    return X, y


def make_three_class(
    n_train: int = 120,
    n_test: int = 60,
    *,
    noise: float = 1.0,
    turns: float = 1.5,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The planar 3-class problem of the regularization lecture (Adam vs AdamW vs DataGrad).

    The lecture source prints only the training curves (initial cost 1.0986 ≈ ln 3, train
    accuracy 0.86 against test accuracy 0.32–0.36), not its data. coursekit therefore fixes
    its own version: three spiral arms (:func:`make_spirals`, 1.5 turns) with strong angular
    noise (1 radian), 120 training points and a separate test set drawn from the same
    distribution. The arms overlap, so a network can fit the training points much better than
    it generalizes (a 2-50-50-3 ReLU net trained with Adam for 2000 full-batch steps reaches
    about 0.97 training against 0.53 test accuracy), which is what the lecture's comparison
    of regularizers needs. The initial loss of any classifier whose initial scores are near
    zero (small initial weights) is :math:`-\\ln(1/3) = \\ln 3 \\approx 1.0986`.

    Parameters
    ----------
    n_train : int, default 120
        Training points (rounded down to a multiple of 3: equal classes).
    n_test : int, default 60
        Test points (rounded down to a multiple of 3).
    noise : float, default 1.0
        Angular noise of the spirals (radians).
    turns : float, default 1.5
        Turns of each spiral arm.
    seed : int, default 0
        The training set comes from ``seed`` and the test set from an independent stream
        derived from it.

    Returns
    -------
    dict
        ``X_train`` (n_train, 2), ``y_train``, ``X_test`` (n_test, 2), ``y_test``; each set
        shuffled.
    """
    n_train = check_positive_int(n_train, "n_train")
    n_test = check_positive_int(n_test, "n_test")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n < 3:
            raise ValueError(f"{name} must be at least 3 (one point per class), got {n}")
    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    out = {}
    for split, n, ss in (("train", n_train, train_ss), ("test", n_test, test_ss)):
        rng = np.random.default_rng(ss)
        X, y = make_spirals(n // 3, 3, noise, turns=turns, rng=rng)
        order = rng.permutation(y.size)
        out[f"X_{split}"], out[f"y_{split}"] = X[order], y[order]
    return out


def correlated_covariance(std=(2.0, 0.5), correlation: float = 0.8) -> np.ndarray:
    """The 2×2 covariance with standard deviations ``std`` and correlation ``correlation``.

    .. math:: \\Sigma = \\begin{pmatrix} s_1^2 & \\rho s_1 s_2 \\\\ \\rho s_1 s_2 & s_2^2 \\end{pmatrix}
    """
    std = as_array(std, "std").astype(np.float64)
    if std.shape != (2,):
        raise ValueError(f"std must hold two standard deviations, got shape {std.shape}")
    if np.any(std < 0):
        raise ValueError(f"std must be >= 0, got {std.tolist()}")
    if isinstance(correlation, bool) or not isinstance(
        correlation, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"correlation must be a number in [-1, 1], got {type(correlation).__name__}"
        )
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
    off = correlation * std[0] * std[1]
    return np.array([[std[0] ** 2, off], [off, std[1] ** 2]])


def make_correlated_gaussian(
    n: int = 500,
    cov=None,
    *,
    std=(2.0, 0.5),
    correlation: float = 0.8,
    mean=None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Samples of :math:`\\mathcal N(\\mu, \\Sigma)` for the preprocessing lecture (PCA, whitening).

    With ``cov=None`` the data are 2-D with :math:`\\Sigma` built from ``std`` and
    ``correlation`` (:func:`correlated_covariance`); otherwise ``cov`` (symmetric positive
    semi-definite, ``D×D``) is used as given. Samples are :math:`x = \\mu + L z` with
    :math:`z \\sim \\mathcal N(0, I)` and :math:`L L^\\top = \\Sigma` from the eigendecomposition.

    Parameters
    ----------
    n : int, default 500
        Number of samples.
    cov : array-like of shape (D, D), optional
        Covariance matrix.
    std : pair of float, default (2.0, 0.5)
        Standard deviations of the two coordinates when ``cov`` is not given.
    correlation : float, default 0.8
        Their correlation coefficient, in [-1, 1].
    mean : array-like of shape (D,), optional
        The mean :math:`\\mu` (default zero; a non-zero mean shows why data are centred first).
    rng, seed
        Source of randomness (exactly one of them).

    Returns
    -------
    X : ndarray of shape (n, D), float64
    """
    n = check_positive_int(n, "n")
    if cov is None:
        cov = correlated_covariance(std, correlation)
    else:
        cov = as_array(cov, "cov").astype(np.float64)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"cov must be a square (D, D) matrix, got shape {cov.shape}")
        if not np.allclose(cov, cov.T):
            raise ValueError("cov must be symmetric")
    evals, evecs = np.linalg.eigh(cov)
    if evals.min() < -1e-10 * max(1.0, abs(evals.max())):
        raise ValueError(
            f"cov must be positive semi-definite, got smallest eigenvalue {evals.min():.3g}"
        )
    dim = cov.shape[0]
    mean = np.zeros(dim) if mean is None else as_array(mean, "mean").astype(np.float64)
    if mean.shape != (dim,):
        raise ValueError(f"mean must have shape ({dim},) to match cov, got {mean.shape}")
    factor = evecs * np.sqrt(np.clip(evals, 0.0, None))
    z = make_rng(rng, seed).standard_normal((n, dim))
    return mean + z @ factor.T
