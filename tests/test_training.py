"""Tests of common/training.py, the epoch loop every stage uses.

A small fake network records every minibatch it is given. Its images carry
their own label and their own position in the data set in their pixels, so
a test can read from any batch whether images and labels are still paired
and which examples each epoch visited.
"""

import re

import numpy as np
import pytest

from common.data import CLASSES, PIXELS, Dataset, Split
from common.errors import ProjectError, TrainingError
from common.training import (
    EVALUATION_BATCH,
    LOSS_ROSE,
    History,
    advice,
    chance_threshold,
    minibatches,
    rose,
    run_warnings,
    train,
)

INDEX_PIXELS = slice(CLASSES, CLASSES + 3)  # the example's number, base 256


def make_split(count, seed=0):
    """``count`` images whose first ten pixels are the label, one-hot, and
    whose next three are the image's number, so both can be read back."""
    labels = np.random.default_rng(seed).integers(0, CLASSES, count)
    images = np.zeros((count, PIXELS), dtype=np.float32)
    images[np.arange(count), labels] = 1
    index = np.arange(count)
    for place in range(3):
        images[:, CLASSES + place] = (index // 256**place % 256) / 255
    return Split(images, labels)


def read_labels(images):
    return np.argmax(images[:, :CLASSES], axis=1)


def read_indices(images):
    digits = np.rint(images[:, INDEX_PIXELS] * 255).astype(np.int64)
    return digits @ (256 ** np.arange(3))


def make_data(train_count, evaluation_count=20):
    return Dataset(
        name="fake",
        train=make_split(train_count, seed=1),
        validation=make_split(evaluation_count, seed=2),
        test=make_split(evaluation_count, seed=3),
    )


class RecordingNetwork:
    """Remembers every batch and rate it trains on; learns nothing.

    ``train_step`` returns the batch's mean label as its loss (so the
    epoch's loss has a known value), or the next of ``losses`` if given.
    ``predict`` reads the label from the pixels, but answers wrongly for
    every image whose number is a multiple of 4.
    """

    def __init__(self, losses=None):
        self.batches = []  # (indices, labels) of each train_step, in order
        self.rates = []
        self.predicted_sizes = []
        self.losses = iter(losses) if losses is not None else None
        self.weights = np.zeros(3)

    def train_step(self, images, labels, learning_rate):
        self.batches.append((read_indices(images), labels.copy()))
        self.rates.append(learning_rate)
        if not np.array_equal(read_labels(images), labels):
            raise AssertionError("images and labels were separated")
        if self.losses is not None:
            return next(self.losses)
        return float(np.mean(labels))

    def predict(self, images):
        self.predicted_sizes.append(len(images))
        labels = read_labels(images)
        wrong = read_indices(images) % 4 == 0
        return np.where(wrong, (labels + 1) % CLASSES, labels)

    def parameters(self):
        return {"weights": self.weights}


def fit(network, data, **options):
    settings = {"epochs": 1, "batch_size": 4, "learning_rate": 0.1, "quiet": True}
    settings.update(options)
    settings.setdefault("rng", np.random.default_rng(0))
    return train(network, data, **settings)


def epochs_of(network, batches_per_epoch):
    """The recorded batches, grouped by epoch."""
    batches = network.batches
    return [
        batches[start : start + batches_per_epoch]
        for start in range(0, len(batches), batches_per_epoch)
    ]


# ------------------------------------------------- shuffling and pairing


def test_the_fake_images_say_their_label_and_number():
    split = make_split(700)
    np.testing.assert_array_equal(read_labels(split.images), split.labels)
    np.testing.assert_array_equal(read_indices(split.images), np.arange(700))
    assert split.images.min() == 0 and split.images.max() == 1


def test_images_and_labels_are_shuffled_together_in_every_batch():
    data = make_data(103)
    network = RecordingNetwork()
    fit(network, data, epochs=4, batch_size=10)

    epochs = epochs_of(network, batches_per_epoch=11)
    assert len(epochs) == 4
    orders = []
    for batches in epochs:
        for indices, labels in batches:
            # The label given with each image is that image's own label.
            np.testing.assert_array_equal(labels, data.train.labels[indices])
        order = np.concatenate([indices for indices, _ in batches])
        # Every example exactly once per epoch.
        np.testing.assert_array_equal(np.sort(order), np.arange(103))
        orders.append(order)
    # Shuffled: not in file order, and a new order each epoch.
    assert not np.array_equal(orders[0], np.arange(103))
    assert len({tuple(order) for order in orders}) == 4


def test_same_generator_seed_same_order():
    orders = []
    for _ in range(2):
        network = RecordingNetwork()
        fit(network, make_data(50), epochs=2, rng=np.random.default_rng(7))
        orders.append(np.concatenate([indices for indices, _ in network.batches]))
    np.testing.assert_array_equal(orders[0], orders[1])


# ----------------------------------------------------------- batch sizes


def test_the_last_short_batch_is_used():
    network = RecordingNetwork()
    fit(network, make_data(10), epochs=2, batch_size=4)
    assert [len(indices) for indices, _ in network.batches] == [4, 4, 2] * 2


def test_5000_examples_in_batches_of_64_make_79_updates():
    network = RecordingNetwork()
    history = fit(network, make_data(5000), epochs=1, batch_size=64)
    sizes = [len(indices) for indices, _ in network.batches]
    assert len(sizes) == 79
    assert sizes[:-1] == [64] * 78 and sizes[-1] == 5000 - 78 * 64
    # The training accuracy is predicted in chunks and covers every image.
    assert max(network.predicted_sizes) <= EVALUATION_BATCH
    multiples_of_4 = len(range(0, 5000, 4))
    assert history.train_accuracy == [1 - multiples_of_4 / 5000]


def test_a_batch_larger_than_the_training_set_is_one_batch():
    network = RecordingNetwork()
    fit(network, make_data(7), epochs=3, batch_size=100)
    assert [len(indices) for indices, _ in network.batches] == [7, 7, 7]


def test_minibatches_cover_everything_once():
    batches = list(minibatches(10, 4, np.random.default_rng(0)))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))


# ----------------------------------------------------------------- history


def test_history_holds_the_example_weighted_loss_and_accuracies():
    data = make_data(10, evaluation_count=8)
    network = RecordingNetwork()
    history = fit(network, data, epochs=2, batch_size=4)
    # Each batch's loss is its mean label; weighting by batch size (4, 4, 2)
    # makes the epoch's loss the mean label of all ten examples.
    assert history.loss == pytest.approx([np.mean(data.train.labels)] * 2)
    # Images 0, 4, 8 of the ten are answered wrongly: 70%; of eight, 0, 4: 75%.
    assert history.train_accuracy == [0.7, 0.7]
    assert history.validation_accuracy == [0.75, 0.75]
    assert len(history.seconds) == 2 and all(s >= 0 for s in history.seconds)


def test_one_line_per_epoch_unless_quiet(capsys):
    fit(RecordingNetwork(), make_data(10), epochs=3, quiet=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(
            rf"epoch {epoch}/3  loss \d+\.\d{{4}}  train  70\.0%  val  75\.0%  "
            r"+\d+\.\d s",
            line,
        ), line
    fit(RecordingNetwork(), make_data(10), epochs=3, quiet=True)
    assert capsys.readouterr().out == ""


def test_history_as_dict_and_line():
    history = History([0.5], [0.25], [0.125], [1.5])
    assert history.as_dict() == {
        "loss": [0.5],
        "train_accuracy": [0.25],
        "validation_accuracy": [0.125],
        "seconds": [1.5],
        "first_loss": None,
    }
    assert history.line(1, 10) == (
        "epoch  1/10  loss 0.5000  train  25.0%  val  12.5%    1.5 s"
    )


# ------------------------------------------------------- losses that break


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_loss_that_is_not_finite_stops_training_naming_epoch_and_batch(bad):
    # 10 examples in batches of 4: three batches per epoch; the sixth
    # update is epoch 2, batch 3.
    network = RecordingNetwork(losses=[1.0] * 5 + [bad] + [1.0] * 10)
    with pytest.raises(TrainingError) as error:
        fit(network, make_data(10), epochs=3, batch_size=4, learning_rate=50)
    message = str(error.value)
    assert "epoch 2, batch 3" in message
    assert "try a smaller --learning-rate" in message
    assert "50" in message
    assert len(network.batches) == 6  # stopped at once
    assert isinstance(error.value, ProjectError)  # one line from the CLI


def test_weights_that_are_not_finite_stop_training():
    class Breaking(RecordingNetwork):
        def train_step(self, images, labels, learning_rate):
            if len(self.batches) == 2:
                self.weights[1] = np.nan
            return super().train_step(images, labels, learning_rate)

    network = Breaking()
    with pytest.raises(TrainingError, match=r"weights.*epoch 1.*smaller --learning"):
        fit(network, make_data(10), epochs=3, batch_size=4)
    assert len(network.batches) == 3


def test_strong_weight_decay_is_named_beside_the_learning_rate():
    """A loss that overflows because of --l2 (stage 3 with --l2 1e6) used to
    blame the learning rate alone."""
    network = RecordingNetwork(losses=[1.0, float("inf")])
    with pytest.raises(TrainingError) as error:
        fit(network, make_data(10), epochs=1, learning_rate=0.02, l2=1e6)
    assert str(error.value) == (
        "the loss became inf at epoch 1, batch 2; try a smaller --learning-rate "
        "(now 0.02) or a smaller --l2 (now 1e+06)"
    )
    assert advice(0.02, l2=1e-4) == "try a smaller --learning-rate (now 0.02)"
    assert advice(0.5, l2=0.1).endswith("or a smaller --l2 (now 0.1)")


# ------------------------------------------------ learning nothing at all


BALANCED = np.repeat(np.arange(CLASSES), 50)  # 500 labels, like the sample's


def test_chance_is_the_most_common_class_and_three_standard_errors_above():
    chance, threshold = chance_threshold(BALANCED)
    assert chance == 0.1
    assert threshold == pytest.approx(0.1 + 3 * np.sqrt(0.1 * 0.9 / 500))  # 14.02%
    ones = np.concatenate([np.zeros(113), np.ones(887)]).astype(int)
    chance, threshold = chance_threshold(ones)  # always answering 1: 88.7%
    assert chance == pytest.approx(0.887)
    assert threshold == pytest.approx(0.887 + 3 * np.sqrt(0.887 * 0.113 / 1000))


def ran(first_loss, *losses):
    """A history of epochs with these losses, after a first step at ``first_loss``."""
    return History(loss=list(losses), first_loss=first_loss)


@pytest.mark.parametrize(
    ("accuracy", "warned"),
    [
        (0.1, True),
        (0.0, True),  # worse than chance is no better than it
        (0.14, True),  # 14.0% is within 3 standard errors of 10%
        (0.141, False),
        (0.95, False),
    ],
)
def test_a_saved_network_no_better_than_chance_is_warned_about(accuracy, warned):
    warnings = run_warnings(ran(2.3, 67.0, 69.0), accuracy, BALANCED, 40.0)
    if not warned:
        assert warnings == [
            "warning: the loss went from 2.3 before the first step "
            "to 69 in the last epoch: the steps overshoot; try a "
            "smaller --learning-rate (now 40)"
        ]
        return
    assert warnings == [
        f"warning: the saved network's validation accuracy, {100 * accuracy:.1f}%, "
        "is no better than chance (10.0% for always the most common class; 14.0% "
        "would be clearly above it on 500 images): it learned nothing; the loss "
        "went from 2.3 before the first step to 69 in the last epoch; try a "
        "smaller --learning-rate (now 40)"
    ]


def test_a_loss_that_hardly_moved_asks_for_a_rate_either_way():
    """Five sigmoid layers at 0.02 (too small a step for the faint gradients)
    and stage 4's Adam at 0.5 (every ReLU silenced) both end like this."""
    (warning,) = run_warnings(ran(2.455, 2.316, 2.307), 0.1, BALANCED, 0.02)
    assert warning.endswith(
        "the loss went from 2.455 before the first step to 2.307 in the last "
        "epoch; try a --learning-rate (now 0.02) 10 times smaller and one 10 "
        "times larger"
    )


def test_a_loss_that_rose_in_any_epoch_of_a_failed_run_asks_for_smaller():
    """--l2 1e6 in stage 4: 1.2e8 after the first epoch, back to 2.4e6."""
    (warning,) = run_warnings(ran(2.3, 1.2e8, 2.4e6), 0.1, BALANCED, 0.002, 1e6)
    assert warning.endswith(
        "try a smaller --learning-rate (now 0.002) or a smaller --l2 (now 1e+06)"
    )


def test_the_loss_has_risen_only_when_clearly_above_the_first_step():
    first = 2.0
    assert not rose(LOSS_ROSE * first, first)
    assert rose(LOSS_ROSE * first + 0.01, first)
    assert not rose(5.0, None)  # no step taken
    assert run_warnings(ran(first, 0.3, 0.1), 0.9, BALANCED, 0.1) == []
    # a network that learned: only the last epoch counts
    assert run_warnings(ran(first, 9.0, 0.1), 0.9, BALANCED, 0.1) == []


def test_the_warning_names_a_strong_weight_decay():
    (warning,) = run_warnings(ran(2.3, 2.3), 0.1, BALANCED, 0.02, 1.0)
    assert warning.endswith(
        "try a --learning-rate (now 0.02) 10 times smaller and one 10 times "
        "larger, or a smaller --l2 (now 1)"
    )


def test_a_history_followed_by_another_is_one_training():
    first = History([0.9, 0.5], [0.6, 0.7], [0.55, 0.65], [1.0, 1.1], first_loss=2.3)
    later = History([0.4], [0.8], [0.75], [1.2], first_loss=0.45)
    both = first.followed_by(later)
    assert both == History(
        [0.9, 0.5, 0.4], [0.6, 0.7, 0.8], [0.55, 0.65, 0.75], [1.0, 1.1, 1.2], 2.3
    )
    assert first.loss == [0.9, 0.5]  # neither part changes


def test_training_keeps_the_loss_of_the_first_step(capsys):
    network = RecordingNetwork(losses=[7.5] + [1.0] * 100)
    history = fit(network, make_data(10), epochs=2, quiet=True)
    assert history.first_loss == 7.5


# ------------------------------------------------------------------ hooks


def test_on_epoch_end_can_stop_training_early():
    calls = []

    def stop_after_two(epoch, history):
        calls.append((epoch, len(history.loss)))
        return epoch == 2

    network = RecordingNetwork()
    history = fit(network, make_data(10), epochs=10, on_epoch_end=stop_after_two)
    assert calls == [(1, 1), (2, 2)]
    assert len(history.loss) == 2
    assert len(network.batches) == 2 * 3


def test_on_epoch_end_returning_nothing_keeps_going():
    history = fit(
        RecordingNetwork(), make_data(10), epochs=4, on_epoch_end=lambda e, h: None
    )
    assert len(history.loss) == 4


def test_a_learning_rate_schedule_gets_epochs_counted_from_1():
    asked = []

    def schedule(epoch):
        asked.append(epoch)
        return 1 / epoch

    network = RecordingNetwork()
    fit(network, make_data(10), epochs=3, batch_size=4, learning_rate=schedule)
    assert asked == [1, 2, 3]
    assert network.rates == [1.0] * 3 + [0.5] * 3 + [1 / 3] * 3


def test_a_fixed_learning_rate_is_passed_as_given():
    network = RecordingNetwork()
    fit(network, make_data(10), epochs=2, learning_rate=0.25)
    assert network.rates == [0.25] * 6


def test_augment_changes_each_batch_before_the_step():
    seen = []

    def augment(images, rng):
        assert isinstance(rng, np.random.Generator)
        seen.append(len(images))
        shifted = images.copy()
        shifted[:, :CLASSES] = np.roll(images[:, :CLASSES], 1, axis=1)
        return shifted

    class Reading(RecordingNetwork):
        def train_step(self, images, labels, learning_rate):
            self.batches.append((read_labels(images), labels.copy()))
            return 0.0

    network = Reading()
    fit(network, make_data(10), epochs=1, batch_size=4, augment=augment)
    assert seen == [4, 4, 2]
    for read, labels in network.batches:
        np.testing.assert_array_equal(read, (labels + 1) % CLASSES)
