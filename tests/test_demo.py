"""``python -m backend demo``: a reduced run end to end, and the daemon's clean-up."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from backend import demo
from backend.cli import main
from backend.core.checkpoint import DEFAULT_WEIGHTS
from synth_render import r2n2
from synth_render.demo import DemoData


@pytest.mark.blender
def test_reduced_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--classes", "chair", "--per-class", "1",
               "--views", "1", "--styles", "photo", "--size", "64", "--format", "obj",
               "--no-addon"])
    assert rc == 0
    (mesh,) = sorted((out / "meshes").glob("chair_*_photo_00.obj"))
    assert len(trimesh.load(mesh, force="mesh").faces) > 0
    with Image.open(out / "gallery.png") as gallery:
        assert gallery.size[1] > 128  # a header and one row
    table = (out / "metrics.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| chair_"))
    iou = float(row.rstrip(" |").rsplit("|", 1)[1])
    assert 0.0 <= iou <= 1.0
    assert re.search(r"\| \*\*mean of 1\*\* \| \| photo \| \| \| \*\*\d\.\d{3}\*\* \|",
                     table)
    record, *reframed = json.loads((out / "metrics.json").read_text())
    assert record["iou"] == pytest.approx(iou, abs=5e-4) and record["style"] == "photo"
    # the same photo framed as a close-up and as a wide shot, framed again by the daemon's
    # foreground model; the photo framed like the renders is sent whole (autocrop off)
    assert [r["style"] for r in reframed] == ["photo fill95", "photo small35"]
    assert record["framing"] == "none"
    assert [r["framing"] for r in reframed] == ["mask", "mask"]
    assert len(list((out / "reframed").glob("*.png"))) == 2
    printed = capsys.readouterr().out
    assert "| chair_" in printed and f"gallery    {out / 'gallery.png'}" in printed
    assert "stopped" in (out / "daemon.log").read_text()


def test_daemon_is_stopped_when_the_caller_fails(tmp_path):
    """Ctrl-C (or any error) inside the ``with`` still stops the daemon."""
    with pytest.raises(KeyboardInterrupt):
        with demo.running_daemon(DEFAULT_WEIGHTS, 0, tmp_path / "daemon.log", 120) as endpoint:
            port = int(endpoint.rsplit(":", 1)[1])
            assert _listening(port)
            raise KeyboardInterrupt
    assert not _listening(port)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_daemon_that_cannot_start_is_reported_with_its_log(tmp_path):
    with pytest.raises(RuntimeError, match="exited with code"):
        with demo.running_daemon(tmp_path / "missing.pt", 0, tmp_path / "daemon.log", 120):
            pass


def test_metrics_table_has_every_input_and_a_mean_per_style():
    view = r2n2.View(30.0, 27.0, 0.8)
    results = [demo.Reconstruction(demo.InputImage(f"chair_x_{style}_00", style, "03001627",
                                                   "x", Path("in.png"), Path("v.binvox"), view),
                                   "chair", iou, None, np.zeros((32,) * 3, np.float32), 0.3,
                                   "mask")
               for style, iou in (("photo", 0.1), ("photo", None), ("synthetic", 0.5))]
    table = demo.metrics_markdown(results)
    assert "| chair_x_photo_00 | chair | photo | mask | chair | 0.100 |" in table
    assert "| n/a |" in table  # no ground truth: no made-up number
    assert "| **mean of 1** | | photo | | | **0.100** |" in table
    assert "| **mean of 1** | | synthetic | | | **0.500** |" in table


def _fake_demo_tree(root: Path, keys: list[str]) -> DemoData:
    """Shapes (v2 layout, empty meshes) with one complete photo-style view each."""
    renders = root / "renders_photo"
    for key in keys:
        synset, model_id = key.split("/")
        mesh = root / "shapes" / synset / model_id / "models" / "model_normalized.obj"
        mesh.parent.mkdir(parents=True)
        mesh.write_text("v 0 0 0\n")
        rdir = r2n2.rendering_dir(renders, synset, model_id)
        rdir.mkdir(parents=True)
        Image.new("RGBA", (8, 8)).save(rdir / r2n2.view_file_name(0))
        r2n2.write_index(rdir, [r2n2.View(30.0, 27.0, 0.8)])
    return DemoData(root / "shapes", root / "voxels", {"photo": renders}, 0)


def test_inputs_are_the_shapes_asked_for_not_the_whole_folder(tmp_path):
    """An earlier run (other classes, more shapes) left shapes in the folder: only the
    requested ones are reconstructed and scored."""
    chair, lamp = "03001627/" + "a" * 32, "03636649/" + "b" * 32
    data = _fake_demo_tree(tmp_path, [chair, lamp])
    data.keys = [chair]
    assert [(i.synset, i.style) for i in demo.find_inputs(data, 1)] == [("03001627", "photo")]
    data.keys = []  # nothing asked for in particular: everything in the tree
    assert len(demo.find_inputs(data, 1)) == 2


def test_a_refused_input_is_skipped_and_a_dead_daemon_ends_the_loop(tmp_path, monkeypatch):
    from backend.protocol.client import RequestFailed, ServerUnavailable

    keys = [f"03001627/{c * 32}" for c in "abcd"]
    inputs = demo.find_inputs(_fake_demo_tree(tmp_path, keys), 1)
    reply = type("Reply", (), {"mesh": b"mesh", "threshold": 0.4,
                               "voxels": np.ones((32,) * 3, np.float32),
                               "views": [type("View", (), {"class_name": "chair"})()],
                               "framing": [{"source": "mask"}]})()
    answers = [RequestFailed("bad_image", "cannot decode"), reply,
               ServerUnavailable("no reply in 60 s"), reply]

    class FakeClient:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def reconstruct(self, images, **options):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    monkeypatch.setattr(demo, "ReconClient", FakeClient)
    results, failed = demo.reconstruct_all(inputs, "tcp://x", tmp_path / "meshes", "obj", 1.0)
    assert [r.input.name for r in results] == [inputs[1].name] and failed == 3
    assert len(answers) == 1  # nothing was sent after the daemon stopped answering
    assert (tmp_path / "meshes" / f"{inputs[1].name}.obj").read_bytes() == b"mesh"
