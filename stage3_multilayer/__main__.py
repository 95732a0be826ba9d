"""python -m stage3_multilayer: train a network with several hidden layers.

Prints one line per epoch, then the test accuracy; saves the model, a run
record and plots under --out, among them the gradient size of every layer
over training. See ``python -m stage3_multilayer --help``. Try the lesson:

    python -m stage3_multilayer --layers 64,64,64,64,64 --activation sigmoid
    python -m stage3_multilayer --layers 64,64,64,64,64 --activation relu
"""

import sys
import time

import numpy as np

from common import plots
from common.cli import (
    ArgumentParser,
    add_common_arguments,
    check_writable,
    fraction,
    layer_widths,
    non_negative_float,
    run,
)
from common.data import CLASSES, PIXELS, load
from common.gradients import numerical_gradient, relative_error
from common.runs import finish
from common.training import train
from stage3_multilayer.network import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION,
    DEFAULT_HIDDEN,
    MultilayerNetwork,
)

STAGE = "stage3_multilayer"
FIRST_LAYER_IMAGES = 20  # first-layer neurons drawn as pictures

# The gradient check runs two forward passes per weight, so it uses a
# narrow network of the chosen depth and activation (every hidden layer at
# most CHECK_WIDTH wide): the same code runs whatever the widths. Float64
# leaves room for a larger step than common.gradients' default: the
# truncation error (order h^2, 1e-8) stays small while the rounding error
# of the cost, divided by 2h, shrinks a hundredfold.
CHECK_WIDTH = 4
GRADIENT_CHECK_EXAMPLES = 5
CHECK_STEP = 1e-4


def build_parser():
    parser = ArgumentParser(
        prog=f"python -m {STAGE}",
        description="Stage 3: several hidden layers, 784 -> ... -> 10, "
        "sigmoid, tanh or ReLU, softmax with cross-entropy, "
        "SGD with momentum, L2 weight decay and a falling learning rate.",
    )
    add_common_arguments(
        parser, stage=STAGE, epochs=20, batch_size=16, learning_rate=0.02
    )
    parser.add_argument(
        "--layers",
        type=layer_widths,
        default=DEFAULT_HIDDEN,
        metavar="N,N,...",
        help="widths of the hidden layers, first to last; 784 inputs and 10 "
        f"outputs are implied (default: {','.join(map(str, DEFAULT_HIDDEN))})",
    )
    parser.add_argument(
        "--activation",
        choices=tuple(ACTIVATIONS),
        default=DEFAULT_ACTIVATION,
        help="activation of the hidden layers; the initialisation follows it: "
        f"He for relu, Glorot for sigmoid and tanh (default: {DEFAULT_ACTIVATION})",
    )
    parser.add_argument(
        "--momentum",
        type=fraction,
        default=0.9,
        help="fraction of the previous step kept in each step, 0 for plain "
        "SGD (default: 0.9)",
    )
    parser.add_argument(
        "--l2",
        type=non_negative_float,
        default=1e-4,
        help="weight decay: the cost gains l2/2 times the sum of squared "
        "weights (default: 1e-4)",
    )
    parser.add_argument(
        "--constant-rate",
        action="store_true",
        help="keep --learning-rate the same in every epoch instead of "
        "letting it fall linearly, epoch by epoch, to 1/epochs of itself",
    )
    parser.add_argument(
        "--check-gradients",
        action="store_true",
        help="compare backpropagation with numerical gradients for a network "
        "of the chosen depth, activation and --l2, each layer narrowed to at "
        f"most {CHECK_WIDTH} neurons, then exit",
    )
    return parser


def check_gradients(seed, hidden, activation, l2, pixels=None):
    """Largest relative error between backprop and central differences.

    Every hidden layer is narrowed to at most CHECK_WIDTH neurons; the
    biases start at small random values instead of 0, so that no ReLU sits
    exactly on its kink (where the slope is not defined). ``pixels`` limits
    the check of W1 to its first rows (one row per pixel; each row's
    gradient comes from the same line of code), to save time in the tests.

    Agreement shows as errors of 1e-7 or less. Among the thousands of
    entries of W1, one whose true gradient happens to be nearly 0 can show
    up to about 1e-4: its absolute error, near 1e-11, is the rounding floor
    of float64 differences. A wrong formula gives 1e-2 or more.
    """
    rng = np.random.default_rng(seed)
    narrow = [min(width, CHECK_WIDTH) for width in hidden]
    network = MultilayerNetwork(rng, narrow, activation, l2=l2, dtype=np.float64)
    for biases in network.biases:
        biases[...] = rng.normal(0, 0.1, biases.shape)
    x = rng.random((GRADIENT_CHECK_EXAMPLES, PIXELS))
    labels = rng.integers(0, CLASSES, GRADIENT_CHECK_EXAMPLES)

    _, analytic = network.gradients(x, labels)
    errors = {}
    for name, values in network.parameters().items():
        if name == "W1" and pixels is not None:
            values = values[:pixels]  # a view: the network sees the changes
        numeric = numerical_gradient(
            lambda: network.cost(x, labels), values, CHECK_STEP
        )
        errors[name] = relative_error(analytic[name][: len(values)], numeric)
    return errors


def linear_decay(learning_rate, epochs):
    """The learning rate of each epoch: ``learning_rate`` in the first, then
    falling in equal steps to ``learning_rate / epochs`` in the last.

    Early on, large steps cross the cost landscape quickly, and the noise of
    small batches keeps the network from settling too early. Late, with a
    constant rate, that same noise keeps the weights bouncing around a
    minimum; smaller steps let them settle into it (on full Fashion-MNIST
    the test accuracy of the defaults gains about 2 points).
    """
    return lambda epoch: learning_rate * (epochs - epoch + 1) / epochs


def gradient_size_recorder(network):
    """``(on_epoch_end, sizes)``: a callback for ``common.training.train`` and
    the dict it fills, layer name -> the mean of that layer's gradient size
    over each epoch. (The network records one size per training step.)"""
    sizes = {name: [] for name in network.gradient_sizes}

    def on_epoch_end(epoch, history):
        for name, steps in network.gradient_sizes.items():
            sizes[name].append(float(np.mean(steps)))
            steps.clear()

    return on_epoch_end, sizes


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.check_gradients:
        errors = check_gradients(args.seed, args.layers, args.activation, args.l2)
        for name, error in errors.items():
            print(f"{name:>3}: largest relative error {error:.2e}")
        print(f"largest relative error {max(errors.values()):.2e}")
        return

    check_writable(args.out, "--out")
    log = None if args.quiet else print
    data = load(args.dataset, args.data_dir, log=log)
    rng = np.random.default_rng(args.seed)
    network = MultilayerNetwork(
        rng, args.layers, args.activation, momentum=args.momentum, l2=args.l2
    )
    if not args.quiet:
        print(f"{network!r}, {network.parameter_count():,} parameters")

    record_gradients, gradient_sizes = gradient_size_recorder(network)

    started = time.perf_counter()
    history = train(
        network,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=(
            args.learning_rate
            if args.constant_rate
            else linear_decay(args.learning_rate, args.epochs)
        ),
        rng=rng,
        quiet=args.quiet,
        on_epoch_end=record_gradients,
        l2=args.l2,
    )
    seconds = time.perf_counter() - started

    def draw(folder):
        plots.layer_gradient_sizes(
            gradient_sizes,
            folder / "gradient_sizes.png",
            title=f"Weight gradient size per layer, {args.activation}, mean per epoch",
        )
        shown = min(network.hidden[0], FIRST_LAYER_IMAGES)
        plots.weight_images(
            network.weights[0].T[:shown],
            folder / "first_layer_weights.png",
            title=f"Incoming weights of {shown} neurons of the first hidden layer",
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
            "schedule": "constant" if args.constant_rate else "linear decay",
            "layers": list(args.layers),
            "activation": args.activation,
            "momentum": args.momentum,
            "l2": args.l2,
        },
        draw=draw,
        gradient_sizes=gradient_sizes,
    )


if __name__ == "__main__":
    sys.exit(run(main))
