"""The re-framing table: the shipped weights on the photo-style test set framed as users frame
photos, with and without automatic framing (see :mod:`backend.data.reframing` for the variants).

    .venv/bin/python benchmarks/reframing.py --data data/procedural --out work/reframing

Builds the re-framed trees once (kept; a rerun only evaluates what is missing), runs
``python -m backend eval`` on every tree with ``--no-autocrop`` and ``--autocrop`` (the
shipped foreground model), also on the synthetic test renders, and writes ``table.json`` and
``table.md`` (class-mean IoU per variant, then per class) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.cli import main as backend_main  # noqa: E402
from backend.data.reframing import build_reframed_trees  # noqa: E402
from backend.data.splits import load_splits  # noqa: E402
from synth_render.taxonomy import SYNSET_TO_NAME  # noqa: E402


def _eval(renders: Path, voxels: Path, split: Path, out: Path, autocrop: bool,
          views: int, foreground: str) -> dict:
    if not (out / "report.json").is_file():
        args = ["eval", "--renders", str(renders), "--voxels", str(voxels), "--split",
                str(split), "--out", str(out), "--gallery", "0", "--device", "cpu",
                "--views", str(views), "--autocrop" if autocrop else "--no-autocrop",
                "--foreground", foreground]
        if backend_main(args) != 0:
            raise SystemExit(f"eval failed: {args}")
    return json.loads((out / "report.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "procedural")
    p.add_argument("--out", type=Path, default=ROOT / "work" / "reframing")
    p.add_argument("--views", type=int, default=2, help="views per test shape")
    p.add_argument("--foreground", default="shipped", help="the framing model")
    args = p.parse_args(argv)
    split = args.data / "splits.json"
    keys = load_splits(split).test
    trees = {"rendered": args.data / "renders_photo",
             **build_reframed_trees(args.data / "renders_photo", keys, args.out / "trees",
                                    views=args.views)}
    rows = {}
    sets = [("synthetic", args.data / "renders_synthetic"),
            *((f"photo {name}", tree) for name, tree in trees.items())]
    for label, tree in sets:
        for autocrop in (False, True):
            out = args.out / "eval" / f"{label.replace(' ', '_')}_{'on' if autocrop else 'off'}"
            report = _eval(tree, args.data / "voxels", split, out, autocrop, args.views,
                           args.foreground)
            m = report["metrics"]
            rows[(label, autocrop)] = {
                "iou": m["class_mean"]["iou"], "images": report["n_images"],
                "per_class": {c: v["iou"] for c, v in m["per_class"].items()}}
    table = {f"{label}|{'on' if a else 'off'}": row for (label, a), row in rows.items()}
    (args.out / "table.json").write_text(json.dumps(table, indent=1))
    md = _markdown(rows)
    (args.out / "table.md").write_text(md)
    print(md)
    return 0


def _markdown(rows: dict) -> str:
    labels = list(dict.fromkeys(label for label, _ in rows))
    base = {a: rows[("photo rendered", a)]["iou"] for a in (False, True)}
    lines = ["| test set | images | IoU, framing off | IoU, framing on | on − rendered |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for label in labels:
        off, on = rows[(label, False)], rows[(label, True)]
        delta = "" if label == "synthetic" else f"{on['iou'] - base[True]:+.3f}"
        lines.append(f"| {label} | {off['images']} | {off['iou']:.3f} | {on['iou']:.3f} | "
                     f"{delta} |")
    photo = [label for label in labels if label.startswith("photo")]
    classes = sorted(rows[(photo[0], False)]["per_class"])
    lines += ["", "Per class (IoU, framing off / on):", "",
              "| class | " + " | ".join(label.removeprefix("photo ") for label in photo) + " |",
              "| --- |" + " ---: |" * len(photo)]
    for c in classes:
        cells = [f"{rows[(label, False)]['per_class'].get(c, float('nan')):.2f} / "
                 f"{rows[(label, True)]['per_class'].get(c, float('nan')):.2f}"
                 for label in photo]
        lines.append(f"| {SYNSET_TO_NAME.get(c, c)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
