"""The range of framings the reconstruction network was trained on: where the object lies in
the source-training synthetic renders, by their alpha (no labels, no test shapes).

    .venv/bin/python benchmarks/framing_range.py --data data/procedural

Prints percentiles of the object's longer side as a share of the render's side and of the
offset of its box centre from the frame's centre (per axis, as a share of the side): the
constants of range framing in :mod:`backend.core.preprocess` (``FRAMING_RANGE``,
``FRAMING_OFFSET``) are the p10 / p90 printed here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.preprocess import ALPHA_OPAQUE, object_framing  # noqa: E402
from backend.data.foreground import mask_box  # noqa: E402
from backend.data.splits import load_splits  # noqa: E402


def render_framing(path: Path) -> tuple[float, float] | None:
    """:func:`object_framing` of one RGBA render's opaque pixels (None: none)."""
    alpha = np.asarray(Image.open(path).convert("RGBA"))[:, :, 3]
    box = mask_box(alpha, ALPHA_OPAQUE)
    return None if box is None else object_framing(box, (alpha.shape[1], alpha.shape[0]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "procedural")
    p.add_argument("--views", type=int, default=8, help="views per shape")
    args = p.parse_args(argv)
    keys = load_splits(args.data / "splits.json").source_train
    stats = []
    for key in keys:
        folder = args.data / "renders_synthetic" / key / "rendering"
        for view in range(args.views):
            found = render_framing(folder / f"{view:02d}.png")
            if found is not None:
                stats.append(found)
    share, offset = np.array(stats).T
    q = (5, 10, 50, 90, 95)
    print(f"{len(stats)} source-training renders ({len(keys)} shapes)")
    print("percentile      " + "  ".join(f"p{v:<4d}" for v in q))
    print("longer side     " + "  ".join(f"{v:.3f}" for v in np.percentile(share, q)))
    print("centre offset   " + "  ".join(f"{v:.3f}" for v in np.percentile(offset, q)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
