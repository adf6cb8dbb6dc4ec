"""``python -m synth_render {shapes,render,voxelize,convert-r2n2,demo}``: the data engine."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import commands
from .commands import positive_float, positive_int
from .config import RenderConfig, ShapesConfig, VoxelizeConfig
from .shards import parse_shard
from .taxonomy import resolve_classes


def _add_shapes(sub) -> None:
    p = sub.add_parser("shapes", help="procedural shape library (ShapeNetCore v2 layout)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classes", default="all", help="comma-separated names or synset ids")
    p.add_argument("--per-class", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_shapes)


def _add_render(sub) -> None:
    p = sub.add_parser("render", help="render a ShapeNet v1/v2 tree in R2N2's layout")
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--style", choices=("synthetic", "photo"), default="synthetic")
    p.add_argument("--views", type=positive_int, default=24)
    p.add_argument("--size", type=positive_int, default=128)
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--shard", default=None, help="k/n: render only shard k of n")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", default="all")
    p.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per model")
    p.add_argument("--models-per-worker", type=positive_int, default=200)
    p.add_argument("--max-rss-mb", type=positive_float, default=2048.0)
    p.add_argument("--samples", type=positive_int, default=16, help="Cycles samples (photo style)")
    p.add_argument("--models", type=Path, default=None,
                   help="file of <synset>/<model_id> lines (e.g. one split): only those models")
    p.set_defaults(func=_cmd_render)


def _add_voxelize(sub) -> None:
    p = sub.add_parser(
        "voxelize", help="solid binvox grids in ShapeNetVox32 layout and conventions",
        description="Solid binvox grids in 3D-R2N2's ShapeNetVox32 layout and conventions: "
                    "written in ShapeNet v1's frame (front +X; readers turn them into the "
                    "canonical v2 frame), inside decided by binvox's carving.")
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--res", type=positive_int, default=32)
    p.add_argument("--placement", choices=("centred", "corner"), default="centred",
                   help="grid cube (side = longest bounding-box extent) in the frame the file "
                        "is written in (ShapeNet v1's): centred on the shorter axes (R2N2's "
                        "ShapeNetVox32, default) or at the bounding-box minimum (binvox's own, "
                        "as ShapeNet v2's .solid.binvox)")
    p.add_argument("--fill", choices=("carve", "flood"), default="carve",
                   help="inside: binvox's carving (default; what ShapeNet and R2N2 used) or the "
                        "6-connected flood fill of earlier versions (leaks through holes)")
    p.add_argument("--classes", default="all")
    p.add_argument("--shard", default=None)
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--models", type=Path, default=None,
                   help="file of <synset>/<model_id> lines (e.g. one split): only those models")
    p.set_defaults(func=_cmd_voxelize)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="shapes -> both render styles -> voxels -> contact sheet")
    p.add_argument("--out", type=Path, default=Path("work/data-demo"))
    p.add_argument("--per-class", type=positive_int, default=1)
    p.add_argument("--views", type=positive_int, default=4)
    p.add_argument("--size", type=positive_int, default=128)
    p.add_argument("--seed", type=int, default=1000,
                   help="shape seed; >= 1000 so demo shapes never overlap training data (< 1000)")
    p.add_argument("--classes", default="all")
    p.add_argument("--workers", type=positive_int, default=2)
    p.set_defaults(func=_cmd_demo)


def _cmd_shapes(args) -> int:
    from .procedural import run_shapes

    cfg = ShapesConfig(args.out, resolve_classes(args.classes), args.per_class, args.seed)
    return run_shapes(cfg)


def _synsets_or_all(spec: str) -> list[str]:
    return [] if spec.strip().lower() == "all" else resolve_classes(spec)


def _cmd_render(args) -> int:
    from .render import run_render

    cfg = RenderConfig(
        shapes=args.shapes, out=args.out, style=args.style, views=args.views, size=args.size,
        workers=args.workers, shard=parse_shard(args.shard), seed=args.seed,
        synsets=_synsets_or_all(args.classes), timeout_s=args.timeout,
        models_per_worker=args.models_per_worker, max_rss_mb=args.max_rss_mb,
        samples=args.samples, models=args.models,
    )
    return run_render(cfg)


def _cmd_voxelize(args) -> int:
    from .voxelize import run_voxelize

    cfg = VoxelizeConfig(args.shapes, args.out, args.res, _synsets_or_all(args.classes),
                         parse_shard(args.shard), args.workers, args.models, fill=args.fill,
                         placement=args.placement)
    return run_voxelize(cfg)


def _add_convert(sub) -> None:
    p = sub.add_parser(
        "convert-r2n2", help="convert trees from before the R2N2 conventions, in place",
        description="Convert, in place, R2N2-layout trees written by versions of this project "
                    "before 3D-R2N2's conventions were applied: rendering_metadata.txt "
                    "azimuths a become 90 - a, voxel grids turn into ShapeNet v1's frame. "
                    "Pixels are not touched. Resumable; converted trees are marked. "
                    "--mark-real only marks real 3D-R2N2 trees as such.")
    p.add_argument("trees", type=Path, nargs="+",
                   help="render or voxel trees, or a data set root (its renders_*/ and voxels/)")
    p.add_argument("--fill", choices=("flood", "carve"), default="flood",
                   help="how the old grids were filled, to record (old versions: flood)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--assume-old", action="store_true",
                      help="convert a tree with no file only this project writes (an old "
                           "'voxelize --out' tree; without it such a tree counts as real R2N2)")
    what.add_argument("--mark-real", action="store_true",
                      help="convert nothing: mark the trees as real 3D-R2N2 data (e.g. real "
                           "trees placed beside a splits.json)")
    p.set_defaults(func=_cmd_convert)


def _cmd_convert(args) -> int:
    from .convert_tree import run_convert

    return run_convert(args.trees, old_fill=args.fill, assume_old=args.assume_old,
                       real=args.mark_real)


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out, per_class=args.per_class, views=args.views, size=args.size,
                    seed=args.seed, workers=args.workers, synsets=resolve_classes(args.classes))


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser("python -m synth_render", __doc__,
                                 (_add_shapes, _add_render, _add_voxelize, _add_convert,
                                  _add_demo))


def main(argv: list[str] | None = None) -> int:
    return commands.run(build_parser(), argv)
