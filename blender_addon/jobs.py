"""The add-on's network side: one background thread that owns the daemon connection (no bpy).

The main thread hands it plain data (:class:`Connection`, :class:`ReconstructJob`) and drains
plain events from :attr:`NetworkThread.events` (the add-on does it from a ``bpy.app.timers``
callback, tests call the drain function directly). The thread never touches Blender data and
never raises: every failure becomes a :class:`JobFailed` event with a message and what to do.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from .protocol_import import (
    ClientError,
    CurveKeys,
    ReconClient,
    RequestFailed,
    ServerUnavailable,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Connection:
    """Where the daemon is and how patiently to wait for it."""

    endpoint: str
    timeout_s: float = 30.0
    retries: int = 1
    curve_dir: str = ""  # folder with client.key_secret and server.key ("" = no CURVE)


@dataclass(frozen=True)
class ReconstructJob:
    """Images (encoded bytes or uint8 arrays) captured on the main thread, with options.

    Not fused: one request per image, so progress and results arrive image by image and a
    cancel stops between images. Fused: one request, one mesh from all images.
    """

    job_id: int
    names: tuple[str, ...]
    images: tuple
    connection: Connection
    options: dict = field(default_factory=dict)  # ReconstructOptions fields (threshold, ...)
    fuse: bool = False
    crops: tuple = ()  # per image: (x, y, w, h) in pixels or None


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class Progress:
    job_id: int
    done: int
    total: int
    message: str


@dataclass(frozen=True)
class ImageResult:
    """One reconstructed mesh: for image ``names[0]``, or for all of them when fused."""

    job_id: int
    names: tuple[str, ...]
    mesh: bytes | None
    format: str
    empty: bool
    class_name: str
    synset: str
    azimuth: float
    elevation: float
    threshold: float
    seconds: float
    # The square the network saw, (x, y, w, h) in pixels of the upright image (None: an old
    # server), and where it came from (user, alpha, mask or none; note: why none).
    framing: tuple | None = None
    framing_source: str = ""
    framing_note: str = ""


@dataclass(frozen=True)
class JobFinished:
    job_id: int
    results: int
    cancelled: bool = False


@dataclass(frozen=True)
class JobFailed:
    job_id: int
    message: str
    hint: str


@dataclass(frozen=True)
class ServerStatus:
    """The answer to a status probe: ``ok`` with model and device, or why not."""

    endpoint: str
    ok: bool
    message: str
    model: str = ""
    device: str = ""


# ------------------------------------------------------------------------------ errors


def explain(exc: BaseException, connection: Connection, image: str | None = None
            ) -> tuple[str, str]:
    """A failure as ``(what happened, what to do next)`` for the panel and ``report``."""
    where = connection.endpoint
    if isinstance(exc, ServerUnavailable):
        keys = " and that the CURVE keys match the server's" if connection.curve_dir else ""
        return (f"No answer from the daemon at {where}: {exc}",
                "Start it (python -m backend serve, or Start in the add-on preferences) "
                f"and check the server address{keys}.")
    if isinstance(exc, RequestFailed):
        subject = f" for {image}" if image else ""
        if exc.code == "busy":
            return (f"The daemon is busy{subject}: its queue is full.",
                    "Wait a moment and press Reconstruct again.")
        if exc.code in ("bad_image", "too_large"):
            return (f"The daemon could not use the image{subject}: {exc.message}",
                    "Use a PNG or JPEG photo of one object (a few megapixels at most).")
        if exc.code == "deadline_exceeded":
            return (f"The daemon had no time for the request{subject}: {exc.message}",
                    "Raise the request timeout in the add-on preferences.")
        if exc.code == "shutting_down":
            return ("The daemon is shutting down.", "Start it again, then retry.")
        return (f"The daemon refused the request{subject} ({exc.code}): {exc.message}",
                "See the daemon's log for details.")
    if isinstance(exc, ClientError):
        return f"Connection problem with {where}: {exc}", "Check the server address and keys."
    if isinstance(exc, (OSError, ValueError)) and connection.curve_dir:
        return (f"Cannot use the CURVE keys in {connection.curve_dir}: {exc}",
                "Point the preferences at the folder written by `python -m backend keys`.")
    if isinstance(exc, ValueError):
        return f"Bad server address {where!r}: {exc}", "Use the form tcp://HOST:PORT."
    return (f"Unexpected error{' for ' + image if image else ''}: {exc!r}",
            "See the system console for the full traceback and report it.")


# ------------------------------------------------------------------------------ the thread


_STOP = object()
HEALTH_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 2.0  # the status light's health + info


class NetworkThread(threading.Thread):
    """Owns the sockets (ZeroMQ sockets belong to one thread) and runs one command at a time."""

    def __init__(self):
        super().__init__(name="unsup3d-network", daemon=True)
        self.inbox: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self._client: ReconClient | None = None
        self._client_key: Connection | None = None

    # -- called from the main thread

    def submit(self, job: ReconstructJob) -> None:
        self.inbox.put(job)

    def probe(self, connection: Connection) -> None:
        """Ask for a :class:`ServerStatus` (health + info) without blocking the caller."""
        self.inbox.put(connection)

    def cancel(self, job_id: int) -> None:
        with self._lock:
            self._cancelled.add(job_id)

    def stop(self, timeout_s: float = 5.0) -> None:
        self.inbox.put(_STOP)
        self.join(timeout_s)

    # -- the thread

    def run(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _STOP:
                break
            try:
                if isinstance(item, ReconstructJob):
                    self._reconstruct(item)
                elif isinstance(item, Connection):
                    self.events.put(self._status(item))
            except Exception as exc:  # the thread must survive anything
                log.exception("unexpected failure in the network thread")
                if isinstance(item, Connection):
                    self.events.put(ServerStatus(item.endpoint, False, str(exc)))
                else:  # a ReconstructJob: the inbox holds nothing else
                    self.events.put(JobFailed(item.job_id, *explain(exc, item.connection)))
        self._close()

    def _is_cancelled(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancelled

    def _client_for(self, connection: Connection) -> ReconClient:
        if self._client is None or self._client_key != connection:
            self._close()
            curve = CurveKeys.from_dir(connection.curve_dir) if connection.curve_dir else None
            self._client = ReconClient(connection.endpoint, timeout_s=connection.timeout_s,
                                       retries=connection.retries, curve=curve)
            self._client_key = connection
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._client_key = None

    def _status(self, connection: Connection) -> ServerStatus:
        try:
            # A probe must be quick: short timeout, no retries.
            client = self._client_for(connection)
            client.health(timeout_s=PROBE_TIMEOUT_S, retries=0)
            info = client.info(timeout_s=PROBE_TIMEOUT_S, retries=0)
        except Exception as exc:  # bad address, bad keys, zmq errors: all mean "down"
            return ServerStatus(connection.endpoint, False, str(exc) or type(exc).__name__)
        return ServerStatus(connection.endpoint, True, "ready", describe_model(info),
                            str(info.get("device", "")))

    def _reconstruct(self, job: ReconstructJob) -> None:
        batches = [tuple(range(len(job.images)))] if job.fuse else \
            [(i,) for i in range(len(job.images))]
        done = 0
        try:  # a down daemon is reported in seconds, not after timeout x retries
            self._client_for(job.connection).health(timeout_s=HEALTH_TIMEOUT_S, retries=0)
        except Exception as exc:
            self.events.put(JobFailed(job.job_id, *explain(exc, job.connection)))
            return
        for batch in batches:
            if self._is_cancelled(job.job_id):
                self.events.put(JobFinished(job.job_id, done, cancelled=True))
                return
            names = tuple(job.names[i] for i in batch)
            self.events.put(Progress(job.job_id, done, len(batches),
                                     f"reconstructing {', '.join(names)}"))
            try:
                result = self._request(job, batch)
            except RequestFailed as exc:
                if exc.code == "cancelled":
                    self.events.put(JobFinished(job.job_id, done, cancelled=True))
                    return
                self.events.put(JobFailed(job.job_id, *explain(exc, job.connection, names[0])))
                return
            except (ClientError, OSError, ValueError) as exc:
                self.events.put(JobFailed(job.job_id, *explain(exc, job.connection, names[0])))
                return
            self.events.put(result_event(job.job_id, names, result))
            done += 1
        self.events.put(Progress(job.job_id, done, len(batches), "done"))
        self.events.put(JobFinished(job.job_id, done))

    def _request(self, job: ReconstructJob, batch: tuple[int, ...]):
        client = self._client_for(job.connection)
        # The daemon frames each object (a crop box marks it); the camera background is cut
        # to the square the reply says the network saw.
        options = dict(job.options, fuse=job.fuse, autocrop=True)
        if job.crops and any(job.crops[i] is not None for i in batch):
            options["crop"] = [job.crops[i] for i in batch]
        started = time.monotonic()
        result = client.reconstruct([job.images[i] for i in batch],
                                    cancelled=lambda: self._is_cancelled(job.job_id), **options)
        result.timings.setdefault("client_s", time.monotonic() - started)
        return result


def result_event(job_id: int, names: tuple[str, ...], result) -> ImageResult:
    """The first output of a reconstruct result as an event (one image, or fused)."""
    view = result.views[0]
    out = result.outputs[0]
    framing = (result.framing or [{}])[0]  # absent from servers older than the field
    crop = framing.get("crop")
    return ImageResult(job_id=job_id, names=names, mesh=out.mesh, format=result.format,
                       empty=out.empty or out.mesh is None, class_name=view.class_name,
                       synset=view.synset, azimuth=float(view.azimuth),
                       elevation=float(view.elevation), threshold=float(result.threshold),
                       seconds=float(result.timings.get("client_s", 0.0)),
                       framing=tuple(float(v) for v in crop) if crop else None,
                       framing_source=str(framing.get("source", "")),
                       framing_note=str(framing.get("note", "")))


def describe_model(info: dict) -> str:
    """``"unsupervised, step 2500"`` from an ``info`` reply (whatever of it is there)."""
    model = info.get("model")
    if not isinstance(model, dict):
        return str(model or "unknown model")
    parts = [str(model.get("mode") or "model")]
    if model.get("step") is not None:
        parts.append(f"step {model['step']}")
    return ", ".join(parts)
