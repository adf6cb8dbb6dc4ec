"""The one image preprocessing step, shared by training, evaluation, the daemon and the CLI.

Peers' users get garbage reconstructions when their preprocessing differs from training's
(image library, RGBA vs RGB, background fill, crop, normalization), so every image that reaches
a network goes through :func:`preprocess`, and nothing else resizes or normalizes images.
Torch-free (numpy + Pillow) so the daemon and tools can use it anywhere.

Steps:

1. :func:`load_image` decodes a path, encoded bytes, a PIL image or a uint8 array; the pixel
   count and the aspect ratio are checked from the header *before* decoding (decompression
   bombs, absurd shapes), and the EXIF orientation is applied, so crop boxes are in the image
   as it is displayed. A JPEG over the pixel cap (a 50 or 200 megapixel phone photo) is decoded
   at 1/2, 1/4 or 1/8 scale instead of refused; crop boxes stay in the full image's pixels.
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

Framing (``autocrop=True``; the daemon and the CLI default to it, training and evaluation
to off so far). Both render styles follow 3D-R2N2's camera protocol, where the object's longer
side spans about 45-85 % of the frame (median 64 %, :data:`OBJECT_FRACTION`), a little off
centre; user photos are framed any way. So the object's box is found and brought into the range
of framings the network was trained on (:func:`range_framed_box`): an image whose object's
share of its padded square and offset from the centre lie within the renders' p10-p90
(:data:`FRAMING_RANGE`, :data:`FRAMING_OFFSET`) is left as it is, and any other is re-framed to
the renders' median, a square centred on the object (:func:`square_box_around`; the part past
the border is padded as in step 4). The network reads the object's apparent size as a cue, so
a framing it has seen keeps it instead of being normalized to the median:

- a user's crop box marks the object (``source="user"``);
- else an image with meaningful alpha (some pixels transparent, some opaque: a cut-out PNG)
  is framed by the box of its opaque pixels (``"alpha"``);
- else, given a ``segmenter`` (a foreground model behind a plain callable, so this module stays
  torch-free), an opaque photo is framed by the box of its foreground mask (``"mask"``); a mask
  that reaches the border means the object fills or overflows the frame and the square is
  padded out past it; an object smaller than the renders ever frame it (share below
  ``FRAMING_RANGE[0]``) is looked at again through its median framing, where the mask has
  the detail to outline it (:func:`_second_look`);
- else, and when the mask is empty or unsure, the whole image (``"none"``, with a note).

:class:`Framing` reports the square the network saw, in pixels of the full-resolution upright
image, and where it came from. With ``autocrop=False`` a crop box is used as it is (padded to
a square), as before.

Cost (the daemon preprocesses untrusted images). Steps 2-5 never build the padded square:
Pillow's resize shrinks a large square by an integer factor ``f`` (block averages) before its
Lanczos pass, so :func:`preprocess` computes those block averages directly from the image,
tile by tile (about 1 megapixel each), stores a run of identical padding blocks once, and
resizes the small reduced square (at most about ``6 * size`` pixels a side). The result is
the same as padding the whole square first (exactly, in the tests), but the work is bounded by
the decoded image plus one tile, whatever the padding or crop box. Limits, checked before any
pixel is decoded: at most ``MAX_PIXELS`` (40 000 000) pixels, and an aspect ratio of at most
``MAX_ASPECT`` (64:1; beyond it the short side would be thinner than one of the network's 64
input pixels). Peak memory per image, over what the caller already holds (the encoded bytes or
the array): at most ``MEMORY_BUDGET_MB`` (256 MB), set by a 40-megapixel image decoded at 4 bytes
a pixel (160 MB: Pillow keeps RGB, RGBA, CMYK and 32-bit images at 4 bytes a pixel) plus one
tile's conversions (about 30 MB); tests/test_preprocess_memory.py measures it. A uint8 array is
read tile by tile in place (no full-size copy).
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SIZE = 64  # the network's input side, in pixels
MAX_PIXELS = 40_000_000  # cap on width * height, checked before decoding
MAX_ASPECT = 64  # cap on longer side / shorter side, checked before decoding
MEMORY_BUDGET_MB = 256  # peak memory of one preprocess() call for the largest admitted image
# Median share of the frame that the object's longer side spans in the R2N2-protocol renders
# (measured on the procedural data set: 5/50/95 % = 0.45/0.64/0.86).
OBJECT_FRACTION = 0.64
# The range of framings that framing keeps (p10, p90 of the longer side's share of the frame)
# and the largest offset of the box centre from the frame's centre it keeps (p90, the larger
# axis, as a share of the side): the source-training synthetic renders by their alpha, measured by
# benchmarks/framing_range.py (6 840 renders: share p10/p50/p90 = 0.469/0.641/0.812).
FRAMING_RANGE = (0.469, 0.812)
FRAMING_OFFSET = 0.078

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray
Box = tuple[float, float, float, float]
# A foreground model: (S, S, 3) uint8 RGB -> (S, S) float foreground probabilities in [0, 1].
Segmenter = Callable[[np.ndarray], np.ndarray]

FRAMING_SOURCES = ("user", "alpha", "mask", "none")
ALPHA_OPAQUE = 128  # alpha at or above this is the object (soft edges and shadows are not)
MASK_SIZE = 128  # the square side the segmenter sees the whole (padded) photo at
MASK_MIN_AREA = 0.002  # a mask covering less of the image is empty
MASK_MIN_CONFIDENCE = 0.6  # mean |2p - 1| over the image below this: the model is unsure
# Probability at or above which a pixel is the object's: above 0.5, since the model leaks
# into busy backgrounds at moderate probabilities (chosen on source_val composites,
# docs/framing.md).
MASK_THRESHOLD = 0.6
MASK_KEEP_FRACTION = 0.2  # mask regions scoring below this share of the best are not the object
# Photographers centre their subject: a mask region's area is weighted by a Gaussian of its
# centroid's distance from the view's centre, sigma in shares of the view's side (chosen on
# source_val composites, docs/framing.md).
MASK_CENTRE_SIGMA = 0.15

_WHITE = 255
DECODE_SCALE = "decode_scale"  # img.info key set by a reduced JPEG decode
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_REDUCING_GAP = 3.0  # as Pillow's resize(reducing_gap=3.0): shrink by int(side / size / 3) first
_TILE_SIDE = 1024  # pixels a side of the tiles the image is converted and reduced in
_ORIENTATIONS = {  # EXIF orientation -> the transpose that displays the image (as ImageOps)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(ValueError):
    """An input that cannot be turned into a network image (with a message saying why).

    ``code`` is the daemon's error code for it: ``image_too_large`` (over the pixel cap),
    ``bad_option`` (a bad crop box) or ``bad_image`` (anything else, an aspect ratio beyond
    ``MAX_ASPECT`` included). The message texts keep the words the daemon has matched so far:
    "too many pixels" for ``image_too_large``, a leading "crop box" for ``bad_option``.
    """

    def __init__(self, message: str, code: str = "bad_image"):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS,
               apply_exif: bool = True) -> Image.Image:
    """Decode ``source`` into a loaded PIL image (any mode), EXIF orientation applied.

    ``source``: a file path, encoded bytes (PNG, JPEG, WebP, ... anything Pillow reads), a PIL
    image, or a uint8 array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``.
    Raises :class:`ImageError` for unreadable, empty or undecodable input, more than
    ``max_pixels`` pixels or an aspect ratio beyond ``MAX_ASPECT`` (both checked from the
    header, before any pixel is decoded), or an array of the wrong dtype or shape.
    ``apply_exif=False`` keeps the stored pixel order (for data sets whose annotations refer
    to it). The whole image is in memory: :func:`preprocess` reads big images more cheaply.
    """
    if isinstance(source, np.ndarray):
        img = _from_array(source, max_pixels)
    else:
        img = _opened(source, max_pixels)
    if apply_exif:
        img = _exif_transposed(img)
    return img


def _opened(source: ImageSource, max_pixels: int) -> Image.Image:
    """A decoded PIL image from anything but an array, its stored pixel order kept."""
    if isinstance(source, Image.Image):
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
        raise ImageError(f"{what}: too many pixels ({exc})", "image_too_large") from exc
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
                         "downscale the image first", "image_too_large")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageError(f"{what}: aspect ratio of {w}x{h} is beyond {MAX_ASPECT}:1; "
                         "crop the image to the object first")


def _checked_array(arr: np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A valid image array as ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (a view, no copy)."""
    if arr.dtype != np.uint8:
        raise ImageError(f"image array must be uint8 (0..255), got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"empty image array {arr.shape}")
    _check_pixels((arr.shape[1], arr.shape[0]), max_pixels, "image")
    return arr


def _array_image(arr: np.ndarray) -> Image.Image:
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _from_array(arr: np.ndarray, max_pixels: int = MAX_PIXELS) -> Image.Image:
    return _array_image(_checked_array(arr, max_pixels))


def _orientation(img: Image.Image) -> Image.Transpose | None:
    """The transpose that displays ``img`` (its EXIF orientation), as ImageOps.exif_transpose."""
    try:
        return _ORIENTATIONS.get(img.getexif().get(0x0112, 1))
    except Exception as exc:  # a malformed EXIF block must not reject a good image
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return None


def _exif_transposed(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception as exc:  # a malformed EXIF block must not reject a good image
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return img


class _Pixels:
    """A decoded image read region by region, in its displayed (EXIF-oriented) frame, so that
    neither a transposed nor a converted full-size copy is ever made."""

    def __init__(self, img: Image.Image | None = None, arr: np.ndarray | None = None,
                 method: Image.Transpose | None = None):
        self.img, self.arr, self.method = img, arr, method
        if arr is not None:
            self.size = (arr.shape[1], arr.shape[0])
        else:
            w, h = img.size
            swap = method in (Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE,
                              Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270)
            self.size = (h, w) if swap else (w, h)
        self.info = {} if img is None else img.info

    def region(self, x0: int, y0: int, x1: int, y1: int) -> Image.Image:
        """The displayed pixels ``[x0, x1) x [y0, y1)`` (inside the image) as a PIL image."""
        if self.arr is not None:
            return _array_image(self.arr[y0:y1, x0:x1])
        if self.method is None:
            return self.img.crop((x0, y0, x1, y1))
        return self.img.crop(_stored_box(self.method, self.img.size, (x0, y0, x1, y1))
                             ).transpose(self.method)


def _stored_box(method: Image.Transpose, stored: tuple[int, int],
                box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The box of the stored image that ``method`` turns into the displayed ``box``."""
    sw, sh = stored
    x0, y0, x1, y1 = box
    t = Image.Transpose
    return {
        t.FLIP_LEFT_RIGHT: (sw - x1, y0, sw - x0, y1),
        t.FLIP_TOP_BOTTOM: (x0, sh - y1, x1, sh - y0),
        t.ROTATE_180: (sw - x1, sh - y1, sw - x0, sh - y0),
        t.TRANSPOSE: (y0, x0, y1, x1),
        t.ROTATE_270: (y0, sh - x1, y1, sh - x0),  # 90 degrees clockwise
        t.ROTATE_90: (sw - y1, x0, sw - y0, x1),  # 90 degrees counter-clockwise
        t.TRANSVERSE: (sw - y1, sh - x1, sw - y0, sh - x0),
    }[method]


def _pixels(source: ImageSource, max_pixels: int) -> _Pixels:
    """``source`` checked and decoded (as :func:`load_image`) but not transposed or copied."""
    if isinstance(source, np.ndarray):
        return _Pixels(arr=_checked_array(source, max_pixels))
    img = _opened(source, max_pixels)
    return _Pixels(img=img, method=_orientation(img))


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
        rgba = np.asarray(img.convert("RGBA"))
    except (ValueError, OSError) as exc:
        raise ImageError(f"cannot convert image mode {img.mode!r} to RGB: {exc}") from exc
    # rgb * a + 255 * (1 - a) for a = alpha / 255, rounded, in integers: the sum times 255 is
    # 65025 - alpha * (255 - rgb), which fits uint16 and is never a tie (x.5) before dividing.
    alpha = rgba[:, :, 3:].astype(np.uint16)
    out = rgba[:, :, :3] * alpha
    alpha ^= np.uint16(255)  # 255 - alpha
    alpha *= np.uint16(255)
    alpha += np.uint16(127)  # rounding
    out += alpha
    out += (out >> 8) + np.uint16(1)  # (x + 1 + (x >> 8)) >> 8 == x // 255 for x < 65535
    out >>= 8
    return out.astype(np.uint8), True


def _rgb_pixels(img: Image.Image) -> np.ndarray:
    return to_rgb(img)[0]


def _alpha_pixels(img: Image.Image) -> np.ndarray:
    """The alpha channel three times (so it is resampled exactly as RGB pixels are)."""
    return np.asarray(_eight_bit(img).convert("RGBA"))[:, :, 3:].repeat(3, axis=2)


# ---------------------------------------------------------------------------------------------
# Geometry: crop, pad to square, resize
# ---------------------------------------------------------------------------------------------

def _crop_box(crop: Sequence[float], width: int, height: int, max_pixels: int = MAX_PIXELS,
              scale: float = 1.0) -> tuple[int, int, int, int]:
    """Validate ``(x, y, w, h)`` and round it to whole pixels ``(x0, y0, x1, y1)`` of the
    decoded image (``scale`` full-image pixels per decoded pixel). The box may reach past the
    border (padding), but its square may hold at most ``4 * max_pixels`` pixels."""
    def bad(message: str) -> ImageError:
        return ImageError(message, "bad_option")
    try:
        x, y, w, h = (float(v) / scale for v in crop)
    except (TypeError, ValueError) as exc:
        raise bad(f"crop box must be four numbers (x, y, w, h), got {crop!r}") from exc
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise bad(f"crop box must be finite, got {crop!r}")
    x0, y0 = round(x), round(y)
    x1, y1 = round(x + w), round(y + h)
    if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
        raise bad(f"crop box {crop!r} has a non-positive size (at least one pixel)")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise bad(f"crop box {crop!r} lies outside the {round(width * scale)}x"
                  f"{round(height * scale)} image")
    if max(x1 - x0, y1 - y0) ** 2 > 4 * max_pixels:
        raise bad(f"crop box {crop!r} is too large: its square would hold more than "
                  f"{4 * max_pixels} pixels")
    return x0, y0, x1, y1


def _padded_square(box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The square ``box`` (x0, y0, x1, y1) is padded to, content centred: its origin and
    side ``(ox, oy, side)``."""
    bx0, by0, bx1, by1 = box
    side = max(bx1 - bx0, by1 - by0)
    return bx0 - (side - (bx1 - bx0)) // 2, by0 - (side - (by1 - by0)) // 2, side


def _axis_plan(side: int, f: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis of the padded square (``side`` pixels, content at ``[lo, hi)``) reduced by
    ``f``: the square's pixel coordinates to read, and how many times each reduced block of
    them repeats. Runs of whole blocks of pure padding are identical, so one stands for all."""
    n = -(-side // f)  # blocks, the last one possibly partial
    e0, e1 = lo // f * f, min(-(-hi // f) * f, side)  # the blocks the content touches
    ranges, reps = [], []
    if e0:
        ranges.append(np.arange(0, f))
        reps.append(e0 // f)
    ranges.append(np.arange(e0, e1))
    reps += [1] * -(-(e1 - e0) // f)
    if e1 < side:  # e1 is then a multiple of f
        last = (n - 1) * f
        full = n - e1 // f - (side - last < f)  # whole blocks after the content
        if full:
            ranges.append(np.arange(e1, e1 + f))
            reps.append(full)
        if side - last < f:
            ranges.append(np.arange(last, side))
            reps.append(1)
    return np.concatenate(ranges), np.array(reps)


def _network_pixels(pixels: _Pixels, box: tuple[int, int, int, int], size: int,
                    fill: int | None, convert: Callable[[Image.Image], np.ndarray]
                    ) -> np.ndarray:
    """``box`` (x0, y0, x1, y1; it may reach past the border) padded to a square and resized
    to ``(size, size, 3)`` uint8, as Pillow's ``resize(LANCZOS, reducing_gap=3.0)`` of the
    padded square, without making the square. The part of the square outside the image is
    ``fill`` or, with ``None``, the nearest edge pixel; ``convert`` turns a region of the image
    into uint8 ``(h, w, 3)`` pixels."""
    width, height = pixels.size
    bx0, by0, bx1, by1 = box
    ox, oy, side = _padded_square(box)
    ix0, iy0, ix1, iy1 = max(bx0, 0), max(by0, 0), min(bx1, width), min(by1, height)
    f = int(side / size / _REDUCING_GAP) or 1
    xs, x_reps = _axis_plan(side, f, ix0 - ox, ix1 - ox)
    ys, y_reps = _axis_plan(side, f, iy0 - oy, iy1 - oy)
    xs, ys = xs + ox, ys + oy  # image coordinates
    step = f * max(1, _TILE_SIDE // f)  # tiles of whole blocks: reducing them tile by tile is
    rows = []                           # the same as reducing the whole square
    for r0 in range(0, len(ys), step):
        tiles = [_reduced_tile(pixels, ys[r0:r0 + step], xs[c0:c0 + step],
                               (ix0, iy0, ix1, iy1), f, fill, convert)
                 for c0 in range(0, len(xs), step)]
        rows.append(np.concatenate(tiles, axis=1))
    reduced = np.repeat(np.repeat(np.concatenate(rows, axis=0), y_reps, axis=0), x_reps, axis=1)
    if side == size:
        return reduced
    img = Image.fromarray(reduced, mode="RGB")
    if f == 1:
        return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))
    # what Pillow's resize does after its reduce step (box in reduced pixels)
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS,
                                 box=(0, 0, side / f, side / f)))


def _reduced_tile(pixels: _Pixels, ys: np.ndarray, xs: np.ndarray,
                  inside: tuple[int, int, int, int], f: int, fill: int | None,
                  convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """Square pixels at image coordinates ``ys`` x ``xs`` (``inside`` the image box or
    padding), reduced by ``f``."""
    ix0, iy0, ix1, iy1 = inside
    in_y, in_x = (ys >= iy0) & (ys < iy1), (xs >= ix0) & (xs < ix1)
    if fill is not None and not (in_y.any() and in_x.any()):
        tile = np.full((len(ys), len(xs), 3), fill, np.uint8)
    else:
        cy, cx = np.clip(ys, iy0, iy1 - 1), np.clip(xs, ix0, ix1 - 1)  # edge replication
        y0, x0 = int(cy[0]), int(cx[0])  # coordinates only grow: the region is contiguous
        tile = convert(pixels.region(x0, y0, int(cx[-1]) + 1, int(cy[-1]) + 1))
        if len(cy) != tile.shape[0]:  # padding rows repeat an edge row
            tile = _edge_rows(tile, cy - y0, axis=0)
        if len(cx) != tile.shape[1]:
            tile = _edge_rows(tile, cx - x0, axis=1)
        if fill is not None and not (in_y.all() and in_x.all()):
            tile = np.array(tile)  # writable
            tile[~in_y] = fill
            tile[:, ~in_x] = fill
    if f == 1:
        return tile
    return np.asarray(Image.fromarray(tile, mode="RGB").reduce(f))


def _edge_rows(tile: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``tile.take(index, axis)`` for an ``index`` that repeats the first and last row around
    all rows in order (padding by edge replication), as copies of whole rows: a gather along
    the column axis of a megapixel tile costs 7x more."""
    n = tile.shape[axis]
    before = int(np.argmax(index == n - 1)) - (n - 1)  # where the last row first appears
    after = len(index) - before - n
    expected = np.clip(np.arange(-before, n + after), 0, n - 1)
    if before < 0 or after < 0 or not np.array_equal(index, expected):
        return tile.take(index, axis=axis)
    first = tile[(slice(None),) * axis + (slice(0, 1),)]
    last = tile[(slice(None),) * axis + (slice(n - 1, n),)]
    return np.concatenate([np.repeat(first, before, axis=axis), tile,
                           np.repeat(last, after, axis=axis)], axis=axis)


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
# Framing: where the object is
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Framing:
    """The square ``box`` ``(x, y, w, h)`` the network saw, in pixels of the full-resolution
    upright image (it may reach past the border: padding), and where it came from (one of
    :data:`FRAMING_SOURCES`), with a note when framing fell back to the whole image."""

    box: Box
    source: str
    note: str = ""

    def to_json(self) -> dict:
        return {"crop": [round(v, 2) for v in self.box], "source": self.source,
                "note": self.note}


def _alpha_bbox(pixels: _Pixels) -> tuple[tuple[int, int, int, int] | None, bool]:
    """The box ``(x0, y0, x1, y1)`` of the opaque pixels (None: none), and whether any pixel
    is transparent; read tile by tile."""
    width, height = pixels.size
    rows, cols, transparent = [], [], False
    for y0 in range(0, height, _TILE_SIDE):
        for x0 in range(0, width, _TILE_SIDE):
            tile = pixels.region(x0, y0, min(x0 + _TILE_SIDE, width), min(y0 + _TILE_SIDE, height))
            alpha = np.asarray(_eight_bit(tile).convert("RGBA"))[:, :, 3]
            opaque = alpha >= ALPHA_OPAQUE
            transparent = transparent or not opaque.all()
            ys, xs = np.flatnonzero(opaque.any(1)), np.flatnonzero(opaque.any(0))
            if len(ys):
                rows += [y0 + ys[0], y0 + ys[-1] + 1]
                cols += [x0 + xs[0], x0 + xs[-1] + 1]
    if not rows:
        return None, transparent
    return (min(cols), min(rows), max(cols), max(rows)), transparent


@dataclass(frozen=True)
class MaskView:
    """The segmenter's view of a whole image: ``rgb`` ``(MASK_SIZE, MASK_SIZE, 3)`` uint8, the
    image padded to a square (edge pixels replicated) and resized, and where it lies: image
    pixel ``x = mask_x * scale - ox`` (likewise y)."""

    rgb: np.ndarray
    scale: float  # image pixels per mask pixel
    ox: float  # image pixels of padding left of the image
    oy: float


def _mask_view(pixels: _Pixels) -> MaskView:
    """The whole image as the segmenter sees it, made cheaply: block averages by ``f`` (the
    largest factor that keeps at least ``MASK_SIZE`` pixels a side) read tile by tile, padded
    and resized bilinearly. The segmenter needs the object's shape, not Lanczos-exact pixels,
    and this is ~10x cheaper than :func:`_network_pixels` on a megapixel photo."""
    width, height = pixels.size
    f = max(1, max(width, height) // MASK_SIZE)
    img = pixels.img
    if img is not None and pixels.method is None and img.mode == "RGB":
        reduced = np.asarray(img.reduce(f) if f > 1 else img)  # the common case: a photo
    else:
        step = f * max(1, _TILE_SIDE // f)  # tiles of whole blocks
        reduced = np.concatenate([
            np.concatenate([_reduced_rgb(pixels.region(x0, y0, min(x0 + step, width),
                                                       min(y0 + step, height)), f)
                            for x0 in range(0, width, step)], axis=1)
            for y0 in range(0, height, step)], axis=0)
    rh, rw = reduced.shape[:2]
    side = max(rw, rh)
    px, py = (side - rw) // 2, (side - rh) // 2
    square = np.pad(reduced, ((py, side - rh - py), (px, side - rw - px), (0, 0)), mode="edge")
    if side != MASK_SIZE:
        square = np.asarray(Image.fromarray(square, mode="RGB").resize(
            (MASK_SIZE, MASK_SIZE), Image.Resampling.BILINEAR))
    k = side / MASK_SIZE * f  # image pixels per mask pixel
    return MaskView(square, k, px * f, py * f)


def _reduced_rgb(region: Image.Image, f: int) -> np.ndarray:
    """A region as RGB (the segmenter only sees opaque images: any alpha is opaque), reduced."""
    rgb = _eight_bit(region).convert("RGB")
    return np.asarray(rgb.reduce(f) if f > 1 else rgb)


def _segment(pixels: _Pixels, segmenter: Segmenter) -> tuple[np.ndarray, MaskView]:
    """The segmenter's ``(MASK_SIZE, MASK_SIZE)`` probabilities for the whole image and the
    view they are of."""
    view = _mask_view(pixels)
    return _probabilities(segmenter, view.rgb), view


def _probabilities(segmenter: Segmenter, rgb: np.ndarray) -> np.ndarray:
    """The segmenter's ``(MASK_SIZE, MASK_SIZE)`` float32 probabilities for ``rgb``."""
    prob = np.asarray(segmenter(rgb), dtype=np.float32)
    if prob.shape != (MASK_SIZE, MASK_SIZE):
        raise ValueError(f"the segmenter returned shape {prob.shape}, expected "
                         f"{(MASK_SIZE, MASK_SIZE)}")
    return prob


def object_mask(prob: np.ndarray) -> np.ndarray:
    """The object in the segmenter's probabilities: pixels at :data:`MASK_THRESHOLD` or more,
    in the connected regions that score at least :data:`MASK_KEEP_FRACTION` of the best, a
    region's score being its area weighted by how near the view's centre it lies
    (:data:`MASK_CENTRE_SIGMA`). A stray blob of busy background, or a salient thing behind
    the object near the border, would otherwise take or stretch the box."""
    from scipy import ndimage

    mask = prob >= MASK_THRESHOLD
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    index = np.arange(1, n + 1)
    areas = np.bincount(labels.ravel())[1:]
    cy, cx = np.array(ndimage.center_of_mass(mask, labels, index)).T
    height, width = prob.shape
    d2 = ((cy + 0.5) / height - 0.5) ** 2 + ((cx + 0.5) / width - 0.5) ** 2
    score = areas * np.exp(-d2 / (2 * MASK_CENTRE_SIGMA ** 2))
    return np.isin(labels, index[score >= MASK_KEEP_FRACTION * score.max()])


def _mask_bbox(pixels: _Pixels, prob: np.ndarray, view: MaskView,
               shown: tuple[float, float, float, float] | None = None
               ) -> tuple[Box | None, str]:
    """The box of the object in ``prob`` (the segmenter's output for ``view``) in image pixels
    (None, and why, when the mask is empty or unsure). Only the part of the view that shows
    the image counts: ``shown`` (x0, y0, x1, y1, in view pixels times ``view.scale``; default:
    the whole image inside its padding)."""
    width, height = pixels.size
    scale, ox, oy = view.scale, view.ox, view.oy
    sx0, sy0, sx1, sy1 = shown or (ox, oy, ox + width, oy + height)
    cx0, cy0 = max(0, int(sx0 / scale)), max(0, int(sy0 / scale))
    cx1 = min(MASK_SIZE, max(cx0 + 1, math.ceil(sx1 / scale)))
    cy1 = min(MASK_SIZE, max(cy0 + 1, math.ceil(sy1 / scale)))
    content = prob[cy0:cy1, cx0:cx1]
    if float(np.abs(2 * content - 1).mean()) < MASK_MIN_CONFIDENCE:
        return None, "the foreground mask is unsure: the whole image is used"
    if (content >= MASK_THRESHOLD).mean() < MASK_MIN_AREA:
        return None, "no foreground found: the whole image is used"
    mask = object_mask(content)
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    x0, x1 = (cx0 + xs[0]) * scale - ox, (cx0 + xs[-1] + 1) * scale - ox
    y0, y1 = (cy0 + ys[0]) * scale - oy, (cy0 + ys[-1] + 1) * scale - oy
    return (max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height)), ""


def _second_look(pixels: _Pixels, segmenter: Segmenter, bbox: Box) -> Box | None:
    """The object's box (decoded pixels, x0, y0, x1, y1) from the segmenter's view of
    ``bbox`` at the renders' median framing, for an object too small in the whole image's view
    to be outlined well (None: that view's mask is empty or unsure)."""
    x, y, side, _ = square_box_around(bbox)
    x0, y0 = math.floor(x), math.floor(y)
    side = max(1, math.ceil(side))
    rgb = _network_pixels(pixels, (x0, y0, x0 + side, y0 + side), MASK_SIZE, None, _rgb_pixels)
    prob = _probabilities(segmenter, rgb)
    view = MaskView(rgb, side / MASK_SIZE, -float(x0), -float(y0))
    width, height = pixels.size
    box, _ = _mask_bbox(pixels, prob, view, (-x0, -y0, width - x0, height - y0))
    return box


def _object_box(pixels: _Pixels, segmenter: Segmenter
                ) -> tuple[np.ndarray, Box | None, str]:
    """The segmenter's whole-image probabilities and the object's box from them (decoded
    pixels; None and why when the mask is empty or unsure), looked at again closer when the
    object is smaller than the renders ever frame it (:func:`_second_look`)."""
    prob, view = _segment(pixels, segmenter)
    box, why = _mask_bbox(pixels, prob, view)
    if box is not None and object_framing(box, pixels.size)[0] < FRAMING_RANGE[0]:
        box = _second_look(pixels, segmenter, box) or box
    return prob, box, why


def foreground_box(source: ImageSource, segmenter: Segmenter,
                   max_pixels: int = MAX_PIXELS) -> tuple[Box | None, str]:
    """The box ``(x0, y0, x1, y1)`` of ``segmenter``'s foreground in ``source`` (full-resolution
    upright pixels), as framing finds it; None and why when the mask is empty or unsure."""
    return foreground_mask(source, segmenter, max_pixels)[1:]


def foreground_mask(source: ImageSource, segmenter: Segmenter, max_pixels: int = MAX_PIXELS
                    ) -> tuple[np.ndarray, Box | None, str]:
    """:func:`foreground_box` and the probabilities it came from: the segmenter's
    ``(MASK_SIZE, MASK_SIZE)`` view of the whole image padded to a square."""
    pixels = _pixels(source, max_pixels)
    prob, box, why = _object_box(pixels, segmenter)
    scale = pixels.info.get(DECODE_SCALE, 1.0)
    return prob, (None if box is None else tuple(v * scale for v in box)), why


def object_framing(bbox: Sequence[float], image_size: tuple[float, float]
                   ) -> tuple[float, float]:
    """How ``bbox`` = ``(x0, y0, x1, y1)`` is framed in an image of ``image_size`` padded to a
    square (side ``max(width, height)``): the share of the side its longer side spans, and
    the offset of its centre from the square's centre (the larger axis, as a share of the
    side). benchmarks/framing_range.py measures :data:`FRAMING_RANGE` and
    :data:`FRAMING_OFFSET` with it."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    width, height = (float(v) for v in image_size)
    side = max(width, height)
    offset = max(abs(x0 + x1 - width), abs(y0 + y1 - height)) / 2 / side
    return max(x1 - x0, y1 - y0) / side, offset


def range_framed_box(bbox: Sequence[float], image_size: tuple[float, float],
                     share_range: tuple[float, float] = FRAMING_RANGE,
                     max_offset: float = FRAMING_OFFSET) -> Box:
    """The square crop box ``(x, y, w, h)`` that frames the object ``bbox`` =
    ``(x0, y0, x1, y1)`` as the renders do: the image's own padded square (side
    ``max(width, height)``, centred) when the object is framed within the renders' range there
    (its longer side spans a share within ``share_range`` of the side, its centre at most
    ``max_offset`` of the side from the square's centre on either axis), else the renders'
    median framing around it (:func:`square_box_around`)."""
    share, offset = object_framing(bbox, image_size)
    if share_range[0] <= share <= share_range[1] and offset <= max_offset:
        width, height = (float(v) for v in image_size)
        side = max(width, height)
        return (width - side) / 2, (height - side) / 2, side, side
    return square_box_around(bbox)


def _framed_box(bbox: Sequence[float], image_size: tuple[float, float], max_pixels: int,
                scale: float) -> Box:
    """The trained framing around ``bbox`` in an image of ``image_size`` (full-resolution
    pixels), its side capped so that its square stays within the crop limit of
    :func:`_crop_box` (``scale``: full-resolution pixels per decoded pixel), e.g. for an
    object spanning a 64:1 image."""
    x, y, w, h = range_framed_box(bbox, image_size)
    cap = (math.sqrt(4 * max_pixels) - 2) * scale
    if w > cap:
        x, y, w, h = x + (w - cap) / 2, y + (h - cap) / 2, cap, cap
    return x, y, w, h


def _frame(pixels: _Pixels, had_alpha: bool, crop: Sequence[float] | None, autocrop: bool,
           segmenter: Segmenter | None, max_pixels: int) -> tuple[Box | None, str, str]:
    """The crop box to use (full-resolution pixels; None: the whole image), its source and a
    note."""
    scale = pixels.info.get(DECODE_SCALE, 1.0)
    width, height = pixels.size
    full = (width * scale, height * scale)
    if crop is not None:
        if not autocrop:
            return tuple(crop), "user", ""
        x0, y0, x1, y1 = _crop_box(crop, width, height, max_pixels, scale)  # validated
        return _framed_box((x0 * scale, y0 * scale, x1 * scale, y1 * scale), full,
                           max_pixels, scale), "user", ""
    if not autocrop:
        return None, "none", ""
    note = ""
    if had_alpha:
        bbox, transparent = _alpha_bbox(pixels)
        if bbox is None:
            return None, "none", "the image is transparent everywhere: the whole image is used"
        if transparent:
            return _framed_box([v * scale for v in bbox], full, max_pixels, scale), "alpha", ""
        note = "the alpha channel is opaque everywhere"
    if segmenter is None:
        return None, "none", (note + "; " if note else "") + "no foreground model"
    _, bbox, why = _object_box(pixels, segmenter)
    if bbox is None:
        return None, "none", why
    return _framed_box([v * scale for v in bbox], full, max_pixels, scale), "mask", ""


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------

def preprocess(source: ImageSource, size: int = IMAGE_SIZE, crop: Sequence[float] | None = None,
               max_pixels: int = MAX_PIXELS, autocrop: bool = False,
               segmenter: Segmenter | None = None) -> np.ndarray:
    """The network input for one image: float32 ``(3, size, size)`` in [-1, 1].

    See the module docstring for the steps, the framing and their cost. ``crop`` is
    ``(x, y, w, h)`` in pixels of the (EXIF-oriented) image; raises :class:`ImageError` for
    bad input or a bad crop box.
    """
    return preprocess_framed(source, size, crop, max_pixels, autocrop, segmenter)[0]


def preprocess_framed(source: ImageSource, size: int = IMAGE_SIZE,
                      crop: Sequence[float] | None = None, max_pixels: int = MAX_PIXELS,
                      autocrop: bool = True, segmenter: Segmenter | None = None
                      ) -> tuple[np.ndarray, Framing]:
    """:func:`preprocess`, framing on by default, and the :class:`Framing` it used."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    pixels = _pixels(source, max_pixels)
    box, framing, had_alpha = _framed(pixels, crop, autocrop, segmenter, max_pixels)
    fill = _WHITE if had_alpha else None  # transparency was composited over white
    rgb = _network_pixels(pixels, box, size, fill, _rgb_pixels)  # (size, size, 3) uint8
    image = (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1).copy()
    return image, framing


def framing_of(source: ImageSource, crop: Sequence[float] | None = None,
               segmenter: Segmenter | None = None, max_pixels: int = MAX_PIXELS) -> Framing:
    """The :class:`Framing` that :func:`preprocess_framed` (framing on) would use, without
    making the network input (training jitters the square before using it as a crop)."""
    return _framed(_pixels(source, max_pixels), crop, True, segmenter, max_pixels)[1]


def _framed(pixels: _Pixels, crop: Sequence[float] | None, autocrop: bool,
            segmenter: Segmenter | None, max_pixels: int
            ) -> tuple[tuple[int, int, int, int], Framing, bool]:
    """The box to read (decoded pixels, x0, y0, x1, y1), the :class:`Framing` it makes and
    whether the image has transparency (the mode decides, not the pixels)."""
    width, height = pixels.size
    _, had_alpha = to_rgb(pixels.region(0, 0, 1, 1))
    chosen, source_name, note = _frame(pixels, had_alpha, crop, autocrop, segmenter,
                                       max_pixels)
    scale = pixels.info.get(DECODE_SCALE, 1.0)
    box = (0, 0, width, height)
    if chosen is not None:
        box = _crop_box(chosen, width, height, max_pixels, scale)
    ox, oy, side = _padded_square(box)
    square = tuple(float(v * scale) for v in (ox, oy, side, side))
    return box, Framing(square, source_name, note), had_alpha


def alpha_mask(source: ImageSource, size: int = IMAGE_SIZE,
               crop: Sequence[float] | None = None) -> np.ndarray | None:
    """The alpha channel of ``source`` in the geometry :func:`preprocess` gives its pixels
    with the same ``crop`` (framing off: padded to a square, resized): ``(size, size)``
    float32 in [0, 1]; None without alpha."""
    pixels = _pixels(source, MAX_PIXELS)
    if not _has_alpha(_eight_bit(pixels.region(0, 0, 1, 1))):
        return None
    width, height = pixels.size
    box = (0, 0, width, height)
    if crop is not None:
        box = _crop_box(crop, width, height, MAX_PIXELS, pixels.info.get(DECODE_SCALE, 1.0))
    # padded with 0 (transparent), not white: the padding shows the background
    alpha = _network_pixels(pixels, box, size, 0, _alpha_pixels)
    return alpha[:, :, 0].astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Inverse of the normalization, for pictures: ``(3, S, S)`` in [-1, 1] -> ``(S, S, 3)``
    uint8. Accepts anything with ``__array__`` (a CPU torch tensor too)."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"expected a (3, S, S) image, got shape {arr.shape}")
    return np.clip(np.rint((arr.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
