"""ShapeNetCore trees (owner of the v1/v2 layouts, ``taxonomy.json`` and OBJ/MTL writing).

v1: ``<root>/<synset>/<model_id>/model.obj``, in ShapeNet v1's frame (+Y up, front +X).
v2: ``<root>/<synset>/<model_id>/models/model_normalized.obj`` plus ``<root>/taxonomy.json``;
+Y up, -Z front (the canonical frame, :mod:`synth_render.frames`), centred on the
bounding-box centre with a bounding-box diagonal of 1.

v1 meshes are turned into the canonical frame wherever they are used (:attr:`ModelRef.frame`
says which frame a file is in), so v1 and v2 trees can be mixed. That v1 meshes face +X
follows from 3D-R2N2's ShapeNetVox32 grids, which were made from them and face +X; it was not
checked on a real v1 mesh here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import frames
from .atomic import atomic_write_text
from .taxonomy import SYNSET_TO_LABEL

log = logging.getLogger(__name__)

V1_MESH = "model.obj"
V2_MESH = os.path.join("models", "model_normalized.obj")


@dataclass(frozen=True, order=True)
class ModelRef:
    """One shape in a ShapeNet-layout tree."""

    synset: str
    model_id: str
    mesh_path: Path = field(compare=False)

    @property
    def key(self) -> str:
        return f"{self.synset}/{self.model_id}"

    @property
    def frame(self) -> str:
        """The frame of the mesh file: ShapeNet v1's for ``model.obj``, else the canonical."""
        return frames.SHAPENET_V1 if self.mesh_path.name == V1_MESH else frames.CANONICAL


@dataclass
class Part:
    """A closed triangle mesh with one material (a named diffuse colour)."""

    vertices: np.ndarray  # (V, 3) float
    faces: np.ndarray  # (F, 3) int
    material: str = "default"
    color: tuple[float, float, float] = (0.7, 0.7, 0.7)


def find_models(root: str | os.PathLike, synsets: Sequence[str] | None = None) -> list[ModelRef]:
    """List every model of a v1 or v2 tree (both may be mixed), sorted by synset then id."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"shape tree {root} does not exist")
    wanted = set(synsets) if synsets else None
    refs = []
    for synset_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if wanted is not None and synset_dir.name not in wanted:
            continue
        for model_dir in sorted(p for p in synset_dir.iterdir() if p.is_dir()):
            for rel in (V2_MESH, V1_MESH):
                mesh = model_dir / rel
                if mesh.is_file():
                    refs.append(ModelRef(synset_dir.name, model_dir.name, mesh))
                    break
    return refs


def read_model_list(path: str | os.PathLike) -> set[str]:
    """Keys (``<synset>/<model_id>``) from a text file, one per line; ``#`` starts a comment."""
    keys = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            if line.count("/") != 1:
                raise ValueError(f"{path}: expected '<synset>/<model_id>', got {line!r}")
            keys.add(line)
    return keys


def select_models(root: str | os.PathLike, synsets: Sequence[str] | None = None,
                  shard: tuple[int, int] = (0, 1),
                  model_list: str | os.PathLike | None = None) -> list[ModelRef]:
    """The models of a tree that a job works on: class filter, then model list, then shard.

    Raises ``ValueError`` when nothing is selected before sharding (a wrong ``root`` or a list
    of another tree's keys), and warns about listed keys that are not in the tree."""
    from .shards import take_shard

    in_tree = find_models(root)
    refs = [r for r in in_tree if not synsets or r.synset in synsets]
    if model_list is not None:
        wanted = read_model_list(model_list)
        missing = wanted - {r.key for r in in_tree}
        if missing:
            log.warning("%d of the %d models listed in %s are not in %s (e.g. %s)",
                        len(missing), len(wanted), model_list, root, min(missing))
        refs = [r for r in refs if r.key in wanted]
    if not refs:
        raise ValueError(f"no models selected under {root}"
                         + (f" (classes {', '.join(synsets)})" if synsets else "")
                         + (f" from the list {model_list}" if model_list is not None else "")
                         + ": expected <synset>/<model_id>/model.obj or "
                         "<synset>/<model_id>/models/model_normalized.obj")
    return take_shard(refs, [r.key for r in refs], shard)


def normalize_v2(vertices: np.ndarray) -> np.ndarray:
    """ShapeNet v2 normalization: bounding-box centre at the origin, bounding-box diagonal 1."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if diag <= 0:
        raise ValueError("degenerate shape: zero bounding box")
    return (vertices - (lo + hi) / 2) / diag


def write_obj(path: str | os.PathLike, parts: Iterable[Part]) -> None:
    """Write parts as one OBJ with ``usemtl`` groups and a sibling MTL of diffuse colours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mtl_name = path.with_suffix(".mtl").name
    lines = [f"mtllib {mtl_name}"]
    materials: dict[str, tuple[float, float, float]] = {}
    offset = 1
    for i, part in enumerate(parts):
        materials.setdefault(part.material, part.color)
        lines.append(f"o part_{i:03d}")
        lines.extend(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in part.vertices)
        lines.append(f"usemtl {part.material}")
        lines.extend(f"f {a + offset} {b + offset} {c + offset}" for a, b, c in part.faces)
        offset += len(part.vertices)
    mtl = []
    for name, (r, g, b) in materials.items():
        mtl += [f"newmtl {name}", f"Kd {r:.4f} {g:.4f} {b:.4f}", "Ka 0 0 0", "Ks 0.1 0.1 0.1",
                "Ns 20", "d 1", "illum 2", ""]
    atomic_write_text(path.with_suffix(".mtl"), "\n".join(mtl))
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_v2_model(root: str | os.PathLike, synset: str, model_id: str,
                   parts: Sequence[Part]) -> Path:
    """Write one shape in the v2 layout, normalized jointly over all parts. Returns the OBJ path."""
    allv = np.concatenate([p.vertices for p in parts])
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    centre, diag = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    normed = [Part((p.vertices - centre) / diag, p.faces, p.material, p.color) for p in parts]
    path = Path(root) / synset / model_id / V2_MESH
    write_obj(path, normed)
    return path


def write_taxonomy(root: str | os.PathLike, counts: dict[str, int]) -> None:
    """Write ``taxonomy.json`` in ShapeNetCore v2's format for the given synsets and counts."""
    entries = [
        {"synsetId": s, "name": SYNSET_TO_LABEL.get(s, s), "children": [], "numInstances": n}
        for s, n in sorted(counts.items())
    ]
    atomic_write_text(Path(root) / "taxonomy.json", json.dumps(entries, indent=1))


def read_taxonomy(root: str | os.PathLike) -> dict[str, str]:
    """Map synset id -> label from a tree's ``taxonomy.json`` (empty when absent)."""
    path = Path(root) / "taxonomy.json"
    if not path.is_file():
        return {}
    return {e["synsetId"]: e["name"] for e in json.loads(path.read_text())}


def load_mesh(path: str | os.PathLike):
    """Load an OBJ (or any trimesh format) as one ``trimesh.Trimesh``; clear error when empty."""
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh", process=False, skip_materials=True)
    except Exception as exc:  # trimesh raises many types on corrupt input
        raise ValueError(f"{path}: cannot be read as a mesh ({exc})") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{path}: contains no triangles")
    return mesh
