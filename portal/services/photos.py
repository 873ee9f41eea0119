"""Card holders' photos (R-83 reading): checked by content, re-encoded without metadata,
cropped to the card's 3:4 photo box.

Pillow does the reading; nothing here parses an image by hand. What a photo must be:

- a JPEG or PNG by its content (Pillow's own identification, the formats limited to those
  two), whatever its file name or the content type the browser declared;
- at most MAX_PHOTO_BYTES, refused before anything is decoded;
- at most MAX_PHOTO_PIXELS and at least MIN_PHOTO_SIDE on each side, read from the header
  before the pixels are decoded (a decompression bomb is refused without allocating it;
  Pillow's own bomb check agrees and its warning counts as a refusal);
- complete: every pixel decodes (a truncated or corrupt file is refused, never padded).

What is stored: the pixels only, turned upright by the EXIF orientation, in RGB, cropped to
the exact 3:4 aspect (the box chosen in the page, kept inside the photo, or the centre),
scaled to PHOTO_OUTPUT_SIZE and encoded as a JPEG without EXIF (GPS), ICC profile or comment.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass

from flask_babel import gettext as _
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from portal.domain.inet import (
    MAX_PHOTO_BYTES,
    MAX_PHOTO_PIXELS,
    MIN_PHOTO_SIDE,
    PHOTO_ASPECT,
    PHOTO_OUTPUT_SIZE,
)
from portal.services.errors import PortalError
from portal.services.photo_storage import Photo

# Pillow's own bomb check (at open) agrees with ours: it warns above this and refuses above
# twice this; the warning is turned into a refusal below. Truncated files stay refused.
Image.MAX_IMAGE_PIXELS = MAX_PHOTO_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

ACCEPTED_FORMATS = ("JPEG", "PNG")
JPEG_QUALITY = 88
MAX_PHOTO_MEGABYTES = MAX_PHOTO_BYTES // (1024 * 1024)


class PhotoError(PortalError):
    """A photo the portal refuses; the message says why in the customer's words."""


@dataclass(frozen=True)
class CropBox:
    """The part of the photo to keep, in the upright photo's pixels (as the page shows it)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class PhotoInfo:
    """What a checked photo is: its format by content and its upright size."""

    format: str
    width: int
    height: int


def too_large_message() -> str:
    return _("The photo is too large (max %(mb)d MB).", mb=MAX_PHOTO_MEGABYTES)


def check(data: bytes) -> PhotoInfo:
    """Everything `process` refuses, without producing the stored photo (the import's
    preview): the whole file is decoded, at a reduced scale where JPEG allows it."""
    image = _open(data)
    with image:
        width, height = _upright_size(image)
        if image.format == "JPEG":
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        _load(image)
        return PhotoInfo(format=image.format or "", width=width, height=height)


def process(data: bytes, crop: CropBox | None = None) -> Photo:
    """The portal's own JPEG of an uploaded photo (see the module's docstring)."""
    image = _open(data)
    with image:
        width, height = _upright_size(image)
        box = crop_area(width, height, crop)
        # A JPEG decodes at a reduced scale when the area kept is still at least the output
        # size (a phone's 12-megapixel photo decodes at 1/4 or 1/8: faster, less memory).
        out_w, out_h = PHOTO_OUTPUT_SIZE
        scale = max(out_w / (box[2] - box[0]), out_h / (box[3] - box[1]))
        if image.format == "JPEG" and scale < 1:
            image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        _load(image)
        upright = _upright(image)
        if upright.width != width:  # decoded at a reduced scale: the area scales with it
            factor = upright.width / width
            box = (
                round(box[0] * factor),
                round(box[1] * factor),
                min(round(box[2] * factor), upright.width),
                min(round(box[3] * factor), upright.height),
            )
        pixels = _rgb(upright).resize(PHOTO_OUTPUT_SIZE, Image.Resampling.LANCZOS, box=box)
    # Nothing of the original's info goes with the pixels: no EXIF (GPS), ICC profile, XMP or
    # comment is written (Pillow would carry a JPEG comment over from `info`).
    pixels.info = {}
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=JPEG_QUALITY)
    return Photo(content=out.getvalue(), width=out_w, height=out_h)


def crop_area(width: int, height: int, crop: CropBox | None) -> tuple[int, int, int, int]:
    """The (left, upper, right, lower) area of a width x height photo to keep: the crop box
    clamped inside the photo and narrowed, about its centre, to exactly 3:4; or the largest
    centred 3:4 area when there is none. Refused when what is left is too small to print."""
    aspect_w, aspect_h = PHOTO_ASPECT
    if crop is None:
        left, top, box_w, box_h = 0, 0, width, height
    else:
        if crop.width <= 0 or crop.height <= 0:
            raise PhotoError(_("The selected area of the photo is empty; select it again."))
        left = min(max(crop.x, 0), width - 1)
        top = min(max(crop.y, 0), height - 1)
        right = min(max(crop.x + crop.width, left + 1), width)
        bottom = min(max(crop.y + crop.height, top + 1), height)
        box_w, box_h = right - left, bottom - top
    unit = min(box_w // aspect_w, box_h // aspect_h)
    keep_w, keep_h = unit * aspect_w, unit * aspect_h
    if keep_h < MIN_PHOTO_SIDE:
        raise PhotoError(
            _(
                "The selected area is too small to print: select at least %(w)d x %(h)d pixels.",
                w=MIN_PHOTO_SIDE * aspect_w // aspect_h,
                h=MIN_PHOTO_SIDE,
            )
        )
    x = left + (box_w - keep_w) // 2
    y = top + (box_h - keep_h) // 2
    return (x, y, x + keep_w, y + keep_h)


def _open(data: bytes) -> Image.Image:
    """The image's header read and checked; no pixel decoded yet."""
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(too_large_message())
    if not data:
        raise PhotoError(_("The photo file is empty."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise PhotoError(_("This file is not a JPEG or PNG photo.")) from None
    except Exception:  # noqa: BLE001 - any reader failure is a file we cannot read
        raise _unreadable() from None
    if image.format not in ACCEPTED_FORMATS:
        image.close()
        raise PhotoError(_("This file is not a JPEG or PNG photo."))
    width, height = image.size
    if width * height > MAX_PHOTO_PIXELS:
        image.close()
        raise _too_many_pixels()
    if min(width, height) < MIN_PHOTO_SIDE:
        image.close()
        raise PhotoError(
            _(
                "The photo is too small to print: it needs at least %(px)d pixels on each side.",
                px=MIN_PHOTO_SIDE,
            )
        )
    return image


def _load(image: Image.Image) -> None:
    """Decode every pixel: a truncated or corrupt file is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except Exception:  # noqa: BLE001 - truncated, corrupt, or a decoder's limit
        raise _unreadable() from None


def _rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; a transparent PNG is laid on white (a card's photo box is white)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """The decoded photo turned as its EXIF orientation says (in place: no copy when it is
    upright already)."""
    # An unreadable EXIF block: the pixels as stored.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)
    return image


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """The size as the photo is seen: EXIF orientations 5-8 turn it a quarter."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block counts as none
        orientation = 1
    if orientation in (5, 6, 7, 8):
        return image.height, image.width
    return image.width, image.height


def _too_many_pixels() -> PhotoError:
    return PhotoError(
        _(
            "The photo has too many pixels (max %(mp)d megapixels).",
            mp=MAX_PHOTO_PIXELS // 1_000_000,
        )
    )


def _unreadable() -> PhotoError:
    return PhotoError(
        _("The photo could not be read: the file is damaged or incomplete. Try another file.")
    )
