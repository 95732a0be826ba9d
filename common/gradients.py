"""Numerical gradients, to check the gradients that backpropagation computes.

A central difference, (f(w + h) - f(w - h)) / 2h, approximates the slope of
the loss along one weight with an error of order h squared. It costs two
forward passes per weight, far too slow to train with, but it needs no
calculus, so agreement with backpropagation is strong evidence that the
chain rule was applied correctly. Checks run in float64: in float32 the
rounding error of f would swamp the difference.
"""

import numpy as np

STEP = 1e-6


def numerical_gradient(loss, weights, step=STEP):
    """d loss / d weights by central differences; ``weights`` is changed in place
    and restored. ``loss()`` must read ``weights`` afresh on every call."""
    gradient = np.zeros_like(weights, dtype=np.float64)
    flat_weights, flat_gradient = weights.reshape(-1), gradient.reshape(-1)
    for index in range(flat_weights.size):
        original = flat_weights[index]
        flat_weights[index] = original + step
        above = loss()
        flat_weights[index] = original - step
        below = loss()
        flat_weights[index] = original
        flat_gradient[index] = (above - below) / (2 * step)
    return gradient


def relative_error(analytic, numeric):
    """|a - n| / (|a| + |n|) over whole arrays, |.| the Euclidean length.

    1e-7 or less means the two agree; a mistake in the chain rule shows as
    1e-2 or more. Whole arrays, not element by element: a central difference
    carries a rounding error of about 1e-10, and among hundreds of gradient
    entries a few are sums that cancel to nearly 0, where that 1e-10 is a
    large fraction although the gradient as a whole is right.
    """
    analytic = np.ravel(np.asarray(analytic, dtype=np.float64))
    numeric = np.ravel(np.asarray(numeric, dtype=np.float64))
    length = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(length, 1e-300))
