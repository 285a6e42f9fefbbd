"""Data augmentation for the digits: random integer shifts with zero fill.

A shift by ``(dy, dx)`` moves the ink ``dy`` pixels down and ``dx`` pixels right:
:math:`\\text{out}[i, j] = \\text{img}[i - dy, j - dx]` where that pixel exists, and 0
elsewhere. Ink pushed over the border is lost, so the total pixel mass is preserved exactly
when the shifted-out rows and columns were blank.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import as_array, make_rng
from coursekit.data.digits import IMAGE_SHAPE, as_images


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def shift_image(image, dy: int, dx: int) -> np.ndarray:
    """Shift one 2-D image by whole pixels, filling with zeros.

    Parameters
    ----------
    image : array-like of shape (H, W), or (64,) for a flattened 8×8 digit
    dy, dx : int
        Rows down (negative: up) and columns right (negative: left).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``:
        :math:`\\text{out}[i, j] = \\text{image}[i - dy, j - dx]`, zero where that is outside.
    """
    image = as_array(image, "image")
    dy, dx = _check_int(dy, "dy"), _check_int(dx, "dx")
    flat = image.ndim == 1
    if flat:
        if image.shape != (IMAGE_SHAPE[0] * IMAGE_SHAPE[1],):
            raise ValueError(f"a 1-D image must be a flattened 8x8 digit (64,), got {image.shape}")
        image = image.reshape(IMAGE_SHAPE)
    elif image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W) or a flattened digit (64,), got {image.shape}")
    h, w = image.shape
    out = np.zeros_like(image)
    if abs(dy) >= h or abs(dx) >= w:  # everything moved out of the frame
        return out.reshape(-1) if flat else out
    # Copy the overlap of the source and destination windows.
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out.reshape(-1) if flat else out


def shift_digits(
    X,
    max_shift: int = 1,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    return_shifts: bool = False,
):
    """Shift every digit by its own random ``(dy, dx)``, each uniform in ``[-max_shift, max_shift]``.

    Vectorized: the batch is zero-padded by ``max_shift`` on every side and each output pixel
    gathers :math:`\\text{padded}[i - dy + m, j - dx + m]` (``m = max_shift``), which equals
    :func:`shift_image` applied image by image.

    Parameters
    ----------
    X : array-like of shape (N, 64) or (N, 8, 8)
        Digits as rows (``load_digits``) or as images.
    max_shift : int, default 1
        Largest shift in pixels along each axis (0 returns a copy).
    rng, seed
        Source of randomness (exactly one of them).
    return_shifts : bool, default False
        Also return the ``(N, 2)`` array of ``(dy, dx)`` used.

    Returns
    -------
    ndarray
        The shifted digits, same shape and dtype as ``X``; with ``return_shifts`` a tuple
        ``(shifted, shifts)``.
    """
    images, shape = as_images(X, "X")
    m = _check_int(max_shift, "max_shift")
    if m < 0:
        raise ValueError(f"max_shift must be >= 0, got {m}")
    rng = make_rng(rng, seed)
    n, h, w = images.shape
    shifts = rng.integers(-m, m + 1, size=(n, 2))
    padded = np.pad(images, ((0, 0), (m, m), (m, m)))
    rows = np.arange(h)[None, :, None] - shifts[:, 0, None, None] + m
    cols = np.arange(w)[None, None, :] - shifts[:, 1, None, None] + m
    out = padded[np.arange(n)[:, None, None], rows, cols].reshape(shape)
    return (out, shifts) if return_shifts else out
