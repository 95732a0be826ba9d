"""Stage 1: the smallest network that reads digits, 784 -> 1 -> 10.

Every pixel feeds ONE hidden neuron; that neuron's single output feeds ten
output neurons, one per digit. Everything a network does is here in its
simplest form: a weighted sum plus a bias, the sigmoid activation, the mean
squared error against the one-hot target, backpropagation written out as
the chain rule for exactly these four parameters, and minibatch stochastic
gradient descent.

What it leaves out: more hidden neurons (stage 2), better losses (stage 2),
depth (stage 3). Expect about 27% to 32% test accuracy (29% on average
over 20 seeds on the embedded sample, 30% on the real MNIST test digits):
one number per image can order the digits along a single line, but ten
classes do not fit on a line (see the per-class histogram this stage
draws), and each output, a sigmoid of that one number, can only rise or
fall along it, so the digits in the middle of the line are rarely chosen.

Notation, the same in every stage (inputs are rows, one per example):

    x   (batch, 784)  pixel values in [0, 1]
    y   (batch, 10)   one-hot target: 1 for the true digit, 0 elsewhere
    w1  (784,)        hidden weights          b1  ()     hidden bias
    z1  (batch,)      hidden weighted sum     a1  (batch,)  = sigmoid(z1)
    w2  (10,)         output weights          b2  (10,)  output biases
    z2  (batch, 10)   output weighted sums    a2  (batch, 10) = sigmoid(z2)
    C                 cost: mean over the batch of 1/2 * sum_k (a2_k - y_k)^2
    dX                dC/dX, an array of the same shape as X
    delta1, delta2    dC/dz1, dC/dz2: the error signal of each layer
"""

import numpy as np

from common.data import CLASSES, PIXELS
from common.models import check_shapes, load_model, save_model

KIND = "stage1_single_neuron"
DISCRIMINANT_RIDGE = 1e-3  # added to the scatter matrix so it can be inverted
DISCRIMINANT_ROWS = 1024  # images converted to float64 at a time
OUTPUT_START = 1 / CLASSES  # each output's first value: the share of each digit


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


def one_hot(labels, dtype=np.float32):
    """Labels (batch,) -> rows of ten numbers, 1 at the label, 0 elsewhere."""
    targets = np.zeros((len(labels), CLASSES), dtype=dtype)
    targets[np.arange(len(labels)), labels] = 1
    return targets


class SingleNeuronNetwork:
    """784 inputs -> one sigmoid hidden neuron -> 10 sigmoid outputs, MSE."""

    def __init__(self, rng, dtype=np.float32):
        """Small random hidden weights; an output layer that starts neutral.

        Hidden: z1 starts near 0, where the sigmoid is steepest. Output:
        w2 = 0 and b2 = log(1/9) make every output start at a2 = 0.1, the
        share of each digit, and send no error back to the hidden neuron
        before the outputs have learned what a1 means. That matters here:
        a step changes z1 by |x|^2 (88 for an average digit) times the
        learning rate times delta1, but z2 by at most twice the rate times
        delta2, and all digits share much of their ink. So an error that
        every image has in common (all outputs at 0.5 while nine targets in
        ten are 0, or random output weights) pushes every z1 the same way
        until the hidden neuron saturates at 0 or 1, where a1 * (1 - a1) is
        about 0 and it stops learning: the runs that stall near 20%.
        """
        self.w1 = (rng.standard_normal(PIXELS) / np.sqrt(PIXELS)).astype(dtype)
        self.b1 = np.zeros((), dtype=dtype)
        self.w2 = np.zeros(CLASSES, dtype=dtype)
        self.b2 = np.full(CLASSES, np.log(OUTPUT_START / (1 - OUTPUT_START)), dtype)

    def __repr__(self):
        return f"SingleNeuronNetwork({PIXELS} -> 1 -> {CLASSES}, sigmoid, mse)"

    def parameters(self):
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def parameter_count(self):
        return sum(values.size for values in self.parameters().values())

    # ------------------------------------------------------------ forward

    def forward(self, x):
        """Return (a1, a2): the hidden neuron's output and the ten outputs."""
        z1 = x @ self.w1 + self.b1  # (batch,)
        a1 = sigmoid(z1)  # (batch,)
        z2 = a1[:, None] * self.w2 + self.b2  # (batch, 10)
        a2 = sigmoid(z2)  # (batch, 10)
        return a1, a2

    def predict(self, x):
        """The digit whose output neuron is the most active."""
        return np.argmax(self.forward(x)[1], axis=1)

    def cost(self, x, labels):
        """C: mean over the batch of half the squared distance to the target."""
        a2 = self.forward(x)[1]
        return float(0.5 * np.sum((a2 - one_hot(labels, a2.dtype)) ** 2) / len(x))

    # ----------------------------------------------------------- backward

    def gradients(self, x, labels):
        """Backpropagation: (C, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}).

        The chain rule, from the cost back to each parameter. With
        sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)) = a * (1 - a):

            dC/da2 = (a2 - y) / batch
            delta2 = dC/dz2 = dC/da2 * a2 * (1 - a2)
            dw2    = sum over the batch of delta2 * a1    (z2 = a1 * w2 + b2)
            db2    = sum over the batch of delta2
            dC/da1 = sum over the ten outputs of delta2 * w2
            delta1 = dC/dz1 = dC/da1 * a1 * (1 - a1)
            dw1    = x^T delta1                           (z1 = x w1 + b1)
            db1    = sum over the batch of delta1
        """
        batch = len(x)
        y = one_hot(labels, x.dtype)  # (batch, 10)

        a1, a2 = self.forward(x)
        cost = 0.5 * np.sum((a2 - y) ** 2) / batch

        da2 = (a2 - y) / batch  # (batch, 10)
        delta2 = da2 * a2 * (1 - a2)  # (batch, 10)
        dw2 = a1 @ delta2  # (10,)
        db2 = delta2.sum(axis=0)  # (10,)

        da1 = delta2 @ self.w2  # (batch,)
        delta1 = da1 * a1 * (1 - a1)  # (batch,)
        dw1 = x.T @ delta1  # (784,)
        db1 = delta1.sum()  # ()

        return float(cost), {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}

    # ------------------------------------------------------------- update

    def train_step(self, x, labels, learning_rate):
        """One step of gradient descent on a minibatch; returns its cost.

        A learning rate far too large makes the weights overflow to inf, and
        inf - inf is nan; numpy's warnings about it are silenced because the
        nan reaches the cost, and the training loop then stops with one
        message naming the epoch and the batch.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            cost, grads = self.gradients(x, labels)
            for name, values in self.parameters().items():
                values -= learning_rate * grads[name]  # in place: same arrays
        return cost

    # -------------------------------------------------- a better start

    def start_along_discriminant(self, images, labels):
        """Point the hidden weights along the first linear discriminant.

        From a random start, the one hidden neuron often settles on a
        direction that separates only a few digits. Fisher's linear
        discriminant is the direction along which the class means lie
        farthest apart relative to the spread inside each class: the best
        a single number can do for a linear start. Measured on the sample
        with the defaults, seeds 0 to 4: 29% to 32% test accuracy from
        here, 20% to 28% from a random start. Training still moves every
        weight from there.
        """
        direction = first_discriminant(images, labels)
        # In the images' own precision: a float64 direction would make NumPy
        # convert the whole training set to float64 first.
        projected = images @ direction.astype(images.dtype)
        # Scale so the weighted sums span about -2..2, the sigmoid's
        # responsive range, and centre them on 0.
        scale = 2 / (projected.std() * 2 + 1e-12)
        self.w1 = (direction * scale).astype(self.w1.dtype)
        self.b1 = np.asarray(-projected.mean() * scale, dtype=self.b1.dtype)

    # ----------------------------------------------------- save and load

    def save(self, path):
        save_model(
            path, self.parameters(), {"kind": KIND, "sizes": [PIXELS, 1, CLASSES]}
        )

    @classmethod
    def load(cls, path):
        """A network with the weights saved at ``path`` (float32)."""
        arrays, _ = load_model(path, KIND)
        check_shapes(
            path,
            arrays,
            {"w1": (PIXELS,), "b1": (), "w2": (CLASSES,), "b2": (CLASSES,)},
        )
        network = cls(np.random.default_rng(0))
        for name, values in arrays.items():
            setattr(network, name, values.astype(np.float32))
        return network


def first_discriminant(images, labels):
    """Unit vector w maximising between-class over within-class scatter.

    Solves S_between w = lambda S_within w for the largest lambda, via a
    Cholesky factor S_within = L L^T so that a symmetric eigenproblem
    remains. A small ridge keeps S_within invertible (border pixels are
    always 0, so it is singular as it stands).

    The sums are taken in float64, but only ``DISCRIMINANT_ROWS`` images of
    a class at a time are converted to it: a float64 copy of the training
    set would take twice the memory of the float32 images themselves.
    """
    mean = images.mean(axis=0, dtype=np.float64)
    within = np.zeros((images.shape[1], images.shape[1]))
    between = np.zeros_like(within)
    for digit in np.unique(labels):  # every class present in the data
        members = np.flatnonzero(labels == digit)
        chunks = [
            members[start : start + DISCRIMINANT_ROWS]
            for start in range(0, len(members), DISCRIMINANT_ROWS)
        ]
        class_sum = sum(images[chunk].sum(axis=0, dtype=np.float64) for chunk in chunks)
        class_mean = class_sum / len(members)
        for chunk in chunks:
            centred = images[chunk] - class_mean  # float64, as class_mean is
            within += centred.T @ centred
        offset = class_mean - mean
        between += len(members) * np.outer(offset, offset)
    within /= len(images)
    between /= len(images)
    within += DISCRIMINANT_RIDGE * np.eye(len(within))

    factor = np.linalg.cholesky(within)  # within = L L^T
    inverse = np.linalg.inv(factor)
    _, vectors = np.linalg.eigh(inverse @ between @ inverse.T)
    direction = inverse.T @ vectors[:, -1]  # back from the whitened space
    return direction / np.linalg.norm(direction)
