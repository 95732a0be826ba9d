"""python -m stage1_single_neuron: train the 784 -> 1 -> 10 network.

Prints one line per epoch, then the test accuracy; saves the model, a run
record and plots under --out. See ``python -m stage1_single_neuron --help``.

The defaults (40 epochs of minibatches of 32 at a learning rate of 2, the
hidden weights started along the first linear discriminant, the weights of
the epoch with the best validation accuracy kept) were measured on the
embedded sample, seeds 0 to 19: 26.7% to 31.9% test accuracy, 29.3% on
average, in under a second of training on 2 cores; the same models score
28.0% to 31.8% on the 10,000 real MNIST test digits.
"""

import sys
import time

import numpy as np

from common import plots
from common.cli import ArgumentParser, add_common_arguments, check_writable, run
from common.data import load
from common.gradients import numerical_gradient, relative_error
from common.runs import finish
from common.training import train
from stage1_single_neuron.network import SingleNeuronNetwork

STAGE = "stage1_single_neuron"
GRADIENT_CHECK_EXAMPLES = 8


def build_parser():
    parser = ArgumentParser(
        prog=f"python -m {STAGE}",
        description="Stage 1: a network with ONE hidden neuron, 784 -> 1 -> 10, "
        "sigmoid activations, mean squared error, minibatch SGD.",
    )
    add_common_arguments(
        parser, stage=STAGE, epochs=40, batch_size=32, learning_rate=2.0
    )
    parser.add_argument(
        "--random-start",
        action="store_true",
        help="start the hidden weights at random instead of along the first "
        "linear discriminant of the training digits",
    )
    parser.add_argument(
        "--keep-last",
        action="store_true",
        help="keep the weights of the last epoch instead of those of the epoch "
        "with the best validation accuracy",
    )
    parser.add_argument(
        "--check-gradients",
        action="store_true",
        help="compare backpropagation with numerical gradients, then exit",
    )
    return parser


def check_gradients(seed):
    """Relative error between backprop and central differences, per parameter.

    In float64, at random weights and inputs (not at the network's start,
    where w2 = 0 makes dw1 exactly 0 and checks nothing).
    """
    rng = np.random.default_rng(seed)
    network = SingleNeuronNetwork(rng, dtype=np.float64)
    for values in network.parameters().values():
        values[...] = rng.standard_normal(values.shape) / np.sqrt(values.size)
    x = rng.random((GRADIENT_CHECK_EXAMPLES, network.w1.size))
    labels = rng.integers(0, 10, GRADIENT_CHECK_EXAMPLES)
    _, analytic = network.gradients(x, labels)
    errors = {}
    for name, values in network.parameters().items():
        numeric = numerical_gradient(lambda: network.cost(x, labels), values)
        errors[name] = relative_error(analytic[name], numeric)
    return errors


class BestEpoch:
    """Remembers the weights of the epoch with the best validation accuracy.

    Mean squared error is not accuracy: while the loss falls smoothly, the
    validation accuracy jumps by several points from one epoch to the next,
    because which middle digit wins a stretch of a1 hangs on small changes.
    Keeping the best epoch, judged on validation and never on test, is
    early stopping. Measured on the sample, seeds 0 to 9: 26.9% to 31.9%
    test accuracy (29.2% on average), against 23.2% to 31.9% (28.0%) for
    the weights of the last epoch.
    """

    def __init__(self, network):
        self.network = network
        self.epoch = 0
        self.accuracy = -1.0
        self.weights = None

    def update(self, epoch, history):
        """``on_epoch_end`` for ``common.training.train``; never stops early."""
        if history.validation_accuracy[-1] > self.accuracy:
            self.epoch = epoch
            self.accuracy = history.validation_accuracy[-1]
            self.weights = {
                name: values.copy()
                for name, values in self.network.parameters().items()
            }
        return False

    def restore(self):
        """Put the remembered weights back into the network, in place."""
        for name, values in self.network.parameters().items():
            values[...] = self.weights[name]


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.check_gradients:
        errors = check_gradients(args.seed)
        for name, error in errors.items():
            print(f"{name:>3}: relative error {error:.2e}")
        print(f"largest relative error {max(errors.values()):.2e}")
        return

    check_writable(args.out, "--out")
    log = None if args.quiet else print
    data = load(args.dataset, args.data_dir, log=log)
    rng = np.random.default_rng(args.seed)
    network = SingleNeuronNetwork(rng)
    if not args.random_start:
        network.start_along_discriminant(data.train.images, data.train.labels)
    if not args.quiet:
        print(f"{network!r}, {network.parameter_count()} parameters")

    best = BestEpoch(network)
    started = time.perf_counter()
    history = train(
        network,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        rng=rng,
        quiet=args.quiet,
        on_epoch_end=None if args.keep_last else best.update,
    )
    seconds = time.perf_counter() - started
    kept_epoch = len(history.loss)
    if not args.keep_last:
        best.restore()
        kept_epoch = best.epoch
        if not args.quiet:
            print(
                f"kept the weights of epoch {best.epoch} "
                f"(best validation accuracy {100 * best.accuracy:.1f}%)"
            )

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
            "keep": "last epoch" if args.keep_last else "best validation epoch",
        },
        draw=draw,
        kept_epoch=kept_epoch,
    )


if __name__ == "__main__":
    sys.exit(run(main))
