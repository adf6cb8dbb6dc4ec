"""Contact sheet of procedural shapes (quick numpy point-splat renderer, no Blender).

python benchmarks/shape_preview.py --per-class 6 --out work/shapes_preview.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from synth_render.procedural import generate_shape, shape_rng
from synth_render.shapenet import normalize_v2
from synth_render.taxonomy import ALL_SYNSETS, class_name, resolve_classes


def render(
    parts,
    size: int = 160,
    azimuth: float = 35.0,
    elevation: float = 25.0,
    points: int = 120_000,
    seed: int = 0,
) -> np.ndarray:
    """Orthographic shaded view of a list of parts as an ``(size, size, 3)`` uint8 image."""
    allv = normalize_v2(np.concatenate([p.vertices for p in parts]))
    offs = np.cumsum([0] + [len(p.vertices) for p in parts])
    az, el = np.radians(azimuth), np.radians(elevation)
    # camera looks at the object's front (-Z) from the left-front, above
    view = np.array([np.sin(az) * np.cos(el), np.sin(el), -np.cos(az) * np.cos(el)])
    right = np.cross([0, 1, 0], view)
    right /= np.linalg.norm(right)
    up = np.cross(view, right)
    light = view * 0.6 + up * 0.6 + right * 0.3
    light /= np.linalg.norm(light)
    areas = [
        trimesh.Trimesh(allv[offs[i] : offs[i + 1]], p.faces, process=False).area
        for i, p in enumerate(parts)
    ]
    total = sum(areas)
    pts, cols = [], []
    rng = np.random.default_rng(seed)
    for i, p in enumerate(parts):
        mesh = trimesh.Trimesh(allv[offs[i] : offs[i + 1]], p.faces, process=False)
        n = max(200, int(points * areas[i] / total))
        sample, face = trimesh.sample.sample_surface(mesh, n, seed=rng.integers(1 << 31))
        normal = mesh.face_normals[face]
        shade = 0.35 + 0.65 * np.abs(normal @ light)
        pts.append(sample)
        cols.append(np.clip(np.array(p.color)[None] * shade[:, None] * 1.1, 0, 1))
    pts, cols = np.concatenate(pts), np.concatenate(cols)
    u, v, depth = pts @ right, pts @ up, pts @ view
    px = ((u * 0.95 + 0.5) * (size - 1)).astype(int)
    py = ((0.5 - v * 0.95) * (size - 1)).astype(int)
    img = np.ones((size, size, 3))
    order = np.argsort(depth)  # far (small depth towards camera) first, near last wins
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = np.clip(px[order] + dx, 0, size - 1), np.clip(py[order] + dy, 0, size - 1)
            img[y, x] = cols[order]
    return (img * 255).astype(np.uint8)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-class", type=int, default=6)
    ap.add_argument("--classes", default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--out", type=Path, default=Path("work/shapes_preview.png"))
    args = ap.parse_args(argv)
    from synth_render.procedural import GENERATORS

    synsets = [s for s in resolve_classes(args.classes) if s in GENERATORS] or list(ALL_SYNSETS)
    s, n = args.size, args.per_class
    sheet = Image.new("RGB", (s * n + 90, s * len(synsets)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, synset in enumerate(synsets):
        draw.text((4, row * s + s // 2), class_name(synset), fill="black")
        for i in range(n):
            parts = generate_shape(synset, shape_rng(args.seed, synset, i))
            sheet.paste(Image.fromarray(render(parts, s)), (90 + i * s, row * s))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
