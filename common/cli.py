"""The command-line options every stage shares, and how errors are shown.

Each stage builds its parser with this module's ``ArgumentParser``, calls
``add_common_arguments`` with its own defaults, and adds the options of its
lesson. Values out of range are refused by the parser itself (one line,
exit status 2); a ``ProjectError`` raised later is printed as one line by
``run`` (exit 1), and so is running out of memory.

Network sizes are refused before anything is allocated when their weights
would not fit in a budget generous for this project (``MAX_WIDTH``,
``PARAMETER_BUDGET``); ``network_size_problem`` says why.
"""

import argparse
import math
import signal
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np

from common.data import CLASSES, DATASETS, PIXELS
from common.errors import LONGEST_DESCRIBED, ProjectError, quoted, shortened

RESULTS = Path("results")

# Every stage trains in float32. The largest network this project accepts:
# at most MAX_WIDTH neurons in a layer (one evaluation batch of 2,048 images
# through 100,000 neurons is 820 MB of activations), and PARAMETER_BUDGET
# weights and biases in all: 400 MB, which training holds two to four times
# (gradients, momentum or Adam's moments). The default networks have 0.8k to
# 0.5M parameters; stage 4's --max-parameters goes up to the same budget.
BYTES_PER_PARAMETER = np.dtype(np.float32).itemsize
MAX_WIDTH = 100_000
# Depth costs time, not memory: a hidden layer is a Python step forward and
# back for every batch (3,000 layers of one neuron: 27 s an epoch on the
# sample); a hundred is far more than ReLU and He initialisation can train.
MAX_HIDDEN_LAYERS = 100
# The seed goes into each run folder's name; NumPy takes any size, but a
# name of hundreds of digits is no use and can be longer than a file name may.
MAX_SEED = 2**32 - 1
PARAMETER_BUDGET = 100_000_000


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reads ``--rate -1e-3`` as a value and
    reports a refused option in one line.

    Argparse takes a word that starts with ``-`` for an option unless it
    looks like a negative number to it, and only plain ones do (``-5``,
    ``-0.5``): ``--learning-rate -1e-3`` ends in "expected one argument"
    instead of the range message. The documented way around it is
    ``--learning-rate=-1e-3``, which is what ``parse_known_args`` writes for
    any long option followed by a negative number in any notation (``-1e-3``,
    ``-.5``, ``-1E+2``, ``-inf``, ``-nan``), before argparse sees the words.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(attach_negative_numbers(args), namespace)

    def error(self, message):
        """One line on stderr and exit status 2, instead of argparse's usage
        (several lines, fifteen for stage 4) above its message."""
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def attach_negative_numbers(words):
    """``["--l2", "-1e-3"]`` -> ``["--l2=-1e-3"]``: a negative number after a
    long option is that option's value. Nothing after ``--`` is touched."""
    attached = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            return attached + words[index:]
        following = words[index + 1] if index + 1 < len(words) else None
        if (
            word.startswith("--")
            and "=" not in word
            and following is not None
            and is_negative_number(following)
        ):
            attached.append(f"{word}={following}")
            index += 2
        else:
            attached.append(word)
            index += 1
    return attached


def is_negative_number(text):
    """True for ``-5``, ``-1e-3``, ``-.5``, ``-1E+2``, ``-inf``, ``-nan``..."""
    if not text.startswith("-"):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def whole_number(text, minimum, maximum=None, limit_reason=""):
    """A whole number written in digits, from ``minimum`` to ``maximum``.

    Whatever else reads as a number gets the message that fits it: below
    the minimum in any notation (``-1e3``, ``-inf``, ``-0.5``), a fraction,
    or a whole number written otherwise (``1e3``).
    """
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None:
        digits = text.strip().lstrip("+-")
        if digits.isascii() and digits.isdigit():  # over Python's 4,300 digits
            if text.strip().startswith("-") and minimum >= 0:
                raise argparse.ArgumentTypeError(below(text, minimum))
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} has {len(digits):,} digits: far out of range"
            )
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} is not a whole number"
            ) from None
        if number < minimum:
            raise argparse.ArgumentTypeError(below(text, minimum))
        if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} is not a whole number written in digits; "
                f"write {int(number)}"
            )
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a whole number")
    if value < minimum:
        raise argparse.ArgumentTypeError(below(text, minimum))
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(
            f"{value:,} is too large: at most {maximum:,}{limit_reason}"
        )
    return value


def below(text, minimum):
    if minimum == 0:
        return f"{shortened(text)} must not be negative"
    return f"{shortened(text)} must be at least {minimum}"


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    return whole_number(text, 1)


def non_negative_int(text):
    """argparse type: a whole number of 0 or more."""
    return whole_number(text, 0)


def seed(text):
    """argparse type: a seed, from 0 to ``MAX_SEED``."""
    return whole_number(text, 0, MAX_SEED)


def positive_float(text):
    """argparse type: a finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{shortened(text)} must be above 0")
    return value


def non_negative_float(text):
    """argparse type: a finite number of 0 or more."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{shortened(text)} must not be negative")
    return value


def fraction(text):
    """argparse type: a number in [0, 1), such as a momentum."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"{shortened(text)} must be at least 0 and below 1"
        )
    return value


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{shortened(text)} is not a finite number")
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


def folder_path(text):
    """argparse type: a folder's path, not empty (``Path("")`` would be
    ``.``, and MNIST would be downloaded into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder")
    return Path(text)


def file_path(text):
    """argparse type: a path that is not empty (``Path("")`` would be ``.``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a file")
    return Path(text)


def check_writable(folder, option):
    """Raise ``ProjectError`` now, before any training, if nothing can be
    written in ``folder`` (or in the folder it would be made in)."""
    folder = Path(folder)
    place = next(
        (path for path in (folder, *folder.parents) if path.exists()), Path(".")
    )
    if not place.is_dir():
        raise ProjectError(f"{place} is a file, not a folder; choose another {option}")
    try:
        Path(tempfile.mkdtemp(prefix=".write-test-", dir=place)).rmdir()
    except OSError as error:
        raise ProjectError(
            f"cannot write in {folder} ({error.strerror or error}); "
            f"choose another {option}"
        ) from None


# ------------------------------------------------------------ network sizes


def layer_widths(text):
    """argparse type: hidden layer widths such as ``128,64`` -> (128, 64),
    refused before anything is allocated if a network of 784 inputs, these
    layers and 10 outputs would be over the size limits."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not a list of layer widths; write whole numbers "
            "separated by commas, such as 128,64"
        )
    sizes = tuple(whole_number(part, 0) for part in parts)
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{quoted(text)}: every layer needs a neuron")
    problem = network_size_problem([PIXELS, *sizes, CLASSES], quoted(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return sizes


def parameter_count(sizes):
    """Weights and biases of a network with layers of ``sizes``, inputs first."""
    return sum(
        fan_in * fan_out + fan_out
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False)
    )


def memory(parameters):
    """The memory that ``parameters`` float32 numbers take, as "3.2 PB"."""
    size = parameters * BYTES_PER_PARAMETER
    units = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    if size >= 1000 ** len(units):
        return f"{Decimal(size):.1e} bytes"
    power = 0
    while power < len(units) - 1 and size >= 1000 ** (power + 1):
        power += 1
    value = Decimal(size).scaleb(-3 * power)
    digits = 1 if power and value < 10 else 0
    return f"{value:.{digits}f} {units[power]}"


def size_limits():
    return (
        f"at most {MAX_WIDTH:,} neurons in a layer and {PARAMETER_BUDGET:,} "
        f"parameters ({memory(PARAMETER_BUDGET)} of weights) in all"
    )


def network_size_problem(sizes, what):
    """None if a network of layer ``sizes`` is within the limits; else a
    message that starts with ``what`` and says what it would take."""
    hidden = sizes[1:-1]
    if len(hidden) > MAX_HIDDEN_LAYERS:
        return (
            f"{what} would have {len(hidden):,} hidden layers; "
            f"at most {MAX_HIDDEN_LAYERS} can be trained in a useful time"
        )
    parameters = parameter_count(sizes)
    if max(hidden, default=0) <= MAX_WIDTH and parameters <= PARAMETER_BUDGET:
        return None
    return (
        f"{what} would have {parameters:,} parameters, {memory(parameters)} "
        f"of weights; {size_limits()}"
    )


def parameter_limit(text):
    """argparse type: a number of parameters from 1 to ``PARAMETER_BUDGET``."""
    value = whole_number(text, 1)
    if value > PARAMETER_BUDGET:
        raise argparse.ArgumentTypeError(
            f"{value:,} parameters would take {memory(value)} of weights; "
            f"at most {PARAMETER_BUDGET:,} ({memory(PARAMETER_BUDGET)})"
        )
    return value


# ------------------------------------------------------- the shared options


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
        type=folder_path,
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
        type=seed,
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

    Returns the exit status: ``main``'s own if it returns one (predict: 1
    when some picture could not be read), else 0; 1 for a ``ProjectError``,
    for a file or folder the system refuses (no permission, a name too
    long, a full disk) or for running out of memory; 130 when interrupted,
    by Ctrl-C or by a termination or hang-up signal (``kill``, a closed
    terminal), which are turned into the same ``KeyboardInterrupt`` so that
    a half-written run is removed either way. The size limits refuse
    networks whose weights cannot fit before anything is allocated; a
    ``MemoryError`` is the last resort, when this machine has less memory
    than they allow for (or a very large batch of a wide network needs
    more).
    """
    previous = catch_stop_signals()
    try:
        status = main(argv)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {system_refusal(error)}", file=sys.stderr)
        return 1
    except MemoryError as error:
        detail = str(error)
        detail = f" ({detail[:1].lower()}{detail[1:]})" if detail else ""
        print(
            f"error: not enough memory{detail}; try a smaller network "
            "(--hidden, --layers, --grow) or a smaller --batch-size",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt as interruption:
        # A command that had saved something says what in the interruption.
        saved = interruption.args[0] if interruption.args else "nothing was saved"
        print(f"interrupted; {saved}", file=sys.stderr)
        return 130
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return status or 0


def catch_stop_signals():
    """Make SIGTERM and SIGHUP raise ``KeyboardInterrupt``, as Ctrl-C does;
    return the handlers they had. Only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):  # Windows has no SIGHUP
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, stop)
    return previous


def stop(number, frame):
    raise KeyboardInterrupt


def system_refusal(error):
    """An ``OSError`` in one line: the path it concerns and why, in words."""
    reason = error.strerror or str(error) or type(error).__name__
    reason = reason[:1].lower() + reason[1:]
    if error.filename is None:
        return reason
    return f"cannot use {shortened(str(error.filename), LONGEST_DESCRIBED)}: {reason}"
