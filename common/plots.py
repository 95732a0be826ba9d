"""Pictures of a run: learning curves, confusion matrix, weights, digits.

Each function builds and returns a matplotlib ``Figure`` without touching
pyplot's global state, so the same call works in a script (give ``path``
and the PNG is written whole or not at all) and in a notebook (the returned
figure shows inline).
"""

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from common.data import DIGIT_NAMES, IMAGE_SIDE
from common.files import atomic_path

DPI = 110
TITLE_CHARACTERS_PER_INCH = 9  # of a suptitle in matplotlib's default font


def headline(figure, title):
    """The figure's title, broken into lines that fit its width: a network's
    description can be longer than the figure is wide."""
    width = int(figure.get_figwidth() * TITLE_CHARACTERS_PER_INCH)
    figure.suptitle(textwrap.fill(title, width))


def save(figure, path):
    """Save ``figure`` as a PNG at ``path`` (atomically) and return the figure."""
    if path is not None:
        figure.tight_layout() if not figure.get_layout_engine() else None
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=DPI, format="png")
    return figure


def learning_curves(history, path=None, title="Learning curves"):
    """Training loss, and training and validation accuracy, per epoch."""
    history = history if isinstance(history, dict) else history.as_dict()
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, history["loss"], marker="o", markersize=3)
    loss_axes.set(xlabel="epoch", ylabel="training loss", title="Loss")
    for key, label in (
        ("train_accuracy", "train"),
        ("validation_accuracy", "validation"),
    ):
        accuracy_axes.plot(
            epochs,
            100 * np.asarray(history[key]),
            marker="o",
            markersize=3,
            label=label,
        )
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    accuracy_axes.legend()
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    headline(figure, title)
    return save(figure, path)


def confusion_matrix(
    labels, predictions, path=None, class_names=DIGIT_NAMES, title="Confusion matrix"
):
    """Counts of (true class, predicted class); the diagonal is what is right."""
    classes = len(class_names)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    figure = Figure(figsize=(6.4, 5.6), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, label="test images")
    threshold = counts.max() / 2
    for true in range(classes):
        for guess in range(classes):
            if counts[true, guess]:
                colour = "white" if counts[true, guess] > threshold else "black"
                axes.text(
                    guess,
                    true,
                    counts[true, guess],
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colour,
                )
    ticks = np.arange(classes)
    axes.set_xticks(
        ticks, class_names, rotation=45 if len(max(class_names, key=len)) > 2 else 0
    )
    axes.set_yticks(ticks, class_names)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axes.set(
        xlabel="predicted",
        ylabel="true",
        title=f"{title} (accuracy {100 * accuracy:.1f}%)",
    )
    return save(figure, path)


def weight_images(weights, path=None, title="Incoming weights", columns=10):
    """Each row of ``weights`` (k, 784) as a 28x28 picture of what excites it.

    Red pixels push the neuron's weighted sum up, blue ones down; the colour
    scale is symmetric around zero and shared, so pictures compare. The
    pictures are tiled into one image (drawn at once, fast for hundreds).
    """
    weights = np.atleast_2d(weights)
    count = len(weights)
    columns = min(columns, count)
    rows = -(-count // columns)
    cell = IMAGE_SIDE + 2  # a picture and a 2-pixel gap
    mosaic = np.full((rows * cell, columns * cell), np.nan)
    for index, picture in enumerate(weights.reshape(count, IMAGE_SIDE, IMAGE_SIDE)):
        top, left = (cell * place for place in divmod(index, columns))
        mosaic[top : top + IMAGE_SIDE, left : left + IMAGE_SIDE] = picture
    size = 1.2 if count > 1 else 4
    figure = Figure(
        figsize=(size * columns + 1.2, size * rows + 0.8), layout="constrained"
    )
    axes = figure.subplots()
    limit = float(np.abs(weights).max()) or 1.0
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    image = axes.imshow(
        mosaic[:-2, :-2],  # without the gap after the last row and column
        cmap=colours,
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    axes.axis("off")
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    headline(figure, title)
    return save(figure, path)


def class_histograms(
    values,
    labels,
    path=None,
    class_names=DIGIT_NAMES,
    xlabel="value",
    title=None,
    bins=30,
):
    """One histogram of ``values`` per class, stacked, on one shared axis.

    Shows how well a single number separates the classes: where the
    histograms overlap, no threshold can tell those classes apart.
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.histogram_bin_edges(values, bins=bins)
    classes = len(class_names)
    figure = Figure(figsize=(7, 0.55 * classes + 1.2), layout="constrained")
    grid = figure.subplots(classes, 1, sharex=True)
    colours = [f"C{index}" for index in range(classes)]
    for index, axes in enumerate(grid):
        axes.hist(values[labels == index], bins=edges, color=colours[index])
        axes.set_yticks([])
        axes.set_ylabel(class_names[index], rotation=0, ha="right", va="center")
        for side in ("top", "right", "left"):
            axes.spines[side].set_visible(False)
    grid[-1].set_xlabel(xlabel)
    headline(figure, title or f"{xlabel} by class")
    return save(figure, path)


def layer_gradient_sizes(
    sizes, path=None, title="Gradient size per layer", xlabel="epoch"
):
    """Lines of the gradient size of each layer over training, log scale.

    ``sizes`` maps a layer's name to its gradient sizes in order. A layer
    whose line sits orders of magnitude below the others barely learns.
    """
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    for name, values in sizes.items():
        values = np.asarray(values, dtype=np.float64)
        axes.plot(
            np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name
        )
    axes.set_yscale("log")
    axes.set(xlabel=xlabel, ylabel="gradient size (root mean square)", title=title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the lines
    return save(figure, path)


def digit_grid(
    images, labels=None, predictions=None, path=None, title="Digits", columns=10
):
    """Digits as pictures, with their label (and a prediction, red if wrong)."""
    images = np.asarray(images).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    count = len(images)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.2 * columns, 1.35 * rows + 0.5), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for index, axes in enumerate(grid):
        axes.axis("off")
        if index >= count:
            continue
        axes.imshow(images[index], cmap="gray_r", vmin=0, vmax=1)
        caption, colour = "", "black"
        if labels is not None:
            caption = str(labels[index])
        if predictions is not None:
            caption = (
                f"{caption} -> {predictions[index]}"
                if caption
                else str(predictions[index])
            )
            if labels is not None and predictions[index] != labels[index]:
                colour = "red"
        axes.set_title(caption, fontsize=9, color=colour)
    headline(figure, title)
    return save(figure, path)


def stage_comparison(records, path=None, title="Stages compared"):
    """Test accuracy per stage (bars) beside validation accuracy per epoch.

    ``records`` are run records (dicts, see common.records), one per stage.
    """
    figure = Figure(figsize=(12.5, 4.2), layout="constrained")
    bars, curves = figure.subplots(1, 2, width_ratios=(1, 1.4))
    names = [record["stage"].replace("_", "\n") for record in records]
    accuracies = [100 * float(record["test_accuracy"]) for record in records]
    drawn = bars.bar(names, accuracies, color=[f"C{i}" for i in range(len(records))])
    bars.bar_label(drawn, fmt="%.1f%%")
    bars.set(ylabel="test accuracy (%)", ylim=(0, 105), title="Test accuracy")
    for index, record in enumerate(records):
        validation = 100 * np.asarray(record["history"]["validation_accuracy"])
        curves.plot(
            np.arange(1, len(validation) + 1),
            validation,
            color=f"C{index}",
            marker="o",
            markersize=2,
            label=record["stage"],
        )
    curves.set(
        xlabel="epoch",
        ylabel="validation accuracy (%)",
        ylim=(0, 100),
        title="Validation accuracy while training",
    )
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    # Beside the chart, not on it: no line is ever hidden behind the legend.
    curves.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    headline(figure, title)
    return save(figure, path)


def image_steps(steps, path=None, title="From a picture to a 28x28 digit"):
    """Pictures side by side, each with its name and size, in order.

    ``steps`` maps a name to a 2-D array, such as the intermediate pictures
    of ``common.images.preprocessing_steps``; each is drawn at its own size
    and its own range of values, pixel for pixel, in greys.
    """
    figure = Figure(figsize=(2.6 * len(steps), 3.2), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, len(steps), squeeze=False)).ravel()
    for axes, (name, picture) in zip(grid, steps.items(), strict=True):
        picture = np.asarray(picture)
        axes.imshow(picture, cmap="gray", interpolation="nearest")
        height, width = picture.shape
        # width x height, the way picture sizes are given (and Pillow's
        # Image.size); the array's shape is (height, width)
        axes.set_title(f"{name}\n{width} x {height} pixels", fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    headline(figure, title)
    return save(figure, path)


def output_curves(
    inputs,
    outputs,
    path=None,
    class_names=DIGIT_NAMES,
    xlabel="input",
    ylabel="output",
    title="Each output along one input",
):
    """Each column of ``outputs`` (n, classes) as a curve over ``inputs`` (n,).

    Along the top, each stretch of ``inputs`` is shaded and named after the
    class whose output is highest there: the class a network would predict.
    A class that never wins a stretch is never predicted.
    """
    order = np.argsort(inputs)
    inputs, outputs = np.asarray(inputs)[order], np.asarray(outputs)[order]
    figure = Figure(figsize=(8, 4.4), layout="constrained")
    axes = figure.subplots()
    for index, name in enumerate(class_names):
        axes.plot(inputs, outputs[:, index], color=f"C{index}", label=name)
    winners = outputs.argmax(axis=1)
    starts = np.flatnonzero(np.r_[True, winners[1:] != winners[:-1]])
    ends = np.r_[starts[1:], len(inputs)] - 1
    for start, end in zip(starts, ends, strict=True):
        colour = f"C{winners[start]}"
        axes.axvspan(inputs[start], inputs[end], color=colour, alpha=0.12, lw=0)
        axes.text(
            (inputs[start] + inputs[end]) / 2,
            0.97,
            class_names[winners[start]],
            transform=axes.get_xaxis_transform(),
            ha="center",
            va="top",
            color=colour,
            fontweight="bold",
        )
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.set_xlim(inputs[0], inputs[-1])
    axes.legend(title="output", loc="center left", bbox_to_anchor=(1, 0.5))
    return save(figure, path)


def named_curves(
    x, named_values, path=None, xlabel="x", ylabel="y", title=None, log=False
):
    """Several named curves over one shared x axis, such as one per loss.

    ``named_values`` maps each curve's name to its values, one per ``x``;
    ``log`` puts the y axis on a log scale, for values that span decades.
    """
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    for name, values in named_values.items():
        values = np.asarray(values, dtype=np.float64)
        axes.plot(x, values, marker="o", markersize=3, label=name)
    if log:
        axes.set_yscale("log")
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return save(figure, path)
