"""Turn a user's own picture of a digit into an MNIST-style 28x28 digit.

    digit = read_digit("my_seven.jpg")   # (784,) float32 in [0, 1]

A network trained on MNIST only knows digits prepared the way MNIST's were:
white ink on a black background that is exactly 0, the digit scaled to fit a
20x20 box (keeping its aspect ratio, edges anti-aliased) and placed in a 28x28
field so that its centre of mass is in the middle. A phone photo of black ink
on paper is none of these things, so it goes through the same steps:

1. greyscale: transparency composited onto white paper, colour dropped;
2. ink: made bright on dark (dark ink on light paper is inverted; which side
   is paper is decided by the picture itself), and the paper level removed so
   the background is exactly 0, noise and off-white paper included;
3. cropped to the bounding box of the ink;
4. fitted into a 20x20 box, keeping the aspect ratio;
5. centred by centre of mass in a 28x28 field and scaled so the brightest
   ink is 1.

``preprocessing_steps`` returns every intermediate picture for a notebook to
show; ``to_mnist`` is the last of them, flattened.

What it leaves out: it expects one digit per picture, roughly upright, on
paper that covers most of the picture (more ink than paper would be taken
for paper). It does not correct rotation, slant or perspective, separate
several digits, remove specks of dirt (a speck counts as ink and widens the
crop), even out strong shadows, or thicken thin pen strokes (a thin line on
a large photo becomes a faint line at 20x20, thinner than MNIST's). Crop the
photo around the digit if any of these matter.
"""

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.data import IMAGE_SIDE, MAX_PIXEL, PIXELS
from common.errors import ImageError

MAX_MEGAPIXELS = 50  # larger files are refused before their pixels are decoded
FIT_BOX = 20  # MNIST digits were scaled to fit a 20x20 box inside 28x28
CENTRE = IMAGE_SIDE / 2  # 14: where MNIST puts the centre of mass, see centre()
GREY_LEVELS = MAX_PIXEL + 1  # 256 levels of an 8-bit greyscale picture
PAPER = "white"  # what transparent parts of a picture are taken to be

# Background removal (step 2). Pixels on the far side of the paper level from
# the ink (lighter than the paper, for dark ink) can only be noise or uneven
# paper, so their spread measures how far noise reaches on the ink side too.
NOISE_QUANTILE = 0.999  # of the far-side pixels; robust to a few glints
NOISE_MARGIN = 2.0  # the background level is this many times that spread...
BACKGROUND_FRACTION = 0.1  # ...and at least this fraction of the ink contrast
# (JPEG rings up to 15% of the contrast around hard strokes on pure white,
# where there is no far side to measure; a tenth removes nearly all of it and
# trims only the faintest edge pixels of a digit that is already MNIST's.)
FIT_FILTER = Image.Resampling.BOX  # area averaging: ink coverage of each pixel

# Modes whose pixels are wider than 8 bits; Pillow's convert("L") clips them.
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def load_image(path):
    """Open the picture at ``path``, decoded and turned upright.

    A camera's EXIF orientation is applied, so the picture is the way up a
    viewer shows it. A missing file, one that is not an image, a damaged
    one, or one over ``MAX_MEGAPIXELS`` raises ``ImageError``.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns about large images; the size check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                # Image.open reads only the header: check before decoding.
                check_size(opened.size, path)
                return ImageOps.exif_transpose(opened)  # decoded; file closed
    except FileNotFoundError:
        raise ImageError(f"{path}: not found") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not a picture") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{path}: too large (over {MAX_MEGAPIXELS} megapixels); "
            "shrink or crop it first"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path}: not an image file that Pillow can read (try PNG or JPEG)"
        ) from None
    # Pillow's decoders report a damaged file with any of these.
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ImageError(f"{path}: damaged or unreadable image ({error})") from None


def check_size(size, path):
    """Refuse a picture of more than ``MAX_MEGAPIXELS`` (width x height)."""
    width, height = size
    if width * height > MAX_MEGAPIXELS * 1_000_000:
        raise ImageError(
            f"{path}: {width}x{height} is {width * height / 1e6:.1f} megapixels, "
            f"over the limit of {MAX_MEGAPIXELS}; shrink or crop it first"
        )


def read_digit(path):
    """The picture at ``path`` as an MNIST digit: (784,) float32 in [0, 1]."""
    image = load_image(path)
    try:
        return to_mnist(image)
    except ImageError as error:
        raise ImageError(f"{path}: {error}") from None


def to_mnist(image):
    """A PIL image as an MNIST digit: (784,) float32 in [0, 1], max 1.

    Raises ``ImageError`` if nothing in the picture stands out as ink.
    """
    centred = preprocessing_steps(image)["centred"]
    return centred.reshape(PIXELS)


def preprocessing_steps(image):
    """Every intermediate picture on the way to an MNIST digit, in order.

    Returns a dict of 2-D arrays: ``greyscale`` (uint8, 0 black, 255 white),
    ``ink`` (float32 in [0, 1], ink bright, background exactly 0), ``cropped``
    (the bounding box of the ink), ``fitted`` (at most 20x20) and
    ``centred`` (28x28, float32, brightest ink 1).
    """
    steps = {"greyscale": greyscale(image)}
    steps["ink"] = ink_on_dark(steps["greyscale"])
    steps["cropped"] = crop_to_ink(steps["ink"])
    steps["fitted"] = fit_box(steps["cropped"])
    steps["centred"] = centre(steps["fitted"])
    return steps


def greyscale(image):
    """8-bit greyscale pixels (height, width), transparency shown on white.

    A transparent pixel shows whatever is behind it, and a drawing app's
    transparent background is meant as blank paper, whatever colour its
    hidden pixels hold; so the picture is first laid over white.
    """
    if image.mode in WIDE_MODES:
        return stretched(np.asarray(image, dtype=np.float64))
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, PAPER)
        image = Image.alpha_composite(paper, rgba)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, palettes, 1-bit, ...
    return np.asarray(image.convert("L"))


def stretched(pixels):
    """16-bit, 32-bit or float pixels as 8-bit: their own range onto 0..255.

    The later steps only care about which pixels are lighter than which, so
    any range will do: negative values, an offset far from 0, or values near
    the largest float32. NaN and infinity have no place in that order (a
    float TIFF can hold them): ``ImageError``.
    """
    if pixels.size == 0:
        return pixels.astype(np.uint8)  # ink_on_dark says it is empty
    finite = np.isfinite(pixels)
    if not finite.all():
        bad = pixels.size - int(finite.sum())
        kinds = [
            kind
            for kind, found in (
                ("NaN", np.isnan(pixels).any()),
                ("infinity", np.isinf(pixels).any()),
            )
            if found
        ]
        raise ImageError(
            f"the picture has non-finite pixels: {bad:,} of {pixels.size:,} "
            f"({' and '.join(kinds)}); save it with finite values, or as PNG or JPEG"
        )
    low, high = float(pixels.min()), float(pixels.max())
    if high == low:
        return np.zeros(pixels.shape, dtype=np.uint8)  # one shade: no ink
    # Halved before subtracting, so that even float64 extremes cannot
    # overflow: (high - low) / 2 is finite whatever the two are.
    scale = MAX_PIXEL / (high / 2 - low / 2)
    return np.rint((pixels / 2 - low / 2) * scale).astype(np.uint8)


def ink_on_dark(grey):
    """Ink as float32 in [0, 1] on a background of exactly 0.

    The paper level is the median pixel: most of a picture is paper. Ink is
    either darker or lighter than the paper, and the picture decides which:
    both are tried (``background_removal``), and ink is the side of which
    more is left once the background is removed, that is once everything
    within the noise of the paper is taken away. Paper noise reaches a few
    grey levels either way, over millions of pixels; ink reaches far beyond
    it, over perhaps half a percent of them. Counting every pixel's distance
    from the median instead would let the noise decide: a thin stroke 70
    levels dark on paper noisy by +-2 weighs less than the noise itself,
    and a median that falls half a level off the middle of the noise, as
    the median of whole grey levels may, tips that noise to one side.

    Everything up to the background level becomes 0, the strongest ink 1;
    dark ink is inverted.
    """
    if grey.size == 0:
        raise ImageError("no ink found: the picture is empty")
    # How many pixels have each grey level; Pillow counts a 12-megapixel photo
    # some 15 times faster than np.bincount.
    counts = np.array(Image.fromarray(grey).histogram())  # (256,)
    levels = np.arange(GREY_LEVELS)
    paper = int(np.searchsorted(np.cumsum(counts), grey.size / 2))  # median
    if counts[paper] == grey.size:
        raise ImageError("no ink found: the picture is a single uniform shade")

    # 1: light ink; -1: dark ink, to be inverted. On a tie max keeps the
    # first: light ink, as MNIST's.
    removals = {
        sign: background_removal(counts, sign * (levels - paper)) for sign in (1, -1)
    }
    ink_sign = max(removals, key=lambda sign: removals[sign][2])
    background, contrast, ink_left = removals[ink_sign]
    if ink_left == 0:
        raise ImageError(
            "no ink found: nothing stands out from the background more than its noise"
        )

    # One value per grey level, then looked up: fast even for a 12 MP photo.
    departure = ink_sign * (levels - paper)  # (256,) ink side positive
    table = np.clip((departure - background) / (contrast - background), 0, 1)
    return table.astype(np.float32)[grey]


def background_removal(counts, departure):
    """``(background, contrast, ink_left)``, supposing the ink is on one side.

    ``counts`` holds how many pixels have each grey level and ``departure``
    how far each level is from the paper, positive on the side supposed to
    be ink. The pixels on the other side can only be noise or uneven paper,
    so their spread (``NOISE_QUANTILE``) measures how far noise reaches on
    the ink side too; the background level is ``NOISE_MARGIN`` times it, and
    at least ``BACKGROUND_FRACTION`` of the ``contrast``, the farthest any
    pixel departs on the ink side. ``ink_left`` is what stands out beyond
    the background: the grey levels past it, summed over the pixels.

    Supposing the wrong side leaves next to nothing: its noise is measured
    on the side that holds the real ink, so it takes in the ink itself
    (once the ink is a thousandth of that side's pixels) or at least that
    side's noise, and the background ends beyond the paper's noise on the
    wrong side.
    """
    present = counts > 0
    contrast = departure[present].max()  # 0 if nothing lies on the ink side
    far_side = present & (departure < 0)
    noise = weighted_quantile(-departure[far_side], counts[far_side], NOISE_QUANTILE)
    background = max(NOISE_MARGIN * noise, BACKGROUND_FRACTION * contrast)
    ink_left = float(np.sum(counts * np.clip(departure - background, 0, None)))
    return background, contrast, ink_left


def weighted_quantile(values, counts, quantile):
    """The ``quantile`` of ``values`` repeated ``counts`` times; 0 if none."""
    if counts.sum() == 0:
        return 0.0
    order = np.argsort(values)
    cumulative = np.cumsum(counts[order])
    index = np.searchsorted(cumulative, quantile * cumulative[-1])
    return float(values[order][min(index, len(values) - 1)])


def crop_to_ink(ink):
    """The smallest rectangle of ``ink`` that holds every nonzero pixel."""
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        raise ImageError("no ink found: the picture is blank")
    return ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def fit_box(cropped):
    """Scale ``cropped`` so its longer side is ``FIT_BOX``, keeping its shape.

    Each new pixel is the average of the ink it covers (anti-aliasing), as
    MNIST's size normalisation turned black-and-white scans into grey edges.
    """
    height, width = cropped.shape
    scale = FIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    fitted = Image.fromarray(cropped).resize(size, FIT_FILTER)
    # BOX stays within [0, 1]; a filter with negative lobes (LANCZOS) would not.
    return np.clip(np.asarray(fitted, dtype=np.float32), 0, 1)


def centre(fitted):
    """``fitted`` in a 28x28 field, its centre of mass in the middle; max 1.

    Coordinates are 0-based pixel indices: row 0 is the top row. MNIST moved
    each digit by whole pixels so that its centre of mass rounds to (14, 14):
    in all 5,000 sample digits it lies between 13.5 and 14.5 on both axes.
    We do the same, so a digit's centre of mass ends within half a pixel of
    14, and within a pixel of the geometric middle, 13.5. A digit so
    lopsided that this would push part of it off the field stops at the edge.
    """
    height, width = fitted.shape
    rows, columns = np.indices(fitted.shape)
    mass = fitted.sum()
    top = whole_pixels(CENTRE - (rows * fitted).sum() / mass, IMAGE_SIDE - height)
    left = whole_pixels(CENTRE - (columns * fitted).sum() / mass, IMAGE_SIDE - width)

    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = fitted / fitted.max()
    return field


def whole_pixels(offset, largest):
    """``offset`` rounded to a whole pixel (halves up), kept in 0..largest."""
    return int(min(max(np.floor(offset + 0.5), 0), largest))
