"""EXIF orientation of encoded photos, and pixels turned the way the daemon sees them (no bpy).

Phones store a portrait photo as landscape pixels plus an EXIF ``Orientation`` tag. The daemon
applies the tag, as every photo viewer does; Blender does not. The add-on reads the tag itself
so that crop boxes and the aligned camera's background are in the frame the model saw.
"""

from __future__ import annotations

import struct

import numpy as np

ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of an encoded JPEG, PNG, WebP or TIFF (the formats whose tag
    the daemon's Pillow applies); 1 when it has none or it cannot be read (a malformed EXIF
    block must not stop a reconstruction)."""
    try:
        if data[:2] == b"\xff\xd8":
            tiff = _jpeg_exif(data)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            tiff = data  # a TIFF file is its own EXIF block
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            tiff = _webp_exif(data)
        else:
            tiff = _png_exif(data)
        orientation = _tiff_orientation(tiff) if tiff else 1
    except (struct.error, IndexError, ValueError):
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """``(width, height)`` of the image once ``orientation`` is applied."""
    return (height, width) if orientation >= 5 else (width, height)


def to_upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``(H, W, ...)`` pixels, top row first, as they look with ``orientation`` applied
    (the same result as Pillow's ``ImageOps.exif_transpose``)."""
    if orientation in (5, 6, 7, 8):
        pixels = np.swapaxes(pixels, 0, 1)  # the transpose; then a flip makes the rotation
    flip_rows = orientation in (3, 4, 7, 8)
    flip_cols = orientation in (2, 3, 6, 7)
    return pixels[::-1 if flip_rows else 1, ::-1 if flip_cols else 1]


def _jpeg_exif(data: bytes) -> bytes | None:
    """The TIFF block of a JPEG's APP1 ``Exif`` segment."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after these
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return segment[6:]
        pos += 2 + length
    return None


def _png_exif(data: bytes) -> bytes | None:
    """The TIFF block of a PNG's ``eXIf`` chunk (before or after the image data: Pillow reads
    both)."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"eXIf":
            return data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return None
        pos += 12 + length
    return None


def _webp_exif(data: bytes) -> bytes | None:
    """The TIFF block of a WebP's ``EXIF`` chunk (RIFF chunks are padded to even sizes)."""
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        if kind == b"EXIF":
            block = data[pos + 8:pos + 8 + length]
            return block[6:] if block.startswith(b"Exif\x00\x00") else block
        pos += 8 + length + (length & 1)
    return None


def _tiff_orientation(tiff: bytes) -> int:
    """The orientation entry of a TIFF header's first IFD."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", tiff[entry:entry + 4])
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT
            return struct.unpack(order + "H", tiff[entry + 8:entry + 10])[0]
    return 1
