r"""How initialization shapes the signals in a deep network: the activation-statistics experiment.

A stack of ``depth`` fully connected layers of ``width`` units, ``h_l = f(h_{l-1} W_l)``
(biases zero), is fed standard normal data. Each pre-activation sums ``width`` products, so
its variance is about :math:`\text{width}\cdot\sigma_w^2\cdot\mathbb E[h_{l-1}^2]`: the weight
scale decides whether the activations shrink to zero, saturate, or keep their spread, and
the same factor :math:`W_l^\top` scales the gradients on the way back. Typical outcomes with
500 units and 10 layers:

* tanh, ``std=0.01``: every layer multiplies the spread by about
  :math:`0.01\sqrt{500} \approx 0.22`; by layer 10 the activations are essentially zero,
  and the gradient shrinks by the same factor on each layer down (std about
  :math:`10^{-6}` at layer 1): here the gradients do vanish.
* tanh, ``std=1.0``: pre-activations have std about 22, so about 90 % of the units sit
  within 0.01 of :math:`\pm 1` (activation std 0.98 in every layer), where
  :math:`\tanh' < 0.01`. Each saturated unit passes almost no gradient, yet the gradients
  **explode** towards the input rather than vanish: the backward pass multiplies by
  :math:`W_l^\top` too, which scales by about :math:`1.0 \cdot \sqrt{500} \approx 22`, while
  the derivatives scale by their root mean square, about 0.155 (carried by the 10 % of
  units that are not saturated). Each layer down multiplies the gradient's std by about
  3.5: from 1 at the top to about :math:`8 \times 10^4` at layer 1 and
  :math:`2.6 \times 10^5` at the data (seed 0). Saturation ruins learning because the
  surviving gradient flows through few units and is huge and erratic, not because it is
  small.
* tanh, Xavier: the spread decays only slowly (std 0.6 → about 0.2 over 10 layers).
* ReLU, Xavier: ReLU zeroes half of its inputs, so the variance halves at every layer
  (std ratio :math:`1/\sqrt 2`).
* ReLU, He (variance :math:`2/\text{fan\_in}`): the factor 2 compensates and the std stays
  roughly constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coursekit._validation import check_positive_int
from coursekit.activations import ACTIVATIONS
from coursekit.init import NONLINEARITIES, init_weight
from coursekit.layers import affine_backward, affine_forward

__all__ = ["ActivationStatistics", "activation_statistics"]


@dataclass(frozen=True)
class ActivationStatistics:
    """Per-layer statistics of one run of :func:`activation_statistics`.

    Row ``l`` (1-based layer ``l``, index ``l - 1``) describes the layer's output activation
    :math:`h_l` (which is also the input of layer ``l + 1``) and the gradient of the loss with
    respect to it, :math:`\\partial L/\\partial h_l`.

    Attributes
    ----------
    activation, init : the configuration that was run.
    input_mean, input_std : float
        Of the data :math:`h_0`.
    means, stds : ndarray of shape (depth,)
        Mean and standard deviation over all samples and units of :math:`h_l`.
    input_grad_mean, input_grad_std : float
        Of :math:`\\partial L/\\partial h_0` (the gradient that reaches the data).
    grad_means, grad_stds : ndarray of shape (depth,)
        Of :math:`\\partial L/\\partial h_l`. The last entry is the upstream gradient itself
        (standard normal); the earlier ones show how it grows or fades on the way back.
    weight_grad_stds : ndarray of shape (depth,)
        Standard deviation of :math:`\\partial L/\\partial W_l = h_{l-1}^\\top \\delta_l`: tiny
        activations make tiny weight updates even where the backward signal survives.
    activations : list of ndarray
        :math:`h_1, \\dots, h_L`, each ``(num_samples, width)``, for per-layer histograms
        (e.g. :func:`coursekit.viz.plot_layer_histograms`).
    gradients : list of ndarray
        :math:`\\partial L/\\partial h_1, \\dots, \\partial L/\\partial h_L`, same shapes.
    """

    activation: str
    init: str | float
    input_mean: float
    input_std: float
    means: np.ndarray
    stds: np.ndarray
    input_grad_mean: float
    input_grad_std: float
    grad_means: np.ndarray
    grad_stds: np.ndarray
    weight_grad_stds: np.ndarray
    activations: list[np.ndarray] = field(repr=False)
    gradients: list[np.ndarray] = field(repr=False)

    @property
    def depth(self) -> int:
        return len(self.means)

    def table(self) -> str:
        """The forward and backward statistics as a text table, one row per layer."""
        init = f"std {self.init:g}" if isinstance(self.init, float) else self.init
        lines = [
            f"activation {self.activation}, init {init}",
            f"{'layer':>5}  {'act mean':>10}  {'act std':>10}  {'grad mean':>10}  {'grad std':>10}",
        ]
        rows = [
            ("input", self.input_mean, self.input_std, self.input_grad_mean, self.input_grad_std)
        ]
        rows += [
            (str(i + 1), self.means[i], self.stds[i], self.grad_means[i], self.grad_stds[i])
            for i in range(self.depth)
        ]
        for name, mean, std, grad_mean, grad_std in rows:
            lines.append(
                f"{name:>5}  {mean:>10.6f}  {std:>10.6f}  {grad_mean:>10.2e}  {grad_std:>10.2e}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _gain_name(activation: str) -> str:
    """The :func:`coursekit.init.calculate_gain` name for an activation (He init only)."""
    if activation in ("identity", "linear"):
        return "linear"
    return activation if activation in NONLINEARITIES else "relu"


def activation_statistics(
    *,
    depth: int = 10,
    width: int = 500,
    num_samples: int = 1000,
    activation: str = "tanh",
    init: str | float = "xavier",
    seed: int = 0,
) -> ActivationStatistics:
    r"""Run the deep-network activation experiment forward and backward.

    Draws data :math:`X \sim \mathcal N(0, 1)` of shape ``(num_samples, width)``, pushes it
    through ``depth`` layers :math:`h_l = f(h_{l-1} W_l + 0)` with weights from
    :func:`coursekit.init.init_weight` (shape ``(width, width)``), then back-propagates a
    standard normal upstream gradient :math:`\partial L/\partial h_L` through the same layers.

    Parameters
    ----------
    depth, width, num_samples : int
        Number of layers, units per layer, rows of data (the lecture uses 10, 500, 1000).
    activation : str, default "tanh"
        A key of :data:`coursekit.activations.ACTIVATIONS` (``"tanh"``, ``"relu"``, ...).
    init : {"xavier", "he", "zeros"} or float, default "xavier"
        ``"xavier"``: variance :math:`2/(\text{fan\_in} + \text{fan\_out}) = 1/\text{width}`
        here; ``"he"``: variance :math:`\text{gain}^2/\text{fan\_in}` with the activation's
        gain (:math:`2/\text{width}` for ReLU; activations ``calculate_gain`` does not know,
        such as ELU, use the ReLU gain); a float: that standard deviation.
    seed : int, default 0
        Seeds the data, the weights and the upstream gradient.

    Returns
    -------
    ActivationStatistics
        Print it (or call ``.table()``) for the per-layer table.
    """
    depth = check_positive_int(depth, "depth")
    width = check_positive_int(width, "width")
    num_samples = check_positive_int(num_samples, "num_samples")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, got {activation!r}"
        )
    forward, backward = ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)

    h = rng.standard_normal((num_samples, width))
    input_mean, input_std = float(h.mean()), float(h.std())
    bias = np.zeros(width)
    activations, caches = [], []
    for _ in range(depth):
        w = init_weight(init, (width, width), nonlinearity=_gain_name(activation), rng=rng)
        pre, affine_cache = affine_forward(h, w, bias)
        h, act_cache = forward(pre)
        activations.append(h)
        caches.append((affine_cache, act_cache))

    grad = rng.standard_normal(h.shape)  # dL/dh_L
    gradients, weight_grad_stds = [None] * depth, np.empty(depth)
    for layer in reversed(range(depth)):
        gradients[layer] = grad
        affine_cache, act_cache = caches[layer]
        grad, dw, _ = affine_backward(backward(grad, act_cache), affine_cache)
        weight_grad_stds[layer] = dw.std()

    return ActivationStatistics(
        activation=activation,
        init=float(init) if not isinstance(init, str) else init,
        input_mean=input_mean,
        input_std=input_std,
        means=np.array([a.mean() for a in activations]),
        stds=np.array([a.std() for a in activations]),
        input_grad_mean=float(grad.mean()),
        input_grad_std=float(grad.std()),
        grad_means=np.array([g.mean() for g in gradients]),
        grad_stds=np.array([g.std() for g in gradients]),
        weight_grad_stds=weight_grad_stds,
        activations=activations,
        gradients=gradients,
    )
