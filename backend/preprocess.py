"""The one image preprocessing step, shared by training, evaluation, the daemon and the CLI.

Peers' users get garbage reconstructions when their preprocessing differs from training's
(image library, RGBA vs RGB, background fill, crop, normalization), so every image that reaches
a network goes through :func:`preprocess`, and nothing else resizes or normalizes images.
Torch-free (numpy + Pillow) so the daemon and tools can use it anywhere.

Steps:

1. :func:`load_image` decodes a path, encoded bytes, a PIL image or a uint8 array; the pixel
   count is checked from the header *before* decoding (decompression bombs), and the EXIF
   orientation is applied, so crop boxes are in the image as it is displayed. A JPEG over the
   pixel cap (a 50 or 200 megapixel phone photo) is decoded at 1/2, 1/4 or 1/8 scale instead
   of refused; crop boxes stay in the full image's pixels.
2. Transparency (RGBA, LA, PA, palette or grayscale with a transparent colour) is composited
   over **white**: training's synthetic renders are RGBA on a transparent background, and so
   are user PNGs cut out of their background. Grayscale and 16-bit images become 8-bit RGB.
3. An optional crop box ``(x, y, w, h)`` in pixels. It may reach past the image border (the
   part outside is filled as in step 4) but must overlap the image.
4. Padding to a square, keeping the content centred: white for images that had transparency
   (the renders' background), edge pixels replicated for opaque photos (so the padding adds
   no frame the network never saw).
5. Resizing to ``size`` x ``size`` with a Lanczos filter, then ``x / 127.5 - 1`` -> float32
   ``(3, size, size)`` in [-1, 1].

There is no automatic crop to the object: both render styles follow 3D-R2N2's camera protocol,
so their framing already matches (the object's longer side spans about 45-85 % of the frame,
median 64 %). A user's photo should frame the object the same way: centred, filling roughly
two thirds of the shorter side; otherwise pass a crop box around it
(:func:`square_box_around` makes one from a bounding box).
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SIZE = 64  # the network's input side, in pixels
MAX_PIXELS = 40_000_000  # cap on width * height, checked before decoding
# Median share of the frame that the object's longer side spans in the R2N2-protocol renders
# (measured on the procedural data set: 5/50/95 % = 0.45/0.64/0.86).
OBJECT_FRACTION = 0.64

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray
Box = tuple[float, float, float, float]

_WHITE = 255
DECODE_SCALE = "decode_scale"  # img.info key set by a reduced JPEG decode
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageError(ValueError):
    """An input that cannot be turned into a network image (with a message saying why)."""


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS,
               apply_exif: bool = True) -> Image.Image:
    """Decode ``source`` into a loaded PIL image (any mode), EXIF orientation applied.

    ``source``: a file path, encoded bytes (PNG, JPEG, WebP, ... anything Pillow reads), a PIL
    image, or a uint8 array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``.
    Raises :class:`ImageError` for unreadable, empty or undecodable input, more than
    ``max_pixels`` pixels (checked from the header, before any pixel is decoded), or an array
    of the wrong dtype or shape. ``apply_exif=False`` keeps the stored pixel order (for data
    sets whose annotations refer to it).
    """
    if isinstance(source, np.ndarray):
        img = _from_array(source)
    elif isinstance(source, Image.Image):
        img = source
    elif isinstance(source, bytes | bytearray | memoryview):
        img = _open_encoded(bytes(source), "image bytes", max_pixels)
    elif isinstance(source, str | os.PathLike):
        img = _open_encoded(_read_file(source), os.fspath(source), max_pixels)
    else:
        raise ImageError(f"unsupported image source of type {type(source).__name__}; expected "
                         "a path, bytes, a PIL image or a uint8 numpy array")
    _check_pixels(img.size, max_pixels, "image")
    _decode(img, "image")  # a lazily opened PIL image is decoded only now, after the check
    if apply_exif:
        img = _exif_transposed(img)
    return img


def _read_file(path: str | os.PathLike) -> bytes:
    # Read the whole file at once so no file handle stays open (DataLoader workers open many).
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ImageError(f"cannot read image file {os.fspath(path)!r}: {exc}") from exc


def _open_encoded(data: bytes, what: str, max_pixels: int) -> Image.Image:
    """Open encoded bytes: header first (size check), then decode."""
    if not data:
        raise ImageError(f"{what}: empty input (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own cap is lower than Pillow's warning threshold; its warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{what}: too many pixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what}: not a decodable image ({exc})") from exc
    _reduce_jpeg(img, max_pixels)
    _check_pixels(img.size, max_pixels, what)
    _decode(img, what)
    return img


def _reduce_jpeg(img: Image.Image, max_pixels: int) -> None:
    """Let a JPEG over ``max_pixels`` decode at the largest of 1/2, 1/4, 1/8 scale that fits
    (the decoder skips the detail, so the full image is never in memory). The scale is kept in
    ``img.info[DECODE_SCALE]`` (full-image pixels per decoded pixel)."""
    w, h = img.size
    if img.format != "JPEG" or w * h <= max_pixels:
        return
    for k in (2, 4, 8):
        want = (math.ceil(w / k), math.ceil(h / k))
        if want[0] * want[1] <= max_pixels:
            img.draft(img.mode, want)
            if img.size != (w, h):
                img.info[DECODE_SCALE] = w / img.size[0]
            return


def _decode(img: Image.Image, what: str) -> None:
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"{what}: cannot decode image data ({exc})") from exc


def _check_pixels(size: tuple[int, int], max_pixels: int, what: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{what}: empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(f"{what}: too many pixels ({w}x{h} = {w * h} > {max_pixels}); "
                         "downscale the image first")


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.dtype != np.uint8:
        raise ImageError(f"image array must be uint8 (0..255), got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"empty image array {arr.shape}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _exif_transposed(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception as exc:  # a malformed EXIF block must not reject a good image
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return img


# ---------------------------------------------------------------------------------------------
# Colour: any mode -> 8-bit RGB over white
# ---------------------------------------------------------------------------------------------

def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _eight_bit(img: Image.Image) -> Image.Image:
    """16/32-bit grayscale and float images -> 8-bit ``L`` (Pillow's convert would clip)."""
    transparent = img.info.get("transparency")  # a 16-bit PNG's transparent gray value
    if img.mode in _SIXTEEN_BIT_MODES:
        raw = np.asarray(img)
        arr = raw.astype(np.float64) / 257.0  # 0..65535 -> 0..255
    elif img.mode == "F":
        raw = arr = np.asarray(img, dtype=np.float64)  # Pillow's convention: 0..255
    else:
        return img
    gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    if not isinstance(transparent, int | float):
        return gray
    alpha = Image.fromarray(np.where(raw == transparent, 0, 255).astype(np.uint8), mode="L")
    return Image.merge("LA", (gray, alpha))


def to_rgb(img: Image.Image) -> tuple[np.ndarray, bool]:
    """``(H, W, 3)`` uint8 with transparency composited over white, and whether it had any."""
    img = _eight_bit(img)
    try:
        if not _has_alpha(img):
            return np.asarray(img.convert("RGB")), False
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
    except (ValueError, OSError) as exc:
        raise ImageError(f"cannot convert image mode {img.mode!r} to RGB: {exc}") from exc
    alpha = rgba[:, :, 3:] / 255.0
    out = rgba[:, :, :3] * alpha + _WHITE * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), True


# ---------------------------------------------------------------------------------------------
# Geometry: crop, pad to square, resize
# ---------------------------------------------------------------------------------------------

def _place(rgb: np.ndarray, box: tuple[int, int, int, int], fill: int | None) -> np.ndarray:
    """The pixels of ``box`` (x0, y0, x1, y1), which may reach past the border; the part
    outside is ``fill`` (white for images with alpha, 0 for an alpha channel) or, with
    ``None``, replicates the nearest edge pixel."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    inside = rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    pad = ((max(-y0, 0), max(y1 - h, 0)), (max(-x0, 0), max(x1 - w, 0)), (0, 0))
    if not any(any(p) for p in pad):
        return inside
    if fill is not None:
        return np.pad(inside, pad, mode="constant", constant_values=fill)
    return np.pad(inside, pad, mode="edge")


def _crop_box(crop: Sequence[float], width: int, height: int, max_pixels: int = MAX_PIXELS,
              scale: float = 1.0) -> tuple[int, int, int, int]:
    """Validate ``(x, y, w, h)`` and round it to whole pixels ``(x0, y0, x1, y1)`` of the
    decoded image (``scale`` full-image pixels per decoded pixel). The box may reach past the
    border (padding), but its square may hold at most ``4 * max_pixels`` pixels: a huge box on
    a small image would otherwise allocate gigabytes."""
    try:
        x, y, w, h = (float(v) / scale for v in crop)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"crop box must be four numbers (x, y, w, h), got {crop!r}") from exc
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ImageError(f"crop box must be finite, got {crop!r}")
    x0, y0 = round(x), round(y)
    x1, y1 = round(x + w), round(y + h)
    if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
        raise ImageError(f"crop box {crop!r} has a non-positive size (at least one pixel)")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ImageError(f"crop box {crop!r} lies outside the {round(width * scale)}x"
                         f"{round(height * scale)} image")
    if max(x1 - x0, y1 - y0) ** 2 > 4 * max_pixels:
        raise ImageError(f"crop box {crop!r} is too large: its square would hold more than "
                         f"{4 * max_pixels} pixels")
    return x0, y0, x1, y1


def _square(rgb: np.ndarray, fill: int | None) -> np.ndarray:
    """Pad to a square with the content centred (an odd leftover pixel goes right/bottom);
    ``fill`` as for :func:`_place`."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    x0, y0 = -((side - w) // 2), -((side - h) // 2)
    return _place(rgb, (x0, y0, x0 + side, y0 + side), fill)


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    img = Image.fromarray(rgb, mode="RGB")
    # reducing_gap: shrink large photos by integer steps first (fast), then Lanczos; the
    # difference from a full Lanczos is below one grey level.
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0))


def square_box_around(bbox: Sequence[float], fraction: float = OBJECT_FRACTION) -> Box:
    """A square crop box ``(x, y, w, h)`` centred on ``bbox`` = ``(x0, y0, x1, y1)`` in which
    the box's longer side spans ``fraction`` of the side, as the object does in the renders."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    if x1 <= x0 or y1 <= y0:
        raise ImageError(f"bounding box {tuple(bbox)!r} is empty")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    side = max(x1 - x0, y1 - y0) / fraction
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, side, side


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------

def preprocess(source: ImageSource, size: int = IMAGE_SIZE, crop: Sequence[float] | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The network input for one image: float32 ``(3, size, size)`` in [-1, 1].

    See the module docstring for the steps. ``crop`` is ``(x, y, w, h)`` in pixels of the
    (EXIF-oriented) image; raises :class:`ImageError` for bad input or a bad crop box.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    img = load_image(source, max_pixels)
    scale = img.info.get(DECODE_SCALE, 1.0)
    rgb, had_alpha = to_rgb(img)
    fill = _WHITE if had_alpha else None  # transparency was composited over white
    if crop is not None:
        box = _crop_box(crop, rgb.shape[1], rgb.shape[0], max_pixels, scale)
        rgb = _place(rgb, box, fill)
    rgb = _resize(_square(rgb, fill), size)  # (size, size, 3) uint8
    return (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1).copy()


def alpha_mask(source: ImageSource, size: int = IMAGE_SIZE) -> np.ndarray | None:
    """The alpha channel of ``source`` in the geometry :func:`preprocess` gives its pixels
    (padded to a square, resized): ``(size, size)`` float32 in [0, 1]; None without alpha."""
    img = _eight_bit(load_image(source))
    if not _has_alpha(img):
        return None
    alpha = np.asarray(img.convert("RGBA"))[:, :, 3:].repeat(3, axis=2)  # _resize takes RGB
    # padded with 0 (transparent), not white: the padding shows the background
    return _resize(_square(alpha, fill=0), size)[:, :, 0].astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Inverse of the normalization, for pictures: ``(3, S, S)`` in [-1, 1] -> ``(S, S, 3)``
    uint8. Accepts anything with ``__array__`` (a CPU torch tensor too)."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"expected a (3, S, S) image, got shape {arr.shape}")
    return np.clip(np.rint((arr.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
