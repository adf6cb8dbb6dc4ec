"""The daemon's bounded job queue with dynamic batching, deadlines and cancel by request key.

The I/O thread puts jobs (a full queue is answered ``busy`` at once, as Triton, TorchServe and
Ray Serve do, rather than letting latency grow without bound); the compute thread takes a batch:
the first job blocks, then more jobs join until ``max_images`` images are gathered or
``max_wait_s`` has passed since the first one arrived, so a lone request waits at most that long
while concurrent requests share one forward pass.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from backend.protocol.messages import Request


@dataclass
class Job:
    """One accepted reconstruct request and where its reply goes."""

    request: Request
    envelope: list[bytes]  # ROUTER routing frames to prepend to the reply
    received: float = field(default_factory=time.monotonic)
    deadline: float | None = None  # time.monotonic() after which it is not computed
    cancelled: bool = False
    frames: list[bytes] = field(default_factory=list)  # the request as received (for workers)
    attempts: int = 0  # workers it was sent to
    # Whose request it is: the client's token ("c:<token>") or, without one, its connection
    # ("e:<routing id>"). Only the same scope may retry or cancel it.
    scope: str = ""
    token: int = 0  # the server's handle of the accepted job

    @property
    def key(self) -> tuple[str, str]:
        """``(scope, request id)``: a request's identity (ids are unique per client only)."""
        return self.scope, self.request.id

    @property
    def n_images(self) -> int:
        return len(self.request.images)

    def expired(self, now: float | None = None) -> bool:
        return self.deadline is not None and (now or time.monotonic()) > self.deadline


class JobQueue:
    """A bounded FIFO of :class:`Job` with lookup by :attr:`Job.key` (for cancel)."""

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self._queue: queue.Queue[Job] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._by_id: dict[tuple[str, str], Job] = {}

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def put(self, job: Job) -> bool:
        """Enqueue; False when the queue is full. A queued job with the same key is cancelled:
        it is the same client's earlier attempt (the server normally redirects a retry to the
        job it already holds instead of queueing it again)."""
        with self._lock:
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                return False
            superseded = self._by_id.get(job.key)
            if superseded is not None:
                superseded.cancelled = True
            self._by_id[job.key] = job
            return True

    def cancel(self, key: tuple[str, str]) -> bool:
        """Mark the queued job with this :attr:`Job.key` cancelled (the compute thread answers
        it); whether one was found."""
        with self._lock:
            job = self._by_id.get(key)
            if job is None or job.cancelled:
                return False
            job.cancelled = True
            return True

    def _take(self, timeout: float) -> Job | None:
        try:
            job = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            if self._by_id.get(job.key) is job:
                del self._by_id[job.key]
        return job

    def next_batch(self, max_images: int, max_wait_s: float, idle_timeout_s: float = 0.1
                   ) -> list[Job]:
        """Up to ``max_images`` images' worth of jobs (at least one job whatever its size);
        empty when nothing arrived within ``idle_timeout_s``."""
        first = self._take(idle_timeout_s)
        if first is None:
            return []
        batch, images = [first], first.n_images
        end = time.monotonic() + max_wait_s
        while images < max_images:
            job = self._take(end - time.monotonic())
            if job is None:
                break
            if images + job.n_images > max_images and not job.cancelled:
                # Too big for this batch: it leads the next one (put back at the front).
                self.push_front(job)
                break
            batch.append(job)
            images += job.n_images
        return batch

    def push_front(self, job: Job) -> None:
        """Put a job back at the head of the queue (may exceed the bound by the few jobs a
        batch or a dead worker returns)."""
        with self._lock, self._queue.mutex:
            self._queue.queue.appendleft(job)
            self._queue.unfinished_tasks += 1
            self._queue.not_empty.notify()
            self._by_id[job.key] = job

    def drain(self) -> list[Job]:
        """Remove and return every queued job."""
        jobs = []
        while (job := self._take(0)) is not None:
            jobs.append(job)
        return jobs
