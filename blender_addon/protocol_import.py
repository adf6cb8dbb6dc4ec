"""The daemon's protocol package, wherever it lives.

The built extension carries a copy as its subpackage ``protocol`` (``python -m blender_addon
build`` bundles ``backend/protocol``); in the source tree the add-on uses ``backend.protocol``
itself, so there is only ever one copy of the wire format in the repository.
"""

try:  # inside the installed extension
    from .protocol import (  # type: ignore[import-not-found]
        DEFAULT_ENDPOINT,
        ClientError,
        CurveKeys,
        DaemonError,
        LocalDaemon,
        ReconClient,
        RequestFailed,
        ServerUnavailable,
        ViewPrediction,
        is_loopback,
    )
    from .protocol import client as client_module  # type: ignore[import-not-found]
except ImportError:  # the source tree (tests, development)
    from backend.protocol import (
        DEFAULT_ENDPOINT,
        ClientError,
        CurveKeys,
        DaemonError,
        LocalDaemon,
        ReconClient,
        RequestFailed,
        ServerUnavailable,
        ViewPrediction,
        is_loopback,
    )
    from backend.protocol import client as client_module

__all__ = ["DEFAULT_ENDPOINT", "ClientError", "CurveKeys", "DaemonError", "LocalDaemon",
           "ReconClient", "RequestFailed",
           "ServerUnavailable", "ViewPrediction", "is_loopback", "client_module"]
