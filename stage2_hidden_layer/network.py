"""Stage 2: one hidden layer of many neurons, 784 -> N -> 10.

Stage 1's single hidden neuron becomes a layer of N neurons, and its numbers
become vectors and matrices: the hidden weights w1 (784,) become a matrix W1
(784, N), one column per hidden neuron, and the whole minibatch goes through
each layer in one matrix product. Each hidden neuron can now look for its
own pattern of strokes, so ten classes no longer have to fit on one line.

Two losses can be chosen. ``mse`` keeps stage 1's sigmoid outputs and mean
squared error. ``cross-entropy`` (the default) turns the ten outputs into
probabilities with the softmax and scores the probability of the true digit;
it learns faster when an output is badly wrong (see ``gradients``).

What it leaves out: more than one hidden layer, other activations, momentum
and weight decay (stage 3). Expect about 94% test accuracy on the embedded
sample with the defaults (94.0% to 95.1% over seeds 0 to 4 on two
machines, 94.4% to 94.5% on average, when trained on its 3,500 training
digits; about 93.5% on the 10,000 real MNIST test digits), against stage
1's 30% or so.

Notation, stage 1's generalised (inputs are rows, one per example; a capital
letter is a matrix):

    x   (batch, 784)     pixel values in [0, 1]
    y   (batch, 10)      one-hot target: 1 for the true digit, 0 elsewhere
    W1  (784, hidden)    hidden weights        b1  (hidden,)  hidden biases
    z1  (batch, hidden)  hidden weighted sums  a1  (batch, hidden) = sigmoid(z1)
    W2  (hidden, 10)     output weights        b2  (10,)      output biases
    z2  (batch, 10)      output weighted sums  a2  (batch, 10) = sigmoid(z2)
                                               (mse) or softmax(z2) (cross-entropy)
    C                    cost: the mean over the batch of the loss
    dX                   dC/dX, an array of the same shape as X
    delta1, delta2       dC/dz1, dC/dz2: the error signal of each layer
"""

import numpy as np

from common.data import CLASSES, PIXELS
from common.errors import LONGEST_DESCRIBED, ModelError, shortened
from common.models import check_shapes, load_model, save_model

KIND = "stage2_hidden_layer"
LOSSES = ("mse", "cross-entropy")
DEFAULT_HIDDEN = 100
DEFAULT_LOSS = "cross-entropy"


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


def mean_squared_error(a2, y):
    """C: mean over the batch of half the squared distance to the target."""
    return float(0.5 * np.sum((a2 - y) ** 2) / len(a2))


def cross_entropy(a2, y):
    """C: mean over the batch of -sum_k y_k log a2_k, i.e. -log(p of the truth).

    A probability can be exactly 0 (softmax gives 0 below the smallest
    normal float), whose log is -inf; probabilities are raised to that
    smallest normal float first, so an example costs at most 87 (float32)
    or 708 (float64): large, but finite.
    """
    floor = np.finfo(a2.dtype).tiny
    return float(-np.sum(y * np.log(np.maximum(a2, floor))) / len(a2))


COSTS = {"mse": mean_squared_error, "cross-entropy": cross_entropy}


def fan_in_weights(rng, fan_in, fan_out, dtype=np.float32):
    """A (fan_in, fan_out) matrix of random weights with spread 1 / sqrt(fan_in).

    A weighted sum adds up fan_in products, so its spread grows like
    sqrt(fan_in) times that of one weight; dividing by sqrt(fan_in) keeps
    every neuron's z near 0 at the start, where the sigmoid is steepest and
    learns fastest, whatever the width of the layer before. With spread 1
    a neuron with 784 inputs would start saturated, its gradient close to 0.
    """
    return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)


class HiddenLayerNetwork:
    """784 inputs -> N sigmoid hidden neurons -> 10 outputs, MSE or cross-entropy."""

    def __init__(self, rng, hidden=DEFAULT_HIDDEN, loss=DEFAULT_LOSS, dtype=np.float32):
        """Random weights scaled by fan-in (see ``fan_in_weights``), zero biases."""
        if hidden < 1:
            raise ValueError(f"a hidden layer needs at least 1 neuron, got {hidden}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        self.hidden, self.loss = hidden, loss
        self.W1 = fan_in_weights(rng, PIXELS, hidden, dtype)  # (784, hidden)
        self.b1 = np.zeros(hidden, dtype=dtype)  # (hidden,)
        self.W2 = fan_in_weights(rng, hidden, CLASSES, dtype)  # (hidden, 10)
        self.b2 = np.zeros(CLASSES, dtype=dtype)  # (10,)

    def __repr__(self):
        outputs = "sigmoid" if self.loss == "mse" else "softmax"
        return (
            f"HiddenLayerNetwork({PIXELS} -> {self.hidden} -> {CLASSES}, "
            f"sigmoid, {outputs}, {self.loss})"
        )

    def parameters(self):
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}

    def parameter_count(self):
        return sum(values.size for values in self.parameters().values())

    # ------------------------------------------------------------ forward

    def forward(self, x):
        """Return (a1, a2): the hidden layer's outputs and the ten outputs."""
        z1 = x @ self.W1 + self.b1  # (batch, hidden)
        a1 = sigmoid(z1)  # (batch, hidden)
        z2 = a1 @ self.W2 + self.b2  # (batch, 10)
        a2 = sigmoid(z2) if self.loss == "mse" else softmax(z2)  # (batch, 10)
        return a1, a2

    def predict(self, x):
        """The digit whose output neuron is the most active."""
        with np.errstate(over="ignore", invalid="ignore"):  # see train_step
            a2 = self.forward(x)[1]  # (batch, 10)
        return np.argmax(a2, axis=1)

    def cost(self, x, labels):
        """C for this minibatch, with the network's loss."""
        a2 = self.forward(x)[1]
        return COSTS[self.loss](a2, one_hot(labels, a2.dtype))

    # ----------------------------------------------------------- backward

    def gradients(self, x, labels):
        """Backpropagation: (C, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}).

        Only the output layer's error signal delta2 depends on the loss.
        With sigmoid'(z) = a * (1 - a):

            mse:            C = 1/2 sum_k (a2_k - y_k)^2 / batch
                            dC/da2 = (a2 - y) / batch
                            delta2 = dC/da2 * a2 * (1 - a2)
            cross-entropy:  C = -sum_k y_k log a2_k / batch, a2 = softmax(z2)
                            delta2 = (a2 - y) / batch

        Cross-entropy learns faster when an output is badly wrong: with MSE
        the factor a2 * (1 - a2) = sigmoid'(z2) is close to 0 for an output
        stuck near 0 or 1, even at the wrong end, so it barely moves; the
        derivative of the log cancels that factor (for a sigmoid output
        exactly, for the softmax through its Jacobian), leaving delta2 as
        large as the error itself. The rest is the same for both, stage 1's
        rules with the sums over neurons now done by matrix products:

            dW2    = a1^T delta2                  (z2 = a1 W2 + b2)
            db2    = sum over the batch of delta2
            dC/da1 = delta2 W2^T
            delta1 = dC/da1 * a1 * (1 - a1)
            dW1    = x^T delta1                   (z1 = x W1 + b1)
            db1    = sum over the batch of delta1
        """
        batch = len(x)
        y = one_hot(labels, x.dtype)  # (batch, 10)

        a1, a2 = self.forward(x)
        cost = COSTS[self.loss](a2, y)

        if self.loss == "mse":
            da2 = (a2 - y) / batch  # (batch, 10)
            delta2 = da2 * a2 * (1 - a2)  # (batch, 10)
        else:
            delta2 = (a2 - y) / batch  # (batch, 10)
        dW2 = a1.T @ delta2  # (hidden, 10)
        db2 = delta2.sum(axis=0)  # (10,)

        da1 = delta2 @ self.W2.T  # (batch, hidden)
        delta1 = da1 * a1 * (1 - a1)  # (batch, hidden)
        dW1 = x.T @ delta1  # (784, hidden)
        db1 = delta1.sum(axis=0)  # (hidden,)

        return cost, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    # ------------------------------------------------------------- update

    def train_step(self, x, labels, learning_rate):
        """One step of gradient descent on a minibatch; returns its cost.

        A learning rate far too large can make weights so large that a
        weighted sum overflows to inf, and inf - inf is nan. numpy's
        warnings about it are silenced here (and in ``predict``) because
        the nan reaches the loss, and the training loop then stops with one
        message that names the epoch and the batch.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            cost, grads = self.gradients(x, labels)
            for name, values in self.parameters().items():
                values -= learning_rate * grads[name]  # in place: same arrays
        return cost

    # ----------------------------------------------------- save and load

    def save(self, path):
        save_model(
            path,
            self.parameters(),
            {"kind": KIND, "sizes": [PIXELS, self.hidden, CLASSES], "loss": self.loss},
        )

    @classmethod
    def load(cls, path):
        """The network saved at ``path``, rebuilt with its own hidden size
        and loss (float32)."""
        arrays, architecture = load_model(path, KIND)
        sizes, loss = architecture.get("sizes"), architecture.get("loss")
        if (
            not isinstance(sizes, list)
            or len(sizes) != 3
            or not all(type(size) is int for size in sizes)
            or sizes[0] != PIXELS
            or sizes[2] != CLASSES
            or sizes[1] < 1
            or loss not in LOSSES
        ):
            described = shortened(str(architecture), LONGEST_DESCRIBED)
            raise ModelError(
                f"{path}: architecture {described} is not a "
                f"{PIXELS} -> N -> {CLASSES} network with a loss in {LOSSES}"
            )
        hidden = sizes[1]
        check_shapes(
            path,
            arrays,
            {
                "W1": (PIXELS, hidden),
                "b1": (hidden,),
                "W2": (hidden, CLASSES),
                "b2": (CLASSES,),
            },
        )
        network = cls(np.random.default_rng(0), hidden=hidden, loss=loss)
        for name, values in arrays.items():
            setattr(network, name, values.astype(np.float32))
        return network
