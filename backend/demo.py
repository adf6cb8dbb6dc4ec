"""``python -m backend demo``: the main job end to end on built-in data.

Held-out procedural shapes (seed >= 1000, never training data) -> photo-style renders (the
inputs) and 32³ voxels (the ground truth) -> the daemon (``python -m backend serve``, a
subprocess on a free loopback port) -> every input reconstructed through it with the
project's client (:class:`backend.protocol.ReconClient`) -> meshes, ``gallery.png``
(input | prediction | ground truth), ``metrics.md``/``metrics.json`` (IoU per input) -> the
Blender add-on zip -> the daemon stopped (also on errors and Ctrl-C).

The data part is :func:`synth_render.demo.build_demo_data`; this process never imports torch
(the daemon does the inference).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backend.core.checkpoint import DEFAULT_WEIGHTS
from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    non_negative_int,
    positive_int,
)
from backend.protocol.client import ClientError, ReconClient, ServerUnavailable
from backend.protocol.daemon_process import DaemonError, LocalDaemon
from backend.protocol.messages import MESH_FORMATS
from synth_render import r2n2
from synth_render.atomic import atomic_write_text
from synth_render.demo import DEMO_SEED, DemoData, Steps, build_demo_data, data_steps
from synth_render.taxonomy import class_name, resolve_classes

log = logging.getLogger(__name__)

STEPS_AFTER_DATA = 6  # daemon, reconstruct, gallery, metrics, add-on, stop
INPUT_STYLES = ("photo", "synthetic")


@dataclass
class DemoConfig:
    """Everything ``python -m backend demo`` can be told."""

    out: Path = arg(Path("work/demo"), "folder for everything the demo writes")
    classes: str = arg("airplane,car,chair,lamp,sofa,table",
                       "comma-separated class names or synset ids ('all': the 13 classes)")
    per_class: int = arg(2, "shapes per class", type=positive_int)
    views: int = arg(1, "rendered views (inputs) per shape and style", type=positive_int)
    size: int = arg(128, "input image size in pixels", type=positive_int)
    seed: int = arg(DEMO_SEED, "shape seed; >= 1000 keeps demo shapes out of the training "
                               "data (seeds < 1000)")
    styles: tuple[str, ...] = arg(INPUT_STYLES, "input render styles: photo (the stand-in for "
                                                "real photos) and/or synthetic (the look of the "
                                                "training renders; shows the domain gap)")
    checkpoint: Path = arg(DEFAULT_WEIGHTS, "weights the daemon serves")
    format: str = arg("glb", "mesh format of the written meshes")
    workers: int = arg(2, "Blender render worker processes", flag="render_workers",
                       aliases=("--workers",), type=positive_int)
    port: int = arg(0, "daemon port on 127.0.0.1 (0: pick a free one)", type=non_negative_int)
    start_timeout: float = arg(120.0, "seconds to wait for the daemon to answer health")
    request_timeout: float = arg(60.0, "seconds per reconstruct request")
    addon: bool = arg(True, "build the Blender add-on zip (python -m blender_addon build)")
    reframed: int = arg(2, "photo inputs also sent framed as users frame photos (a close-up "
                           "and a wide shot each), to show the daemon's automatic framing")
    foreground: str = arg("shipped", "the model the daemon frames opaque photos with "
                                     "(none, shipped or a path); the photo-style renders, "
                                     "framed like the training renders, are sent with "
                                     "autocrop off", metavar="none|shipped|PATH")


@dataclass
class InputImage:
    """One demo input: a rendered view of a held-out shape, with its ground truth."""

    name: str
    style: str
    synset: str
    model_id: str
    image: Path
    voxels: Path
    view: r2n2.View


@dataclass
class Reconstruction:
    """What the daemon returned for one input, scored against the ground truth."""

    input: InputImage
    predicted_class: str
    iou: float | None  # None: nothing reached the threshold and there is no ground truth grid
    mesh: Path | None
    probs: np.ndarray
    threshold: float
    framing: str = ""  # where the daemon's framing came from (alpha, mask, user, none)


# ------------------------------------------------------------------------------ the steps


def run(cfg: DemoConfig) -> int:
    """The whole demo; returns an exit code (1 when any step had failures)."""
    _check_config(cfg)
    started = time.monotonic()
    cfg.out.mkdir(parents=True, exist_ok=True)
    steps = Steps(data_steps(cfg.styles) + STEPS_AFTER_DATA, log)
    data = build_demo_data(cfg.out, resolve_classes(cfg.classes), cfg.per_class, cfg.views,
                           cfg.size, cfg.seed, cfg.workers, cfg.styles, steps)
    inputs = find_inputs(data, cfg.views)
    if not inputs:
        log.error("no rendered inputs under %s", cfg.out)
        return 1
    inputs += reframed_inputs(inputs, cfg.out / "reframed", cfg.reframed, cfg.seed)
    copy_inputs(inputs, cfg.out / "inputs")
    daemon_log = cfg.out / "daemon.log"
    steps("starting the daemon (weights %s; its log: %s)", cfg.checkpoint, daemon_log)
    with running_daemon(cfg.checkpoint, cfg.port, daemon_log, cfg.start_timeout,
                        cfg.foreground) as endpoint:
        steps("reconstructing %d input(s) through the daemon at %s", len(inputs), endpoint)
        results, failed = reconstruct_all(inputs, endpoint, cfg.out / "meshes", cfg.format,
                                          cfg.request_timeout)
        gallery = cfg.out / "gallery.png"
        steps("rendering the gallery (input | prediction | ground truth) into %s", gallery)
        write_demo_gallery(results, gallery, cfg.workers)
        steps("writing the metrics table")
        table = write_metrics(results, cfg.out)
        print(table)
        addon = cfg.out / "addon"
        steps("building the Blender add-on zip into %s", addon)
        addon_ok = build_addon(addon) if cfg.addon else _skip_addon()
        steps("stopping the daemon")
    failures = data.failures + failed + (0 if addon_ok else 1)
    _print_locations(cfg.out, data, addon if cfg.addon else None)
    log.info("demo finished in %.0f s%s", time.monotonic() - started,
             f" with {failures} failure(s)" if failures else "")
    return 1 if failures else 0


def _check_config(cfg: DemoConfig) -> None:
    bad = set(cfg.styles) - set(INPUT_STYLES)
    if bad or not cfg.styles:
        raise ValueError(f"--styles must be some of {INPUT_STYLES}, got {cfg.styles}")
    if cfg.format not in MESH_FORMATS:
        raise ValueError(f"--format must be one of {MESH_FORMATS}, got {cfg.format!r}")
    if min(cfg.per_class, cfg.views) < 1:
        raise ValueError("--per-class and --views must be at least 1")


def find_inputs(data: DemoData, views: int) -> list[InputImage]:
    """Every complete rendered view, per shape, style and view index (a shape's styles share
    their viewpoints, so its rows sit together for comparison)."""
    inputs = []
    for ref in data.models():
        for style, renders in data.renders.items():
            rdir = r2n2.rendering_dir(renders, ref.synset, ref.model_id)
            if not r2n2.is_complete(rdir, views):
                log.warning("%s: %s renders incomplete in %s; skipped", ref.key, style, rdir)
                continue
            metadata = r2n2.read_metadata(rdir)
            for i in range(views):
                inputs.append(InputImage(
                    f"{class_name(ref.synset)}_{ref.model_id[:8]}_{style}_{i:02d}", style,
                    ref.synset, ref.model_id, rdir / r2n2.view_file_name(i),
                    r2n2.voxel_path(data.voxels, ref.synset, ref.model_id), metadata[i]))
    return inputs


REFRAMINGS = ("fill95", "small35")  # a close-up and a wide shot (see backend.data.reframing)


def reframed_inputs(inputs: list[InputImage], dest: Path, n: int, seed: int
                    ) -> list[InputImage]:
    """The first ``n`` photo-style inputs with object masks framed as a close-up and as a
    wide shot (composited through their mask into held-out background photos)."""
    from backend.data.reframing import reframe

    out = []
    photos = [i for i in inputs if i.style == "photo"
              and r2n2.mask_path(i.image.parent, int(i.image.stem)).is_file()][:n]
    dest.mkdir(parents=True, exist_ok=True)
    for item in photos:
        with Image.open(item.image) as im:
            photo = np.asarray(im.convert("RGB"))
        with Image.open(r2n2.mask_path(item.image.parent, int(item.image.stem))) as im:
            mask = np.asarray(im.convert("L"))
        for k, variant in enumerate(REFRAMINGS):
            image = reframe(photo, mask, variant, np.random.default_rng([seed, k]))[0]
            path = dest / f"{item.name}_{variant}.png"
            Image.fromarray(image).save(path)
            out.append(InputImage(f"{item.name}_{variant}", f"photo {variant}", item.synset,
                                  item.model_id, path, item.voxels, item.view))
    return out


def copy_inputs(inputs: list[InputImage], dest: Path) -> None:
    """The inputs under readable names (``chair_5d09b604_photo_00.png``), to try by hand."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in inputs:
        shutil.copyfile(item.image, dest / f"{item.name}.png")
    log.info("%d input image(s) in %s", len(inputs), dest)


# ------------------------------------------------------------------------------ the daemon


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_daemon(checkpoint: Path, port: int, log_path: Path, start_timeout_s: float,
                   foreground: str | None = None) -> Iterator[str]:
    """``python -m backend serve`` as a subprocess (``--foreground`` when given); yields its
    endpoint once it answers ``health``, and stops it on the way out, whatever happened
    (SIGTERM, then SIGKILL)."""
    endpoint = f"tcp://127.0.0.1:{port or free_port()}"
    daemon = LocalDaemon(sys.executable, endpoint, str(checkpoint), str(log_path), foreground)
    daemon.start()
    try:
        try:
            daemon.wait_ready(start_timeout_s)
        except DaemonError as exc:
            raise RuntimeError(f"{exc}\n{daemon.exit_message(lines=20) or ''}") from exc
        log.info("daemon serving on %s", endpoint)
        yield endpoint
    finally:
        log.info("daemon stopped (exit code %s)", daemon.stop(timeout_s=20.0))


# ------------------------------------------------------------------------------ reconstruct


def reconstruct_all(inputs: list[InputImage], endpoint: str, meshes: Path, fmt: str,
                    timeout_s: float) -> tuple[list[Reconstruction], int]:
    """Send each input to the daemon, write its mesh and score its voxels; also how many
    inputs failed. A refused input is logged and skipped; a daemon that stops answering ends
    the loop, keeping what was done for the gallery and the metrics."""
    from tqdm import tqdm

    meshes.mkdir(parents=True, exist_ok=True)
    results = []
    with ReconClient(endpoint, timeout_s=timeout_s, retries=1) as client:
        for item in tqdm(inputs, unit="image", desc="reconstruct"):
            try:
                # a photo framed like the renders is best used whole (README, known limits)
                reply = client.reconstruct([item.image.read_bytes()], format=fmt,
                                           outputs=["mesh", "voxels"],
                                           autocrop=item.style != "photo")
            except ServerUnavailable as exc:
                log.error("the daemon stopped answering (%s); %d input(s) not reconstructed",
                          exc, len(inputs) - len(results))
                break
            except (ClientError, OSError) as exc:
                log.error("%s: %s", item.name, exc)
                continue
            mesh = None
            if reply.mesh is not None:
                mesh = meshes / f"{item.name}.{fmt}"
                mesh.write_bytes(reply.mesh)
            framing = (reply.framing or [{}])[0].get("source", "")
            results.append(Reconstruction(item, reply.views[0].class_name,
                                          _iou(reply.voxels, item.voxels, reply.threshold),
                                          mesh, reply.voxels, reply.threshold, framing))
    return results, len(inputs) - len(results)


def _iou(probs: np.ndarray, voxel_file: Path, threshold: float) -> float | None:
    from backend.core.metrics import voxel_iou

    if not voxel_file.is_file():
        return None
    gt = r2n2.read_voxels(voxel_file).grid
    return float(voxel_iou(probs, gt, threshold))


# ------------------------------------------------------------------------------ outputs


def write_demo_gallery(results: list[Reconstruction], path: Path, workers: int) -> None:
    """``gallery.png`` through :func:`backend.evaluation.gallery.write_gallery`."""
    from backend.evaluation.gallery import GalleryRow, write_gallery

    rows = []
    for r in results:
        gt = r2n2.read_voxels(r.input.voxels).grid if r.input.voxels.is_file() else None
        with Image.open(r.input.image) as im:
            image = im.convert("RGBA")
        label = f"{class_name(r.input.synset)} ({r.input.style})\nIoU {_fmt(r.iou)}"
        view = (r.input.view.azimuth, r.input.view.elevation, r.input.view.distance_ratio)
        rows.append(GalleryRow(image, label, r.probs, r.threshold, gt, view))
    if not rows:
        log.warning("no reconstruction to show: %s not written", path)
        return
    write_gallery(rows, path, workers)


def metrics_markdown(results: list[Reconstruction]) -> str:
    """The IoU of every input and the mean per style, as a Markdown table."""
    lines = ["| input | class | style | framed by | predicted class | IoU |",
             "| --- | --- | --- | --- | --- | ---: |"]
    for r in results:
        lines.append(f"| {r.input.name} | {class_name(r.input.synset)} | {r.input.style} | "
                     f"{r.framing} | {r.predicted_class} | {_fmt(r.iou)} |")
    for style in dict.fromkeys(r.input.style for r in results):
        ious = [r.iou for r in results if r.input.style == style and r.iou is not None]
        mean = _fmt(float(np.mean(ious))) if ious else "n/a"
        lines.append(f"| **mean of {len(ious)}** | | {style} | | | **{mean}** |")
    return "\n".join(lines) + "\n"


def write_metrics(results: list[Reconstruction], out: Path) -> str:
    """``metrics.md`` and ``metrics.json``; returns the Markdown."""
    threshold = results[0].threshold if results else float("nan")
    table = (f"IoU of each reconstruction against the voxelized ground truth (32³, "
             f"threshold {threshold:.2f}):\n\n" + metrics_markdown(results))
    atomic_write_text(out / "metrics.md", table)
    records = [{**asdict(r.input), "image": str(r.input.image), "voxels": str(r.input.voxels),
                "predicted_class": r.predicted_class, "iou": r.iou, "threshold": r.threshold,
                "mesh": str(r.mesh) if r.mesh else None, "framing": r.framing}
               for r in results]
    atomic_write_text(out / "metrics.json", json.dumps(records, indent=2))
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# ------------------------------------------------------------------------------ the add-on


def build_addon(out: Path) -> bool:
    """``python -m blender_addon build --out OUT``; whether it succeeded."""
    cmd = [sys.executable, "-m", "blender_addon", "build", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log.error("add-on build failed (%s, exit code %d):\n%s", " ".join(cmd),
                  proc.returncode, (proc.stdout + proc.stderr)[-2000:])
        return False
    zips = sorted(out.glob("*.zip"))
    log.info("add-on: %s", ", ".join(map(str, zips)) or f"(no zip in {out})")
    return bool(zips)


def _skip_addon() -> bool:
    log.info("add-on build skipped (--no-addon)")
    return True


def _print_locations(out: Path, data: DemoData, addon: Path | None) -> None:
    rows = [("inputs", out / "inputs"), ("shapes", data.shapes),
            ("renders", "  ".join(str(p) for p in data.renders.values())),
            ("voxels", data.voxels), ("meshes", out / "meshes"),
            ("gallery", out / "gallery.png"), ("metrics", out / "metrics.md"),
            ("daemon log", out / "daemon.log")]
    if addon is not None:
        rows.append(("add-on", addon))
    print("\n".join(f"{name:<11}{where}" for name, where in rows))


# ------------------------------------------------------------------------------ command


def add_demo_parser(sub) -> None:
    """``demo`` subcommand."""
    p = sub.add_parser("demo", help="the main job end to end on built-in data",
                       description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_arguments(p, DemoConfig, choices={"format": list(MESH_FORMATS)})
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    try:
        return run(dataclass_from_args(DemoConfig, args))
    except (ValueError, RuntimeError, ServerUnavailable) as exc:
        log.error("%s", exc)
        return 1
