"""Tests for common.images: a user's picture becomes an MNIST-style digit.

Every picture is made here: real sample digits drawn back into larger,
inverted, transparent or JPEG-compressed pictures, and strokes drawn with
PIL.ImageDraw. Positions follow common.images: 0-based pixel indices, the
centre of mass lands within half a pixel of 14 (where MNIST puts it), so
within a pixel of the geometric middle 13.5.
"""

import io
import re
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFile

from common import data, images
from common.errors import ImageError

SIDE = data.IMAGE_SIDE
MAX_LEVEL = data.MAX_PIXEL  # 255: white
DIGITS = 12  # sample test digits used by the round-trip tests

# Thresholds: mean absolute difference per pixel (outputs in [0, 1]), a little
# above what was measured on these 12 digits and on all 1,000 sample test
# digits; the tests say where the differences come from.
ROUND_TRIP_MEAN = 0.02  # measured 0.0127 (these 12), 0.0086 (all 1,000)
ROUND_TRIP_EACH = 0.12  # measured 0.059 and 0.111: the digit one pixel over
JPEG_MEAN = 0.01  # measured 0.0011 and 0.0023, quality 75
JPEG_EACH = 0.1  # measured 0.0056 and 0.077
PHOTO_MEAN = 0.005  # noisy JPEG photo against a clean drawing: measured 2e-6
FLOAT_SLACK = 1e-5  # a centre of mass exactly half a pixel off, give or take


@pytest.fixture(scope="module")
def digits():
    """Real test digits of the embedded sample, (n, 28, 28) uint8, ink bright."""
    test = data.load("sample", log=None).test
    pixels = np.rint(test.images[:DIGITS] * data.MAX_PIXEL).astype(np.uint8)
    return pixels.reshape(-1, SIDE, SIDE)


def save(image, path, **options):
    """Write ``image`` to ``path`` and return the path."""
    image.save(path, **options)
    return path


def enlarged(digit, factor, resample=Image.Resampling.NEAREST):
    """A 28x28 uint8 digit as an L image ``factor`` times larger."""
    side = SIDE * factor
    return Image.fromarray(digit).resize((side, side), resample)


def seven(size, box, width, ink=0, paper=255, mode="L"):
    """A picture of ``size`` holding a stroke "7" drawn inside ``box``."""
    left, top, right, bottom = box
    picture = Image.new(mode, size, paper)
    stroke = [(left, top), (right, top), ((left + right) // 2, bottom)]
    ImageDraw.Draw(picture).line(stroke, fill=ink, width=width, joint="curve")
    return picture


def bounding_box(picture):
    """(height, width) of the nonzero pixels of a 28x28 picture."""
    rows = np.flatnonzero(picture.any(axis=1))
    columns = np.flatnonzero(picture.any(axis=0))
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def centre_of_mass(picture):
    """(row, column) of the centre of mass, 0-based pixel indices."""
    rows, columns = np.indices(picture.shape)
    mass = picture.sum()
    return (rows * picture).sum() / mass, (columns * picture).sum() / mass


def check_mnist_shape(digit):
    """What every output must be: (784,) float32, background 0, max ink 1."""
    assert digit.shape == (data.PIXELS,)
    assert digit.dtype == np.float32
    assert digit.min() == 0.0
    assert digit.max() == 1.0
    picture = digit.reshape(SIDE, SIDE)
    assert max(bounding_box(picture)) == images.FIT_BOX
    for coordinate in centre_of_mass(picture):
        assert abs(coordinate - images.CENTRE) <= 0.5 + FLOAT_SLACK
        assert abs(coordinate - (SIDE - 1) / 2) <= 1 + FLOAT_SLACK
    return picture


# ------------------------------------------------------------ 1. round trip


def test_mnist_digit_comes_back_unchanged_when_already_mnist(digits):
    """A sample digit itself passes through almost unchanged.

    Not exactly: the background level (a tenth of the contrast, against JPEG
    ringing) trims the faintest edge pixels, which can move the centre of
    mass across a half-pixel and so shift the digit by one pixel.
    """
    differences = [
        np.abs(images.to_mnist(Image.fromarray(digit)) - digit.ravel() / 255).mean()
        for digit in digits
    ]
    assert np.mean(differences) < ROUND_TRIP_MEAN
    assert max(differences) < ROUND_TRIP_EACH


def test_enlarged_inverted_transparent_digit_comes_back(digits, tmp_path):
    """A sample digit 5x larger, dark on light, off-centre, on a transparent
    canvas whose hidden colour is black, comes back as the original."""
    differences = []
    for index, digit in enumerate(digits):
        canvas = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # transparent black
        canvas.paste(enlarged(255 - digit, 5).convert("RGBA"), (6, 52))
        path = save(canvas, tmp_path / f"digit{index}.png")

        result = images.read_digit(path)

        check_mnist_shape(result)
        differences.append(np.abs(result - digit.ravel() / 255).mean())
    assert np.mean(differences) < ROUND_TRIP_MEAN
    assert max(differences) < ROUND_TRIP_EACH


# ------------------------------------------------------------ 2. transparency


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_black_digit_on_transparent_background(digits, tmp_path, mode):
    """Black everywhere, the digit only in the alpha channel: composited
    onto white, then inverted, it is the same as the digit drawn white on
    black. (Ignoring alpha would see a uniform black picture.)"""
    shape = Image.new("L", (300, 300), 0)
    shape.paste(enlarged(digits[0], 10, Image.Resampling.BICUBIC), (13, 7))
    if mode == "P":
        # Palette pictures have on/off transparency: a bilevel digit.
        shape = shape.point(lambda level: 255 if level > 127 else 0)
        picture = Image.new("P", shape.size, 0)
        picture.putpalette([0, 0, 0] * 2)  # both entries black
        picture.paste(1, mask=shape)
        picture.info["transparency"] = 0
    else:
        picture = Image.new(mode, shape.size, (0,) * len(mode))
        picture.putalpha(shape)
    path = save(picture, tmp_path / f"digit_{mode}.png")

    result = images.read_digit(path)

    expected = images.to_mnist(shape)
    check_mnist_shape(result)
    np.testing.assert_allclose(result, expected, atol=2 / 255)


# ------------------------------------------------------- 3. dark ink on paper


def test_dark_on_light_equals_light_on_dark(digits, tmp_path):
    """A 28x28 PNG of dark ink on white paper gives exactly the result of
    the same digit light on dark."""
    for index, digit in enumerate(digits):
        path = save(Image.fromarray(255 - digit), tmp_path / f"paper{index}.png")
        np.testing.assert_array_equal(
            images.read_digit(path), images.to_mnist(Image.fromarray(digit))
        )


def test_jpeg_of_dark_ink_matches_light_on_dark(digits, tmp_path):
    """A 280x280 JPEG (quality 75) of dark ink on white equals the lossless
    light-on-dark picture, within JPEG noise.

    JPEG rings near strokes: measured up to 7 grey levels on this smooth
    ink, up to 37 on hard-edged ink, on paper that is otherwise exactly
    white (so the noise cannot be measured on the paper's far side). The
    background level of a tenth of the contrast removes most of it; what
    is left moves the crop by a fraction of a pixel.
    """
    differences = []
    for index, digit in enumerate(digits):
        large = enlarged(digit, 10, Image.Resampling.BICUBIC)
        inverted = Image.fromarray(255 - np.asarray(large))
        path = save(inverted, tmp_path / f"photo{index}.jpg", quality=75)

        result = images.read_digit(path)

        check_mnist_shape(result)
        differences.append(np.abs(result - images.to_mnist(large)).mean())
    assert np.mean(differences) < JPEG_MEAN
    assert max(differences) < JPEG_EACH


# A thin 7 on a large picture: an 8-pixel stroke in 1600x1200, 0.6% of it ink.
THIN_SIZE, THIN_BOX, THIN_STROKE = (1600, 1200), (550, 150, 1050, 1050), 8
THIN_MEAN = 0.002  # noisy ink against a clean drawing: measured 0.0001


def thin_seven(paper, ink):
    """A thin 7 in grey level ``ink`` drawn on ``paper`` (uint8 pixels, as
    large as THIN_SIZE); returns the picture and where its stroke is."""
    picture = Image.fromarray(paper)
    stroke = seven(THIN_SIZE, THIN_BOX, THIN_STROKE, ink=255, paper=0)
    picture.paste(ink, mask=stroke)
    return picture, np.asarray(stroke) > 0


def check_thin_seven(steps, stroke):
    """The whole stroke is ink, the paper around it exactly 0, the crop is
    the stroke's bounding box; returns the 28x28 digit."""
    np.testing.assert_array_equal(steps["ink"] > 0, stroke)
    rows = np.flatnonzero(stroke.any(axis=1))
    columns = np.flatnonzero(stroke.any(axis=0))
    assert steps["cropped"].shape == (np.ptp(rows) + 1, np.ptp(columns) + 1)
    return check_mnist_shape(steps["centred"].ravel())


@pytest.mark.parametrize("ink", ["dark", "light"])
@pytest.mark.parametrize("noise", [(198, 202), (198, 203), (199, 202), (198, 201)])
def test_thin_stroke_on_noisy_grey_paper(noise, ink):
    """A thin 7, 70 grey levels darker than paper of 200 +- 2 (or the same
    inverted: light ink on dark paper), is the same digit as drawn cleanly.

    It used to be "no ink found". Ink was the side of the median that the
    pixels departed from more, summed over all of them: the paper's 1.9
    million pixels, 1 to 3 levels either side, outweighed the stroke's
    12,000 pixels 70 levels away once the median was off the middle of the
    noise (198 to 203 has 200 for median, 198 to 201 has 199, 199 to 202
    has 200). Ink is now the side that stands out beyond the noise of the
    other.
    """
    low, high = noise
    rng = np.random.default_rng(high)
    paper = rng.integers(low, high, size=THIN_SIZE[::-1], dtype=np.uint8, endpoint=True)
    if ink == "dark":
        picture, stroke = thin_seven(paper, 200 - 70)
    else:
        picture, stroke = thin_seven(MAX_LEVEL - paper, MAX_LEVEL - (200 - 70))

    result = check_thin_seven(images.preprocessing_steps(picture), stroke)

    clean = images.to_mnist(Image.fromarray(stroke))
    np.testing.assert_array_equal(result.ravel(), clean)


@pytest.mark.parametrize("ink", ["dark", "light"])
def test_thin_stroke_with_noise_on_both_sides_of_the_median(ink):
    """A thin 7, 50 levels darker than paper of 200.4 (or the same inverted),
    Gaussian noise of spread 3 over the whole picture, ink included: the
    noise reaches some 15 levels either side of the median, 200.

    The median is 0.4 levels off the paper's own level, so the pixels
    lighter than it add up to 0.4 levels a pixel more than those darker,
    more than the stroke's ink (50 levels on 0.6% of the pixels, 0.3): the
    side that stands out most over all the pixels is the paper's noise. The
    ink is told apart by how far beyond that noise it lies.
    """
    rng = np.random.default_rng(5)
    flat, stroke = thin_seven(np.full(THIN_SIZE[::-1], 200, dtype=np.uint8), 150)
    noisy = np.asarray(flat) + 0.4 + rng.normal(0, 3, size=stroke.shape)
    if ink == "light":
        noisy = MAX_LEVEL - noisy
    picture = Image.fromarray(np.clip(np.rint(noisy), 0, MAX_LEVEL).astype(np.uint8))

    result = check_thin_seven(images.preprocessing_steps(picture), stroke)

    clean = images.to_mnist(Image.fromarray(stroke))
    assert np.abs(result.ravel() - clean).mean() < THIN_MEAN


# ------------------------------------------------------------ 4. geometry


def test_small_digit_in_a_corner_is_cropped_fitted_and_centred(tmp_path):
    """A 7 about 25x40 pixels in the top-left corner of a 200x200 picture."""
    picture = seven((200, 200), box=(4, 3, 29, 43), width=5)
    path = save(picture, tmp_path / "corner.png")
    ink = np.asarray(picture) < 255
    height = np.ptp(np.flatnonzero(ink.any(axis=1))) + 1
    width = np.ptp(np.flatnonzero(ink.any(axis=0))) + 1
    narrow = round(width * images.FIT_BOX / height)  # aspect ratio kept
    assert height > width and narrow < images.FIT_BOX

    steps = images.preprocessing_steps(images.load_image(path))

    assert steps["cropped"].shape == (height, width)
    assert steps["fitted"].shape == (images.FIT_BOX, narrow)
    result = check_mnist_shape(steps["centred"].ravel())
    assert bounding_box(result) == (images.FIT_BOX, narrow)


def test_thin_digit_on_noisy_off_white_photo(tmp_path):
    """A thin 7 in a 3000x4000 JPEG photo on grey paper (235 +- 6): the same
    digit as drawn cleanly, and the paper is exactly 0 everywhere."""
    width, height = 3000, 4000
    box, stroke = (700, 900, 2100, 3300), 14  # 1,400 x 2,400: a 12 x 20 digit
    rng = np.random.default_rng(7)
    paper = rng.integers(229, 241, size=(height, width), dtype=np.uint8, endpoint=True)
    photo = Image.fromarray(paper)
    ImageDraw.Draw(photo).line(
        [(700, 900), (2100, 900), (1400, 3300)], fill=60, width=stroke, joint="curve"
    )
    path = save(photo, tmp_path / "photo.jpg", quality=90)

    steps = images.preprocessing_steps(images.load_image(path))

    clean = images.to_mnist(seven((width, height), box, stroke, ink=255, paper=0))
    result = check_mnist_shape(steps["centred"].ravel())
    assert bounding_box(result) == (images.FIT_BOX, 12)
    assert np.abs(result.ravel() - clean).mean() < PHOTO_MEAN
    ink = steps["ink"]
    assert not ink[:800].any() and not ink[3400:].any()  # paper above and below
    assert not ink[:, :600].any() and not ink[:, 2200:].any()


def test_lopsided_digit_stays_whole_on_the_field():
    """A heavy bar on a hair-thin stem has its centre of mass so near the
    top that centring would push the stem off the field: it stops at the
    edge instead, and no ink is lost."""
    picture = Image.new("L", (100, 100), 0)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((10, 10, 90, 30), fill=255)
    draw.line([(50, 30), (50, 90)], fill=255, width=1)

    steps = images.preprocessing_steps(picture)

    fitted, centred = steps["fitted"], steps["centred"]
    assert centred.sum() == pytest.approx(fitted.sum() / fitted.max())
    assert centred[-1].any()  # the stem reaches the bottom row


def test_exif_orientation_is_applied(tmp_path):
    """A camera's picture stored sideways (EXIF orientation 6) is read the
    way a viewer shows it: a stored horizontal bar stands upright."""
    stored = Image.new("L", (200, 100), 255)
    ImageDraw.Draw(stored).rectangle((20, 40, 180, 60), fill=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    path = save(stored, tmp_path / "sideways.jpg", exif=exif)

    height, width = bounding_box(images.read_digit(path).reshape(SIDE, SIDE))

    assert height == images.FIT_BOX and width < 5


def test_sixteen_bit_picture_equals_eight_bit(digits, tmp_path):
    """16-bit greyscale PNGs (which Pillow's convert("L") would clip) give
    the same digit as 8 bits."""
    wide = Image.fromarray(digits[1].astype(np.uint16) * 257)
    path = save(wide, tmp_path / "wide.png")

    np.testing.assert_array_equal(
        images.read_digit(path), images.to_mnist(Image.fromarray(digits[1]))
    )


@pytest.mark.parametrize(
    ("mode", "transform"),
    [
        ("I", lambda ink: ink + 100_000),  # far from 0: used to lose most ink
        ("I", lambda ink: ink - 100_000),  # all negative: used to lose the shape
        ("I", lambda ink: ink * 8_000_000),  # near the int32 limit
        ("F", lambda ink: ink / 255 + 5000),  # a narrow band: "uniform shade"
        ("F", lambda ink: -ink),  # dark ink, values below 0
        ("F", lambda ink: ink * 1e36 - 3e38),  # near the float32 limit
        ("F", lambda ink: ink * 1e-40),  # subnormal float32
    ],
    ids=["offset", "negative", "int32", "narrow", "dark", "float32", "subnormal"],
)
def test_wide_pictures_of_any_range_equal_eight_bit(digits, tmp_path, mode, transform):
    """32-bit integer and float TIFFs: only the order of the pixels matters,
    whatever their range (measured: identical to the 8-bit digit)."""
    ink = digits[1].astype(np.float64)
    dtype = np.int32 if mode == "I" else np.float32
    path = save(Image.fromarray(transform(ink).astype(dtype)), tmp_path / "wide.tif")
    with Image.open(path) as saved:
        assert saved.mode == mode
    eight_bit = images.to_mnist(Image.fromarray(digits[1]))  # ink either way
    assert np.abs(images.read_digit(path) - eight_bit).max() <= 1 / 255


@pytest.mark.parametrize(
    ("where", "values", "count", "kind"),
    [
        ("one pixel", [np.nan], 1, "NaN"),
        ("one pixel", [np.inf], 1, "infinity"),
        ("one pixel", [-np.inf], 1, "infinity"),
        ("two pixels", [np.nan, np.inf], 2, "NaN and infinity"),
        ("every pixel", [np.nan], 784, "NaN"),
    ],
)
def test_non_finite_pixels_are_named_not_taken_for_a_blank(
    digits, tmp_path, where, values, count, kind
):
    """A float TIFF with NaN or infinity used to read as "a single uniform
    shade" (with RuntimeWarnings on the way)."""
    pixels = digits[1].astype(np.float32)
    if where == "every pixel":
        pixels[...] = np.nan
    else:
        pixels.flat[[100, 200][: len(values)]] = values
    path = save(Image.fromarray(pixels), tmp_path / "float.tif")
    message = (
        f"{path}: the picture has non-finite pixels: {count} of 784 ({kind}); "
        "save it with finite values, or as PNG or JPEG"
    )
    with pytest.raises(ImageError) as refused:
        images.read_digit(path)
    assert str(refused.value) == message


def test_preprocessing_steps_are_the_pipeline(digits):
    """The notebook's pictures, in order, end in what to_mnist returns."""
    picture = Image.fromarray(255 - digits[2])

    steps = images.preprocessing_steps(picture)

    assert list(steps) == ["greyscale", "ink", "cropped", "fitted", "centred"]
    assert steps["greyscale"].dtype == np.uint8
    assert steps["ink"].dtype == np.float32 and steps["ink"].max() == 1
    assert max(steps["fitted"].shape) == images.FIT_BOX
    assert steps["centred"].shape == (SIDE, SIDE)
    np.testing.assert_array_equal(steps["centred"].ravel(), images.to_mnist(picture))


@settings(max_examples=40, deadline=None)
@given(
    canvas=st.tuples(st.integers(10, 120), st.integers(10, 120)),
    corner=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    extent=st.tuples(st.floats(0, 0.6), st.floats(0, 0.6)),
    dark_ink=st.booleans(),
    ellipse=st.booleans(),
)
def test_any_blob_anywhere_becomes_a_centred_mnist_digit(
    canvas, corner, extent, dark_ink, ellipse
):
    """Rectangles and ellipses of any shape, place and polarity, as long as
    paper is most of the picture (at most 0.6 x 0.6 of it is ink)."""
    box = []
    for side, start, fraction in zip(canvas, corner, extent, strict=True):
        length = 2 + round(fraction * (side - 3))  # 2 pixels, Pillow draws it
        first = round(start * (side - length))
        box.append((first, first + length - 1))
    (x0, x1), (y0, y1) = box
    paper, ink = (255, 0) if dark_ink else (0, 255)
    picture = Image.new("L", canvas, paper)
    draw = ImageDraw.Draw(picture)
    (draw.ellipse if ellipse else draw.rectangle)((x0, y0, x1, y1), fill=ink)

    check_mnist_shape(images.to_mnist(picture))


# ------------------------------------------------------------ 5. errors


@pytest.mark.parametrize("level", [0, 255])
def test_uniform_picture_has_no_ink(tmp_path, level):
    path = save(Image.new("L", (50, 40), level), tmp_path / "blank.png")
    with Image.open(path) as picture, pytest.raises(ImageError, match="no ink"):
        images.to_mnist(picture)
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: no ink found"):
        images.read_digit(path)


def test_pure_noise_has_no_ink():
    """Noise alone stands out from nothing: its spread sets the background."""
    rng = np.random.default_rng(3)
    noise = np.clip(rng.normal(128, 10, size=(120, 160)), 0, 255).astype(np.uint8)
    with pytest.raises(ImageError, match="no ink found"):
        images.to_mnist(Image.fromarray(noise))


def test_missing_file(tmp_path):
    path = tmp_path / "absent.png"
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: not found$"):
        images.read_digit(path)


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("a seven, honestly\n")
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: not an image"):
        images.load_image(path)


def test_truncated_png_is_damaged(digits, tmp_path):
    whole = io.BytesIO()
    enlarged(digits[0], 4).save(whole, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: damaged"):
        images.load_image(path)


def png_claiming(size):
    """A tiny PNG whose header claims ``size``; its pixels could not decode."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    # After the 8-byte signature: the IHDR chunk's length (4 bytes), type (4),
    # width and height (4 each), 5 more bytes, then a CRC of type and data.
    png[16:24] = struct.pack(">II", *size)
    png[29:33] = struct.pack(">I", zlib.crc32(png[12:29]))
    return bytes(png)


@pytest.mark.parametrize("size", [(10_000, 6_000), (20_000, 10_000)])
def test_too_large_picture_is_refused_before_decoding(tmp_path, monkeypatch, size):
    """60 and 200 megapixels, as a header says: refused by our limit and by
    Pillow's own check for decompression bombs, before any decoding."""
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(size))

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: .*megapixels"):
        images.read_digit(path)


def test_megapixel_limit_can_be_lowered(digits, tmp_path, monkeypatch):
    path = save(enlarged(digits[0], 40), tmp_path / "photo.png")  # 1.25 MP
    monkeypatch.setattr(images, "MAX_MEGAPIXELS", 1)
    with pytest.raises(
        ImageError, match="1120x1120 is 1.3 megapixels, over the limit of 1;"
    ):
        images.load_image(path)
