"""Command-line flags from config dataclasses: one ``--flag`` per field, nested dataclasses as
``--<field>-<subfield>``, help text from ``field(metadata={"help": ...})``.

Config stays a typed dataclass passed explicitly (no global config object); argparse is only
the way in from a shell.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import typing
from dataclasses import field, fields, is_dataclass


def arg(default, help: str):
    """A dataclass field with its command-line help (mutable defaults copied per instance)."""
    if isinstance(default, list | dict | tuple) or is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "",
                            skip: tuple[str, ...] = (),
                            choices: dict[str, list] | None = None) -> None:
    """Add a flag for every field of ``cls``. ``skip`` and ``choices`` are keyed by
    destination name (``model_latent_dim`` for ``--model-latent-dim``). Booleans get
    ``--x/--no-x``, tuples ``nargs="+"``; ``X | None`` fields take an X and default to None;
    fields without a default are required flags."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp, dest = hints[f.name], prefix + f.name
        if dest in skip:
            continue
        if is_dataclass(tp):
            add_dataclass_arguments(parser, tp, f"{dest}_", skip, choices)
            continue
        flag = "--" + dest.replace("_", "-")
        help_ = f.metadata.get("help", " ")
        if f.default is not dataclasses.MISSING:
            extra = {"default": f.default}
        elif f.default_factory is not dataclasses.MISSING:
            extra = {"default": f.default_factory()}
        else:
            extra = {"required": True}
        args = typing.get_args(tp)
        if type(None) in args:  # ``X | None``: a flag of type X whose default may be None
            (tp,) = [a for a in args if a is not type(None)]
            args = typing.get_args(tp)
        if tp is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                help=help_, **extra)
        elif typing.get_origin(tp) is tuple:
            parser.add_argument(flag, dest=dest, type=args[0], nargs="+", help=help_, **extra)
        else:
            parser.add_argument(flag, dest=dest, type=tp, help=help_,
                                choices=(choices or {}).get(dest), **extra)


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    """Build ``cls`` from parsed flags (inverse of :func:`add_dataclass_arguments`); skipped
    fields keep their defaults."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        dest = prefix + f.name
        if is_dataclass(hints[f.name]):
            kwargs[f.name] = dataclass_from_args(hints[f.name], args, prefix=f"{dest}_")
        elif hasattr(args, dest):
            value = getattr(args, dest)
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
