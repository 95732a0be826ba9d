"""python -m benchmarks.speed: each stage's speed, the machine's limit, PyTorch.

For every stage's network at its default size and settings (read from the
stage's own ``build_parser()`` defaults), at batch sizes 32 and 128, this
times a full epoch of 60,000 examples twice: once with the stage's own
``train_step`` and once with the same network in PyTorch (same layer sizes,
activation, loss and optimiser, float32, PyTorch's default thread count).
Both loops do the same work in the same order: minibatches taken by index
from one random permutation (``common.training.minibatches``), then
forward, loss, backward, update, and the loss read back as a Python number.
The data are already in memory as float32 arrays (PyTorch's tensors share
NumPy's memory). After a few warm-up steps of each, the two are timed in
turns, epoch by epoch, so that a busy machine slows both alike; the table
shows the median epoch of each.

The machine's limit is the speed of one large float32 matrix product
(4096 x 4096 by 4096 x 4096), the operation these networks spend their time
in, measured with NumPy and with PyTorch; the faster is taken as the peak.

Achieved GFLOP/s counts only the matrix products, 2 m n k floating-point
operations for an (m, k) @ (k, n) product. A layer with n_in inputs and
n_out outputs costs per example 2 n_in n_out for its forward product
z = a W, the same for its weight gradient a^T delta, and the same again for
the error signal passed down, delta W^T; the first layer does not pass one
down (the pixels have no weights: neither the stages nor PyTorch, whose
input needs no gradient, compute it). For layer sizes n_0 .. n_L:

    FLOP per epoch = examples * 2 * (2 n_0 n_1 + 3 * sum_{l >= 2} n_{l-1} n_l)

For 784 -> 100 -> 10 and 60,000 examples that is 19.2 GFLOP (28.6 GFLOP if
the first layer's input gradient were counted). Elementwise work
(activations, softmax, optimiser updates) is real time but is not counted.

Peak memory is measured with ``tracemalloc``, which NumPy tells about every
array it allocates: the most memory held at once while our network is made
(stage 1's also started along its discriminant, from the training data, as
its command line does) and trained for 50 more (untimed) steps, that is its
weights, optimiser state and the temporary arrays of a step (a copy of the
whole training set at the start of an epoch would show too), plus the
training data already in memory (60,000 x 784 float32 = 188 MB); also shown
as a multiple of the data.
Python's and the libraries' own memory is not counted, and PyTorch's
allocations are invisible to ``tracemalloc``.

Stage 4 is timed twice: at the size it starts from, and at the size its
default growth schedule leaves it (made by the stage's own growth code).
Only ``train_step`` is timed: stage 4's shifted digits, its learning-rate
schedule and the growth steps themselves are not, nor is the per-epoch
evaluation that ``common.training.train`` adds.

Data: Fashion-MNIST's 60,000 training images if they are installed (its
training and validation parts together), else random numbers of the same
shape; the time of an epoch does not depend on the values.

``--check`` does not time anything: it starts each stage's network and its
PyTorch twin from the same weights, takes a few steps on the same batches
with both, and prints the losses and the largest difference between the
weights: whether the two really take the same steps.

Options: ``--scaling`` times stage 3's network (ReLU) at hidden widths 100,
400 and 1600, depths 1 to 6 and training sets of 10,000 to 60,000 examples
instead; ``--quick`` is a fast smoke run (fewer epochs, 10,000 examples, a
smaller matrix product). Without PyTorch installed, only our side is timed.
A stage whose code is not there yet shows as ``missing``.
"""

import datetime
import importlib
import itertools
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from common.cli import ArgumentParser, non_negative_int, positive_int
from common.data import CLASSES, PIXELS, load
from common.errors import DataError
from common.training import minibatches

try:
    import torch
except ImportError:  # optional: see benchmarks/requirements.txt
    torch = None

STAGES = (
    "stage1_single_neuron",
    "stage2_hidden_layer",
    "stage3_multilayer",
    "stage4_dynamic",
)
BATCH_SIZES = (32, 128)
EXAMPLES = 60_000  # one epoch, the size of the MNIST training files
QUICK_EXAMPLES = 10_000
WARMUP_BATCHES = 50  # untimed: first calls fill caches and start threads
TIMED_EPOCHS = 3  # the median of these is reported
MEMORY_BATCHES = 50  # steps watched for the peak memory (reached at once)
QUICK_TIMED_EPOCHS = 1

PEAK_SIZE = 4096  # the peak is measured on a (4096, 4096) @ (4096, 4096)
QUICK_PEAK_SIZE = 2048
PEAK_REPEATS = 3
GIGA = 1e9
MEGA = 1e6

# --scaling: stage 3's network with ReLU hidden layers, at batch size 128.
SCALING_BATCH = 128
SCALING_WIDTHS = (100, 400, 1600)  # one hidden layer of this many neurons
SCALING_DEPTHS = range(1, 7)  # hidden layers of DEPTH_WIDTH neurons each
DEPTH_WIDTH = 256
SCALING_EXAMPLES = (10_000, 30_000, 60_000)
QUICK_SCALING_EXAMPLES = (2_000, 5_000, 10_000)

# The goals of the speed work, checked below the table.
GOAL_RATIO = 0.7  # at most this fraction of PyTorch's time
GOAL_PEAK_SHARE = 0.5  # at least this share of the peak, stages 2 and 3
GOAL_PEAK_STAGES = ("stage2_hidden_layer", "stage3_multilayer")
GOAL_PEAK_BATCH = 128
GOAL_MEMORY = 1.2  # at most this multiple of the training data

# Environment variables that set the thread counts of OpenBLAS (NumPy) and
# OpenMP (PyTorch); shown because a busy machine may call for 1 thread each.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
CHECK_STEPS = 5  # --check: steps taken by both from the same weights
CHECK_BATCH = 64
ERROR_WIDTH = 60
ADAM_NOTE = (
    "PyTorch side: torch.optim.Adam, the nearest; the stage's own Adam keeps "
    "its bias corrections per weight and may add to them (see --check)"
)


# ------------------------------------------------------ what is trained


@dataclass
class Setup:
    """One network and how it learns, enough to build it in both libraries.

    ``sizes`` lists the neurons of every layer, input and output included.
    ``output`` is "softmax" (with cross-entropy) or "sigmoid" (with half
    the squared error, summed over the outputs, averaged over the batch).
    ``optimizer`` is "sgd", "momentum" or "adam"; ``l2`` is weight decay
    added to the weights' gradients (not the biases'). ``build(rng)``
    makes our network; ``prepare(network, images, labels)``, if given, is
    what the stage does with the training data before its first epoch
    (counted in the memory column, not in the timed epochs).
    """

    sizes: list
    activation: str
    output: str
    optimizer: str
    learning_rate: float
    build: object
    momentum: float = 0.0
    l2: float = 0.0
    prepare: object = None
    label: str = ""  # told apart from the stage's other setups by this
    notes: list = field(default_factory=list)  # printed below the table

    def describe(self):
        shape = "-".join(map(str, self.sizes))
        return f"{shape} {self.activation} {self.optimizer}"


class Missing(Exception):
    """A stage whose code is not in the tree (yet)."""


def stage_defaults(stage):
    """The stage's command-line defaults, or None if it has no __main__.py."""
    try:
        module = importlib.import_module(f"{stage}.__main__")
    except ModuleNotFoundError as error:
        if error.name in (stage, f"{stage}.__main__"):
            return None
        raise
    return module.build_parser().parse_args([])


def default(defaults, name, fallback):
    """An option's default from the stage's parser, else ``fallback``."""
    if defaults is None:
        return fallback
    return getattr(defaults, name, fallback)


def stage_setups(stage, hidden_sizes=None, activation=None):
    """The Setups of ``stage`` at its defaults; raises Missing if absent.

    One Setup per stage, and for stage 4 a second one: the network as its
    default growth schedule leaves it. ``hidden_sizes`` and ``activation``
    override the defaults (stages 3 and 4), for the scaling tables.
    """
    try:
        network = importlib.import_module(f"{stage}.network")
    except ModuleNotFoundError as error:
        if error.name in (stage, f"{stage}.network"):
            raise Missing(stage) from None
        raise
    defaults = stage_defaults(stage)
    setups = SETUPS[stage](network, defaults, hidden_sizes, activation)
    if defaults is None:
        for setup in setups:
            setup.notes.append("no __main__.py yet: defaults from network.py")
    return setups


# One function per stage: its network as the stage's command line would make
# it, built by the stage's own class. Each takes the stage's network module,
# its parsed command-line defaults (None without a __main__.py, when the
# numbers written here, the stage's documented defaults, stand in), and the
# overrides of the scaling tables.


def stage1_setups(network, defaults, hidden_sizes, activation):
    setup = Setup(
        sizes=[PIXELS, 1, CLASSES],
        activation="sigmoid",
        output="sigmoid",
        optimizer="sgd",
        learning_rate=default(defaults, "learning_rate", 2.0),
        build=network.SingleNeuronNetwork,
        # As stage 1's command line does, unless told --random-start.
        prepare=lambda network, images, labels: network.start_along_discriminant(
            images, labels
        ),
    )
    return [setup]


def stage2_setups(network, defaults, hidden_sizes, activation):
    hidden = default(defaults, "hidden", network.DEFAULT_HIDDEN)
    loss = default(defaults, "loss", network.DEFAULT_LOSS)
    setup = Setup(
        sizes=[PIXELS, hidden, CLASSES],
        activation="sigmoid",
        output="softmax" if loss == "cross-entropy" else "sigmoid",
        optimizer="sgd",
        learning_rate=default(defaults, "learning_rate", 0.5),
        build=lambda rng: network.HiddenLayerNetwork(rng, hidden=hidden, loss=loss),
    )
    return [setup]


def stage3_setups(network, defaults, hidden_sizes, activation):
    hidden = hidden_sizes or default(defaults, "layers", network.DEFAULT_HIDDEN)
    activation = activation or default(
        defaults, "activation", network.DEFAULT_ACTIVATION
    )
    momentum = default(defaults, "momentum", 0.9)
    l2 = default(defaults, "l2", 1e-4)
    setup = Setup(
        sizes=[PIXELS, *hidden, CLASSES],
        activation=activation,
        output="softmax",
        optimizer="momentum" if momentum else "sgd",
        learning_rate=default(defaults, "learning_rate", 0.02),
        momentum=momentum,
        l2=l2,
        build=lambda rng: network.MultilayerNetwork(
            rng, hidden=hidden, activation=activation, momentum=momentum, l2=l2
        ),
    )
    return [setup]


def stage4_setups(network, defaults, hidden_sizes, activation):
    hidden = hidden_sizes or default(defaults, "layers", (256,))
    activation = activation or default(
        defaults, "activation", network.DEFAULT_ACTIVATION
    )
    optimizer = default(defaults, "optimizer", "adam")
    momentum = default(defaults, "momentum", 0.9) if optimizer == "momentum" else 0
    l2 = default(defaults, "l2", 0.0)
    growth = () if hidden_sizes else default(defaults, "grow", ())
    learning_rate = default(defaults, "learning_rate", None)
    if learning_rate is None:  # the command line picks one per optimiser
        rates = getattr(sys.modules.get("stage4_dynamic.__main__"), "DEFAULT_RATES", {})
        learning_rate = rates.get(optimizer, 0.002)

    def builder(steps):
        def build(rng):
            grown = network.DynamicNetwork(
                rng,
                hidden=hidden,
                activation=activation,
                optimizer=network.make_optimizer(optimizer, momentum),
                l2=l2,
            )
            for step in steps:
                step.apply(grown)  # the stage's own growth code
            return grown

        return build

    def setup(steps, label):
        build = builder(steps)
        return Setup(
            sizes=list(build(np.random.default_rng(0)).sizes),
            activation=activation,
            output="softmax",
            optimizer=optimizer,
            learning_rate=learning_rate,
            momentum=momentum,
            l2=l2,
            build=build,
            label=label,
            notes=[ADAM_NOTE] if optimizer == "adam" else [],
        )

    setups = [setup((), "")]
    if growth:
        setups.append(setup(growth, "grown"))
    return setups


SETUPS = {
    "stage1_single_neuron": stage1_setups,
    "stage2_hidden_layer": stage2_setups,
    "stage3_multilayer": stage3_setups,
    "stage4_dynamic": stage4_setups,
}


def epoch_flops(sizes, examples):
    """Matrix-product FLOPs of one epoch; the formula is in the docstring."""
    products = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
    return examples * 2 * (2 * products[0] + 3 * sum(products[1:]))


# ------------------------------------------------------------ the data


def training_data(examples, rng):
    """(images, labels, description): float32 (examples, 784) and int64."""
    try:
        data = load("fashion", download=False, log=None)
    except DataError:
        images = rng.random((examples, PIXELS), dtype=np.float32)
        labels = rng.integers(0, CLASSES, examples)
        return images, labels, f"random numbers, {examples:,} x {PIXELS}"
    images = np.concatenate([data.train.images, data.validation.images])
    labels = np.concatenate([data.train.labels, data.validation.labels])
    count = min(examples, len(labels))
    return images[:count].copy(), labels[:count].copy(), f"Fashion-MNIST, {count:,}"


# ------------------------------------------------------------- our side


def our_epoch(network, images, labels, batch_size, learning_rate, rng, batches=None):
    """One epoch of the stage's own train_step, as common.training does it
    (only its first ``batches`` minibatches, if given); the mean loss."""
    total_loss, count = 0.0, 0
    order = minibatches(len(labels), batch_size, rng)
    for batch in itertools.islice(order, batches):
        loss = network.train_step(images[batch], labels[batch], learning_rate)
        total_loss += loss * len(batch)
        count += len(batch)
    return total_loss / count


def peak_memory(setup, images, labels, batch_size, seed):
    """Most bytes NumPy held at once while making a network and training it
    for MEMORY_BATCHES steps (weights, optimiser state, temporary arrays)."""
    rng = np.random.default_rng(seed)
    tracemalloc.start()
    try:
        network = setup.build(rng)
        if setup.prepare is not None:
            setup.prepare(network, images, labels)
        our_epoch(
            network,
            images,
            labels,
            batch_size,
            setup.learning_rate,
            rng,
            MEMORY_BATCHES,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------ PyTorch side


def torch_network(setup):
    """The same layers as ``setup`` in PyTorch; returns the logits' model."""
    activations = {
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
    }
    layers = []
    pairs = list(zip(setup.sizes[:-1], setup.sizes[1:], strict=True))
    for index, (n_in, n_out) in enumerate(pairs):
        layers.append(torch.nn.Linear(n_in, n_out))
        if index < len(pairs) - 1:
            layers.append(activations[setup.activation]())
    return torch.nn.Sequential(*layers)


def torch_loss(setup):
    """The cost of a minibatch from its logits z, as the stage defines it."""
    if setup.output == "softmax":
        return torch.nn.functional.cross_entropy

    def half_squared_error(z, labels):
        target = torch.nn.functional.one_hot(labels, CLASSES).to(z.dtype)
        return 0.5 * ((torch.sigmoid(z) - target) ** 2).sum() / len(labels)

    return half_squared_error


def torch_optimizer(setup, model):
    """SGD, SGD with momentum, or Adam; weight decay on the weights only."""
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for name, p in named if name.endswith("weight")],
            "weight_decay": setup.l2,
        },
        {
            "params": [p for name, p in named if name.endswith("bias")],
            "weight_decay": 0.0,
        },
    ]
    if setup.optimizer == "adam":
        return torch.optim.Adam(groups, lr=setup.learning_rate)
    return torch.optim.SGD(groups, lr=setup.learning_rate, momentum=setup.momentum)


def torch_epoch(
    model, loss_of, optimizer, images, labels, batch_size, rng, batches=None
):
    """One epoch in PyTorch: forward, loss, backward, step, per minibatch
    (only the first ``batches`` minibatches, if given); the mean loss."""
    total_loss, count = 0.0, 0
    order = minibatches(len(labels), batch_size, rng)
    for batch in itertools.islice(order, batches):
        index = torch.from_numpy(batch)
        x, y = images[index], labels[index]
        optimizer.zero_grad()
        loss = loss_of(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(batch)
        count += len(batch)
    return total_loss / count


def copy_weights(network, model):
    """Give the PyTorch model our network's weights (W1, b1, W2, b2, ...)."""
    linears = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    arrays = list(network.parameters().values())
    with torch.no_grad():
        for linear, weights, biases in zip(
            linears, arrays[0::2], arrays[1::2], strict=True
        ):
            shape = (linear.in_features, linear.out_features)  # ours: x @ W
            linear.weight.copy_(torch.from_numpy(weights.reshape(shape).T.copy()))
            linear.bias.copy_(torch.from_numpy(biases.reshape(-1)))


def check_twin(setup, images, labels, seed):
    """Losses of both, and the largest weight difference, after a few steps."""
    network = setup.build(np.random.default_rng(seed))
    model = torch_network(setup)
    copy_weights(network, model)
    loss_of, optimizer = torch_loss(setup), torch_optimizer(setup, model)
    our_losses, their_losses = [], []
    for step in range(CHECK_STEPS):
        batch = slice(step * CHECK_BATCH, (step + 1) * CHECK_BATCH)
        x, y = images[batch], labels[batch]
        our_losses.append(network.train_step(x, y, setup.learning_rate))
        optimizer.zero_grad()
        loss = loss_of(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        their_losses.append(loss.item())
    theirs = torch_network(setup)
    copy_weights(network, theirs)  # ours, laid out like PyTorch's
    difference = max(
        float((mine - their).detach().abs().max())
        for mine, their in zip(theirs.parameters(), model.parameters(), strict=True)
    )
    return our_losses, their_losses, difference


def check_lines(stages, images, labels, seed):
    lines = [
        f"the first {CHECK_STEPS} steps (batch {CHECK_BATCH}) from the same "
        "weights: losses, and the largest difference of any weight after them"
    ]
    for stage in stages:
        try:
            setups = stage_setups(stage)
        except Exception as error:
            lines.append(f"{stage}: {failed(stage, error).problem}")
            continue
        for setup in setups:
            ours, theirs, difference = check_twin(setup, images, labels, seed)
            lines.append(
                f"{f'{stage} {setup.label}'.strip()} ({setup.describe()}):\n"
                f"  ours    {' '.join(f'{loss:.4f}' for loss in ours)}\n"
                f"  PyTorch {' '.join(f'{loss:.4f}' for loss in theirs)}\n"
                f"  largest weight difference {difference:.1e}"
                + (
                    f" (l2 {setup.l2:g}: our loss includes the penalty)"
                    if setup.l2
                    else ""
                )
            )
    return lines


# ---------------------------------------------------------------- timing


def seconds(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def time_in_turns(ours, theirs, timed_epochs):
    """Median seconds of ``ours()`` and ``theirs()`` (None: not timed).

    A few warm-up steps each, then the two alternate, epoch by epoch, so
    that load from other programs falls on both alike.
    """
    ours(WARMUP_BATCHES)
    if theirs is not None:
        theirs(WARMUP_BATCHES)
    our_times, their_times = [], []
    for _ in range(timed_epochs):
        our_times.append(seconds(ours))
        if theirs is not None:
            their_times.append(seconds(theirs))
    their_median = statistics.median(their_times) if their_times else None
    return statistics.median(our_times), their_median


def peak_gflops(size):
    """GFLOP/s of a (size, size) @ (size, size) float32 product: (NumPy, torch)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flops = 2 * size**3

    def best_of(product):
        product()  # warm-up
        return flops / statistics.median(seconds(product) for _ in range(PEAK_REPEATS))

    numpy_rate = best_of(lambda: a @ b) / GIGA
    torch_rate = None
    if torch is not None:
        a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)
        torch_rate = best_of(lambda: a_t @ b_t) / GIGA
    return numpy_rate, torch_rate


# ------------------------------------------------------------ one row


@dataclass
class Row:
    """One line of a table: what was timed and what was measured."""

    case: str
    batch: int = 0
    network: str = ""
    ours: float = None  # median seconds per epoch
    theirs: float = None  # PyTorch's
    flops: float = 0.0  # per epoch
    extra_memory: float = None  # bytes besides the data: network and epoch
    data_bytes: int = 0
    problem: str = ""  # "missing" or an error: nothing was measured
    notes: list = field(default_factory=list)


def measure(case, setup, images, labels, batch_size, timed_epochs, seed):
    """Time ``setup`` at ``batch_size`` in both libraries; a filled Row."""
    our_rng = np.random.default_rng(seed)
    network = setup.build(our_rng)

    def ours(batches=None):
        our_epoch(
            network, images, labels, batch_size, setup.learning_rate, our_rng, batches
        )

    theirs = None
    if torch is not None:
        torch.manual_seed(seed)
        their_rng = np.random.default_rng(seed)
        model = torch_network(setup)
        loss_of, optimizer = torch_loss(setup), torch_optimizer(setup, model)
        images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)

        def theirs(batches=None):
            torch_epoch(
                model,
                loss_of,
                optimizer,
                images_t,
                labels_t,
                batch_size,
                their_rng,
                batches,
            )

    our_seconds, their_seconds = time_in_turns(ours, theirs, timed_epochs)
    return Row(
        case=case,
        batch=batch_size,
        network=setup.describe(),
        ours=our_seconds,
        theirs=their_seconds,
        flops=epoch_flops(setup.sizes, len(labels)),
        extra_memory=peak_memory(setup, images, labels, batch_size, seed),
        data_bytes=images.nbytes,
        notes=setup.notes,
    )


def failed(case, error, batch=0):
    """A Row that says why nothing was measured."""
    if isinstance(error, Missing):
        return Row(case=case, batch=batch, problem="missing")
    message = f"error: {type(error).__name__}: {error}"
    return Row(case=case, batch=batch, problem=message[:ERROR_WIDTH])


# ------------------------------------------------------------- tables


def format_table(rows, peak, markdown=False):
    """The rows as text: fixed-width columns, or a Markdown table."""
    header = [
        "case",
        "network",
        "batch",
        "ours s",
        "torch s",
        "ours/torch",
        "GFLOP",
        "ours GFLOP/s",
        "% peak",
        "torch GFLOP/s",
        "% peak",
        "memory MB",
        "x data",
    ]
    lines = [header]
    for row in rows:
        lines.append(format_row(row, peak))
    if markdown:
        text = ["| " + " | ".join(cells) + " |" for cells in lines]
        text.insert(1, "|" + "---|" * len(header))
        return "\n".join(text)
    widths = [max(len(cells[i]) for cells in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()
        for cells in lines
    )


def format_row(row, peak):
    blank = "-"
    batch = str(row.batch) if row.batch else blank
    if row.problem:
        return [row.case, row.problem, batch] + [blank] * 10

    def rate(epoch_seconds):
        if epoch_seconds is None:
            return [blank, blank]
        gflops = row.flops / epoch_seconds / GIGA
        return [f"{gflops:.1f}", f"{100 * gflops / peak:.0f}%"]

    has_torch = row.theirs is not None
    memory = row.data_bytes + row.extra_memory
    return [
        row.case,
        row.network,
        batch,
        f"{row.ours:.3f}",
        f"{row.theirs:.3f}" if has_torch else blank,
        f"{row.ours / row.theirs:.2f}" if has_torch else blank,
        f"{row.flops / GIGA:.2f}",
        *rate(row.ours),
        *rate(row.theirs),
        f"{memory / MEGA:.0f}",
        f"{memory / row.data_bytes:.2f}",
    ]


def goal_lines(rows, peak):
    """One line per goal of the speed work: met, missed by which rows, or
    not measured."""

    def verdict(checked, misses):
        if not checked:
            return "not measured"
        return "missed by " + ", ".join(misses) if misses else "met"

    def name(row):
        return f"{row.case} b{row.batch}"

    measured = [row for row in rows if not row.problem]
    timed_both = [row for row in measured if row.theirs is not None]
    slow = [
        f"{name(row)} {row.ours / row.theirs:.2f}x"
        for row in timed_both
        if row.ours > GOAL_RATIO * row.theirs
    ]
    peak_rows = [
        row
        for row in measured
        if row.case in GOAL_PEAK_STAGES and row.batch == GOAL_PEAK_BATCH
    ]
    low = [
        f"{name(row)} {100 * share:.0f}%"
        for row in peak_rows
        if (share := row.flops / row.ours / GIGA / peak) < GOAL_PEAK_SHARE
    ]
    large = [
        f"{name(row)} {ratio:.2f}x"
        for row in measured
        if (ratio := (row.data_bytes + row.extra_memory) / row.data_bytes) > GOAL_MEMORY
    ]
    return [
        f"goal: at most {GOAL_RATIO}x PyTorch's time: {verdict(timed_both, slow)}",
        f"goal: stages 2 and 3 at batch {GOAL_PEAK_BATCH} reach "
        f"{100 * GOAL_PEAK_SHARE:.0f}% of peak: {verdict(peak_rows, low)}",
        f"goal: memory at most {GOAL_MEMORY}x the training data: "
        f"{verdict(measured, large)}",
    ]


# ----------------------------------------------------------- the runs


def stage_rows(stages, images, labels, timed_epochs, seed, log):
    """One row per stage (and setup) and batch size, default networks."""
    rows = []
    for stage in stages:
        try:
            setups = stage_setups(stage)
        except Exception as error:  # a stage being written must not stop the rest
            rows.append(failed(stage, error))
            continue
        for setup in setups:
            case = f"{stage} {setup.label}".strip()
            for batch_size in BATCH_SIZES:
                log(f"timing {case} ({setup.describe()}), batch {batch_size}")
                try:
                    rows.append(
                        measure(
                            case, setup, images, labels, batch_size, timed_epochs, seed
                        )
                    )
                except Exception as error:
                    rows.append(failed(case, error, batch_size))
    return rows


def scaling_rows(images, labels, timed_epochs, seed, quick, log):
    """Stage 3 with ReLU: wider, deeper, and on more data; three tables."""
    stage = "stage3_multilayer"
    examples = QUICK_SCALING_EXAMPLES if quick else SCALING_EXAMPLES
    cases = {
        "width": [(f"width {width}", [width], len(labels)) for width in SCALING_WIDTHS],
        "depth": [
            (f"depth {depth}", [DEPTH_WIDTH] * depth, len(labels))
            for depth in SCALING_DEPTHS
        ],
        "training set": [(f"{count:,} examples", None, count) for count in examples],
    }
    tables = {}
    for title, table_cases in cases.items():
        rows = []
        for case, hidden_sizes, count in table_cases:
            log(f"timing {stage}, {case}")
            try:
                setup = stage_setups(stage, hidden_sizes, activation="relu")[0]
                rows.append(
                    measure(
                        case,
                        setup,
                        images[:count],
                        labels[:count],
                        SCALING_BATCH,
                        timed_epochs,
                        seed,
                    )
                )
            except Exception as error:
                rows.append(failed(case, error, SCALING_BATCH))
        tables[title] = rows
    return tables


def machine_lines(numpy_peak, torch_peak, peak_size, data_description):
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line for line in cpuinfo if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    except OSError:
        pass
    lines = [
        f"{datetime.date.today()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__} ({blas.get('name')} {blas.get('version')}), "
        + (
            f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
            if torch is not None
            else "PyTorch: not installed"
        ),
        "threads: "
        + ", ".join(
            f"{name}={os.environ.get(name, 'unset')}" for name in THREAD_VARIABLES
        ),
        f"data: {data_description}",
        f"peak, float32 {peak_size} x {peak_size} matrix product: "
        f"NumPy {numpy_peak:.0f} GFLOP/s"
        + (f", PyTorch {torch_peak:.0f} GFLOP/s" if torch_peak else ""),
    ]
    return lines


def build_parser():
    parser = ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Time an epoch of each stage's default network against the "
        "same network in PyTorch and against this machine's matrix-product peak.",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="instead: stage 3 (ReLU) at hidden widths 100, 400, 1600, depths "
        "1 to 6, and 10,000 to 60,000 training examples",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run: 10,000 examples, one timed epoch, a smaller peak "
        "measurement",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        metavar="STAGE",
        help="which stages to time (default: all four)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"timed epochs per measurement, after {WARMUP_BATCHES} warm-up "
        f"steps (default: {TIMED_EPOCHS}, with --quick {QUICK_TIMED_EPOCHS})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of weights and batch order",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="instead of timing: check that each network's PyTorch twin takes "
        "the same steps from the same weights",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the tables as Markdown"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    timed_epochs = args.epochs or (QUICK_TIMED_EPOCHS if args.quick else TIMED_EPOCHS)
    examples = QUICK_EXAMPLES if args.quick else EXAMPLES
    peak_size = QUICK_PEAK_SIZE if args.quick else PEAK_SIZE

    def log(message):
        print(message, file=sys.stderr, flush=True)

    if torch is None:
        print(
            "PyTorch is not installed: timing our code only "
            "(pip install -r benchmarks/requirements.txt)."
        )
    images, labels, description = training_data(
        examples, np.random.default_rng(args.seed)
    )
    if args.check:
        if torch is None:
            return
        print("\n".join(check_lines(args.stages, images, labels, args.seed)))
        return
    log(f"measuring the peak: {peak_size} x {peak_size} matrix products")
    numpy_peak, torch_peak = peak_gflops(peak_size)
    peak = max(numpy_peak, torch_peak or 0)

    if args.scaling:
        tables = scaling_rows(images, labels, timed_epochs, args.seed, args.quick, log)
    else:
        tables = {
            "stages at their defaults": stage_rows(
                args.stages, images, labels, timed_epochs, args.seed, log
            )
        }

    print("\n".join(machine_lines(numpy_peak, torch_peak, peak_size, description)))
    print(
        f"seconds per epoch: median of {timed_epochs} after {WARMUP_BATCHES} "
        f"warm-up steps; % peak of {peak:.0f} GFLOP/s; memory: training data + "
        "the most NumPy held for the network and an epoch (tracemalloc)"
    )
    for title, rows in tables.items():
        print(f"\n{title}" + (f" (batch {SCALING_BATCH})" if args.scaling else ""))
        print(format_table(rows, peak, markdown=args.markdown))
        notes = {(row.case, note): None for row in rows for note in row.notes}
        for case, note in notes:
            print(f"note: {case}: {note}")
    if not args.scaling:
        print()
        print("\n".join(goal_lines(tables["stages at their defaults"], peak)))


if __name__ == "__main__":
    main()
