"""``python -m backend dataset``: the training/evaluation data set, built with the data engine.

Steps (each resumable; a rerun skips finished work):
shapes (13 classes x ``per_class``) -> ``splits.json`` + per-subset model lists -> 32³ voxels for
every shape -> ``synthetic`` renders of source and test shapes -> ``photo`` renders of target
and test shapes. Layout under ``out``::

    shapes/  voxels/  renders_synthetic/  renders_photo/  splits.json  lists/<subset>.txt
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from backend.core.config import add_dataclass_arguments, arg, dataclass_from_args, positive_int
from backend.data.splits import (
    SUBSETS,
    Splits,
    load_splits,
    make_splits,
    save_splits,
    write_model_lists,
)
from synth_render import r2n2
from synth_render.config import RenderConfig, ShapesConfig, VoxelizeConfig
from synth_render.procedural import run_shapes
from synth_render.render import run_render
from synth_render.shapenet import find_models
from synth_render.taxonomy import ALL_SYNSETS
from synth_render.voxelize import run_voxelize

log = logging.getLogger(__name__)

# Which render styles each subset needs: source shapes are seen as CAD renders, target shapes
# as photos, test shapes as both (to report both domains).
STYLE_SUBSETS = {"synthetic": ("source_train", "source_val", "test"),
                 "photo": ("target_train", "test")}


@dataclass
class DataConfig:
    """``backend dataset``: the procedural training and evaluation set."""

    out: Path = arg(Path("data/procedural"), "data set root")
    per_class: int = arg(150, "procedural shapes per class", type=positive_int)
    views: int = arg(8, "views per shape and style", type=positive_int)
    size: int = arg(64, "render side in pixels", type=positive_int)
    # Training shapes use seeds < 1000; the demo uses seeds >= 1000.
    seed: int = arg(0, "seed of the shapes (and so of everything built from them)")
    workers: int = arg(2, "Blender render workers", flag="render_workers",
                       aliases=("--workers",), type=positive_int)
    # A larger shape set for fine-tuning may need only its CAD renders, the target photos
    # coming from another set (`backend train --target-images`): photo renders cost ~30x more.
    styles: tuple[str, ...] = arg(tuple(STYLE_SUBSETS), "render styles to build",
                                  choices=list(STYLE_SUBSETS))


def _updated_splits(path: Path, keys: list[str]) -> Splits:
    """The split file at ``path`` with ``keys`` added (a rerun with a larger ``--per-class``).

    A key's subset depends only on its id, so shapes already split stay where they are; a
    file whose stored keys disagree with that rule was made some other way and is refused
    rather than rewritten."""
    stored = load_splits(path) if path.is_file() else Splits()
    splits = make_splits([*(k for n in SUBSETS for k in stored.subset(n)), *keys])
    assigned = {k: n for n in SUBSETS for k in splits.subset(n)}
    moved = [k for n in SUBSETS for k in stored.subset(n) if assigned[k] != n]
    if moved:
        raise ValueError(f"{path}: {len(moved)} shapes (e.g. {moved[0]}) are not in the subset "
                         "this version assigns them; build into a new --out folder")
    if splits != stored:
        added = sum(len(splits.subset(n)) - len(stored.subset(n)) for n in SUBSETS)
        if path.is_file():
            log.info("adding %d new shapes to %s", added, path)
        save_splits(splits, path)
    return splits


def _voxel_fill(voxels: Path) -> str:
    """The fill a marked voxel tree records (a data set converted from an earlier version
    keeps its flood fill, so a rerun never mixes two fills), else binvox's carving."""
    marker = r2n2.read_marker(voxels)
    fill = marker.get("fill", "carve") if marker else "carve"
    if fill != "carve":
        log.info("%s holds %s-filled grids (%s): new grids use the same fill", voxels, fill,
                 r2n2.CONVENTIONS_FILE)
    return fill


def build_dataset(cfg: DataConfig) -> int:
    """Build (or finish building) the data set; returns an exit code."""
    shapes = cfg.out / "shapes"
    failures = run_shapes(ShapesConfig(shapes, list(ALL_SYNSETS), cfg.per_class, cfg.seed))
    splits = _updated_splits(cfg.out / "splits.json", [r.key for r in find_models(shapes)])
    lists = write_model_lists(splits, cfg.out / "lists")
    failures += run_voxelize(VoxelizeConfig(shapes, cfg.out / "voxels", res=32,
                                            workers=cfg.workers,
                                            fill=_voxel_fill(cfg.out / "voxels")))
    for style in cfg.styles:
        subsets = STYLE_SUBSETS[style]
        listing = cfg.out / "lists" / f"{style}.txt"
        listing.write_text("".join(lists[s].read_text() for s in subsets))
        failures += run_render(RenderConfig(shapes, cfg.out / f"renders_{style}", style=style,
                                            views=cfg.views, size=cfg.size, workers=cfg.workers,
                                            seed=cfg.seed, models=listing))
    log.info("data set in %s (%s)", cfg.out,
             ", ".join(f"{n}={len(splits.subset(n))}" for n in ("source_train", "source_val",
                                                               "target_train", "test")))
    return 1 if failures else 0


def add_dataset_parser(sub) -> None:
    """Register ``dataset`` on ``python -m backend``'s sub-command parsers."""
    p = sub.add_parser("dataset", help="build the procedural training/evaluation data set")
    add_dataclass_arguments(p, DataConfig)
    p.set_defaults(func=lambda args: build_dataset(dataclass_from_args(DataConfig, args)))
