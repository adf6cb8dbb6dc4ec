"""The add-on on every Blender from 4.2 LTS to 5.2 LTS: install, load zmq, Reconstruct.

For each Blender version this creates (once; cached under ``work/blender-matrix``) a venv
holding only that version's ``bpy`` module and what it declares, i.e. what Blender itself
bundles (numpy; attrs/cattrs from 5.1), and never pyzmq, which would hide whether zmq loads
from the extension. It builds the zips (the 3.13 family validated by 5.2's own extension tool),
picks the one whose manifest admits the version, checks that Blender refuses the other one,
installs the right one into a fresh user profile with Blender's extension API, checks that zmq
is loaded from the extension's wheel, runs the Reconstruct operator against a real daemon with
the shipped weights, and checks that the mesh is at the 3D cursor and the camera aligned with
the reference behind it. Then it prints a version x result table (also written to
``work/blender-matrix/matrix.md``).

    .venv/bin/python scripts/blender_matrix.py            # or: make blender-matrix
    .venv/bin/python scripts/blender_matrix.py --versions 4.2.23,5.2.3

The first run downloads about 6 GB (the bpy wheels); later runs reuse the venvs. Python 3.13
(Blender 5.1+) comes from ``--python313`` or pyenv (``PYENV_VERSION=3.13.0 python3.13``);
without one, those rows say "not measured".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blender_addon import build  # noqa: E402  (stdlib only)

VERSIONS = ("4.2.0", "4.2.23", "4.5.15", "5.0.1", "5.1.2", "5.2.3")
EXTENSION_MODULE = "bl_ext.user_default.unsup3d_recon"


@dataclass
class MatrixConfig:
    versions: tuple[str, ...] = VERSIONS
    work: Path = ROOT / "work" / "blender-matrix"
    python311: str = "python3.11"
    python313: str = ""  # empty: pyenv's 3.13.0 when present
    timeout_s: float = 600.0  # per Blender version, install and Reconstruct


@dataclass
class Row:
    blender: str
    python: str = ""
    zip_name: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    result: str = "not measured"


COLUMNS = ("refuses the other zip", "installs", "zmq from the extension", "mesh at the cursor",
           "camera aligned")


# ------------------------------------------------------------------------------ venvs


def python_for(version: str, cfg: MatrixConfig) -> list[str] | None:
    """The interpreter command for a Blender version's bpy module, or None when absent."""
    blender = build.version_tuple(version)
    target = next(t for t in build.TARGETS if t.admits(blender))
    if target.python == "3.11":
        return [cfg.python311]
    if cfg.python313:
        return [cfg.python313]
    pyenv = ["env", "PYENV_VERSION=3.13.0", "python3.13"]
    probe = subprocess.run([*pyenv, "--version"], capture_output=True, text=True)
    return pyenv if probe.returncode == 0 and "3.13" in probe.stdout else None


def ensure_venv(version: str, cfg: MatrixConfig) -> Path | None:
    """The venv's python for ``bpy==version`` (created on first use), or None without the
    interpreter it needs. Fails if pyzmq got in."""
    venv = cfg.work / f"venv-{version}"
    python = venv / "bin" / "python"
    if not _has_bpy(python, version):
        interpreter = python_for(version, cfg)
        if interpreter is None:
            return None
        shutil.rmtree(venv, ignore_errors=True)
        print(f"creating {venv} (bpy=={version}, about 1 GB)", flush=True)
        subprocess.run([*interpreter, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", f"bpy=={version}"], check=True)
    zmq = subprocess.run([str(python), "-c", "import importlib.util as u; "
                          "print(u.find_spec('zmq') is not None)"],
                         capture_output=True, text=True, check=True)
    if zmq.stdout.strip() != "False":
        raise SystemExit(f"{venv} has pyzmq installed: it would hide whether zmq loads from "
                         "the extension; delete the venv")
    return python


def _has_bpy(python: Path, version: str) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                           "print(m.version('bpy'))"], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == version


# ------------------------------------------------------------------------------ inputs


def build_zips(cfg: MatrixConfig) -> list[Path]:
    out = cfg.work / "dist"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "blender_addon", "build", "--out", str(out),
               "--platform", "linux-x64", "--wheel-cache", str(ROOT / "work" / "addon-wheels")]
    # Each family is validated by the newest Blender tool it targets among the venvs here.
    command += ["--matrix-dir", str(cfg.work)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"building the zips failed:\n{done.stderr}")
    return [Path(line) for line in done.stdout.split()]


def zip_for(version: str, zips: list[Path]) -> Path:
    """The zip whose manifest admits this Blender (exactly one must)."""
    blender = build.version_tuple(version)
    admitting = []
    for path in zips:
        if build.built_zip_target(build.zip_manifest(path)).admits(blender):
            admitting.append(path)
    if len(admitting) != 1:
        raise SystemExit(f"Blender {version}: {len(admitting)} zips admit it, not one")
    return admitting[0]


def reference_image(cfg: MatrixConfig) -> Path:
    """A held-out car, rendered once like the renders the model was trained on."""
    from synth_render import r2n2
    from synth_render.demo import build_demo_data
    from synth_render.taxonomy import resolve_classes

    path = cfg.work / "reference.png"
    if not path.exists():
        with tempfile.TemporaryDirectory() as tmp:
            data = build_demo_data(Path(tmp), resolve_classes("car"), per_class=1, views=1,
                                   size=128, seed=4242, workers=1, styles=("synthetic",))
            (ref,) = data.models()
            tree = data.renders["synthetic"]
            cfg.work.mkdir(parents=True, exist_ok=True)
            shutil.copy(r2n2.rendering_dir(tree, ref.synset, ref.model_id)
                        / r2n2.view_file_name(0), path)
    return path


# ------------------------------------------------------------------------------ one version

# Runs in the version's venv, from an empty folder, with a fresh profile. The result is
# written before the interpreter exits: bpy 4.2.0's module crashes at exit after a glTF import.
CHECK = r"""
import json, sys
from pathlib import Path
zip_path, endpoint, image_path, module, out, wrong_zip = sys.argv[1:7]
result = {}
def save():
    Path(out).write_text(json.dumps(result))
import bpy
result["blender"] = bpy.app.version_string
result["python"] = "%d.%d" % sys.version_info[:2]
# The other family's zip: Blender itself must refuse it from the manifest's range (it prints
# why and returns FINISHED with nothing installed).
installed = Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / module.split(".")[-1]
try:
    bpy.ops.extensions.package_install_files(
        filepath=wrong_zip, repo="user_default", enable_on_install=True)
except RuntimeError:
    pass
result["refuses the other zip"] = module not in sys.modules and not installed.exists()
save()
status = bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True)
result["installs"] = sorted(status) == ["FINISHED"] and module in sys.modules
save()
runtime = sys.modules[module + ".runtime"]
result["import_error"] = runtime.STATE.error
client = sys.modules.get(module + ".protocol.client")
extensions = Path(bpy.utils.user_resource("EXTENSIONS")).resolve()
zmq_file = Path(client.zmq.__file__).resolve() if client else None
result["zmq_file"] = str(zmq_file)
result["zmq from the extension"] = bool(zmq_file and zmq_file.is_relative_to(extensions))
save()
prefs = bpy.context.preferences.addons[module].preferences
prefs.endpoint, prefs.timeout_s, prefs.retries = endpoint, 120.0, 0
settings = bpy.context.scene.unsup3d
reference = bpy.data.images.load(image_path)
settings.references.add().image = reference
settings.align_camera = True
cursor = bpy.context.scene.cursor
cursor.location = (1.0, -2.0, 0.5)
result["operator"] = sorted(bpy.ops.unsup3d.reconstruct())
runtime.drain_until(lambda: not runtime.STATE.busy, 180)
result["error"] = runtime.STATE.error
item = settings.history[-1] if len(settings.history) else None
obj = item.object if item else None
cam = item.camera if item else None
result["class"] = item.class_name if item else ""
result["mesh at the cursor"] = bool(
    obj and len(obj.data.vertices) > 0 and (obj.location - cursor.location).length < 1e-4)
if cam and obj:
    from mathutils import Vector
    forward = cam.matrix_world.to_3x3() @ Vector((0, 0, -1))
    backgrounds = cam.data.background_images
    # the background is the reference as the model saw it: the reply's framing square cut
    # from it (a new packed image), or the reference itself when nothing was cut
    shown = backgrounds[0].image if len(backgrounds) else None
    result["framing"] = item.framing_source
    result["camera aligned"] = bool(
        forward.angle(obj.location - cam.location) < 1e-3 and shown is not None
        and shown.name in (reference.name, reference.name + " (model view)")
        and cam.data.show_background_images)
else:
    result["camera aligned"] = False
result["finished"] = True
save()
"""


def check_version(version: str, python: Path, zip_path: Path, wrong_zip: Path, endpoint: str,
                  image: Path, cfg: MatrixConfig) -> Row:
    row = Row(version, zip_name=zip_path.name)
    with tempfile.TemporaryDirectory(prefix=f"blender-{version}-") as tmp:
        tmp = Path(tmp)
        script, out = tmp / "check.py", tmp / "result.json"
        script.write_text(CHECK)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "BLENDER_", "VIRTUAL_ENV"))}
        env |= {"HOME": str(tmp), "PYTHONNOUSERSITE": "1",
                "BLENDER_USER_RESOURCES": str(tmp / "profile")}
        try:
            done = subprocess.run([str(python), str(script), str(zip_path), endpoint,
                                   str(image), EXTENSION_MODULE, str(out), str(wrong_zip)],
                                  cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=cfg.timeout_s)
            code, log = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code, log = None, f"timed out after {exc.timeout:.0f} s"
        result = json.loads(out.read_text()) if out.exists() else {}
    row.python = result.get("python", "")
    row.cells = {c: "yes" if result.get(c) else "no" for c in COLUMNS}
    passed = result.get("finished") and all(result.get(c) for c in COLUMNS)
    if passed and code == 0:
        row.result = f"ok ({result.get('class')})"
    elif passed and code is not None and code < 0:
        row.result = (f"ok ({result.get('class')}), crashes at exit (bpy {version} module, "
                      f"{signal.Signals(-code).name})")
    else:
        why = result.get("error") or result.get("import_error") or log.strip()[-300:]
        row.result = f"FAILED (exit {code}): {why}"
    return row


# ------------------------------------------------------------------------------ the matrix


def table(rows: list[Row]) -> str:
    head = ["Blender", "Python", "zip", *COLUMNS, "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r.cells.get(c, "") for c in COLUMNS]
        lines.append("| " + " | ".join([r.blender, r.python, r.zip_name, *cells, r.result])
                     + " |")
    return "\n".join(lines)


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def run(cfg: MatrixConfig) -> int:
    from backend.protocol import LocalDaemon

    started = time.monotonic()
    cfg.work.mkdir(parents=True, exist_ok=True)
    pythons = {v: ensure_venv(v, cfg) for v in cfg.versions}
    zips = build_zips(cfg)
    image = reference_image(cfg)
    daemon = LocalDaemon(sys.executable, _free_endpoint(),
                         log_path=str(cfg.work / "daemon.log"))
    daemon.start()
    rows = []
    try:
        daemon.wait_ready(timeout_s=180)
        for version in cfg.versions:
            python = pythons[version]
            if python is None:
                rows.append(Row(version, "3.13", result="not measured (no Python 3.13 here)"))
                continue
            print(f"Blender {version} ...", flush=True)
            right = zip_for(version, zips)
            (wrong,) = [z for z in zips if z != right]
            rows.append(check_version(version, python, right, wrong, daemon.endpoint, image,
                                      cfg))
            print(f"  {rows[-1].result}", flush=True)
    finally:
        daemon.stop()
    text = (f"{table(rows)}\n\nLinux x64, {time.strftime('%Y-%m-%d')}, "
            f"{time.monotonic() - started:.0f} s.\n")
    (cfg.work / "matrix.md").write_text(text)
    print("\n" + text)
    return 0 if all(r.result.startswith(("ok", "not measured")) for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    defaults = MatrixConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", default=",".join(defaults.versions),
                   help="comma-separated bpy versions (default: %(default)s)")
    p.add_argument("--work", type=Path, default=defaults.work,
                   help="cache of venvs, zips and results (default: %(default)s)")
    p.add_argument("--python311", default=defaults.python311,
                   help="Python 3.11 for Blender 4.2-5.0 (default: %(default)s)")
    p.add_argument("--python313", default=defaults.python313,
                   help="Python 3.13 for Blender 5.1+ (default: pyenv's 3.13.0 if present)")
    p.add_argument("--timeout-s", type=float, default=defaults.timeout_s,
                   help="per version (default: %(default)s)")
    args = p.parse_args(argv)
    return run(MatrixConfig(tuple(v.strip() for v in args.versions.split(",") if v.strip()),
                            args.work, args.python311, args.python313, args.timeout_s))


if __name__ == "__main__":
    raise SystemExit(main())
