"""Score the foreground model: ``python -m backend eval-foreground --renders TREE ...``.

For every view with an object mask (``rendering/masks/NN.png``: the photo style's object
pass, or a re-framed tree's placed mask) under an R2N2-layout tree:

- **mask IoU**: the object mask framing takes from the model (probability at or above
  ``MASK_THRESHOLD`` in the main connected regions, :func:`backend.core.preprocess.object_mask`;
  the whole image seen at ``MASK_SIZE`` as framing sees it) against the true mask
  (coverage >= 50 %) resized to ``MASK_SIZE``;
- **box IoU**: the box framing takes from the model (:func:`backend.core.preprocess.foreground_box`,
  in image pixels) against the true mask's box; an empty or unsure mask scores 0 (framing
  then falls back to the whole image), and the share of such fallbacks is reported.

Class means and image means, written to ``<out>/report.json`` and printed.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from backend.core.config import add_dataclass_arguments, arg, dataclass_from_args, positive_int
from backend.core.foreground import ForegroundSegmenter, load_segmenter
from backend.core.preprocess import MASK_SIZE, foreground_mask, object_mask
from backend.data.foreground import MASK_THRESHOLD, ObjectView, mask_box, tree_views
from backend.data.splits import load_splits
from synth_render.taxonomy import SYNSET_TO_NAME

log = logging.getLogger(__name__)


def box_iou(a, b) -> float:
    """IoU of two boxes (x0, y0, x1, y1); 0 when either is None."""
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def score_view(view: ObjectView, segmenter: ForegroundSegmenter) -> dict:
    """One view's mask IoU, box IoU and whether framing would fall back (one segmenter pass,
    the one framing makes)."""
    with Image.open(view.mask) as im:
        truth = np.asarray(im.convert("L"))
    if truth.shape[0] != truth.shape[1]:  # the mask grid matches the image's only then
        raise ValueError(f"{view.mask}: expected a square image, got {truth.shape}")
    prob, found, _ = foreground_mask(view.image, segmenter)
    target = np.asarray(Image.fromarray(truth).resize((MASK_SIZE, MASK_SIZE),
                                                      Image.Resampling.BILINEAR)) >= MASK_THRESHOLD
    pred = object_mask(prob)
    union = (pred | target).sum()
    return {"mask_iou": 1.0 if union == 0 else float((pred & target).sum() / union),
            "box_iou": box_iou(found, mask_box(truth)), "fallback": found is None}


def evaluate_foreground(renders: Path, keys: list[str], segmenter: ForegroundSegmenter,
                        views: int | None = None) -> dict:
    records = []
    per_model: dict[str, int] = defaultdict(int)
    for view in tqdm(tree_views(renders, keys, masks=True), desc="foreground", unit="image"):
        model = view.image.parent.parent
        key = f"{model.parent.name}/{model.name}"
        if views is not None and per_model[key] >= views:
            continue
        per_model[key] += 1
        records.append({"key": key, "image": view.image.name, **score_view(view, segmenter)})
    if not records:
        raise SystemExit(f"{renders}: no views with object masks for these keys")
    by_class: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_class[r["key"].split("/")[0]].append(r)
    per_class = {c: {k: float(np.mean([r[k] for r in rs])) for k in
                     ("mask_iou", "box_iou", "fallback")} | {"n": len(rs)}
                 for c, rs in sorted(by_class.items())}
    means = {k: float(np.mean([v[k] for v in per_class.values()]))
             for k in ("mask_iou", "box_iou", "fallback")}
    return {"renders": str(renders), "images": len(records), "class_mean": means,
            "image_mean": {k: float(np.mean([r[k] for r in records]))
                           for k in ("mask_iou", "box_iou", "fallback")},
            "per_class": per_class, "records": records}


@dataclass
class EvalForegroundConfig:
    """``backend eval-foreground``: which renders, which model, where the report goes."""

    renders: Path = arg(help="a tree with object masks")
    out: Path = arg(help="folder for report.json")
    split: Path | None = arg(None, "split file (default: every model in the tree)")
    subset: str = arg("test", "subset of --split")
    views: int | None = arg(None, "first N views of each model", type=positive_int)
    foreground: str = arg("shipped", "the foreground model to score", metavar="shipped|PATH")


def add_eval_foreground_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval-foreground", help="score the foreground (framing) model",
                              description=__doc__.split("\n\n")[0])
    add_dataclass_arguments(p, EvalForegroundConfig)
    p.set_defaults(func=lambda args: run_eval_foreground(
        dataclass_from_args(EvalForegroundConfig, args)))
    return p


def run_eval_foreground(args: EvalForegroundConfig) -> int:
    """The ``eval-foreground`` command: 0 on success, 2 without a model."""
    if args.split is not None:
        keys = load_splits(args.split).subset(args.subset)
    else:
        keys = sorted(f"{m.parent.name}/{m.name}" for m in args.renders.glob("*/*")
                      if m.is_dir())
    segmenter = load_segmenter(args.foreground)
    if segmenter is None:
        log.error("no foreground model to score")
        return 2
    report = evaluate_foreground(args.renders, keys, segmenter, args.views)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    m = report["class_mean"]
    print(f"{report['images']} images: mask IoU {m['mask_iou']:.3f}, box IoU "
          f"{m['box_iou']:.3f}, fallbacks {m['fallback']:.1%} (class means)")
    for c, v in report["per_class"].items():
        print(f"  {SYNSET_TO_NAME.get(c, c):12s} mask {v['mask_iou']:.3f}  box "
              f"{v['box_iou']:.3f}  (n={v['n']})")
    return 0
