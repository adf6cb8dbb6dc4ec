"""The one device resolver: every command's ``--device`` takes ``auto``, ``cpu``, ``cuda`` or
``cuda:N`` and means the same thing."""

from __future__ import annotations

import argparse
import re

DEVICE_HELP = "auto (cuda when available), cpu, cuda, cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class UnknownDevice(argparse.ArgumentTypeError, ValueError):
    """A ``--device`` that is none of the accepted spellings (argparse shows the message)."""


def device_name(value: str) -> str:
    """argparse type of ``--device``: the spelling checked up front, no torch import (so a
    typo fails in the shell, not as a torch traceback after the model has loaded)."""
    value = value.strip().lower()
    if not _DEVICE.fullmatch(value):
        raise UnknownDevice(f"unknown device {value!r}; expected {DEVICE_HELP}")
    return value


def resolve_device(name: str, local_rank: int = 0):
    """A ``torch.device`` for ``name``. ``auto`` is cuda when available, else cpu; a bare
    ``cuda`` is this process's GPU under torchrun (``local_rank``). Asking for a GPU that is not
    there raises ``ValueError`` with torch's reason."""
    import torch

    name = device_name(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda":
        try:
            torch.cuda.set_device(device)
        # A CPU build raises AssertionError or AttributeError, a wrong index RuntimeError.
        except (AssertionError, AttributeError, RuntimeError) as err:
            raise ValueError(f"device {name} is not usable here ({err}); "
                             "use --device cpu or auto") from err
    return device
