"""The one preprocessing function: every input kind -> (3, S, S) float32 in [-1, 1]."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from backend.preprocess import (
    IMAGE_SIZE,
    ImageError,
    alpha_mask,
    load_image,
    preprocess,
    square_box_around,
    to_uint8,
)


def _photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """An opaque (h, w, 3) uint8 'photo': smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1),
                     np.full((h, w), 128.0)], axis=-1)
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _rgba_object(w: int = 48, h: int = 48) -> np.ndarray:
    """A red disc on a fully transparent background whose hidden colour is black."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[inside] = (200, 30, 30, 255)
    return rgba


def _png_16bit() -> bytes:
    img = Image.fromarray((np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16))
    assert img.mode == "I;16"
    return _encode(img, "PNG")


def _palette_with_transparency() -> bytes:
    img = Image.fromarray(_photo(32, 32)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return _encode(img, "PNG", transparency=0)


SOURCES = {
    "jpeg": lambda: _encode(Image.fromarray(_photo(80, 60)), "JPEG", quality=90),
    "png_alpha": lambda: _encode(Image.fromarray(_rgba_object(), "RGBA"), "PNG"),
    "large_photo": lambda: _encode(Image.fromarray(_photo(3000, 2000)), "JPEG", quality=80),
    "tall": lambda: Image.fromarray(_photo(30, 120)),
    "wide": lambda: Image.fromarray(_photo(120, 30)),
    "grayscale": lambda: _encode(Image.fromarray(_photo(50, 40)[:, :, 0]), "PNG"),
    "palette": lambda: Image.fromarray(_photo(50, 40)).convert("P"),
    "palette_transparent": _palette_with_transparency,
    "png_16bit": _png_16bit,
    "la": lambda: Image.fromarray(_rgba_object()[:, :, [0, 3]], "LA"),
    "rgba_array": _rgba_object,
    "rgb_array": lambda: _photo(20, 10),
    "gray_array": lambda: _photo(20, 10)[:, :, 1],
    "webp": lambda: _encode(Image.fromarray(_photo(40, 40)), "WEBP"),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_input_kind_gives_the_network_input(name):
    x = preprocess(SOURCES[name]())
    assert x.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 0.01  # not blank


def test_other_sizes():
    assert preprocess(_photo(100, 50), size=137).shape == (3, 137, 137)
    with pytest.raises(ValueError):
        preprocess(_photo(10, 10), size=0)


def test_transparent_pixels_come_out_white():
    rgba = _rgba_object(64, 64)
    x = preprocess(rgba)
    transparent = rgba[:, :, 3] == 0
    assert np.all(x[:, transparent] == 1.0)
    np.testing.assert_allclose(x[:, 32, 32], np.array([200, 30, 30]) / 127.5 - 1, atol=1e-6)
    # Half-transparent: composited over white, not over the hidden colour.
    half = np.zeros((64, 64, 4), np.uint8)
    half[..., 3] = 128
    np.testing.assert_allclose(preprocess(half), 127 / 127.5 - 1, atol=1e-6)


def test_16_bit_gray_with_a_transparent_value_comes_out_white():
    """A 16-bit grayscale PNG marks transparency with one gray value (tRNS), like 8-bit
    palette images; its pixels are white in the input and zero in the alpha mask."""
    gray = np.full((8, 8), 1000, np.uint16)
    gray[2:6, 2:6] = 50000
    buf = io.BytesIO()
    Image.frombytes("I;16", (8, 8), gray.tobytes()).save(buf, format="PNG", transparency=1000)
    x = preprocess(buf.getvalue(), size=8)
    assert np.all(x[:, 0, 0] == 1.0)
    np.testing.assert_allclose(x[:, 4, 4], round(50000 / 257) / 127.5 - 1, atol=1e-6)
    mask = alpha_mask(buf.getvalue(), size=8)
    assert mask[0, 0] == 0.0 and mask[4, 4] == 1.0


def test_padding_is_white_with_alpha_and_edge_pixels_without():
    opaque = np.zeros((32, 64, 3), np.uint8)
    opaque[..., 2] = 255  # blue, wide
    x = preprocess(opaque)
    np.testing.assert_allclose(x[:, 0, :], np.array([[-1.0], [-1.0], [1.0]]) * np.ones((1, 64)))
    rgba = np.concatenate([opaque, np.full((32, 64, 1), 255, np.uint8)], axis=-1)
    y = preprocess(rgba)
    assert np.all(y[:, :8, :] == 1.0) and np.all(y[:, -8:, :] == 1.0)  # white bands
    assert np.allclose(y[:, 32, :], x[:, 32, :])


@pytest.mark.parametrize("shape", [(40, 200), (200, 40)])
def test_object_stays_centred_for_any_aspect_ratio(shape):
    h, w = shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4] = (0, 0, 0, 255)
    dark = preprocess(rgba).mean(axis=0) < 0
    ys, xs = np.nonzero(dark)
    assert abs(ys.mean() - 31.5) < 1.0 and abs(xs.mean() - 31.5) < 1.0


def test_crop_box():
    img = np.full((100, 100, 3), 255, np.uint8)
    img[60:80, 60:80] = (0, 255, 0)
    np.testing.assert_allclose(preprocess(img, crop=(60, 60, 20, 20))[:, 5:-5, 5:-5],
                               np.array([-1.0, 1.0, -1.0])[:, None, None] * np.ones((1, 54, 54)))
    # A box reaching past the border is allowed; the outside is filled like padding.
    assert preprocess(img, crop=(90, 90, 30, 30)).shape == (3, 64, 64)
    for bad in [(0, 0, 0, 10), (0, 0, 10, -1), (200, 0, 10, 10), (-50, -50, 20, 20),
                (float("nan"), 0, 5, 5), (1, 2, 3), "abcd"]:
        with pytest.raises(ImageError, match="crop box"):
            preprocess(img, crop=bad)


def test_square_box_around_frames_like_the_renders():
    x, y, w, h = square_box_around((10, 20, 30, 60), fraction=0.5)
    assert (w, h) == (80, 80) and (x + w / 2, y + h / 2) == (20, 40)


def test_a_jpeg_over_the_pixel_cap_is_decoded_smaller_not_refused():
    """A 50-200 MP phone JPEG is decoded at 1/2..1/8 scale; its crop box stays in full-image
    pixels and gives the same network input as a full decode."""
    photo = _encode(Image.fromarray(_photo(800, 600)), "JPEG")
    full = load_image(photo)
    assert full.size == (800, 600)
    reduced = load_image(photo, max_pixels=60_000)  # 480 000 pixels: 1/4 scale fits
    assert reduced.size == (200, 150) and reduced.info["decode_scale"] == 4.0
    crop = (300, 100, 400, 400)
    np.testing.assert_allclose(preprocess(photo, crop=crop, max_pixels=60_000),
                               preprocess(photo, crop=crop), atol=0.08)
    with pytest.raises(ImageError, match="outside the 800x600 image"):
        preprocess(photo, crop=(900, 0, 10, 10), max_pixels=60_000)
    with pytest.raises(ImageError, match="too many pixels"):  # even 1/8 is over the cap
        load_image(photo, max_pixels=5_000)
    png = _encode(Image.fromarray(_photo(800, 600)), "PNG")  # no reduced decode for PNG
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(png, max_pixels=60_000)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data gets decoded."""
    def refuse(self):
        raise AssertionError("pixels were decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(no_decoding, tmp_path):
    bomb = _png_header_claiming(100_000, 100_000)
    with pytest.raises(ImageError, match="too many pixels"):
        preprocess(bomb)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_claiming(8000, 6000))  # 48 MP: under Pillow's own limit
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(path)
    small = _encode(Image.fromarray(_photo(100, 100)), "PNG")
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(small, max_pixels=5000)


@pytest.mark.parametrize("data, message", [
    (b"", "empty input"),
    (b"this is not an image at all" * 10, "not a decodable image"),
    (_encode(Image.fromarray(_photo(64, 64)), "JPEG")[:-400], "cannot decode"),
])
def test_bad_bytes_raise_image_error(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess(data)


def test_bad_files_and_arrays_raise_image_error(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty input"):
        preprocess(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="cannot read"):
        preprocess(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="uint8"):
        preprocess(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, 3\)"):
        preprocess(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(ImageError, match="empty image array"):
        preprocess(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(ImageError, match="unsupported image source"):
        preprocess(12345)


def test_same_image_as_path_bytes_pil_and_array(tmp_path):
    data = _encode(Image.fromarray(_rgba_object(90, 50), "RGBA"), "PNG")
    path = tmp_path / "object.png"
    path.write_bytes(data)
    outputs = [preprocess(path), preprocess(str(path)), preprocess(data),
               preprocess(Image.open(io.BytesIO(data))),
               preprocess(np.asarray(Image.open(path)))]
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _encode(Image.fromarray(_photo(40, 20)), "JPEG", exif=exif.tobytes())
    assert load_image(data).size == (20, 40)
    assert load_image(data, apply_exif=False).size == (40, 20)


def test_to_uint8_inverts_the_normalization():
    img = _photo(64, 64)
    np.testing.assert_array_equal(to_uint8(preprocess(img)), img)


def test_preprocessing_does_not_load_torch():
    code = "import sys, backend.preprocess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
