"""The Python examples in docs/protocol.md run as written against a live daemon."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh
from PIL import Image, ImageDraw

from backend.core.checkpoint import DEFAULT_WEIGHTS
from backend.demo import running_daemon

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    log = tmp_path_factory.mktemp("daemon") / "daemon.log"
    with running_daemon(DEFAULT_WEIGHTS, 0, log, start_timeout_s=120) as ep:
        yield ep


@pytest.fixture
def photo(tmp_path) -> Path:
    """A cut-out object (RGBA, transparent background), like the synthetic renders."""
    img = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((40, 30, 88, 100), fill=(150, 90, 40, 255))
    path = tmp_path / "photo.png"
    img.save(path)
    return path


def test_protocol_doc_has_both_examples():
    blocks = python_blocks(PROTOCOL_DOC.read_text())
    assert len(blocks) == 2
    assert "import zmq" in blocks[0] and "backend" not in blocks[0]  # plain pyzmq
    assert "ReconClient" in blocks[1]


@pytest.mark.parametrize("index, mesh", [(0, "reconstruction.obj"),
                                         (1, "reconstruction.glb")])
def test_protocol_examples_run(endpoint, photo, tmp_path, index, mesh):
    script = tmp_path / "client.py"
    script.write_text(python_blocks(PROTOCOL_DOC.read_text())[index])
    proc = subprocess.run([sys.executable, str(script), endpoint, str(photo)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert len(trimesh.load(tmp_path / mesh, force="mesh").faces) > 0
