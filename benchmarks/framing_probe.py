"""The shipped weights on held-out synthetic renders with framing off and on.

Renders 13 classes x 3 new shapes x 2 views (seed 4242, 137 px, R2N2's camera protocol) into
``work/framing_probe`` (kept, so a rerun only evaluates) and prints the mean IoU against the
shapes' voxels with ``autocrop`` off (the renders as they are) and on (re-framed by their
alpha to the median framing):

    .venv/bin/python benchmarks/framing_probe.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.preprocess import preprocess_framed  # noqa: E402
from backend.serving.pipeline import Pipeline  # noqa: E402
from synth_render import r2n2  # noqa: E402
from synth_render.demo import build_demo_data  # noqa: E402
from synth_render.taxonomy import ALL_SYNSETS  # noqa: E402

VIEWS = 2


def main() -> int:
    data = build_demo_data(ROOT / "work" / "framing_probe", list(ALL_SYNSETS), per_class=3,
                           views=VIEWS, size=137, seed=4242, workers=1, styles=("synthetic",))
    pipe = Pipeline.load(None, threads=2)
    threshold = float(pipe.info.threshold)
    ious: dict[bool, list[float]] = {False: [], True: []}
    for ref in data.models():
        truth = r2n2.read_voxels(r2n2.voxel_path(data.voxels, ref.synset, ref.model_id)).grid
        folder = r2n2.rendering_dir(data.renders["synthetic"], ref.synset, ref.model_id)
        for view in range(VIEWS):
            for autocrop in (False, True):
                image, _ = preprocess_framed(str(folder / r2n2.view_file_name(view)),
                                             pipe.image_size, autocrop=autocrop)
                with torch.inference_mode():
                    probs = pipe.model.predict(torch.from_numpy(image[None]))["probs"][0]
                pred = probs.numpy() >= threshold
                ious[autocrop].append(np.logical_and(pred, truth).sum()
                                      / max(np.logical_or(pred, truth).sum(), 1))
    for autocrop, values in ious.items():
        print(f"autocrop {'on ' if autocrop else 'off'}: mean IoU {np.mean(values):.4f} "
              f"over {len(values)} renders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
