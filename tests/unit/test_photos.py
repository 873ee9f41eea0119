"""Card holders' photos (R-83 reading): JPEG or PNG by content, limits on bytes and pixels,
decompression bombs and truncated files refused, re-encoded without metadata, turned upright,
cropped to the card's 3:4 and stored at 600 x 800."""

from __future__ import annotations

import io
import struct
import tracemalloc

import pytest
from flask import Flask
from PIL import Image

from portal.domain.inet import MAX_PHOTO_BYTES, PHOTO_OUTPUT_SIZE
from portal.services import photos
from portal.services.photos import CropBox, PhotoError, crop_area
from tests.factories import sample_jpeg


@pytest.fixture(scope="module", autouse=True)
def app_context():
    app = Flask(__name__)
    from flask_babel import Babel

    Babel(app)
    with app.test_request_context():
        yield


def image_bytes(fmt: str, size=(600, 800), color=(200, 30, 30), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **save)
    return out.getvalue()


def jpeg_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A real 300 x 400 JPEG of a few KB whose frame header claims width x height."""
    data = bytearray(sample_jpeg(300, 400))
    sof = data.index(b"\xff\xc0")  # baseline frame: FF C0, length, precision, height, width
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def exif_jpeg(size=(800, 600), orientation: int | None = None, gps: bool = True) -> bytes:
    image = Image.new("RGB", size, (30, 30, 200))
    # The stored top half red: where it ends up tells how the photo was turned.
    image.paste((220, 20, 20), (0, 0, size[0], size[1] // 2))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (35.0, 39.0, 29.0), 3: "E", 4: (139.0, 44.0, 28.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


def decoded(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


# --- what is accepted ---------------------------------------------------------------------


def test_a_jpeg_is_stored_as_an_exact_600_by_800_jpeg():
    photo = photos.process(sample_jpeg(900, 1000))
    image = decoded(photo.content)
    assert image.format == "JPEG"
    assert image.size == PHOTO_OUTPUT_SIZE == (photo.width, photo.height) == (600, 800)
    assert image.mode == "RGB"


def test_a_png_named_jpg_is_accepted_as_the_png_it_is():
    """By content, not by name: the bytes are a PNG, whatever the file was called."""
    png = image_bytes("PNG", (750, 1000))
    assert photos.check(png).format == "PNG"
    assert decoded(photos.process(png).content).format == "JPEG"


def test_a_transparent_png_is_laid_on_white():
    out = io.BytesIO()
    Image.new("RGBA", (600, 800), (0, 0, 0, 0)).save(out, "PNG")
    image = decoded(photos.process(out.getvalue()).content)
    assert min(image.getpixel((300, 400))) > 240


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("text", "氏名,社員番号\n山田,E001\n".encode()),
        ("gif", image_bytes("GIF")),
        ("webp", image_bytes("WEBP")),
        ("bmp", image_bytes("BMP")),
        ("pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\n"),
    ],
)
def test_anything_else_named_jpg_is_refused(kind, data):
    with pytest.raises(PhotoError, match="not a JPEG or PNG photo"):
        photos.process(data)
    with pytest.raises(PhotoError, match="not a JPEG or PNG photo"):
        photos.check(data)


# --- limits ----------------------------------------------------------------------------------


def test_a_30_mb_file_is_refused_before_it_is_decoded():
    data = sample_jpeg() + b"\x00" * (30 * 1024 * 1024)
    with pytest.raises(PhotoError, match=r"too large \(max 10 MB\)"):
        photos.process(data)


def test_one_byte_over_the_limit_is_refused_and_the_limit_itself_is_not_refused_for_size():
    with pytest.raises(PhotoError, match="too large"):
        photos.check(b"\xff" * (MAX_PHOTO_BYTES + 1))
    with pytest.raises(PhotoError, match="not a JPEG or PNG"):
        photos.check(b"\xff" * MAX_PHOTO_BYTES)


def test_a_jpeg_bomb_is_refused_without_allocating_its_pixels():
    """60,000 x 60,000 pixels (10.8 GB decoded) in a file of a few KB."""
    bomb = jpeg_bomb()
    assert len(bomb) < 20_000
    tracemalloc.start()
    try:
        with pytest.raises(PhotoError, match="too many pixels"):
            photos.process(bomb)
        with pytest.raises(PhotoError, match="too many pixels"):
            photos.check(bomb)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_just_over_the_pixel_limit_is_refused_by_the_header():
    """7,000 x 6,000 = 42 megapixels: under Pillow's own error threshold, over ours."""
    with pytest.raises(PhotoError, match="too many pixels"):
        photos.check(jpeg_bomb(7_000, 6_000))


def test_a_photo_too_small_to_print_is_refused():
    with pytest.raises(PhotoError, match="too small to print"):
        photos.process(sample_jpeg(200, 300))


def test_a_truncated_jpeg_is_refused():
    data = sample_jpeg()
    with pytest.raises(PhotoError, match="damaged or incomplete"):
        photos.process(data[: len(data) // 2])
    with pytest.raises(PhotoError, match="damaged or incomplete"):
        photos.check(data[: len(data) // 2])


def test_a_truncated_png_is_refused():
    data = image_bytes("PNG", (700, 900))
    with pytest.raises(PhotoError, match="damaged or incomplete"):
        photos.process(data[: len(data) - 200])


def test_an_empty_file_is_refused():
    with pytest.raises(PhotoError, match="empty"):
        photos.process(b"")


# --- metadata and orientation -----------------------------------------------------------------


def test_exif_with_gps_and_comments_are_gone_from_the_stored_photo():
    original = exif_jpeg()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # it had a location
    content = photos.process(original).content
    image = decoded(content)
    assert dict(image.getexif()) == {}
    assert b"\xff\xe1" not in content  # no APP1 segment (EXIF, XMP)
    assert b"Exif" not in content and b"PhoneMaker" not in content
    assert b"taken at home" not in content and "comment" not in image.info
    assert "icc_profile" not in image.info


def test_the_exif_orientation_is_applied_before_cropping():
    """Stored 800 x 600 with orientation 6 (turn a quarter clockwise): seen 600 x 800, the
    stored top (red) on the right."""
    image = decoded(photos.process(exif_jpeg(orientation=6)).content)
    assert image.size == (600, 800)
    right, left = image.getpixel((500, 400)), image.getpixel((100, 400))
    assert right[0] > 150 and right[2] < 100  # red
    assert left[2] > 150 and left[0] < 100  # blue


def test_a_crop_box_is_given_in_the_upright_photos_pixels():
    image = Image.new("RGB", (1200, 1600), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 600, 800))  # the top-left quarter white
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    kept = decoded(photos.process(out.getvalue(), CropBox(0, 0, 600, 800)).content)
    assert min(kept.getpixel((300, 400))) > 240
    assert min(kept.getpixel((590, 790))) > 200


def test_the_photo_of_a_large_jpeg_is_made_from_a_reduced_decode_with_the_same_crop():
    """A 4,000 x 3,000 photo decodes at a reduced scale; the crop still lands where asked."""
    image = Image.new("RGB", (4000, 3000), (0, 0, 0))
    image.paste((255, 255, 255), (3000, 1000, 3600, 1800))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    kept = decoded(photos.process(out.getvalue(), CropBox(3000, 1000, 600, 800)).content)
    assert kept.size == (600, 800)
    assert min(kept.getpixel((300, 400))) > 240
    assert min(kept.getpixel((20, 20))) > 200


# --- the crop area (pure) ---------------------------------------------------------------------


def test_without_a_box_the_largest_centred_3_by_4_area_is_kept():
    assert crop_area(1000, 1000, None) == (125, 0, 875, 1000)
    assert crop_area(600, 1000, None) == (0, 100, 600, 900)


def test_a_box_is_narrowed_about_its_centre_to_exactly_3_by_4():
    left, top, right, bottom = crop_area(2000, 2000, CropBox(100, 100, 800, 800))
    assert (right - left) * 4 == (bottom - top) * 3
    assert (left, top, right, bottom) == (200, 100, 800, 900)


def test_a_box_reaching_outside_the_photo_is_clamped_inside_it():
    left, top, right, bottom = crop_area(1000, 1000, CropBox(-300, 500, 900, 2000))
    assert left >= 0 and top >= 500 and right <= 1000 and bottom <= 1000
    assert (right - left) * 4 == (bottom - top) * 3


def test_a_box_too_small_to_print_or_empty_is_refused():
    with pytest.raises(PhotoError, match="too small to print"):
        crop_area(1000, 1000, CropBox(0, 0, 90, 120))
    with pytest.raises(PhotoError, match="empty"):
        crop_area(1000, 1000, CropBox(10, 10, 0, 0))
    with pytest.raises(PhotoError, match="too small to print"):
        crop_area(1000, 1000, CropBox(990, 990, 300, 400))  # clamped to 10 x 10
