"""The render engine: worker pool, crash isolation, resume, shards and the synthetic style.

Meshes are written on the fly with trimesh; Blender runs only in the worker subprocesses.
Fault injection uses the worker's documented test hook (SYNTH_RENDER_WORKER_TEST_HOOK).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from synth_render import r2n2
from synth_render.config import RenderConfig
from synth_render.render import model_views, run_render
from synth_render.render.pool import _pending, summary_path
from synth_render.render.worker import TEST_HOOK_ENV
from synth_render.render.worker_client import WorkerDied, WorkerProcess
from synth_render.shapenet import (
    V1_MESH,
    V2_MESH,
    Part,
    select_models,
    write_obj,
    write_v2_model,
)

needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs bpy")
CHAIR, TABLE = "03001627", "04379243"
RED = (0.85, 0.1, 0.1)


# --------------------------------------------------------------------------- fixtures


def _parts(seed: int, color=RED) -> list[Part]:
    """A small two-part shape (seat + leg-like box), deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    top = trimesh.creation.box(extents=(1.0, 0.15, rng.uniform(0.6, 1.0)))
    top.apply_translation((0, 0.5, 0))
    leg = trimesh.creation.cylinder(radius=0.1, height=1.0, sections=12)
    leg.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    return [Part(top.vertices, top.faces, "top", color),
            Part(leg.vertices, leg.faces, "leg", (0.2, 0.3, 0.8))]


def _write_no_mtl(root: Path, synset: str, model_id: str) -> None:
    path = root / synset / model_id / V2_MESH
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.util.concatenate([trimesh.creation.icosphere(2),
                                     trimesh.creation.box((0.5, 2.0, 0.5))])
    mesh.export(path, include_normals=False)


def _write_v1(root: Path, synset: str, model_id: str, scale: float, offset) -> None:
    """A v1 model: same shape as ``_parts(0)`` but in arbitrary units and position, and in
    ShapeNet v1's frame (front +X): turned by hand, ``x1 = -z2, y1 = y2, z1 = x2``."""
    def to_v1(v):
        return np.stack([-v[:, 2], v[:, 1], v[:, 0]], axis=1)

    parts = [Part(to_v1(p.vertices) * scale + np.asarray(offset), p.faces, p.material, p.color)
             for p in _parts(0)]
    write_obj(root / synset / model_id / V1_MESH, parts)


@pytest.fixture
def v2_tree(tmp_path: Path) -> Path:
    root = tmp_path / "v2"
    write_v2_model(root, CHAIR, "red0", _parts(0))
    write_v2_model(root, CHAIR, "red1", _parts(1, color=(0.1, 0.7, 0.2)))
    _write_no_mtl(root, TABLE, "plain")
    return root


def _cfg(shapes: Path, out: Path, **kw) -> RenderConfig:
    base = dict(views=2, size=64, workers=2, timeout_s=60.0)
    base.update(kw)
    return RenderConfig(shapes=shapes, out=out, **base)


def _summary(cfg: RenderConfig) -> dict:
    return json.loads(summary_path(cfg).read_text())


def _rgba(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        return np.asarray(im)


# --------------------------------------------------------------------------- pure (no bpy)


def test_views_are_deterministic_per_model():
    a = model_views(0, f"{CHAIR}/x", 24)
    assert a == model_views(0, f"{CHAIR}/x", 24)
    assert a != model_views(1, f"{CHAIR}/x", 24)
    assert a != model_views(0, f"{CHAIR}/y", 24)
    assert all(25 <= v.elevation < 30 and 0.65 <= v.distance_ratio < 0.95 for v in a)


def test_render_package_imports_without_bpy():
    code = "import sys, synth_render.render; sys.exit('bpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- end to end


@pytest.mark.blender
@needs_bpy
def test_v2_tree_layout_metadata_and_images(v2_tree: Path, tmp_path: Path):
    cfg = _cfg(v2_tree, tmp_path / "out")
    assert run_render(cfg) == 0
    for key in (f"{CHAIR}/red0", f"{CHAIR}/red1", f"{TABLE}/plain"):
        d = r2n2.rendering_dir(cfg.out, *key.split("/"))
        assert r2n2.read_renderings(d) == ["00.png", "01.png"]
        lines = (d / r2n2.METADATA_TXT).read_text().splitlines()
        assert len(lines) == 2
        for line in lines:
            az, el, zero, ratio, fov = line.split()
            assert 0 <= float(az) < 360 and 25 <= float(el) < 30
            assert zero == "0" and fov == "25" and 0.65 <= float(ratio) < 0.95
        got = [(v.azimuth, v.elevation, v.distance_ratio) for v in r2n2.read_metadata(d)]
        want = [(v.azimuth, v.elevation, v.distance_ratio) for v in model_views(cfg.seed, key, 2)]
        np.testing.assert_allclose(got, want, atol=1e-5)
        for name in ("00.png", "01.png"):
            _check_object_image(_rgba(d / name), cfg.size)
    # the MTL colour is used: the red model renders red
    px = _rgba(r2n2.rendering_dir(cfg.out, CHAIR, "red0") / "00.png")
    on = px[px[..., 3] == 255][:, :3].astype(float)
    assert np.median(on[:, 0]) > 1.5 * np.median(on[:, 1])
    s = _summary(cfg)
    assert (s["rendered"], s["skipped_done"], s["failed"]) == (3, 0, [])
    assert s["config"]["views"] == 2

    # a second run finds everything complete and renders nothing
    assert run_render(cfg) == 0
    assert (_summary(cfg)["rendered"], _summary(cfg)["skipped_done"]) == (0, 3)
    # other output flags into the same folder would mix two data sets: refused, nothing touched
    for change in ({"style": "photo"}, {"seed": 1}, {"size": cfg.size * 2}):
        assert run_render(dataclasses.replace(cfg, **change)) == 2
    assert (_summary(cfg)["rendered"], _summary(cfg)["skipped_done"]) == (0, 3)
    # without a summary (a first run killed early), views of another size are rendered again
    summary_path(cfg).unlink()
    todo, done = _pending(select_models(cfg.shapes, cfg.synsets, cfg.shard, cfg.models),
                          dataclasses.replace(cfg, size=cfg.size * 2))
    assert (len(todo), len(done)) == (3, 0)


def _check_object_image(px: np.ndarray, size: int) -> None:
    """RGBA, transparent background, opaque object roughly centred and of sensible size."""
    assert px.shape == (size, size, 4)
    alpha = px[..., 3]
    assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
    assert (alpha == 255).sum() > 0.05 * size * size
    ys, xs = np.nonzero(alpha > 127)
    centre = np.array([xs.min() + xs.max(), ys.min() + ys.max()]) / 2  # of the silhouette's box
    assert np.all(np.abs(centre - (size - 1) / 2) < 0.12 * size)
    assert 0.05 < (alpha > 127).mean() < 0.8


@pytest.mark.blender
@needs_bpy
def test_v1_model_is_normalized_like_v2(tmp_path: Path):
    """A v1 mesh in arbitrary units and v1's frame renders like the same shape in the v2
    layout: it is turned into the canonical frame and normalized."""
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    _write_v1(v1, CHAIR, "m", scale=40.0, offset=(100.0, -7.0, 33.0))
    write_v2_model(v2, CHAIR, "m", _parts(0))
    for root in (v1, v2):
        assert run_render(_cfg(root, tmp_path / f"out_{root.name}", workers=1)) == 0
    for name in ("00.png", "01.png"):
        a1 = _rgba(r2n2.rendering_dir(tmp_path / "out_v1", CHAIR, "m") / name)[..., 3] > 127
        a2 = _rgba(r2n2.rendering_dir(tmp_path / "out_v2", CHAIR, "m") / name)[..., 3] > 127
        _check_object_image(_rgba(r2n2.rendering_dir(tmp_path / "out_v1", CHAIR, "m") / name), 64)
        assert (a1 & a2).sum() / (a1 | a2).sum() > 0.95


@pytest.mark.blender
@needs_bpy
def test_same_seed_same_metadata(v2_tree: Path, tmp_path: Path):
    outs = []
    for i, seed in enumerate((7, 7, 8)):
        cfg = _cfg(v2_tree, tmp_path / f"o{i}", seed=seed, synsets=[CHAIR], workers=1)
        assert run_render(cfg) == 0
        outs.append((r2n2.rendering_dir(cfg.out, CHAIR, "red0") / r2n2.METADATA_TXT).read_text())
    assert outs[0] == outs[1] != outs[2]


# --------------------------------------------------------------------------- faults


@pytest.mark.blender
@needs_bpy
def test_worker_crash_is_retried_or_reported_and_resume_completes(
        v2_tree: Path, tmp_path: Path, monkeypatch):
    marker = tmp_path / "crashed-once"
    hook = {f"{CHAIR}/red0": f"crash_once:{marker}", f"{CHAIR}/red1": "crash"}
    monkeypatch.setenv(TEST_HOOK_ENV, json.dumps(hook))
    cfg = _cfg(v2_tree, tmp_path / "out")
    assert run_render(cfg) == 1
    s = _summary(cfg)
    assert marker.exists()  # red0's worker really was killed once...
    assert r2n2.is_complete(r2n2.rendering_dir(cfg.out, CHAIR, "red0"), 2)  # ...and retried
    assert r2n2.is_complete(r2n2.rendering_dir(cfg.out, TABLE, "plain"), 2)
    assert [f["model"] for f in s["failed"]] == [f"{CHAIR}/red1"]
    assert "worker died" in s["failed"][0]["reason"] and "signal 9" in s["failed"][0]["reason"]
    assert not r2n2.is_complete(r2n2.rendering_dir(cfg.out, CHAIR, "red1"), 2)

    monkeypatch.delenv(TEST_HOOK_ENV)
    assert run_render(cfg) == 0  # resume: only the lost model is rendered
    s = _summary(cfg)
    assert (s["rendered"], s["skipped_done"], s["failed"]) == (1, 2, [])


@pytest.mark.blender
@needs_bpy
def test_corrupt_mesh_is_logged_and_others_finish(v2_tree: Path, tmp_path: Path, caplog):
    bad = v2_tree / CHAIR / "garbage" / V2_MESH
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not\x00an obj\nf 1 2 3\n" + os.urandom(256))
    cfg = _cfg(v2_tree, tmp_path / "out", models_per_worker=2)  # also exercises recycling
    assert run_render(cfg) == 1
    s = _summary(cfg)
    assert s["rendered"] == 3
    assert [f["model"] for f in s["failed"]] == [f"{CHAIR}/garbage"]
    assert "no faces" in s["failed"][0]["reason"]
    assert any("garbage" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


@pytest.mark.blender
@needs_bpy
def test_hung_worker_is_killed_and_model_skipped(v2_tree: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv(TEST_HOOK_ENV, json.dumps({f"{CHAIR}/red1": "hang"}))
    cfg = _cfg(v2_tree, tmp_path / "out", timeout_s=10.0)
    assert run_render(cfg) == 1
    s = _summary(cfg)
    assert s["rendered"] == 2
    assert [f["model"] for f in s["failed"]] == [f"{CHAIR}/red1"]
    assert s["failed"][0]["reason"].startswith("timeout")


@pytest.mark.blender
@needs_bpy
def test_external_kill_9_raises_worker_died(tmp_path: Path):
    worker = WorkerProcess()
    assert Path(worker.tmp_dir).is_dir()
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied, match="signal 9"):
        worker.run({"model_key": "x/y"}, timeout_s=30)
    worker.kill()  # idempotent on a dead worker
    assert not Path(worker.tmp_dir).exists()  # its scratch folder did not leak


@pytest.mark.blender
@needs_bpy
def test_shards_cover_every_model_exactly_once(tmp_path: Path):
    root = tmp_path / "v2"
    keys = set()
    for i in range(6):
        write_v2_model(root, CHAIR, f"s{i}", _parts(i))
        keys.add(f"{CHAIR}/s{i}")
    out = tmp_path / "out"
    rendered = []
    for k in (0, 1):
        cfg = _cfg(root, out, shard=(k, 2), views=1, size=32)
        assert run_render(cfg) == 0
        s = _summary(cfg)
        assert s["skipped_done"] == 0
        rendered.append({o["key"] for o in s["outcomes"] if o["ok"]})
    assert rendered[0] | rendered[1] == keys and not rendered[0] & rendered[1]
    assert all(r2n2.is_complete(r2n2.rendering_dir(out, *k.split("/")), 1) for k in keys)
