"""Stage 3: several hidden layers, backpropagation as one loop, momentum, L2."""

import json

import numpy as np
import pytest

from common.data import CLASSES, PIXELS, load
from common.errors import ModelError
from common.gradients import numerical_gradient, relative_error
from common.models import save_model
from common.training import accuracy
from stage2_hidden_layer.network import HiddenLayerNetwork
from stage3_multilayer.__main__ import CHECK_STEP, check_gradients, main
from stage3_multilayer.network import (
    ACTIVATIONS,
    MultilayerNetwork,
    cross_entropy,
    one_hot,
    relu,
    sigmoid,
    softmax,
    tanh,
)

# Largest relative error accepted between backpropagation and central
# differences (float64). Measured with the seeds below: at most 5.4e-8
# (median 5e-10); a wrong formula gives 1e-2 or more.
GRADIENT_TOLERANCE = 1e-6
CHECKED_PIXELS = 24  # rows of W1 checked numerically (each row: one pixel)


@pytest.fixture(scope="module")
def sample():
    return load("sample", log=None)


def random_batch(rng, examples=5):
    return rng.random((examples, PIXELS)), rng.integers(0, CLASSES, examples)


def largest_errors(network, x, labels):
    """Relative error of every gradient against central differences."""
    _, analytic = network.gradients(x, labels)
    errors = {}
    for name, values in network.parameters().items():
        if name == "W1":
            values = values[:CHECKED_PIXELS]  # a view into the network's W1
        numeric = numerical_gradient(
            lambda: network.cost(x, labels), values, CHECK_STEP
        )
        errors[name] = relative_error(analytic[name][: len(values)], numeric)
    return errors


# ------------------------------------------------------------- gradients


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_gradients_match_numerical_with_momentum_and_l2(depth, activation):
    """Every depth and activation, L2 in the cost, at a point that momentum
    steps have reached (not the initial weights)."""
    rng = np.random.default_rng(depth)
    network = MultilayerNetwork(
        rng, [4] * depth, activation, momentum=0.9, l2=0.1, dtype=np.float64
    )
    for biases in network.biases:  # away from ReLU's kink at exactly 0
        biases[...] = rng.normal(0, 0.1, biases.shape)
    x, labels = random_batch(rng)
    for _ in range(3):
        network.train_step(x, labels, learning_rate=0.05)
    assert np.any(network.velocities["W1"] != 0)

    errors = largest_errors(network, x, labels)
    assert list(errors) == [
        name for layer in range(1, depth + 2) for name in (f"W{layer}", f"b{layer}")
    ]
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


def test_gradient_includes_the_l2_term():
    """The same weights with and without decay: dW differs by exactly l2 * W,
    the biases' gradients not at all, and the cost by l2/2 * sum W^2."""
    rng = np.random.default_rng(5)
    plain = MultilayerNetwork(rng, [6, 5], "tanh", dtype=np.float64)
    decayed = MultilayerNetwork(rng, [6, 5], "tanh", l2=0.3, dtype=np.float64)
    for name, values in decayed.parameters().items():
        values[...] = plain.parameters()[name]
    x, labels = random_batch(rng)
    cost, grads = plain.gradients(x, labels)
    decayed_cost, decayed_grads = decayed.gradients(x, labels)
    squares = sum(np.sum(weights**2) for weights in plain.weights)
    assert decayed_cost == pytest.approx(cost + 0.15 * squares, rel=1e-12)
    for layer in (1, 2, 3):
        np.testing.assert_allclose(
            decayed_grads[f"W{layer}"] - grads[f"W{layer}"],
            0.3 * plain.weights[layer - 1],
            rtol=1e-9,
            atol=1e-15,
        )
        np.testing.assert_array_equal(decayed_grads[f"b{layer}"], grads[f"b{layer}"])


def test_command_line_gradient_check(capsys):
    """Every entry of W1 (784 x 2 here) is checked; measured 4.5e-10."""
    main(["--check-gradients", "--layers", "2,2", "--activation", "sigmoid"])
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(":")[0].strip() for line in lines[:-1]]
    assert names == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert float(lines[-1].split()[-1]) < GRADIENT_TOLERANCE


def test_gradient_check_narrows_wide_layers():
    """256 and 128 neurons are checked as 4 and 4; measured 8.8e-10."""
    errors = check_gradients(0, (256, 128), "relu", 1e-4, pixels=CHECKED_PIXELS)
    assert set(errors) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert max(errors.values()) < GRADIENT_TOLERANCE


# ------------------------------------------------- stage 2, generalised


def test_one_sigmoid_layer_computes_what_stage_2_computes():
    """Stage 3 with one hidden sigmoid layer, on stage 2's own parameters,
    gives stage 2's outputs, cost, gradients and training step."""
    rng = np.random.default_rng(7)
    stage2 = HiddenLayerNetwork(rng, hidden=9, loss="cross-entropy", dtype=np.float64)
    stage3 = MultilayerNetwork(rng, [9], "sigmoid", dtype=np.float64)
    for name, values in stage3.parameters().items():
        values[...] = stage2.parameters()[name] + rng.normal(0, 0.1, values.shape)
        stage2.parameters()[name][...] = values
    x, labels = random_batch(rng, examples=12)

    a1, a2 = stage2.forward(x)
    activations = stage3.forward(x)
    np.testing.assert_allclose(activations[1], a1, rtol=1e-13)
    np.testing.assert_allclose(activations[2], a2, rtol=1e-13)
    np.testing.assert_array_equal(stage3.predict(x), stage2.predict(x))

    cost2, grads2 = stage2.gradients(x, labels)
    cost3, grads3 = stage3.gradients(x, labels)
    assert cost3 == pytest.approx(cost2, rel=1e-13)
    assert stage3.cost(x, labels) == pytest.approx(stage2.cost(x, labels), rel=1e-13)
    assert set(grads3) == set(grads2)
    for name in grads2:
        np.testing.assert_allclose(grads3[name], grads2[name], rtol=1e-11, atol=1e-16)

    stage2.train_step(x, labels, 0.5)
    stage3.train_step(x, labels, 0.5)  # momentum 0, l2 0: stage 2's step
    for name, values in stage2.parameters().items():
        np.testing.assert_allclose(stage3.parameters()[name], values, rtol=1e-12)


# -------------------------------------------------------------- learning


def test_defaults_learn_the_sample_in_six_epochs(tmp_path):
    """Stage 3's defaults, stopped after 6 of their 20 epochs (the learning
    rate then falls over 6 epochs instead of 20), already reach stage 2's
    final accuracy.

    Measured on the embedded sample on two 2-core machines: 95.0% with
    seed 0 on both, 94.7% to 95.0% over seeds 0-4. For comparison, stage 2's
    defaults run to the end reach 94.0% to 95.1% over seeds 0-4, and stage
    3's 94.7% to 95.8%. On 1,000 test digits one standard error is about 0.7
    points, so the two stages overlap from seed to seed.
    """
    main(
        ["--dataset", "sample", "--epochs", "6", "--out", str(tmp_path)]
        + ["--no-plots", "--quiet"]
    )
    (record_path,) = tmp_path.glob("*/record.json")
    record = json.loads(record_path.read_text())
    assert record["history"]["loss"][-1] < record["history"]["loss"][0] / 3
    assert record["test_accuracy"] >= 0.94


@pytest.mark.parametrize(
    ("activation", "ratio_below", "ratio_above"),
    [("sigmoid", 1e-3, 0.0), ("relu", np.inf, 0.1)],
)
def test_gradients_vanish_in_a_deep_sigmoid_network_not_with_relu(
    sample, activation, ratio_below, ratio_above
):
    """Five hidden layers of 64, freshly initialised, 256 real digits.

    The first layer's weight gradient against the last layer's, measured
    over seeds 0-7: sigmoid (Glorot) 1.7e-4 to 4.2e-4, about 4,000 times
    smaller; ReLU (He) 0.26 to 0.49, the same order of magnitude.
    """
    rng = np.random.default_rng(0)
    network = MultilayerNetwork(rng, [64] * 5, activation)
    batch = rng.choice(len(sample.train), 256, replace=False)
    network.gradients(sample.train.images[batch], sample.train.labels[batch])
    sizes = network.last_gradient_sizes
    ratio = sizes["W1"] / sizes["W6"]
    assert ratio_above < ratio < ratio_below, sizes
    if activation == "sigmoid":  # shrinking at every layer on the way back
        for layer in range(1, 6):
            assert sizes[f"W{layer}"] < sizes[f"W{layer + 1}"] / 2


# ------------------------------------------------------ extreme inputs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_of_extreme_inputs_are_exact_and_silent(dtype):
    z = np.array([-1e6, -1000, -800, -100, 0, 100, 1e6], dtype=dtype)
    with np.errstate(all="raise"):
        sigmoids, tanhs, relus = sigmoid(z), tanh(z), relu(z)
    # e^-100 is 3.7e-44: below float32's smallest normal float (exactly 0
    # there), but a float64 holds it, and 1 + e^-100 rounds to 1.
    tiny = 0.0 if dtype == np.float32 else np.exp(-100.0)
    np.testing.assert_array_equal(sigmoids, [0, 0, 0, tiny, 0.5, 1, 1])
    np.testing.assert_array_equal(tanhs, [-1, -1, -1, -1, 0, 1, 1])
    np.testing.assert_array_equal(relus, [0, 0, 0, 0, 0, 100, 1e6])
    assert sigmoids.dtype == tanhs.dtype == relus.dtype == dtype
    # The slopes f'(z), computed from a = f(z) as backward does.
    expected_slopes = {
        "sigmoid": [0, 0, 0, tiny, 0.25, 0, 0],
        "tanh": [0, 0, 0, 0, 1, 0, 0],
        "relu": [0, 0, 0, 0, 0, 1, 1],
    }
    for name, (f, slope) in ACTIVATIONS.items():
        with np.errstate(all="raise"):
            slopes = slope(f(z))
        np.testing.assert_array_equal(slopes, expected_slopes[name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_extreme_rows(dtype):
    big = np.finfo(dtype).max / 2
    z = np.array(
        [
            np.arange(1000, 1010),
            np.arange(10),
            [-np.inf, *range(9)],
            [1e6, *[-1e6] * 9],
            [big, -big, *[0] * 8],
            np.arange(10),
        ],
        dtype=dtype,
    )
    with np.errstate(all="raise"):
        p = softmax(z)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p[0], p[1])  # shifting a row changes nothing
    np.testing.assert_array_equal(p[1], p[5])  # rows are independent
    assert p[2, 0] == 0 and np.all(p[2, 1:] > 0)
    np.testing.assert_array_equal(p[3], [1, *[0] * 9])
    np.testing.assert_array_equal(p[4], [1, *[0] * 9])
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_of_a_zero_probability_is_large_but_finite(dtype):
    probabilities = np.zeros((1, CLASSES), dtype=dtype)
    probabilities[0, 3] = 1  # all the belief on 3; the truth is 5
    with np.errstate(all="raise"):
        cost = cross_entropy(probabilities, one_hot([5], dtype))
    assert cost == pytest.approx(-np.log(np.finfo(dtype).tiny))  # 87 or 708


def test_network_of_huge_inputs_warns_nothing():
    rng = np.random.default_rng(0)
    x = np.full((2, PIXELS), 1e4, dtype=np.float32)
    for activation in ACTIVATIONS:
        network = MultilayerNetwork(rng, [8, 8], activation)
        with np.errstate(all="raise"):
            probabilities = network.forward(x)[-1]
        assert np.all(np.isfinite(probabilities)), activation


# ------------------------------------------------------ momentum and L2


def test_momentum_adds_the_previous_step():
    """Two steps on two batches. After the first, momentum and plain SGD are
    at the same point; the second step of momentum is plain SGD's second
    step plus momentum times the first step: -momentum * rate * g1."""
    rng = np.random.default_rng(3)
    plain = MultilayerNetwork(rng, [7, 6], "relu", dtype=np.float64)
    moving = MultilayerNetwork(rng, [7, 6], "relu", momentum=0.8, dtype=np.float64)
    for name, values in moving.parameters().items():
        values[...] = plain.parameters()[name]
    first, second = random_batch(rng, 6), random_batch(rng, 6)
    rate = 0.3

    _, g1 = plain.gradients(*first)
    plain.train_step(*first, rate)
    moving.train_step(*first, rate)
    for name, values in moving.parameters().items():
        np.testing.assert_array_equal(values, plain.parameters()[name])

    plain.train_step(*second, rate)
    moving.train_step(*second, rate)
    for name, values in moving.parameters().items():
        difference = values - plain.parameters()[name]
        np.testing.assert_allclose(difference, -0.8 * rate * g1[name], atol=1e-13)
        assert np.max(np.abs(difference)) > 1e-3, name  # a real change


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_l2_shrinks_weights_when_the_data_gradient_is_zero(activation):
    """Black images: x = 0, so dC/dW1 of the data is exactly 0 and only the
    decay moves W1: W1 <- W1 - rate * l2 * W1 = (1 - rate * l2) W1."""
    rng = np.random.default_rng(4)
    network = MultilayerNetwork(rng, [5, 4], activation, l2=0.1)
    before = network.weights[0].copy()
    x = np.zeros((3, PIXELS), dtype=np.float32)
    network.train_step(x, np.array([1, 2, 3]), learning_rate=0.5)
    np.testing.assert_allclose(network.weights[0], 0.95 * before, rtol=1e-6)
    assert network.last_gradient_sizes["W1"] == 0  # the data term alone

    plain = MultilayerNetwork(np.random.default_rng(4), [5, 4], activation)
    plain.train_step(x, np.array([1, 2, 3]), learning_rate=0.5)
    np.testing.assert_array_equal(plain.weights[0], before)  # no decay, no move


# ------------------------------------------------------ command line


def test_command_line_end_to_end(tmp_path, capsys):
    main(
        [
            "--dataset", "sample", "--epochs", "1", "--layers", "32,16",
            "--activation", "tanh", "--momentum", "0.5", "--l2", "0.001",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "MultilayerNetwork(784 -> 32 -> 16 -> 10, tanh" in out
    assert out.splitlines()[-1].startswith("test accuracy ")
    (folder,) = tmp_path.iterdir()
    record = json.loads((folder / "record.json").read_text())
    assert record["hyperparameters"]["layers"] == [32, 16]
    assert record["hyperparameters"]["momentum"] == 0.5
    assert set(record["gradient_sizes"]) == {"W1", "W2", "W3"}
    assert all(
        len(sizes) == 1 and sizes[0] > 0 for sizes in record["gradient_sizes"].values()
    )
    for picture in ("gradient_sizes.png", "learning_curves.png"):
        assert (folder / picture).stat().st_size > 1000
    loaded = MultilayerNetwork.load(folder / "model.npz")
    assert loaded.sizes == (PIXELS, 32, 16, CLASSES) and loaded.activation == "tanh"
    test = load("sample", log=None).test
    accuracy_line = f"{100 * accuracy(loaded, test):.2f}%"
    assert accuracy_line in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--layers", "128,,64", "not a list of layer widths"),
        ("--layers", "128,0", "every layer needs a neuron"),
        ("--layers", "", "not a list of layer widths"),
        ("--layers", "12.5", "not a list of layer widths"),
        ("--layers", "64,\u00b2", "not a list of layer widths"),  # a superscript 2
        ("--layers", "64,1000000", "at most 100,000 neurons"),
        ("--activation", "softplus", "invalid choice"),
        ("--momentum", "1", "must be at least 0 and below 1"),
        ("--l2", "-0.1", "must not be negative"),
    ],
)
def test_bad_options_are_refused_by_the_parser(capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        main([option, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_learning_rate_far_too_high_stops_with_one_message(tmp_path, capsys):
    from common.cli import run

    status = run(
        main,
        [
            "--dataset", "sample", "--epochs", "1", "--batch-size", "8",
            "--learning-rate", "1000", "--layers", "16",
            "--out", str(tmp_path), "--quiet",
        ],
    )  # fmt: skip
    assert status == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at epoch 1, batch" in err
    assert "try a smaller --learning-rate" in err
    assert not list(tmp_path.iterdir())  # no model, no record


def test_a_weight_decay_far_too_strong_is_named_in_the_message(tmp_path, capsys):
    """--l2 1e6 multiplies every weight by 1 - 0.02 x 1e6 each step: they
    overflow whatever the learning rate, so the message names --l2 too."""
    from common.cli import run

    argv = ["--dataset", "sample", "--epochs", "1", "--layers", "16", "--l2", "1e6"]
    assert run(main, [*argv, "--out", str(tmp_path), "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the loss became nan")
    assert lines[0].endswith(
        "try a smaller --learning-rate (now 0.02) or a smaller --l2 (now 1e+06)"
    )
    assert not list(tmp_path.iterdir())


def test_save_and_load_keep_the_predictions(tmp_path):
    rng = np.random.default_rng(0)
    network = MultilayerNetwork(rng, [12, 7, 5], "sigmoid")
    path = tmp_path / "model.npz"
    network.save(path)
    loaded = MultilayerNetwork.load(path)
    x = rng.random((20, PIXELS), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(x)[-1], network.forward(x)[-1])
    assert repr(loaded) == repr(network)


def test_a_model_that_does_not_match_its_architecture_is_refused(tmp_path):
    network = MultilayerNetwork(np.random.default_rng(0), [12, 7])
    path = tmp_path / "model.npz"
    arrays = network.parameters()
    save_model(
        path,
        arrays,
        {
            "kind": "stage3_multilayer",
            "sizes": [PIXELS, 12, 8, CLASSES],
            "activation": "relu",
        },
    )
    with pytest.raises(ModelError, match=r"W2 has shape \(12, 7\).*\(12, 8\)"):
        MultilayerNetwork.load(path)
    save_model(
        path,
        arrays,
        {
            "kind": "stage3_multilayer",
            "sizes": [PIXELS, 12, 7, CLASSES],
            "activation": "softplus",
        },
    )
    with pytest.raises(ModelError, match="softplus"):
        MultilayerNetwork.load(path)


@pytest.mark.parametrize("activation", [["relu"], {"relu": 1}, None, 3])
def test_an_activation_that_is_not_a_name_is_refused(tmp_path, activation):
    network = MultilayerNetwork(np.random.default_rng(0), [12])
    path = tmp_path / "model.npz"
    architecture = {"kind": "stage3_multilayer", "sizes": [PIXELS, 12, CLASSES]}
    save_model(path, network.parameters(), {**architecture, "activation": activation})
    with pytest.raises(ModelError, match="is not a 784 -> N -> ... -> 10 network"):
        MultilayerNetwork.load(path)


def test_a_damaged_architecture_is_refused_in_one_short_line(tmp_path):
    network = MultilayerNetwork(np.random.default_rng(0), [12])
    path = tmp_path / "model.npz"
    np.savez(path, architecture=np.array("[" * 100_000), **network.parameters())
    with pytest.raises(ModelError, match="architecture description is damaged"):
        MultilayerNetwork.load(path)
    sizes = [PIXELS, *range(1, 10_000), CLASSES]  # far too long to print whole
    save_model(
        path, {}, {"kind": "stage3_multilayer", "sizes": sizes, "activation": "tanh"}
    )
    with pytest.raises(ModelError) as refused:
        MultilayerNetwork.load(path)
    assert len(str(refused.value)) < 400
