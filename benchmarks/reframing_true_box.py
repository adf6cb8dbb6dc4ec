"""The re-framing table's ceiling: reconstruction IoU when each image is framed by its *true*
object mask's box (passed as a user's crop, so range framing treats it as framing treats any
box), i.e. what a perfect foreground model would reach.

    .venv/bin/python benchmarks/reframing_true_box.py work/reframing/trees/small35 work/tb/small35

TREE is an R2N2-layout photo tree with object masks (``rendering/masks/NN.png``: the photo
style's object pass, or a tree built by :mod:`backend.data.reframing`); the test split of
``--data`` is evaluated, 2 views, and the class-mean IoU printed (``report.json`` in OUT).
The eval's data set decodes each image and then asks for its framing; this script remembers
the file being decoded and answers with its mask's box (data-loading stays in one process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import backend.data.datasets as datasets  # noqa: E402
from backend.cli import main as backend_main  # noqa: E402
from backend.core.preprocess import framing_of  # noqa: E402
from backend.data.foreground import mask_box  # noqa: E402
from synth_render import r2n2  # noqa: E402

_LOAD = datasets.load_image
_decoding: dict[str, Path] = {}  # the file the eval's data set is decoding


def _load_image(path, *args, **kwargs):
    _decoding["path"] = Path(path)
    return _LOAD(path, *args, **kwargs)


def _true_framing(source, segmenter=None, **kwargs):
    image = _decoding["path"]
    with Image.open(r2n2.mask_path(image.parent, int(image.stem))) as im:
        box = mask_box(np.asarray(im.convert("L")))
    if box is None:  # no object pixels: framing as without a box
        return framing_of(source)
    x0, y0, x1, y1 = box
    return framing_of(source, crop=(x0, y0, x1 - x0, y1 - y0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tree", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "procedural")
    p.add_argument("--views", type=int, default=2)
    args = p.parse_args(argv)
    datasets.load_image, datasets.framing_of = _load_image, _true_framing
    rc = backend_main(["eval", "--renders", str(args.tree), "--voxels", str(args.data / "voxels"),
                       "--split", str(args.data / "splits.json"), "--out", str(args.out),
                       "--gallery", "0", "--device", "cpu", "--views", str(args.views),
                       "--autocrop", "--foreground", "none", "--workers", "0"])
    if rc == 0:
        report = json.loads((args.out / "report.json").read_text())
        print(f"{args.tree}: class-mean IoU framed by the true mask box "
              f"{report['metrics']['class_mean']['iou']:.4f}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
