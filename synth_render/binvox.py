"""The binvox voxel file format (owner of every read and write of ``.binvox`` files).

Format (https://www.patrickmin.com/binvox/binvox.html): an ASCII header

    #binvox 1
    dim D D D
    translate tx ty tz
    scale s
    data

followed by run-length pairs of bytes ``(value, count)``, count 1..255. Voxels are stored with
x outermost, then z, then y fastest: the flat index of voxel (x, y, z) is ``x*D*D + z*D + y``.

In memory a grid is a ``bool`` array indexed ``grid[x, y, z]`` (the ``fix_coords`` convention
of 3D-R2N2's and Pix2Vox's readers), with +Y up as in ShapeNet. Voxel ``i`` along an axis covers
``translate + scale * [i, i + 1] / D`` in model coordinates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_write_bytes


@dataclass(frozen=True)
class Voxels:
    """An occupancy grid with its placement in model coordinates."""

    grid: np.ndarray  # (X, Y, Z) bool
    translate: tuple[float, float, float]
    scale: float

    @property
    def dims(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.grid.shape)  # type: ignore[return-value]


class BinvoxError(ValueError):
    """A file that is not valid binvox."""


def _parse_header(f) -> tuple[tuple[int, int, int], tuple[float, float, float], float]:
    first = f.readline().strip()
    if not first.startswith(b"#binvox"):
        raise BinvoxError(f"not a binvox file (first line {first[:40]!r})")
    dims = translate = scale = None
    while True:
        line = f.readline()
        if not line:
            raise BinvoxError("header ends before 'data'")
        parts = line.strip().split()
        if not parts:
            continue
        key = parts[0]
        try:
            if key == b"dim":
                dims = tuple(int(v) for v in parts[1:4])
            elif key == b"translate":
                translate = tuple(float(v) for v in parts[1:4])
            elif key == b"scale":
                scale = float(parts[1])
            elif key == b"data":
                break
        except (ValueError, IndexError) as exc:
            raise BinvoxError(f"bad header line {line!r}") from exc
    if dims is None or len(dims) != 3 or min(dims) <= 0:
        raise BinvoxError("header has no valid 'dim'")
    return dims, translate or (0.0, 0.0, 0.0), 1.0 if scale is None else scale


def read_dims(path: str | os.PathLike) -> tuple[int, int, int]:
    """The grid dimensions from a binvox header (the data is not read)."""
    with open(path, "rb") as f:
        return _parse_header(f)[0]


def read_binvox(path: str | os.PathLike) -> Voxels:
    """Read a binvox file into a :class:`Voxels` whose grid is indexed ``[x, y, z]``."""
    with open(path, "rb") as f:
        dims, translate, scale = _parse_header(f)
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    if raw.size % 2:
        raise BinvoxError(f"{path}: run-length data has odd length {raw.size}")
    values, counts = raw[0::2], raw[1::2]
    flat = np.repeat(values.astype(bool), counts)
    n = dims[0] * dims[1] * dims[2]
    if flat.size != n:
        raise BinvoxError(f"{path}: data holds {flat.size} voxels, header says {n}")
    # Stored order is (x, z, y) with y fastest; return (x, y, z).
    grid = flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)
    return Voxels(np.ascontiguousarray(grid), translate, scale)


def _run_length_encode(flat: np.ndarray) -> bytes:
    flat = flat.astype(np.uint8)
    if flat.size == 0:
        return b""
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    values = flat[starts]
    # Split runs longer than 255 into full chunks plus a remainder.
    full, rest = np.divmod(lengths, 255)
    reps = full + (rest > 0)
    out_values = np.repeat(values, reps)
    out_counts = np.full(out_values.size, 255, dtype=np.uint8)
    ends = np.cumsum(reps) - 1
    out_counts[ends[rest > 0]] = rest[rest > 0]
    pairs = np.empty(out_values.size * 2, dtype=np.uint8)
    pairs[0::2], pairs[1::2] = out_values, out_counts
    return pairs.tobytes()


def write_binvox(
    path: str | os.PathLike,
    grid: np.ndarray,
    translate: tuple[float, float, float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
) -> None:
    """Write a ``[x, y, z]`` grid as binvox, atomically (temp file, then rename)."""
    atomic_write_bytes(path, encode_binvox(grid, translate, scale))


def encode_binvox(grid: np.ndarray, translate: tuple[float, float, float] = (0.0, 0.0, 0.0),
                  scale: float = 1.0) -> bytes:
    """The bytes of a binvox file holding a ``[x, y, z]`` grid."""
    grid = np.asarray(grid)
    if grid.ndim != 3:
        raise ValueError(f"grid must be 3-D, got shape {grid.shape}")
    dx, dy, dz = grid.shape
    header = (
        "#binvox 1\n"
        f"dim {dx} {dy} {dz}\n"
        f"translate {translate[0]:.9g} {translate[1]:.9g} {translate[2]:.9g}\n"
        f"scale {scale:.9g}\n"
        "data\n"
    ).encode("ascii")
    body = _run_length_encode(grid.astype(bool).transpose(0, 2, 1).ravel())
    return header + body
