"""Procedural backgrounds for the foreground model: texture variety the few photos lack.

The photo style's background pool holds nine training photos (:mod:`synth_render.render.
backgrounds`); a segmenter trained on crops of them alone learns *those* textures as
"background" and is unsure on a new one (an object on gravel is missed, a plain sky is taken for
the object). These generators add kinds of background real photos have and the pool lacks,
all drawn from one generator (deterministic per sample):

- ``noise``: fractal (1/f) noise through a random palette, sometimes stretched (grain, fabric,
  stone, foliage at every scale);
- ``sky``: a smooth sky gradient with faint clouds over a textured ground at a random horizon
  (outdoor shots; sometimes no ground);
- ``clutter``: a wall gradient with blurred rectangles and ellipses of other colours (shelves,
  furniture, windows, seen out of focus);
- ``plain``: one colour with a slight vignette (a studio sweep, a table top).

The photo style's camera model is applied on top by the caller, so these need not look
photographic themselves. Torch-free: numpy and Pillow.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One procedural background of ``size`` = ``(H, W)``: ``(H, W, 3) uint8``."""
    h, w = int(size[0]), int(size[1])
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    return np.clip(GENERATORS[kind](rng, h, w), 0, 255).astype(np.uint8)


def fractal_noise(rng: np.random.Generator, h: int, w: int, beta: float,
                  stretch: float = 1.0) -> np.ndarray:
    """``(H, W)`` noise with a ``1/f**beta`` power spectrum, scaled to [0, 1]; ``stretch`` > 1
    elongates it along x (grain)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :] * stretch
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(h, w))
    lo, hi = field.min(), field.max()
    return (field - lo) / max(hi - lo, 1e-9)


def _palette(rng: np.random.Generator, t: np.ndarray, colours: int) -> np.ndarray:
    """``t`` in [0, 1] through a ramp of ``colours`` random colours: ``(H, W, 3)`` float."""
    stops = rng.uniform(0, 255, size=(colours, 3))
    if rng.random() < 0.5:  # muted, as most real surfaces are
        grey = stops.mean(1, keepdims=True)
        stops = grey + (stops - grey) * rng.uniform(0.2, 0.6)
    pos = t * (colours - 1)
    i = np.minimum(pos.astype(int), colours - 2)
    a = (pos - i)[..., None]
    return stops[i] * (1 - a) + stops[i + 1] * a


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    stretch = 1.0 if rng.random() < 0.6 else rng.uniform(2.0, 8.0)
    t = fractal_noise(rng, h, w, rng.uniform(1.2, 3.2), stretch)
    img = _palette(rng, t, int(rng.integers(2, 4)))
    return img.transpose(1, 0, 2) if h == w and rng.random() < 0.5 else img


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    top = rng.uniform([60, 110, 170], [200, 220, 255])  # blue to pale
    if rng.random() < 0.3:  # overcast or dusk
        top = rng.uniform(120, 240, size=3) * rng.uniform([0.9, 0.8, 0.7], 1.0)
    bottom = top + (255 - top) * rng.uniform(0.2, 0.7)
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    img = top * (1 - y) + bottom * y
    clouds = fractal_noise(rng, h, w, rng.uniform(2.0, 3.2), rng.uniform(1.0, 3.0))
    img = img + (clouds[..., None] - 0.5) * rng.uniform(0, 90)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    if rng.random() < 0.75:
        horizon = int(h * rng.uniform(0.35, 0.95))
        ground = _noise(rng, h - horizon, w) * rng.uniform(0.5, 1.0)
        img[horizon:] = ground
    return img


def _clutter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    wall = _palette(rng, np.broadcast_to(np.linspace(0, 1, h)[:, None], (h, w)), 2)
    canvas = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 30))):
        cw, ch = rng.uniform(0.05, 0.6) * w, rng.uniform(0.05, 0.6) * h
        x, y = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        fill = tuple(int(v) for v in rng.uniform(0, 255, 3))
        shape = draw.ellipse if rng.random() < 0.3 else draw.rectangle
        shape((x, y, x + cw, y + ch), fill=fill)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.03) * max(h, w)))
    return np.asarray(canvas, dtype=np.float64)


def _plain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    colour = rng.uniform(30, 245, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    return colour * (1 - rng.uniform(0, 0.5) * r2)[..., None]


# Each kind's generator ``(rng, H, W) -> (H, W, 3) float`` (unclipped) and how often it is
# drawn; the order is part of every seeded sample.
GENERATORS = {"noise": _noise, "sky": _sky, "clutter": _clutter, "plain": _plain}
KINDS = tuple(GENERATORS)
KIND_WEIGHTS = (0.4, 0.25, 0.25, 0.1)
