"""Worker processes behind the daemon's I/O thread (``serve --workers N``).

Each worker is started with ``spawn`` (CUDA and fork do not mix), loads the model, and talks
to the I/O thread over a DEALER socket connected to a loopback ROUTER the pool binds:

    worker -> pool: READY | RESULT {key, code} reply-frames...
    worker heartbeat socket -> pool: HEARTBEAT name
    pool -> worker: BATCH {jobs: [{key, frames, waited_ms}]} request-frames... | HEARTBEAT | STOP

A worker gets one batch at a time (after READY). Both sides heartbeat every second; a worker
does it from a thread of its own with a socket of its own, so its heartbeats keep coming
while it computes and stop only when the process does (killed, crashed, SIGSTOPped, or out of
the scheduler's reach). A worker exits when the pool falls silent (the daemon died). The pool
routes work by liveness: a worker that missed heartbeats (silent for :data:`SUSPECT_S`) gets
no new batch and ``health`` counts it; one silent for :data:`LIVENESS_S`, whose process
exited (``kill -9``), or that holds a batch longer than :data:`MAX_BATCH_S` while still
heartbeating (hung in native code) is presumed dead, killed and restarted. A dead worker's
jobs are sent once more, to another worker; a job whose second worker dies too gets an
``internal`` error, so a client gets its result or a clear error, never a hang.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass, field

import zmq

from backend.protocol.messages import Limits, ProtocolError, decode_request
from backend.serving.batching import Job, JobQueue

log = logging.getLogger(__name__)

READY, HEARTBEAT, RESULT, BATCH, STOP = b"READY", b"HEARTBEAT", b"RESULT", b"BATCH", b"STOP"
HEARTBEAT_S = 1.0
SUSPECT_S = 2.5  # silent this long: missed heartbeats, so no new work (and health says so)
LIVENESS_S = 6.0  # silent this long: presumed dead (heartbeats come while it computes too)
MAX_BATCH_S = 120.0  # computing one batch longer than this: hung, though its heartbeats come
STARTUP_LIVENESS_S = 120.0  # spawn + import torch + load the model, on a loaded CPU
POOL_SILENCE_S = 10.0  # a worker that hears nothing this long assumes the daemon is gone
MAX_ATTEMPTS = 2  # a job is sent to at most this many workers
WORKER_MALLOC_ARENAS, WORKER_TRIM_EVERY = 2, 64  # see backend.serving.malloc
# Requests reach workers already validated against the server's limits.
_NO_LIMITS = Limits(max_header_bytes=1 << 40, max_frame_bytes=1 << 40,
                    max_request_bytes=1 << 40, max_images=1 << 20)


@dataclass
class WorkerSpec:
    """What a worker process needs to start (plain values: it crosses a spawn boundary)."""

    endpoint: str
    checkpoint: str | None
    device: str
    threads: int
    delay_s: float = 0.0  # testing aid: extra seconds per batch, to kill a worker mid-request
    foreground: str | None = "none"  # see Pipeline.load


# ------------------------------------------------------------------------------ worker side


def worker_main(spec: WorkerSpec, name: bytes) -> None:
    """Entry point of a worker process."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s worker %(process)d: %(message)s")
    # Ctrl-C reaches the whole process group; the daemon drains and then sends STOP.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from backend.serving import malloc
    from backend.serving.compute import compute_batch

    malloc.limit_arenas(WORKER_MALLOC_ARENAS)  # before torch starts its threads
    from backend.serving.pipeline import Pipeline

    pipeline = Pipeline.load(spec.checkpoint, spec.device, spec.threads, spec.foreground)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, name)
    sock.connect(spec.endpoint)
    stop_beating = threading.Event()
    beater = threading.Thread(target=_heartbeat_loop, args=(ctx, spec.endpoint, name,
                                                            stop_beating), daemon=True)
    beater.start()
    sock.send(READY)
    heard, batches = time.monotonic(), 0
    try:
        while True:
            if sock.poll(int(HEARTBEAT_S * 1000)):
                frames = sock.recv_multipart()
                heard = time.monotonic()
                if frames[0] == STOP:
                    return
                if frames[0] == BATCH:
                    _run_batch(sock, frames, pipeline, compute_batch, spec.delay_s)
                    sock.send(READY)
                    batches += 1
                    if batches % WORKER_TRIM_EVERY == 0:
                        malloc.trim()
            elif time.monotonic() - heard > POOL_SILENCE_S:
                log.warning("the daemon fell silent; exiting")
                return
    finally:
        stop_beating.set()
        beater.join(2 * HEARTBEAT_S)
        sock.close(linger=0)
        ctx.term()


def heartbeat_name(name: bytes) -> bytes:
    """The routing id of a worker's heartbeat socket."""
    return name + b"/hb"


def _heartbeat_loop(ctx: zmq.Context, endpoint: str, name: bytes,
                    stop: threading.Event) -> None:
    """Heartbeats on a clock from a socket of their own, whatever the main thread does."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, heartbeat_name(name))
    sock.setsockopt(zmq.SNDHWM, 4)  # a daemon that stopped reading must not fill memory
    sock.connect(endpoint)
    try:
        while True:
            try:
                sock.send_multipart([HEARTBEAT, name], zmq.NOBLOCK)
            except zmq.Again:
                pass
            if stop.wait(HEARTBEAT_S):
                return
    finally:
        sock.close(linger=0)


def _run_batch(sock, frames, pipeline, compute_batch, delay_s: float) -> None:
    meta = json.loads(frames[1])
    body = frames[2:]
    requests, keys, waited, start = [], [], [], 0
    for job in meta["jobs"]:
        requests.append(decode_request(body[start:start + job["frames"]], _NO_LIMITS))
        start += job["frames"]
        keys.append(job["key"])
        waited.append(job["waited_ms"])
    if delay_s:
        time.sleep(delay_s)
    for key, (reply, code) in zip(keys, compute_batch(pipeline, requests, waited), strict=True):
        sock.send_multipart([RESULT, json.dumps({"key": key, "code": code}).encode(), *reply])


# ------------------------------------------------------------------------------ pool side


@dataclass
class _Worker:
    name: bytes
    process: multiprocessing.process.BaseProcess
    last_seen: float = field(default_factory=time.monotonic)
    ready: bool = False
    started: bool = False  # has said READY at least once (its model loaded)
    jobs: dict[int, Job] = field(default_factory=dict)
    batch_sent: float = 0.0  # when its current batch was sent


class WorkerPool:
    """The I/O thread's view of the workers; every method runs on that thread."""

    def __init__(self, ctx: zmq.Context, count: int, spec: WorkerSpec):
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:0")  # loopback only; works on every platform
        self.spec = WorkerSpec(**{**spec.__dict__,
                                  "endpoint": self.socket.getsockopt_string(zmq.LAST_ENDPOINT)})
        self._mp = multiprocessing.get_context("spawn")
        self._workers: dict[bytes, _Worker] = {}
        self._generation = 0
        self._next_key = 0
        self._last_beat = 0.0
        self.restarts = 0
        self._missing = 0  # workers to start again
        self._crash_streak = 0  # workers in a row that died before loading their model
        self._respawn_at = 0.0
        for _ in range(count):
            self._spawn()

    def _spawn(self) -> None:
        self._generation += 1
        name = f"worker-{self._generation}".encode()
        process = self._mp.Process(target=worker_main, args=(self.spec, name), daemon=True,
                                   name=name.decode())
        process.start()
        self._workers[name] = _Worker(name, process)
        log.info("started %s (pid %d)", name.decode(), process.pid)

    def describe(self) -> dict:
        """Worker counts for ``health``/``stats``."""
        now = time.monotonic()
        return {"workers": len(self._workers) + self._missing,
                "workers_ready": sum(w.ready and self._responsive(w, now)
                                     for w in self._workers.values()),
                "workers_missed_heartbeats": sum(w.started and not self._responsive(w, now)
                                                 for w in self._workers.values()),
                "worker_restarts": self.restarts}

    @staticmethod
    def _responsive(worker: _Worker, now: float) -> bool:
        """Heard from within :data:`SUSPECT_S` (a worker still loading counts as heard)."""
        return not worker.started or now - worker.last_seen <= SUSPECT_S

    @property
    def busy_jobs(self) -> int:
        return sum(len(w.jobs) for w in self._workers.values())

    # -- messages from workers

    def receive(self) -> list[tuple[Job, list[bytes], str | None]]:
        """Drain the socket; the jobs that finished, with their reply frames and error code."""
        done = []
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return done
            if len(frames) == 3 and frames[1] == HEARTBEAT:  # from a heartbeat socket
                worker = self._workers.get(frames[2])
                if worker is not None and frames[0] == heartbeat_name(worker.name):
                    worker.last_seen = time.monotonic()
                continue
            worker = self._workers.get(frames[0])
            if worker is None or len(frames) < 2:
                continue  # a worker already given up for dead
            worker.last_seen = time.monotonic()
            if frames[1] == READY:
                worker.ready = worker.started = True
            elif frames[1] == RESULT:
                meta = json.loads(frames[2])
                job = worker.jobs.pop(meta["key"], None)
                if job is not None:
                    done.append((job, frames[3:], meta["code"]))

    # -- dispatch

    def dispatch(self, jobs: JobQueue, max_images: int, max_wait_s: float, screen
                 ) -> list[int]:
        """Give a batch to every ready worker; ``screen(job)`` answers and filters out jobs
        that are cancelled or past their deadline (returns True to keep a job). Returns the
        number of images of each batch sent."""
        sent = []
        now = time.monotonic()
        for worker in self._workers.values():
            # Only to workers whose heartbeats come: a stopped one would sit on the batch.
            while worker.ready and jobs.depth and self._responsive(worker, now):
                batch = [j for j in jobs.next_batch(max_images, max_wait_s, 0) if screen(j)]
                if batch:
                    self._send_batch(worker, batch)
                    sent.append(sum(j.n_images for j in batch))
        return sent

    def _send_batch(self, worker: _Worker, batch: list[Job]) -> None:
        now = time.monotonic()
        meta, frames = [], []
        for job in batch:
            key = self._next_key
            self._next_key += 1
            job.attempts += 1
            worker.jobs[key] = job
            meta.append({"key": key, "frames": len(job.frames),
                         "waited_ms": round((now - job.received) * 1000, 3)})
            frames.extend(job.frames)
        worker.ready = False
        worker.batch_sent = now
        self.socket.send_multipart([worker.name, BATCH, json.dumps({"jobs": meta}).encode(),
                                    *frames])

    # -- liveness

    def check(self, jobs: JobQueue) -> list[tuple[Job, ProtocolError]]:
        """Heartbeat the workers, replace dead or hung ones, re-queue their jobs; the jobs
        that ran out of attempts, with their error."""
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            for worker in self._workers.values():
                self.socket.send_multipart([worker.name, HEARTBEAT])
        failed = []
        for worker in list(self._workers.values()):
            reason = self._failure(worker, now)
            if reason is None:
                continue
            alive = worker.process.is_alive()
            log.error("%s (pid %d) %s; restarting it", worker.name.decode(), worker.process.pid,
                      reason)
            if alive:
                worker.process.kill()
            worker.process.join(1.0)
            del self._workers[worker.name]
            failed += self._requeue(worker, jobs)
            self._schedule_restart(worker, now)
        while self._missing and time.monotonic() >= self._respawn_at:
            self._missing -= 1
            self.restarts += 1
            self._spawn()
        return failed

    @staticmethod
    def _failure(worker: _Worker, now: float) -> str | None:
        """Why ``worker`` is presumed dead, or None while it is fine."""
        if not worker.process.is_alive():
            return f"died (exit code {worker.process.exitcode})"
        silent = now - worker.last_seen
        if silent > (LIVENESS_S if worker.started else STARTUP_LIVENESS_S):
            return f"missed its heartbeats for {silent:.1f} s (stopped or hung)"
        if worker.jobs and now - worker.batch_sent > MAX_BATCH_S:
            return (f"has computed one batch for more than {MAX_BATCH_S:g} s (hung, though "
                    "its heartbeats come)")
        return None

    def _schedule_restart(self, worker: _Worker, now: float) -> None:
        """Restart at once after a crash mid-work; back off (up to 30 s) while workers keep
        dying before their model is loaded (a broken device or checkpoint), instead of
        spawning in a tight loop."""
        self._missing += 1
        self._crash_streak = 0 if worker.started else self._crash_streak + 1
        delay = min(30.0, 0.5 * 2 ** self._crash_streak) if self._crash_streak else 0.0
        self._respawn_at = max(self._respawn_at, now + delay)
        if delay:
            log.error("workers keep dying while starting; next attempt in %.1f s", delay)

    def _requeue(self, worker: _Worker, jobs: JobQueue) -> list[tuple[Job, ProtocolError]]:
        failed = []
        for job in sorted(worker.jobs.values(), key=lambda j: j.received, reverse=True):
            if job.attempts < MAX_ATTEMPTS:
                jobs.push_front(job)  # retried first, in arrival order
            else:
                failed.append((job, ProtocolError(
                    "internal", f"the worker computing this request died ({MAX_ATTEMPTS} "
                                "times); the request may crash the model")))
        return failed

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask every worker to exit; kill the ones that do not."""
        for worker in self._workers.values():
            try:
                self.socket.send_multipart([worker.name, STOP], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        end = time.monotonic() + timeout_s
        for worker in self._workers.values():
            worker.process.join(max(0.0, end - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
        self.socket.close(linger=0)
