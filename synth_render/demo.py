"""``python -m synth_render demo``: shapes -> both render styles -> voxels -> contact sheet."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from . import r2n2
from .binvox import read_binvox
from .config import RenderConfig, ShapesConfig, VoxelizeConfig
from .gallery import contact_sheet, save_png, voxel_preview
from .shapenet import find_models
from .taxonomy import ALL_SYNSETS, class_name

log = logging.getLogger(__name__)


def run_demo(out: Path, per_class: int = 1, views: int = 4, size: int = 128, seed: int = 1000,
             workers: int = 2, synsets: list[str] | None = None) -> int:
    """Build a small data set of all 13 classes end to end and write ``contact_sheet.png``."""
    from .procedural import run_shapes
    from .render import run_render
    from .voxelize import run_voxelize

    shapes, vox = out / "shapes", out / "voxels"
    renders = {style: out / f"renders_{style}" for style in ("synthetic", "photo")}
    log.info("1/4 generating %d shapes per class into %s", per_class, shapes)
    failures = run_shapes(ShapesConfig(shapes, synsets or list(ALL_SYNSETS), per_class, seed))
    for i, (style, dest) in enumerate(renders.items(), start=2):
        log.info("%d/4 rendering the %s style into %s", i, style, dest)
        failures += run_render(RenderConfig(shapes, dest, style=style, views=views, size=size,
                                            workers=workers, seed=seed))
    log.info("4/4 voxelizing into %s", vox)
    failures += run_voxelize(VoxelizeConfig(shapes, vox, res=32))
    sheet = save_png(build_sheet(shapes, renders, vox, min(views, 2)), out / "contact_sheet.png")
    log.info("contact sheet: %s", sheet)
    print(f"shapes   {shapes}\nrenders  {renders['synthetic']}  {renders['photo']}\n"
          f"voxels   {vox}\nsheet    {sheet}")
    return 1 if failures else 0


def build_sheet(shapes: Path, renders: dict[str, Path], vox: Path, views: int = 2):
    """One row per model: ``views`` synthetic views, ``views`` photo views, the voxel grid."""
    rows, labels = [], []
    for ref in find_models(shapes):
        row = []
        for dest in renders.values():
            rdir = r2n2.rendering_dir(dest, ref.synset, ref.model_id)
            row += [_open(rdir / r2n2.view_file_name(i)) for i in range(views)]
        vpath = r2n2.voxel_path(vox, ref.synset, ref.model_id)
        row.append(voxel_preview(read_binvox(vpath).grid) if vpath.is_file() else None)
        rows.append(row)
        labels.append(f"{class_name(ref.synset)}\n{ref.model_id[:8]}")
    cols = [f"synthetic {i}" for i in range(views)] + [f"photo {i}" for i in range(views)]
    return contact_sheet(rows, labels, cols + ["voxels 32^3"])


def _open(path: Path) -> Image.Image | None:
    return Image.open(path) if path.is_file() else None
