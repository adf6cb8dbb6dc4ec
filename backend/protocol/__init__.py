"""Wire protocol and client of the reconstruction daemon.

Stdlib, numpy and zmq only, relative imports only: the Blender add-on bundles this package
as it is (``tests/test_import_rules.py`` enforces it).
"""

from .client import (
    DEFAULT_ENDPOINT,
    ClientError,
    CurveKeys,
    ReconClient,
    RequestFailed,
    ServerUnavailable,
    check_endpoint,
    is_loopback,
)
from .daemon_process import DaemonError, LocalDaemon
from .messages import (
    ERROR_CODES,
    OPS,
    PROTOCOL_VERSION,
    Limits,
    ProtocolError,
    ReconstructOptions,
    ReconstructOutput,
    ReconstructResult,
    Reply,
    Request,
    ViewPrediction,
)

__all__ = ["DEFAULT_ENDPOINT", "ClientError", "CurveKeys", "ReconClient", "RequestFailed",
           "ServerUnavailable", "check_endpoint", "is_loopback", "DaemonError", "LocalDaemon",
           "ERROR_CODES", "OPS",
           "PROTOCOL_VERSION",
           "Limits", "ProtocolError", "ReconstructOptions", "ReconstructOutput",
           "ReconstructResult", "Reply", "Request", "ViewPrediction"]
