"""Start, await and stop a reconstruction daemon on this machine (stdlib + the client only).

One owner for the daemon subprocess: the Blender add-on starts it in the Python environment
that has the backend installed (an add-on preference), ``python -m backend demo`` and the
tests in their own interpreter. The daemon runs as ``python -m backend serve``; its log goes
to a file that errors point to when it fails to come up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .client import ReconClient, ServerUnavailable, is_loopback


class DaemonError(RuntimeError):
    """The local daemon could not be started."""


class LocalDaemon:
    """One daemon subprocess bound to a loopback endpoint."""

    def __init__(self, python: str, endpoint: str, checkpoint: str | None = None,
                 log_path: str | None = None, foreground: str | None = None):
        try:
            loopback = is_loopback(endpoint)
        except ValueError as exc:
            raise DaemonError(f"bad server address {endpoint!r}: {exc}") from exc
        if not loopback:
            raise DaemonError(f"a local daemon binds loopback only; {endpoint} is not")
        if not python or not Path(python).is_file():
            raise DaemonError(f"no Python executable at {python!r}: set the path of the "
                              "environment that has the backend installed in the add-on "
                              "preferences")
        self.python = python
        self.endpoint = endpoint
        self.checkpoint = checkpoint or None
        self.foreground = foreground or None  # serve's --foreground (None: its default)
        port = endpoint.rsplit(":", 1)[-1]
        self.log_path = log_path or str(Path(tempfile.gettempdir()) /
                                        f"unsup3d_daemon_{port}_{os.getpid()}.log")
        self._proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        cmd = [self.python, "-m", "backend", "serve", "--bind", self.endpoint]
        if self.checkpoint:
            cmd += ["--checkpoint", self.checkpoint]
        if self.foreground:
            cmd += ["--foreground", self.foreground]
        return cmd

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch the daemon (returns at once; the status light shows when it answers)."""
        if self.running:
            return
        env = dict(os.environ)
        if Path(self.python).resolve() != Path(sys.executable).resolve():
            # Blender's own PYTHONPATH/PYTHONHOME must not leak into another interpreter.
            env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        no_console = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console pops up
        try:
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, env=env,
                                              creationflags=no_console)
        except OSError as exc:
            raise DaemonError(f"cannot run {self.python}: {exc}") from exc

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the daemon answers ``health`` (scripts and tests; the panel's status
        light does this without blocking). Raises :class:`DaemonError` when it exits first
        or does not answer within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with ReconClient(self.endpoint, timeout_s=1.0, retries=0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise DaemonError(self.exit_message() or "the daemon is not running")
                try:
                    client.health()
                    return
                except ServerUnavailable:
                    continue  # still loading the model
        raise DaemonError(f"no answer from the daemon at {self.endpoint} within {timeout_s:g} s;"
                          f" see {self.log_path}")

    def exit_message(self, lines: int = 3) -> str | None:
        """Why the daemon stopped (the last ``lines`` of its log), or None while it runs."""
        if self._proc is None or self._proc.poll() is None:
            return None
        try:
            tail = Path(self.log_path).read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            tail = []
        return f"the daemon exited with code {self._proc.returncode}: " + " | ".join(tail)

    def stop_in_background(self, timeout_s: float = 10.0) -> threading.Thread:
        """:meth:`stop` on a thread (a UI must not wait for the drain); returns the thread."""
        thread = threading.Thread(target=self.stop, args=(timeout_s,), daemon=True,
                                  name="unsup3d-daemon-stop")
        thread.start()
        return thread

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Ask the daemon to drain and exit (SIGTERM), then kill it if it does not; returns
        its exit code (None when it was never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            deadline = time.monotonic() + timeout_s
            while self._proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        code, self._proc = self._proc.returncode, None
        return code
