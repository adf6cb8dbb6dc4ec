"""``python -m backend {dataset,...}``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def _add_dataset(sub) -> None:
    from .build_data import DataConfig

    d = DataConfig()
    p = sub.add_parser("dataset", help="build the procedural training/evaluation data set")
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--per-class", type=int, default=d.per_class)
    p.add_argument("--views", type=int, default=d.views)
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers)
    p.set_defaults(func=_cmd_dataset)


def _cmd_dataset(args) -> int:
    from .build_data import DataConfig, build_dataset

    return build_dataset(DataConfig(args.out, args.per_class, args.views, args.size, args.seed,
                                    args.workers))


COMMANDS = [_add_dataset]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)
