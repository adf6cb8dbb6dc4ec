"""Write the procedural library as a ShapeNetCore v2 tree (``python -m synth_render shapes``).

Shape ``i`` of a class depends only on ``(seed, synset)`` and the shapes before it: its random
generator and its model id are derived from ``(seed, synset, i)``, so a larger ``per_class``
extends a smaller one (prefix property), reruns skip finished models, and the same seed gives
byte-identical files. A candidate whose 32³ voxels overlap an earlier shape of its class with
IoU >= ``DUPLICATE_IOU`` is redrawn (from ``(seed, synset, i, attempt)``), so a class never
holds near-duplicates, whatever the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write_text
from ..config import ShapesConfig
from ..shapenet import V2_MESH, Part, find_models, normalize_v2, write_taxonomy, write_v2_model
from ..taxonomy import class_name
from ..voxelize import voxelize_mesh
from .registry import generate_shape

log = logging.getLogger(__name__)

DUPLICATE_IOU = 0.85  # margin below the 0.9 "near-duplicate" line the library must stay under
MAX_ATTEMPTS = 20
CHECK_RES = 32


def model_id(seed: int, synset: str, index: int) -> str:
    """A 32-hex-character id (ShapeNet's format) for shape ``index`` of ``synset``."""
    return hashlib.md5(f"procedural/{seed}/{synset}/{index}".encode()).hexdigest()


def shape_rng(seed: int, synset: str, index: int, attempt: int = 0) -> np.random.Generator:
    """The random generator of one candidate shape: independent of every other one's."""
    key = [int(seed), int(synset), int(index)] + ([int(attempt)] if attempt else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def voxel_grid(parts: list[Part], res: int = CHECK_RES) -> np.ndarray:
    """Solid ``(res, res, res)`` occupancy of a shape, normalized and voxelized like the data."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    verts = normalize_v2(np.concatenate([p.vertices for p in parts]))
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)])
    return voxelize_mesh(verts, faces, res, fill="flood").grid


def _max_iou(grid: np.ndarray, earlier: list[np.ndarray]) -> float:
    if not earlier:
        return 0.0
    stack = np.stack(earlier).reshape(len(earlier), -1)
    flat = grid.reshape(-1)
    inter = (stack & flat).sum(1)
    union = (stack | flat).sum(1)
    return float((inter / np.maximum(union, 1)).max())


def class_shapes(seed: int, synset: str, count: int):
    """Yield ``(index, parts, grid)`` of a class's first ``count`` shapes, no near-duplicates."""
    accepted: list[np.ndarray] = []
    for i in range(count):
        for attempt in range(MAX_ATTEMPTS):
            parts = generate_shape(synset, shape_rng(seed, synset, i, attempt))
            grid = voxel_grid(parts)
            if _max_iou(grid, accepted) < DUPLICATE_IOU:
                break
        else:  # the class's generator has run out of variety: keep the last draw, say so
            log.warning("%s shape %d: near-duplicate after %d attempts", class_name(synset), i,
                        MAX_ATTEMPTS)
        accepted.append(grid)
        yield i, parts, grid


SEED_FILE = "procedural.json"  # the seed a procedural tree was generated with


def _claim_seed(out: Path, seed: int) -> None:
    """Record ``seed`` in ``out``, or refuse when the tree was made with another one: the
    ids would not collide, but two seeds' shapes would silently form one data set."""
    path = out / SEED_FILE
    if path.is_file():
        stored = json.loads(path.read_text()).get("seed")
        if stored != seed:
            raise ValueError(f"{out} holds shapes of --seed {stored}, not {seed}; "
                             "choose another --out")
    else:
        atomic_write_text(path, json.dumps({"seed": seed}) + "\n")


def run_shapes(cfg: ShapesConfig) -> int:
    """Generate ``cfg.per_class`` shapes per synset into ``cfg.out``; returns an exit code."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _claim_seed(out, cfg.seed)
    written = skipped = 0
    with tqdm(total=len(cfg.synsets) * cfg.per_class, desc="shapes", unit="shape") as bar:
        for synset in cfg.synsets:
            # Earlier shapes are regenerated even when on disk: the duplicate check needs them.
            for i, parts, _ in class_shapes(cfg.seed, synset, cfg.per_class):
                mid = model_id(cfg.seed, synset, i)
                if (out / synset / mid / V2_MESH).is_file():
                    skipped += 1  # idempotent: the OBJ is written last and atomically
                else:
                    write_v2_model(out, synset, mid, parts)
                    written += 1
                bar.update()
    counts: dict[str, int] = {}
    for ref in find_models(out):
        counts[ref.synset] = counts.get(ref.synset, 0) + 1
    write_taxonomy(out, counts)
    log.info("shapes: %d written, %d already present; %s", written, skipped,
             ", ".join(f"{class_name(s)}={n}" for s, n in sorted(counts.items())))
    return 0
