"""A blocking client for the reconstruction daemon (Lazy Pirate pattern).

Each call sends one request on a DEALER socket and polls for the reply with a timeout. When
no reply comes, the socket is closed (``linger=0``, so nothing queued lingers) and reopened,
and the request is sent again, up to ``retries`` more times; then :class:`ServerUnavailable`.
A DEALER (not REQ) socket has no send/receive lock-step to break, and replies whose id is not
the pending request's (late answers to an abandoned attempt) are skipped.

Each client makes up a token (``client`` in the header) and keeps it across reconnects, so the
server scopes request ids by it: a retry on a fresh socket is recognised as the same request
(answered by its one computation), and no other client can cancel it.

One :class:`ReconClient` belongs to one thread (ZeroMQ sockets are not thread-safe); the
Blender add-on drives it from its I/O thread. Stdlib, numpy and zmq only.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import zmq

from .messages import (
    RETRYABLE,
    Limits,
    ProtocolError,
    ReconstructOptions,
    ReconstructResult,
    Reply,
    decode_reconstruct_reply,
    decode_reply,
    encode_request,
    new_id,
)

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"


class ClientError(Exception):
    """Base of the client's errors."""


class ServerUnavailable(ClientError):
    """No reply within the timeout after every retry, or the endpoint cannot be reached."""


class RequestFailed(ClientError):
    """The server answered with an error (``code`` is one of ``messages.ERROR_CODES``)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    @property
    def retryable(self) -> bool:
        """Whether sending the same request later may succeed (``busy``, ``shutting_down``)."""
        return self.code in RETRYABLE


@dataclass(frozen=True)
class CurveKeys:
    """CURVE keys (Z85 bytes) for an encrypted, authenticated connection."""

    client_public: bytes
    client_secret: bytes
    server_public: bytes

    @classmethod
    def from_files(cls, client_secret_file: str | Path, server_public_file: str | Path
                   ) -> CurveKeys:
        """Load ``client.key_secret`` and ``server.key`` as written by ``backend keys``."""
        from zmq.auth import load_certificate

        public, secret = load_certificate(str(client_secret_file))
        server_public, _ = load_certificate(str(server_public_file))
        if secret is None:
            raise ValueError(f"{client_secret_file} holds no secret key")
        return cls(public, secret, server_public)

    @classmethod
    def from_dir(cls, directory: str | Path) -> CurveKeys:
        """``client.key_secret`` and ``server.key`` from one key folder."""
        directory = Path(directory)
        return cls.from_files(directory / "client.key_secret", directory / "server.key")


def check_endpoint(endpoint: str) -> None:
    """Raise :class:`ServerUnavailable` unless ``endpoint`` is well formed and its host
    resolves: ZeroMQ itself retries an unresolvable host silently forever."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return
    if parts.scheme != "tcp" or not parts.hostname:
        raise ServerUnavailable(f"bad endpoint {endpoint!r}; expected tcp://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not port:
        raise ServerUnavailable(f"bad endpoint {endpoint!r}: no port number")
    try:
        ipaddress.ip_address(parts.hostname)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerUnavailable(f"cannot resolve host {parts.hostname!r} of {endpoint}: "
                                f"{exc}") from exc


def is_ipv6(endpoint: str) -> bool:
    """Whether ``endpoint`` names an IPv6 address (``tcp://[::1]:5557``): ZeroMQ sockets
    must then be told so (``sock.ipv6 = True``), or they silently never connect."""
    return "[" in urlsplit(endpoint).netloc


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` stays on this machine (the server binds loopback without keys; the
    add-on needs no online access for it)."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name


# A generous bound on a CPU server's time per image at 32³ (preprocessing, forward pass and
# meshing, under load); meshing grows with the grid (resolution³) and smoothing.
SECONDS_PER_IMAGE_32 = 2.0
MIN_PATIENCE_S = 120.0


def expected_work_s(images: int, resolution: int | None = None, smooth: bool = False) -> float:
    """How long a client waits, at most, for a reconstruct request the server acknowledges:
    its cost grows with the images, the output grid (resolution³) and smoothing."""
    scale = ((resolution or 32) / 32) ** 3 * (2.0 if smooth else 1.0)
    return max(MIN_PATIENCE_S, SECONDS_PER_IMAGE_32 * images * max(1.0, scale))


class ReconClient:
    """Talk to a reconstruction daemon; every method blocks at most about
    ``timeout_s * (retries + 1)`` seconds."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout_s: float = 10.0,
                 retries: int = 2, curve: CurveKeys | None = None,
                 context: zmq.Context | None = None,
                 max_request_bytes: int = Limits().max_request_bytes):
        if timeout_s <= 0 or retries < 0:
            raise ValueError("timeout_s must be positive and retries non-negative")
        check_endpoint(endpoint)
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self.curve = curve
        # The server's transport drops larger messages without a word (MAXMSGSIZE), so say it
        # here instead of timing out.
        self.max_request_bytes = max_request_bytes
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self.token = new_id()  # scopes this client's request ids on the server

    # -- socket lifecycle

    def _open(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.ipv6 = is_ipv6(self.endpoint)
        if self.curve is not None:
            sock.curve_publickey = self.curve.client_public
            sock.curve_secretkey = self.curve.client_secret
            sock.curve_serverkey = self.curve.server_public
        sock.connect(self.endpoint)
        return sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        """Close the socket (the client can be used again; it reconnects)."""
        self._reset()

    def __enter__(self) -> ReconClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the Lazy Pirate exchange

    def request(self, frames: list[bytes], request_id: str, timeout_s: float | None = None,
                cancelled: Callable[[], bool] | None = None,
                retries: int | None = None, patience_s: float | None = None) -> Reply:
        """Send ``frames`` and wait for the reply with ``request_id`` (retrying as above).

        ``timeout_s`` and ``retries`` override the client's own for this request only (a quick
        liveness probe on the same socket, say). ``patience_s`` (requests sent with
        ``ack``): while the server keeps acknowledging the request, resending it after each
        silent ``timeout_s`` is not a lost attempt, for up to this many seconds in all.

        ``cancelled``: polled every 50 ms while waiting; when it returns True the server is
        asked to drop the request and :class:`RequestFailed` ``("cancelled", ...)`` is raised
        at once (the Blender add-on passes its Cancel button's flag).
        Raises :class:`ServerUnavailable`, or :class:`RequestFailed` for an error reply.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        retries = self.retries if retries is None else retries
        size = sum(len(f) for f in frames)
        if size > self.max_request_bytes:
            raise RequestFailed("too_large", f"the request is {size} bytes, more than the "
                                             f"{self.max_request_bytes} the server accepts; "
                                             "downscale or recompress the images")
        give_up = None if patience_s is None else time.monotonic() + patience_s
        attempt = 0
        while True:
            if self._sock is None:
                self._sock = self._open()
            self._sock.send_multipart([b"", *frames], copy=False)
            reply, acked = self._wait_result(request_id, timeout, cancelled)
            if reply is not None:
                if not reply.ok:
                    raise RequestFailed(*reply.error)
                return reply
            if acked and give_up is not None and time.monotonic() < give_up:
                # The server holds the request and is working on it: ask again on the same
                # connection (it answers the retry with the one result, and acknowledges it),
                # not a lost attempt. A fresh socket here could lose a result sent just
                # before it opened.
                log.info("%s: still in progress on %s after %.1f s; waiting on", request_id,
                         self.endpoint, timeout)
                continue
            self._reset()  # a fresh socket: the old one may hold a dead connection
            attempt += 1
            if attempt > retries:
                break
            log.warning("no reply from %s within %.1f s (attempt %d of %d)", self.endpoint,
                        timeout, attempt, retries + 1)
        raise ServerUnavailable(f"no reply from {self.endpoint} after {retries + 1} "
                                f"attempt(s) of {timeout:g} s; is the server running?")

    def _wait_result(self, request_id: str, timeout: float,
                     cancelled: Callable[[], bool] | None) -> tuple[Reply | None, bool]:
        """The result (None when none came within ``timeout`` of the last message), and
        whether the server acknowledged the request meanwhile."""
        acked = False
        while (reply := self._wait(request_id, timeout, cancelled)) is not None:
            if not (reply.ok and reply.body.get("ack")):
                return reply, acked
            acked = True  # the server has it: wait a full timeout again for the result
        return None, acked

    def _wait(self, request_id: str, timeout: float,
              cancelled: Callable[[], bool] | None) -> Reply | None:
        end = time.monotonic() + timeout
        slice_ms = 50 if cancelled is not None else None
        while (left := end - time.monotonic()) > 0:
            wait_ms = int(left * 1000) + 1
            if not self._sock.poll(min(wait_ms, slice_ms or wait_ms), zmq.POLLIN):
                if cancelled is not None and cancelled():
                    self._abandon(request_id)
                if time.monotonic() >= end:
                    return None
                continue
            frames = self._sock.recv_multipart()
            if frames and frames[0] == b"":
                frames = frames[1:]
            try:
                reply = decode_reply(frames)
            except ProtocolError as exc:
                log.warning("ignoring a malformed reply: %s", exc)
                continue
            if reply.id == request_id or (not reply.ok and reply.id is None):
                return reply
            log.debug("skipping a stale reply for %s", reply.id)
        return None

    def _abandon(self, request_id: str) -> None:
        """Ask the server to drop ``request_id`` (its answer is not awaited), then give up."""
        cancel = encode_request("cancel", new_id(), target=request_id, client=self.token)
        try:
            self._sock.send_multipart([b"", *cancel], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        # A fresh socket next time, so late replies to the abandoned request never reach the
        # next one; a short linger lets the cancel message leave first.
        self._sock.close(linger=200)
        self._sock = None
        raise RequestFailed("cancelled", "cancelled by the caller")

    # -- operations

    def reconstruct(self, images: Sequence[bytes | np.ndarray], request_id: str | None = None,
                    timeout_s: float | None = None, cancelled: Callable[[], bool] | None = None,
                    **options) -> ReconstructResult:
        """Reconstruct one object per image (or one fused object: ``fuse=True``).

        ``images``: encoded PNG/JPEG/... bytes or uint8 ``(H, W[, C])`` arrays; ``options``:
        the fields of :class:`~.messages.ReconstructOptions` (threshold, resolution, format,
        outputs, smooth, fuse, crop, deadline_ms); ``cancelled``: see :meth:`request`.

        The wait follows the work: the request asks for an acknowledgement, and while the
        server keeps acknowledging it (it holds the request and computes it once, whatever
        the retries) the client waits on for up to :func:`expected_work_s` of the request;
        a server that does not answer at all still fails after ``timeout_s * (retries + 1)``.
        """
        request_id = request_id or new_id()
        images = list(images)
        frames = encode_request("reconstruct", request_id, images, options, client=self.token,
                                ack=True)
        patience = expected_work_s(len(images), options.get("resolution"),
                                   bool(options.get("smooth")))
        return decode_reconstruct_reply(self.request(frames, request_id, timeout_s, cancelled,
                                                     patience_s=patience))

    def _simple(self, op: str, timeout_s: float | None = None, retries: int | None = None,
                **fields) -> dict:
        request_id = new_id()
        frames = encode_request(op, request_id, **fields)  # fields may hold client=
        return self.request(frames, request_id, timeout_s, retries=retries).body

    def health(self, timeout_s: float | None = None, retries: int | None = None) -> dict:
        """``{"status": "ok", "uptime_s", "queue_depth", ...}``; ``timeout_s``/``retries``
        override the client's for this call (a liveness probe wants seconds, not minutes)."""
        return self._simple("health", timeout_s, retries)

    def info(self, timeout_s: float | None = None, retries: int | None = None) -> dict:
        """Model, classes, device, versions, limits and defaults."""
        return self._simple("info", timeout_s, retries)

    def stats(self) -> dict:
        """Queue depth, batch sizes, latency percentiles, counts of requests and errors."""
        return self._simple("stats")

    def cancel(self, request_id: str) -> bool:
        """Drop a queued reconstruct request of this client; whether it was still queued."""
        return bool(self._simple("cancel", target=request_id, client=self.token)
                    .get("cancelled"))


__all__ = ["ReconClient", "CurveKeys", "ClientError", "ServerUnavailable", "RequestFailed",
           "ReconstructOptions", "check_endpoint", "is_ipv6", "is_loopback",
           "DEFAULT_ENDPOINT"]
