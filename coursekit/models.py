"""A fully connected classifier assembled from the library's layers.

Architecture, for ``L - 1`` hidden layers of sizes ``hidden_dims``::

    {affine - [batchnorm | layernorm] - activation - [dropout]} x (L - 1) - affine - softmax

Every block calls the layer functions of :mod:`coursekit.layers`, :mod:`coursekit.activations`,
:mod:`coursekit.normalization`, :mod:`coursekit.dropout` and :mod:`coursekit.losses`; the
model only wires them together and adds the L2 penalty of :mod:`coursekit.regularization`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coursekit._validation import (
    as_array,
    check_labels,
    check_mode,
    check_nonnegative,
    check_positive_int,
    check_probability,
)
from coursekit.activations import ACTIVATIONS
from coursekit.dropout import dropout_backward, dropout_forward
from coursekit.init import init_weight
from coursekit.layers import affine_backward, affine_forward
from coursekit.losses import softmax_loss
from coursekit.normalization import (
    batchnorm_backward,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from coursekit.regularization import l2_penalty

NORMALIZATIONS = (None, "batchnorm", "layernorm")
# Activations without a gain in calculate_gain: ELU is used with He's ReLU gain.
_GAIN_NAMES = {"elu": "relu", "identity": "linear"}


class FullyConnectedNet:
    r"""Fully connected softmax classifier with optional normalization, dropout and L2.

    .. math::

        h_0 = x, \qquad
        h_l = \operatorname{drop}\bigl(f(\operatorname{norm}(h_{l-1} W_l + b_l))\bigr),
        \qquad s = h_{L-1} W_L + b_L,

    .. math::

        J = -\frac1N \sum_n \log \operatorname{softmax}(s_n)_{y_n}
            + \frac{\lambda}{2} \sum_{l=1}^{L} \lVert W_l \rVert_F^2 .

    Parameters
    ----------
    input_dim : int
        Number of input features ``D``.
    hidden_dims : sequence of int
        Sizes of the hidden layers (empty: softmax regression).
    num_classes : int
        Number of classes ``C``.
    activation : str, default "relu"
        A key of :data:`coursekit.activations.ACTIVATIONS` (``"relu"``, ``"leaky_relu"``,
        ``"elu"``, ``"sigmoid"``, ``"tanh"``, ...), with its default hyperparameters.
    normalization : {None, "batchnorm", "layernorm"}, default None
        Inserted between each hidden affine layer and its activation, with learnable
        ``gamma{l}`` (ones) and ``beta{l}`` (zeros). BatchNorm's running mean and variance are
        kept in :attr:`buffers` (``running_mean{l}``, ``running_var{l}``; zeros and ones at
        the start, ``momentum=0.1`` as in PyTorch), not in :attr:`params`, because they are
        not trained by gradients.
    dropout : float, default 0.0
        Drop probability ``p`` of inverted dropout after each hidden activation (0: none).
    init : "he", "xavier", "zeros" or float, default "he"
        How every weight matrix starts (:func:`coursekit.init.init_weight`): ``"he"`` is
        Kaiming normal, std :math:`g / \sqrt{\text{fan\_in}}` with the gain :math:`g` of the
        hidden layer's activation (:func:`coursekit.init.calculate_gain`; ReLU's
        :math:`\sqrt 2` for ``"elu"``) and :math:`g = 1` for the output layer; ``"xavier"`` is Glorot normal, std
        :math:`\sqrt{2 / (\text{fan\_in} + \text{fan\_out})}`; ``"zeros"`` shows the
        symmetry problem; a float draws every weight from :math:`\mathcal N(0,
        \text{init}^2)` (the lectures' ``0.01 * randn``). Biases start at 0.
    weight_decay : float, default 0.0
        L2 strength :math:`\lambda`: the loss gains :math:`\frac{\lambda}{2}\sum_l
        \lVert W_l\rVert^2` and each weight gradient :math:`\lambda W_l`. Only the weights
        ``W{l}`` are decayed; biases and the normalization ``gamma``/``beta`` are not (they
        have few degrees of freedom, and shrinking ``gamma`` fights the normalization).
        This is the L2-penalty form; for SGD it equals ``SGD(weight_decay=λ)`` applied to
        the weights only, so do not set both.
    dtype : numpy floating dtype, default numpy.float64
        Dtype of the parameters and computations (inputs are converted to it). Use float64
        for gradient checks. Initial weights are drawn in float64 and then rounded, so a seed
        gives the same network in every dtype.
    seed : int, default 0
        Seeds the initial weights and, through an independent stream, :attr:`rng`.

    Attributes
    ----------
    params : dict of str -> ndarray
        ``W1, b1, gamma1, beta1, ..., WL, bL``; optimizers update these arrays in place.
    buffers : dict of str -> ndarray
        BatchNorm running statistics (empty without BatchNorm).
    rng : numpy.random.Generator
        The source of the dropout masks. Each training forward pass advances it; replace it
        (``model.rng = np.random.default_rng(s)``) to replay the same masks, for example in a
        gradient check.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        num_classes: int,
        *,
        activation: str = "relu",
        normalization: str | None = None,
        dropout: float = 0.0,
        init: str | float = "he",
        weight_decay: float = 0.0,
        dtype=np.float64,
        seed: int = 0,
    ):
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        if isinstance(hidden_dims, (str, bytes)) or not isinstance(
            hidden_dims, (Sequence, np.ndarray)
        ):
            raise TypeError(
                f"hidden_dims must be a list of layer sizes, got {type(hidden_dims).__name__}"
            )
        self.hidden_dims = [
            check_positive_int(h, f"hidden_dims[{i}]") for i, h in enumerate(hidden_dims)
        ]
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}"
            )
        self.normalization = normalization
        self.dropout = check_probability(dropout, "dropout")
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay")
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"dtype must be a floating dtype (float32, float64), got {self.dtype}")
        self.init = init
        self.num_layers = len(self.hidden_dims) + 1

        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        init_rng = np.random.default_rng(init_seed)
        self.rng = np.random.default_rng(dropout_seed)
        self.params: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        dims = [self.input_dim, *self.hidden_dims, self.num_classes]
        for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            hidden = layer < self.num_layers
            self.params[f"W{layer}"] = init_weight(
                init,
                (fan_in, fan_out),
                nonlinearity=_GAIN_NAMES.get(activation, activation) if hidden else "linear",
                rng=init_rng,
            ).astype(self.dtype)  # drawn in float64: a seed gives the same net in any dtype
            self.params[f"b{layer}"] = np.zeros(fan_out, dtype=self.dtype)
            if hidden and self.normalization is not None:
                self.params[f"gamma{layer}"] = np.ones(fan_out, dtype=self.dtype)
                self.params[f"beta{layer}"] = np.zeros(fan_out, dtype=self.dtype)
            if hidden and self.normalization == "batchnorm":
                self.buffers[f"running_mean{layer}"] = np.zeros(fan_out, dtype=self.dtype)
                self.buffers[f"running_var{layer}"] = np.ones(fan_out, dtype=self.dtype)

    # -- forward and backward ---------------------------------------------------------------
    def _check_X(self, X) -> np.ndarray:
        X = as_array(X, "X")
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(
                f"X must have shape (N, {self.input_dim}): the model has input_dim="
                f"{self.input_dim}, but X has shape {X.shape}"
            )
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
            raise TypeError(f"X must be numeric, got dtype {X.dtype}")
        return X.astype(self.dtype, copy=False)

    def _forward(self, X, mode: str):
        check_mode(mode)
        act_forward, _ = ACTIVATIONS[self.activation]
        h = self._check_X(X)
        caches = []
        for layer in range(1, self.num_layers):
            p = self.params
            h, affine_cache = affine_forward(h, p[f"W{layer}"], p[f"b{layer}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                h, norm_cache = batchnorm_forward(
                    h,
                    p[f"gamma{layer}"],
                    p[f"beta{layer}"],
                    self.buffers[f"running_mean{layer}"],
                    self.buffers[f"running_var{layer}"],
                    mode=mode,
                )
            elif self.normalization == "layernorm":
                h, norm_cache = layernorm_forward(h, p[f"gamma{layer}"], p[f"beta{layer}"])
            h, act_cache = act_forward(h)
            drop_cache = None
            if self.dropout > 0:
                h, drop_cache = dropout_forward(h, self.dropout, mode=mode, rng=self.rng)
            caches.append((affine_cache, norm_cache, act_cache, drop_cache))
        L = self.num_layers
        scores, out_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        return scores, (caches, out_cache)

    def scores(self, X, *, mode: str) -> np.ndarray:
        """Class scores (logits) :math:`s` of shape ``(N, C)``.

        ``mode="train"`` uses batch statistics (and updates the running ones) and drops units;
        ``mode="test"`` uses the running statistics and no dropout.
        """
        return self._forward(X, mode)[0]

    def predict(self, X) -> np.ndarray:
        """Predicted labels :math:`\\arg\\max_c s_c` in test mode, shape ``(N,)``, int64."""
        return np.argmax(self.scores(X, mode="test"), axis=1).astype(np.int64)

    def loss(self, X, y) -> tuple[float, dict[str, np.ndarray]]:
        """Training loss and its gradient with respect to every parameter.

        Runs the forward pass in train mode (batch statistics, running statistics updated,
        dropout masks drawn from :attr:`rng`), then the backward pass.

        Parameters
        ----------
        X : array-like of shape (N, input_dim)
        y : array-like of int of shape (N,), labels in ``[0, num_classes)``

        Returns
        -------
        loss : float
            Mean softmax cross-entropy plus the L2 penalty.
        grads : dict of str -> ndarray
            Same keys and shapes as :attr:`params`.
        """
        X = self._check_X(X)
        y = check_labels(y, X.shape[0], self.num_classes)
        scores, (caches, out_cache) = self._forward(X, "train")
        data_loss, dscores = softmax_loss(scores, y)
        _, act_backward = ACTIVATIONS[self.activation]
        grads: dict[str, np.ndarray] = {}
        L = self.num_layers
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, out_cache)
        for layer in range(L - 1, 0, -1):
            affine_cache, norm_cache, act_cache, drop_cache = caches[layer - 1]
            if drop_cache is not None:
                dh = dropout_backward(dh, drop_cache)
            dh = act_backward(dh, act_cache)
            if self.normalization == "batchnorm":
                dh, grads[f"gamma{layer}"], grads[f"beta{layer}"] = batchnorm_backward(
                    dh, norm_cache
                )
            elif self.normalization == "layernorm":
                dh, grads[f"gamma{layer}"], grads[f"beta{layer}"] = layernorm_backward(
                    dh, norm_cache
                )
            dh, grads[f"W{layer}"], grads[f"b{layer}"] = affine_backward(dh, affine_cache)
        loss = float(data_loss)
        if self.weight_decay > 0:
            penalty, penalty_grads = l2_penalty(
                self.params, self.weight_decay, keys=lambda name: name.startswith("W")
            )
            loss += float(penalty)
            for name, g in penalty_grads.items():
                grads[name] = grads[name] + g
        return loss, {name: grads[name] for name in self.params}

    def __repr__(self) -> str:
        return (
            f"FullyConnectedNet(input_dim={self.input_dim}, hidden_dims={self.hidden_dims}, "
            f"num_classes={self.num_classes}, activation={self.activation!r}, "
            f"normalization={self.normalization!r}, dropout={self.dropout}, init={self.init!r}, "
            f"weight_decay={self.weight_decay}, dtype={self.dtype.name})"
        )
