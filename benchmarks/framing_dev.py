"""The framing dev set: judge a foreground model (or a framing change) without the test shapes.

    .venv/bin/python benchmarks/framing_dev.py --data data/procedural --out work/framing_dev \\
        --model shipped --model runs/fg7/foreground.pt

The 101 source-validation shapes' synthetic renders (never test shapes; the foreground model
trains on ``source_train`` and ``target_train`` objects) with their alpha as the object mask,
composited through :func:`backend.data.reframing.reframe` into the held-out background pool
(2 views, seed 7: other crops than the test trees'), as ``composited``, ``fill95``,
``small35`` and ``offcentre15`` trees. Every ``--model`` is scored on the four by
:func:`backend.evaluation.foreground.evaluate_foreground` (the code framing runs); the
class-mean box IoU per set and their mean are printed and written to ``<out>/results.json``,
a row per model file (named as given, with its content's digest, so ``shipped`` before and
after a new model ships are two rows; scoring a file again replaces its row; another
``--views`` starts a new file). The trees are built once and kept. With
``--gallery N``, ``<out>/wide_shots.png`` shows the first N wide shots that the first model
boxes at an IoU under 0.7: each image with the true box (green) and each model's box and
box IoU (red, orange, purple: up to three models), beside each model's probabilities.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.foreground import load_segmenter  # noqa: E402
from backend.core.preprocess import foreground_mask  # noqa: E402
from backend.data.foreground import mask_box  # noqa: E402
from backend.data.reframing import VARIANTS, alpha_object_tree, build_reframed_trees  # noqa: E402
from backend.data.splits import load_splits  # noqa: E402
from backend.evaluation.foreground import box_iou, evaluate_foreground  # noqa: E402
from synth_render import r2n2  # noqa: E402

DEV_SEED = 7
TILE = 128  # pixels a side of a gallery panel
BOX_COLOURS = ((255, 40, 40), (255, 170, 0), (200, 0, 255))


def wide_shot_gallery(tree: Path, records: list[dict], segmenters: list, n: int,
                      out: Path) -> None:
    """The first ``n`` records boxed at an IoU under 0.7, with every segmenter's box and
    probabilities (see the module docstring)."""
    bad = [r for r in records if r["box_iou"] < 0.7][:n]
    tiles = []
    for r in bad:
        render_dir = r2n2.rendering_dir(tree, *r["key"].split("/"))
        image = render_dir / r["image"]
        with Image.open(r2n2.mask_path(render_dir, int(image.stem))) as im:
            truth = mask_box(np.asarray(im.convert("L")))
        with Image.open(image) as im:
            shown = im.convert("RGB").resize((TILE, TILE))
            scale = TILE / im.width
        draw = ImageDraw.Draw(shown)
        draw.rectangle([v * scale for v in truth], outline=(0, 230, 0))
        panels = [shown]
        colours = BOX_COLOURS[:len(segmenters)]  # main() refuses more models than colours
        for k, (segmenter, colour) in enumerate(zip(segmenters, colours, strict=True)):
            prob, box, _ = foreground_mask(image, segmenter)
            if box is not None:
                draw.rectangle([v * scale for v in box], outline=colour)
            draw.text((3, 2 + 11 * k), f"{box_iou(box, truth):.2f}", fill=colour)
            panels.append(Image.fromarray(np.uint8(prob * 255)).resize((TILE, TILE)))
        tiles.append(np.concatenate([np.asarray(p.convert("RGB")) for p in panels], axis=1))
    if not tiles:
        return
    cols = 3
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[i:i + cols], axis=1) for i in range(0, len(tiles), cols)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "procedural")
    p.add_argument("--out", type=Path, default=ROOT / "work" / "framing_dev")
    p.add_argument("--model", action="append", help="shipped or a foreground model file "
                   "(repeatable; default: shipped)")
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--gallery", type=int, default=0, metavar="N",
                   help="draw N badly boxed wide shots into <out>/wide_shots.png")
    args = p.parse_args(argv)
    keys = load_splits(args.data / "splits.json").source_val
    source = alpha_object_tree(args.data / "renders_synthetic", keys, args.out / "source",
                               args.views)
    trees = build_reframed_trees(source, keys, args.out / "trees", views=args.views,
                                 seed=DEV_SEED)
    models = args.model or ["shipped"]
    if args.gallery and len(models) > len(BOX_COLOURS):
        raise SystemExit(f"--gallery draws at most {len(BOX_COLOURS)} models")
    results_file = args.out / "results.json"
    setting = {"views": args.views, "seed": DEV_SEED}
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    if results.get("setting") != setting:
        results = {"setting": setting, "rows": {}}
    segmenters, wide = [load_segmenter(m) for m in models], []
    for model, segmenter in zip(models, segmenters, strict=True):
        if segmenter is None:
            raise SystemExit(f"no foreground model {model!r}")
        reports = {v: evaluate_foreground(trees[v], keys, segmenter, args.views)
                   for v in VARIANTS}
        row = {v: r["class_mean"]["box_iou"] for v, r in reports.items()}
        label = f"{model} ({hashlib.sha256(Path(segmenter.path).read_bytes()).hexdigest()[:8]})"
        results["rows"][label] = row | {"mean": float(np.mean(list(row.values())))}
        results_file.write_text(json.dumps(results, indent=1))
        wide.append(reports["small35"]["records"])
    if args.gallery:
        wide_shot_gallery(trees["small35"], wide[0], segmenters, args.gallery,
                          args.out / "wide_shots.png")
    print("| model | " + " | ".join(VARIANTS) + " | mean box IoU |")
    print("| --- |" + " ---: |" * (len(VARIANTS) + 1))
    for label, row in results["rows"].items():
        print(f"| {label} | " + " | ".join(f"{row[v]:.3f}" for v in (*VARIANTS, "mean"))
              + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
