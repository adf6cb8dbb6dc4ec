"""Within-class variety of the procedural shape library, measured on voxel grids.

For each class, ``--per-class`` shapes are generated in memory (seed ``--seed``), normalized
as ShapeNet v2 does, and voxelized at ``--res`` exactly as the dataset is (``voxelize_mesh``:
a solid grid fitted to each shape's own bounding cube). Reported per class:

* median pairwise IoU (must be < 0.5 for the part-based classes: chair, table, bench, sofa,
  lamp, airplane, rifle, watercraft);
* the largest nearest-neighbour IoU, i.e. the IoU of the most similar pair (< 0.9 for every
  class: no near-duplicates).

    python benchmarks/shape_variety.py --per-class 30 --out work/shape_variety

writes ``shape_variety.json`` and ``shape_variety.md`` into ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from synth_render.procedural.library import CHECK_RES, class_shapes, voxel_grid
from synth_render.taxonomy import ALL_SYNSETS, class_name, resolve_classes

log = logging.getLogger("shape_variety")

PART_BASED = {"chair", "table", "bench", "sofa", "lamp", "airplane", "rifle", "watercraft"}
MEDIAN_MAX = 0.5
NEAREST_MAX = 0.9


def pairwise_iou(grids: np.ndarray) -> np.ndarray:
    """``(N, N)`` IoU matrix of ``(N, res, res, res)`` boolean grids."""
    flat = grids.reshape(len(grids), -1).astype(np.float32)
    inter = flat @ flat.T
    size = flat.sum(1)
    union = size[:, None] + size[None, :] - inter
    return inter / np.maximum(union, 1)


def class_variety(synset: str, n: int, seed: int, res: int) -> dict:
    """Variety figures of one class."""
    t0 = time.time()
    # The library's own generation path (near-duplicate redraws included), voxelized at 32³.
    grids = np.stack([grid if res == CHECK_RES else voxel_grid(parts, res)
                      for _, parts, grid in class_shapes(seed, synset, n)])
    iou = pairwise_iou(grids)
    upper = iou[np.triu_indices(n, 1)]
    np.fill_diagonal(iou, -1)
    nearest = iou.max(1)
    name = class_name(synset)
    median, worst = float(np.median(upper)), float(nearest.max())
    ok = worst < NEAREST_MAX and (name not in PART_BASED or median < MEDIAN_MAX)
    return {
        "synset": synset,
        "class": name,
        "n": n,
        "median_pairwise_iou": median,
        "mean_nearest_iou": float(nearest.mean()),
        "max_nearest_iou": worst,
        "most_similar_pair": [int(i) for i in np.unravel_index(iou.argmax(), iou.shape)],
        "part_based": name in PART_BASED,
        "pass": bool(ok),
        "seconds": round(time.time() - t0, 2),
    }


def markdown(rows: list[dict], res: int, seed: int) -> str:
    """The results as a Markdown table."""
    lines = [
        f"Shape variety at {res}^3 (seed {seed}; median < {MEDIAN_MAX} required for "
        f"part-based classes, nearest-neighbour < {NEAREST_MAX} for all)",
        "",
        "| class | n | median pairwise IoU | mean NN IoU | max NN IoU | pass |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        med = f"{r['median_pairwise_iou']:.3f}" + ("" if r["part_based"] else " (n/a)")
        lines.append(
            f"| {r['class']} | {r['n']} | {med} | {r['mean_nearest_iou']:.3f} | "
            f"{r['max_nearest_iou']:.3f} | {'PASS' if r['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--classes", default="all")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("work/shape_variety"),
        help="folder for shape_variety.json and shape_variety.md",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    synsets = resolve_classes(args.classes) if args.classes != "all" else list(ALL_SYNSETS)
    rows = []
    for synset in synsets:
        rows.append(class_variety(synset, args.per_class, args.seed, args.res))
        log.info(
            "%-12s median %.3f  max NN %.3f  (%.1fs)",
            rows[-1]["class"],
            rows[-1]["median_pairwise_iou"],
            rows[-1]["max_nearest_iou"],
            rows[-1]["seconds"],
        )
    table = markdown(rows, args.res, args.seed)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shape_variety.json").write_text(
        json.dumps(
            {"res": args.res, "seed": args.seed, "per_class": args.per_class, "classes": rows},
            indent=1,
        )
    )
    (args.out / "shape_variety.md").write_text(table)
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
