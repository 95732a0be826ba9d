"""The command-line options every stage shares, and how errors are shown.

Each stage builds its own ``argparse`` parser, calls ``add_common_arguments``
with its own defaults, and adds the options of its lesson. Values out of
range are refused by the parser itself (one line, exit status 2); a
``ProjectError`` raised later is printed as one line by ``run`` (exit 1).
"""

import argparse
import math
import sys
from pathlib import Path

from common.data import DATASETS
from common.errors import ProjectError

RESULTS = Path("results")


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def non_negative_int(text):
    """argparse type: a whole number of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def positive_float(text):
    """argparse type: a finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def non_negative_float(text):
    """argparse type: a finite number of 0 or more."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def fraction(text):
    """argparse type: a number in [0, 1), such as a momentum."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1")
    return value


def output_folder(text):
    """argparse type: a folder to write into (it may not exist yet)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder")
    path = Path(text)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise argparse.ArgumentTypeError(f"{place} is a file, not a folder")
            break
    return path


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def add_common_arguments(parser, *, stage, epochs, batch_size, learning_rate):
    """Add the options every stage has, with this stage's defaults."""
    group = parser.add_argument_group("options shared by every stage")
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="which data: full MNIST if on disk else the embedded sample "
        "(auto), the 5,000-digit sample, mnist, or fashion (default: auto)",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="folder holding the four IDX files or mnist.npz "
        "(default: $MNIST_DATA_DIR, then the cache folder)",
    )
    group.add_argument(
        "--epochs",
        type=positive_int,
        default=epochs,
        help=f"passes over the training data (default: {epochs})",
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        help=f"examples per gradient step (default: {batch_size})",
    )
    group.add_argument(
        "--learning-rate",
        type=positive_float,
        default=learning_rate,
        help=f"step size of gradient descent (default: {learning_rate})",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the one random generator: same seed, same result (default: 0)",
    )
    group.add_argument(
        "--out",
        type=output_folder,
        default=RESULTS / stage,
        metavar="FOLDER",
        help=f"where run records, models and plots go (default: results/{stage})",
    )
    group.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    group.add_argument(
        "--quiet", action="store_true", help="print only the final test accuracy"
    )
    return group


def run(main, argv=None):
    """Call ``main(argv)``; show a user's mistake as one line, not a traceback.

    Returns the exit status: 0, 1 for a ``ProjectError``, 130 for Ctrl-C.
    """
    try:
        main(argv)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was saved", file=sys.stderr)
        return 130
    return 0
