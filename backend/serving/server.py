"""The reconstruction daemon: ``python -m backend serve`` (and ``python -m backend keys``).

Threads, each owning its own sockets (ZeroMQ sockets are not thread-safe):

- the **I/O thread** owns the ROUTER socket clients talk to and the PULL end of an inproc pipe.
  It validates every request with :mod:`backend.protocol` (a malformed one gets an error reply
  with a stable code; nothing a client sends can stop the loop), answers ``health``, ``info``,
  ``stats`` and ``cancel`` itself, and queues ``reconstruct`` jobs (``busy`` when the queue is
  full). Replies computed elsewhere come back through the pipe and are forwarded.
- the **compute thread** takes batches from the :class:`~backend.serving.batching.JobQueue`, drops
  cancelled and expired jobs, preprocesses, runs one forward pass per batch, meshes, and sends
  each reply into the pipe through its PUSH socket.
- or, with ``--workers N``, **worker processes** (:mod:`backend.serving.workers`, started with
  ``spawn``, heartbeated, restarted after a crash) get the batches instead: the I/O thread
  dispatches them and forwards the results, and a crash loses no request.

Security: a non-loopback bind needs CURVE keys (``--curve-keys DIR`` from ``backend keys``;
only clients whose public key is in DIR get through) or ``--insecure``, which logs a warning.
SIGTERM / Ctrl-C stop accepting work, let queued and running jobs finish (bounded by
``drain_timeout_s``), then answer every accepted job still unanswered — queued or computing —
with ``shutting_down``, and close the client socket with a short linger (so those last replies
are written out, not dropped with the socket; other sockets close with linger 0): each
accepted request gets exactly one reply. The I/O thread is the only one that answers
``reconstruct`` jobs (computed results reach it through the pipe, tagged with the job's
token), so a result that comes after its job was answered is dropped, and the log shows what
was sent.

Request ids are scoped by the client's token (``client`` in the header; by the connection
without one). A request whose key (scope, id) is already queued or computing is a retry: the
job is redirected to the retry's connection and answered once, never computed twice; a
``cancel`` reaches only requests of its own scope.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import logging
import platform
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import zmq

from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from backend.core.device import DEVICE_HELP, device_name, resolve_device
from backend.protocol.client import DEFAULT_ENDPOINT, is_ipv6, is_loopback
from backend.protocol.messages import (
    PROTOCOL_VERSION,
    Limits,
    ProtocolError,
    Request,
    decode_request,
    encode_error,
    encode_reply,
)
from backend.serving import malloc
from backend.serving.batching import Job, JobQueue
from backend.serving.compute import compute_batch, error_outcome
from backend.serving.pipeline import Pipeline
from backend.serving.workers import WorkerPool, WorkerSpec

log = logging.getLogger(__name__)

PIPE = "inproc://replies"
POLL_MS = 100
# How long the client socket, once closed, keeps writing replies still queued for connected
# clients (linger 0 dropped the last ones under load); disconnected peers hold nothing.
REPLY_LINGER_MS = 2000


@dataclass
class ServerConfig:
    """Everything ``serve`` can be told (see ``python -m backend serve --help``)."""

    checkpoint: str | None = arg(None, "model.pt or checkpoint.pt (default: the shipped "
                                       "weights)")
    foreground: str | None = arg("none", "the model that frames opaque photos (none, the "
                                         "default: they are used whole)",
                                 metavar="shipped|none|PATH")
    bind: str = arg(DEFAULT_ENDPOINT, "ZeroMQ endpoint to listen on")
    device: str = arg("cpu", DEVICE_HELP, type=device_name)
    threads: int = arg(1, "torch CPU threads (0: torch's default); see Pipeline.load",
                       type=non_negative_int)
    workers: int = arg(0, "worker processes (0: compute in the daemon's own thread)",
                       type=non_negative_int)
    worker_delay_s: float = arg(0.0, "testing aid: slows every worker batch down", cli=False)
    max_batch: int = arg(8, "images per forward pass", type=positive_int)
    # How long a batch waits to fill up; None: 0 on CPU (greedy: whatever queued while the
    # model was busy joins the next batch; measured waits only added latency on CPU), 2 ms on
    # CUDA, where a fuller batch costs little more than a single image.
    max_wait_ms: float | None = arg(None, "batching wait (default: 0 on CPU, 2 on CUDA)",
                                    type=non_negative_float)
    queue_size: int = arg(64, "requests queued at most (more are refused as busy)",
                          type=positive_int)
    insecure: bool = arg(False, "allow a non-loopback bind without CURVE keys (logs a warning)")
    curve_keys: str | None = arg(None, "key folder from `backend keys`")
    drain_timeout_s: float = arg(10.0, "seconds to finish accepted requests at shutdown",
                                 flag="drain_timeout", type=non_negative_float)
    limits: Limits = arg(Limits(), "request limits", cli=False)
    malloc_arenas: int = arg(2, "cap glibc's malloc arenas (0: glibc's default of 8 per core); "
                                "keeps RSS flat", type=non_negative_int)
    trim_every: int = arg(64, "batches between returning free heap to the system (0: never); "
                              "see backend.serving.malloc", type=non_negative_int)


@dataclass
class KeysConfig:
    """``backend keys``: where to write the CURVE key pairs."""

    out: Path = arg(help="folder for server.key(_secret) and client.key(_secret)")


# ------------------------------------------------------------------------------ statistics


class Stats:
    """Counters for the ``stats`` op (thread-safe; bounded memory)."""

    def __init__(self, window: int = 10_000):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.requests: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=window)

    def record(self, op: str, ms: float, error: str | None) -> None:
        with self._lock:
            self.requests[op] += 1
            if error:
                self.errors[error] += 1
            elif op == "reconstruct":
                self.latencies_ms.append(ms)

    def record_batch(self, images: int) -> None:
        with self._lock:
            self.batch_sizes[images] += 1

    def snapshot(self) -> dict:
        with self._lock:
            lat = np.array(self.latencies_ms, dtype=np.float64)
            pct = ({f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 90, 99)}
                   if lat.size else {})
            return {"uptime_s": round(time.monotonic() - self.started, 1),
                    "requests": dict(self.requests), "errors": dict(self.errors),
                    "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                    "latency_ms": {"count": int(lat.size), **pct}}


# ------------------------------------------------------------------------------ security


def write_keys(out: Path) -> tuple[Path, Path]:
    """Server and client CURVE key pairs in ``out`` (``server.key[_secret]``,
    ``client.key[_secret]``); the server admits every public key in its key folder."""
    from zmq.auth import create_certificates

    out.mkdir(parents=True, exist_ok=True)
    server_public, _ = create_certificates(str(out), "server")
    client_public, _ = create_certificates(str(out), "client")
    for path in out.glob("*.key_secret"):
        path.chmod(0o600)
    return Path(server_public), Path(client_public)


# ------------------------------------------------------------------------------ the server


class Server:
    """The daemon. ``start()`` runs it in background threads; ``serve_forever()`` blocks until
    SIGTERM/Ctrl-C (or :meth:`stop`)."""

    def __init__(self, config: ServerConfig, pipeline: Pipeline | None = None):
        self.config = config
        self._check_security()  # before loading anything: fail fast
        malloc.limit_arenas(config.malloc_arenas)  # before torch and the threads start
        # auto|cpu|cuda[:N] as every command takes it; a missing GPU fails here, clearly.
        config = replace(config, device=str(resolve_device(config.device)))
        if config.max_wait_ms is None:
            config = replace(config, max_wait_ms=2.0 if config.device.startswith("cuda") else 0.0)
        self.config = config
        # With worker processes this copy only answers ``info``: keep it off the GPU.
        self.pipeline = pipeline or Pipeline.load(
            config.checkpoint, "cpu" if config.workers > 0 else config.device, config.threads,
            config.foreground)
        self.stats = Stats()
        self.jobs = JobQueue(config.queue_size)
        self.endpoint: str | None = None
        self._ctx = zmq.Context()
        self._auth = None
        self._stopping = threading.Event()  # stop accepting work, drain
        self._compute_done = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        # Accepted reconstruct jobs not yet answered, by token, and the token of each key
        # (scope, request id); both owned by the I/O thread.
        self._pending: dict[int, Job] = {}
        self._live: dict[tuple[str, str], int] = {}
        self._tokens = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._pool: WorkerPool | None = None  # owned by the I/O thread

    # -- lifecycle

    def start(self, timeout_s: float = 10.0) -> str:
        """Bind and start the threads; returns the bound endpoint (a real port for ``:0``)."""
        self._threads = [threading.Thread(target=self._io_loop, name="server-io", daemon=True)]
        if self.config.workers <= 0:
            self._threads.append(threading.Thread(target=self._compute_loop,
                                                  name="server-compute", daemon=True))
        else:
            self._compute_done.set()  # no compute thread: workers do it
        for t in self._threads:
            t.start()
        if not self._ready.wait(timeout_s) or self._start_error is not None:
            self.stop()
            raise RuntimeError(f"server failed to start: {self._start_error}")
        log.info("serving on %s (device %s, max batch %d, max wait %g ms, queue %d)",
                 self.endpoint, self.config.device, self.config.max_batch,
                 self.config.max_wait_ms, self.config.queue_size)
        return self.endpoint

    def stop(self, timeout_s: float | None = None) -> None:
        """Drain and stop; returns when every thread has exited (or the timeout passed)."""
        self._stopping.set()
        end = time.monotonic() + (timeout_s or self.config.drain_timeout_s + 5)
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not any(t.is_alive() for t in self._threads):
            self._ctx.term()  # every socket is closed: at most REPLY_LINGER_MS of flushing

    def serve_forever(self) -> None:
        """Start, then block until SIGTERM or Ctrl-C, then drain and stop."""
        self.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        while not self._stopping.wait(0.5):
            pass
        log.info("shutting down: draining %d queued job(s)", self.jobs.depth)
        self.stop()
        log.info("stopped")

    def _check_security(self) -> None:
        if is_loopback(self.config.bind) or self.config.curve_keys:
            return
        if not self.config.insecure:
            raise ValueError(f"refusing to bind the non-loopback address {self.config.bind} "
                             "without CURVE keys: create them with `python -m backend keys "
                             "--out DIR` and pass --curve-keys DIR (or pass --insecure on a "
                             "trusted network)")
        log.warning("!!! INSECURE: serving %s UNENCRYPTED AND UNAUTHENTICATED; anyone who can "
                    "reach this address can use the server !!!", self.config.bind)

    # -- the I/O thread

    def _open_router(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # The transport drops (disconnects) absurd frames before they are buffered; frames
        # under this size but over the protocol's limits get a ``too_large`` reply.
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.limits.max_request_bytes)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)  # replies to vanished clients are dropped
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.ipv6 = is_ipv6(self.config.bind)
        try:
            if self.config.curve_keys:
                self._enable_curve(sock, Path(self.config.curve_keys))
            sock.bind(self.config.bind)
        except BaseException:
            sock.close(linger=0)
            raise
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return sock

    def _enable_curve(self, sock: zmq.Socket, keys: Path) -> None:
        from zmq.auth import load_certificate
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = load_certificate(str(keys / "server.key_secret"))
        self._auth = ThreadAuthenticator(self._ctx, log=logging.getLogger("backend.auth"))
        self._auth.start()
        # Admit exactly the public keys in the folder (client.key, any added later on restart).
        self._auth.configure_curve(domain="*", location=str(keys))
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret

    def _open_sockets(self) -> tuple[zmq.Socket, zmq.Socket]:
        """The ROUTER for clients, the PULL end of the reply pipe, and the worker pool."""
        router = pipe = None
        try:
            router = self._open_router()
            pipe = self._ctx.socket(zmq.PULL)
            pipe.setsockopt(zmq.LINGER, 0)
            pipe.bind(PIPE)
            if self.config.workers > 0:
                self._pool = WorkerPool(self._ctx, self.config.workers, WorkerSpec(
                    "", self.config.checkpoint, self.config.device, self.config.threads,
                    self.config.worker_delay_s, self.config.foreground))
        except BaseException:
            for sock in (router, pipe):
                if sock is not None:
                    sock.close(linger=0)  # an open socket would block Context.term forever
            raise
        return router, pipe

    def _io_loop(self) -> None:
        try:
            router, pipe = self._open_sockets()
        except Exception as exc:  # reported by start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(pipe, zmq.POLLIN)
        if self._pool is not None:
            poller.register(self._pool.socket, zmq.POLLIN)
        drain_end = None
        try:
            while True:
                events = dict(poller.poll(POLL_MS))
                if pipe in events:
                    self._forward_replies(pipe, router)
                if router in events:
                    self._receive_requests(router)
                if self._pool is not None:
                    self._tend_workers(router, self._pool.socket in events)
                if self._stopping.is_set():
                    drain_end = drain_end or time.monotonic() + self.config.drain_timeout_s
                    if not self._pending or time.monotonic() > drain_end:
                        self._abandon_all(router)
                        break
        finally:
            self._compute_done.wait(2.0)
            if self._pool is not None:
                self._pool.stop()
            router.close(linger=REPLY_LINGER_MS)
            pipe.close(linger=0)

    def _tend_workers(self, router: zmq.Socket, readable: bool) -> None:
        """Worker mode: forward results, dispatch batches, replace dead workers."""
        pool = self._pool
        if readable:
            for job, frames, code in pool.receive():
                self._answer(router, job.token, frames, code)
        for job, err in pool.check(self.jobs):
            self._answer(router, job.token, *error_outcome(job.request, err))

        def screen(job: Job) -> bool:
            err = self._screen_error(job)
            if err is not None:  # answered here, not by a worker
                self._answer(router, job.token, *error_outcome(job.request, err))
            return err is None

        for images in pool.dispatch(self.jobs, self.config.max_batch,
                                    self.config.max_wait_ms / 1000, screen):
            self.stats.record_batch(images)

    def _answer(self, router: zmq.Socket, token: int, frames: list, code: str | None) -> None:
        """Send the reply of accepted job ``token`` to its (latest) connection, once; a reply
        for a job already answered (``shutting_down`` at the drain's end) is dropped."""
        job = self._pending.pop(token, None)
        if job is None:
            log.debug("dropping a late reply: its request was answered already")
            return
        self._live.pop(job.key, None)
        router.send_multipart(job.envelope + list(frames), copy=False)
        self._done(job.request.id, "reconstruct", job.n_images, job.received, code)

    def _forward_replies(self, pipe: zmq.Socket, router: zmq.Socket) -> None:
        """Results of the compute thread: ``[token, code, *reply frames]``."""
        while True:
            try:
                frames = pipe.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            token, code = int(frames[0].bytes), frames[1].bytes.decode() or None
            self._answer(router, token, frames[2:], code)

    def _receive_requests(self, router: zmq.Socket) -> None:
        for _ in range(100):  # bounded, so replies are forwarded between bursts
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            envelope, body = _split_envelope(frames)
            if envelope is None:
                continue  # no routing identity: nothing to reply to
            received = time.monotonic()
            try:
                reply = self._handle(envelope, body, received)
            except ProtocolError as exc:
                reply = encode_error(exc)
                self._done(exc.request_id, exc.op or "?", 0, received, exc.code)
            except Exception as exc:  # a bug must not take the daemon down
                log.exception("internal error handling a request")
                reply = encode_error(ProtocolError("internal", f"{type(exc).__name__}: {exc}"))
                self._done(None, "?", 0, received, "internal")
            if reply is not None:
                router.send_multipart(envelope + reply)

    def _handle(self, envelope: list[bytes], body: list[bytes], received: float
                ) -> list[bytes] | None:
        """The reply frames, or None when the job was queued (its reply comes later)."""
        request = decode_request(body, self.config.limits)
        if request.op == "reconstruct":
            return self._enqueue(request, envelope, received, body)
        if request.op == "health":
            reply = encode_reply("health", request.id, self._health())
        elif request.op == "info":
            reply = encode_reply("info", request.id, self._info())
        elif request.op == "stats":
            workers = self._pool.describe() if self._pool is not None else {}
            reply = encode_reply("stats", request.id, {**self.stats.snapshot(), **workers,
                                                       "queue_depth": self.jobs.depth})
        else:
            found = self.jobs.cancel((_scope(request, envelope), request.target))
            reply = encode_reply("cancel", request.id, {"target": request.target,
                                                        "cancelled": found})
        self._done(request.id, request.op, 0, received, None)
        return reply

    def _enqueue(self, request: Request, envelope: list[bytes], received: float,
                 body: list[bytes]) -> list[bytes] | None:
        if self._stopping.is_set():
            raise ProtocolError("shutting_down", request_id=request.id, op="reconstruct")
        scope = _scope(request, envelope)
        token = self._live.get((scope, request.id))
        if token is not None:
            # A retry (the same client's request on a new connection) of a job still queued
            # or computing: its one result answers the retry.
            self._pending[token].envelope = envelope
            log.info("id=%s: a retry of a request in progress; its result will answer it",
                     request.id)
            return self._ack(request, retry=True)
        deadline = request.options.deadline_ms
        job = Job(request, envelope, received,
                  received + deadline / 1000 if deadline is not None else None, frames=body,
                  scope=scope, token=next(self._tokens))
        if not self.jobs.put(job):
            raise ProtocolError("busy", f"the queue is full ({self.config.queue_size} "
                                        "requests); try again shortly",
                                request_id=request.id, op="reconstruct")
        self._pending[job.token] = job
        self._live[job.key] = job.token
        return self._ack(request, retry=False)

    def _ack(self, request: Request, retry: bool) -> list[bytes] | None:
        """The acknowledgement a request asked for (``"ack": true``), else None."""
        if not request.ack:
            return None
        return encode_reply("reconstruct", request.id, {"ack": True, "retry": retry,
                                                        "queue_depth": self.jobs.depth})

    def _abandon_all(self, router: zmq.Socket) -> None:
        """The drain is over: every accepted job still unanswered, queued or computing, gets
        ``shutting_down`` (a result computed later is dropped by :meth:`_answer`)."""
        self.jobs.drain()
        for token, job in list(self._pending.items()):
            err = ProtocolError("shutting_down", "the server stopped before this request was "
                                "answered; send it again when the server is back",
                                request_id=job.request.id, op="reconstruct")
            self._answer(router, token, encode_error(err), err.code)

    def _health(self) -> dict:
        workers = self._pool.describe() if self._pool is not None else {}
        return {"status": "draining" if self._stopping.is_set() else "ok",
                "uptime_s": round(time.monotonic() - self.stats.started, 1),
                "queue_depth": self.jobs.depth, "device": self.config.device, **workers}

    def _info(self) -> dict:
        import torch

        limits = self.config.limits
        return {"model": self.pipeline.describe(), "device": self.config.device,
                "versions": {"protocol": PROTOCOL_VERSION, "server": _package_version(),
                             "torch": torch.__version__, "zmq": zmq.zmq_version(),
                             "pyzmq": zmq.__version__, "numpy": np.__version__,
                             "python": platform.python_version()},
                "limits": {**limits.__dict__, "queue_size": self.config.queue_size,
                           "max_batch": self.config.max_batch,
                           "max_wait_ms": self.config.max_wait_ms},
                "defaults": {"threshold": self.pipeline.info.threshold, "format": "glb",
                             "resolution": self.pipeline.voxel_size}}

    def _done(self, request_id: str | None, op: str, images: int, received: float,
              error: str | None) -> None:
        """One log line and the statistics for a finished request."""
        ms = (time.monotonic() - received) * 1000
        self.stats.record(op, ms, error)
        log.info("id=%s op=%s images=%d ms=%.1f outcome=%s", request_id, op, images, ms,
                 error or "ok")

    # -- the compute thread (``workers == 0``)

    def _compute_loop(self) -> None:
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        # After the I/O thread has gone (a drain that timed out) a send must not block forever.
        push.setsockopt(zmq.SNDTIMEO, 1000)
        push.connect(PIPE)
        try:
            self._ready.wait()
            max_wait = self.config.max_wait_ms / 1000
            batches = 0
            while not (self._stopping.is_set() and self.jobs.depth == 0):
                batch = self.jobs.next_batch(self.config.max_batch, max_wait)
                live = []
                for job in batch:
                    err = self._screen_error(job)
                    if err is None:
                        live.append(job)
                    else:
                        self._push(push, job, *error_outcome(job.request, err))
                if live:
                    self._run_batch(live, push)
                    batches += 1
                    if self.config.trim_every and batches % self.config.trim_every == 0:
                        malloc.trim()
        finally:
            push.close(linger=0)
            self._compute_done.set()

    def _run_batch(self, live: list[Job], push: zmq.Socket) -> None:
        self.stats.record_batch(sum(job.n_images for job in live))
        now = time.monotonic()
        requests = [job.request for job in live]
        try:
            outcomes = compute_batch(self.pipeline, requests,
                                     [(now - job.received) * 1000 for job in live])
        except Exception as exc:  # the thread must survive: a dead one leaves every later
            log.exception("batch failed")  # request queued forever while health says ok
            err = ProtocolError("internal", f"batch failed: {type(exc).__name__}: {exc}")
            outcomes = [error_outcome(request, err) for request in requests]
        for job, (frames, code) in zip(live, outcomes, strict=True):
            self._push(push, job, frames, code)

    @staticmethod
    def _push(push: zmq.Socket, job: Job, frames: list[bytes], code: str | None) -> None:
        """A result to the I/O thread, which answers the job (``[token, code, *frames]``)."""
        try:
            push.send_multipart([str(job.token).encode(), (code or "").encode(), *frames])
        except zmq.ZMQError:  # the I/O thread is gone: it answered the job at the drain's end
            log.debug("id=%s: result computed after shutdown; dropped", job.request.id)

    @staticmethod
    def _screen_error(job: Job) -> ProtocolError | None:
        """Why ``job`` is not to be computed (cancelled, expired), or None."""
        if job.cancelled:
            return ProtocolError("cancelled", "the request was cancelled before it was computed")
        if job.expired():
            return ProtocolError("deadline_exceeded",
                                 f"not started within {job.request.options.deadline_ms:g} ms "
                                 "of arriving (the server is loaded)")
        return None


def _scope(request: Request, envelope: list[bytes]) -> str:
    """Whose request ids these are: the client's token, else its connection's routing id."""
    return f"c:{request.client}" if request.client else "e:" + bytes(envelope[0]).hex()


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes] | None, list[bytes]]:
    """ROUTER frames -> (routing envelope, message). REQ and DEALER-with-delimiter peers put an
    empty frame after the identity; a bare DEALER does not."""
    if len(frames) < 2:
        return (frames[:1] or None), []
    if frames[1] == b"":
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unsup3d-recon")
    except PackageNotFoundError:
        return "dev"


# ------------------------------------------------------------------------------ commands


def add_serve_parser(sub) -> None:
    """``serve`` subcommand."""
    p = sub.add_parser("serve", help="run the reconstruction daemon (ZeroMQ)")
    add_dataclass_arguments(p, ServerConfig)
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args) -> int:
    config = dataclass_from_args(ServerConfig, args)
    try:
        server = Server(config)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    try:
        server.serve_forever()
    except (ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2
    return 0


def add_keys_parser(sub) -> None:
    """``keys`` subcommand."""
    p = sub.add_parser("keys", help="write CURVE key pairs for a remote deployment")
    add_dataclass_arguments(p, KeysConfig)
    p.set_defaults(func=_cmd_keys)


def _cmd_keys(args: argparse.Namespace) -> int:
    out = dataclass_from_args(KeysConfig, args).out
    server_public, client_public = write_keys(out)
    log.info("wrote %s and %s (+ secret keys); start the server with --curve-keys %s and give "
             "clients client.key_secret and server.key", server_public, client_public, out)
    return 0
