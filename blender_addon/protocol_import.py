"""The daemon's protocol package, wherever it lives, or why it cannot be loaded.

The built extension carries a copy as its subpackage ``protocol`` (``python -m blender_addon
build`` bundles ``backend/protocol``); in the source tree the add-on uses ``backend.protocol``
itself, so there is only ever one copy of the wire format in the repository.

When the package cannot be imported (in practice: the bundled pyzmq wheel does not load on
this Blender's Python, because the zip is for other Blender releases), :data:`IMPORT_ERROR`
says so with the real import error and what to do, the console prints it, and stand-ins
keep the add-on registered so the panel can show it; every request then fails with it.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
BUNDLED = (_HERE / "protocol").is_dir()  # inside the installed extension

# Why the protocol could not be loaded ("" when it was), and what to do about it.
IMPORT_ERROR = ""
IMPORT_HINT = ""


def _zip_range() -> str:
    """The Blender releases this copy of the add-on was built for, from its manifest."""
    try:
        manifest = tomllib.loads((_HERE / "blender_manifest.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return "other Blender releases"
    low, high = manifest.get("blender_version_min"), manifest.get("blender_version_max")
    return f"Blender {low} and newer" if not high else f"Blender {low} up to (not incl.) {high}"


def describe_failure(exc: BaseException, bundled: bool = BUNDLED) -> tuple[str, str]:
    """(message, hint) for an import failure of the protocol package or its pyzmq."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    cause = f"{type(exc).__name__}: {exc}"
    if not bundled:
        return (f"The reconstruction client cannot be imported: {cause}",
                "In the source tree, install the project (pip install -e .) into Blender's "
                "Python, or install the built add-on zip instead.")
    return (f"zmq cannot be loaded in this Blender (Python {python}): {cause}",
            f"This add-on zip is built for {_zip_range()}: remove it and install the zip made "
            "for your Blender: ...-blender4.2-5.0-<platform>.zip for Blender 4.2 to 5.0 "
            "(Python 3.11), ...-blender5.1-<platform>.zip for Blender 5.1 and newer "
            "(Python 3.13).")


try:
    # The bundled copy inside the installed extension; the source tree's (tests, development).
    _protocol = importlib.import_module(".protocol", __package__) if BUNDLED \
        else importlib.import_module("backend.protocol")
    DEFAULT_ENDPOINT = _protocol.DEFAULT_ENDPOINT
    ClientError, CurveKeys, DaemonError = (_protocol.ClientError, _protocol.CurveKeys,
                                           _protocol.DaemonError)
    LocalDaemon, ReconClient = _protocol.LocalDaemon, _protocol.ReconClient
    RequestFailed, ServerUnavailable = _protocol.RequestFailed, _protocol.ServerUnavailable
    is_loopback = _protocol.is_loopback
except ImportError as _exc:  # keep the real cause: never a misleading fallback import
    IMPORT_ERROR, IMPORT_HINT = describe_failure(_exc)
    print(f"Unsup3D Recon: {IMPORT_ERROR}\nUnsup3D Recon: {IMPORT_HINT}", file=sys.stderr)

    # Stand-ins with the protocol's names, so the add-on still registers and explains.
    DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"

    class ClientError(Exception):
        """Stand-in: the protocol package is not loaded."""

    class DaemonError(ClientError):
        pass

    class RequestFailed(ClientError):
        pass

    class ServerUnavailable(ClientError):
        pass

    class _Unavailable:
        error: type[ClientError] = ClientError

        def __init__(self, *args, **kwargs):
            raise self.error(f"{IMPORT_ERROR}. {IMPORT_HINT}")

    class ReconClient(_Unavailable):
        pass

    class LocalDaemon(_Unavailable):
        error = DaemonError

    class CurveKeys(_Unavailable):
        @classmethod
        def from_dir(cls, *args):
            return cls()

    def is_loopback(endpoint: str) -> bool:
        return True  # nothing leaves this machine: every request fails with IMPORT_ERROR

__all__ = ["DEFAULT_ENDPOINT", "ClientError", "CurveKeys", "DaemonError", "IMPORT_ERROR",
           "IMPORT_HINT", "LocalDaemon", "ReconClient", "RequestFailed", "ServerUnavailable",
           "is_loopback"]
