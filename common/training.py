"""The epoch loop every stage shares: shuffle, minibatches, report, history.

What a network learns and how it updates its weights is each stage's lesson
and lives in the stage's ``network.py``; this module only drives it. A
network used here has two methods:

``train_step(images, labels, learning_rate) -> float``
    One gradient step on a minibatch; returns the minibatch's mean loss
    (computed before the update).
``predict(images) -> labels``
    The most likely class of each image.

and ``parameters()``, a dict of its weight arrays, checked for non-finite
values after every epoch.

Training that goes wrong says so, with what to change: weights that stop
being finite end it with a ``TrainingError``; weights that stay finite but
learn nothing (the saved network no better than chance on validation), or
a loss that ends far above where it started, give a warning once the run
is saved (see ``run_warnings``).
"""

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from common.errors import TrainingError

EVALUATION_BATCH = 2048  # images per forward pass when only predicting

# Weight decay this strong is named beside the learning rate when training
# fails: measured on the sample, an --l2 of 0.1 costs stages 3 and 4 some 15
# points after 3 epochs, 0.3 keeps stage 3 at chance, 1e6 makes it overflow.
LARGE_L2 = 0.1

# A validation accuracy within this many standard errors of chance is no
# evidence of learning: see chance_threshold.
CHANCE_STANDARD_ERRORS = 3

# The loss has risen, not just wobbled, when the last epoch's mean is this
# many times the loss of the very first minibatch, before any step. A single
# example's loss (batch size 1) can sit a third below the untrained
# network's mean: measured on the sample, stage 3 at batch size 1 started at
# 2.06 and stayed at 2.35 with a learning rate of 1e-9.
LOSS_ROSE = 1.5


@dataclass
class History:
    """Per-epoch numbers, in order; what plots, records and printing use.
    ``first_loss`` is the loss of the first minibatch, before any step: the
    untrained network's, which the last epoch's is compared with."""

    loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    validation_accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    first_loss: float | None = None

    def as_dict(self):
        return asdict(self)

    def followed_by(self, later):
        """One history of this training and of ``later``, which went on from
        where this one ended (its epochs come after these)."""
        return History(
            loss=self.loss + later.loss,
            train_accuracy=self.train_accuracy + later.train_accuracy,
            validation_accuracy=self.validation_accuracy + later.validation_accuracy,
            seconds=self.seconds + later.seconds,
            first_loss=self.first_loss,
        )

    def line(self, epoch, epochs):
        """One fixed-width line for epoch ``epoch`` (counted from 1)."""
        i = epoch - 1
        width = len(str(epochs))
        return (
            f"epoch {epoch:>{width}}/{epochs}  loss {self.loss[i]:.4f}  "
            f"train {100 * self.train_accuracy[i]:5.1f}%  "
            f"val {100 * self.validation_accuracy[i]:5.1f}%  "
            f"{self.seconds[i]:5.1f} s"
        )


def minibatches(count, batch_size, rng):
    """Index arrays that cover ``range(count)`` once, in a random order.

    Indexing images and labels with the same array keeps them paired. The
    last batch is shorter when ``batch_size`` does not divide ``count``: it
    is used, not dropped (10 examples at batch size 4: 4, 4, 2).
    """
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def accuracy(network, split):
    """Fraction of ``split`` that ``network`` classifies correctly."""
    return float(np.mean(predict(network, split.images) == split.labels))


def predict(network, images):
    """Predicted labels, in chunks so that memory stays small."""
    return np.concatenate(
        [
            network.predict(images[start : start + EVALUATION_BATCH])
            for start in range(0, len(images), EVALUATION_BATCH)
        ]
    )


def train(
    network,
    data,
    *,
    epochs,
    batch_size,
    learning_rate,
    rng,
    quiet=False,
    augment=None,
    on_epoch_end=None,
    l2=0.0,
):
    """Train ``network`` on ``data.train`` with minibatch gradient descent.

    ``learning_rate`` is a number or a function ``epoch -> rate`` (epochs
    counted from 1). ``augment(images, rng) -> images`` may change each
    minibatch (data augmentation). ``on_epoch_end(epoch, history)`` runs
    after each epoch's line is printed; returning True stops training early.
    ``l2`` is the network's weight decay, used only to word the advice of
    an error (see ``advice``).

    Raises ``TrainingError`` as soon as the loss or a weight is no longer a
    finite number, so nothing broken is ever saved.
    """
    history = History()
    images, labels = data.train.images, data.train.labels
    show_bar = not quiet and sys.stderr.isatty()
    for epoch in range(1, epochs + 1):
        rate = learning_rate(epoch) if callable(learning_rate) else learning_rate
        if not rate > 0:  # also catches nan
            raise ValueError(f"the learning rate for epoch {epoch} is {rate}")
        started = time.perf_counter()
        total_loss = 0.0
        batches = minibatches(len(labels), batch_size, rng)
        bar = tqdm(
            batches,
            total=-(-len(labels) // batch_size),
            desc=f"epoch {epoch}",
            leave=False,
            disable=not show_bar,
        )
        for number, batch in enumerate(bar, start=1):
            batch_images = images[batch]
            if augment is not None:
                batch_images = augment(batch_images, rng)
            loss = network.train_step(batch_images, labels[batch], rate)
            if history.first_loss is None:
                history.first_loss = float(loss)
            if not np.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch}, batch {number}; "
                    + advice(rate, l2)
                )
            total_loss += loss * len(batch)
        # A step that breaks the weights shows in the next batch's loss; only
        # the epoch's last step needs a look at the weights themselves.
        check_finite(network, epoch, number, advice(rate, l2))

        history.loss.append(total_loss / len(labels))
        history.train_accuracy.append(accuracy(network, data.train))
        history.validation_accuracy.append(accuracy(network, data.validation))
        history.seconds.append(time.perf_counter() - started)
        if not quiet:
            print(history.line(epoch, epochs), flush=True)
        if on_epoch_end is not None and on_epoch_end(epoch, history):
            break
    return history


def check_finite(network, epoch, batch, what_to_try):
    for name, values in network.parameters().items():
        if not np.all(np.isfinite(values)):
            raise TrainingError(
                f"the weights {name} are no longer finite after epoch {epoch}, "
                f"batch {batch}; {what_to_try}"
            )


def advice(learning_rate, l2=0.0, either_way=False):
    """What to change when training blew up or learned nothing: a smaller
    learning rate, or, when the loss neither rose nor fell (``either_way``),
    one far smaller and one far larger: steps too small to move the weights
    and steps so large that they silenced every neuron both leave the loss
    where it started. The weight decay too, when it is strong (``LARGE_L2``).
    """
    rate = f"--learning-rate (now {learning_rate:g})"
    if either_way:
        text = f"try a {rate} 10 times smaller and one 10 times larger"
    else:
        text = f"try a smaller {rate}"
    if l2 >= LARGE_L2:
        text += f"{',' if either_way else ''} or a smaller --l2 (now {l2:g})"
    return text


def chance_threshold(labels):
    """``(chance, threshold)`` for a validation part with these labels.

    ``chance`` is what a network that learned nothing scores: always
    answering the most common class (a tenth on the balanced sample, about
    11% on full MNIST, where ones are the most common digit). Under that
    guess each image is right with probability ``chance``, so the accuracy
    over ``n`` images has a standard error of sqrt(chance (1 - chance) / n);
    ``threshold`` is ``CHANCE_STANDARD_ERRORS`` of them above chance: 14.0%
    on the sample's 500 validation digits, about 12% on MNIST's 10,000.
    """
    labels = np.asarray(labels)
    chance = float(np.bincount(labels).max() / len(labels))
    error = math.sqrt(chance * (1 - chance) / len(labels))
    return chance, chance + CHANCE_STANDARD_ERRORS * error


def rose(loss, first_loss):
    """True if ``loss`` is over ``LOSS_ROSE`` times the loss before the
    first step: the steps overshot instead of going downhill."""
    return first_loss is not None and loss > LOSS_ROSE * first_loss


def run_warnings(
    history, validation_accuracy, validation_labels, learning_rate, l2=0.0
):
    """Warning lines about a finished run: none for a run that went well.

    Weights can go wrong and stay finite: a step so large that every
    sigmoid saturates, or every ReLU stays off, or a weight decay that
    pulls every weight to 0; or steps so small, or gradients so faint, that
    nothing moves. Training then ends without an error; the run is a real
    result and is saved, but it should not pass without a word.

    ``validation_accuracy`` is the saved network's (not the best epoch's:
    a run can pass chance once and end below it). If it is no better than
    chance (see ``chance_threshold``), the warning says so, with the cure:
    a smaller learning rate if the loss rose in any epoch (``rose``), else
    a smaller or a larger one, since both kinds of failure leave the loss
    where it started. A network above chance whose last epoch's loss rose
    gets the second warning alone.
    """
    if history.first_loss is None or not history.loss:
        return []
    text = (
        f"the loss went from {history.first_loss:.4g} before the first step to "
        f"{history.loss[-1]:.4g} in the last epoch"
    )
    chance, threshold = chance_threshold(validation_labels)
    if validation_accuracy <= threshold:
        overshot = rose(max(history.loss), history.first_loss)
        return [
            f"warning: the saved network's validation accuracy, "
            f"{100 * validation_accuracy:.1f}%, is no better than chance "
            f"({100 * chance:.1f}% for always the most common class; "
            f"{100 * threshold:.1f}% would be clearly above it on "
            f"{len(validation_labels):,} images): it learned nothing; {text}; "
            + advice(learning_rate, l2, either_way=not overshot)
        ]
    if rose(history.loss[-1], history.first_loss):
        return [f"warning: {text}: the steps overshoot; " + advice(learning_rate, l2)]
    return []
