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


# The backend's stages and what each may import of the others (models/ and protocol/ are
# open to every stage; the CLI and the demo at the top may import anything).
STAGE_IMPORTS = {
    "core": {"core", "models", "protocol"},
    "data": {"core", "data", "models"},
    "training": {"core", "data", "training", "models"},
    "evaluation": {"core", "data", "evaluation", "models"},
    "serving": {"core", "serving", "models", "protocol"},
    "models": {"models"},
    "protocol": {"protocol"},
}


def _backend_imports(path: Path) -> set[str]:
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]  # ("backend", "<stage>")
    return _stages_imported(path.read_text(), package)


def _stages_imported(source: str, package: tuple[str, ...]) -> set[str]:
    """The ``backend.<stage>`` packages a module of ``package`` imports, relative imports
    resolved, lazy (function-level) imports included."""
    stages = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, node.module or "")).strip(".")
            modules = [module, *(f"{module}.{a.name}" for a in node.names)]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "backend" and len(parts) > 1:
                stages.add(parts[1])
    return stages


def test_each_backend_stage_imports_only_what_comes_before_it():
    """core <- data <- training; core, data <- evaluation; core <- serving (the daemon never
    loads training or evaluation code); every module of backend/ belongs to a stage."""
    top_level = {"__init__", "__main__", "cli", "demo", "train"}  # train: an old -m alias
    offenders = []
    for path in _sources("backend"):
        rel = path.relative_to(ROOT / "backend")
        if len(rel.parts) == 1:
            assert rel.stem in top_level, f"backend/{rel} belongs in a stage's package"
            continue
        stage = rel.parts[0]
        assert stage in STAGE_IMPORTS, f"backend/{stage}/ is not a known stage"
        bad = _backend_imports(path) - STAGE_IMPORTS[stage]
        if bad:
            offenders.append(f"backend/{rel} imports backend.{sorted(bad)}")
    assert offenders == []


def test_the_stage_rule_sees_relative_and_lazy_imports():
    """The checker itself: lazy, relative and ``from backend import`` forms are all seen."""
    source = ("import backend.core.device\n"
              "def f():\n    from ..training import train\n    from . import batching\n"
              "    from backend import data\n")
    assert _stages_imported(source, ("backend", "serving")) == {"core", "training", "serving",
                                                                 "data"}


def test_the_architecture_page_and_the_readme_follow_the_tree():
    """docs/architecture.md names every module of every backend stage in that stage's row,
    every backend path it names exists, and the README's package table names every stage."""
    import re

    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `backend/(\w+)/` \| (.*)$", doc,
                                                        re.M)}
    for stage in STAGE_IMPORTS:
        assert stage in rows, f"docs/architecture.md has no row for backend/{stage}/"
        for path in sorted((ROOT / "backend" / stage).glob("*.py")):
            if path.stem != "__init__" and stage not in ("models",):
                assert f"`{path.name}`" in rows[stage], f"backend/{stage}/{path.name} unnamed"
    for path in set(re.findall(r"`(backend/[\w/]+(?:\.\w+)?)`", doc)):
        assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which is not there"
    readme = (ROOT / "README.md").read_text()
    table = next(line for line in readme.splitlines() if line.startswith("| `backend` |"))
    for stage in STAGE_IMPORTS:
        assert f"`{stage}`" in table, f"README's package table does not name backend/{stage}"
