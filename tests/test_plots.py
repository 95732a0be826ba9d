"""Plots: what a reader of the picture relies on, checked on the figure."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from common import plots
from common.training import History


def test_a_title_wider_than_the_figure_is_broken_into_lines(tmp_path):
    title = (
        "stage3_multilayer: MultilayerNetwork(784 -> 256 -> 128 -> 10, relu, "
        "softmax, cross-entropy, momentum 0.9, l2 0.0001)"
    )
    history = History([1.0, 0.5], [0.5, 0.7], [0.5, 0.6], [1.0, 1.0])
    figure = plots.learning_curves(history, tmp_path / "curves.png", title=title)

    shown = figure.get_suptitle()
    assert shown.replace("\n", " ") == title  # every word kept, in order
    lines = shown.splitlines()
    assert len(lines) == 2
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    for text in figure.texts:  # the title lies within the figure's width
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width
    assert plots.learning_curves(history, title="Short").get_suptitle() == "Short"


def test_picture_sizes_are_width_by_height():
    figure = plots.image_steps(
        {"paper": np.zeros((300, 400)), "digit": np.ones((28, 28))}
    )
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["paper\n400 x 300 pixels", "digit\n28 x 28 pixels"]
