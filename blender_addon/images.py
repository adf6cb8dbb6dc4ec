"""Reference images as plain data for the network thread (main thread only)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .orientation import exif_orientation, to_upright, upright_size


class ImageError(ValueError):
    """A reference image that cannot be sent (missing file, no pixels)."""


def image_payload(image: bpy.types.Image) -> bytes | np.ndarray:
    """The encoded file when there is one (the daemon decodes PNG/JPEG itself), else the
    pixels as a ``(H, W, 4)`` uint8 array, top row first."""
    if image.packed_file is not None and not image.is_dirty:
        return bytes(image.packed_file.data)
    if image.source == "FILE" and not image.is_dirty:
        path = Path(bpy.path.abspath(image.filepath, library=image.library))
        if path.is_file():
            return path.read_bytes()
        if not image.has_data:
            raise ImageError(f"the file of image {image.name!r} is missing: {path}")
    return _pixels(image)


def _pixels(image: bpy.types.Image) -> np.ndarray:
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageError(f"image {image.name!r} has no pixels")
    flat = np.empty(width * height * image.channels, np.float32)
    image.pixels.foreach_get(flat)
    pixels = flat.reshape(height, width, image.channels)[::-1]  # Blender stores bottom-up
    if image.is_float and image.colorspace_settings.name not in ("Non-Color", "sRGB"):
        # Float buffers hold linear light; the model saw sRGB-encoded photos.
        rgb = np.clip(pixels[..., :3], 0.0, 1.0)
        pixels = pixels.copy()
        pixels[..., :3] = np.where(rgb <= 0.0031308, 12.92 * rgb,
                                   1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    if image.channels == 3:
        pixels = np.concatenate([pixels, np.ones_like(pixels[..., :1])], axis=-1)
    elif image.channels != 4:
        raise ImageError(f"image {image.name!r} has {image.channels} channels; expected 3 or 4")
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def payload_orientation(payload: bytes | np.ndarray) -> int:
    """How the daemon will turn ``payload``: its EXIF orientation (pixels are sent upright)."""
    return exif_orientation(payload) if isinstance(payload, bytes) else 1


def crop_box(image: bpy.types.Image, edges, orientation: int = 1) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` in pixels from (left, top, right, bottom) fractions of the image as
    the daemon sees it (``orientation`` applied, like any photo viewer shows it)."""
    width, height = upright_size(*image.size, orientation)
    left, top, right, bottom = (float(v) for v in edges)
    if right <= left or bottom <= top:
        raise ImageError(f"the crop of {image.name!r} is empty: right must exceed left and "
                         "bottom must exceed top")
    x, y = int(round(left * width)), int(round(top * height))
    w = max(1, int(round(right * width)) - x)
    h = max(1, int(round(bottom * height)) - y)
    return x, y, w, h


def _cut(pixels: np.ndarray, crop) -> np.ndarray:
    """``pixels[y:y+h, x:x+w]`` of ``(H, W, 4)`` uint8, padded where the box leaves them."""
    height, width = pixels.shape[:2]
    x, y, w, h = crop
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = max(x0 + 1, int(round(x + w))), max(y0 + 1, int(round(y + h)))
    # the box clipped to the image (one pixel at least: the edge the padding repeats)
    cx0, cy0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    cx1, cy1 = max(min(x1, width), cx0 + 1), max(min(y1, height), cy0 + 1)
    top, bottom = max(0, cy0 - y0), max(0, y1 - cy1)
    left, right = max(0, cx0 - x0), max(0, x1 - cx1)
    out = np.pad(pixels[cy0:cy1, cx0:cx1], ((top, bottom), (left, right), (0, 0)), mode="edge")
    if (pixels[..., 3] < 255).any():  # a cut-out: the padding is transparent
        out[:top, :, 3] = 0
        out[out.shape[0] - bottom:, :, 3] = 0
        out[:, :left, 3] = 0
        out[:, out.shape[1] - right:, 3] = 0
    return out


def scene_images(context) -> list[bpy.types.Image]:
    """Images the user is looking at: selected image empties (reference images) and the
    images shown in open image editors."""
    found: list[bpy.types.Image] = []
    for obj in context.selected_objects or ():
        if obj.type == "EMPTY" and obj.empty_display_type == "IMAGE" and obj.data is not None:
            found.append(obj.data)
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen else ():
        if area.type == "IMAGE_EDITOR":
            image = area.spaces.active.image
            if image is not None:
                found.append(image)
    return list(dict.fromkeys(found))  # unique, in order


def model_view(image: bpy.types.Image, orientation: int = 1,
               crop: tuple[float, float, float, float] | None = None) -> bpy.types.Image:
    """``image`` as the model saw it, for the aligned camera's background: turned by its
    EXIF ``orientation`` and cut to ``crop`` (x, y, w, h; the reply's framing may reach past
    the border, where the daemon padded: opaque photos by their edge pixels, cut-outs by
    transparency, as here). The image itself when neither applies; otherwise a new packed
    image (saved with the .blend file)."""
    if orientation == 1 and crop is None:
        return image
    pixels = to_upright(_pixels(image), orientation)
    if crop is not None:
        pixels = _cut(pixels, crop)
    height, width = pixels.shape[:2]
    view = bpy.data.images.new(f"{image.name} (model view)", width, height, alpha=True)
    flat = np.ascontiguousarray(pixels[::-1], dtype=np.float32) / 255.0  # Blender: bottom-up
    view.pixels.foreach_set(flat.ravel())
    view.pack()
    return view
