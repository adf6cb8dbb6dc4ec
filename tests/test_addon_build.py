"""Packaging of the Blender add-on: Blender's own tool builds and validates the zip, and
Blender's own install path installs it into a fresh profile where it runs on its bundled pyzmq
and its bundled protocol package."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from blender_addon import build  # stdlib only; the add-on imports bpy in register()

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "blender_addon"
PLATFORM = "linux-x64"  # only this machine's platform, to keep the default run quick
WHEEL_CACHE = ROOT / "work" / "addon-wheels"
EXTENSION_MODULE = "bl_ext.user_default.unsup3d_recon"


def _blender_ext() -> Path:
    return build.find_blender_ext()


def _build(out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blender_addon", "build", "--out", str(out),
                           "--platform", PLATFORM, *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built_zips(tmp_path_factory) -> dict[str, Path]:
    """This platform's zips by target label: one for Blender 4.2-5.0, one for 5.1+."""
    done = _build(tmp_path_factory.mktemp("dist"), "--wheel-cache", str(WHEEL_CACHE))
    assert done.returncode == 0, done.stderr
    zips = [Path(line) for line in done.stdout.split()]
    assert [z.name for z in zips] == ["unsup3d_recon-0.1.0-blender4.2-5.0-linux_x64.zip",
                                      "unsup3d_recon-0.1.0-blender5.1-linux_x64.zip"]
    return {t.label: z for t, z in zip(build.TARGETS, zips, strict=True)}


@pytest.fixture(scope="module")
def built_zip(built_zips) -> Path:
    """The zip for the Blender installed here (bpy 5.0.1, Python 3.11)."""
    return built_zips["blender4.2-5.0"]


def _zip_manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return tomllib.loads(archive.read("blender_manifest.toml").decode())


# -- pure: the manifest --------------------------------------------------------------------


def test_manifest_matches_the_project():
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert manifest["id"] == "unsup3d_recon"
    assert manifest["version"] == project["version"]
    assert manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    # One SPDX licence in both: pyproject's is a PEP 639 string (setuptools deprecates the
    # table form and drops it in 2027), which needs setuptools 77 or newer to build.
    assert project["license"] == "MIT" and manifest["license"] == [f"SPDX:{project['license']}"]
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert build_system["requires"] == ["setuptools>=77"]
    assert set(manifest["permissions"]) == {"network", "files"}
    # build.py owns the wheel list: the source manifest has none to go stale.
    assert "wheels" not in manifest
    # Every platform listed has a pip platform to fetch pyzmq for, and vice versa.
    assert sorted(manifest["platforms"]) == sorted(build.PIP_PLATFORMS)
    excluded = manifest["build"]["paths_exclude_pattern"]
    assert {"/build.py", "/__main__.py", "__pycache__/"} <= set(excluded)


def test_staged_manifest_lists_the_wheels_for_the_chosen_platforms():
    source = (ADDON / "blender_manifest.toml").read_text()
    names = ["pyzmq-27.3.0-cp312-abi3-win_amd64.whl"]
    for target in build.TARGETS:
        staged = tomllib.loads(build.staged_manifest_text(source, ["windows-x64"], names,
                                                          target))
        assert staged["platforms"] == ["windows-x64"]
        assert staged["wheels"] == [f"./wheels/{name}" for name in names]
        assert staged["blender_version_min"] == target.blender_min
        assert staged.get("blender_version_max") == target.blender_max
        assert staged["permissions"] == tomllib.loads(source)["permissions"]


def test_targets_cover_every_blender_from_4_2_once_with_its_python():
    # Blender's own Pythons: 4.2-5.0 bundle 3.11, 5.1 and later 3.13; max is exclusive.
    pythons = {(4, 2, 0): "3.11", (4, 2, 23): "3.11", (4, 5, 15): "3.11", (5, 0, 1): "3.11",
               (5, 1, 0): "3.13", (5, 1, 2): "3.13", (5, 2, 3): "3.13", (5, 3, 0): "3.13"}
    for blender, python in pythons.items():
        (target,) = [t for t in build.TARGETS if t.admits(blender)]
        assert target.python == python
    assert not [t for t in build.TARGETS if t.admits((4, 1, 9))]
    assert [t.blender_max for t in build.TARGETS] == ["5.1.0", None]


def test_wheel_tags_as_pip_reads_them():
    linux = "manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl"
    assert build.wheel_python_ok(f"pyzmq-27.3.0-cp311-cp311-{linux}", "3.11")
    assert not build.wheel_python_ok(f"pyzmq-27.3.0-cp311-cp311-{linux}", "3.13")
    # abi3 built for 3.12 loads on 3.12 and newer, never on 3.11 (PyType_FromMetaclass).
    assert build.wheel_python_ok(f"pyzmq-27.3.0-cp312-abi3-{linux}", "3.13")
    assert not build.wheel_python_ok(f"pyzmq-27.3.0-cp312-abi3-{linux}", "3.11")
    assert build.wheel_python_ok("attrs-25.1.0-py3-none-any.whl", "3.11")
    assert build.wheel_tags("PyZMQ-27.3.0-cp313-cp313-win_amd64.whl") == ("pyzmq", "cp313")


def _manifest(low, high, *wheels):
    return {"blender_version_min": low, "blender_version_max": high,
            "wheels": [f"./wheels/{w}" for w in wheels]}


def test_manifest_rules_refuse_what_blender_would_mishandle():
    ok311 = "pyzmq-27.3.0-cp311-cp311-win_amd64.whl"
    abi3 = "pyzmq-27.3.0-cp312-abi3-win_amd64.whl"
    assert build.check_manifest_rules(_manifest("4.2.0", "5.1.0", ok311)).python == "3.11"
    assert build.check_manifest_rules(_manifest("5.1.0", None, abi3)).python == "3.13"
    # Two wheels of one package: Blender 4.2.0 keeps one without looking at its tags.
    with pytest.raises(build.BuildError, match="more than one wheel"):
        build.check_manifest_rules(_manifest("4.2.0", "5.1.0", ok311, abi3))
    with pytest.raises(build.BuildError, match="cannot load on Python 3.11"):
        build.check_manifest_rules(_manifest("4.2.0", "5.1.0", abi3))
    with pytest.raises(build.BuildError, match="cannot load on Python 3.13"):
        build.check_manifest_rules(_manifest("5.1.0", None, ok311))
    # No upper bound on the 3.11 zip would offer it to 5.1+, where it cannot load.
    with pytest.raises(build.BuildError, match="no target's"):
        build.check_manifest_rules(_manifest("4.2.0", None, ok311))


# -- the build, with Blender's tool from the bpy package -----------------------------------


@pytest.mark.blender
def test_each_zip_follows_the_packaging_rules_for_the_blenders_it_names(built_zips):
    for label, path in built_zips.items():
        manifest = _zip_manifest(path)
        generated = manifest["build"]["generated"]
        assert generated["platforms"] == [PLATFORM]
        target = build.built_zip_target(manifest)
        assert target.label == label and label in path.name
        assert manifest["blender_version_min"] == target.blender_min
        assert manifest.get("blender_version_max") == target.blender_max
        (wheel,) = generated["wheels"]
        assert "-cp311-cp311-" in wheel if target.python == "3.11" else "-abi3-" in wheel


@pytest.mark.blender
def test_built_zip_passes_blenders_validator(built_zip):
    done = subprocess.run([sys.executable, str(_blender_ext()), "validate", str(built_zip)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.blender
def test_built_zip_holds_the_addon_protocol_and_wheels_only(built_zip):
    with zipfile.ZipFile(built_zip) as archive:
        names = set(archive.namelist())
        bundled_protocol = {name: archive.read(name) for name in names
                            if name.startswith("protocol/")}
    assert {"blender_manifest.toml", "__init__.py", "protocol/__init__.py",
            "protocol/client.py", "protocol/messages.py"} <= names
    assert not [n for n in names if n in {"build.py", "__main__.py"} or "__pycache__" in n
                or n.endswith(".pyc")]
    # The protocol is the daemon's own package, copied as it is.
    assert bundled_protocol == {f"protocol/{p.name}": p.read_bytes()
                                for p in (ROOT / "backend" / "protocol").glob("*.py")}
    wheels = sorted(n for n in names if n.startswith("wheels/"))
    assert len(wheels) == 1 and "-cp311-cp311-" in wheels[0]
    assert wheels[0].endswith("x86_64.whl") and "manylinux" in wheels[0]


@pytest.mark.blender
def test_zip_manifest_lists_exactly_the_bundled_wheels_unmodified(built_zip):
    manifest = _zip_manifest(built_zip)
    assert manifest["platforms"] == [PLATFORM]
    listed = sorted(w.removeprefix("./") for w in manifest["wheels"])
    assert sorted(w.removeprefix("./") for w in manifest["build"]["generated"]["wheels"]) == listed
    with zipfile.ZipFile(built_zip) as archive:
        assert listed == sorted(n for n in archive.namelist() if n.startswith("wheels/"))
        for name in listed:
            # Byte for byte what pip downloaded (and checked against PyPI's hash).
            cached = WHEEL_CACHE / Path(name).name
            assert hashlib.sha256(archive.read(name)).digest() == \
                hashlib.sha256(cached.read_bytes()).digest()


@pytest.mark.blender
def test_offline_build_takes_the_wheels_dir_or_says_which_wheel_is_missing(built_zip, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = _build(tmp_path / "none", "--wheels", str(empty))
    assert failed.returncode == 1
    version = build.installed_pyzmq_version()
    assert f"pyzmq=={version} for Python 3.11 on {PLATFORM} is not in {empty}" in failed.stderr
    assert f"--python-version 3.11 --platform manylinux_2_28_x86_64 --dest {empty}" in failed.stderr
    assert not list((tmp_path / "none").glob("*.zip"))

    offline = _build(tmp_path / "offline", "--wheels", str(WHEEL_CACHE))
    assert offline.returncode == 0, offline.stderr
    with zipfile.ZipFile(offline.stdout.split()[0]) as again, zipfile.ZipFile(built_zip) as first:
        assert sorted(again.namelist()) == sorted(first.namelist())


# -- Blender's own install path, in a fresh profile ----------------------------------------

# Runs in a subprocess started as `python -S` with only what a real Blender ships on sys.path.
# The project's venv has pyzmq installed and its editable install makes `backend` importable:
# either would let the add-on run without its bundled wheel or protocol (the add-on falls back
# to `backend.protocol` in the source tree). Without site-packages, only Blender's own
# machinery can make `zmq` importable: it extracts the extension's wheels into the profile's
# `extensions/.local/.../site-packages` and puts that on sys.path.
INSTALL_CHECK = r"""
import json, os, sys
sys.path[:0] = sys.argv[2].split(os.pathsep)
import bpy
import addon_utils  # Blender's scripts/modules: on sys.path once bpy is imported

result = {"sys_path": sys.path,
          "extensions_dir": bpy.utils.user_resource("EXTENSIONS"),
          "config_dir": bpy.utils.user_resource("CONFIG")}
status = bpy.ops.extensions.package_install_files(
    filepath=sys.argv[1], repo="user_default", enable_on_install=True)
module = sys.argv[3]
result["status"] = sorted(status)
result["enabled"] = [a.module for a in bpy.context.preferences.addons]
client = __import__(module + ".protocol.client", fromlist=["ReconClient"])
result["client_file"] = client.__file__
result["client_zmq_file"] = client.zmq.__file__
result["zmq_files"] = sorted(m.__file__ for name, m in sys.modules.items()
                             if (name == "zmq" or name.startswith("zmq."))
                             and getattr(m, "__file__", None))
result["backend_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] == "backend")
result["panel_registered"] = hasattr(bpy.types, "VIEW3D_PT_unsup3d_recon")
try:
    result["operator_registered"] = bool(bpy.ops.unsup3d.reconstruct.get_rna_type())
except KeyError:
    result["operator_registered"] = False
addon_utils.disable(module, default_set=True)
result["panel_after_disable"] = hasattr(bpy.types, "VIEW3D_PT_unsup3d_recon")
print("RESULT " + json.dumps(result))
"""

# What Blender's own Python has besides the stdlib: bpy itself, and numpy, which Blender
# bundles (the protocol needs it). No pyzmq: that must come from the extension.
BLENDER_SHIPS = ("bpy", "numpy", "numpy.libs")


def _run_in_fresh_profile(script: str, zip_path: Path, tmp_path: Path,
                          first_on_path: Path | None = None) -> tuple[dict, Path]:
    """Run ``script`` as ``python -S`` with only Blender's own packages (plus
    ``first_on_path`` ahead of them) and a fresh user profile; its RESULT line, and the
    profile."""
    site_packages = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent
    blender_path = tmp_path / "blender_python"
    blender_path.mkdir()
    for name in BLENDER_SHIPS:
        if (site_packages / name).exists():
            (blender_path / name).symlink_to(site_packages / name)
    profile = tmp_path / "profile"
    script_path = tmp_path / "check.py"
    script_path.write_text(script)
    # BLENDER_USER_RESOURCES moves every user folder (config, scripts, extensions, ...).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "BLENDER_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(tmp_path), "PYTHONNOUSERSITE": "1", "BLENDER_USER_RESOURCES": str(profile)}
    paths = os.pathsep.join(str(p) for p in (first_on_path, blender_path) if p)
    done = subprocess.run(
        [sys.executable, "-S", str(script_path), str(zip_path), paths, EXTENSION_MODULE],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT ")), profile


@pytest.mark.blender
def test_zip_installs_into_a_fresh_profile_and_runs_on_its_bundled_packages(built_zip, tmp_path):
    result, profile = _run_in_fresh_profile(INSTALL_CHECK, built_zip, tmp_path)
    site_packages = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent

    assert result["extensions_dir"] == str(profile / "extensions")
    assert result["config_dir"] == str(profile / "config")
    assert not [p for p in result["sys_path"] if str(site_packages) in p]
    assert result["status"] == ["FINISHED"]
    assert EXTENSION_MODULE in result["enabled"]
    assert result["panel_registered"] and result["operator_registered"]
    assert not result["panel_after_disable"]

    installed = profile / "extensions" / "user_default" / "unsup3d_recon"
    wheel_site = profile / "extensions" / ".local"
    assert result["client_file"] == str(installed / "protocol" / "client.py")
    assert result["backend_loaded"] == []
    assert result["zmq_files"], "zmq was never imported"
    assert all(Path(f).is_relative_to(wheel_site) for f in result["zmq_files"])
    assert Path(result["client_zmq_file"]).is_relative_to(wheel_site)


# The zip installed where its pyzmq cannot load (as the 3.11 wheel on Blender 5.1, or the
# abi3 one that Blender 4.2.0 picked on 3.11): a zmq that fails to import as such a wheel does.
BROKEN_ZMQ = (
    'raise ImportError(".../zmq/backend/cython/_zmq.abi3.so: undefined symbol: '
    'PyType_FromMetaclass")\n')

BROKEN_CHECK = r"""
import json, os, sys
sys.path[:0] = sys.argv[2].split(os.pathsep)
import bpy
status = bpy.ops.extensions.package_install_files(
    filepath=sys.argv[1], repo="user_default", enable_on_install=True)
module = sys.argv[3]
runtime = sys.modules[module + ".runtime"]
result = {"status": sorted(status),
          "panel_registered": hasattr(bpy.types, "VIEW3D_PT_unsup3d_recon"),
          "error_after_register": runtime.STATE.error, "hint": runtime.STATE.hint}
settings = bpy.context.scene.unsup3d
settings.references.add().image = bpy.data.images.new("ref", 16, 16)
result["reconstruct"] = sorted(bpy.ops.unsup3d.reconstruct())
runtime.drain_until(lambda: not runtime.STATE.busy, 20)
result["error_after_reconstruct"] = runtime.STATE.error
result["backend_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] == "backend")
print("RESULT " + json.dumps(result))
"""


@pytest.mark.blender
def test_a_zip_whose_zmq_cannot_load_says_so_and_what_to_do(built_zip, tmp_path):
    broken = tmp_path / "broken"
    (broken / "zmq").mkdir(parents=True)
    (broken / "zmq" / "__init__.py").write_text(BROKEN_ZMQ)
    result, _ = _run_in_fresh_profile(BROKEN_CHECK, built_zip, tmp_path, broken)
    assert result["status"] == ["FINISHED"] and result["panel_registered"]
    for error in (result["error_after_register"], result["error_after_reconstruct"]):
        assert "zmq cannot be loaded" in error and "PyType_FromMetaclass" in error
        assert "No module named 'backend'" not in error
    assert "blender4.2-5.0" in result["hint"] and "blender5.1" in result["hint"]
    assert "Blender 4.2.0 up to (not incl.) 5.1.0" in result["hint"]
    assert result["backend_loaded"] == []


def test_each_family_is_validated_by_the_newest_cached_blender_it_targets(tmp_path):
    tools = {}
    for version, python in [("4.2.0", "3.11"), ("5.0.1", "3.11"), ("5.1.2", "3.13"),
                            ("5.2.3", "3.13"), ("not-a-version", "3.11")]:
        tool = (tmp_path / f"venv-{version}" / "lib" / f"python{python}" / "site-packages" /
                "bpy" / version[:3] / "scripts" / "addons_core" / "bl_pkg" / "cli" /
                "blender_ext.py")
        tool.parent.mkdir(parents=True)
        tool.write_text("")
        tools[version] = tool
    assert build.cached_validators(tmp_path) == {"3.11": tools["5.0.1"], "3.13": tools["5.2.3"]}
    assert build.cached_validators(tmp_path / "missing") == {}
    # A tool inside a venv runs on that venv's Python (5.2's is for 3.13).
    (tmp_path / "venv-5.2.3" / "pyvenv.cfg").write_text("")
    (tmp_path / "venv-5.2.3" / "bin").mkdir()
    (tmp_path / "venv-5.2.3" / "bin" / "python").write_text("")
    assert build.tool_python(tools["5.2.3"]) == str(tmp_path / "venv-5.2.3" / "bin" / "python")
    assert build.tool_python(tools["4.2.0"]) == sys.executable
