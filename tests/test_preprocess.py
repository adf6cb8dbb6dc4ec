"""The one preprocessing function: every input kind -> (3, S, S) float32 in [-1, 1]."""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

import backend.core.preprocess as preprocess_module
from backend.core.preprocess import (
    IMAGE_SIZE,
    MAX_ASPECT,
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
    code = "import sys, backend.core.preprocess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# The bounded-memory path gives today's network input: a copy of the algorithm as it was before
# it stopped building the padded square (full-size float compositing, np.pad to a square, one
# Pillow resize), kept here as the permanent reference. Training saw this path.
# ---------------------------------------------------------------------------------------------

def _reference_rgb(img: Image.Image) -> tuple[np.ndarray, bool]:
    img = preprocess_module._eight_bit(img)  # unchanged helper: 16-bit/float -> 8-bit L(A)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        return np.asarray(img.convert("RGB")), False
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
    alpha = rgba[:, :, 3:] / 255.0
    out = rgba[:, :, :3] * alpha + 255 * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), True


def _reference_place(rgb, box, fill):
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    inside = rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    pad = ((max(-y0, 0), max(y1 - h, 0)), (max(-x0, 0), max(x1 - w, 0)), (0, 0))
    if not any(any(p) for p in pad):
        return inside
    if fill is not None:
        return np.pad(inside, pad, mode="constant", constant_values=fill)
    return np.pad(inside, pad, mode="edge")


def _reference_square_resize(rgb, size, fill):
    h, w = rgb.shape[:2]
    side = max(h, w)
    x0, y0 = -((side - w) // 2), -((side - h) // 2)
    rgb = _reference_place(rgb, (x0, y0, x0 + side, y0 + side), fill)
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    img = Image.fromarray(rgb, mode="RGB")
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0))


def _reference_load(source, max_pixels=preprocess_module.MAX_PIXELS):
    if isinstance(source, np.ndarray):
        arr = source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source
        mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
        return Image.fromarray(np.ascontiguousarray(arr), mode=mode)
    img = source if isinstance(source, Image.Image) else Image.open(io.BytesIO(source))
    preprocess_module._reduce_jpeg(img, max_pixels)  # unchanged helper: draft for huge JPEGs
    img.load()
    return ImageOps.exif_transpose(img)


def _reference_preprocess(source, size=IMAGE_SIZE, crop=None,
                          max_pixels=preprocess_module.MAX_PIXELS):
    img = _reference_load(source, max_pixels)
    scale = img.info.get("decode_scale", 1.0)
    rgb, had_alpha = _reference_rgb(img)
    fill = 255 if had_alpha else None
    if crop is not None:
        x, y, w, h = (float(v) / scale for v in crop)
        box = round(x), round(y), round(x + w), round(y + h)
        rgb = _reference_place(rgb, box, fill)
    rgb = _reference_square_resize(rgb, size, fill)
    return (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1).copy()


def _reference_alpha_mask(source, size=IMAGE_SIZE):
    img = preprocess_module._eight_bit(_reference_load(source))
    if not (img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info):
        return None
    alpha = np.asarray(img.convert("RGBA"))[:, :, 3:].repeat(3, axis=2)
    return _reference_square_resize(alpha, size, 0)[:, :, 0].astype(np.float32) / 255.0


def _render(side: int) -> np.ndarray:
    """An RGBA 'render': a shaded, anti-aliased object on a transparent background."""
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    r = np.hypot(xx - side * 0.52, yy - side * 0.47)
    alpha = np.clip(side * 0.3 - r + 0.5, 0, 1) * 255
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0] = np.clip(60 + xx * 150 / side, 0, 255)
    rgba[..., 1] = np.clip(40 + yy * 120 / side, 0, 255)
    rgba[..., 2] = 90
    rgba[..., 3] = np.rint(alpha)
    return rgba


def _rotated_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(Image.fromarray(_photo(90, 50, seed=orientation)), "JPEG", exif=exif.tobytes())


ORDINARY = {  # name: (source, kwargs)
    "jpeg_640x480": (lambda: _encode(Image.fromarray(_photo(640, 480)), "JPEG", quality=90), {}),
    "render_137": (lambda: _encode(Image.fromarray(_render(137), "RGBA"), "PNG"), {}),
    "render_128": (lambda: _encode(Image.fromarray(_render(128), "RGBA"), "PNG"), {}),
    "render_137_at_137": (lambda: _render(137), {"size": 137}),
    "gray_L": (lambda: Image.fromarray(_photo(300, 200)[:, :, 0], "L"), {}),
    "wide_1000x400": (lambda: _encode(Image.fromarray(_photo(1000, 400, 3)), "JPEG"), {}),
    "tall_array_200x900": (lambda: _photo(200, 900, 4), {}),
    "large_3000x2000": (lambda: _encode(Image.fromarray(_photo(3000, 2000)), "JPEG"), {}),
    "crop_inside": (lambda: _photo(640, 480, 5), {"crop": (100, 50, 300, 200)}),
    "crop_past_border": (lambda: _photo(640, 480, 6), {"crop": (-120, 300, 500, 400)}),
    "crop_past_border_rgba": (lambda: _render(300), {"crop": (150, -40, 260, 180.5)}),
    "crop_huge_box_on_small_image": (lambda: _photo(30, 20), {"crop": (-900, -500, 1900, 1400)}),
    "square_box_around": (lambda: _render(400), {"crop": square_box_around((120, 130, 260, 250))}),
    "palette_transparent": (_palette_with_transparency, {}),
    "png_16bit": (_png_16bit, {}),
    "la": (lambda: Image.fromarray(_render(90)[:, :, [0, 3]], "LA"), {}),
    "reduced_jpeg_decode_with_crop": (
        lambda: _encode(Image.fromarray(_photo(800, 600)), "JPEG"),
        {"crop": (300, 100, 400, 400), "max_pixels": 60_000}),
    **{f"exif_orientation_{k}": ((lambda k=k: _rotated_jpeg(k)), {"crop": (5, 10, 40, 30)})
       for k in range(1, 9)},
    "exif_rotated_large": (
        lambda: _encode(Image.fromarray(_photo(1200, 700)), "JPEG",
                        exif=_exif_bytes(6)), {}),
}


def _exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


ONE_GREY_LEVEL = 2 / 255  # in [-1, 1] units: 1/255 of the [0, 1] range


@functools.cache
def _ordinary(name: str):
    return ORDINARY[name][0]()


@pytest.mark.parametrize("name, tile", [  # small tiles: many tile borders, same result
    (name, tile) for name in sorted(ORDINARY) for tile in (1024, 40)
    if tile == 1024 or name != "large_3000x2000"])  # that one is slow with small tiles
def test_network_input_matches_the_reference_algorithm(name, tile, monkeypatch):
    """Within one grey level of the pad-the-whole-square algorithm training used (in fact
    equal: the block averages are the ones Pillow's reduce step computes)."""
    monkeypatch.setattr(preprocess_module, "_TILE_SIDE", tile)
    kwargs = ORDINARY[name][1]
    got = preprocess(_ordinary(name), **kwargs)
    want = _reference_preprocess(_ordinary(name), **kwargs)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.abs(got - want).max() <= ONE_GREY_LEVEL
    np.testing.assert_array_equal(got, want)  # today: exactly equal


@pytest.mark.parametrize("name", ["render_137", "render_128", "la", "palette_transparent",
                                  "jpeg_640x480", "crop_past_border_rgba"])
def test_alpha_mask_matches_the_reference_algorithm(name, monkeypatch):
    monkeypatch.setattr(preprocess_module, "_TILE_SIDE", 7)
    got, want = alpha_mask(_ordinary(name)), _reference_alpha_mask(_ordinary(name))
    if want is None:
        assert got is None
    else:
        np.testing.assert_array_equal(got, want)


def test_integer_compositing_equals_the_float_formula():
    """Every (colour, alpha) pair composites over white as ``rint(c * a + 255 * (1 - a))``."""
    c, a = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    rgba = np.stack([c, c[:, ::-1], c, a], axis=-1)
    got, had_alpha = preprocess_module.to_rgb(Image.fromarray(rgba, "RGBA"))
    want, _ = _reference_rgb(Image.fromarray(rgba, "RGBA"))
    assert had_alpha
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", list(Image.Transpose)[:7])
def test_regions_of_an_exif_rotated_image_are_read_in_the_displayed_frame(method):
    stored = Image.fromarray(_photo(13, 7))
    shown = stored.transpose(method)
    pixels = preprocess_module._Pixels(img=stored, method=method)
    assert pixels.size == shown.size
    for box in [(0, 0, *shown.size), (1, 2, 4, 6), (0, 3, shown.size[0], 4)]:
        np.testing.assert_array_equal(np.asarray(pixels.region(*box)),
                                      np.asarray(shown.crop(box)))


def test_absurd_aspect_ratios_are_refused_before_decoding(no_decoding):
    """A thin image padded to a square cost gigabytes (a 138-byte 20000x1 PNG: 3.4 GB)."""
    for w, h in [(20_000, 1), (1, 20_000), (40_000_000, 1), (200_000, 200), (65, 1)]:
        with pytest.raises(ImageError, match=f"aspect ratio of {w}x{h} is beyond") as info:
            preprocess(_png_header_claiming(w, h))
        assert info.value.code == "bad_image"
    with pytest.raises(ImageError, match="aspect ratio") as info:
        preprocess(np.zeros((16_384, 1, 3), np.uint8))
    assert info.value.code == "bad_image"
    with pytest.raises(ImageError, match="aspect ratio"):
        load_image(np.zeros((2, 129), np.uint8))


def test_aspect_ratio_up_to_the_limit_is_accepted():
    assert MAX_ASPECT == 64
    x = preprocess(_photo(640, 10))
    assert x.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_array_equal(x, _reference_preprocess(_photo(640, 10)))


def test_image_errors_carry_the_daemon_code():
    with pytest.raises(ImageError) as info:
        preprocess(_png_header_claiming(100_000, 100_000))
    assert info.value.code == "image_too_large"
    with pytest.raises(ImageError) as info:
        preprocess(_photo(10, 10), crop=(50, 50, 5, 5))
    assert info.value.code == "bad_option"
    with pytest.raises(ImageError) as info:
        preprocess(b"not an image")
    assert info.value.code == "bad_image"
    assert ImageError("old-style message").code == "bad_image"
