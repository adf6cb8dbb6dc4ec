"""Benchmark of the reconstruction daemon over loopback.

    python benchmarks/bench_server.py [--checkpoint model.pt] [--requests 200] [--memory 10000]

- end-to-end latency of one 128 px image, GLB out, default options (targets on the 2-core CPU:
  p50 <= 60 ms, p99 <= 150 ms);
- the same for an opaque 1-megapixel JPEG, framed by the foreground model (target p50 <= 60
  ms) and, interleaved, with ``autocrop: false`` (framing's cost);
- the protocol's overhead: that latency minus the same pipeline called in-process (the request
  still encoded and decoded; target <= 5 ms at p50);
- throughput at 1, 4 and 16 concurrent clients with batching (max batch 16) and without (1);
- with ``--memory N``: the daemon's resident memory before and after N more requests;
- with ``--load N``: N requests from each of 32 and 64 concurrent clients (p50/p99 latency,
  ``busy`` answers, lost requests: the target is 0 lost);
- with ``--soak N``: the daemon's RSS over N requests from 32 clients after a warm-up, in MB
  per 10 000 requests (target <= 10), with the daemon's malloc tuning (``--malloc-arenas``,
  ``--trim-every``) and, with ``--soak-untuned M``, over M requests without it (the ratio).

The daemon runs as a separate process (``python -m backend serve``), as in use. Without
``--checkpoint`` the shipped weights are used; where they are missing, a randomly initialised
model, and the output says so: its noisy probabilities give larger meshes than a trained
model's, so meshing takes longer.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.checkpoint import DEFAULT_WEIGHTS  # noqa: E402
from backend.protocol import ReconClient  # noqa: E402
from backend.protocol.messages import decode_request, encode_request  # noqa: E402
from benchmarks.machine import describe  # noqa: E402


def test_image(size: int = 128) -> bytes:
    """A 128 px RGBA PNG: a chair-like block figure on a transparent background."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    s = size // 8
    for box in ((2 * s, 4 * s, 6 * s, 5 * s), (2 * s, 1 * s, 3 * s, 5 * s),
                (2 * s, 5 * s, 3 * s, 7 * s), (5 * s, 5 * s, 6 * s, 7 * s)):
        img.paste((150, 90, 50, 255), box)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg(width: int = 1224, height: int = 816) -> bytes:
    """An opaque 1-megapixel JPEG (quality 90): the block chair in a room-like photo (a lit
    wall and floor, sensor noise), off-centre, as a phone would take it."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.stack([200 - 40 * yy / height, 190 - 30 * yy / height, 170 + 0 * yy], -1)
    floor = np.stack([120 + 20 * xx / width, 100 + 0 * xx, 80 + 0 * xx], -1)
    pixels = np.where((yy > 0.6 * height)[..., None], floor, wall)
    pixels += rng.normal(0, 4, pixels.shape)
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    chair = Image.open(io.BytesIO(test_image(384)))
    img.paste(chair.convert("RGB"), (700, 300), chair)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def random_checkpoint(directory: Path) -> Path:
    import torch

    from backend.core.checkpoint import ModelInfo, save_model
    from backend.models import ModelConfig, Reconstructor

    torch.manual_seed(0)
    path = directory / "random.pt"
    save_model(path, Reconstructor(ModelConfig()), ModelInfo(mode="random-init"))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """``python -m backend serve`` in a subprocess."""

    def __init__(self, checkpoint: Path, max_batch: int, max_wait_ms: float, workers: int,
                 extra: tuple[str, ...] = ()):
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--checkpoint", str(checkpoint),
             "--bind", self.endpoint, "--max-batch", str(max_batch), "--max-wait-ms",
             str(max_wait_ms), "--queue-size", "256", "--workers", str(workers), *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with ReconClient(self.endpoint, timeout_s=1.0, retries=60) as c:
            while c.health().get("workers_ready", 1) < 1:
                time.sleep(0.2)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (f"p50 {np.percentile(a, 50):6.1f} ms  p90 {np.percentile(a, 90):6.1f} ms  "
            f"p99 {np.percentile(a, 99):6.1f} ms  (n={a.size})")


def latency(client, image: bytes, n: int, stages: list[dict] | None = None, **options
            ) -> list[float]:
    """``n`` end-to-end latencies in ms; each reply's own ``timings`` appended to ``stages``."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = client.reconstruct([image], **options)
        times.append((time.perf_counter() - t0) * 1000)
        assert result.format == "glb"
        if stages is not None:
            stages.append(result.timings)
    return times


def stage_medians(stages: list[dict]) -> str:
    """The p50 of each stage the daemon times itself (``timings`` of its replies)."""
    keys = ("preprocess_ms", "model_ms", "mesh_ms", "total_ms")
    return "  ".join(f"{k.removesuffix('_ms')} {np.median([s[k] for s in stages]):.1f}"
                     for k in keys)


def photo_latency(client, n: int) -> None:
    """A 1-megapixel opaque JPEG with framing (the foreground model) and without."""
    photo = photo_jpeg()
    latency(client, photo, 5)  # warm-up
    framing = client.reconstruct([photo]).framing[0]
    on, off, on_stages, off_stages = [], [], [], []
    for _ in range(n):  # interleaved, so other jobs' load drifts through both equally
        on += latency(client, photo, 1, on_stages)
        off += latency(client, photo, 1, off_stages, autocrop=False)
    print(f"end-to-end, 1-megapixel JPEG, framing on ({framing['source']}): {percentiles(on)}"
          "  (target p50 <= 60 ms)")
    print(f"  in the daemon, p50 ms: {stage_medians(on_stages)}")
    print(f"the same, framing off:                        {percentiles(off)}")
    print(f"  in the daemon, p50 ms: {stage_medians(off_stages)}")
    print(f"framing's cost at p50: {np.median(on) - np.median(off):.1f} ms")


def paired_latency(client, checkpoint: Path, image: bytes, n: int
                   ) -> tuple[list[float], list[float], list[float]]:
    """Over the wire and in-process, interleaved so the other jobs' load drifts through both
    equally: (wire ms, in-process ms, wire ms minus the daemon's own total_ms)."""
    from backend.serving.pipeline import Pipeline

    pipeline = Pipeline.load(checkpoint, threads=1)  # as the daemon
    wire, local, transit = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        result = client.reconstruct([image])
        wire.append((time.perf_counter() - t0) * 1000)
        transit.append(wire[-1] - result.timings["total_ms"])
        t0 = time.perf_counter()
        # The same request encoding and decoding as the daemon, minus the socket.
        pipeline.run(decode_request(encode_request("reconstruct", "b", [image])))
        local.append((time.perf_counter() - t0) * 1000)
    return wire, local, transit


def memory_trace(daemon: Daemon, image: bytes, n: int) -> None:
    """The daemon's RSS every ``n / 5`` requests (flat = no leak per request)."""
    trace = [daemon.rss_mb()]
    with ReconClient(daemon.endpoint, timeout_s=60, retries=0) as c:
        for _ in range(5):
            latency(c, image, n // 5)
            trace.append(daemon.rss_mb())
    steps = " -> ".join(f"{mb:.0f}" for mb in trace)
    print(f"daemon RSS (MB) every {n // 5} of {n} more requests: {steps} "
          f"(daemon process only, not workers)")


def throughput(endpoint: str, image: bytes, clients: int, per_client: int) -> float:
    """Requests per second with ``clients`` threads, each with its own connection."""
    def work():
        with ReconClient(endpoint, timeout_s=120, retries=0) as c:
            for _ in range(per_client):
                c.reconstruct([image])

    threads = [threading.Thread(target=work) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients * per_client / (time.perf_counter() - t0)


class LoadResult:
    """What concurrent clients saw: latencies of successful requests, busy answers, losses."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ms: list[float] = []
        self.busy = self.lost = 0


def load(endpoint: str, image: bytes, clients: int, per_client: int) -> LoadResult:
    """``clients`` threads, each its own client, each sending ``per_client`` requests; a
    ``busy`` answer is retried after 50 ms (and counted), anything else that is not a result
    is a lost request."""
    from backend.protocol import RequestFailed, ServerUnavailable

    result = LoadResult()

    def work():
        with ReconClient(endpoint, timeout_s=30, retries=2) as c:
            for _ in range(per_client):
                while True:
                    t0 = time.perf_counter()
                    try:
                        c.reconstruct([image])
                    except RequestFailed as exc:
                        if exc.code == "busy":
                            with result.lock:
                                result.busy += 1
                            time.sleep(0.05)
                            continue
                        with result.lock:
                            result.lost += 1
                    except ServerUnavailable:
                        with result.lock:
                            result.lost += 1
                    else:
                        with result.lock:
                            result.ms.append((time.perf_counter() - t0) * 1000)
                    break

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def load_phase(checkpoint: Path, image: bytes, args) -> None:
    daemon = Daemon(checkpoint, 16, args.max_wait_ms, args.workers)
    try:
        load(daemon.endpoint, image, 4, 10)  # warm-up
        for clients in (32, 64):
            t0 = time.perf_counter()
            r = load(daemon.endpoint, image, clients, args.load)
            rate = len(r.ms) / (time.perf_counter() - t0)
            print(f"{clients} clients x {args.load} requests: {percentiles(r.ms)}, "
                  f"{rate:.1f} req/s, busy answers {r.busy}, lost {r.lost}")
    finally:
        daemon.stop()


def soak(checkpoint: Path, image: bytes, requests: int, extra: tuple[str, ...], label: str,
         args) -> float:
    """RSS of the daemon over ``requests`` requests from 32 clients after a warm-up of
    2 000; returns MB per 10 000 requests (a least-squares slope over 10 samples)."""
    daemon = Daemon(checkpoint, 16, args.max_wait_ms, args.workers, extra)
    try:
        load(daemon.endpoint, image, 32, 2000 // 32)
        done, trace = 0, [(0, daemon.rss_mb())]
        step = max(32, requests // 10)
        lost = 0
        while done < requests:
            r = load(daemon.endpoint, image, 32, max(1, step // 32))
            lost += r.lost
            done += 32 * max(1, step // 32)
            trace.append((done, daemon.rss_mb()))
    finally:
        daemon.stop()
    x, y = np.array(trace, dtype=float).T
    slope = float(np.polyfit(x, y, 1)[0]) * 10_000
    print(f"soak, {label}: RSS (MB) at {', '.join(f'{int(n)}: {mb:.0f}' for n, mb in trace)}"
          f"; {slope:+.1f} MB per 10 000 requests after warm-up; lost {lost}")
    return slope


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--requests", type=int, default=200, help="latency samples")
    p.add_argument("--throughput-requests", type=int, default=48,
                   help="requests per concurrency level")
    p.add_argument("--memory", type=int, default=0, help="requests for the memory check")
    p.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="the daemon's batching wait (its CPU default: 0)")
    p.add_argument("--workers", type=int, default=0, help="the daemon's worker processes")
    p.add_argument("--load", type=int, default=0,
                   help="requests per client for the 32- and 64-client phase (0: skip)")
    p.add_argument("--soak", type=int, default=0,
                   help="requests for the RSS soak with the malloc tuning (0: skip)")
    p.add_argument("--soak-untuned", type=int, default=0,
                   help="requests for the same soak without it, for the ratio (0: skip)")
    p.add_argument("--skip-latency", action="store_true",
                   help="only the --load/--soak phases")
    args = p.parse_args()

    print(f"machine: {describe()}")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} (other jobs share the CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        # The shipped weights by default (what users run); a random model only without them.
        checkpoint = args.checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file()
                                         else random_checkpoint(Path(tmp)))
        trained = args.checkpoint or DEFAULT_WEIGHTS.is_file()
        print(f"model: {checkpoint}" + ("" if trained else
                                        "  ** RANDOMLY INITIALISED, not trained **"))
        image = test_image()
        if not args.skip_latency:
            run(checkpoint, image, args)
        if args.load:
            load_phase(checkpoint, image, args)
        tuned = untuned = None
        if args.soak:
            tuned = soak(checkpoint, image, args.soak, (), "malloc tuning on (the default)",
                         args)
        if args.soak_untuned:
            untuned = soak(checkpoint, image, args.soak_untuned,
                           ("--malloc-arenas", "0", "--trim-every", "0"),
                           "malloc tuning off", args)
        if tuned is not None and untuned is not None:
            print(f"RSS growth, tuning off / on: {untuned:+.1f} / {tuned:+.1f} MB per 10 000 "
                  "requests (target <= 10 with it on)")


def run(checkpoint: Path, image: bytes, args) -> None:
    print(f"daemon: --workers {args.workers}, batched runs --max-batch 16 --max-wait-ms "
          f"{args.max_wait_ms:g}; GLB out, default options")
    # The shipped foreground model frames the opaque photo (serve's default is none for now).
    daemon = Daemon(checkpoint, 16, args.max_wait_ms, args.workers,
                    ("--foreground", "shipped"))
    try:
        with ReconClient(daemon.endpoint, timeout_s=60, retries=0) as c:
            latency(c, image, 10)  # warm-up
            wire, local, transit = paired_latency(c, checkpoint, image, args.requests)
        print(f"end-to-end, 1 x 128 px PNG -> GLB over loopback: {percentiles(wire)}")
        print(f"same pipeline in-process (interleaved):           {percentiles(local)}")
        print(f"protocol overhead at p50: {np.median(wire) - np.median(local):.1f} ms "
              f"(client-measured minus the daemon's own total: {np.median(transit):.1f} ms)")
        with ReconClient(daemon.endpoint, timeout_s=60, retries=0) as c:
            photo_latency(c, args.requests // 2)
        rates = {}
        for n in (1, 4, 16):
            rates[n] = throughput(daemon.endpoint, image, n, max(1, args.throughput_requests // n))
        if args.memory:
            memory_trace(daemon, image, args.memory)
    finally:
        daemon.stop()
    daemon = Daemon(checkpoint, 1, 0.0, args.workers)
    try:
        for n in (1, 4, 16):
            unbatched = throughput(daemon.endpoint, image, n,
                                   max(1, args.throughput_requests // n))
            print(f"throughput, {n:2d} client(s): {rates[n]:6.1f} req/s batched (max 16), "
                  f"{unbatched:6.1f} req/s unbatched ({rates[n] / unbatched:.2f}x)")
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
