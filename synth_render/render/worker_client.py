"""The parent's handle on one render worker subprocess (no bpy here).

Starts ``python -m synth_render.render.worker``, sends jobs as JSON lines and reads replies
with a deadline, so a worker that segfaults (:class:`WorkerDied`) or hangs
(:class:`WorkerTimeout`, after which it is killed) never takes the parent down. The worker's
stderr (Blender's chatter) is drained by a thread that keeps the last lines for error reports.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
EXIT_GRACE_S = 10.0
STDERR_TAIL_LINES = 40
# Blender's per-frame chatter; kept out of the tail so crash reports show what matters
NOISE_PREFIXES = ("Fra:", "Saved:", "Time:", "OBJ import of")


class WorkerError(RuntimeError):
    """The worker process failed; the job it held did not complete."""


class WorkerDied(WorkerError):
    """The worker exited (crash, kill -9, segfault) before answering."""


class WorkerTimeout(WorkerError):
    """The worker did not answer within the deadline and was killed."""


class WorkerProcess:
    """One ``synth_render.render.worker`` subprocess speaking JSON lines."""

    def __init__(self, env: dict | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S):
        # The parent owns the scratch folder: a worker killed with SIGKILL cannot clean up.
        self.tmp_dir = tempfile.mkdtemp(prefix="synth_render_worker_")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synth_render.render.worker", self.tmp_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, bufsize=0,
        )
        self.pid = self.proc.pid
        self.jobs_done = 0
        self.rss_mb = 0.0
        self._buffer = b""
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        hello = self._read_reply(startup_timeout_s, what="start-up")
        self.rss_mb = float(hello.get("rss_mb", 0.0))
        log.debug("worker %d ready (%.0f MiB)", self.pid, self.rss_mb)

    def run(self, job: dict, timeout_s: float) -> dict:
        """Send one job and wait for its reply; raise WorkerDied / WorkerTimeout."""
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(self._death_message()) from exc
        reply = self._read_reply(timeout_s, what=job.get("model_key", "job"))
        self.jobs_done += 1
        self.rss_mb = float(reply.get("rss_mb", self.rss_mb))
        return reply

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a grace period."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(EXIT_GRACE_S)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.kill()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the worker (hung or unwanted) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._cleanup()

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    # ------------------------------------------------------------------ internals

    def _read_reply(self, timeout_s: float, what: str) -> dict:
        """Read one JSON line before the deadline."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise WorkerTimeout(f"{what}: no answer within {timeout_s:.0f} s; "
                                        "worker killed")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    raise WorkerDied(self._death_message())
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _death_message(self) -> str:
        code = self.proc.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        self._drain.join(timeout=2)
        tail = self.stderr_tail().strip().splitlines()[-3:]
        return f"worker died ({how})" + (": " + " | ".join(tail) if tail else "")

    def _drain_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace").strip()
            if line and not line.startswith(NOISE_PREFIXES):
                self._stderr_tail.append(line)

    def _cleanup(self) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._drain.join(timeout=2)
