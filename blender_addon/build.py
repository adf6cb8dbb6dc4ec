"""Build the add-on's installable zips with Blender's own extension tool.

``python -m blender_addon build [--out DIR] [--platform linux-x64 ...]`` writes one zip per
platform and per Python ABI of the supported Blender releases (:data:`TARGETS`): Blender
4.2-5.0 run Python 3.11, 5.1 and newer 3.13. Each zip holds this folder, the daemon's protocol
package (``backend/protocol`` becomes the subpackage ``protocol``) and exactly one pyzmq wheel,
fetched unmodified with ``pip download`` for that platform and Python, and its manifest's
``blender_version_min``/``blender_version_max`` admit only the Blenders that can load it:
Blender 4.2.0 keeps one wheel per package name without checking its tags, and 5.1+ derives the
Pythons it accepts from the wheel names, so one zip for both Pythons fails on both. Each family
is built by ``blender_ext.py build --split-platforms`` and every zip checked by ``blender_ext.py
validate``, of a Blender it targets where one is given (``--blender-ext-for``).

Stdlib only, and Blender's tool runs as a subprocess: this module never imports bpy or torch.
It is excluded from the zip by the manifest's ``[build] paths_exclude_pattern``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ADDON_DIR = Path(__file__).resolve().parent
PROTOCOL_DIR = ADDON_DIR.parent / "backend" / "protocol"
MANIFEST_NAME = "blender_manifest.toml"
BLENDER_EXT_GLOB = "*/scripts/addons_core/bl_pkg/cli/blender_ext.py"

# Blender platform -> pip platform tag to resolve pyzmq for. glibc 2.28 and macOS 11 are the
# oldest systems Blender 4.2 runs on; pip also accepts wheels built for older ones (pyzmq
# publishes universal2 for macOS, so both Mac platforms get the same file).
PIP_PLATFORMS = {
    "linux-x64": "manylinux_2_28_x86_64",
    "linux-arm64": "manylinux_2_28_aarch64",
    "macos-x64": "macosx_11_0_x86_64",
    "macos-arm64": "macosx_11_0_arm64",
    "windows-x64": "win_amd64",
}


@dataclass(frozen=True)
class Target:
    """The Blender releases that share one Python, so one zip per platform serves them all."""
    python: str  # pip's --python-version for the wheels
    blender_min: str
    blender_max: str | None  # exclusive, as in Blender's manifest; None: no upper bound
    label: str  # in the zip's file name: which Blender it is for

    def admits(self, blender: tuple[int, ...]) -> bool:
        low = version_tuple(self.blender_min)
        return low <= blender and (self.blender_max is None
                                   or blender < version_tuple(self.blender_max))

    def zip_name(self, addon_id: str, version: str, platform: str) -> str:
        return f"{addon_id}-{version}-{self.label}-{platform.replace('-', '_')}.zip"


# Blender 4.2-5.0 bundle Python 3.11 and 5.1+ 3.13 (which pyzmq's cp312-abi3 wheels serve).
TARGETS = (Target("3.11", "4.2.0", "5.1.0", "blender4.2-5.0"),
           Target("3.13", "5.1.0", None, "blender5.1"))


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def wheel_tags(name: str) -> tuple[str, str]:
    """(distribution, python tag) of a wheel file name, e.g. ("pyzmq", "cp312")."""
    parts = name.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        raise BuildError(f"{name} is not a wheel file name")
    return parts[0].lower().replace("_", "-"), parts[-3]


def wheel_python_ok(name: str, python: str) -> bool:
    """Whether CPython ``python`` ("3.13") can load the wheel ``name`` (its tags as pip reads
    them: cpXY-cpXY for exactly that Python, cpXY-abi3 for XY and newer, py3-none for any)."""
    major_minor = tuple(int(p) for p in python.split("."))
    stem = name.removesuffix(".whl").split("-")
    py_tags, abi = stem[-3].split("."), stem[-2]
    for tag in py_tags:
        if tag.startswith("py3") and abi == "none":
            return True
        if tag.startswith("cp"):
            built = (int(tag[2]), int(tag[3:]))
            if built == major_minor or (abi == "abi3" and built <= major_minor):
                return True
    return False


def check_manifest_rules(manifest: dict) -> Target:
    """The target a built zip's manifest is for; fails unless its range is that target's and
    each of its wheels is the only one of its package and loads on that target's Python."""
    target = next((t for t in TARGETS if t.blender_min == manifest.get("blender_version_min")),
                  None)
    if target is None or manifest.get("blender_version_max") != target.blender_max:
        raise BuildError(f"the manifest's range {manifest.get('blender_version_min')} - "
                         f"{manifest.get('blender_version_max')} is no target's "
                         f"({[(t.blender_min, t.blender_max) for t in TARGETS]})")
    names = [Path(w).name for w in manifest.get("wheels", [])]
    packages = [wheel_tags(n)[0] for n in names]
    twice = sorted({p for p in packages if packages.count(p) > 1})
    if twice:
        raise BuildError(f"more than one wheel of {twice}: Blender 4.2.0 would keep one at "
                         "random")
    wrong = [n for n in names if not wheel_python_ok(n, target.python)]
    if wrong:
        raise BuildError(f"{wrong} cannot load on Python {target.python} "
                         f"(Blender {target.label.removeprefix('blender')})")
    return target


class BuildError(RuntimeError):
    """The build cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class BuildConfig:
    out_dir: Path = Path("dist")
    # Blender platform names; empty means every platform the manifest lists.
    platforms: tuple[str, ...] = ()
    # Downloaded wheels are kept here and reused by later builds.
    wheel_cache: Path = Path("work/addon-wheels")
    # Offline builds: take the wheels only from this folder, never from the network.
    wheels_dir: Path | None = None
    # Empty means the pyzmq installed in this environment.
    pyzmq_version: str = ""
    # Empty means the blender_ext.py inside the installed bpy package.
    blender_ext: Path | None = None
    # A Blender's blender_ext.py per target Python ("3.13" -> 5.2's tool), to validate that
    # family's zips; a family without one is validated by ``blender_ext``.
    validators: tuple[tuple[str, Path], ...] = ()
    # The version matrix's cached venvs (scripts/blender_matrix.py): where present, each
    # family is validated by the newest Blender tool there that it targets.
    matrix_dir: Path = Path("work/blender-matrix")


@dataclass(frozen=True)
class WheelRequest:
    python: str
    platform: str

    @property
    def pip_platform(self) -> str:
        return PIP_PLATFORMS[self.platform]

    def describe(self, version: str) -> str:
        return f"pyzmq=={version} for Python {self.python} on {self.platform}"

    def fetch_command(self, version: str, dest: str) -> str:
        """The pip command that fetches this wheel on a machine with network access."""
        return (f"pip download --only-binary=:all: --no-deps --python-version {self.python} "
                f"--platform {self.pip_platform} --dest {dest} pyzmq=={version}")


def find_blender_ext() -> Path:
    """Blender's extension CLI as shipped in the bpy wheel, found without importing bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the bpy package is not installed here (pip install bpy); or pass "
                         "--blender-ext PATH to a Blender's scripts/addons_core/bl_pkg/cli/"
                         "blender_ext.py")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(bpy_dir.glob(BLENDER_EXT_GLOB))
    if not candidates:
        raise BuildError(f"no {BLENDER_EXT_GLOB} under {bpy_dir}; pass --blender-ext PATH")
    return candidates[-1]


def installed_pyzmq_version() -> str:
    try:
        return importlib.metadata.version("pyzmq")
    except importlib.metadata.PackageNotFoundError as exc:
        raise BuildError("pyzmq is not installed here; pass --pyzmq-version") from exc


def _pip_download(request: WheelRequest, version: str, source_args: Sequence[str],
                  dest: Path) -> Path:
    """One wheel, resolved by pip for the request's Python and platform, saved under dest."""
    dest.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
               "--quiet", "--only-binary=:all:", "--no-deps",
               "--python-version", request.python, "--platform", request.pip_platform,
               "--dest", str(dest), *source_args, f"pyzmq=={version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise BuildError(done.stderr.strip() or done.stdout.strip() or "pip saved no wheel")
    return wheels[0]


def fetch_wheel(request: WheelRequest, version: str, config: BuildConfig, scratch: Path) -> Path:
    """The wheel for one request: from --wheels, else the cache, else PyPI (then cached)."""
    dest = scratch / f"{request.python}-{request.platform}"
    if config.wheels_dir is not None:
        try:
            return _pip_download(request, version,
                                 ["--no-index", "--find-links", str(config.wheels_dir)], dest)
        except BuildError as exc:
            raise BuildError(
                f"{request.describe(version)} is not in {config.wheels_dir}: {exc}\n"
                f"Fetch it with: {request.fetch_command(version, str(config.wheels_dir))}"
            ) from exc
    if config.wheel_cache.is_dir():
        try:
            return _pip_download(request, version,
                                 ["--no-index", "--find-links", str(config.wheel_cache)], dest)
        except BuildError:
            shutil.rmtree(dest, ignore_errors=True)
            log.debug("%s is not cached yet", request.describe(version))
    log.info("downloading %s", request.describe(version))
    try:
        wheel = _pip_download(request, version, [], dest)
    except BuildError as exc:
        raise BuildError(
            f"could not download {request.describe(version)}: {exc}\n"
            f"To build offline, fetch the wheels on a machine with network access (for each "
            f"platform and Python, e.g. {request.fetch_command(version, 'WHEELS_DIR')}) "
            f"and pass --wheels WHEELS_DIR.") from exc
    config.wheel_cache.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, config.wheel_cache / wheel.name)
    return wheel


def staged_manifest_text(source: str, platforms: Sequence[str], wheel_names: Sequence[str],
                         target: Target = TARGETS[0]) -> str:
    """The manifest with the target's Blender range, the platforms being built and the wheels
    bundled for them."""
    lines = ["platforms = " + json.dumps(list(platforms)),
             "wheels = [\n" + "".join(f"  {json.dumps('./wheels/' + name)},\n"
                                      for name in wheel_names) + "]"]
    text, count = re.subn(r"^platforms = \[[^\]]*\]", lambda _: "\n".join(lines),
                          source, count=1, flags=re.MULTILINE)
    text, found = re.subn(r'^blender_version_min = "[^"]*"',
                          lambda _: f'blender_version_min = "{target.blender_min}"' + (
                              f'\nblender_version_max = "{target.blender_max}"'
                              if target.blender_max else ""),
                          text, count=1, flags=re.MULTILINE)
    if count != 1 or found != 1:
        raise BuildError(f"{MANIFEST_NAME} needs top-level `platforms = [...]` and "
                         "`blender_version_min = ...` lines")
    parsed = tomllib.loads(text)
    if (parsed["platforms"], parsed["wheels"], parsed["blender_version_min"],
            parsed.get("blender_version_max")) != (
            list(platforms), [f"./wheels/{name}" for name in wheel_names], target.blender_min,
            target.blender_max):
        raise BuildError(f"the staged {MANIFEST_NAME} did not take the range, platforms and "
                         "wheels")
    return text


def stage_extension(stage: Path, platforms: Sequence[str], wheels: Sequence[Path],
                    target: Target = TARGETS[0]) -> None:
    """The extension's source tree: this package, the protocol package and the wheels."""
    for generated in ("protocol", "wheels"):
        if (ADDON_DIR / generated).exists():
            raise BuildError(f"{ADDON_DIR / generated} must not exist in the source tree: the "
                             f"build adds it (the protocol lives in {PROTOCOL_DIR})")
    shutil.copytree(ADDON_DIR, stage, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROTOCOL_DIR, stage / "protocol", ignore=shutil.ignore_patterns("__pycache__"))
    (stage / "wheels").mkdir()
    names = sorted({wheel.name for wheel in wheels})
    for wheel in {w.name: w for w in wheels}.values():
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
    manifest = stage / MANIFEST_NAME
    manifest.write_text(staged_manifest_text(manifest.read_text(), platforms, names, target))


def tool_python(blender_ext: Path) -> str:
    """The Python to run a blender_ext.py with: the venv its bpy module is installed in
    (5.1+'s tool is for Python 3.13), else this one."""
    for parent in blender_ext.parents:
        if (parent / "pyvenv.cfg").is_file() and (parent / "bin" / "python").exists():
            return str(parent / "bin" / "python")
    return sys.executable


def run_blender_ext(blender_ext: Path, *args: str) -> str:
    command = [tool_python(blender_ext), str(blender_ext), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    log.debug("%s\n%s", " ".join(command), output)
    if done.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{output}")
    return output


def zip_manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return tomllib.loads(archive.read(MANIFEST_NAME).decode("utf-8"))


def built_zip_target(manifest: dict) -> Target:
    """:func:`check_manifest_rules` for a built zip's manifest, on the wheels Blender's tool
    kept for its platform (the top-level list still names every platform's)."""
    return check_manifest_rules(manifest | {"wheels": manifest["build"]["generated"]["wheels"]})


def check_zip_wheels(path: Path, expected: dict[str, list[Path]]) -> str:
    """The zip's platform; fails when Blender's tool did not keep the wheels fetched for it
    or the manifest breaks :func:`check_manifest_rules`."""
    manifest = zip_manifest(path)
    generated = manifest["build"]["generated"]
    (platform,) = generated["platforms"]
    kept = sorted(Path(w).name for w in generated["wheels"])
    wanted = sorted({w.name for w in expected[platform]})
    if kept != wanted:
        raise BuildError(f"{path.name}: Blender's tool bundled {kept} for {platform}, "
                         f"expected {wanted}")
    built_zip_target(manifest)
    with zipfile.ZipFile(path) as archive:
        missing = [w for w in wanted if f"wheels/{w}" not in archive.namelist()]
    if missing:
        raise BuildError(f"{path.name} lacks {missing}")
    return platform


def build_target(target: Target, manifest: dict, platforms: Sequence[str], version: str,
                 config: BuildConfig, scratch: Path, validator: Path) -> list[Path]:
    """One family's zips (one per platform), built, renamed for their Blenders, validated."""
    wheels = {platform: [fetch_wheel(WheelRequest(target.python, platform), version, config,
                                     scratch / "pip")] for platform in platforms}
    stage = scratch / target.label / manifest["id"]
    stage_extension(stage, platforms, [w for ws in wheels.values() for w in ws], target)
    built = scratch / target.label / "built"
    built.mkdir()
    run_blender_ext(config.blender_ext or find_blender_ext(), "build", "--source-dir",
                    str(stage), "--output-dir", str(built), "--split-platforms")
    zips = []
    for path in sorted(built.glob("*.zip")):
        platform = check_zip_wheels(path, wheels)
        named = path.with_name(target.zip_name(manifest["id"], manifest["version"], platform))
        path.rename(named)
        run_blender_ext(validator, "validate", str(named))
        zips.append(Path(shutil.move(named, config.out_dir / named.name)))
    if len(zips) != len(platforms):
        raise BuildError(f"expected {len(platforms)} zips for {target.label}, Blender's tool "
                         f"made {len(zips)}")
    return zips


def build(config: BuildConfig) -> list[Path]:
    """Build, validate and return one zip per platform and target."""
    started = time.perf_counter()
    manifest = tomllib.loads((ADDON_DIR / MANIFEST_NAME).read_text())
    platforms = config.platforms or tuple(manifest["platforms"])
    unknown = sorted(set(platforms) - set(manifest["platforms"]))
    if unknown:
        raise BuildError(f"unknown platform(s) {unknown}; the manifest lists "
                         f"{manifest['platforms']}")
    default_tool = config.blender_ext or find_blender_ext()
    validators = cached_validators(config.matrix_dir) | dict(config.validators)
    version = config.pyzmq_version or installed_pyzmq_version()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    zips = []
    with tempfile.TemporaryDirectory(prefix="unsup3d-addon-") as tmp:
        for target in TARGETS:
            validator = validators.get(target.python, default_tool)
            log.info("validating the %s zips with %s%s", target.label, validator,
                     "" if target.python in validators else
                     f" (pass --blender-ext-for {target.python}=PATH, or run make "
                     "blender-matrix once, for a tool of a Blender they target)")
            zips += build_target(target, manifest, platforms, version, config, Path(tmp),
                                 validator)
    log.info("built and validated %d zip(s) in %.1f s", len(zips), time.perf_counter() - started)
    return zips


def cached_validators(matrix_dir: Path) -> dict[str, Path]:
    """Target Python -> blender_ext.py of the newest cached ``venv-<version>`` it admits."""
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    for venv in matrix_dir.glob("venv-*"):
        try:
            blender = version_tuple(venv.name.removeprefix("venv-"))
        except ValueError:
            continue
        tools = sorted(venv.glob("lib/python*/site-packages/bpy/" + BLENDER_EXT_GLOB))
        for target in TARGETS:
            if tools and target.admits(blender) and blender > found.get(
                    target.python, ((), None))[0]:
                found[target.python] = (blender, tools[-1])
    return {python: tool for python, (_, tool) in found.items()}


def _validator(text: str) -> tuple[str, Path]:
    python, sep, path = text.partition("=")
    if not sep or python not in {t.python for t in TARGETS}:
        raise argparse.ArgumentTypeError(
            f"expected PYTHON=PATH with PYTHON one of {[t.python for t in TARGETS]}")
    return python, Path(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon",
                                     description="Blender add-on packaging.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("build", help="build the installable zips, one per platform "
                              "and Python",
                              description="Stage the add-on with the daemon's protocol "
                              "package and pyzmq wheels, then build and validate one zip per "
                              "platform and Blender Python (4.2-5.0: 3.11, 5.1+: 3.13) with "
                              "Blender's own blender_ext.py; prints the zips.")
    defaults = BuildConfig()
    cmd.add_argument("--out", type=Path, default=defaults.out_dir,
                     help="folder for the zips (default: %(default)s)")
    cmd.add_argument("--platform", action="append", choices=sorted(PIP_PLATFORMS),
                     dest="platforms", help="build only this platform (repeatable; "
                     "default: every platform in the manifest)")
    cmd.add_argument("--wheels", type=Path, dest="wheels_dir",
                     help="offline: take the pyzmq wheels from this folder only")
    cmd.add_argument("--wheel-cache", type=Path, default=defaults.wheel_cache,
                     help="where downloaded wheels are kept (default: %(default)s)")
    cmd.add_argument("--pyzmq-version", default="",
                     help="pyzmq version to bundle (default: the one installed here)")
    cmd.add_argument("--blender-ext", type=Path,
                     help="Blender's blender_ext.py (default: the one in the bpy package)")
    cmd.add_argument("--blender-ext-for", type=_validator, action="append", default=[],
                     dest="validators", metavar="PYTHON=PATH",
                     help="validate the zips for this Python with this Blender's blender_ext.py "
                     "(e.g. 3.13=.../bpy/5.2/scripts/addons_core/bl_pkg/cli/blender_ext.py)")
    cmd.add_argument("--matrix-dir", type=Path, default=defaults.matrix_dir,
                     help="the version matrix's cached venvs, whose Blender tools validate "
                     "the zips of the Blenders they are (default: %(default)s)")
    cmd.add_argument("-v", "--verbose", action="store_true", help="show the tools' output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    config = BuildConfig(out_dir=args.out, platforms=tuple(args.platforms or ()),
                         wheel_cache=args.wheel_cache, wheels_dir=args.wheels_dir,
                         pyzmq_version=args.pyzmq_version, blender_ext=args.blender_ext,
                         validators=tuple(args.validators), matrix_dir=args.matrix_dir)
    try:
        zips = build(config)
    except BuildError as exc:
        log.error("%s", exc)
        return 1
    for path in zips:
        print(path)
    return 0
