"""``python -m backend {dataset,train,train-foreground,average,eval,eval-foreground,bound,serve,
reconstruct,keys,demo}``."""

from __future__ import annotations

import argparse

from synth_render import commands


def _add_dataset(sub) -> None:
    from backend.data.build import add_dataset_parser

    add_dataset_parser(sub)


def _add_eval(sub) -> None:
    from backend.evaluation.evaluate import add_eval_parser

    add_eval_parser(sub)


def _add_train(sub) -> None:
    from backend.training.cli import add_train_parser

    add_train_parser(sub)


def _add_train_foreground(sub) -> None:
    from backend.training.foreground import add_train_foreground_parser

    add_train_foreground_parser(sub)


def _add_eval_foreground(sub) -> None:
    from backend.evaluation.foreground import add_eval_foreground_parser

    add_eval_foreground_parser(sub)


def _add_average(sub) -> None:
    from backend.training.average import add_average_parser

    add_average_parser(sub)


def _add_bound(sub) -> None:
    from backend.evaluation.bound import add_bound_parser

    add_bound_parser(sub)


def _add_serve(sub) -> None:
    from backend.serving.server import add_serve_parser

    add_serve_parser(sub)


def _add_keys(sub) -> None:
    from backend.serving.server import add_keys_parser

    add_keys_parser(sub)


def _add_reconstruct(sub) -> None:
    from backend.serving.reconstruct import add_reconstruct_parser

    add_reconstruct_parser(sub)


def _add_demo(sub) -> None:
    from backend.demo import add_demo_parser

    add_demo_parser(sub)


COMMANDS = [_add_dataset, _add_train, _add_train_foreground, _add_average, _add_eval,
            _add_eval_foreground, _add_bound, _add_serve, _add_reconstruct, _add_keys, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser("python -m backend", __doc__, COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return commands.run(build_parser(), argv)
