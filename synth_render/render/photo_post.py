"""Camera and photo effects for the ``photo`` style, on numpy arrays (no bpy).

:func:`postprocess` turns a Cycles render (``(H, W, 4) uint8``, straight alpha, as Blender
writes PNGs; the alpha carries the shadow-catcher's shadow) into what a phone or compact camera
would have produced: the object and its shadow over a photograph, a slight roll and zoom, colour
cast, exposure error, lens blur, vignetting, sensor noise and JPEG compression. A render whose
alpha is opaque everywhere already shows its HDRI as the background and is kept as it is.

Sensor noise and JPEG happen at the camera's resolution (:data:`CAPTURE_PX`), not at the
render's: a real photo fed to the network at 64 or 128 px was taken with far more pixels and
downsampled, which averages its noise down and makes its 8x8 JPEG blocks sub-pixel. Applying
them at the render size would make a much noisier, blockier image than any real photo at that
size (the first datasets did, and even the oracle saw only half the classes).

Parameters are drawn first (:func:`draw_params`), then applied (:func:`apply`), so tests can
switch single effects off and the same ``rng`` state always gives the same image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from .backgrounds import sample_background
from .style import StyleContext

SHADOW_SMOOTHING = 1.5  # Gaussian sigma (px at 128 px) that denoises the shadow-catcher alpha
CAPTURE_PX = 512  # the camera's pixels across the object's square crop (a phone has >= 1000)


@dataclass(frozen=True)
class PhotoParams:
    """Everything random about one photo; sizes in pixels of a 128 px image (scaled to H)."""

    roll_deg: float  # camera roll, as an image rotation
    zoom: float  # >= 1 crops in (on top of what the roll needs to keep the corners filled)
    bg_blur: float  # defocus of the background photo (Gaussian sigma)
    bg_gain: float  # background brightness relative to the object
    ambient_tint: float  # how much the background's colour tints the object (0..1)
    temperature: float  # white balance error: > 0 warm, < 0 cold (log gain)
    green_tint: float  # white balance error along green/magenta (log gain)
    exposure_ev: float
    blur: float  # whole-image softness (Gaussian sigma; 0 = sharp)
    motion_len: float  # motion blur length (0 = none)
    motion_angle: float  # radians
    vignette: float  # corner darkening (0..1)
    shot_noise: float  # variance per unit linear intensity
    read_noise: float  # standard deviation, linear
    gamma: float  # display gamma of the "camera's" tone curve
    saturation: float
    contrast: float  # S-curve strength (0 = none)
    jpeg_quality: int | None  # None: no JPEG round trip


def draw_params(rng: np.random.Generator) -> PhotoParams:
    """Draw one photo's parameters (always the same number of draws, in the same order)."""
    u = rng.uniform
    motion = rng.random() < 0.2
    soft = rng.random() < 0.35
    return PhotoParams(
        roll_deg=float(u(-2.5, 2.5)),
        zoom=float(u(1.0, 1.06)),
        bg_blur=float(u(0.0, 2.5)),
        bg_gain=float(u(0.65, 1.25)),
        ambient_tint=float(u(0.0, 0.35)),
        temperature=float(rng.normal(0.0, 0.12)),
        green_tint=float(rng.normal(0.0, 0.04)),
        exposure_ev=float(u(-0.8, 0.5)),
        blur=float(u(0.3, 1.0)) if soft else 0.0,
        motion_len=float(u(1.5, 4.0)) if motion else 0.0,
        motion_angle=float(u(0.0, np.pi)),
        vignette=float(u(0.0, 0.45)),
        shot_noise=float(np.exp(u(np.log(2e-4), np.log(5e-3)))),
        read_noise=float(u(0.001, 0.008)),
        gamma=float(u(2.0, 2.5)),
        saturation=float(u(0.75, 1.3)),
        contrast=float(u(0.0, 0.3)),
        jpeg_quality=int(rng.integers(40, 91)),
    )


def postprocess(rgba: np.ndarray, rng: np.random.Generator, ctx: StyleContext) -> np.ndarray:
    """The style contract's post step: ``(H, W, 4) uint8`` render -> ``(H, W, 3) uint8`` photo."""
    return postprocess_with_mask(rgba, None, rng, ctx)[0]


def postprocess_with_mask(rgba: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
                          ctx: StyleContext) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`postprocess`, and the object's mask (``(H, W) uint8`` coverage from the object
    pass) taken through the same geometry as the pixels (:func:`mask_geometry`). The draws
    from ``rng`` are exactly :func:`postprocess`'s, so the photo is the same with or without
    a mask."""
    params = draw_params(rng)
    h, w = rgba.shape[:2]
    # Drawn even when the HDRI is the background, so rng use does not depend on the render.
    background = sample_background(rng, ctx.asset_split, (h, w))
    noise_seed = int(rng.integers(2**63))
    photo = apply(rgba, background, params, np.random.default_rng(noise_seed))
    return photo, None if mask is None else mask_geometry(mask, params)


def mask_geometry(mask: np.ndarray, p: PhotoParams) -> np.ndarray:
    """The geometric part of :func:`apply` (roll and zoom) on an ``(H, W) uint8`` mask; the
    photometric effects do not move the object, so they are left out."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    turned = _roll_and_zoom(mask[..., None].astype(np.float32) / 255.0, p.roll_deg, p.zoom)
    return np.clip(turned[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)


def apply(rgba: np.ndarray, background: np.ndarray, p: PhotoParams,
          noise_rng: np.random.Generator, capture_px: int = CAPTURE_PX) -> np.ndarray:
    """Apply ``p`` to a render; ``background`` is ``(H, W, 3) uint8``.

    ``capture_px`` is the camera's resolution: noise and JPEG are simulated there (see the
    module docstring); a value at or below the render size applies them at the render size.
    """
    scale = rgba.shape[0] / 128.0  # effect sizes are specified for 128 px images
    downsample = max(capture_px / rgba.shape[0], 1.0)
    img = _to_float(rgba)  # (H, W, 4), premultiplied, sRGB-encoded
    img = _smooth_shadow(img, SHADOW_SMOOTHING * scale)
    img = _roll_and_zoom(img, p.roll_deg, p.zoom)
    rgb = _composite(img, background, p, scale)
    lin = _srgb_to_linear(rgb)
    lin = _white_balance_and_exposure(lin, p)
    lin = _optics(lin, p, scale)
    lin = _sensor_noise(lin, p, noise_rng, downsample)
    out = _tone(lin, p)
    out8 = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if p.jpeg_quality is None:
        return out8
    return jpeg_roundtrip(out8, p.jpeg_quality, capture_px=round(out8.shape[0] * downsample))


def without(p: PhotoParams, *effects: str) -> PhotoParams:
    """``p`` with some effects switched off (for tests and previews): e.g. ``"jpeg_quality"``."""
    off = {"jpeg_quality": None, "roll_deg": 0.0, "zoom": 1.0, "bg_blur": 0.0, "blur": 0.0,
           "motion_len": 0.0, "vignette": 0.0, "shot_noise": 0.0, "read_noise": 0.0}
    return replace(p, **{name: off[name] for name in effects})


# --- steps ------------------------------------------------------------------------------------

def _to_float(rgba: np.ndarray) -> np.ndarray:
    """uint8 straight alpha -> float premultiplied (so resampling doesn't fringe edges)."""
    x = rgba.astype(np.float32) / 255.0
    x[..., :3] *= x[..., 3:4]
    return x


def _smooth_shadow(img: np.ndarray, sigma: float) -> np.ndarray:
    """Denoise the shadow-catcher pixels: at 16 samples their alpha is speckled.

    Catcher pixels are the translucent, dark ones not next to an opaque (object) pixel; a
    normalized Gaussian over just those pixels keeps the shadow's mean and leaves the object,
    its anti-aliased edges and the rare bright floor reflection untouched.
    """
    alpha = img[..., 3]
    straight = img[..., :3].max(axis=-1) / np.maximum(alpha, 1e-3)
    solid = ndimage.binary_dilation(alpha > 0.99, iterations=1)
    catcher = (~solid & (straight < 0.12)).astype(np.float32)
    if sigma <= 0 or not catcher.any():
        return img
    weight = ndimage.gaussian_filter(catcher, sigma)
    soft = np.stack([ndimage.gaussian_filter(img[..., c] * catcher, sigma) for c in range(4)],
                    axis=-1) / np.maximum(weight, 1e-3)[..., None]
    return np.where(catcher[..., None] > 0, soft, img)


def _roll_and_zoom(img: np.ndarray, roll_deg: float, zoom: float) -> np.ndarray:
    """Rotate about the image centre and zoom in just enough that no corner comes from outside
    the render (an opaque HDRI render would otherwise get smeared borders)."""
    if roll_deg == 0.0 and zoom == 1.0:
        return img
    h, w = img.shape[:2]
    a = np.deg2rad(roll_deg)
    zoom *= abs(np.cos(a)) + abs(np.sin(a))
    # affine_transform maps output coords to input coords: inverse rotation, inverse zoom.
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / zoom
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    offset = centre - m @ centre
    return np.stack([ndimage.affine_transform(img[..., c], m, offset=offset, order=1,
                                              mode="nearest") for c in range(img.shape[2])],
                    axis=-1)


def _composite(img: np.ndarray, background: np.ndarray, p: PhotoParams,
               scale: float) -> np.ndarray:
    """Premultiplied "over" onto the defocused photo; the object picks up the scene's colour."""
    alpha = img[..., 3:4]
    if alpha.min() >= 1.0 - 1e-3:  # the HDRI is the visible background already
        return img[..., :3]
    bg = background.astype(np.float32) / 255.0 * p.bg_gain
    if p.bg_blur > 0:
        bg = ndimage.gaussian_filter(bg, sigma=(p.bg_blur * scale, p.bg_blur * scale, 0))
    mean = bg.reshape(-1, 3).mean(axis=0) + 1e-3
    tint = (1.0 - p.ambient_tint) + p.ambient_tint * mean / mean.mean()
    return np.clip(img[..., :3] * tint + bg * (1.0 - alpha), 0.0, 1.0)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0.0, 1.0), 2.2)


def _white_balance_and_exposure(lin: np.ndarray, p: PhotoParams) -> np.ndarray:
    gains = np.exp([p.temperature, p.green_tint, -p.temperature]) * 2.0 ** p.exposure_ev
    return lin * gains.astype(np.float32)


def _optics(lin: np.ndarray, p: PhotoParams, scale: float) -> np.ndarray:
    """Lens softness, camera shake and vignetting."""
    if p.blur > 0:
        lin = ndimage.gaussian_filter(lin, sigma=(p.blur * scale, p.blur * scale, 0))
    if p.motion_len > 0:
        kernel = _motion_kernel(p.motion_len * scale, p.motion_angle)
        lin = np.stack([ndimage.convolve(lin[..., c], kernel, mode="nearest")
                        for c in range(3)], axis=-1)
    if p.vignette > 0:
        h, w = lin.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2
        lin = lin * (1.0 - p.vignette * np.clip(r2 / 2.0, 0, 1))[..., None]
    return lin


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalized line kernel (box blur along a direction)."""
    size = int(np.ceil(length)) | 1  # odd, so the kernel is centred
    kernel = np.zeros((size, size), dtype=np.float32)
    c = size // 2
    for t in np.linspace(-length / 2, length / 2, 4 * size):
        y, x = int(round(c + t * np.sin(angle))), int(round(c + t * np.cos(angle)))
        kernel[min(max(y, 0), size - 1), min(max(x, 0), size - 1)] += 1.0
    return kernel / kernel.sum()


def _sensor_noise(lin: np.ndarray, p: PhotoParams, rng: np.random.Generator,
                  downsample: float = 1.0) -> np.ndarray:
    """Shot noise (variance grows with the signal) plus read noise, per pixel and channel.

    The noise is the camera's, seen after downsampling by ``downsample``: averaging ``d x d``
    independent pixels divides the standard deviation by ``d``.
    """
    std = np.sqrt(np.clip(lin, 0, None) * p.shot_noise + p.read_noise ** 2) / downsample
    return lin + std * rng.standard_normal(lin.shape, dtype=np.float32)


def _tone(lin: np.ndarray, p: PhotoParams) -> np.ndarray:
    """The camera's tone curve: gamma, saturation, a gentle S-curve; returns [0, 1]."""
    x = np.power(np.clip(lin, 0.0, 1.0), 1.0 / p.gamma)
    grey = x.mean(axis=-1, keepdims=True)
    x = np.clip(grey + (x - grey) * p.saturation, 0.0, 1.0)
    s_curve = x * x * (3.0 - 2.0 * x)  # smoothstep
    return (1.0 - p.contrast) * x + p.contrast * s_curve


def jpeg_roundtrip(img: np.ndarray, quality: int, capture_px: int | None = None) -> np.ndarray:
    """Encode as JPEG (4:2:0 chroma, like cameras) and decode again.

    With ``capture_px`` larger than the image, the JPEG is made of the image upsampled to that
    size (the camera's file) and box-filtered back down (the network's input).
    """
    h, w = img.shape[:2]
    image = Image.fromarray(img)
    if capture_px is not None and capture_px > h:
        image = image.resize((round(w * capture_px / h), capture_px), Image.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        decoded = im.convert("RGB")
        if decoded.size != (w, h):
            decoded = decoded.resize((w, h), Image.BOX)
        return np.asarray(decoded)
