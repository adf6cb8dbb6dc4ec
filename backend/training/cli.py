"""``python -m backend train`` (and ``python -m backend.training``): its flags, one per
``TrainConfig`` field."""

from __future__ import annotations

import argparse
import logging

from backend.core.config import add_dataclass_arguments, dataclass_from_args

from . import train as train_module
from .config import MODES, TrainConfig
from .recipes import available_recipes, load_recipe, run_recipe
from .train import train

log = logging.getLogger(__name__)

# Model fields derived from TrainConfig (image_size) or the class list, not flags of their own.
DERIVED_MODEL_FLAGS = ("model_image_size", "model_num_classes")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as a flag, and ``--config``."""
    parser.add_argument("--config", metavar="NAME|FILE.toml", default=None,
                        help="train a recipe: " + ", ".join(available_recipes()) + " (shipped: "
                             "the shipped weights' recipe) or a recipe file; other flags may "
                             "then only say where and how it runs (--data, --runs, --name, "
                             "--device, --threads, ...)")
    add_dataclass_arguments(parser, TrainConfig, skip=DERIVED_MODEL_FLAGS,
                            choices={"mode": list(MODES)})


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand (``python -m backend train``)."""
    p = subparsers.add_parser("train", help="train the reconstruction network",
                              description=train_module.__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    if args.config:
        run_recipe(load_recipe(args.config), given_flags(args))
        return 0
    cfg = dataclass_from_args(TrainConfig, args)
    log.warning("no --config: training TrainConfig's defaults and flags (mode %s, %d steps, "
                "data %s), not a recipe; `backend train --config shipped` reproduces the "
                "shipped weights (recipes: %s)", cfg.mode, cfg.steps, cfg.data,
                ", ".join(available_recipes()))
    train(cfg)
    return 0


def given_flags(args: argparse.Namespace) -> dict:
    """The TrainConfig fields whose flags differ from their defaults (what a command line
    asks a recipe to change); the model's as ``model``. ``--resume`` is implied by recipes."""
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    defaults = vars(parser.parse_args([]))
    given = {k: v for k, v in vars(args).items()
             if k in defaults and k not in ("config", "resume") and v != defaults[k]}
    if any(k.startswith("model_") for k in given):
        given = {k: v for k, v in given.items() if not k.startswith("model_")} | {"model": 1}
    return given


def main(argv: list[str] | None = None) -> int:
    """``python -m backend.training`` (the same flags as ``python -m backend train``)."""
    parser = argparse.ArgumentParser(prog="python -m backend.training",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _cmd_train(args)
