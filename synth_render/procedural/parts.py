"""Closed-mesh primitive builders shared by every class generator.

Every function returns a watertight ``trimesh.Trimesh`` in the canonical frame (+Y up, -Z
front, X to the object's right-hand side as seen from the front is irrelevant: shapes are
mirror-symmetric or randomized). Parts may overlap; the union is the shape, so nothing here
needs boolean operations.

Conventions: points are ``(x, y, z)``; 2D profiles for :func:`revolve` are ``(radius, y)``;
2D polygons for :func:`extrude` are counter-clockwise and live in the plane orthogonal to
the extrusion axis (see its docstring for which coordinate is which).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh
from trimesh import creation

ArrayLike = Sequence[float] | np.ndarray


# --------------------------------------------------------------------------- basic solids


def box(size: ArrayLike, center: ArrayLike = (0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    """Axis-aligned box of extents ``size`` centred on ``center``."""
    mesh = creation.box(extents=np.asarray(size, float))
    mesh.apply_translation(center)
    return mesh


def box_between(lo: ArrayLike, hi: ArrayLike) -> trimesh.Trimesh:
    """Axis-aligned box spanning the two corners ``lo`` and ``hi``."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return box(np.abs(hi - lo), (lo + hi) / 2)


def cylinder(p0: ArrayLike, p1: ArrayLike, radius: float, sections: int = 16) -> trimesh.Trimesh:
    """Round cylinder whose axis runs from ``p0`` to ``p1``."""
    return creation.cylinder(radius=radius, segment=np.array([p0, p1], float), sections=sections)


def frustum(
    p0: ArrayLike, p1: ArrayLike, r0: float, r1: float, sections: int = 16
) -> trimesh.Trimesh:
    """Truncated cone from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    ring = circle(1.0, sections)
    u, v = _perpendicular_frame(p1 - p0)
    rings = [p + r * (ring[:, :1] * u + ring[:, 1:] * v) for p, r in ((p0, r0), (p1, r1))]
    return loft(rings)


def sphere(center: ArrayLike, radius: float, subdivisions: int = 2) -> trimesh.Trimesh:
    """Icosphere."""
    mesh = creation.icosphere(subdivisions=subdivisions, radius=radius)
    mesh.apply_translation(center)
    return mesh


def ellipsoid(center: ArrayLike, radii: ArrayLike, subdivisions: int = 2) -> trimesh.Trimesh:
    """Icosphere scaled per axis."""
    mesh = creation.icosphere(subdivisions=subdivisions, radius=1.0)
    mesh.apply_scale(np.asarray(radii, float))
    mesh.apply_translation(center)
    return mesh


def capsule(p0: ArrayLike, p1: ArrayLike, radius: float) -> trimesh.Trimesh:
    """Cylinder with hemispherical ends from ``p0`` to ``p1``."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.linalg.norm(p1 - p0))
    mesh = creation.capsule(height=max(length, 1e-6), radius=radius, count=[10, 10])
    # trimesh's capsule runs along +Z, centred at the origin
    mesh.apply_transform(_align_z_to(p1 - p0))
    mesh.apply_translation((p0 + p1) / 2)
    return mesh


def torus(
    center: ArrayLike,
    major: float,
    minor: float,
    axis: str = "y",
    sections: tuple[int, int] = (24, 8),
) -> trimesh.Trimesh:
    """Torus around ``axis`` through ``center``."""
    mesh = creation.torus(major, minor, major_sections=sections[0], minor_sections=sections[1])
    if axis != "z":
        mesh.apply_transform(_AXIS_FROM_Z[axis])
    mesh.apply_translation(center)
    return mesh


# --------------------------------------------------------------------------- 2D outlines


def circle(radius: float, n: int = 16, center: ArrayLike = (0.0, 0.0)) -> np.ndarray:
    """Counter-clockwise circle as an ``(n, 2)`` polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1) * radius + np.asarray(center, float)


def ellipse(a: float, b: float, n: int = 16) -> np.ndarray:
    """Counter-clockwise ellipse with half-axes ``a`` (first coordinate) and ``b``."""
    return circle(1.0, n) * np.array([a, b])


def rounded_rect(w: float, h: float, r: float, corner_segments: int = 3) -> np.ndarray:
    """Counter-clockwise ``w`` x ``h`` rectangle centred at 0 with corner radius ``r``."""
    r = float(np.clip(r, 0.0, 0.499 * min(w, h)))
    if r <= 1e-9:
        return np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    pts = []
    corners = (
        (w / 2 - r, -h / 2 + r, -90),
        (w / 2 - r, h / 2 - r, 0),
        (-w / 2 + r, h / 2 - r, 90),
        (-w / 2 + r, -h / 2 + r, 180),
    )
    for cx, cy, start in corners:
        for a in np.radians(np.linspace(start, start + 90, corner_segments + 1)):
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return np.array(pts)


# --------------------------------------------------------------------------- sweeps


def revolve(
    profile: ArrayLike, sections: int = 24, center: ArrayLike = (0.0, 0.0, 0.0)
) -> trimesh.Trimesh:
    """Revolve a ``(radius, y)`` profile around the vertical axis through ``center``.

    An open profile must start and end on the axis (radius 0) to be closed; a closed loop
    (first point repeated last) that stays off the axis gives a ring-shaped shell, e.g. a
    lamp shade with wall thickness.
    """
    mesh = creation.revolve(np.asarray(profile, float), sections=sections)
    mesh.apply_transform(_AXIS_FROM_Z["y"])  # trimesh revolves around +Z
    mesh.apply_translation(center)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def shell_profile(outer: ArrayLike, thickness: float) -> np.ndarray:
    """A closed ``(radius, y)`` loop: ``outer`` plus the same line offset inwards.

    Revolving it gives a thin-walled open vessel (lamp shade, speaker cone) that is still a
    closed surface, so solid voxelization fills only the wall.
    """
    outer = np.asarray(outer, float)
    inner = outer.copy()
    inner[:, 0] = np.maximum(inner[:, 0] - thickness, 1e-3)
    loop = np.concatenate([outer, inner[::-1], outer[:1]])
    return loop


def loft(rings: Sequence[np.ndarray], cap: bool = True) -> trimesh.Trimesh:
    """Skin a sequence of 3D rings (each ``(n, 3)``, same ``n``, consistently ordered).

    The end rings are closed with a fan around their centroid, so they must be star-shaped
    around it (true for every convex or near-convex section used here).
    """
    rings = [np.asarray(r, float) for r in rings]
    n, m = len(rings[0]), len(rings)
    verts = np.concatenate(rings)
    faces = []
    idx = np.arange(n)
    for k in range(m - 1):
        a, b = k * n + idx, k * n + (idx + 1) % n
        c, d = (k + 1) * n + (idx + 1) % n, (k + 1) * n + idx
        faces.append(np.stack([a, b, c], 1))
        faces.append(np.stack([a, c, d], 1))
    if cap:
        centres = np.array([rings[0].mean(0), rings[-1].mean(0)])
        c0, c1 = len(verts), len(verts) + 1
        verts = np.concatenate([verts, centres])
        faces.append(np.stack([np.full(n, c0), (idx + 1) % n, idx], 1))
        last = (m - 1) * n
        faces.append(np.stack([np.full(n, c1), last + idx, last + (idx + 1) % n], 1))
    return _oriented(verts, np.concatenate(faces))


def tube(points: ArrayLike, radius: float | ArrayLike, sections: int = 10) -> trimesh.Trimesh:
    """Sweep a circle along a polyline (bent legs, arms, runners, handles, rails).

    Frames are parallel-transported along the path so the tube does not twist; at each
    interior joint the ring lies in the bisecting plane (a mitre), which keeps the wall
    thickness right at bends.
    """
    pts = np.asarray(points, float)
    radii = np.broadcast_to(np.asarray(radius, float), (len(pts),))
    seg = np.diff(pts, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    tangents = np.concatenate([seg[:1], seg[:-1] + seg[1:], seg[-1:]])
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    u, _ = _perpendicular_frame(tangents[0])
    ring = circle(1.0, sections)
    rings = []
    for i, (p, t) in enumerate(zip(pts, tangents, strict=True)):
        u = u - np.dot(u, t) * t  # parallel transport: drop the tangential component
        u /= np.linalg.norm(u)
        v = np.cross(t, u)
        scale = 1.0
        if 0 < i < len(pts) - 1:  # mitre: widen so the tube keeps its radius through the bend
            scale = 1.0 / max(float(np.dot(t, seg[i])), 0.3)
        rings.append(p + radii[i] * (ring[:, :1] * u * scale + ring[:, 1:] * v))
    return loft(rings)


def arc_points(
    center: ArrayLike,
    radius: float,
    start_deg: float,
    end_deg: float,
    n: int = 8,
    plane: str = "zy",
) -> np.ndarray:
    """Points on a circular arc in an axis plane (``"zy"``, ``"xy"`` or ``"xz"``)."""
    a = np.radians(np.linspace(start_deg, end_deg, n))
    c = np.asarray(center, float)
    out = np.repeat(c[None], n, axis=0)
    i, j = {"zy": (2, 1), "xy": (0, 1), "xz": (0, 2)}[plane]
    out[:, i] += radius * np.cos(a)
    out[:, j] += radius * np.sin(a)
    return out


def extrude(
    polygon: ArrayLike, depth: float, axis: str = "z", offset: float = 0.0
) -> trimesh.Trimesh:
    """Extrude a simple 2D polygon by ``depth`` along ``axis``, centred on ``offset``.

    Polygon coordinates map to 3D as: axis ``"x"``: ``(z, y)``; axis ``"y"``: ``(x, z)``;
    axis ``"z"``: ``(x, y)``. Any orientation and non-convex outlines are accepted.
    """
    poly = _ccw(np.asarray(polygon, float))
    tris = triangulate(poly)
    n = len(poly)
    lo = np.column_stack([poly, np.full(n, offset - depth / 2)])
    hi = np.column_stack([poly, np.full(n, offset + depth / 2)])
    verts = np.concatenate([lo, hi])
    idx = np.arange(n)
    side = np.concatenate(
        [
            np.stack([idx, (idx + 1) % n, n + (idx + 1) % n], 1),
            np.stack([idx, n + (idx + 1) % n, n + idx], 1),
        ]
    )
    faces = np.concatenate([tris[:, ::-1], tris + n, side])
    order = {"z": [0, 1, 2], "x": [2, 1, 0], "y": [0, 2, 1]}[axis]
    return _oriented(verts[:, order], faces)


def triangulate(poly: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation of a simple counter-clockwise polygon, ``(n-2, 3)`` indices."""
    remaining = list(range(len(poly)))
    tris = []
    guard = 0
    while len(remaining) > 3 and guard < 10 * len(poly) ** 2:
        guard += 1
        k = len(remaining)
        for j in range(k):
            i0, i1, i2 = remaining[j - 1], remaining[j], remaining[(j + 1) % k]
            a, b, c = poly[i0], poly[i1], poly[i2]
            if _cross2(b - a, c - b) <= 1e-12:
                continue  # reflex or flat corner: not an ear
            others = [poly[i] for i in remaining if i not in (i0, i1, i2)]
            if any(_inside_triangle(p, a, b, c) for p in others):
                continue
            tris.append((i0, i1, i2))
            remaining.pop(j)
            break
        else:  # numerically stuck (collinear run): clip anything
            tris.append((remaining[-1], remaining[0], remaining[1]))
            remaining.pop(0)
    tris.append(tuple(remaining))
    return np.array(tris)


# --------------------------------------------------------------------------- transforms


def rotated(
    mesh: trimesh.Trimesh, axis: str, degrees: float, about: ArrayLike = (0.0, 0.0, 0.0)
) -> trimesh.Trimesh:
    """Return ``mesh`` rotated by ``degrees`` around the axis ``"x"``/``"y"``/``"z"``."""
    vec = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[axis]
    mat = trimesh.transformations.rotation_matrix(np.radians(degrees), vec, point=about)
    out = mesh.copy()
    out.apply_transform(mat)
    return out


def mirrored_x(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Mirror image across the X=0 plane (for left/right pairs), outward normals kept."""
    out = mesh.copy()
    out.vertices[:, 0] *= -1
    out.invert()
    return out


def rotate_points(points: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """Rotate an ``(n, 3)`` point array around a coordinate axis through the origin."""
    vec = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[axis]
    mat = trimesh.transformations.rotation_matrix(np.radians(degrees), vec)[:3, :3]
    return np.asarray(points, float) @ mat.T


# --------------------------------------------------------------------------- internals


def _oriented(verts: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:  # consistent winding by construction; flip if it points inwards
        mesh.invert()
    return mesh


def _ccw(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return poly if area > 0 else poly[::-1].copy()


def _cross2(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _inside_triangle(p, a, b, c) -> bool:
    return _cross2(b - a, p - a) >= 0 and _cross2(c - b, p - b) >= 0 and _cross2(a - c, p - c) >= 0


def _perpendicular_frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    helper = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _align_z_to(direction: np.ndarray) -> np.ndarray:
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    mat = np.eye(4)
    mat[:3, :3] = trimesh.geometry.align_vectors([0, 0, 1], d)[:3, :3]
    return mat


_AXIS_FROM_Z = {
    "z": np.eye(4),
    "y": trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]),  # Z -> Y
    "x": trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]),  # Z -> X
}


def beam(
    p0: ArrayLike, p1: ArrayLike, width: float, depth: float | None = None, taper: float = 1.0
) -> trimesh.Trimesh:
    """Square-section bar from ``p0`` to ``p1`` (a wooden leg, rail or slat).

    The section's sides stay aligned with the X axis (or Z for bars along X), so legs and
    rails look like sawn timber, not rotated diamonds. ``taper`` scales the far end.
    """
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    ref = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    v = np.cross(d, ref)
    v /= np.linalg.norm(v)
    u = np.cross(v, d)
    depth = width if depth is None else depth
    sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.5
    rings = [
        p + s * (sq[:, :1] * width * u + sq[:, 1:] * depth * v) for p, s in ((p0, 1.0), (p1, taper))
    ]
    return loft(rings)
