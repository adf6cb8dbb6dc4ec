"""The retrieval bound of a data set: ``python -m backend bound``.

For every held-out shape, the IoU of the *best-matching training shape of the same class*,
chosen with the ground truth in hand (Tatarchenko et al., "What do single-view 3D
reconstruction networks learn?", CVPR 2019, call it the oracle nearest neighbour). A network
that only recognises which training shape it is looking at can at best reach this figure;
image-to-voxel networks in practice score well below it. It depends on the shapes alone (no
images, no model), so it tells how much IoU a data set's training shapes can buy before any
training is spent, and how that changes with more training shapes.

Writes ``bound.json`` (class means, per-shape best match) and ``bound.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.core.config import add_dataclass_arguments, arg, dataclass_from_args
from backend.data.datasets import VOXEL_RES, read_voxel_grid
from backend.data.splits import SUBSETS, load_splits
from synth_render import r2n2
from synth_render.atomic import atomic_write_text
from synth_render.taxonomy import class_name

log = logging.getLogger(__name__)

CANDIDATE_CHUNK = 1024  # training grids compared at once (1024 x 32^3 float32 = 128 MiB)


def best_match(queries: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``queries`` (N, V) bool, the highest IoU with a row of ``candidates``
    (M, V) bool and that row's index. Two empty grids have IoU 1 (nothing to get wrong)."""
    if len(candidates) == 0:
        raise ValueError("no candidate shapes to match against")
    q = queries.reshape(len(queries), -1).astype(np.float32)
    q_count = q.sum(1)
    best = np.full(len(q), -1.0)
    best_index = np.zeros(len(q), dtype=np.int64)
    for start in range(0, len(candidates), CANDIDATE_CHUNK):
        c = candidates[start:start + CANDIDATE_CHUNK].reshape(-1, q.shape[1]).astype(np.float32)
        inter = q @ c.T  # exact: integer counts < 2^24
        union = q_count[:, None] + c.sum(1)[None, :] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)
        arg = iou.argmax(1)
        top = iou[np.arange(len(q)), arg]
        better = top > best
        best[better], best_index[better] = top[better], start + arg[better]
    return best, best_index


def _by_class(keys: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split("/", 1)[0], []).append(key)
    return groups


def retrieval_bound(train: Mapping[str, np.ndarray], held_out: Mapping[str, np.ndarray]) -> dict:
    """The bound of ``held_out`` grids given ``train`` grids, both ``{"<synset>/<id>": grid}``.

    Returns ``{"class_mean_iou", "per_class": {synset: {"iou", "shapes", "train_shapes"}},
    "shapes": {key: {"iou", "match"}}}``. A held-out class with no training shape is an error:
    the bound would be undefined, not zero."""
    train_groups = _by_class(list(train))
    per_class, shapes = {}, {}
    for synset, keys in sorted(_by_class(list(held_out)).items()):
        candidates = train_groups.get(synset)
        if not candidates:
            raise ValueError(f"class {synset} has held-out shapes but no training shape")
        iou, index = best_match(np.stack([held_out[k] for k in keys]),
                                np.stack([train[k] for k in candidates]))
        for key, value, i in zip(keys, iou, index, strict=True):
            shapes[key] = {"iou": float(value), "match": candidates[int(i)]}
        per_class[synset] = {"iou": float(iou.mean()), "shapes": len(keys),
                             "train_shapes": len(candidates)}
    if not per_class:
        raise ValueError("no held-out shapes")
    return {"class_mean_iou": float(np.mean([c["iou"] for c in per_class.values()])),
            "per_class": per_class, "shapes": shapes}


def load_grids(voxel_root: Path, keys: list[str], what: str) -> dict[str, np.ndarray]:
    """The grids of ``keys`` that exist; missing ones are skipped with one warning."""
    r2n2.tree_conventions(voxel_root, r2n2.VOXELS)
    grids = {}
    for key in keys:
        grid = read_voxel_grid(voxel_root, key, VOXEL_RES)
        if grid is not None:
            grids[key] = grid
    if len(grids) < len(keys):
        log.warning("%s: %d of %d shapes have no usable %d^3 voxels under %s; skipped",
                    what, len(keys) - len(grids), len(keys), VOXEL_RES, voxel_root)
    return grids


def bound_markdown(result: dict) -> str:
    lines = [f"# Retrieval bound: {result['subset']} of {result['split']}", "",
             f"Best same-class training shape ({result['train_subset']} of "
             f"{result['train_split']}, {result['train_shapes']} shapes), chosen with the "
             "ground truth: what a pure recogniser could at best score.", "",
             "| class | held-out shapes | training shapes | IoU |", "| --- | ---: | ---: | ---: |"]
    for synset, row in result["per_class"].items():
        lines.append(f"| {class_name(synset)} | {row['shapes']} | {row['train_shapes']} | "
                     f"{row['iou']:.3f} |")
    lines.append(f"| **class mean** | {result['held_out_shapes']} | {result['train_shapes']} | "
                 f"**{result['class_mean_iou']:.3f}** |")
    return "\n".join(lines) + "\n"


@dataclass
class BoundConfig:
    voxels: Path = field(metadata={"help": "ShapeNetVox32-layout tree"})
    split: Path = field(metadata={"help": "split file of the held-out shapes"})
    out: Path = field(metadata={"help": "folder for bound.json and bound.md"})
    subset: str = arg("test", "held-out subset of --split")
    train_subset: str = arg("source_train", "training subset of --train-split")
    train_voxels: Path | None = arg(None, "training shapes' tree (default --voxels)")
    train_split: Path | None = arg(None, "training shapes' split (default --split)")


def run_bound(cfg: BoundConfig) -> int:
    train_split = cfg.train_split or cfg.split
    train_voxels = cfg.train_voxels or cfg.voxels
    held_keys = load_splits(cfg.split).subset(cfg.subset)
    train_keys = load_splits(train_split).subset(cfg.train_subset)
    overlap = set(held_keys) & set(train_keys)
    if overlap:
        raise ValueError(f"{len(overlap)} shapes are both held out and training shapes "
                         f"(e.g. {sorted(overlap)[0]}): the bound would be 1 for them")
    held_out = load_grids(cfg.voxels, held_keys, cfg.subset)
    train = load_grids(train_voxels, train_keys, cfg.train_subset)
    result = {"subset": cfg.subset, "split": str(cfg.split), "train_subset": cfg.train_subset,
              "train_split": str(train_split), "held_out_shapes": len(held_out),
              "train_shapes": len(train), **retrieval_bound(train, held_out)}
    cfg.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cfg.out / "bound.json", json.dumps(result, indent=1))
    atomic_write_text(cfg.out / "bound.md", bound_markdown(result))
    print(f"retrieval bound ({len(held_out)} {cfg.subset} shapes, {len(train)} training "
          f"shapes): class-mean IoU {result['class_mean_iou']:.3f} -> {cfg.out / 'bound.md'}")
    return 0


def add_bound_parser(subparsers) -> None:
    """Register ``bound`` on ``python -m backend``'s sub-command parsers."""
    p = subparsers.add_parser("bound", help="IoU of the best same-class training shape per "
                              "held-out shape (the retrieval bound of a data set)",
                              description=__doc__.split("\n\n")[0])
    add_dataclass_arguments(p, BoundConfig, choices={"subset": list(SUBSETS),
                                                     "train_subset": list(SUBSETS)})
    p.set_defaults(func=lambda args: run_bound(dataclass_from_args(BoundConfig, args)))
