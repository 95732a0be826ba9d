"""python -m stage4_dynamic: train a network that grows; read your own digits.

    python -m stage4_dynamic [options]                       train it
    python -m stage4_dynamic predict IMAGE... --model FILE   read pictures

Training prints one line per epoch and one per growth step, then the test
accuracy; it saves the model, a run record (growth steps included) and plots
under --out. Growth comes from a schedule (--grow) or from a policy that
grows when the validation accuracy stalls (--auto-grow). See --help of each.
"""

import argparse
import re
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from common import plots
from common.cli import (
    PARAMETER_BUDGET,
    ArgumentParser,
    add_common_arguments,
    check_writable,
    file_path,
    fraction,
    layer_widths,
    network_size_problem,
    non_negative_float,
    output_folder,
    parameter_count,
    parameter_limit,
    positive_int,
    quoted,
    run,
    whole_number,
)
from common.data import CLASSES, IMAGE_SIDE, MAX_PIXEL, PIXELS, load
from common.errors import ProjectError
from common.files import atomic_path
from common.gradients import numerical_gradient, relative_error
from common.images import read_digit
from common.runs import finish
from common.training import accuracy, train
from stage4_dynamic.network import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION,
    OPTIMIZERS,
    DynamicNetwork,
    cosine_schedule,
    make_optimizer,
    shift_images,
)

STAGE = "stage4_dynamic"
DEFAULT_LAYERS = (256,)
DEFAULT_GROWTH = "8:insert 256, 16:widen 1 +256"
DEFAULT_EPOCHS = 40
DEFAULT_OPTIMIZER = "adam"
# What suits each optimiser on this data; --learning-rate overrides it.
DEFAULT_RATES = {"sgd": 0.2, "momentum": 0.05, "adam": 0.002}
DEFAULT_SHIFT = 1
MAX_SHIFT = IMAGE_SIDE // 2  # a larger shift moves most digits out of the field
DEFAULT_PATIENCE = 5
DEFAULT_MAX_PARAMETERS = 1_000_000
TOP = 3  # how many of the most likely classes predict prints

# The gradient check runs two forward passes per weight, so it uses a
# narrow network of the chosen depth and activation. Float64 leaves room
# for a larger step than common.gradients' default: the truncation error
# (order h^2, 1e-8) stays small while the rounding error of the cost,
# divided by 2h, shrinks a hundredfold.
CHECK_WIDTH = 4
CHECK_EXAMPLES = 5
CHECK_STEP = 1e-4
CHECK_BIAS = 0.1  # spread of the random biases, see check_gradients

GROWTH_HELP = """\
growth steps, separated by commas, each EPOCH:CHANGE, done right after that
epoch. CHANGE is 'widen L +N' (add N neurons to hidden layer L, counted from
1) or 'insert N at P' (a new hidden layer of N neurons becomes hidden layer P;
without 'at P' it goes on top). A new layer starts as the identity of the one
below it, so N must be at least that layer's width. 'none': no growth.
Example: "3:widen 1 +32, 5:insert 64 at 2"."""


# ------------------------------------------------------------ growth steps


@dataclass(frozen=True)
class GrowthStep:
    """One change of shape, done after epoch ``epoch``.

    ``action`` is "widen" (add ``neurons`` to hidden layer ``layer``) or
    "insert" (a new hidden layer of ``neurons`` at position ``layer``;
    None: on top).
    """

    epoch: int
    action: str
    layer: int | None
    neurons: int

    def __str__(self):
        if self.action == "widen":
            return f"widen {self.layer} +{self.neurons}"
        where = "" if self.layer is None else f" at {self.layer}"
        return f"insert {self.neurons}{where}"

    def apply(self, network):
        if self.action == "widen":
            network.add_neurons(self.layer, self.neurons)
        else:
            network.add_layer(self.neurons, self.layer)


WIDEN = re.compile(r"(\d+)\s*:\s*widen\s+(\d+)\s*\+\s*(\d+)")
INSERT = re.compile(r"(\d+)\s*:\s*insert\s+(\d+)(?:\s+at\s+(\d+))?")


def growth_schedule(text):
    """argparse type: "3:widen 1 +32, 5:insert 64 at 2" -> GrowthSteps by epoch."""
    if text.strip().lower() in ("", "none"):
        return ()
    steps = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            raise argparse.ArgumentTypeError(
                f"{quoted(text)} has an empty growth step; separate the steps "
                "with single commas, or write none for no growth"
            )
        widen, insert = WIDEN.fullmatch(part), INSERT.fullmatch(part)
        if widen:
            epoch, layer, neurons = map(count, widen.groups())
            step = GrowthStep(epoch, "widen", layer, neurons)
        elif insert:
            epoch, neurons, position = insert.groups()
            position = None if position is None else count(position)
            step = GrowthStep(count(epoch), "insert", position, count(neurons))
        else:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a growth step; write EPOCH:widen LAYER +NEURONS "
                "or EPOCH:insert NEURONS at POSITION, such as 3:widen 1 +32"
            )
        if step.epoch < 1 or step.neurons < 1 or step.layer == 0:
            raise argparse.ArgumentTypeError(
                f"{part!r}: epochs, layers and neurons are counted from 1"
            )
        steps.append(step)
    return tuple(sorted(steps, key=lambda step: step.epoch))  # stable


def count(digits):
    """A number of a growth step: digits, however many (too many: refused)."""
    return whole_number(digits, 0)


def planned_sizes(sizes, steps):
    """The layer sizes (inputs first) after ``steps``, computed, not built.

    A step that the network would refuse (a layer that does not exist) is
    left out: ``grown`` reports it, once the sizes are known to fit.
    """
    sizes = list(sizes)
    for step in steps:
        if step.action == "widen":
            if 1 <= step.layer <= len(sizes) - 2:
                sizes[step.layer] += step.neurons
        else:
            position = len(sizes) - 1 if step.layer is None else step.layer
            if 1 <= position <= len(sizes) - 1:
                sizes.insert(position, step.neurons)
    return sizes


def schedule_size_problem(hidden, steps):
    """None if the network stays within common.cli's size limits through
    every step of the schedule; else why not, naming the first step over."""
    sizes = [PIXELS, *hidden, CLASSES]
    for number, step in enumerate(steps, start=1):
        sizes = planned_sizes(sizes, [step])
        problem = network_size_problem(
            sizes,
            f"after step {number} of {len(steps)} ({step.epoch}:{step}) the network",
        )
        if problem:
            return problem
    return None


def grown(hidden, activation, steps):
    """A stand-in network of this shape after ``steps``.

    Used to check a schedule before training, once ``schedule_size_problem``
    has said it fits; raises ValueError with the network's own reason.
    """
    trial = DynamicNetwork(np.random.default_rng(0), hidden, activation)
    for step in steps:
        step.apply(trial)
    return trial


def automatic_steps(network, epoch, widen_next, max_parameters):
    """The automatic policy's next growth, or () if nothing fits.

    It alternates between widening (every hidden layer by half its width)
    and deepening (a new layer on top, the identity of the top hidden
    layer), starting with widening. A change that would take the network
    over ``max_parameters``, or over common.cli's size limits, gives way to
    the other; when neither fits, the network has reached its size. Sizes
    are counted, not built: nothing is allocated to find out.
    """
    widen = tuple(
        GrowthStep(epoch, "widen", layer, max(1, width // 2))
        for layer, width in enumerate(network.hidden, start=1)
    )
    deepen = ()
    if network.activation == "relu":
        deepen = (GrowthStep(epoch, "insert", None, network.sizes[-2]),)
    for steps in (widen, deepen) if widen_next else (deepen, widen):
        sizes = planned_sizes(network.sizes, steps)
        if (
            steps
            and parameter_count(sizes) <= max_parameters
            and network_size_problem(sizes, "") is None
        ):
            return steps
    return ()


class EpochEnd:
    """Runs after every epoch: grows the network, stops early.

    Growth steps of the ``schedule`` happen after their epoch. ``waiting``
    counts the epochs since the validation accuracy last rose (or since the
    last growth step); when it reaches ``patience``, auto-growth grows the
    network if it may, and otherwise early stopping, if on, ends training.
    With early stopping the weights of the best validation epoch (the
    latest one, on a tie) are kept, to be restored at the end.
    """

    def __init__(
        self,
        network,
        data,
        *,
        schedule=(),
        auto_grow=False,
        patience=DEFAULT_PATIENCE,
        early_stopping=False,
        max_parameters=DEFAULT_MAX_PARAMETERS,
        log=print,
    ):
        self.network, self.data = network, data
        self.schedule, self.auto_grow = schedule, auto_grow
        self.patience, self.early_stopping = patience, early_stopping
        self.max_parameters = max_parameters
        self.log = log or (lambda message: None)
        self.growth = []  # one dict per growth step, for the run record
        self.best_accuracy, self.best_epoch, self.best = -1.0, 0, None
        self.waiting = 0
        self.widen_next = True
        self.stopped_after = None

    def __call__(self, epoch, history):
        validation = history.validation_accuracy[-1]
        if validation > self.best_accuracy:
            self.waiting = 0
        else:
            self.waiting += 1
        if validation >= self.best_accuracy:
            self.best_accuracy, self.best_epoch = validation, epoch
            if self.early_stopping:
                self.best = self.network.snapshot()

        due = [step for step in self.schedule if step.epoch == epoch]
        if due:
            self.grow(epoch, due, "schedule", validation)
        if self.waiting >= self.patience and self.auto_grow:
            steps = automatic_steps(
                self.network, epoch, self.widen_next, self.max_parameters
            )
            if steps:
                self.widen_next = steps[0].action != "widen"
                self.grow(epoch, steps, "auto", validation)
        if self.waiting >= self.patience and self.early_stopping:
            self.stopped_after = epoch
            self.log(
                f"early stop after epoch {epoch}: validation accuracy has not "
                f"risen for {self.patience} epochs"
            )
            return True
        return False

    def grow(self, epoch, steps, trigger, validation_before):
        """Apply ``steps``, check that the outputs did not change, log it."""
        network = self.network
        images = self.data.validation.images
        outputs_before = network.probabilities(images)
        before = {
            "architecture": repr(network),
            "parameters": network.parameter_count(),
        }
        for step in steps:
            step.apply(network)
        change = float(np.max(np.abs(network.probabilities(images) - outputs_before)))
        validation_after = accuracy(network, self.data.validation)
        self.waiting = 0
        entry = {
            "epoch": epoch,
            "trigger": trigger,
            "change": ", ".join(map(str, steps)),
            "architecture_before": before["architecture"],
            "parameters_before": before["parameters"],
            "architecture": repr(network),
            "parameters": network.parameter_count(),
            "validation_accuracy_before": validation_before,
            "validation_accuracy_after": validation_after,
            "largest_output_change": change,
        }
        self.growth.append(entry)
        arrows = " -> ".join(map(str, network.sizes))
        self.log(
            f"grow after epoch {epoch} ({trigger}): {entry['change']}: {arrows}, "
            f"{entry['parameters']:,} parameters; val {100 * validation_before:.1f}% "
            f"before, {100 * validation_after:.1f}% after "
            f"(outputs moved by at most {change:.1g})"
        )

    def restore_best(self, last_epoch):
        """With early stopping: go back to the best epoch's weights, if a later
        epoch was worse."""
        if self.best is not None and self.best_epoch != last_epoch:
            self.network.restore(self.best)
            self.log(
                f"kept the weights of epoch {self.best_epoch} "
                f"(val {100 * self.best_accuracy:.1f}%): {self.network!r}"
            )


# ----------------------------------------------------------------- parsers


def shift_pixels(text):
    """argparse type: the largest shift of a training digit, 0 to MAX_SHIFT."""
    return whole_number(
        text,
        0,
        MAX_SHIFT,
        f" pixels, half the {IMAGE_SIDE}-pixel field; "
        "a larger shift moves most digits out of it",
    )


def build_parser():
    parser = ArgumentParser(
        prog=f"python -m {STAGE}",
        usage=f"python -m {STAGE} [options]\n"
        f"       python -m {STAGE} predict IMAGE... --model FILE [--show FOLDER]",
        description="Stage 4: a network that grows while it learns. Hidden "
        "layers and neurons are added during training (--grow, --auto-grow) "
        "without changing what the network computes; Adam, a cosine "
        "learning-rate schedule, L2, early stopping and shifted training "
        "digits make it the best of the four stages.",
        epilog=f"To read your own pictures with a trained model: python -m {STAGE} "
        "predict IMAGE... --model results/stage4_dynamic/RUN/model.npz "
        f"(see python -m {STAGE} predict --help).",
    )
    add_common_arguments(
        parser,
        stage=STAGE,
        epochs=DEFAULT_EPOCHS,
        batch_size=32,
        learning_rate=DEFAULT_RATES[DEFAULT_OPTIMIZER],
    )
    parser.set_defaults(learning_rate=None)  # then chosen by the optimiser

    network = parser.add_argument_group("the network")
    network.add_argument(
        "--layers",
        type=layer_widths,
        default=DEFAULT_LAYERS,
        metavar="N,N,...",
        help="widths of the hidden layers to start with, first to last "
        f"(default: {','.join(map(str, DEFAULT_LAYERS))})",
    )
    network.add_argument(
        "--activation",
        choices=tuple(ACTIVATIONS),
        default=DEFAULT_ACTIVATION,
        help="activation of the hidden layers; inserting layers needs relu "
        f"(default: {DEFAULT_ACTIVATION})",
    )

    growth = parser.add_argument_group("growth")
    growth.add_argument(
        "--grow",
        type=growth_schedule,
        default=growth_schedule(DEFAULT_GROWTH),
        metavar="SCHEDULE",
        help=f"{GROWTH_HELP} (default: {DEFAULT_GROWTH!r})",
    )
    growth.add_argument(
        "--auto-grow",
        action="store_true",
        help="also grow whenever the validation accuracy has not risen for "
        "--patience epochs: widen every hidden layer by half, or add a layer "
        "on top, in turn, while the network stays within --max-parameters",
    )
    growth.add_argument(
        "--max-parameters",
        type=parameter_limit,
        default=DEFAULT_MAX_PARAMETERS,
        metavar="N",
        help=f"--auto-grow's limit, up to {PARAMETER_BUDGET:,} "
        f"(default: {DEFAULT_MAX_PARAMETERS:,})",
    )

    training = parser.add_argument_group("training")
    training.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        default=DEFAULT_OPTIMIZER,
        help="adam, SGD with momentum, or plain sgd; each has its own default "
        "--learning-rate: "
        + ", ".join(f"{name} {rate:g}" for name, rate in DEFAULT_RATES.items())
        + f" (default: {DEFAULT_OPTIMIZER})",
    )
    training.add_argument(
        "--momentum",
        type=fraction,
        default=0.9,
        help="for --optimizer momentum: share of the previous step kept (default: 0.9)",
    )
    training.add_argument(
        "--l2",
        type=non_negative_float,
        default=0.0,
        help="weight decay: the cost gains l2/2 times the sum of squared "
        "weights (default: 0)",
    )
    training.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="learning rate per epoch: from --learning-rate down to nearly 0 "
        "along half a cosine over --epochs, or constant (default: cosine)",
    )
    training.add_argument(
        "--shift",
        type=shift_pixels,
        default=DEFAULT_SHIFT,
        metavar="PIXELS",
        help="move each training digit by up to this many pixels in each "
        f"direction, anew every epoch; 0: off, at most {MAX_SHIFT} "
        f"(default: {DEFAULT_SHIFT})",
    )
    training.add_argument(
        "--patience",
        type=positive_int,
        default=DEFAULT_PATIENCE,
        metavar="EPOCHS",
        help="epochs without a better validation accuracy before --auto-grow "
        f"grows, or --early-stopping stops (default: {DEFAULT_PATIENCE})",
    )
    training.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation accuracy has not risen for --patience "
        "epochs (and --auto-grow cannot grow), and keep the weights of the best "
        "validation epoch. Off by default: with the cosine schedule the last "
        "epochs are the best, and the best of 500 validation digits is a noisy "
        "choice; it suits --schedule constant",
    )
    parser.add_argument(
        "--check-gradients",
        action="store_true",
        help="compare backpropagation with numerical gradients for a narrow "
        "network of the chosen depth and activation, before and after each "
        "kind of growth, then exit",
    )
    return parser


def build_predict_parser():
    parser = ArgumentParser(
        prog=f"python -m {STAGE} predict",
        description="Read the digit in each of your own pictures (PNG, JPEG, ...; "
        "any size; dark ink on light paper or the reverse) with a trained "
        "model. Each picture is made into a 28x28 digit the way MNIST's were "
        "(common.images); then the network prints its answer and the three "
        "most likely digits with their probabilities.",
    )
    parser.add_argument(
        "images",
        type=file_path,
        nargs="+",
        metavar="IMAGE",
        help="picture files, one digit in each",
    )
    parser.add_argument(
        "--model",
        type=file_path,
        required=True,
        metavar="FILE",
        help="a model saved by training: results/stage4_dynamic/RUN/model.npz",
    )
    parser.add_argument(
        "--show",
        type=output_folder,
        metavar="FOLDER",
        help="also save the 28x28 digit the network saw (white ink on black) "
        "as FOLDER/<picture name>.png",
    )
    return parser


# ---------------------------------------------------------- gradient check


def check_gradients(seed, hidden, activation, l2):
    """Largest relative errors between backprop and central differences,
    for a narrow network, then after add_neurons, then after add_layer.

    Returns [(what, {parameter: error})]. Every hidden layer is narrowed to
    at most CHECK_WIDTH neurons, and the biases get small random values
    instead of 0, so that no ReLU sits exactly on its kink (where the slope
    is not defined). A layer just added as the identity sits on it in every
    neuron whose input is 0, so its biases are moved off it the same way.
    """
    rng = np.random.default_rng(seed)
    narrow = [min(width, CHECK_WIDTH) for width in hidden]
    network = DynamicNetwork(
        rng, narrow, activation, l2=l2, inputs=PIXELS, dtype=np.float64
    )
    x = rng.random((CHECK_EXAMPLES, PIXELS))
    labels = rng.integers(0, CLASSES, CHECK_EXAMPLES)

    def errors():
        for biases in network.biases:
            biases[...] = rng.normal(0, CHECK_BIAS, biases.shape)
        _, analytic = network.gradients(x, labels)
        return {
            name: relative_error(
                analytic[name],
                numerical_gradient(lambda: network.cost(x, labels), values, CHECK_STEP),
            )
            for name, values in network.parameters().items()
        }

    report = [(repr(network), errors())]
    if network.hidden:
        network.add_neurons(1, 2)
        report.append((f"after add_neurons(1, 2): {network!r}", errors()))
    if activation == "relu":
        network.add_layer(network.sizes[-2] + 1)
        report.append((f"after add_layer(): {network!r}", errors()))
    return report


# --------------------------------------------------------------- commands


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        return predict(argv[1:])
    return train_and_grow(argv)


def train_and_grow(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.learning_rate is None:
        args.learning_rate = DEFAULT_RATES[args.optimizer]
    if args.check_gradients:
        for what, errors in check_gradients(
            args.seed, args.layers, args.activation, args.l2
        ):
            print(what)
            for name, error in errors.items():
                print(f"  {name:>3}: largest relative error {error:.2e}")
        return
    # The default schedule was written for the default network; say so when
    # it does not fit the one asked for, rather than blame a --grow not given.
    schedule, remedy = "--grow", ""
    if args.grow is parser.get_default("grow"):
        schedule = f"the default --grow {DEFAULT_GROWTH!r} does not fit"
        remedy = "; give --grow none, or a schedule of your own"
    problem = schedule_size_problem(args.layers, args.grow)
    if problem:
        parser.error(f"{schedule}: {problem}{remedy}")
    try:
        grown(args.layers, args.activation, args.grow)
    except ValueError as error:
        parser.error(f"{schedule}: {error}{remedy}")
    check_writable(args.out, "--out")

    log = None if args.quiet else print
    data = load(args.dataset, args.data_dir, log=log)
    rng = np.random.default_rng(args.seed)
    network = DynamicNetwork(
        rng,
        args.layers,
        args.activation,
        make_optimizer(args.optimizer, args.momentum),
        args.l2,
        class_names=data.class_names,
    )
    initial = repr(network)
    if not args.quiet:
        print(f"{network!r}, {network.parameter_count():,} parameters")
    # A step after the last epoch would leave its new neurons untrained.
    schedule = [step for step in args.grow if step.epoch < args.epochs]
    late = [f"{step.epoch}:{step}" for step in args.grow if step not in schedule]
    if late and not args.quiet:
        print(
            f"growth skipped, training ends at epoch {args.epochs}: " + ", ".join(late)
        )

    epoch_end = EpochEnd(
        network,
        data,
        schedule=schedule,
        auto_grow=args.auto_grow,
        patience=args.patience,
        early_stopping=args.early_stopping,
        max_parameters=args.max_parameters,
        log=log,
    )
    rate = args.learning_rate
    if args.schedule == "cosine":
        rate = cosine_schedule(args.learning_rate, args.epochs)
    started = time.perf_counter()
    history = train(
        network,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=rate,
        rng=rng,
        quiet=args.quiet,
        augment=lambda images, rng: shift_images(images, args.shift, rng),
        on_epoch_end=epoch_end,
        l2=args.l2,
    )
    seconds = time.perf_counter() - started
    epoch_end.restore_best(len(history.loss))

    def draw(folder):
        plots.weight_images(
            network.weights[0].T[:30],
            folder / "first_layer_weights.png",
            title="Incoming weights of 30 neurons of the first hidden layer",
        )

    finish(
        args=args,
        stage=STAGE,
        network=network,
        data=data,
        history=history,
        training_seconds=seconds,
        hyperparameters={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "schedule": args.schedule,
            "optimizer": args.optimizer,
            "momentum": args.momentum if args.optimizer == "momentum" else None,
            "l2": args.l2,
            "layers": list(args.layers),
            "activation": args.activation,
            "shift": args.shift,
            "grow": ", ".join(f"{step.epoch}:{step}" for step in args.grow),
            "auto_grow": args.auto_grow,
            "max_parameters": args.max_parameters,
            "patience": args.patience,
            "early_stopping": args.early_stopping,
        },
        draw=draw,
        initial_architecture=initial,
        growth=epoch_end.growth,
        best_epoch=epoch_end.best_epoch,
        stopped_after_epoch=epoch_end.stopped_after,
    )


def predict(argv):
    """The predict command: one line per picture, digit and top three.

    A model that cannot be loaded stops everything, before any picture is
    read. A picture that cannot be read (missing, not an image, no ink)
    stops only itself: its error line is printed in its turn, the other
    pictures are still predicted (and shown with --show), and the exit
    status is 1. A --show folder that cannot be written stops the command.
    """
    args = build_predict_parser().parse_args(argv)
    if args.show is not None:
        check_writable(args.show, "--show")
    network = DynamicNetwork.load(args.model)
    saved = set()  # the names used in --show so far
    status = 0
    for path in args.images:
        try:
            digit = read_digit(path)  # (784,) float32 in [0, 1]
        except ProjectError as error:  # its message names the picture
            print(f"error: {error}", file=sys.stderr)  # as common.cli.run would
            status = 1
            continue
        answer(network, path, digit)
        if args.show is not None:
            save_seen(digit, path, args.show, saved)
    return status


def answer(network, path, digit):
    """Print the network's digit for ``path`` and its three most likely."""
    names = network.class_names
    probabilities = network.probabilities(digit[None, :])[0]  # (10,)
    top = np.argsort(probabilities)[::-1][:TOP]
    likely = ", ".join(f"{names[k]} {100 * probabilities[k]:.1f}%" for k in top)
    print(f"{path}: {names[top[0]]}  ({likely})", flush=True)  # before any error


def save_seen(digit, path, folder, saved):
    """Save the digit the network saw as ``folder/<picture name>.png``;
    ``saved`` holds the names used so far, so that none is overwritten."""
    target = unused_name(folder / f"{path.stem}.png", saved)
    try:
        save_digit(digit, target)
    except OSError as error:
        raise ProjectError(
            f"cannot save {target} ({error.strerror or error})"
        ) from None
    print(f"  the network saw {target}")


def unused_name(path, taken):
    """``path``, or ``name-2.png``, ``name-3.png``... if taken in this run
    or already a file: --show never overwrites one (the user's own picture
    may be in that folder, under the very name it would get)."""
    candidate, number = path, 1
    while candidate in taken or candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    taken.add(candidate)
    return candidate


def save_digit(digit, path):
    """A (784,) digit in [0, 1] as an 8-bit 28x28 PNG, written whole."""
    pixels = np.rint(digit.reshape(IMAGE_SIDE, IMAGE_SIDE) * MAX_PIXEL)
    image = Image.fromarray(pixels.astype(np.uint8), mode="L")
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


if __name__ == "__main__":
    sys.exit(run(main))
