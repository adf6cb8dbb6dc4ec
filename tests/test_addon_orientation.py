"""The add-on's EXIF orientation reader and pixel turns, against Pillow (no Blender)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from blender_addon.orientation import exif_orientation, to_upright, upright_size


def _encoded(fmt: str, orientation: int | None, size=(6, 4)) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(orientation or 0).integers(0, 255, (size[1], size[0], 3),
                                                               dtype=np.uint8)
    image = Image.fromarray(pixels)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue(), pixels


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_tag_is_read_like_pillow_reads_it(fmt, orientation):
    data, _ = _encoded(fmt, orientation)
    assert exif_orientation(data) == orientation
    assert exif_orientation(data) == Image.open(io.BytesIO(data)).getexif().get(0x0112)


def test_png_exif_after_the_image_data_counts_too():
    data, _ = _encoded("PNG", 6)
    start = data.index(b"eXIf") - 4
    length = int.from_bytes(data[start:start + 4], "big")
    chunk, rest = data[start:start + 12 + length], data[:start] + data[start + 12 + length:]
    late = rest[:-12] + chunk + rest[-12:]  # just before IEND
    assert late.index(b"eXIf") > late.index(b"IDAT")
    assert exif_orientation(late) == 6
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(late))).size == (4, 6)  # Pillow too


@pytest.mark.parametrize("data", [_encoded("JPEG", None)[0], _encoded("PNG", None)[0], b"",
                                  b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\xff",
                                  b"not an image at all", _encoded("JPEG", 6)[0][:40]])
def test_missing_or_broken_exif_means_upright(data):
    assert exif_orientation(data) == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_pixels_turn_like_pillows_exif_transpose(orientation):
    data, pixels = _encoded("PNG", orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    turned = to_upright(pixels, orientation)
    assert np.array_equal(turned, expected)
    assert turned.shape[1::-1] == upright_size(6, 4, orientation)
