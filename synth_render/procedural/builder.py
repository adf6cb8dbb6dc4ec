"""Collect meshes into :class:`~synth_render.shapenet.Part` lists with plausible colours.

A generator asks for a part by *role* (``seat``, ``legs``, ``body``) and material *family*
(``wood``, ``fabric``, ``paint``); the material is named ``<role>_<family>`` and keeps one
colour per shape, so e.g. all four legs of a chair share one wood tone, the way CAD models
in ShapeNet assign one material per component group.
"""

from __future__ import annotations

import numpy as np
import trimesh

from ..shapenet import Part

# Base diffuse colours per material family (linear-ish RGB in [0, 1]); a small jitter is
# added per shape so no two shapes share exactly the same tones.
FAMILIES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "wood": (
        (0.55, 0.36, 0.20),
        (0.40, 0.25, 0.13),
        (0.70, 0.52, 0.32),
        (0.30, 0.18, 0.10),
        (0.82, 0.68, 0.48),
        (0.62, 0.45, 0.30),
        (0.20, 0.12, 0.08),
    ),
    "metal": (
        (0.60, 0.60, 0.62),
        (0.35, 0.35, 0.37),
        (0.75, 0.75, 0.78),
        (0.15, 0.15, 0.16),
        (0.50, 0.48, 0.45),
    ),
    "fabric": (
        (0.55, 0.10, 0.10),
        (0.20, 0.28, 0.50),
        (0.45, 0.45, 0.45),
        (0.75, 0.70, 0.60),
        (0.25, 0.40, 0.30),
        (0.15, 0.15, 0.18),
        (0.85, 0.55, 0.25),
        (0.60, 0.55, 0.70),
        (0.30, 0.50, 0.60),
    ),
    "leather": ((0.35, 0.20, 0.12), (0.10, 0.09, 0.09), (0.80, 0.78, 0.72), (0.55, 0.30, 0.15)),
    "plastic": (
        (0.08, 0.08, 0.09),
        (0.90, 0.90, 0.88),
        (0.50, 0.50, 0.52),
        (0.80, 0.15, 0.12),
        (0.15, 0.35, 0.70),
        (0.95, 0.75, 0.20),
        (0.25, 0.25, 0.27),
    ),
    "paint": (
        (0.75, 0.05, 0.05),
        (0.05, 0.10, 0.35),
        (0.85, 0.85, 0.85),
        (0.08, 0.08, 0.08),
        (0.55, 0.57, 0.60),
        (0.10, 0.30, 0.15),
        (0.90, 0.70, 0.10),
        (0.30, 0.45, 0.70),
        (0.45, 0.08, 0.12),
    ),
    "livery": (
        (0.92, 0.92, 0.93),
        (0.85, 0.87, 0.90),
        (0.55, 0.58, 0.60),
        (0.35, 0.40, 0.35),
        (0.90, 0.90, 0.85),
    ),
    "accent": (
        (0.10, 0.20, 0.50),
        (0.70, 0.10, 0.10),
        (0.95, 0.70, 0.10),
        (0.15, 0.15, 0.15),
        (0.20, 0.50, 0.30),
    ),
    "glass": ((0.10, 0.14, 0.20), (0.20, 0.25, 0.30), (0.05, 0.07, 0.10)),
    "screen": ((0.02, 0.02, 0.03), (0.05, 0.06, 0.09), (0.10, 0.12, 0.18)),
    "rubber": ((0.05, 0.05, 0.05), (0.12, 0.12, 0.12)),
    "shade": (
        (0.95, 0.93, 0.85),
        (0.90, 0.85, 0.70),
        (0.85, 0.85, 0.85),
        (0.20, 0.20, 0.22),
        (0.70, 0.25, 0.15),
        (0.30, 0.45, 0.35),
    ),
    "ceramic": ((0.92, 0.92, 0.90), (0.25, 0.35, 0.55), (0.75, 0.55, 0.35), (0.20, 0.20, 0.20)),
    "sail": ((0.96, 0.96, 0.94), (0.92, 0.90, 0.82), (0.85, 0.20, 0.15)),
    "hull": (
        (0.95, 0.95, 0.95),
        (0.10, 0.15, 0.35),
        (0.70, 0.10, 0.10),
        (0.20, 0.20, 0.22),
        (0.85, 0.80, 0.70),
    ),
    "stone": ((0.60, 0.58, 0.55), (0.40, 0.40, 0.40)),
    "gun": ((0.10, 0.10, 0.10), (0.20, 0.20, 0.19), (0.30, 0.28, 0.22), (0.40, 0.36, 0.26)),
}


class PartList:
    """Accumulates parts of one shape; one colour per material name."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.parts: list[Part] = []
        self._colors: dict[str, tuple[float, float, float]] = {}

    def color(self, role: str, family: str, like: str | None = None) -> tuple[float, float, float]:
        """The colour of material ``<role>_<family>`` (drawn on first use).

        ``like`` names another role whose colour this one copies (a sofa's arms and back in
        the same upholstery), while the material keeps its own part-specific name.
        """
        name = f"{role}_{family}"
        if like is not None and name not in self._colors:
            self._colors[name] = self.color(like, family)
        if name not in self._colors:
            palette = FAMILIES[family]
            base = np.array(palette[int(self.rng.integers(len(palette)))])
            jitter = self.rng.uniform(-0.04, 0.04, 3)
            self._colors[name] = tuple(float(c) for c in np.clip(base + jitter, 0.0, 1.0))
        return self._colors[name]

    def add(self, mesh: trimesh.Trimesh, role: str, family: str, like: str | None = None) -> None:
        """Add one closed mesh as a part with material ``<role>_<family>``."""
        color = self.color(role, family, like)
        self.parts.append(
            Part(
                np.asarray(mesh.vertices, float),
                np.asarray(mesh.faces, np.int64),
                f"{role}_{family}",
                color,
            )
        )

    def extend(self, meshes, role: str, family: str) -> None:
        """Add several meshes that share one material."""
        for mesh in meshes:
            self.add(mesh, role, family)

    def rotate_since(self, start: int, axis: str, degrees: float, about) -> None:
        """Rotate every part added from index ``start`` on (tilt a sub-assembly as a whole)."""
        from .parts import rotate_points

        about = np.asarray(about, float)
        for part in self.parts[start:]:
            part.vertices = rotate_points(part.vertices - about, axis, degrees) + about

    def add_mirrored(self, mesh: trimesh.Trimesh, role: str, family: str) -> None:
        """Add ``mesh`` and its mirror image across X=0 (left/right pairs)."""
        from .parts import mirrored_x

        self.add(mesh, role, family)
        self.add(mirrored_x(mesh), role, family)


def choice(rng: np.random.Generator, options, p=None):
    """``rng.choice`` that returns plain Python items (strings stay ``str``)."""
    idx = int(rng.choice(len(options), p=p))
    return options[idx]
