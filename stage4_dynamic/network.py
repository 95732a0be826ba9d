"""Stage 4: a network that grows while it learns, and the best one here.

Stage 3 stacked any number of hidden layers and wrote backpropagation as one
loop over them. Stage 4 keeps that loop and lets the shape of the network
change at run time, also in the middle of training:

``add_neurons(layer, count)``
    widens hidden layer ``layer``;
``add_layer(size, position)``
    inserts a new hidden layer.

Both are function-preserving: right after a growth step the network gives
the outputs it gave before, for every input (exactly in exact arithmetic; in
float32 the matrix products add their terms in another order, which moves
an output by a few 1e-7 at most), so training carries on
from where it was instead of starting again. A new neuron gets small random
incoming weights (it computes something of its own) and zero outgoing
weights (nothing above it notices yet); a new layer starts as the identity
(see ``add_layer`` for why that works for ReLU layers only). The optimiser's
state (momentum's velocity, Adam's moments) grows with the weights, with
zeros for the new entries.

It also brings what a small network needs to do its best with 3,500
training digits: the Adam optimiser, a cosine learning-rate schedule and
random shifts of the training digits (data augmentation). Early stopping and
the growth schedule live in ``__main__.py``, where the epoch loop calls them.

What it leaves out: convolutions (a network that knows which pixels are
neighbours reaches 99% and more), dropout, batch normalisation, removing
neurons or layers (that throws away what they learned), and new layers for
tanh or sigmoid networks (``add_neurons`` works for them, ``add_layer`` does
not). With the defaults, expect about 97.4% test accuracy on the embedded
sample (96.7% to 97.8% over seeds 0 to 4 on two machines), the best of
the four stages, and
about 96.7% on the 10,000 real MNIST test digits after training on the
sample's 3,500; on full Fashion-MNIST, 89.1% (stage 3: 89.4%).

Notation, stage 3's (inputs are rows, one per example). The layers are
counted l = 1 .. L from the first hidden layer to the output; Python's lists
count from 0, so ``weights[l - 1]`` holds W_l:

    x = a0  (batch, 784)        pixel values in [0, 1]
    y       (batch, 10)         one-hot target: 1 for the true digit
    sizes   [784, n_1, ..., 10] the width n_l of every layer, n_0 = 784
    W_l     (n_{l-1}, n_l)      weights of layer l    b_l  (n_l,)  its biases
    z_l     (batch, n_l)        weighted sums: a_{l-1} W_l + b_l
    a_l     (batch, n_l)        = f(z_l) for a hidden layer (f: sigmoid, tanh
                                or ReLU), = softmax(z_L) at the output
    C       cost: mean over the batch of -log a_L[true digit],
            plus l2 / 2 * (sum of all squared weights, biases excluded)
    dX      dC/dX, an array of the same shape as X
    delta_l dC/dz_l: the error signal of layer l
"""

import math

import numpy as np

from common.data import CLASSES, DIGIT_NAMES, IMAGE_SIDE, PIXELS
from common.errors import LONGEST_DESCRIBED, ModelError, shortened
from common.models import check_shapes, load_model, save_model

KIND = "stage4_dynamic"
DEFAULT_ACTIVATION = "relu"

# Adam's constants, the values its authors propose (Kingma and Ba, 2015).
ADAM_BETA1 = 0.9  # share of the running mean of gradients kept at each step
ADAM_BETA2 = 0.999  # the same, for the running mean of squared gradients
ADAM_EPSILON = 1e-8  # keeps a step finite where the gradient has been 0
ADAM_WARMUP = 100  # steps over which a parameter's steps grow to full size
# After this many steps 1 - beta1^t no longer changes in float64 (334 steps;
# float32: 143) and the warm-up is over: see Adam.update.
ADAM_SETTLED = 400
ADAM_SETTLED_FILL = 1 - ADAM_BETA2**ADAM_SETTLED  # v_fill after that many steps


# ------------------------------------------------------------- activations


def as_float(z):
    """z as a float array (integers become float64)."""
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


def sigmoid(z):
    """1 / (1 + e^-z) for any finite z, with no overflow or underflow.

    e^-|z| is computed instead of e^-z, so the exponential never exceeds 1;
    |z| is capped where the result no longer changes in this precision. For
    z below -87 (float32) or -708 (float64) the true value is smaller than
    the smallest normal float, and the result is exactly 0.
    """
    z = as_float(z)
    limit = np.floor(-np.log(np.finfo(z.dtype).tiny))  # 87 or 708
    exp_minus_abs = np.exp(-np.minimum(np.abs(z), limit))  # in (0, 1]
    # 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) for z < 0: the same value,
    # written so that both use e^-|z|.
    value = np.where(z >= 0, 1, exp_minus_abs)
    value /= 1 + exp_minus_abs
    value[z < -limit] = 0
    return value.astype(z.dtype)


def tanh(z):
    """(e^z - e^-z) / (e^z + e^-z), between -1 and 1; NumPy's is stable."""
    return np.tanh(as_float(z))


def relu(z):
    """max(z, 0): the identity for a positive sum, 0 for the rest."""
    z = as_float(z)
    return np.maximum(z, 0, dtype=z.dtype)


# The slope f'(z) of each activation, written with its output a = f(z):
# forward keeps every a anyway, so backward needs nothing else.
def sigmoid_slope(a):
    return a * (1 - a)


def tanh_slope(a):
    return 1 - a * a


def relu_slope(a):
    return (a > 0).astype(a.dtype)  # 1 where active; 0 elsewhere, and at 0


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_slope),
    "tanh": (tanh, tanh_slope),
    "relu": (relu, relu_slope),
}


def weight_scale(fan_in, fan_out, activation):
    """Standard deviation of the initial weights of a layer.

    A weighted sum of fan_in inputs has fan_in times the variance of one
    product, so the weights' variance must shrink as 1 / fan_in for the sums
    to stay where the activation has a useful slope. He initialisation,
    2 / fan_in, makes up for ReLU zeroing half of its inputs; Glorot's,
    2 / (fan_in + fan_out), balances the forward and backward passes for
    sigmoid and tanh.
    """
    if activation == "relu":
        return math.sqrt(2 / fan_in)
    return math.sqrt(2 / (fan_in + fan_out))


def initial_weights(fan_in, fan_out, activation, rng, dtype):
    """Random weights (fan_in, fan_out), normal with ``weight_scale``."""
    scale = weight_scale(fan_in, fan_out, activation)
    return (scale * rng.standard_normal((fan_in, fan_out))).astype(dtype)


# -------------------------------------------------------------- the output


def softmax(z):
    """Each row of z as probabilities: e^z_k / sum_j e^z_j, row by row.

    The row's largest z is subtracted first, which does not change the
    result: the largest exponential is then e^0 = 1, and none overflows.
    A value more than about 85 (float32) or 706 (float64) below the row's
    largest, or a logit of -inf, gets a probability of exactly 0: its true
    value is below the smallest normal float.
    """
    z = as_float(z)
    with np.errstate(over="ignore"):  # a gap beyond the float range: -inf, p = 0
        shifted = z - z.max(axis=1, keepdims=True)  # (batch, k), all <= 0
    # Below -limit, e^shifted divided by the row's sum (at most k) would
    # fall under the smallest normal float.
    limit = np.floor(-np.log(np.finfo(z.dtype).tiny * z.shape[1]))
    exponentials = np.exp(np.maximum(shifted, -limit))  # (batch, k)
    exponentials = np.where(shifted < -limit, 0, exponentials)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def one_hot(labels, dtype=np.float32):
    """Labels (batch,) -> rows of ten numbers, 1 at the label, 0 elsewhere."""
    targets = np.zeros((len(labels), CLASSES), dtype=dtype)
    targets[np.arange(len(labels)), labels] = 1
    return targets


def cross_entropy(a, y):
    """C: mean over the batch of -sum_k y_k log a_k, i.e. -log(p of the truth).

    A probability of exactly 0 counts as the smallest normal float, so an
    example costs at most 87 (float32) or 708 (float64): large, but finite.
    """
    floor = np.finfo(a.dtype).tiny
    return float(-np.sum(y * np.log(np.maximum(a, floor))) / len(a))


# -------------------------------------------------------------- optimisers


class SGD:
    """Minibatch stochastic gradient descent: p <- p - learning_rate * dC/dp.

    Every optimiser keeps, for each of its ``slots``, one array shaped like
    each weight matrix and one shaped like each bias vector:
    ``state[slot]`` is a pair of lists ``(like_weights, like_biases)`` laid
    out as the network's own ``weights`` and ``biases``. That is what lets a
    growth step cut the optimiser's state exactly as it cuts the weights
    (see ``DynamicNetwork.growable``). Plain SGD has no state.
    """

    name = "sgd"
    slots = ()

    def __init__(self):
        self.state = {}

    def __repr__(self):
        return f"{type(self).__name__}()"

    def start(self, weights, biases):
        """Zero state for every slot, shaped like ``weights`` and ``biases``."""
        self.state = {
            slot: (
                [np.zeros_like(W) for W in weights],
                [np.zeros_like(b) for b in biases],
            )
            for slot in self.slots
        }

    def step(self, weights, biases, dW, db, learning_rate):
        """Update every weight matrix and bias vector, in place."""
        parameters = [*weights, *biases]
        gradients = [*dW, *db]
        slots = [[*like_W, *like_b] for like_W, like_b in self.state.values()]
        for index, (parameter, gradient) in enumerate(
            zip(parameters, gradients, strict=True)
        ):
            moments = [arrays[index] for arrays in slots]
            self.update(parameter, gradient, moments, learning_rate)

    def update(self, parameter, gradient, moments, learning_rate):
        parameter -= learning_rate * gradient


class Momentum(SGD):
    """SGD with momentum: each parameter p keeps a velocity v, a decaying
    sum of its past steps (stage 3's optimiser):

        v <- momentum * v - learning_rate * dC/dp        p <- p + v

    A gradient that keeps its direction builds up a step 1 / (1 - momentum)
    times as long; one that flips sign from batch to batch cancels out.
    """

    name = "momentum"
    slots = ("velocity",)

    def __init__(self, momentum=0.9):
        super().__init__()
        self.momentum = momentum

    def __repr__(self):
        return f"Momentum(momentum={self.momentum:g})"

    def update(self, parameter, gradient, moments, learning_rate):
        (velocity,) = moments
        velocity *= self.momentum
        velocity -= learning_rate * gradient
        parameter += velocity


class Adam(SGD):
    """Adam: a step for each parameter, scaled by its own gradients' size.

        m <- beta1 m + (1 - beta1) g         running mean of the gradients g
        v <- beta2 v + (1 - beta2) g^2       running mean of their squares
        p <- p - learning_rate * warm-up * m_hat / (sqrt(v_hat) + epsilon)

    m_hat = m / (1 - beta1^t) and v_hat = v / (1 - beta2^t) undo the pull
    towards the zeros that m and v start from, after t steps. A parameter
    moves by about the learning rate at each step, whatever the size of its
    gradient, so one learning rate suits every layer.

    1 - beta^t is what a running mean would read after t steps had the
    gradient always been 1: it follows the same rule, fill <- beta fill +
    (1 - beta), from fill = 0. So the fills are kept per parameter, as the
    slots ``m_fill`` and ``v_fill``, instead of one t for the whole network:
    a weight added by a growth step starts with m = v = fill = 0, like a
    weight of a new network.

    Warm-up: after a few steps, v_hat rests on a few gradients, and
    m_hat / sqrt(v_hat) is about +-1 however noisy they are, so every weight
    moves by the whole learning rate. For a new layer in a trained network
    that is a jolt (the 65,536 weights of a 256-wide layer all move at once)
    that takes an epoch to recover from. So each parameter's steps grow
    linearly over its first ``ADAM_WARMUP`` steps: warm-up =
    min(1, v_fill / (1 - beta2^ADAM_WARMUP)), as v_fill = 1 - beta2^t is
    nearly t (1 - beta2) while t is small. (Warming up the learning rate
    helps Adam at the start of training too, for the same reason.)
    """

    name = "adam"
    slots = ("m", "v", "m_fill", "v_fill")

    def update(self, parameter, gradient, moments, learning_rate):
        m, v, m_fill, v_fill = moments
        # Once every entry has taken ADAM_SETTLED steps, m_fill has stopped
        # changing (1 - beta1^t rounds to the same number, in float32 and
        # float64 alike) and every warm-up factor is 1: both are skipped,
        # which gives the same numbers for less work. v_fill goes on rising.
        settled = v_fill.min(initial=1) >= ADAM_SETTLED_FILL

        m *= ADAM_BETA1
        m += (1 - ADAM_BETA1) * gradient
        v *= ADAM_BETA2
        v += (1 - ADAM_BETA2) * np.square(gradient)
        if not settled:
            m_fill *= ADAM_BETA1
            m_fill += 1 - ADAM_BETA1  # 1 - beta1^t
        v_fill *= ADAM_BETA2
        v_fill += 1 - ADAM_BETA2  # 1 - beta2^t

        # In place, one operation at a time: each is one pass over an array
        # of the parameter's size, and these arrays are large.
        step = v / v_fill  # v_hat
        np.sqrt(step, out=step)
        step += ADAM_EPSILON
        np.divide(m, step, out=step)
        step /= m_fill  # m_hat / (sqrt(v_hat) + epsilon)
        if not settled:
            warm_up = v_fill / (1 - ADAM_BETA2**ADAM_WARMUP)
            np.minimum(warm_up, 1, out=warm_up)
            step *= warm_up
        step *= learning_rate
        parameter -= step


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, momentum=0.9):
    """An optimiser by name: ``sgd``, ``momentum`` or ``adam``."""
    if name == "momentum":
        return Momentum(momentum)
    return OPTIMIZERS[name]()


def cosine_schedule(learning_rate, epochs):
    """The learning rate of each epoch (counted from 1), as half a cosine.

        rate(e) = learning_rate * (1 + cos(pi * (e - 1) / epochs)) / 2

    It starts at ``learning_rate`` and falls smoothly to nearly 0 in the
    last epoch: large steps while the weights are far from good, ever
    smaller ones at the end, so that training settles into a minimum
    instead of jumping around it. Its only setting is the number of epochs.
    """

    def rate(epoch):
        return learning_rate * (1 + math.cos(math.pi * (epoch - 1) / epochs)) / 2

    return rate


# ------------------------------------------------------- data augmentation


def shift_images(images, max_shift, rng):
    """Move each image by up to ``max_shift`` pixels along each axis.

    A digit moved by a pixel or two is the same digit, but its ink falls on
    other pixels: every epoch then shows the network new versions of the
    training digits, which it cannot learn by heart. Each image gets its
    own whole-pixel shift, drawn uniformly from -max_shift .. max_shift down
    and across; ink moved out of the 28x28 field is lost, and the field
    behind it is 0.

    Vectorised over the batch: the images are padded by ``max_shift`` on
    every side, and one fancy-indexing operation reads a 28x28 window out
    of each, at its own offset.
    """
    if max_shift == 0:
        return images
    batch = len(images)
    side = IMAGE_SIDE
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift))
    padded = np.pad(images.reshape(batch, side, side), pad)  # (batch, 28+2s, 28+2s)
    top = rng.integers(0, 2 * max_shift + 1, batch)  # (batch,) window corners
    left = rng.integers(0, 2 * max_shift + 1, batch)
    rows = top[:, None] + np.arange(side)  # (batch, 28)
    columns = left[:, None] + np.arange(side)  # (batch, 28)
    examples = np.arange(batch)[:, None, None]  # (batch, 1, 1)
    shifted = padded[examples, rows[:, :, None], columns[:, None, :]]
    return shifted.reshape(batch, PIXELS)  # (batch, 784)


# ------------------------------------------------------------- the network


LONGEST_CLASS_NAME = 40


def is_class_name(name):
    """A class name a saved model may carry: printed as it is by ``predict``,
    so one short line without control characters."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= LONGEST_CLASS_NAME
        and (name.isprintable())
    )


class DynamicNetwork:
    """784 inputs -> hidden layers -> 10 softmax outputs, cross-entropy;
    a choice of optimisers; layers and neurons can be added at any time."""

    def __init__(
        self,
        rng,
        hidden=(256,),
        activation=DEFAULT_ACTIVATION,
        optimizer=None,
        l2=0.0,
        inputs=PIXELS,
        class_names=DIGIT_NAMES,
        dtype=np.float32,
    ):
        """``hidden`` lists the widths of the hidden layers (it may be empty);
        ``activation`` is theirs. ``optimizer`` is an ``SGD``, ``Momentum``
        or ``Adam`` (default: SGD), ``l2`` the weight decay. ``rng`` is kept:
        neurons added later draw their random weights from it. ``inputs``
        is 784 for images; the tests use fewer for gradient checks."""
        hidden = [int(width) for width in hidden]
        if any(width < 1 for width in hidden):
            raise ValueError(f"every hidden layer needs a neuron, got {hidden}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; "
                f"choose one of {', '.join(ACTIVATIONS)}"
            )
        if len(class_names) != CLASSES:
            raise ValueError(f"need {CLASSES} class names, got {len(class_names)}")
        self.rng = rng
        self.activation = activation
        self.l2 = l2
        self.class_names = tuple(class_names)
        self.dtype = np.dtype(dtype)
        self.sizes = [int(inputs), *hidden, CLASSES]  # n_0, n_1, ..., n_L
        self.weights = [  # W_1 .. W_L
            initial_weights(fan_in, fan_out, activation, rng, self.dtype)
            for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]
        self.biases = [np.zeros(width, dtype=self.dtype) for width in self.sizes[1:]]
        self.optimizer = optimizer if optimizer is not None else SGD()
        self.optimizer.start(self.weights, self.biases)

    @property
    def depth(self):
        """L: the number of layers with weights, the hidden ones and the output."""
        return len(self.weights)

    @property
    def hidden(self):
        """The widths of the hidden layers, first to last."""
        return self.sizes[1:-1]

    def __repr__(self):
        arrows = " -> ".join(map(str, self.sizes))
        return f"DynamicNetwork({arrows}, {self.activation})"

    def parameters(self):
        """{"W1": W1, "b1": b1, ..., "bL": bL}: the arrays themselves."""
        named = {}
        for layer in range(1, self.depth + 1):
            named[f"W{layer}"] = self.weights[layer - 1]
            named[f"b{layer}"] = self.biases[layer - 1]
        return named

    def parameter_count(self):
        return sum(values.size for values in self.parameters().values())

    # ------------------------------------------------------------ forward

    def forward(self, x):
        """[a0, a1, ..., aL]: the input x = a0, each hidden layer's outputs
        and the ten output probabilities aL. Backward needs all of them."""
        f = ACTIVATIONS[self.activation][0]
        activations = [x]  # (batch, 784)
        for layer in range(1, self.depth + 1):
            z = activations[-1] @ self.weights[layer - 1] + self.biases[layer - 1]
            activations.append(f(z) if layer < self.depth else softmax(z))
        return activations  # activations[l]: (batch, n_l)

    def probabilities(self, x):
        """aL: (batch, 10), the probability of each class for each example."""
        return self.forward(x)[-1]

    def predict(self, x):
        """The class given the highest probability."""
        return np.argmax(self.probabilities(x), axis=1)

    def weight_penalty(self):
        """l2 / 2 * the sum of every squared weight (biases are not decayed)."""
        if not self.l2:
            return 0.0
        squares = sum(float(np.sum(W * W)) for W in self.weights)
        return self.l2 / 2 * squares

    def cost(self, x, labels):
        """C for this minibatch: mean cross-entropy plus the weight penalty."""
        aL = self.probabilities(x)
        return cross_entropy(aL, one_hot(labels, aL.dtype)) + self.weight_penalty()

    # ----------------------------------------------------------- backward

    def gradients(self, x, labels):
        """Backpropagation: (C, {"W1": dW1, "b1": db1, ..., "bL": dbL}).

        Stage 3's loop, unchanged: with softmax and cross-entropy the
        output's error signal is delta_L = (a_L - y) / batch, and then, from
        the output layer l = L down to the first, l = 1:

            dW_l        = a_{l-1}^T delta_l + l2 W_l      (z_l = a_{l-1} W_l + b_l)
            db_l        = sum over the batch of delta_l
            delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1})   (back through W_l,
                                                          then through f)

        The loop does not care how many layers there are or how wide they
        are, which is why a network can grow without a line of it changing.
        """
        f_slope = ACTIVATIONS[self.activation][1]
        y = one_hot(labels, x.dtype)  # (batch, 10)

        activations = self.forward(x)
        cost = cross_entropy(activations[-1], y) + self.weight_penalty()

        grads = {}
        delta = (activations[-1] - y) / len(x)  # delta_L, (batch, 10)
        for layer in range(self.depth, 0, -1):  # l = L, L-1, ..., 1
            W = self.weights[layer - 1]  # (n_{l-1}, n_l)
            a_below = activations[layer - 1]  # a_{l-1}, (batch, n_{l-1})
            dW = a_below.T @ delta  # (n_{l-1}, n_l)
            grads[f"W{layer}"] = dW + self.l2 * W if self.l2 else dW
            grads[f"b{layer}"] = delta.sum(axis=0)  # (n_l,)
            if layer > 1:
                delta = (delta @ W.T) * f_slope(a_below)  # delta_{l-1}
        return cost, grads

    # ------------------------------------------------------------- update

    def train_step(self, x, labels, learning_rate):
        """One optimiser step on a minibatch; returns its cost before the step.

        A learning rate far too large can push weights past the largest
        float; numpy's overflow warnings are silenced here because the
        training loop stops at the first loss that is not finite, with a
        message that names the epoch and the batch.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            cost, grads = self.gradients(x, labels)
            layers = range(1, self.depth + 1)
            self.optimizer.step(
                self.weights,
                self.biases,
                [grads[f"W{layer}"] for layer in layers],
                [grads[f"b{layer}"] for layer in layers],
                learning_rate,
            )
        return cost

    # ------------------------------------------------------------- growth

    def growable(self):
        """Every pair of lists that changes shape when the network grows.

        Yields ``(like_weights, like_biases, is_state)``: first the network's
        own ``weights`` and ``biases``, then each optimiser slot, laid out
        the same way. A growth step cuts all of them alike; the new entries
        of the optimiser's state are zeros: no past gradients, no steps.
        """
        yield self.weights, self.biases, False
        for like_weights, like_biases in self.optimizer.state.values():
            yield like_weights, like_biases, True

    def add_neurons(self, layer, count):
        """Add ``count`` neurons to hidden layer ``layer`` (1 to L - 1).

        W_layer gains ``count`` columns: the new neurons' incoming weights,
        random at the layer's initial scale, with zero biases, so each new
        neuron computes a feature of its own. W_{layer+1} gains ``count``
        rows of zeros: their outgoing weights. The layer above still gets
        z_{layer+1} = a_layer W_{layer+1} + b_{layer+1} with the new
        activations multiplied by 0, so every output is what it was (but for
        float32 rounding: more terms, if all 0, change how the product
        groups its additions).

        Training is not stuck there: dC/dW_{layer+1} = a_layer^T delta has
        nonzero rows for the new neurons (they are active), so the first
        step gives them outgoing weights, and from then on their incoming
        weights learn too. Works for every activation.
        """
        self.check_hidden_layer(layer)
        if count < 1:
            raise ValueError(f"add at least one neuron, not {count}")
        fan_in, fan_out = self.sizes[layer - 1], self.sizes[layer + 1]
        scale = weight_scale(fan_in, self.sizes[layer] + count, self.activation)
        incoming = scale * self.rng.standard_normal((fan_in, count))
        incoming = incoming.astype(self.dtype)  # (n_{layer-1}, count)
        for like_weights, like_biases, is_state in self.growable():
            new_incoming = np.zeros_like(incoming) if is_state else incoming
            like_weights[layer - 1] = np.concatenate(
                [like_weights[layer - 1], new_incoming], axis=1
            )  # (n_{layer-1}, n_layer + count)
            like_biases[layer - 1] = np.concatenate(
                [like_biases[layer - 1], np.zeros(count, dtype=self.dtype)]
            )  # (n_layer + count,)
            like_weights[layer] = np.concatenate(
                [like_weights[layer], np.zeros((count, fan_out), dtype=self.dtype)]
            )  # (n_layer + count, n_{layer+1})
        self.sizes[layer] += count

    def add_layer(self, size, position=None):
        """Insert a hidden layer of ``size`` neurons as hidden layer ``position``.

        ``position`` counts hidden layers from 1; the layers from there on
        move up by one. By default the new layer goes on top, just below the
        output.

        The new layer starts as the identity of the layer below it: W = I,
        b = 0, so it passes its input a_{position-1} on as it is, and the
        layer above receives the same numbers as before. That needs
        relu(a I + 0) = relu(a) = a, which holds because a >= 0: it is the
        output of a ReLU layer, or, at position 1, the pixels, which are in
        [0, 1]. (An input with negative values would lose them there.)

        An identity needs as many neurons as its input has values, so
        ``size`` must be at least the width of the layer below: 784 at
        position 1 (784 x 784 weights: deepening higher up is much cheaper).
        Neurons beyond that width are added as by ``add_neurons``, with zero
        outgoing weights, so the outputs still do not change.

        Only ReLU layers can start as an identity: sigmoid(a) and tanh(a) are
        not a (sigmoid(0) is 1/2), and no weights make them so exactly. For
        those activations ``add_layer`` raises ValueError and says so.
        """
        if self.activation != "relu":
            raise ValueError(
                f"a new {self.activation} layer cannot start as the identity "
                f"({self.activation}(a) is not a), so it would change what the "
                "network computes; add neurons instead, or use relu"
            )
        if position is None:
            position = len(self.hidden) + 1
        if not 1 <= position <= len(self.hidden) + 1:
            raise ValueError(
                f"a new hidden layer can go at position 1 to "
                f"{len(self.hidden) + 1} of {self!r}, not {position}"
            )
        below = self.sizes[position - 1]
        if size < below:
            raise ValueError(
                f"a new layer at position {position} needs at least {below} "
                f"neurons to start as the identity of the layer below it; "
                f"{size} are too few"
            )
        for like_weights, like_biases, is_state in self.growable():
            identity = np.eye(below, dtype=self.dtype)  # (below, below)
            like_weights.insert(
                position - 1, np.zeros_like(identity) if is_state else identity
            )
            like_biases.insert(position - 1, np.zeros(below, dtype=self.dtype))
        self.sizes.insert(position, below)
        if size > below:
            self.add_neurons(position, size - below)

    def check_hidden_layer(self, layer):
        if not 1 <= layer <= len(self.hidden):
            raise ValueError(
                f"hidden layer {layer} does not exist: {self!r} has "
                + (
                    f"hidden layers 1 to {len(self.hidden)}"
                    if self.hidden
                    else "none; insert one with add_layer"
                )
            )

    # ---------------------------------------------------- snapshot, restore

    def snapshot(self):
        """A copy of the shape, the weights and the optimiser's state."""
        return {
            "sizes": list(self.sizes),
            "weights": [W.copy() for W in self.weights],
            "biases": [b.copy() for b in self.biases],
            "state": copy_state(self.optimizer.state),
        }

    def restore(self, snapshot):
        """Return to ``snapshot``, shape and optimiser state included."""
        self.sizes = list(snapshot["sizes"])
        self.weights = [W.copy() for W in snapshot["weights"]]
        self.biases = [b.copy() for b in snapshot["biases"]]
        self.optimizer.state = copy_state(snapshot["state"])

    # ----------------------------------------------------- save and load

    def save(self, path):
        """The weights and the architecture, so that ``load`` can rebuild the
        network whatever it has grown into. The optimiser's state is not
        saved: training a loaded network starts its optimiser afresh."""
        save_model(
            path,
            self.parameters(),
            {
                "kind": KIND,
                "sizes": list(self.sizes),
                "activation": self.activation,
                "class_names": list(self.class_names),
            },
        )

    @classmethod
    def load(cls, path, rng=None, optimizer=None, l2=0.0):
        """The network saved at ``path``, rebuilt with its own layer widths
        and activation (float32).

        Every array must have the shape the saved layer widths imply, or
        ``ModelError`` names the layer and both shapes: a network is never
        loaded half-way. ``rng`` is for neurons added later.
        """
        arrays, architecture = load_model(path, KIND)
        sizes = architecture.get("sizes")
        activation = architecture.get("activation")
        class_names = architecture.get("class_names", list(DIGIT_NAMES))
        if (
            not isinstance(sizes, list)
            or len(sizes) < 2
            or not all(type(size) is int and size >= 1 for size in sizes)
            or sizes[0] != PIXELS
            or sizes[-1] != CLASSES
        ):
            sizes = shortened(repr(sizes), LONGEST_DESCRIBED)
            raise ModelError(
                f"{path}: layer widths {sizes} are not a network from "
                f"{PIXELS} inputs to {CLASSES} outputs"
            )
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ModelError(
                f"{path}: unknown activation {shortened(repr(activation))} "
                f"(expected one of {', '.join(ACTIVATIONS)})"
            )
        if (
            not isinstance(class_names, list)
            or len(class_names) != CLASSES
            or not all(map(is_class_name, class_names))
            or len(set(class_names)) != CLASSES
        ):
            class_names = shortened(repr(class_names), LONGEST_DESCRIBED)
            raise ModelError(
                f"{path}: {class_names} are not {CLASSES} different class names "
                f"(each printable, 1 to {LONGEST_CLASS_NAME} characters)"
            )

        arrows = " -> ".join(map(str, sizes))
        expected = {}
        for layer in range(1, len(sizes)):
            shape = (sizes[layer - 1], sizes[layer])
            expected[f"W{layer}"] = shape
            expected[f"b{layer}"] = (sizes[layer],)
            found = arrays.get(f"W{layer}")
            if found is not None and found.shape != shape:
                raise ModelError(
                    f"{path}: layer {layer} has weights W{layer} of shape "
                    f"{found.shape}, but the saved architecture {arrows} "
                    f"needs {shape}"
                )
        check_shapes(path, arrays, expected)

        network = cls(
            rng if rng is not None else np.random.default_rng(0),
            sizes[1:-1],
            activation,
            optimizer,
            l2,
            class_names=class_names,
        )
        for name, values in network.parameters().items():
            values[...] = arrays[name]  # into the float32 arrays, in place
        return network


def copy_state(state):
    """A copy of an optimiser's state: {slot: (like_weights, like_biases)}."""
    return {
        slot: ([W.copy() for W in like_W], [b.copy() for b in like_b])
        for slot, (like_W, like_b) in state.items()
    }
