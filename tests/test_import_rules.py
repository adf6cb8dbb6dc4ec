"""Architecture rules that keep Blender and torch where they belong."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Only these modules may import bpy: Blender glue of the render workers and the add-on.
BPY_GLUE = ("synth_render/render/worker.py", "synth_render/render/style_")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_bpy_only_in_glue_modules():
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in ("synth_render", "backend")
        for p in _sources(pkg)
        if "bpy" in _imports(p) and not str(p.relative_to(ROOT)).startswith(BPY_GLUE)
    ]
    assert offenders == [], f"bpy imported outside the glue layer: {offenders}"


def test_addon_never_imports_torch():
    offenders = [str(p) for p in _sources("blender_addon") if "torch" in _imports(p)]
    assert offenders == []


def test_protocol_package_is_self_contained():
    """The Blender add-on bundles backend/protocol as it is: stdlib, numpy, zmq and its own
    modules (relative imports) only."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "zmq"}
    for path in _sources("backend/protocol"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{path.name}: relative import reaches outside the package")
        bad = _imports(path) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_the_protocol_does_not_load_torch():
    code = ("import sys, backend.protocol, backend.protocol.client;"
            "print(sorted(m for m in ('torch', 'bpy', 'PIL', 'trimesh') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_importing_the_data_engine_does_not_load_bpy_or_torch():
    code = (
        "import sys, synth_render, synth_render.cli, synth_render.render, synth_render.voxelize;"
        "print(sorted(m for m in ('bpy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "synth_render", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    for command in ("shapes", "render", "voxelize", "demo"):
        assert command in out.stdout
