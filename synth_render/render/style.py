"""The contract between the render worker and a render style (pure Python, no bpy).

A style is a module ``synth_render.render.style_<name>`` that provides:

``configure_scene(scene, objects, rng, ctx) -> None``
    bpy glue, called once per model in the worker after the scene was reset, the mesh imported
    (``objects``: the imported mesh objects, already centred on the origin with a unit
    bounding-box diagonal, Blender frame +Z up) and a camera created (``scene.camera``).
    Sets engine, resolution (``ctx.size``), film transparency, lights, world and materials.

``configure_view(scene, view, rng, ctx) -> None``
    bpy glue, called before each view is rendered, after the worker placed ``scene.camera``
    at ``view`` (an :class:`synth_render.r2n2.View`) looking at the origin. Styles may jitter
    the camera slightly (never more than a few degrees), set depth of field, etc.

``postprocess(rgba, rng, ctx) -> np.ndarray``
    pure numpy, called on each rendered image (``(H, W, 4) uint8``); returns ``(H, W, 4)``
    (synthetic: RGBA, transparent background) or ``(H, W, 3)`` (photo: background composited,
    sensor effects, JPEG round trip) ``uint8``, which the worker writes as the view's PNG.

Optional, for an object mask per view (``rendering/masks/NN.png``, see
:func:`synth_render.r2n2.mask_path`); styles that render one view per call only:

``configure_object_pass(scene) -> None``
    bpy glue, called once after all views were rendered: hide everything but the model and
    make its alpha its exact coverage. The worker then renders each view again from the
    camera it was rendered with; nothing may draw from ``rng``.

``postprocess_with_mask(rgba, mask, rng, ctx) -> (pixels, mask)``
    :func:`postprocess` (the same draws, so the same pixels) plus the mask (``(H, W)
    uint8``) taken through the same geometric steps as the pixels.

``rng`` is a ``numpy.random.Generator`` seeded from (run seed, model key), so a resumed run
redraws the same images.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

STYLES = ("synthetic", "photo")


@dataclass(frozen=True)
class StyleContext:
    """What a style may know about the model being rendered."""

    model_key: str  # "<synset>/<model_id>"
    asset_split: str  # "train" or "test": which pool of backgrounds/HDRIs/textures to draw from
    size: int  # output width and height in pixels
    samples: int = 16  # Cycles samples, for styles that path-trace


def load_style(name: str) -> ModuleType:
    """Import the style module for ``name`` (imports bpy: call only inside a worker)."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; expected one of {STYLES}")
    return importlib.import_module(f"synth_render.render.style_{name}")
