"""The shared shape of the project's command-line entry points (``python -m <package> ...``)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser(prog: str, description: str | None,
                 adders: Sequence[Callable[[argparse._SubParsersAction], None]]
                 ) -> argparse.ArgumentParser:
    """A parser with ``-v`` and one subcommand per adder; each adder sets ``func``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in adders:
        add(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, set up logging, run the chosen subcommand; return its exit code."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT)
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError) as exc:  # bad input (a missing folder, a malformed flag or
        # file): one clear line, the traceback only with -v
        logging.getLogger(parser.prog).error("%s: %s", type(exc).__name__, exc,
                                             exc_info=args.verbose)
        return 2


def _parsed(text: str, kind: type, name: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse ``type`` for counts and sizes: an integer of at least 1."""
    value = _parsed(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse ``type`` for counts where 0 means "none" or "off"."""
    value = _parsed(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type`` for durations and limits: a finite number above 0."""
    value = _parsed(text, float, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse ``type`` for durations where 0 means "none": a finite number of 0 or more."""
    value = _parsed(text, float, "a number")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
