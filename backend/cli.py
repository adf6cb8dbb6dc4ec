"""``python -m backend {dataset,train,train-foreground,average,eval,eval-foreground,bound,serve,
reconstruct,keys,demo}``."""

from __future__ import annotations

import argparse
from pathlib import Path

from synth_render import commands
from synth_render.commands import positive_int


def _add_dataset(sub) -> None:
    from .build_data import DataConfig

    d = DataConfig()
    p = sub.add_parser("dataset", help="build the procedural training/evaluation data set")
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--per-class", type=positive_int, default=d.per_class)
    p.add_argument("--views", type=positive_int, default=d.views)
    p.add_argument("--size", type=positive_int, default=d.size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=positive_int, default=d.workers)
    p.set_defaults(func=_cmd_dataset)


def _cmd_dataset(args) -> int:
    from .build_data import DataConfig, build_dataset

    return build_dataset(DataConfig(args.out, args.per_class, args.views, args.size, args.seed,
                                    args.workers))


def _add_eval(sub) -> None:
    from .evaluate import add_eval_parser

    add_eval_parser(sub)


def _add_train(sub) -> None:
    from .train import add_train_parser

    add_train_parser(sub)


def _add_train_foreground(sub) -> None:
    from .train_foreground import add_train_foreground_parser

    add_train_foreground_parser(sub)


def _add_eval_foreground(sub) -> None:
    from .eval_foreground import add_eval_foreground_parser

    add_eval_foreground_parser(sub)


def _add_average(sub) -> None:
    from .average import add_average_parser

    add_average_parser(sub)


def _add_bound(sub) -> None:
    from .retrieval_bound import add_bound_parser

    add_bound_parser(sub)


def _add_serve(sub) -> None:
    from .server import add_serve_parser

    add_serve_parser(sub)


def _add_keys(sub) -> None:
    from .server import add_keys_parser

    add_keys_parser(sub)


def _add_reconstruct(sub) -> None:
    from .reconstruct_cli import add_reconstruct_parser

    add_reconstruct_parser(sub)


def _add_demo(sub) -> None:
    from .demo import add_demo_parser

    add_demo_parser(sub)


COMMANDS = [_add_dataset, _add_train, _add_train_foreground, _add_average, _add_eval,
            _add_eval_foreground, _add_bound, _add_serve, _add_reconstruct, _add_keys, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser("python -m backend", __doc__, COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return commands.run(build_parser(), argv)
