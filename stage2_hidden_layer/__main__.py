"""python -m stage2_hidden_layer: train the 784 -> N -> 10 network.

Prints one line per epoch, then the test accuracy; saves the model, a run
record and plots under --out. See ``python -m stage2_hidden_layer --help``.
"""

import argparse
import sys
import time

import numpy as np

from common import plots
from common.cli import (
    ArgumentParser,
    add_common_arguments,
    check_writable,
    network_size_problem,
    positive_int,
    run,
)
from common.data import CLASSES, PIXELS, load
from common.gradients import numerical_gradient, relative_error
from common.runs import finish
from common.training import train
from stage2_hidden_layer.network import (
    DEFAULT_HIDDEN,
    DEFAULT_LOSS,
    LOSSES,
    HiddenLayerNetwork,
)

STAGE = "stage2_hidden_layer"
GRADIENT_CHECK_EXAMPLES = 8
GRADIENT_CHECK_HIDDEN = 10  # at most: two forward passes per weight are slow
HIDDEN_IMAGES = 100  # at most this many hidden neurons drawn as pictures


def hidden_size(text):
    """argparse type: the width of the hidden layer, within common.cli's
    limits, so that a size whose weights cannot fit is refused at once."""
    hidden = positive_int(text)
    problem = network_size_problem(
        [PIXELS, hidden, CLASSES], f"a hidden layer of {hidden:,} neurons"
    )
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return hidden


def build_parser():
    parser = ArgumentParser(
        prog=f"python -m {STAGE}",
        description="Stage 2: one hidden layer of N sigmoid neurons, 784 -> N -> 10, "
        "softmax outputs with cross-entropy or sigmoid outputs with mean squared "
        "error, minibatch SGD.",
    )
    # Measured on the sample: a step of 0.2 per example (0.8 / 4) learned
    # best; twice that, or batches of 32, cost 1 to 5 points, and the
    # validation accuracy stops rising after about 15 epochs.
    add_common_arguments(
        parser, stage=STAGE, epochs=20, batch_size=4, learning_rate=0.8
    )
    parser.add_argument(
        "--hidden",
        type=hidden_size,
        default=DEFAULT_HIDDEN,
        metavar="N",
        help=f"neurons in the hidden layer (default: {DEFAULT_HIDDEN})",
    )
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default=DEFAULT_LOSS,
        help="cross-entropy on softmax outputs, or stage 1's mean squared error "
        f"on sigmoid outputs (default: {DEFAULT_LOSS})",
    )
    parser.add_argument(
        "--check-gradients",
        action="store_true",
        help="compare backpropagation with numerical gradients for both losses, "
        "then exit",
    )
    return parser


def check_gradients(seed, hidden, loss):
    """Relative error between backprop and central differences, per parameter,
    in float64 on random inputs and labels."""
    rng = np.random.default_rng(seed)
    network = HiddenLayerNetwork(rng, hidden=hidden, loss=loss, dtype=np.float64)
    x = rng.random((GRADIENT_CHECK_EXAMPLES, PIXELS))
    labels = rng.integers(0, CLASSES, GRADIENT_CHECK_EXAMPLES)
    _, analytic = network.gradients(x, labels)
    errors = {}
    for name, values in network.parameters().items():
        numeric = numerical_gradient(lambda: network.cost(x, labels), values)
        errors[name] = relative_error(analytic[name], numeric)
    return errors


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.check_gradients:
        hidden = min(args.hidden, GRADIENT_CHECK_HIDDEN)
        print(f"checking a {PIXELS} -> {hidden} -> {CLASSES} network")
        largest = 0.0
        for loss in LOSSES:
            errors = check_gradients(args.seed, hidden, loss)
            for name, error in errors.items():
                print(f"{loss:>13} {name:>3}: relative error {error:.2e}")
            largest = max(largest, *errors.values())
        print(f"largest relative error {largest:.2e}")
        return

    check_writable(args.out, "--out")
    log = None if args.quiet else print
    data = load(args.dataset, args.data_dir, log=log)
    rng = np.random.default_rng(args.seed)
    network = HiddenLayerNetwork(rng, hidden=args.hidden, loss=args.loss)
    if not args.quiet:
        print(f"{network!r}, {network.parameter_count():,} parameters")

    started = time.perf_counter()
    history = train(
        network,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        rng=rng,
        quiet=args.quiet,
    )
    seconds = time.perf_counter() - started

    def draw(folder):
        shown = min(network.hidden, HIDDEN_IMAGES)
        which = "the" if shown == network.hidden else f"{shown} of the"
        plots.weight_images(
            network.W1.T[:shown],  # one row of 784 weights per hidden neuron
            folder / "hidden_weights.png",
            title=f"Incoming weights of {which} {network.hidden} hidden neurons",
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
            "hidden": args.hidden,
            "loss": args.loss,
        },
        draw=draw,
    )


if __name__ == "__main__":
    sys.exit(run(main))
