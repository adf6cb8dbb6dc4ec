"""Hostile images cost a bounded amount of memory and time in :func:`preprocess`.

Tiny inputs used to cost gigabytes: images were padded to a square before resizing, so a
138-byte PNG declaring 20000x1 took 3.4 GB, a (16384, 1, 3) array 1.8 GB, a 40000000x1 or
200000x200 PNG ended in MemoryError, and a 155 KB 6324x6324 RGBA PNG (within the pixel cap)
took 3.2 GB. Each case runs in its own interpreter (VmHWM and ru_maxrss only grow), which
imports the module and reads its input first, then preprocesses once and reports the peak over
the resident size it had just before.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from backend.core.preprocess import MAX_ASPECT, MAX_PIXELS, MEMORY_BUDGET_MB

ROOT = Path(__file__).resolve().parents[1]
SMALL_MB = 32  # refused or small images: no large buffer at all
ARRAY_MB = 64  # a 40-megapixel array is read in place, tile by tile
REFUSED_S = 1.0  # seconds, on two loaded cores
LARGEST_S = 8.0  # a 40-megapixel image: decoding alone takes about half a second

_CHILD = r"""
import gc, json, os, resource, sys, time

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024  # MB
    raise KeyError(key)

def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB

import numpy as np
from backend.core.preprocess import ImageError, preprocess

path, crop = sys.argv[1], json.loads(sys.argv[2])
source = np.load(path) if path.endswith(".npy") else open(path, "rb").read()
gc.collect()
# A process started by fork + exec inherits its parent's ru_maxrss (pytest's); one forked
# from this small interpreter starts both VmHWM and ru_maxrss at the size it has now.
sys.stdout.flush()
pid = os.fork()
if pid:
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
baseline, ru_baseline = status("VmRSS:"), maxrss()
t0 = time.perf_counter()
try:
    shape, code = list(preprocess(source, crop=crop).shape), "ok"
except ImageError as exc:
    shape, code = None, exc.code
elapsed = time.perf_counter() - t0
print(json.dumps({"code": code, "shape": shape, "seconds": elapsed, "baseline_mb": baseline,
                  "growth_mb": status("VmHWM:") - baseline,
                  "ru_maxrss_growth_mb": maxrss() - ru_baseline}), flush=True)
os._exit(0)
"""


def _png(width: int, height: int, channels: int, row) -> bytes:
    """A valid 8-bit PNG, compressed row by row (``row(y)`` -> ``width * channels`` bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    comp = zlib.compressobj(6)
    idat = b"".join([comp.compress(b"\x00" + row(y)) for y in range(height)] + [comp.flush()])
    ihdr = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _constant_png(width: int, height: int) -> bytes:
    line = b"\x80" * (3 * width)
    return _png(width, height, 3, lambda y: line)


def _rgba_disc_png(side: int) -> bytes:
    """A red disc on a transparent background, like the renders, ``side`` pixels square."""
    xs = (np.arange(side) - side / 2) ** 2
    def row(y: int) -> bytes:
        out = np.zeros((side, 4), np.uint8)
        out[xs + (y - side / 2) ** 2 < (side / 3) ** 2] = (200, 30, 30, 255)
        return out.tobytes()
    return _png(side, side, 4, row)


def _widest_png() -> bytes:
    """The widest image the limits admit: 64:1 and 40 megapixels, an opaque gradient."""
    height = int((MAX_PIXELS / MAX_ASPECT) ** 0.5)
    width = MAX_ASPECT * height
    base = np.empty((width, 3), np.uint8)
    base[:, 0] = np.arange(width) * 255 // width
    base[:, 2] = 128
    def row(y: int) -> bytes:
        base[:, 1] = y * 255 // height
        return base.tobytes()
    return _png(width, height, 3, row)


def _truncated_png(side: int) -> bytes:
    """A header claiming ``side`` x ``side`` RGBA with almost no pixel data."""
    whole = _png(side, 1, 4, lambda y: b"\x00" * (4 * side))
    return whole.replace(struct.pack(">II", side, 1), struct.pack(">II", side, side), 1)


def _jpeg(width: int, height: int) -> bytes:
    import io

    from PIL import Image
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 128)], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _rgba_array() -> np.ndarray:
    """A 40-megapixel RGBA array: an opaque block on a transparent background."""
    arr = np.empty((5164, 7744, 4), np.uint8)
    arr[..., :3] = 128
    arr[..., 3] = 0
    arr[1000:4000, 2000:6000, 3] = 255
    return arr


SIDE_40MP = int(MAX_PIXELS ** 0.5)  # 6324

# name: (input, crop, expected code, MB, seconds)
CASES = {
    "png_20000x1_138_bytes": (lambda: _constant_png(20_000, 1), None, "bad_image",
                              SMALL_MB, REFUSED_S),
    "array_16384x1x3": (lambda: np.full((16_384, 1, 3), 128, np.uint8), None, "bad_image",
                        SMALL_MB, REFUSED_S),
    "png_40000000x1": (lambda: _constant_png(40_000_000, 1), None, "bad_image",
                       SMALL_MB, REFUSED_S),
    "png_200000x200": (lambda: _constant_png(200_000, 200), None, "bad_image",
                       SMALL_MB, REFUSED_S),
    "png_over_the_pixel_cap": (lambda: _constant_png(10_000, 5_000), None, "image_too_large",
                               SMALL_MB, REFUSED_S),
    "rgba_png_6324x6324": (lambda: _rgba_disc_png(SIDE_40MP), None, "ok",
                           MEMORY_BUDGET_MB, LARGEST_S),
    "truncated_png_claiming_6324x6324_rgba": (lambda: _truncated_png(SIDE_40MP), None,
                                              "bad_image", MEMORY_BUDGET_MB, LARGEST_S),
    "png_64_to_1_at_40mp": (_widest_png, None, "ok", MEMORY_BUDGET_MB, LARGEST_S),
    "rgba_array_40mp": (_rgba_array, None, "ok", ARRAY_MB, LARGEST_S),
    "largest_crop_box_on_a_small_image": (lambda: _jpeg(100, 100), (-6000, -6000, 12649, 12649),
                                          "ok", SMALL_MB, REFUSED_S),
    "jpeg_1mp_reference": (lambda: _jpeg(1152, 864), None, "ok", SMALL_MB, 2.0),
    "rgba_render_137_reference": (lambda: _rgba_disc_png(137), None, "ok", SMALL_MB, 1.0),
}


def _measure(path: Path, crop) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), json.dumps(crop)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("name", list(CASES))
def test_peak_memory_and_time_per_image(name, tmp_path):
    make, crop, code, budget_mb, budget_s = CASES[name]
    source = make()
    if isinstance(source, np.ndarray):
        path = tmp_path / "input.npy"
        np.save(path, source)
    else:
        path = tmp_path / "input.bin"
        path.write_bytes(source)
    del source
    got = _measure(path, crop)
    print(name, got)
    assert got["code"] == code, got
    if code == "ok":
        assert got["shape"] == [3, 64, 64]
    assert got["growth_mb"] <= budget_mb, got
    assert got["ru_maxrss_growth_mb"] <= budget_mb, got
    assert got["seconds"] <= budget_s, got


def test_the_stated_budget_covers_the_largest_decoded_image():
    """Pillow holds an RGB(A), CMYK or 32-bit image at 4 bytes a pixel; one tile's conversions
    add a few tens of MB on top."""
    assert MAX_PIXELS * 4 / 2**20 + 64 <= MEMORY_BUDGET_MB
