"""Saving a network's weights with its architecture, and loading them safely.

A model file is an ``.npz`` archive: one array per weight matrix or bias,
plus ``architecture``, a JSON text saying what network the arrays belong to.
Loading checks the file before any weight is used: it must be readable, be
a model of the expected kind, and every array must have the shape its
architecture implies. Anything else raises ``ModelError`` naming the file,
the array and both shapes; a network is never loaded half-way.
"""

import json
import zipfile
import zlib

import numpy as np

from common.errors import ModelError
from common.files import atomic_path

ARCHITECTURE = "architecture"


def save_model(path, arrays, architecture):
    """Write ``arrays`` (name -> array) and ``architecture`` (a dict) to ``path``."""
    if ARCHITECTURE in arrays:
        raise ValueError(f"{ARCHITECTURE!r} is reserved for the description")
    with atomic_path(path) as temporary:
        np.savez(
            temporary,
            **{ARCHITECTURE: np.array(json.dumps(architecture))},
            **arrays,
        )


def load_model(path, kind):
    """Read ``(arrays, architecture)`` from a file written by ``save_model``.

    ``kind`` is the value the architecture's ``"kind"`` must have (each stage
    names its own), so a stage never loads another stage's model.
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.ndarray):  # np.load also opens a lone .npy
            raise ModelError(f"{path}: one array, not a model archive (.npz)")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ModelError(f"{path}: not a readable model file ({error})") from None
    if ARCHITECTURE not in arrays:
        raise ModelError(
            f"{path}: no architecture inside; not a model saved by this project"
        )
    try:
        architecture = json.loads(str(arrays.pop(ARCHITECTURE)))
    except (ValueError, RecursionError):  # not JSON, or nested thousands deep
        raise ModelError(f"{path}: its architecture description is damaged") from None
    if not isinstance(architecture, dict) or architecture.get("kind") != kind:
        found = architecture.get("kind") if isinstance(architecture, dict) else None
        raise ModelError(f"{path}: a model of kind {found!r}, expected {kind!r}")
    return arrays, architecture


def check_shapes(path, arrays, expected):
    """Raise ``ModelError`` unless ``arrays`` has exactly the ``expected`` shapes.

    ``expected`` maps each array name to its shape, in the network's order.
    Every value must be a finite number in float32, the precision the
    networks run in.
    """
    for name, shape in expected.items():
        if name not in arrays:
            raise ModelError(
                f"{path}: array {name} is missing (expected shape {shape})"
            )
        found = arrays[name].shape
        if found != tuple(shape):
            raise ModelError(
                f"{path}: {name} has shape {found}, "
                f"the architecture needs {tuple(shape)}"
            )
        values = arrays[name]
        if values.dtype.kind not in "fiu":  # float, signed or unsigned integer
            raise ModelError(f"{path}: {name} holds {values.dtype}, not real numbers")
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf
            finite = np.all(np.isfinite(values.astype(np.float32)))
        if not finite:
            raise ModelError(
                f"{path}: {name} holds values that are not finite float32 numbers"
            )
    unexpected = sorted(set(arrays) - set(expected))
    if unexpected:
        raise ModelError(
            f"{path}: unexpected arrays {', '.join(unexpected)} for this architecture"
        )
