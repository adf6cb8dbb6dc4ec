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
from backend.checkpoint import DEFAULT_WEIGHTS
from backend.cli import main
from synth_render import r2n2


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
    assert re.search(r"\| \*\*mean of 1\*\* \| \| photo \| \| \*\*\d\.\d{3}\*\* \|", table)
    (record,) = json.loads((out / "metrics.json").read_text())
    assert record["iou"] == pytest.approx(iou, abs=5e-4) and record["style"] == "photo"
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
                                   "chair", iou, None, np.zeros((32,) * 3, np.float32), 0.3)
               for style, iou in (("photo", 0.1), ("photo", None), ("synthetic", 0.5))]
    table = demo.metrics_markdown(results)
    assert "| chair_x_photo_00 | chair | photo | chair | 0.100 |" in table
    assert "| n/a |" in table  # no ground truth: no made-up number
    assert "| **mean of 1** | | photo | | **0.100** |" in table
    assert "| **mean of 1** | | synthetic | | **0.500** |" in table
