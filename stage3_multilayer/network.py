"""Stage 3: any number of hidden layers, 784 -> h1 -> h2 -> ... -> 10.

Stage 2 had one hidden layer and wrote its backpropagation out line by line,
one block per layer. Here the number of hidden layers is chosen when the
network is built, so the weights live in lists and backpropagation becomes
ONE loop that walks the layers from the output back to the first: each
pass turns the error signal of a layer into the gradients of its weights
and into the error signal of the layer below. Depth brings its own trouble,
and this stage has the first cures for it:

- vanishing gradients: the sigmoid's slope is at most 1/4, so the error
  signal shrinks at every sigmoid layer it passes on its way back, and the
  first layers of a deep sigmoid network barely learn. ReLU passes the
  signal through unchanged wherever it is active; tanh sits in between.
- initialisation that matches the activation (Glorot for sigmoid and tanh,
  He for ReLU), so each layer's weighted sums start neither saturated nor
  dead, whatever the depth.
- momentum, which keeps a running velocity of the updates, and L2 weight
  decay, which pulls every weight a little towards 0 at each step.

The output is softmax with the cross-entropy cost, stage 2's better
choice. The command line also lets the learning rate fall linearly over the
epochs (``linear_decay`` in ``__main__.py``). What it leaves out: adaptive
optimisers (Adam and kin), other schedules, early stopping, data
augmentation, dropout, batch normalisation, convolutions, and changing the
architecture during training (stage 4).

Expect, with the defaults (784 -> 256 -> 128 -> 10, ReLU, momentum 0.9,
20 epochs): about 95.4% test accuracy on the embedded sample (94.7% to
95.8% over seeds 0 to 4 on two machines), against stage 2's 94.4%; about
94% on the 10,000 real MNIST test digits for a network trained on the
sample; 89.4% on full Fashion-MNIST. On the sample, wider (512, 512) or
deeper (256, 128, 64) networks measured no better: 3,500 digits are the
limit, and more digits, or stage 4's shifted copies of them, are what helps.

Notation, the same in every stage (inputs are rows, one per example). The
layers are counted l = 1 .. L from the first hidden layer to the output;
Python's lists count from 0, so ``weights[l - 1]`` holds W_l:

    x = a0  (batch, 784)        pixel values in [0, 1]
    y       (batch, 10)         one-hot target: 1 for the true digit
    W_l     (n_{l-1}, n_l)      weights of layer l    b_l  (n_l,)  its biases
    z_l     (batch, n_l)        weighted sums: a_{l-1} W_l + b_l
    a_l     (batch, n_l)        = f(z_l) for a hidden layer (f: sigmoid, tanh
                                or ReLU), = softmax(z_L) at the output
    C       cost: mean over the batch of -log a_L[true digit],
            plus l2 / 2 * (sum of all squared weights, biases excluded)
    dX      dC/dX, an array of the same shape as X
    delta_l dC/dz_l: the error signal of layer l
"""

import numpy as np

from common.data import CLASSES, PIXELS
from common.errors import LONGEST_DESCRIBED, ModelError, shortened
from common.models import check_shapes, load_model, save_model

KIND = "stage3_multilayer"
DEFAULT_HIDDEN = (256, 128)
DEFAULT_ACTIVATION = "relu"


def sigmoid(z):
    """1 / (1 + e^-z) for any finite z, with no overflow or underflow.

    e^-|z| is computed instead of e^-z, so the exponential never exceeds 1;
    |z| is capped where the result no longer changes in this precision. For
    z below -87 (float32) or -708 (float64) the true value is smaller than
    the smallest normal float, and the result is exactly 0.
    """
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
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
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    return np.tanh(z)


def relu(z):
    """max(z, 0): the identity for a positive sum, 0 for the rest."""
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    return np.maximum(z, 0, dtype=z.dtype)


# The slope f'(z) of each activation, written with its output a = f(z):
# forward keeps every a anyway, so backward needs nothing else.
def sigmoid_slope(a):
    return a * (1 - a)  # at most 1/4, at z = 0


def tanh_slope(a):
    return 1 - a * a  # at most 1, at z = 0


def relu_slope(a):
    return (a > 0).astype(a.dtype)  # 1 where active, 0 elsewhere


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_slope),
    "tanh": (tanh, tanh_slope),
    "relu": (relu, relu_slope),
}


def softmax(z):
    """Each row of z turned into probabilities: e^z_k / sum_j e^z_j.

    Adding the same number to every z of a row does not change the result,
    so the row's largest z is subtracted first: the exponentials are then at
    most 1 and cannot overflow, and at least one of them is exactly 1. The
    probabilities are computed as the exponential of the log-softmax,
    z_k - max - log(sum_j e^(z_j - max)), and any below the smallest normal
    float are exactly 0 (a -inf logit among finite ones gives 0). Rows are
    independent: each row has its own maximum and sum.
    """
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    limit = np.floor(-np.log(np.finfo(z.dtype).tiny))  # 87 or 708
    with np.errstate(over="ignore"):
        # Only a difference beyond the largest float overflows, to -inf,
        # whose probability is 0 all the same.
        shifted = z - np.max(z, axis=-1, keepdims=True)  # <= 0
    exp_shifted = np.where(shifted < -limit, 0, np.exp(np.maximum(shifted, -limit)))
    log_sum = np.log(np.sum(exp_shifted, axis=-1, keepdims=True))  # in [0, log 10]
    log_probability = shifted - log_sum
    return np.where(
        log_probability < -limit, 0, np.exp(np.maximum(log_probability, -limit))
    ).astype(z.dtype)


def one_hot(labels, dtype=np.float32):
    """Labels (batch,) -> rows of ten numbers, 1 at the label, 0 elsewhere."""
    targets = np.zeros((len(labels), CLASSES), dtype=dtype)
    targets[np.arange(len(labels)), labels] = 1
    return targets


def cross_entropy(a, y):
    """C: mean over the batch of -sum_k y_k log a_k, i.e. -log(p of the truth).

    A probability can be exactly 0 (softmax gives 0 below the smallest
    normal float), whose log is -inf; probabilities are raised to that
    smallest normal float first, so an example costs at most 87 (float32)
    or 708 (float64): large, but finite.
    """
    floor = np.finfo(a.dtype).tiny
    return float(-np.sum(y * np.log(np.maximum(a, floor))) / len(a))


def initial_weights(rng, fan_in, fan_out, activation, dtype=np.float32):
    """Random weights (fan_in, fan_out) whose spread suits the activation.

    A weighted sum adds up fan_in products, so its variance is fan_in times
    that of one product: the weights' variance must shrink as 1 / fan_in
    for the sums to stay where the activation has a useful slope, at every
    depth. Glorot and Bengio (2010) balance the forward pass (fan_in) and
    the backward pass (fan_out): variance 2 / (fan_in + fan_out). ReLU
    outputs 0 for about half of its inputs, which halves the variance it
    passes on; He et al. (2015) double the variance to make up for it:
    2 / fan_in.
    """
    if activation == "relu":
        variance = 2 / fan_in  # He
    else:
        variance = 2 / (fan_in + fan_out)  # Glorot
    values = rng.standard_normal((fan_in, fan_out)) * np.sqrt(variance)
    return values.astype(dtype)


def root_mean_square(values):
    """sqrt(mean(values^2)): one number for the size of a whole array."""
    return float(np.sqrt(np.vdot(values, values) / values.size))


class MultilayerNetwork:
    """784 inputs -> hidden layers -> 10 softmax outputs, cross-entropy;
    SGD with momentum and L2 weight decay."""

    def __init__(
        self,
        rng,
        hidden=DEFAULT_HIDDEN,
        activation=DEFAULT_ACTIVATION,
        momentum=0.0,
        l2=0.0,
        dtype=np.float32,
    ):
        """``hidden`` lists the widths of the hidden layers, first to last;
        ``activation`` is theirs, and chooses the initialisation (see
        ``initial_weights``). Biases start at 0. ``momentum`` (0 for plain
        SGD) and ``l2`` (the weight decay) shape each training step."""
        hidden = tuple(int(width) for width in hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"every hidden layer needs a neuron, got {hidden}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; "
                f"choose one of {', '.join(ACTIVATIONS)}"
            )
        self.hidden, self.activation = hidden, activation
        self.momentum, self.l2 = momentum, l2
        self.sizes = (PIXELS, *hidden, CLASSES)  # n_0, n_1, ..., n_L
        self.weights = [  # W_1 .. W_L
            initial_weights(rng, fan_in, fan_out, activation, dtype)
            for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]
        self.biases = [np.zeros(width, dtype=dtype) for width in self.sizes[1:]]
        # Momentum's running step, one per parameter, at rest to begin with.
        self.velocities = {
            name: np.zeros_like(values) for name, values in self.parameters().items()
        }
        # Each layer's weight gradient size (root mean square) at every
        # training step: which layers learn, and which barely move.
        self.gradient_sizes = {f"W{layer}": [] for layer in range(1, self.depth + 1)}
        self.last_gradient_sizes = {}  # of the latest call to ``gradients``

    @property
    def depth(self):
        """L: the number of layers with weights, the hidden ones and the output."""
        return len(self.weights)

    def __repr__(self):
        arrows = " -> ".join(map(str, self.sizes))
        training = "".join(
            f", {name} {value:g}"
            for name, value in (("momentum", self.momentum), ("l2", self.l2))
            if value
        )
        return (
            f"MultilayerNetwork({arrows}, {self.activation}, softmax, "
            f"cross-entropy{training})"
        )

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

    def predict(self, x):
        """The digit given the highest probability."""
        with np.errstate(over="ignore", invalid="ignore"):  # see train_step
            aL = self.forward(x)[-1]  # (batch, 10)
        return np.argmax(aL, axis=1)

    def weight_penalty(self):
        """l2 / 2 * the sum of every squared weight. Biases are left alone: a
        bias moves a neuron's threshold but cannot make the network's
        function any more wiggly, so there is nothing to gain by shrinking it."""
        if not self.l2:
            return 0.0
        squares = sum(float(np.vdot(weights, weights)) for weights in self.weights)
        return self.l2 / 2 * squares  # vdot: the sum of squares, in one pass

    def cost(self, x, labels):
        """C for this minibatch: mean cross-entropy plus the weight penalty."""
        aL = self.forward(x)[-1]
        return cross_entropy(aL, one_hot(labels, aL.dtype)) + self.weight_penalty()

    # ----------------------------------------------------------- backward

    def gradients(self, x, labels):
        """Backpropagation: (C, {"W1": dW1, "b1": db1, ..., "bL": dbL}).

        With softmax and cross-entropy the output's error signal is simply
        delta_L = (a_L - y) / batch, as in stage 2. Then ONE loop, from the
        output layer l = L down to the first, l = 1:

            dW_l        = a_{l-1}^T delta_l + l2 W_l      (z_l = a_{l-1} W_l + b_l)
            db_l        = sum over the batch of delta_l
            delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1})   (back through W_l,
                                                          then through f)

        These three lines are stage 2's, with the layer's number as a
        variable. The loop must walk backwards because each layer's error
        signal is made from the one above it. It stops before delta_0: the
        pixels have no weights. f'(z) is written with a = f(z) (see the
        ``_slope`` functions), so the activations kept by ``forward`` are all
        that is needed. The size of each data gradient a_{l-1}^T delta_l,
        before the decay term, is kept in ``last_gradient_sizes``.
        """
        f_slope = ACTIVATIONS[self.activation][1]
        y = one_hot(labels, x.dtype)  # (batch, 10)

        activations = self.forward(x)
        cost = cross_entropy(activations[-1], y) + self.weight_penalty()

        grads, sizes = {}, {}
        delta = (activations[-1] - y) / len(x)  # delta_L, (batch, 10)
        for layer in range(self.depth, 0, -1):  # l = L, L-1, ..., 1
            W = self.weights[layer - 1]  # (n_{l-1}, n_l)
            a_below = activations[layer - 1]  # a_{l-1}, (batch, n_{l-1})
            dW = a_below.T @ delta  # (n_{l-1}, n_l)
            sizes[f"W{layer}"] = root_mean_square(dW)
            if self.l2:
                dW += self.l2 * W
            grads[f"W{layer}"] = dW
            grads[f"b{layer}"] = delta.sum(axis=0)  # (n_l,)
            if layer > 1:
                delta = (delta @ W.T) * f_slope(a_below)  # delta_{l-1}

        self.last_gradient_sizes = sizes
        return cost, grads

    # ------------------------------------------------------------- update

    def train_step(self, x, labels, learning_rate):
        """One step of SGD with momentum on a minibatch; returns its cost.

        Each parameter p keeps a velocity v, a decaying sum of past steps:

            v <- momentum * v - learning_rate * dC/dp
            p <- p + v

        With momentum 0 this is stage 2's plain gradient descent. With
        momentum 0.9, a gradient that keeps its direction builds up a step
        ten times as long, while one that flips sign from batch to batch
        cancels out. The L2 term l2 * W in dC/dW pulls every weight towards
        0 at each step, by the fraction learning_rate * l2 without momentum:
        weight decay.

        A learning rate far too large can push weights past the largest
        float; numpy's overflow warnings are silenced here because the
        training loop stops at the first loss that is not finite, with a
        message that names the epoch and the batch.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            cost, grads = self.gradients(x, labels)
            for name, values in self.parameters().items():
                if self.momentum:
                    velocity = self.velocities[name]
                    velocity *= self.momentum
                    velocity -= learning_rate * grads[name]
                    values += velocity  # in place: the same arrays
                else:
                    values -= learning_rate * grads[name]  # no velocity to keep
        for name, size in self.last_gradient_sizes.items():
            self.gradient_sizes[name].append(size)
        return cost

    # ----------------------------------------------------- save and load

    def save(self, path):
        save_model(
            path,
            self.parameters(),
            {"kind": KIND, "sizes": list(self.sizes), "activation": self.activation},
        )

    @classmethod
    def load(cls, path, momentum=0.0, l2=0.0):
        """The network saved at ``path``, rebuilt with its own layer widths and
        activation (float32). The velocities are not saved: training a
        loaded network starts with momentum at rest."""
        arrays, architecture = load_model(path, KIND)
        sizes = architecture.get("sizes")
        activation = architecture.get("activation")
        if (
            not isinstance(sizes, list)
            or len(sizes) < 3
            or not all(type(size) is int and size >= 1 for size in sizes)
            or sizes[0] != PIXELS
            or sizes[-1] != CLASSES
            or not isinstance(activation, str)
            or activation not in ACTIVATIONS
        ):
            described = shortened(str(architecture), LONGEST_DESCRIBED)
            raise ModelError(
                f"{path}: architecture {described} is not a {PIXELS} -> "
                f"N -> ... -> {CLASSES} network with an activation in "
                f"{tuple(ACTIVATIONS)}"
            )
        expected = {}
        for layer in range(1, len(sizes)):
            expected[f"W{layer}"] = (sizes[layer - 1], sizes[layer])
            expected[f"b{layer}"] = (sizes[layer],)
        check_shapes(path, arrays, expected)

        network = cls(np.random.default_rng(0), sizes[1:-1], activation, momentum, l2)
        for name, values in network.parameters().items():
            values[...] = arrays[name]  # into the float32 arrays, in place
        return network
