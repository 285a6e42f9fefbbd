r"""Dropout: randomly silence units during training.

In training mode every unit is kept with probability :math:`1 - p` and zeroed with
probability :math:`p` (``p`` is the probability of **dropping**, as in ``torch.nn.Dropout``).
A network with dropout is a large ensemble of thinned networks that share weights; at test
time all units are kept and the outputs must be rescaled so that each unit's expected value
matches what the next layer saw during training. There are two places to put that rescaling:

* **inverted dropout** (:func:`dropout_forward`, what PyTorch does): divide the kept units
  by :math:`1 - p` during training, so test time is the identity;
* **vanilla dropout** (:func:`vanilla_dropout_forward`): leave training unscaled and multiply
  by :math:`1 - p` at test time.

Both give the same expected activation, :math:`\mathbb E[\text{out}] = x` (inverted, train and
test) or :math:`(1 - p)\,x` (vanilla, train and test); inverted dropout keeps the test-time
code free of any dropout-specific step.

Some lecture sources write ``p`` for the probability of *keeping* a unit; their ``p`` is our
``1 - p``.
"""

from __future__ import annotations

import numpy as np

from coursekit._validation import (
    check_float_array,
    check_mode,
    check_probability,
    check_same_shape,
    make_rng,
)

__all__ = [
    "dropout_forward",
    "dropout_backward",
    "vanilla_dropout_forward",
    "vanilla_dropout_backward",
]


def _check_p(p) -> float:
    if isinstance(p, (int, float, np.floating)) and not isinstance(p, bool) and p == 1:
        raise ValueError(
            "p must be in [0, 1), got 1: dropping every unit leaves nothing to rescale "
            "(inverted dropout would divide by 1 - p = 0)"
        )
    return check_probability(p, "p")


def _keep_mask(x: np.ndarray, p: float, rng, seed) -> np.ndarray:
    """Boolean mask, True where a unit is kept: ``u >= p`` for ``u ~ Uniform[0, 1)``."""
    rng = make_rng(rng, seed)
    # Generator.random draws float32 or float64 only; other float dtypes use float64.
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return rng.random(x.shape, dtype=dtype) >= p


def _check_inputs(x, p, mode: str, rng, seed) -> tuple[np.ndarray, float, bool]:
    """Validate and say whether a random mask is needed (train mode with p > 0)."""
    x = check_float_array(x, "x")
    p = _check_p(p)
    check_mode(mode)
    if rng is not None or seed is not None:
        make_rng(rng, seed)  # reject a bad rng/seed even where no mask is drawn
    return x, p, mode == "train" and p > 0


def dropout_forward(x, p: float = 0.5, *, mode: str, rng=None, seed=None):
    r"""Inverted dropout.

    .. math::

        \text{train:}\quad m_i = \frac{[u_i \ge p]}{1 - p},\; u_i \sim U[0, 1), \qquad
        \text{out} = x \odot m ; \qquad\qquad \text{test:}\quad \text{out} = x .

    Each unit survives with probability :math:`1 - p` and survivors are scaled by
    :math:`1/(1 - p)`, so :math:`\mathbb E[\text{out}] = x` in both modes. Matches
    ``torch.nn.functional.dropout(x, p, training=(mode == "train"))`` in distribution.

    Parameters
    ----------
    x : ndarray
        Floating-point activations of any shape.
    p : float, default 0.5
        Probability of dropping a unit, in ``[0, 1)``. ``p == 0`` is the identity.
    mode : {"train", "test"}
    rng : numpy.random.Generator, optional
        Source of the mask. Exactly one of ``rng`` and ``seed`` is needed in train mode with
        ``p > 0``; neither is needed otherwise.
    seed : int, optional
        Seed for a new generator (same mask for the same seed).

    Returns
    -------
    out : ndarray, same shape and dtype as ``x`` (a new array in every mode)
    cache : dict
        ``mask``: the scaled mask :math:`m` (same dtype as ``x``), or ``None`` when no units
        were dropped (test mode or ``p == 0``); ``p``; ``mode``.
    """
    x, p, draw = _check_inputs(x, p, mode, rng, seed)
    if not draw:
        return x.copy(), {"mask": None, "p": p, "mode": mode}
    mask = _keep_mask(x, p, rng, seed).astype(x.dtype)
    mask *= x.dtype.type(1.0 / (1.0 - p))
    return x * mask, {"mask": mask, "p": p, "mode": mode}


def dropout_backward(dout, cache):
    r"""Backward pass of :func:`dropout_forward`: :math:`\partial L/\partial x = g \odot m`.

    The same mask that scaled the forward pass scales the upstream gradient ``dout``
    (identity in test mode or for ``p == 0``).
    """
    dout = check_float_array(dout, "dout")
    mask = cache["mask"]
    if mask is None:
        return dout.copy()
    check_same_shape(dout, mask, "dout", "the dropout mask")
    return dout * mask


def vanilla_dropout_forward(x, p: float = 0.5, *, mode: str, rng=None, seed=None):
    r"""Dropout that rescales at test time instead of during training.

    .. math::

        \text{train:}\quad \text{out} = x \odot [u \ge p], \qquad
        \text{test:}\quad \text{out} = (1 - p)\, x .

    Shown in the lecture for comparison with :func:`dropout_forward`: the expected training
    output is :math:`(1 - p) x`, so the test-time network must be scaled down to match it.
    Arguments and the cache are as for :func:`dropout_forward`; here ``mask`` holds the
    unscaled 0/1 mask in train mode and ``None`` in test mode.
    """
    x, p, draw = _check_inputs(x, p, mode, rng, seed)
    if mode == "test":
        return x * x.dtype.type(1.0 - p), {"mask": None, "p": p, "mode": mode}
    if not draw:  # train mode with p == 0 keeps everything
        return x.copy(), {"mask": None, "p": p, "mode": mode}
    mask = _keep_mask(x, p, rng, seed).astype(x.dtype)
    return x * mask, {"mask": mask, "p": p, "mode": mode}


def vanilla_dropout_backward(dout, cache):
    r"""Backward pass of :func:`vanilla_dropout_forward`.

    Train mode: :math:`g \odot [u \ge p]` with the forward mask; test mode: :math:`(1 - p)\,g`.
    """
    dout = check_float_array(dout, "dout")
    if cache["mode"] == "test":
        return dout * dout.dtype.type(1.0 - cache["p"])
    mask = cache["mask"]
    if mask is None:
        return dout.copy()
    check_same_shape(dout, mask, "dout", "the dropout mask")
    return dout * mask
