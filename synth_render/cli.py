"""``python -m synth_render {shapes,render,voxelize,demo}``: the data engine."""

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
    p = sub.add_parser("voxelize", help="solid binvox grids in ShapeNetVox32 layout")
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--res", type=positive_int, default=32)
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
                         parse_shard(args.shard), args.workers, args.models)
    return run_voxelize(cfg)


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out, per_class=args.per_class, views=args.views, size=args.size,
                    seed=args.seed, workers=args.workers, synsets=resolve_classes(args.classes))


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser("python -m synth_render", __doc__,
                                 (_add_shapes, _add_render, _add_voxelize, _add_demo))


def main(argv: list[str] | None = None) -> int:
    return commands.run(build_parser(), argv)
