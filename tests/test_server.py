"""The daemon over real sockets, with a randomly initialised checkpoint saved by the test."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
import zmq
from PIL import Image

from backend.core.checkpoint import ModelInfo, save_model
from backend.models import ModelConfig, Reconstructor
from backend.protocol import (
    ERROR_CODES,
    CurveKeys,
    Limits,
    ReconClient,
    RequestFailed,
    ServerUnavailable,
)
from backend.protocol import messages as m
from backend.serving import workers
from backend.serving.pipeline import Pipeline
from backend.serving.server import Server, ServerConfig, is_loopback, write_keys
from synth_render.taxonomy import ALL_SYNSETS

ROOT = Path(__file__).resolve().parents[1]
# Small limits so the fuzzer's oversized messages are cheap.
LIMITS = Limits(max_header_bytes=4096, max_frame_bytes=256 * 1024,
                max_request_bytes=1024 * 1024, max_images=8)
# A random model's probabilities are noisy: a high threshold keeps its meshes small and fast.
THRESHOLD = 0.8


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_model(path, Reconstructor(ModelConfig()), ModelInfo(mode="random-init", threshold=0.5))
    return path


@pytest.fixture(scope="module")
def pipeline(checkpoint) -> Pipeline:
    return Pipeline.load(checkpoint)


class SlowPipeline:
    """A pipeline whose forward pass takes at least ``delay`` seconds (queueing tests)."""

    def __init__(self, inner: Pipeline, delay: float):
        self._inner, self.delay = inner, delay

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def infer(self, images):
        time.sleep(self.delay)
        return self._inner.infer(images)


def _start(pipeline, **config) -> Server:
    server = Server(ServerConfig(bind="tcp://127.0.0.1:0", **config), pipeline)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(pipeline):
    srv = _start(pipeline)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fuzz_server(pipeline):
    srv = _start(pipeline, queue_size=1000, limits=LIMITS)
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with ReconClient(server.endpoint, timeout_s=20, retries=0) as c:
        yield c


def _png_with_alpha(size=96) -> bytes:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    img.paste((180, 60, 40, 255), (size // 4, size // 3, 3 * size // 4, 5 * size // 6))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w=160, h=120) -> bytes:
    rng = np.random.default_rng(1)
    arr = (rng.random((h, w, 3)) * 60 + 150).astype(np.uint8)
    arr[h // 4:3 * h // 4, w // 3:2 * w // 3] = (40, 80, 160)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _dealer(endpoint: str, ctx: zmq.Context | None = None) -> zmq.Socket:
    sock = (ctx or zmq.Context.instance()).socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _recv(sock: zmq.Socket, timeout_s: float) -> m.Reply:
    assert sock.poll(int(timeout_s * 1000)), "no reply in time"
    frames = sock.recv_multipart()
    return m.decode_reply(frames[1:] if frames[0] == b"" else frames)


# ------------------------------------------------------------------------------ reconstruct


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["glb", "obj", "ply"])
def test_reconstruct_png_jpeg_and_large_photo(client, fmt):
    big = _jpeg(3000, 2000)
    for name, data, crop in (("png", _png_with_alpha(), None), ("jpeg", _jpeg(), None),
                             ("photo", big, [1000, 500, 1000, 1000])):
        result = client.reconstruct([data], format=fmt, threshold=THRESHOLD, crop=crop,
                                    outputs=["mesh", "voxels"])
        assert result.format == fmt and not result.outputs[0].empty, name
        mesh = trimesh.load(io.BytesIO(result.mesh), file_type=fmt, force="mesh")
        assert len(mesh.faces) > 0, name
        assert np.all(np.abs(mesh.vertices) <= 0.5 + 1e-6), name  # object units
        assert result.voxels.shape == (32, 32, 32) and result.voxels.dtype == np.float32
        _check_mesh_matches_voxels(mesh, result.voxels, result.threshold)
        view = result.views[0]
        assert view.synset in ALL_SYNSETS and view.class_name
        assert 0 <= view.azimuth <= 360 and -90 <= view.elevation <= 90
        assert result.timings["total_ms"] > 0


def _check_mesh_matches_voxels(mesh, voxels: np.ndarray, threshold: float) -> None:
    """The mesh's extent per axis is the occupied voxels' extent (within one voxel): same axes,
    same orientation, object units, nothing flipped or swapped on the way out."""
    d = voxels.shape[0]
    idx = np.argwhere(voxels >= threshold)
    lo, hi = idx.min(0) / d - 0.5, (idx.max(0) + 1) / d - 0.5
    np.testing.assert_allclose(mesh.bounds[0], lo, atol=1.0 / d)
    np.testing.assert_allclose(mesh.bounds[1], hi, atol=1.0 / d)


@pytest.mark.timeout(60)
def test_raw_pixel_arrays_fusion_and_resolution(client):
    arr = np.asarray(Image.open(io.BytesIO(_png_with_alpha())))  # (H, W, 4) uint8
    result = client.reconstruct([arr, _jpeg()], fuse=True, outputs=["voxels"], resolution=16)
    assert result.fused and len(result.outputs) == 1 and len(result.views) == 2
    assert result.voxels.shape == (16, 16, 16) and result.mesh is None


@pytest.mark.timeout(30)
def test_bad_images_get_clear_errors(client):
    for data, code in ((b"definitely not an image", "bad_image"),
                       (_png_with_alpha()[:60], "bad_image"),
                       (_png_header(100_000, 100_000), "image_too_large")):
        with pytest.raises(RequestFailed) as e:
            client.reconstruct([data])
        assert e.value.code == code and e.value.message
    with pytest.raises(RequestFailed) as e:
        client.reconstruct([_jpeg()], crop=[5000, 5000, 10, 10])
    assert e.value.code == "bad_option"
    # a box far larger than the image would pad to gigabytes: refused before allocating
    with pytest.raises(RequestFailed) as e:
        client.reconstruct([_jpeg()], crop=[0, 0, 160_000, 160_000])
    assert e.value.code == "bad_option" and "too large" in e.value.message


@pytest.mark.timeout(30)
def test_health_info_stats(client):
    assert client.health()["status"] == "ok"
    info = client.info()
    assert info["model"]["mode"] == "random-init" and len(info["model"]["classes"]) == 13
    assert info["versions"]["protocol"] == 1 and info["device"] == "cpu"
    assert info["limits"]["max_frame_bytes"] == Limits().max_frame_bytes
    stats = client.stats()
    assert {"queue_depth", "requests", "errors", "batch_sizes", "latency_ms"} <= set(stats)


# ------------------------------------------------------------------------------ fuzzing


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's calling card)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b""))


class Mutator:
    """Seeded generator of malformed requests, one category at a time."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.categories = [name[4:] for name in dir(self) if name.startswith("mut_")]

    def header(self, **changes) -> dict:
        h = {"v": 1, "op": "reconstruct", "id": f"f{self.rng.randrange(1 << 30)}",
             "images": [{"type": "encoded"}], "options": {}}
        h.update(changes)
        return {k: v for k, v in h.items() if v is not None}

    def dump(self, header: dict) -> bytes:
        return json.dumps(header).encode()

    def junk(self, n: int | None = None) -> bytes:
        return self.rng.randbytes(self.rng.randrange(1, 200) if n is None else n)

    def message(self) -> tuple[str, list[bytes]]:
        category = self.rng.choice(self.categories)
        return category, getattr(self, f"mut_{category}")()

    # Each mut_<category> returns the frames of one malformed message.

    def mut_bad_json(self):
        good = self.dump(self.header())
        return [self.rng.choice([self.junk(), good[:self.rng.randrange(1, len(good))],
                                 b"[1,2]", b'"str"', b"42", b"\xff" + good, b'{"v": NaN}']),
                b"x"]

    def mut_bad_version(self):
        v = self.rng.choice([0, 2, 99, "1", 1.5, True, [1], None])
        return [self.dump(self.header(v=v)), b"x"]

    def mut_unknown_op(self):
        op = self.rng.choice(["", "RECONSTRUCT", "delete", 7, None, ["health"], "x" * 300])
        return [self.dump(self.header(op=op))]

    def mut_bad_request(self):
        return self.rng.choice([
            [self.dump(self.header(id=self.rng.choice([None, "", 3.5, [], "i" * 200]))), b"x"],
            [self.dump(self.header(images=self.rng.choice([None, [], "x", [1], [{}]]))), b"x"],
            [self.dump(self.header(options=self.rng.choice(["fast", 1, []]))), b"x"],
            [self.dump({"v": 1, "op": "cancel", "id": "c", "target": self.rng.choice([None, 5])})],
        ])

    def mut_missing_frames(self):
        n = self.rng.randrange(1, 6)
        frames = [self.dump(self.header(images=[{"type": "encoded"}] * n))]
        return frames + [b"x"] * self.rng.randrange(0, n)

    def mut_extra_frames(self):
        if self.rng.random() < 0.3:
            return [self.dump({"v": 1, "op": self.rng.choice(["health", "info", "stats"]),
                               "id": "e"}), b"x"]
        return [self.dump(self.header()), b"x"] + [b"y"] * self.rng.randrange(1, 4)

    def mut_too_large(self):
        if self.rng.random() < 0.5:
            return [b" " * (LIMITS.max_header_bytes + 1 + self.rng.randrange(100))]
        return [self.dump(self.header()), bytes(LIMITS.max_frame_bytes + 1)]

    def mut_bad_image(self):
        png = _png_with_alpha(16)
        data = self.rng.choice([self.junk(), png[:self.rng.randrange(8, len(png) // 2)],
                                b"\x89PNG\r\n\x1a\n" + self.junk(), b"\xff\xd8\xff" + self.junk(),
                                b""])
        return [self.dump(self.header()), data]

    def mut_image_too_large(self):
        if self.rng.random() < 0.5:
            return [self.dump(self.header()), _png_header(self.rng.randrange(50_000, 1 << 20),
                                                          self.rng.randrange(50_000, 1 << 20))]
        side = m.MAX_IMAGE_SIDE + 1 + self.rng.randrange(100)
        desc = {"type": "array", "dtype": "uint8", "shape": [1, side]}
        return [self.dump(self.header(images=[desc])), bytes(side)]

    def mut_bad_array(self):
        dtype = self.rng.choice(["uint8", "float64", "int32", "|O", "<U4", 5])
        shape = self.rng.choice([[2, 2], [2, 2, 2], [0, 3], [-1, 4], [2, 2, 5], "2x2", [1] * 6])
        n = self.rng.randrange(0, 64)
        if dtype == "uint8" and shape == [2, 2]:
            n = 5  # a well-formed descriptor with the wrong byte count
        desc = {"type": "array", "dtype": dtype, "shape": shape}
        return [self.dump(self.header(images=[desc])), bytes(max(n, 1))]

    def mut_bad_option(self):
        name, value = self.rng.choice([
            ("threshold", self.rng.choice([0, 1, -3, 2.5, "0.5", True, None])),
            ("resolution", self.rng.choice([0, 31, 10_000, -32, 32.5, "32"])),
            ("format", self.rng.choice(["stl", "", 3, "glb "])),
            ("outputs", self.rng.choice([[], ["mesh", "x"], "mesh", [1]])),
            ("smooth", self.rng.choice([1, "true"])), ("fuse", self.rng.choice([0, "no"])),
            ("crop", self.rng.choice([[0, 0, 0, 0], [1, 2, 3], "0,0,1,1", [[1, 1, 1, 1]] * 3,
                                      [0, 0, float("1e400") if False else 1e300, 4]])),
            ("deadline_ms", self.rng.choice([0, -5, 1e10, "soon"])),
            ("bogus_option", 1),
        ])
        if value is None:
            value = "null"
        return [self.dump(self.header(options={name: value})), b"x"]

    def mut_bitflip(self):
        header = bytearray(self.dump(self.header()))
        for _ in range(self.rng.randrange(1, 4)):
            header[self.rng.randrange(len(header))] = self.rng.randrange(256)
        return [bytes(header), self.junk(16)]

    def mut_random_frames(self):
        return [self.junk() for _ in range(self.rng.randrange(0, 12))]


# Categories whose outcome is not a single code (a flipped byte may land anywhere).
ANY_CODE = {"bitflip", "random_frames"}


def _fuzz(endpoint: str, n: int, seed: int, window: int = 64) -> tuple[Counter, Counter]:
    mutator = Mutator(seed)
    sock = _dealer(endpoint)
    sent, codes = Counter(), Counter()
    try:
        i = received = 0
        while received < n:
            while i < n and i - received < window:  # keep a window of messages in flight
                category, frames = mutator.message()
                sock.send_multipart([b"", *frames])
                sent[category] += 1
                i += 1
            reply = _recv(sock, 10.0)  # a hang fails here
            assert not reply.ok, reply.body
            code = reply.error[0]
            assert code in ERROR_CODES and code != "internal", reply.error
            codes[code] += 1
            received += 1
    finally:
        sock.close(linger=0)
    return sent, codes


def _check_fuzz(server, n, seed):
    t0 = time.monotonic()
    sent, codes = _fuzz(server.endpoint, n, seed)
    print(f"\nfuzz: {n} messages in {time.monotonic() - t0:.1f} s")
    print("  per category:", dict(sorted(sent.items())))
    print("  reply codes: ", dict(sorted(codes.items())))
    assert set(sent) == set(Mutator(0).categories)
    for category in set(Mutator(0).categories) - ANY_CODE:
        assert codes[category] > 0, f"no {category} reply"
    with ReconClient(server.endpoint, timeout_s=10, retries=0) as c:
        assert c.health()["status"] == "ok"
        assert not c.reconstruct([_png_with_alpha()], threshold=THRESHOLD).outputs[0].empty


@pytest.mark.timeout(90)
def test_fuzz_10000_malformed_messages(fuzz_server):
    """Takes a few seconds: every message is rejected before the model runs."""
    _check_fuzz(fuzz_server, 10_000, seed=2)


@pytest.mark.timeout(30)
def test_frame_over_maxmsgsize_drops_that_peer_only(fuzz_server):
    server = fuzz_server
    sock = _dealer(server.endpoint)
    sock.send_multipart([b"", b"{}", bytes(LIMITS.max_request_bytes + 10)])
    assert not sock.poll(500)  # disconnected by the transport; nothing to reply to
    sock.close(linger=0)
    with ReconClient(server.endpoint, timeout_s=5, retries=0) as c:
        assert c.health()["status"] == "ok"


# ------------------------------------------------------------------------------ queueing


@pytest.mark.timeout(60)
class OutOfMemoryOnce(SlowPipeline):
    """``prepare`` raises MemoryError (not a ProtocolError) on the first request."""

    def __init__(self, inner: Pipeline):
        super().__init__(inner, 0.0)
        self.calls = 0

    def prepare(self, request):
        self.calls += 1
        if self.calls == 1:
            raise MemoryError("simulated")
        return self._inner.prepare(request)


@pytest.mark.timeout(60)
def test_unexpected_errors_fail_one_request_and_the_daemon_keeps_serving(pipeline, monkeypatch):
    import backend.serving.server
    real, batches = backend.serving.server.compute_batch, []

    def fail_second_batch(pipe, requests, waited):
        batches.append(len(requests))
        if len(batches) == 2:
            raise RuntimeError("simulated")
        return real(pipe, requests, waited)

    monkeypatch.setattr(backend.serving.server, "compute_batch", fail_second_batch)
    srv = _start(OutOfMemoryOnce(pipeline), max_batch=1)
    try:
        with ReconClient(srv.endpoint, timeout_s=20, retries=0) as c:
            for expected in ("MemoryError", "RuntimeError"):  # in prepare, then a whole batch
                with pytest.raises(RequestFailed) as e:
                    c.reconstruct([_jpeg()], outputs=["voxels"])
                assert e.value.code == "internal" and expected in e.value.message
            result = c.reconstruct([_jpeg()], outputs=["voxels"])
            assert result.voxels.shape == (32, 32, 32)
            assert c.health()["status"] == "ok"
    finally:
        srv.stop()


@pytest.mark.timeout(60)
def test_stop_ends_every_thread_when_the_drain_times_out(pipeline):
    srv = _start(SlowPipeline(pipeline, 1.5), max_batch=1, drain_timeout_s=0.2)
    sock = _dealer(srv.endpoint)
    sock.send_multipart([b"", *m.encode_request("reconstruct", "slow", [_jpeg()],
                                                {"outputs": ["voxels"]})])
    time.sleep(0.3)  # in the forward pass
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 4  # the compute thread's last reply went nowhere, quickly
    assert not any(t.is_alive() for t in srv._threads) and srv._ctx.closed
    sock.close(linger=0)


@pytest.mark.timeout(60)
def test_full_queue_answers_busy(pipeline):
    srv = _start(SlowPipeline(pipeline, 0.3), queue_size=1, max_batch=1)
    try:
        sock = _dealer(srv.endpoint)
        for i in range(6):
            sock.send_multipart([b"", *m.encode_request("reconstruct", f"q{i}", [_jpeg()],
                                                        {"outputs": ["voxels"]})])
        codes = Counter()
        for _ in range(6):
            reply = _recv(sock, 10)
            codes["ok" if reply.ok else reply.error[0]] += 1
        assert codes["busy"] >= 3 and codes["ok"] >= 1, codes
        assert RequestFailed("busy", "queue full").retryable
        sock.close(linger=0)
    finally:
        srv.stop()


def test_a_retry_supersedes_its_queued_earlier_attempt():
    from backend.serving.batching import Job, JobQueue

    def job(rid, scope="c:me"):
        return Job(m.decode_request(m.encode_request("reconstruct", rid, [_jpeg()])), [b"p"],
                   scope=scope)

    jobs = JobQueue(8)
    first, other, retry, stranger = job("r1"), job("r2"), job("r1"), job("r1", "c:other")
    assert all(jobs.put(j) for j in (first, other, retry, stranger))
    assert first.cancelled and not other.cancelled and not retry.cancelled
    assert not stranger.cancelled  # another client's colliding id is another request
    assert jobs.cancel(("c:me", "r1")) and retry.cancelled  # a cancel reaches the live copy
    assert not stranger.cancelled
    assert jobs.next_batch(8, 0.0) == [first, other, retry, stranger]


@pytest.mark.timeout(60)
def test_cancel_deadline_and_batching(pipeline):
    srv = _start(SlowPipeline(pipeline, 0.4), max_batch=8, max_wait_ms=20)
    try:
        sock = _dealer(srv.endpoint)
        opts = {"outputs": ["voxels"]}
        sock.send_multipart([b"", *m.encode_request("reconstruct", "first", [_jpeg()], opts)])
        time.sleep(0.15)  # "first" is in the forward pass; the rest queue behind it
        for rid, extra in (("late", {"deadline_ms": 50}), ("dropme", {}), ("b1", {}),
                           ("b2", {})):
            sock.send_multipart([b"", *m.encode_request("reconstruct", rid, [_jpeg()],
                                                        {**opts, **extra})])
        time.sleep(0.05)
        with ReconClient(srv.endpoint, timeout_s=5, retries=0) as c:
            assert c.cancel("dropme") is False  # another connection's id: not its to cancel
            assert c.cancel("no-such-id") is False
        sock.send_multipart([b"", *m.encode_request("cancel", "c1", target="dropme")])
        replies = {}
        for _ in range(6):
            r = _recv(sock, 10)
            replies[r.id] = r.body["cancelled"] if r.op == "cancel" else (
                "ok" if r.ok else r.error[0])
        assert replies == {"first": "ok", "late": "deadline_exceeded", "dropme": "cancelled",
                           "b1": "ok", "b2": "ok", "c1": True}
        with ReconClient(srv.endpoint, timeout_s=5, retries=0) as c:
            assert "2" in c.stats()["batch_sizes"]  # b1 and b2 shared one forward pass
        sock.close(linger=0)
    finally:
        srv.stop()


@pytest.mark.timeout(60)
def test_client_side_cancel_returns_at_once_and_drops_the_queued_request(pipeline):
    srv = _start(SlowPipeline(pipeline, 0.5), max_batch=1)
    try:
        sock = _dealer(srv.endpoint)
        sock.send_multipart([b"", *m.encode_request("reconstruct", "busy-first", [_jpeg()],
                                                    {"outputs": ["voxels"]})])
        time.sleep(0.1)
        t_cancel = time.monotonic() + 0.2
        with ReconClient(srv.endpoint, timeout_s=10, retries=0) as c:
            with pytest.raises(RequestFailed) as e:
                c.reconstruct([_jpeg()], request_id="mine", outputs=["voxels"],
                              cancelled=lambda: time.monotonic() > t_cancel)
            assert e.value.code == "cancelled" and time.monotonic() - t_cancel < 0.5
            assert _recv(sock, 10).ok  # the first request still completes
            time.sleep(0.3)
            assert c.stats()["errors"].get("cancelled") == 1  # "mine" was dropped unrun
            assert c.health()["status"] == "ok"  # the client works after a cancel
        sock.close(linger=0)
    finally:
        srv.stop()


@pytest.mark.timeout(30)
def test_req_sockets_work_too(server):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    sock.send_multipart(m.encode_request("health", "via-req"))
    assert sock.poll(5000)
    reply = m.decode_reply(sock.recv_multipart())
    assert reply.ok and reply.id == "via-req"
    sock.close(linger=0)


# ------------------------------------------------------------------------------ failures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)
def test_server_down_fails_within_the_timeout():
    client = ReconClient(f"tcp://127.0.0.1:{_free_port()}", timeout_s=0.4, retries=2)
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailable):
        client.health()
    assert time.monotonic() - t0 < 0.4 * 3 + 1.0


@pytest.mark.timeout(30)
def test_a_probe_overrides_the_clients_patience_for_one_call(server):
    """A liveness probe (timeout 0.3 s, no retries) on a patient client: quick when the
    server is down, and the client keeps its own timeout for the next request."""
    down = ReconClient(f"tcp://127.0.0.1:{_free_port()}", timeout_s=30.0, retries=2)
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailable, match="1 attempt"):
        down.health(timeout_s=0.3, retries=0)
    assert time.monotonic() - t0 < 1.5
    assert (down.timeout_s, down.retries) == (30.0, 2)
    with ReconClient(server.endpoint, timeout_s=30.0, retries=2) as up:
        assert up.health(timeout_s=5.0, retries=0)["status"] == "ok"
        assert up.info()["versions"]["protocol"] == 1


@pytest.mark.timeout(60)
def test_curve_rejects_clients_without_the_key(pipeline, tmp_path):
    write_keys(tmp_path / "keys")
    srv = _start(pipeline, curve_keys=str(tmp_path / "keys"))
    try:
        good = CurveKeys.from_dir(tmp_path / "keys")
        with ReconClient(srv.endpoint, timeout_s=5, retries=0, curve=good) as c:
            assert c.health()["status"] == "ok"
        public, secret = zmq.curve_keypair()
        stranger = CurveKeys(public, secret, good.server_public)
        for curve in (stranger, None):
            with ReconClient(srv.endpoint, timeout_s=0.5, retries=0, curve=curve) as c:
                with pytest.raises(ServerUnavailable):
                    c.health()
    finally:
        srv.stop()


@pytest.mark.timeout(30)
def test_a_taken_port_fails_start_cleanly(server, pipeline):
    with pytest.raises(RuntimeError, match="failed to start"):
        Server(ServerConfig(bind=server.endpoint), pipeline).start()


@pytest.mark.timeout(30)
def test_ipv6_loopback_endpoints_work(pipeline):
    srv = Server(ServerConfig(bind="tcp://[::1]:0"), pipeline)
    srv.start()
    try:
        assert srv.endpoint.startswith("tcp://[::1]:")
        with ReconClient(srv.endpoint, timeout_s=10, retries=0) as c:
            assert c.health()["status"] == "ok"
    finally:
        srv.stop()


def test_non_loopback_bind_needs_keys_or_insecure(pipeline):
    assert is_loopback("tcp://127.0.0.1:5557") and is_loopback("tcp://[::1]:1")
    assert not is_loopback("tcp://0.0.0.0:5557") and not is_loopback("tcp://*:5557")
    with pytest.raises(ValueError, match="CURVE"):
        Server(ServerConfig(bind="tcp://0.0.0.0:0"), pipeline)


@pytest.mark.timeout(30)
def test_insecure_non_loopback_bind_logs_a_warning(pipeline, caplog):
    srv = Server(ServerConfig(bind="tcp://0.0.0.0:0", insecure=True), pipeline)
    try:
        srv.start()
        assert any(r.levelname == "WARNING" and "INSECURE" in r.getMessage()
                   for r in caplog.records)
    finally:
        srv.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_with_requests_in_flight(checkpoint, workers):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--checkpoint",
                             str(checkpoint), "--bind", endpoint, "--max-batch", "1",
                             "--workers", str(workers)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        with ReconClient(endpoint, timeout_s=1.0, retries=30) as c:
            while c.health().get("workers_ready", 1) < 1:  # start-up: torch import, spawn
                time.sleep(0.2)
        sock = _dealer(endpoint)
        for i in range(4):
            sock.send_multipart([b"", *m.encode_request("reconstruct", f"s{i}", [_jpeg()],
                                                        {"threshold": THRESHOLD})])
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        outcomes = [_recv(sock, 20) for _ in range(4)]
        assert all(r.ok or r.error[0] == "shutting_down" for r in outcomes)
        assert proc.wait(30) == 0
        sock.close(linger=0)
    finally:
        if proc.poll() is None:
            proc.kill()
        log = proc.communicate()[0]
    assert "op=reconstruct" in log and "stopped" in log, log[-2000:]


def _busy_worker(srv: Server, exclude: set[int], timeout_s: float = 30) -> int:
    """The pid of a worker (not in ``exclude``) that holds a job (peeks at the pool)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for worker in list(srv._pool._workers.values()):
            if worker.jobs and worker.process.pid not in exclude:
                return worker.process.pid
        time.sleep(0.05)
    raise AssertionError("no worker picked the job up")


@pytest.mark.timeout(90)
def test_worker_killed_mid_request_is_restarted_and_the_request_retried(checkpoint,
                                                                      monkeypatch):
    monkeypatch.setattr(workers, "LIVENESS_S", 2.5)  # so the liveness check runs in the test
    srv = Server(ServerConfig(checkpoint=str(checkpoint), bind="tcp://127.0.0.1:0", workers=1,
                              worker_delay_s=1.0))
    srv.start()
    try:
        with ReconClient(srv.endpoint, timeout_s=30, retries=0) as c:
            while c.health()["workers_ready"] < 1:  # spawn + torch import + model load
                time.sleep(0.2)
            time.sleep(4.0)  # idle past the liveness limit: its heartbeats keep it alive
            assert c.stats()["worker_restarts"] == 0
            sock = _dealer(srv.endpoint)
            sock.send_multipart([b"", *m.encode_request("reconstruct", "k", [_jpeg()],
                                                        {"threshold": THRESHOLD})])
            pid = _busy_worker(srv, exclude=set())  # it now sleeps inside the batch
            os.kill(pid, signal.SIGKILL)
            reply = _recv(sock, 30)
            assert reply.ok and reply.id == "k"  # computed again by the restarted worker
            stats = c.stats()
            assert stats["worker_restarts"] == 1 and stats["workers"] == 1
            # A request whose worker dies on both attempts gets a clear error, not a hang.
            sock.send_multipart([b"", *m.encode_request("reconstruct", "k2", [_jpeg()],
                                                        {"threshold": THRESHOLD})])
            killed = {pid}
            for _ in range(2):
                pid = _busy_worker(srv, exclude=killed)
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            reply = _recv(sock, 30)
            assert not reply.ok and reply.id == "k2" and reply.error[0] == "internal"
            assert "died" in reply.error[1]
            sock.close(linger=0)
    finally:
        srv.stop()


# ------------------------------------------------------------------------------ CLI


@pytest.mark.timeout(120)
def test_reconstruct_command_server_and_local(server, checkpoint, tmp_path):
    from backend.cli import main

    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(_png_with_alpha())
    b.write_bytes(_jpeg())
    out = tmp_path / "out"
    assert main(["reconstruct", str(a), str(b), "--server", server.endpoint, "--out", str(out),
                 "--threshold", str(THRESHOLD)]) == 0
    assert {p.name for p in out.iterdir()} == {"a.glb", "a.png", "b.glb", "b.png"}
    local = tmp_path / "local"
    assert main(["reconstruct", str(a), str(b), "--local", "--checkpoint", str(checkpoint),
                 "--out", str(local), "--format", "obj", "--fuse",
                 "--threshold", str(THRESHOLD)]) == 0
    assert {p.name for p in local.iterdir()} == {"a_fused.obj", "a_fused.png"}
    assert main(["reconstruct", str(a), "--server", "tcp://no-such-host.invalid:5557",
                 "--out", str(out)]) == 2
    for bad in (["--threshold", "1.5"], ["--crop", "0,0,0,5"]):  # an error line, not a traceback
        assert main(["reconstruct", str(a), "--server", server.endpoint, "--out", str(out),
                     *bad]) == 2


# ------------------------------------------------------------------------------ hardening

VOXELS_ONLY = {"outputs": ["voxels"]}


def _send(sock, rid: str, client: str | None = None, op: str = "reconstruct", **fields):
    if client is not None:
        fields["client"] = client
    if op == "reconstruct":
        frames = m.encode_request(op, rid, [_jpeg()], VOXELS_ONLY, **fields)
    else:
        frames = m.encode_request(op, rid, **fields)
    sock.send_multipart([b"", *frames])


def _replies(sock, seconds: float) -> list[m.Reply]:
    """Every reply that arrives within ``seconds``."""
    out, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            frames = sock.recv_multipart()
            out.append(m.decode_reply(frames[1:] if frames[0] == b"" else frames))
    return out


def _answered_once(replies: list[m.Reply], ids: set[str]) -> dict[str, str]:
    outcome = {r.id: "ok" if r.ok else r.error[0] for r in replies}
    assert sorted(r.id for r in replies) == sorted(ids), [r.id for r in replies]
    return outcome


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", [0, 1])
def test_stop_answers_every_accepted_request_exactly_once(pipeline, checkpoint, workers):
    """A drain that ends while a request computes: it gets ``shutting_down`` before the socket
    closes, the queued ones too, and the late result is never sent as a second reply."""
    config = ({"workers": 1, "worker_delay_s": 1.5, "checkpoint": str(checkpoint)}
              if workers else {})
    srv = _start(SlowPipeline(pipeline, 1.5) if not workers else pipeline, max_batch=1,
                 drain_timeout_s=0.3, **config)
    sock = _dealer(srv.endpoint)
    try:
        with ReconClient(srv.endpoint, timeout_s=5, retries=0) as c:
            while c.health().get("workers_ready", 1) < 1:
                time.sleep(0.2)
        for i in range(3):
            _send(sock, f"s{i}")
        time.sleep(0.5)  # s0 is being computed, s1 and s2 wait
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        outcome = _answered_once(_replies(sock, 4.0), {"s0", "s1", "s2"})
        stopper.join(20)
        assert set(outcome.values()) == {"shutting_down"}, outcome
    finally:
        sock.close(linger=0)
        srv.stop()


@pytest.mark.timeout(60)
def test_colliding_ids_of_two_clients_stay_apart(pipeline):
    srv = _start(SlowPipeline(pipeline, 0.5), max_batch=1)
    a, b = _dealer(srv.endpoint), _dealer(srv.endpoint)
    try:
        _send(a, "blocker", "client-a")
        time.sleep(0.15)  # computing; the rest queue behind it
        _send(a, "1", "client-a")
        _send(b, "1", "client-b")  # the same id from another client: not a retry of a's
        time.sleep(0.05)
        _send(b, "c", "client-b", op="cancel", target="1")  # cancels b's own "1" only
        assert _answered_once(_replies(a, 3.0), {"blocker", "1"}) == {"blocker": "ok",
                                                                       "1": "ok"}
        replies = _replies(b, 1.0)
        assert {r.id: r.body.get("cancelled", r.ok or r.error[0]) for r in replies} == {
            "c": True, "1": "cancelled"}
        # Without tokens ids are scoped by connection: a stranger's cancel finds nothing.
        _send(a, "blocker2")
        _send(a, "2")
        time.sleep(0.05)
        _send(b, "c2", op="cancel", target="2")
        assert _replies(b, 1.0)[0].body["cancelled"] is False
        assert _answered_once(_replies(a, 3.0), {"blocker2", "2"}) == {"blocker2": "ok",
                                                                        "2": "ok"}
    finally:
        a.close(linger=0)
        b.close(linger=0)
        srv.stop()


@pytest.mark.timeout(60)
def test_a_retry_after_a_reconnect_is_answered_by_the_one_computation(pipeline):
    srv = _start(SlowPipeline(pipeline, 0.8), max_batch=1)
    try:
        first = _dealer(srv.endpoint)
        _send(first, "r", "client-t")
        time.sleep(0.2)  # computing
        first.close(linger=0)  # the client gave up on this socket (Lazy Pirate) ...
        second = _dealer(srv.endpoint)
        _send(second, "r", "client-t")  # ... and sends the same request again
        assert _answered_once(_replies(second, 3.0), {"r"}) == {"r": "ok"}
        with ReconClient(srv.endpoint, timeout_s=5, retries=0) as c:
            assert sum(c.stats()["batch_sizes"].values()) == 1  # computed once
        second.close(linger=0)
    finally:
        srv.stop()


def test_the_client_sends_its_token_on_reconstruct_and_cancel():
    client = ReconClient("tcp://127.0.0.1:1")
    other = ReconClient("tcp://127.0.0.1:1")
    assert client.token != other.token and len(client.token) >= 16
    request = m.decode_request(m.encode_request("cancel", "x", target="y", client=client.token))
    assert request.client == client.token
    with pytest.raises(m.ProtocolError, match="client"):
        m.decode_request([json.dumps({"v": 1, "op": "cancel", "id": "x", "target": "y",
                                      "client": 7}).encode()])


@pytest.mark.timeout(60)
def test_the_client_waits_as_long_as_the_server_works_and_it_is_computed_once(pipeline):
    """A request that takes longer than the client's whole retry budget (2 s of work, 0.5 s x
    2 attempts): the server acknowledges it and each resend, so the client waits on; the
    resends are answered by the one computation."""
    srv = _start(SlowPipeline(pipeline, 2.0), max_batch=1)
    try:
        with ReconClient(srv.endpoint, timeout_s=0.5, retries=1) as c:
            result = c.reconstruct([_jpeg()], outputs=["voxels"])
            assert result.outputs[0].voxels is not None
            stats = c.stats()
        assert sum(stats["batch_sizes"].values()) == 1  # computed once
        assert stats["requests"]["reconstruct"] == 1
    finally:
        srv.stop()


def test_patience_follows_the_size_of_the_request():
    from backend.protocol.client import MIN_PATIENCE_S, expected_work_s

    assert expected_work_s(1) == MIN_PATIENCE_S
    big = expected_work_s(16, resolution=128, smooth=True)
    assert big > 16 * 64 and big > expected_work_s(16, resolution=128)


def test_an_acknowledgement_is_only_sent_when_asked_for(pipeline):
    srv = _start(pipeline)
    try:
        sock = _dealer(srv.endpoint)
        sock.send_multipart([b"", *m.encode_request("reconstruct", "a", [_jpeg()], VOXELS_ONLY,
                                                    client="t", ack=True)])
        first, second = _recv(sock, 10), _recv(sock, 20)
        assert first.ok and first.body["ack"] is True and not first.frames
        assert second.ok and "outputs" in second.body
        _send(sock, "b", "t")  # no ack asked: exactly one reply
        replies = _replies(sock, 3.0)
        assert [r.id for r in replies] == ["b"] and "outputs" in replies[0].body
        sock.close(linger=0)
    finally:
        srv.stop()


def _until(predicate, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(120)
def test_a_stopped_worker_gets_no_work_and_is_replaced(checkpoint, monkeypatch):
    """SIGSTOP an idle worker: health counts its missed heartbeats at once, new work goes to
    the other worker, and it is replaced; SIGSTOP a busy one: its job moves to another worker
    after the liveness limit, not after the old 120 s."""
    monkeypatch.setattr(workers, "LIVENESS_S", 4.0)
    srv = Server(ServerConfig(checkpoint=str(checkpoint), bind="tcp://127.0.0.1:0", workers=2,
                              worker_delay_s=1.0))
    srv.start()
    stopped = []
    try:
        with ReconClient(srv.endpoint, timeout_s=30, retries=0) as c:
            _until(lambda: c.health()["workers_ready"] == 2, 90, "two ready workers")
            idle = next(iter(srv._pool._workers.values())).process.pid
            os.kill(idle, signal.SIGSTOP)
            stopped.append(idle)
            health = _until(lambda: (h := c.health())["workers_missed_heartbeats"] == 1 and h,
                            workers.SUSPECT_S + 3, "the stopped worker to be reported")
            assert health["workers_ready"] == 1
            sock = _dealer(srv.endpoint)
            t0 = time.monotonic()
            _send(sock, "to-the-live-one")
            assert _recv(sock, 20).ok and time.monotonic() - t0 < 8  # not the stopped worker's
            _until(lambda: c.stats()["worker_restarts"] == 1, 20, "the stopped worker's restart")
            _until(lambda: c.health()["workers_ready"] == 2, 90, "its replacement")
            _send(sock, "busy")
            busy = _busy_worker(srv, exclude=set(stopped))
            os.kill(busy, signal.SIGSTOP)
            stopped.append(busy)
            t0 = time.monotonic()
            reply = _recv(sock, 30)
            assert reply.ok and reply.id == "busy"  # computed by another worker
            assert time.monotonic() - t0 < workers.LIVENESS_S + 10
            assert c.stats()["worker_restarts"] == 2
            sock.close(linger=0)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.stop()


def test_malloc_tuning_is_a_safe_no_op_where_it_does_not_apply():
    from backend.serving import malloc

    assert malloc.limit_arenas(0) is False  # 0: glibc's default, untouched
    malloc.trim()  # returns free heap; never raises
    from backend.cli import build_parser

    args = build_parser().parse_args(["serve", "--malloc-arenas", "0", "--trim-every", "0"])
    assert args.malloc_arenas == 0 and args.trim_every == 0
