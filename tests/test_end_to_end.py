"""The data engine end to end through its CLI: shapes -> both render styles -> voxels -> sheet."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synth_render import r2n2, read_binvox
from synth_render.cli import main
from synth_render.shapenet import find_models

pytestmark = pytest.mark.blender


def test_demo_builds_a_consistent_dataset(tmp_path):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--classes", "chair,airplane", "--per-class", "2",
               "--views", "2", "--size", "64"])
    assert rc == 0
    refs = find_models(out / "shapes")
    assert len(refs) == 4
    for ref in refs:
        for style, mode in (("synthetic", "RGBA"), ("photo", "RGB")):
            rdir = r2n2.rendering_dir(out / f"renders_{style}", ref.synset, ref.model_id)
            assert r2n2.is_complete(rdir, 2)
            with Image.open(rdir / "00.png") as im:
                assert (im.size, im.mode) == ((64, 64), mode)
        vox = read_binvox(r2n2.voxel_path(out / "voxels", ref.synset, ref.model_id))
        assert vox.grid.shape == (32, 32, 32) and 0 < vox.grid.mean() < 0.9
        # Centred placement: the grid is filled from edge to edge along the longest axis.
        extent = [np.flatnonzero(vox.grid.any(axis=tuple(a for a in range(3) if a != ax)))
                  for ax in range(3)]
        assert max(e[-1] - e[0] + 1 for e in extent) == 32
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size[1] > 4 * 64  # one row per model


def test_rerun_is_a_no_op_and_keeps_outputs(tmp_path):
    args = ["demo", "--out", str(tmp_path), "--classes", "table", "--per-class", "1",
            "--views", "2", "--size", "64"]
    assert main(args) == 0
    (ref,) = find_models(tmp_path / "shapes")
    png = r2n2.rendering_dir(tmp_path / "renders_photo", ref.synset, ref.model_id) / "01.png"
    before = png.stat().st_mtime_ns
    assert main(args) == 0
    assert png.stat().st_mtime_ns == before


def test_backend_dataset_can_build_only_the_cad_renders(tmp_path):
    # A larger shape set for fine-tuning needs only its CAD renders (photo renders cost ~30x).
    from backend.cli import main as backend_main
    from backend.data.splits import load_splits

    out = tmp_path / "x"
    rc = backend_main(["dataset", "--out", str(out), "--per-class", "1", "--views", "1",
                       "--size", "32", "--styles", "synthetic"])
    assert rc == 0
    splits = load_splits(out / "splits.json")
    cad = [*splits.source_train, *splits.source_val, *splits.test]
    assert cad  # 13 shapes: some are CAD-rendered
    for key in cad:
        synset, _, model = key.partition("/")
        assert r2n2.is_complete(r2n2.rendering_dir(out / "renders_synthetic", synset, model), 1)
    assert not (out / "renders_photo").exists()
