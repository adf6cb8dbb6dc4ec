"""The framing dev set: judge a foreground model (or a framing change) without the test shapes.

    .venv/bin/python benchmarks/framing_dev.py --data data/procedural --out work/framing_dev \\
        --model shipped --model runs/fg7/foreground.pt

The 101 source-validation shapes' synthetic renders (never test shapes; the foreground model
trains on ``source_train`` and ``target_train`` objects) with their alpha as the object mask,
composited through :func:`backend.data.reframing.reframe` into the held-out background pool
(2 views, seed 7: other crops than the test trees'), as ``composited``, ``fill95``,
``small35`` and ``offcentre15`` trees. Every ``--model`` is scored on the four by
:func:`backend.evaluation.foreground.evaluate_foreground` (the code framing runs); the
class-mean box IoU per set and their mean are printed and written to ``<out>/results.json``
(a model scored again replaces its row). The trees are built once and kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.foreground import load_segmenter  # noqa: E402
from backend.data.reframing import VARIANTS, alpha_object_tree, build_reframed_trees  # noqa: E402
from backend.data.splits import load_splits  # noqa: E402
from backend.evaluation.foreground import evaluate_foreground  # noqa: E402

DEV_SEED = 7


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "procedural")
    p.add_argument("--out", type=Path, default=ROOT / "work" / "framing_dev")
    p.add_argument("--model", action="append", help="shipped or a foreground model file "
                   "(repeatable; default: shipped)")
    p.add_argument("--views", type=int, default=2)
    args = p.parse_args(argv)
    keys = load_splits(args.data / "splits.json").source_val
    source = alpha_object_tree(args.data / "renders_synthetic", keys, args.out / "source",
                               args.views)
    trees = build_reframed_trees(source, keys, args.out / "trees", views=args.views,
                                 seed=DEV_SEED)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for model in args.model or ["shipped"]:
        segmenter = load_segmenter(model)
        if segmenter is None:
            raise SystemExit(f"no foreground model {model!r}")
        row = {v: evaluate_foreground(trees[v], keys, segmenter, args.views)["class_mean"]
               ["box_iou"] for v in VARIANTS}
        results[model] = row | {"mean": float(np.mean(list(row.values())))}
        results_file.write_text(json.dumps(results, indent=1))
    print("| model | " + " | ".join(VARIANTS) + " | mean box IoU |")
    print("| --- |" + " ---: |" * (len(VARIANTS) + 1))
    for label, row in results.items():
        print(f"| {label} | " + " | ".join(f"{row[v]:.3f}" for v in (*VARIANTS, "mean"))
              + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
