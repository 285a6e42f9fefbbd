"""Matplotlib helpers the lectures reuse.

Every function builds its own :class:`matplotlib.figure.Figure` (never through ``pyplot``, so
no global figure is left open and nothing leaks between cells or tests) and returns it. The
single-panel plots (decision regions, optimizer paths) also take ``ax=`` to draw into an
existing Axes, for example one panel of a comparison; then that Axes' figure is returned. In
Jupyter a returned figure shows as a PNG when it is the last value of a cell (also without
``%matplotlib inline``); elsewhere call ``fig.savefig(...)``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from coursekit._validation import as_array, check_positive_int
from coursekit.data.digits import as_images


class DisplayFigure(Figure):
    """A Figure that Jupyter can show by itself: it renders a PNG for IPython's display."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig = DisplayFigure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return ax.figure, ax


def plot_history(history: Mapping[str, Sequence[float]], *, title: str = "Training") -> Figure:
    """Loss per step and train/validation accuracy per evaluation, side by side.

    Parameters
    ----------
    history : mapping
        What :meth:`coursekit.trainer.Trainer.train` returns: ``loss_history`` (one value per
        step), ``train_acc_history`` and ``val_acc_history`` (one per evaluation) and optionally
        ``eval_epochs`` (the epoch of each evaluation, used as the x-axis; ``1, 2, ...``
        otherwise).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two Axes: "Training loss" (step vs loss) and "Accuracy" (epoch vs accuracy).
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a dict of lists, got {type(history).__name__}")
    missing = [
        k for k in ("loss_history", "train_acc_history", "val_acc_history") if k not in history
    ]
    if missing:
        raise ValueError(f"history is missing {missing}; pass what Trainer.train() returned")
    fig = DisplayFigure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    loss = np.asarray(history["loss_history"], dtype=float)
    ax_loss.plot(np.arange(1, loss.size + 1), loss, lw=0.8, color="tab:blue")
    ax_loss.set(title="Training loss", xlabel="iteration", ylabel="loss")
    train_acc = np.asarray(history["train_acc_history"], dtype=float)
    val_acc = np.asarray(history["val_acc_history"], dtype=float)
    epochs = np.asarray(history.get("eval_epochs", np.arange(1, train_acc.size + 1)), dtype=float)
    ax_acc.plot(epochs[: train_acc.size], train_acc, "o-", label="train")
    ax_acc.plot(epochs[: val_acc.size], val_acc, "s-", label="validation")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    ax_acc.legend()
    fig.suptitle(title)
    return fig


def plot_layer_histograms(
    values_per_layer,
    *,
    bins: int = 50,
    title: str = "Values per layer",
    xlabel: str = "value",
    value_range: tuple[float, float] | None = None,
) -> Figure:
    """One histogram per layer, in a row, with each layer's mean and standard deviation.

    The weight-initialization lecture uses it for the activations (and gradients) of the
    10-layer experiment: collapsing, saturating or healthy distributions are visible at once.

    Parameters
    ----------
    values_per_layer : mapping of name to array, or sequence of arrays
        The values of each layer (flattened); a sequence is labelled "layer 1", "layer 2", ...
    bins : int, default 50
    title : str
        Figure title.
    xlabel : str, default "value"
        Label of every x-axis (for example "activation" or "gradient").
    value_range : (low, high), optional
        Common histogram range; by default the overall minimum and maximum, so the panels are
        comparable.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer, titled with the layer name, mean and std.
    """
    if isinstance(values_per_layer, Mapping):
        items = [
            (str(k), as_array(v, f"values_per_layer[{k!r}]")) for k, v in values_per_layer.items()
        ]
    elif isinstance(values_per_layer, Sequence) and not isinstance(values_per_layer, str):
        items = [
            (f"layer {i + 1}", as_array(v, f"values_per_layer[{i}]"))
            for i, v in enumerate(values_per_layer)
        ]
    else:
        raise TypeError(
            "values_per_layer must be a dict {name: array} or a list of arrays, "
            f"got {type(values_per_layer).__name__}"
        )
    if not items:
        raise ValueError("values_per_layer is empty: nothing to plot")
    bins = check_positive_int(bins, "bins")
    flat = [v.astype(float).ravel() for _, v in items]
    if value_range is None:
        low = min(v.min() for v in flat if v.size)
        high = max(v.max() for v in flat if v.size)
        value_range = (low, high) if high > low else (low - 0.5, high + 0.5)
    fig = DisplayFigure(figsize=(2.2 * len(items) + 1, 2.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(items), sharey=True))
    for ax, (name, _), values in zip(axes, items, flat):
        ax.hist(values, bins=bins, range=value_range, color="tab:blue")
        ax.set_title(f"{name}\nmean {values.mean():+.3g}, std {values.std():.3g}", fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("count")
    fig.suptitle(title)
    return fig


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X,
    y,
    *,
    resolution: int = 200,
    padding: float = 0.5,
    title: str = "Decision regions",
    ax: Axes | None = None,
) -> Figure:
    """Colour the plane by ``predict`` and scatter the labelled 2-D points on top.

    Parameters
    ----------
    predict : callable
        Maps an ``(M, 2)`` array of points to ``(M,)`` integer labels (for example
        ``model.predict``).
    X : array-like of shape (N, 2)
    y : array-like of shape (N,), int
    resolution : int, default 200
        Grid points per axis.
    padding : float, default 0.5
        Margin around the data.
    title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    X = as_array(X, "X").astype(float)
    y = as_array(y, "y")
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2) for a planar plot, got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    resolution = check_positive_int(resolution, "resolution")
    fig, ax = _figure_and_axes(ax, (5, 4.5))
    (x0, y0), (x1, y1) = X.min(axis=0) - padding, X.max(axis=0) + padding
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid_labels = np.asarray(predict(np.column_stack([gx.ravel(), gy.ravel()])))
    if grid_labels.shape != (gx.size,):
        raise ValueError(
            f"predict must return one label per point, shape ({gx.size},), got {grid_labels.shape}"
        )
    n_classes = int(max(grid_labels.max(), y.max())) + 1
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(gx, gy, grid_labels.reshape(gx.shape), levels=levels, cmap="tab10", alpha=0.3,
                vmin=-0.5, vmax=9.5)  # fmt: skip
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=-0.5, vmax=9.5, s=14, edgecolors="k",
               linewidths=0.3)  # fmt: skip
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", xlim=(x0, x1), ylim=(y0, y1))
    return fig


def plot_loss_surface_paths(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    paths: Mapping[str, np.ndarray],
    *,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    levels: int = 30,
    log_scale: bool = False,
    minimum: tuple[float, float] | None = None,
    title: str = "Optimizer paths",
    ax: Axes | None = None,
) -> Figure:
    """Contours of a 2-D loss surface with one optimizer trajectory per entry of ``paths``.

    Parameters
    ----------
    f : callable
        ``f(x, y)`` evaluated element-wise on arrays (NumPy broadcasting), e.g.
        ``lambda x, y: x**2 + 10 * y**2``. A function of a point ``p`` with ``p[0], p[1]``
        works as ``lambda x, y: g(np.stack([x, y]))``.
    paths : mapping of name to array of shape (T, 2)
        The iterates of each optimizer (first row = start).
    xlim, ylim : (low, high), optional
        Plot window; by default the paths' extent with a 10 % margin.
    levels : int, default 30
        Number of contour levels.
    log_scale : bool, default False
        Space the levels logarithmically (for surfaces like Rosenbrock with a huge range;
        needs ``f > 0`` on the window).
    minimum : (x, y), optional
        Marks the known minimum with a star.
    title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(paths, Mapping):
        raise TypeError(f"paths must be a dict {{name: (T, 2) array}}, got {type(paths).__name__}")
    checked = {}
    for name, path in paths.items():
        path = as_array(path, f"paths[{name!r}]").astype(float)
        if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
            raise ValueError(
                f"paths[{name!r}] must have shape (T, 2) with T >= 1, got {path.shape}"
            )
        checked[name] = path
    levels = check_positive_int(levels, "levels")
    if xlim is None or ylim is None:
        if not checked:
            raise ValueError("pass xlim and ylim when paths is empty")
        allpts = np.concatenate(list(checked.values()))
        lo, hi = allpts.min(axis=0), allpts.max(axis=0)
        margin = 0.1 * np.maximum(hi - lo, 1e-3) + 1e-3
        xlim = xlim or (lo[0] - margin[0], hi[0] + margin[0])
        ylim = ylim or (lo[1] - margin[1], hi[1] + margin[1])
    fig, ax = _figure_and_axes(ax, (6, 5))
    gx, gy = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    z = np.broadcast_to(np.asarray(f(gx, gy), dtype=float), gx.shape)
    if log_scale:
        if np.any(z <= 0):
            raise ValueError("log_scale needs f > 0 on the plotted window")
        contour_levels = np.geomspace(z.min(), z.max(), levels)
    else:
        contour_levels = np.linspace(z.min(), z.max(), levels)
    ax.contour(gx, gy, z, levels=np.unique(contour_levels), cmap="viridis", linewidths=0.7)
    for name, path in checked.items():
        (line,) = ax.plot(path[:, 0], path[:, 1], ".-", lw=1.2, ms=3, label=name)
        ax.plot(*path[0], "o", color=line.get_color(), ms=6)
        ax.plot(*path[-1], "x", color=line.get_color(), ms=8)
    if minimum is not None:
        ax.plot(*minimum, "*", color="k", ms=12, label="minimum")
    ax.set(title=title, xlabel="$w_1$", ylabel="$w_2$", xlim=xlim, ylim=ylim)
    if checked or minimum is not None:
        ax.legend(loc="best", fontsize=8)
    return fig


def plot_digits(
    X,
    y=None,
    *,
    predictions=None,
    n_cols: int = 10,
    max_images: int = 50,
    title: str = "Digits",
) -> Figure:
    """A grid of 8×8 digits, each titled with its label (and the prediction if given).

    Parameters
    ----------
    X : array-like of shape (N, 64) or (N, 8, 8)
    y : array-like of shape (N,), optional
        True labels.
    predictions : array-like of shape (N,), optional
        Predicted labels; wrong ones are titled in red as ``"pred (true)"``.
    n_cols : int, default 10
    max_images : int, default 50
        Only the first ``max_images`` digits are drawn.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    images, _ = as_images(X, "X")
    n_cols = check_positive_int(n_cols, "n_cols")
    max_images = check_positive_int(max_images, "max_images")
    n = min(images.shape[0], max_images)
    if n == 0:
        raise ValueError("X holds no images")
    labels = {}
    for name, values in (("y", y), ("predictions", predictions)):
        if values is not None:
            values = as_array(values, name)
            if values.shape != (images.shape[0],):
                raise ValueError(f"{name} must have shape ({images.shape[0]},), got {values.shape}")
            labels[name] = values
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    fig = DisplayFigure(figsize=(0.9 * n_cols, 1.05 * n_rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
        if "predictions" in labels:
            pred = labels["predictions"][i]
            true = labels["y"][i] if "y" in labels else None
            wrong = true is not None and pred != true
            ax.set_title(f"{pred} ({true})" if wrong else f"{pred}", fontsize=9,
                         color="tab:red" if wrong else "k")  # fmt: skip
        elif "y" in labels:
            ax.set_title(f"{labels['y'][i]}", fontsize=9)
    fig.suptitle(title)
    return fig
