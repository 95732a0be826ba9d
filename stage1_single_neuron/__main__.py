"""python -m stage1_single_neuron: train the 784 -> 1 -> 10 network.

Prints one line per epoch, then the test accuracy; saves the model, a run
record and plots under --out. See ``python -m stage1_single_neuron --help``.
"""

import argparse
import sys
import time

import numpy as np

from common import plots
from common.cli import add_common_arguments, run
from common.data import load
from common.gradients import numerical_gradient, relative_error
from common.runs import finish
from common.training import train
from stage1_single_neuron.network import SingleNeuronNetwork

STAGE = "stage1_single_neuron"
GRADIENT_CHECK_EXAMPLES = 8


def build_parser():
    parser = argparse.ArgumentParser(
        prog=f"python -m {STAGE}",
        description="Stage 1: a network with ONE hidden neuron, 784 -> 1 -> 10, "
        "sigmoid activations, mean squared error, minibatch SGD.",
    )
    add_common_arguments(
        parser, stage=STAGE, epochs=40, batch_size=8, learning_rate=2.0
    )
    parser.add_argument(
        "--random-start",
        action="store_true",
        help="start the hidden weights at random instead of along the first "
        "linear discriminant of the training digits",
    )
    parser.add_argument(
        "--check-gradients",
        action="store_true",
        help="compare backpropagation with numerical gradients, then exit",
    )
    return parser


def check_gradients(seed):
    """Largest relative error between backprop and central differences."""
    rng = np.random.default_rng(seed)
    network = SingleNeuronNetwork(rng, dtype=np.float64)
    x = rng.random((GRADIENT_CHECK_EXAMPLES, network.w1.size))
    labels = rng.integers(0, 10, GRADIENT_CHECK_EXAMPLES)
    _, analytic = network.gradients(x, labels)
    errors = {}
    for name, values in network.parameters().items():
        numeric = numerical_gradient(lambda: network.cost(x, labels), values)
        errors[name] = relative_error(analytic[name], numeric)
    return errors


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.check_gradients:
        errors = check_gradients(args.seed)
        for name, error in errors.items():
            print(f"{name:>3}: largest relative error {error:.2e}")
        print(f"largest relative error {max(errors.values()):.2e}")
        return

    log = None if args.quiet else print
    data = load(args.dataset, args.data_dir, log=log)
    rng = np.random.default_rng(args.seed)
    network = SingleNeuronNetwork(rng)
    if not args.random_start:
        network.start_along_discriminant(data.train.images, data.train.labels)
    if not args.quiet:
        print(f"{network!r}, {network.parameter_count()} parameters")

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
        hidden_output, _ = network.forward(data.test.images)
        plots.weight_images(
            network.w1,
            folder / "hidden_weights.png",
            title="The hidden neuron's 784 weights",
        )
        plots.class_histograms(
            hidden_output,
            data.test.labels,
            folder / "hidden_output_by_class.png",
            class_names=data.class_names,
            xlabel="hidden neuron's output a1",
            title="One number per image cannot separate ten classes",
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
            "start": "random" if args.random_start else "discriminant",
        },
        draw=draw,
    )


if __name__ == "__main__":
    sys.exit(run(main))
