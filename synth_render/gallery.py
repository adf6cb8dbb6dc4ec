"""Contact sheets: rows of images with labels, and quick previews of voxel grids (pure numpy/PIL).

Used by the demo and for the README's side-by-side of the two render styles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_path

CHECKER = (205, 205, 205), (235, 235, 235)


def on_checkerboard(img: Image.Image, cell: int = 8) -> Image.Image:
    """Composite an RGBA image over a light checkerboard so transparency is visible."""
    img = img.convert("RGBA")
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((xx // cell + yy // cell) % 2)[..., None] == 0, CHECKER[0], CHECKER[1])
    base = Image.fromarray(board.astype(np.uint8), "RGB").convert("RGBA")
    return Image.alpha_composite(base, img).convert("RGB")


def voxel_preview(grid: np.ndarray, size: int = 128, azimuth: float = 225.0,
                  elevation: float = 30.0) -> Image.Image:
    """Shaded orthographic view of a ``[x, y, z]`` (+Y up) occupancy grid.

    Each filled voxel is splatted as a square, drawn far to near (painter's algorithm); shade
    comes from depth, so the preview reads as a solid without a renderer.
    """
    grid = np.asarray(grid, dtype=bool)
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    pts = np.argwhere(grid).astype(float)
    if len(pts) == 0:
        return Image.fromarray(img)
    res = max(grid.shape)
    pts = (pts + 0.5) / res - 0.5  # voxel centres in the unit cube
    az, el = math.radians(azimuth), math.radians(elevation)
    # Camera basis: right, up, towards-viewer, for a camera on the +Y-up sphere.
    fwd = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    right = np.cross([0.0, 1.0, 0.0], fwd)
    right /= np.linalg.norm(right)
    up = np.cross(fwd, right)
    u, v, depth = pts @ right, pts @ up, pts @ fwd
    scale = size / 1.8  # the unit cube's diagonal fits in the frame
    px = (size / 2 + u * scale).astype(int)
    py = (size / 2 - v * scale).astype(int)
    half = max(1, int(math.ceil(scale / res * 0.75)))
    shade = 90 + 140 * (depth - depth.min()) / max(np.ptp(depth), 1e-6)
    for i in np.argsort(depth):  # far first, near overwrites
        y0, x0 = max(py[i] - half, 0), max(px[i] - half, 0)
        img[y0:py[i] + half, x0:px[i] + half] = (shade[i] * 0.55, shade[i] * 0.7, shade[i])
    return Image.fromarray(img)


def contact_sheet(rows: Sequence[Sequence[Image.Image | None]], row_labels: Sequence[str],
                  col_labels: Sequence[str], tile: int = 128) -> Image.Image:
    """Grid of tiles with a label column and a header row; ``None`` tiles stay blank."""
    label_w, header_h, pad = 150, 22, 4
    n_cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (label_w + n_cols * (tile + pad), header_h + len(rows) * (tile + pad)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for c, text in enumerate(col_labels):
        draw.text((label_w + c * (tile + pad) + 4, 5), text, fill="black")
    for r, (row, text) in enumerate(zip(rows, row_labels, strict=True)):
        y = header_h + r * (tile + pad)
        draw.text((4, y + tile // 2 - 6), text, fill="black")
        for c, im in enumerate(row):
            if im is not None:
                sheet.paste(_fit(im, tile), (label_w + c * (tile + pad), y))
    return sheet


def _fit(img: Image.Image, tile: int) -> Image.Image:
    img = on_checkerboard(img) if img.mode in ("RGBA", "LA") else img.convert("RGB")
    return img.resize((tile, tile), Image.LANCZOS) if img.size != (tile, tile) else img


def save_png(img: Image.Image, path: str | os.PathLike) -> Path:
    """Save atomically and return the path."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
