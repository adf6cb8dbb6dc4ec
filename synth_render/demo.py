"""``python -m synth_render demo``: shapes -> both render styles -> voxels -> contact sheet.

:func:`build_demo_data` is the data part on its own; ``python -m backend demo`` reuses it
before serving and reconstructing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import r2n2
from .config import RenderConfig, ShapesConfig, VoxelizeConfig
from .gallery import contact_sheet, save_png, voxel_preview
from .shapenet import find_models
from .taxonomy import ALL_SYNSETS, class_name

log = logging.getLogger(__name__)

STYLES = ("synthetic", "photo")
DEMO_SEED = 1000  # training shapes use seeds < 1000, so demo shapes are never training data


class Steps:
    """Numbered progress lines: ``k/N what`` (shared by the data part and the full demo)."""

    def __init__(self, total: int, logger: logging.Logger = log):
        self.total = total
        self.done = 0
        self.log = logger

    def __call__(self, message: str, *args) -> None:
        self.done += 1
        self.log.info(f"{self.done}/{self.total} {message}", *args)


@dataclass
class DemoData:
    """Where :func:`build_demo_data` put things, and how many of its steps had failures."""

    shapes: Path
    voxels: Path
    renders: dict[str, Path]  # style -> R2N2 rendering tree
    failures: int
    keys: list[str] = field(default_factory=list)  # the shapes asked for; [] means all

    def models(self) -> list:
        """The asked-for shapes in the tree's order (an earlier run into the same folder, with
        other classes or a larger ``per_class``, may have left others there)."""
        wanted = set(self.keys)
        return [ref for ref in find_models(self.shapes) if not wanted or ref.key in wanted]


def data_steps(styles: Sequence[str]) -> int:
    """How many :class:`Steps` :func:`build_demo_data` logs."""
    return 2 + len(styles)


def build_demo_data(out: Path, synsets: Sequence[str] | None = None, per_class: int = 1,
                    views: int = 4, size: int = 128, seed: int = DEMO_SEED, workers: int = 2,
                    styles: Sequence[str] = STYLES, steps: Steps | None = None) -> DemoData:
    """Shapes, renders in ``styles`` and 32³ voxels under ``out`` (resumable: a rerun skips
    finished work)."""
    from .procedural import model_id, run_shapes
    from .render import run_render
    from .voxelize import run_voxelize

    steps = steps or Steps(data_steps(styles))
    synsets = list(synsets or ALL_SYNSETS)
    # A folder from an earlier version (its own conventions) stops the demo here, with the
    # conversion command, rather than failing each render and reading old files.
    for dest in (out / f"renders_{style}" for style in styles):
        r2n2.claim_tree(dest, r2n2.RENDERS)
    r2n2.claim_tree(out / "voxels", r2n2.VOXELS, fill="carve", placement="centred")
    keys = [f"{s}/{model_id(seed, s, i)}" for s in synsets for i in range(per_class)]
    data = DemoData(out / "shapes", out / "voxels",
                    {style: out / f"renders_{style}" for style in styles}, 0, keys)
    steps("generating %d shape(s) per class into %s", per_class, data.shapes)
    data.failures += bool(run_shapes(ShapesConfig(data.shapes, synsets, per_class, seed)))
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "models.txt"  # render and voxelize these shapes only
    listing.write_text("".join(f"{key}\n" for key in keys))
    for style, dest in data.renders.items():
        steps("rendering %d view(s) per shape in the %s style into %s", views, style, dest)
        data.failures += bool(run_render(RenderConfig(
            data.shapes, dest, style=style, views=views, size=size, workers=workers, seed=seed,
            models=listing)))
    steps("voxelizing (32³) into %s", data.voxels)
    data.failures += bool(run_voxelize(VoxelizeConfig(data.shapes, data.voxels, res=32,
                                                      models=listing)))
    return data


def run_demo(out: Path, per_class: int = 1, views: int = 4, size: int = 128,
             seed: int = DEMO_SEED, workers: int = 2, synsets: list[str] | None = None) -> int:
    """Build a small data set of all 13 classes end to end and write ``contact_sheet.png``."""
    data = build_demo_data(out, synsets, per_class, views, size, seed, workers)
    sheet = save_png(build_sheet(data.models(), data.renders, data.voxels, min(views, 2)),
                     out / "contact_sheet.png")
    log.info("contact sheet: %s", sheet)
    print(f"shapes   {data.shapes}\nrenders  {data.renders['synthetic']}  "
          f"{data.renders['photo']}\nvoxels   {data.voxels}\nsheet    {sheet}")
    return 1 if data.failures else 0


def build_sheet(models: list, renders: dict[str, Path], vox: Path, views: int = 2):
    """One row per model (:class:`~synth_render.shapenet.ModelRef`): ``views`` synthetic views,
    ``views`` photo views, the voxel grid."""
    rows, labels = [], []
    for ref in models:
        row = []
        for dest in renders.values():
            rdir = r2n2.rendering_dir(dest, ref.synset, ref.model_id)
            row += [_open(rdir / r2n2.view_file_name(i)) for i in range(views)]
        vpath = r2n2.voxel_path(vox, ref.synset, ref.model_id)
        row.append(voxel_preview(r2n2.read_voxels(vpath).grid) if vpath.is_file() else None)
        rows.append(row)
        labels.append(f"{class_name(ref.synset)}\n{ref.model_id[:8]}")
    cols = [f"synthetic {i}" for i in range(views)] + [f"photo {i}" for i in range(views)]
    return contact_sheet(rows, labels, cols + ["voxels 32^3"])


def _open(path: Path) -> Image.Image | None:
    return Image.open(path) if path.is_file() else None
