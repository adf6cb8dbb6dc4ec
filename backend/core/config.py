"""Command-line flags from config dataclasses, for every ``python -m backend`` command: one
``--flag`` per field, nested dataclasses as ``--<field>-<subfield>``, help text and the flag's
spelling from ``arg(...)``.

Config stays a typed dataclass passed explicitly (no global config object); argparse is only
the way in from a shell. Validation lives in the flag's ``type`` (counts are
:func:`positive_int` or :func:`non_negative_int`, devices :func:`~backend.core.device.device_name`),
so a bad value fails in the shell with the flag's name, before any work.
"""

from __future__ import annotations

import argparse
import copy
import typing
from dataclasses import MISSING, field, fields, is_dataclass

from synth_render.commands import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = ["arg", "add_dataclass_arguments", "dataclass_from_args", "non_negative_int",
           "non_negative_float", "positive_float", "positive_int"]


def arg(default=MISSING, help: str = " ", *, flag: str | None = None,
        aliases: tuple[str, ...] = (), type=None, choices=None, metavar: str | None = None,
        positional: bool = False, exclusive: str | None = None, cli: bool = True):
    """A dataclass field with its command-line form.

    ``flag``: the spelling when it is not the field's name (``--drain-timeout`` for
    ``drain_timeout_s``); ``aliases``: old spellings still accepted; ``type``: the argparse
    type (a validator); ``positional``: an argument without ``--``; ``exclusive``: the name of
    a group of mutually exclusive flags; ``cli=False``: not a flag (set in code only). A field
    without a default is a required flag. Mutable defaults are copied per instance."""
    meta = {"help": help, "flag": flag, "aliases": tuple(aliases), "type": type,
            "choices": choices, "metavar": metavar, "positional": positional,
            "exclusive": exclusive, "cli": cli}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, list | dict | tuple) or is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "",
                            skip: tuple[str, ...] = (),
                            choices: dict[str, list] | None = None) -> None:
    """Add a flag for every field of ``cls``. ``skip`` and ``choices`` are keyed by
    destination name (``model_latent_dim`` for ``--model-latent-dim``). Booleans get
    ``--x/--no-x``, tuples and lists ``nargs="+"``; ``X | None`` fields take an X and default
    to None; fields without a default are required flags."""
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in fields(cls):
        tp, dest, meta = hints[f.name], prefix + f.name, f.metadata
        if dest in skip or not meta.get("cli", True):
            continue
        if is_dataclass(tp):
            add_dataclass_arguments(parser, tp, f"{dest}_", skip, choices)
            continue
        target = parser
        if meta.get("exclusive"):
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        names, kwargs = _flag_spec(f, tp, dest, meta, prefix)
        chosen = (choices or {}).get(dest, meta.get("choices"))
        if chosen is not None:
            kwargs["choices"] = chosen
        target.add_argument(*names, **kwargs)


def _flag_spec(f, tp, dest: str, meta, prefix: str) -> tuple[list[str], dict]:
    """argparse's option strings and keyword arguments for one field."""
    kwargs: dict = {"help": meta.get("help", " ")}
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    required = False
    if f.default is not MISSING:
        kwargs["default"] = f.default
    elif f.default_factory is not MISSING:
        kwargs["default"] = f.default_factory()
    else:
        required = True
    tp = _unoptional(tp)  # ``X | None``: a flag of type X whose default may be None
    if typing.get_origin(tp) in (tuple, list):
        kwargs["nargs"] = "+"
        tp = typing.get_args(tp)[0]
    if tp is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = meta.get("type") or tp
    if meta.get("positional"):
        if not required:
            kwargs["nargs"] = kwargs.get("nargs", "?").replace("+", "*")
        return [dest], kwargs
    spelling = prefix + meta["flag"] if meta.get("flag") else dest
    names = ["--" + spelling.replace("_", "-"), *meta.get("aliases", ())]
    kwargs["dest"] = dest
    if required:
        kwargs["required"] = True
    return names, kwargs


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    """Build ``cls`` from parsed flags (inverse of :func:`add_dataclass_arguments`); skipped
    fields keep their defaults."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        dest = prefix + f.name
        if is_dataclass(hints[f.name]) and f.metadata.get("cli", True):
            kwargs[f.name] = dataclass_from_args(hints[f.name], args, prefix=f"{dest}_")
        elif hasattr(args, dest):
            value = getattr(args, dest)
            if isinstance(value, list) and typing.get_origin(_unoptional(hints[f.name])) is tuple:
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


def _unoptional(tp):
    """``X`` for ``X | None``, else ``tp`` itself."""
    args = typing.get_args(tp)
    if type(None) in args:
        (tp,) = [a for a in args if a is not type(None)]
    return tp

