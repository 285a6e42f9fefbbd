"""Plotting helpers: they return labelled figures and leave no pyplot state behind."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from coursekit import viz  # noqa: E402
from coursekit.data import load_digits, make_spirals  # noqa: E402


@pytest.fixture(autouse=True)
def no_pyplot_leaks():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "a viz function left a pyplot figure open"


def render(fig: Figure) -> None:
    """Draw the figure (catches errors that only appear at draw time)."""
    fig.canvas.draw()


def line_data(ax):
    return [line.get_ydata() for line in ax.get_lines()]


def test_plot_history_axes_titles_and_data():
    history = {
        "loss_history": [2.3, 1.5, 0.9, 0.7, 0.5, 0.4],
        "train_acc_history": [0.5, 0.8, 0.9],
        "val_acc_history": [0.45, 0.7, 0.85],
        "eval_epochs": [1.0, 2.0, 3.0],
    }
    fig = viz.plot_history(history, title="Run 1")
    render(fig)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Training loss"
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel()) == ("iteration", "loss")
    assert acc_ax.get_title() == "Accuracy"
    assert (acc_ax.get_xlabel(), acc_ax.get_ylabel()) == ("epoch", "accuracy")
    assert fig.get_suptitle() == "Run 1"
    np.testing.assert_array_equal(line_data(loss_ax)[0], history["loss_history"])
    train_line, val_line = acc_ax.get_lines()
    np.testing.assert_array_equal(val_line.get_ydata(), history["val_acc_history"])
    np.testing.assert_array_equal(val_line.get_xdata(), history["eval_epochs"])
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == ["train", "validation"]
    with pytest.raises(ValueError, match="history is missing"):
        viz.plot_history({"loss_history": [1.0]})
    with pytest.raises(TypeError, match="history must be a dict"):
        viz.plot_history([1.0, 2.0])


def test_plot_layer_histograms_one_panel_per_layer_with_stats():
    rng = np.random.default_rng(0)
    layers = {f"tanh {i}": rng.standard_normal(1000) * 0.5**i for i in range(1, 4)}
    fig = viz.plot_layer_histograms(layers, xlabel="activation", title="Activations")
    render(fig)
    assert len(fig.axes) == 3
    for ax, (name, values) in zip(fig.axes, layers.items()):
        assert ax.get_title().startswith(name)
        assert f"std {values.std():.3g}" in ax.get_title()
        assert ax.get_xlabel() == "activation"
        # every value is counted exactly once
        assert sum(p.get_height() for p in ax.patches) == values.size
    assert fig.axes[0].get_ylabel() == "count"
    assert fig.get_suptitle() == "Activations"
    fig2 = viz.plot_layer_histograms([np.zeros(10), np.ones(10)])
    assert fig2.axes[1].get_title().startswith("layer 2")
    with pytest.raises(ValueError, match="values_per_layer is empty"):
        viz.plot_layer_histograms([])
    with pytest.raises(TypeError, match="values_per_layer must be a dict"):
        viz.plot_layer_histograms(3.0)


def test_plot_decision_boundary_colors_by_prediction():
    X, y = make_spirals(30, 3, 0.1, seed=0)
    calls = []

    def predict(points):
        calls.append(points.shape)
        return (points[:, 0] > 0).astype(int)

    fig = viz.plot_decision_boundary(predict, X, y, resolution=50, title="Half planes")
    render(fig)
    (ax,) = fig.axes
    assert calls == [(2500, 2)]
    assert ax.get_title() == "Half planes"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")
    assert len(ax.collections) >= 2  # filled regions and the scatter
    # drawing into a given Axes returns that Axes' figure
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert viz.plot_decision_boundary(predict, X, y, resolution=10, ax=ax2) is fig2
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        viz.plot_decision_boundary(predict, np.zeros((5, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="one label per point"):
        viz.plot_decision_boundary(lambda p: np.zeros(3), X, y, resolution=10)
    with pytest.raises(TypeError, match="predict must be callable"):
        viz.plot_decision_boundary(None, X, y)


def test_plot_loss_surface_paths_draws_every_path():
    paths = {
        "SGD": np.array([[-1.5, 1.0], [-1.0, 0.5], [-0.5, 0.2], [0.0, 0.0]]),
        "Adam": np.array([[-1.5, 1.0], [-1.2, 0.3]]),
    }
    fig = viz.plot_loss_surface_paths(
        lambda x, y: x**2 + 10 * y**2, paths, minimum=(0.0, 0.0), title="Race"
    )
    render(fig)
    (ax,) = fig.axes
    assert ax.get_title() == "Race"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$w_1$", "$w_2$")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["SGD", "Adam", "minimum"]
    sgd_line = next(line for line in ax.get_lines() if line.get_label() == "SGD")
    np.testing.assert_array_equal(sgd_line.get_xdata(), paths["SGD"][:, 0])
    # the default window contains every iterate
    x0, x1 = ax.get_xlim()
    assert x0 < -1.5 and x1 > 0.0
    fig_log = viz.plot_loss_surface_paths(
        lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2 + 1e-3, paths, log_scale=True
    )
    render(fig_log)
    with pytest.raises(ValueError, match=r"paths\['bad'\] must have shape \(T, 2\)"):
        viz.plot_loss_surface_paths(lambda x, y: x, {"bad": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="log_scale needs f > 0"):
        viz.plot_loss_surface_paths(lambda x, y: x, paths, log_scale=True)


def test_plot_digits_grid_and_titles():
    X, y = load_digits()
    predictions = y[:12].copy()
    predictions[3] = (predictions[3] + 1) % 10
    fig = viz.plot_digits(X[:12], y[:12], predictions=predictions, n_cols=5, title="Some digits")
    render(fig)
    assert len(fig.axes) == 15  # 3 rows of 5, the last 3 blank
    assert fig.get_suptitle() == "Some digits"
    assert fig.axes[0].get_title() == str(y[0])
    assert fig.axes[3].get_title() == f"{predictions[3]} ({y[3]})"
    assert fig.axes[3].title.get_color() == "tab:red"
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), X[1].reshape(8, 8))
    assert not fig.axes[14].images
    fig2 = viz.plot_digits(X.reshape(-1, 8, 8), max_images=4)
    assert sum(bool(ax.images) for ax in fig2.axes) == 4
    with pytest.raises(ValueError, match=r"y must have shape \(12,\)"):
        viz.plot_digits(X[:12], y[:5])


def test_figures_render_as_png_for_jupyter():
    fig = viz.plot_history(
        {"loss_history": [1.0], "train_acc_history": [0.5], "val_acc_history": [0.5]}
    )
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
