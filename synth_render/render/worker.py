"""A long-lived Blender render worker: ``python -m synth_render.render.worker SCRATCH_DIR``.

The parent (:mod:`synth_render.render.worker_client`) starts this module as a subprocess and
talks to it in JSON lines: one job per line on stdin, one reply per line on the protocol
stream. Blender and its importers print freely on stdout, so at start-up the worker moves the
real stdout to a private file descriptor for the protocol and points fd 1 at stderr; the
parent drains stderr for diagnostics. ``SCRATCH_DIR`` holds temporary frames; the parent
creates and removes it, so it goes away even when the worker is killed.

Messages:

* worker -> parent, once at start-up: ``{"ready": true, "pid": ..., "rss_mb": ...}``
* parent -> worker: a job (see :func:`render_job`) or ``{"op": "exit"}``
* worker -> parent, per job: ``{"ok": bool, "model_key", "error", "seconds", "rss_mb", "views"}``

A job that raises is answered with ``ok: false`` and the worker keeps serving; a segfault or a
hang is the parent's business (it kills and restarts the worker).

Test hook (tests only): the environment variable ``SYNTH_RENDER_WORKER_TEST_HOOK`` may hold a
JSON object mapping model keys to an action taken before that model is rendered:
``"crash"`` (the worker SIGKILLs itself, like a Blender segfault), ``"crash_once:<path>"``
(crash unless ``<path>`` exists, creating it first, so a retry succeeds) or ``"hang"``
(sleep for an hour). It is read only here and has no effect when unset.

This module and the ``style_*`` modules are the only ones that import bpy.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

from .. import frames, r2n2
from ..atomic import atomic_path
from .style import StyleContext, load_style

log = logging.getLogger(__name__)

TEST_HOOK_ENV = "SYNTH_RENDER_WORKER_TEST_HOOK"
FRAME_PREFIX = "f_"
MASK_PREFIX = "m_"  # object-pass frames
# Uncompressed Targa for the temporary frames: written and read back several times faster than
# PNG (even at compression 0), and lossless RGBA like it.
FRAME_FORMAT, FRAME_EXT = "TARGA_RAW", ".tga"


def rss_mb() -> float:
    """Current resident set size of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- scene set-up


def reset_scene():
    """Start every model from Blender's factory state: keeps a long-lived worker's memory flat."""
    import bpy

    # The factory startup file, without read_factory_settings' reset of preferences and
    # re-registration of every add-on (5x slower, and the worker changes no preferences).
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    bpy.data.orphans_purge(do_recursive=True)
    return bpy.context.scene


def import_mesh(path: str) -> list:
    """Import an OBJ (with its MTL materials when present); return the mesh objects."""
    import bpy

    if not Path(path).is_file():
        raise FileNotFoundError(f"mesh {path} does not exist")
    # ShapeNet is +Y up, -Z front; these are also the importer's defaults, spelled out because
    # r2n2.View.location_blender() depends on them.
    bpy.ops.wm.obj_import(filepath=str(path), forward_axis="NEGATIVE_Z", up_axis="Y")
    objects = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if sum(len(o.data.polygons) for o in objects) == 0:
        raise ValueError(f"{path}: no faces imported (corrupt or empty OBJ)")
    return objects


def canonical_turn_blender(mesh_frame: str) -> np.ndarray:
    """(3, 3) rotation, in Blender's coordinates after OBJ import, that turns a mesh of
    ``mesh_frame`` into the canonical frame (identity for the canonical frame itself)."""
    basis = np.eye(3)
    canonical = frames.to_canonical_points(r2n2.blender_to_shapenet(basis), mesh_frame)
    return r2n2.shapenet_to_blender(canonical).T  # column i: the image of basis vector i


def to_canonical_frame(objects, mesh_frame: str) -> None:
    """Turn imported objects of ``mesh_frame`` (ShapeNet v1: front +X) into the canonical
    frame; object transforms only."""
    if mesh_frame == frames.CANONICAL:
        return
    from mathutils import Matrix

    turn = Matrix(canonical_turn_blender(mesh_frame).tolist()).to_4x4()
    for obj in objects:
        obj.matrix_world = turn @ obj.matrix_world


def _world_vertices(obj) -> np.ndarray:
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    m = np.array(obj.matrix_world)
    return co @ m[:3, :3].T + m[:3, 3]


def normalize_objects(objects) -> None:
    """Centre on the joint bounding-box centre, scale to a unit bounding-box diagonal.

    ShapeNet v1 meshes fit a unit cube (a diagonal up to sqrt 3), other sources come in any
    units; v2 ones are already normalized (then this is a no-op up to rounding). Only object
    transforms change, never mesh data (cheap).
    """
    from mathutils import Matrix, Vector

    pts = np.concatenate([_world_vertices(o) for o in objects if len(o.data.vertices)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diag) or diag <= 0:
        raise ValueError("degenerate mesh: zero or non-finite bounding box")
    centre = Vector(((lo + hi) / 2).tolist())
    fix = Matrix.Scale(1.0 / diag, 4) @ Matrix.Translation(-centre)
    for obj in objects:
        obj.matrix_world = fix @ obj.matrix_world


def add_camera(scene):
    """R2N2's camera: 35 mm lens on a 32 mm sensor."""
    import bpy

    data = bpy.data.cameras.new("camera")
    data.lens = r2n2.LENS_MM
    data.sensor_width = r2n2.SENSOR_MM
    data.clip_start, data.clip_end = 0.01, 100.0
    cam = bpy.data.objects.new("camera", data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def aim_camera(cam, view: r2n2.View) -> None:
    """Place the camera at ``view`` looking at the origin, image up towards +Z."""
    from mathutils import Vector

    loc = Vector(view.location_blender().tolist())
    cam.location = loc
    cam.rotation_mode = "XYZ"
    cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()


def set_output(scene, tmp_dir: Path) -> None:
    """Frames go to uncompressed RGBA files in the worker's temp dir (the worker owns I/O)."""
    settings = scene.render.image_settings
    settings.file_format = FRAME_FORMAT
    settings.color_mode = "RGBA"
    scene.render.use_file_extension = True
    scene.render.filepath = str(tmp_dir / (FRAME_PREFIX + "####"))


# --------------------------------------------------------------------------- rendering


def render_views_animation(scene, cam, views, style, rng, ctx, tmp_dir: Path) -> list[Path]:
    """All views as one animation, camera keyframed per frame (Workbench: ~1.5x faster).

    ``configure_view`` still runs once per view; what it does to the camera transform is
    captured by the keyframes. Styles opt in with ``RENDER_AS_ANIMATION = True`` and must not
    change anything else per view.
    """
    import bpy

    for i, view in enumerate(views, start=1):
        aim_camera(cam, view)
        style.configure_view(scene, view, rng, ctx)
        cam.keyframe_insert("location", frame=i)
        cam.keyframe_insert("rotation_euler", frame=i)
    scene.frame_start, scene.frame_end = 1, len(views)
    bpy.ops.render.render(animation=True)
    return [tmp_dir / f"{FRAME_PREFIX}{i:04d}{FRAME_EXT}" for i in range(1, len(views) + 1)]


def render_views_single(scene, cam, views, style, rng, ctx, tmp_dir: Path,
                        cameras: list | None = None) -> list[Path]:
    """One render call per view (styles whose configure_view changes more than the camera).
    Each view's camera as rendered is appended to ``cameras`` (for the object pass)."""
    import bpy

    paths = []
    for i, view in enumerate(views, start=1):
        aim_camera(cam, view)
        style.configure_view(scene, view, rng, ctx)
        if cameras is not None:
            cameras.append(camera_state(cam))
        path = tmp_dir / f"{FRAME_PREFIX}{i:04d}{FRAME_EXT}"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths


def camera_state(cam) -> tuple:
    """What a view's jitter may change about the camera: transform, lens and shift."""
    # location and rotation, not matrix_world: Blender updates that only when it evaluates
    return (cam.location.copy(), cam.rotation_euler.copy(), cam.data.lens, cam.data.shift_x,
            cam.data.shift_y, cam.data.sensor_fit, cam.data.sensor_width)


def render_object_pass(scene, cam, cameras: list, style, tmp_dir: Path) -> list[Path]:
    """The object alone from each view's camera (the style's ``configure_object_pass`` hides
    floor and shadows): frames whose alpha is the object's exact coverage. Draws nothing from
    the style's generator, so the views' pixels are the same with or without it."""
    import bpy

    style.configure_object_pass(scene)
    paths = []
    for i, (location, rotation, lens, shift_x, shift_y, fit, width) in enumerate(cameras, 1):
        cam.location, cam.rotation_euler = location, rotation
        cam.data.lens, cam.data.shift_x, cam.data.shift_y = lens, shift_x, shift_y
        cam.data.sensor_fit, cam.data.sensor_width = fit, width
        path = tmp_dir / f"{MASK_PREFIX}{i:04d}{FRAME_EXT}"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths


def read_rgba(path: Path) -> np.ndarray:
    """A rendered frame as ``(H, W, 4) uint8``."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write atomically so an interrupted worker never leaves a truncated image."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")


def clear_previous(render_dir: Path, n_views: int) -> None:
    """Drop a partial earlier attempt: its index first (it is the completion marker)."""
    for name in (r2n2.METADATA_TXT, r2n2.RENDERINGS_TXT):
        (render_dir / name).unlink(missing_ok=True)
    for png in [*render_dir.glob("*.png"), *render_dir.glob(f"{r2n2.MASK_DIR}/*.png")]:
        if png.stem.isdigit() and int(png.stem) >= n_views:
            png.unlink()


def render_job(job: dict, tmp_dir: Path, styles: dict) -> int:
    """Render one model; return the number of views written.

    ``job`` keys: ``model_key``, ``mesh`` (OBJ path), ``mesh_frame`` (its frame, see
    :mod:`synth_render.frames`), ``out_dir`` (the model's ``rendering`` dir), ``views``
    (``[[azimuth, elevation, distance_ratio], ...]``), ``size``, ``style``,
    ``seed`` (a list of ints for the style's ``numpy`` generator), ``asset_split``, ``samples``.
    """
    _run_test_hook(job["model_key"])
    style = styles.get(job["style"]) or styles.setdefault(job["style"], load_style(job["style"]))
    views = [r2n2.View(*map(float, v)) for v in job["views"]]
    ctx = StyleContext(job["model_key"], job["asset_split"], int(job["size"]),
                       int(job.get("samples", 16)))
    rng = np.random.default_rng(job["seed"])
    out_dir = Path(job["out_dir"])

    scene = reset_scene()
    objects = import_mesh(job["mesh"])
    to_canonical_frame(objects, job.get("mesh_frame", frames.CANONICAL))
    normalize_objects(objects)
    cam = add_camera(scene)
    style.configure_scene(scene, objects, rng, ctx)
    for old in [*tmp_dir.glob(FRAME_PREFIX + "*"), *tmp_dir.glob(MASK_PREFIX + "*")]:
        old.unlink()
    set_output(scene, tmp_dir)
    cameras: list = []
    if getattr(style, "RENDER_AS_ANIMATION", False):
        frame_paths = render_views_animation(scene, cam, views, style, rng, ctx, tmp_dir)
    else:
        frame_paths = render_views_single(scene, cam, views, style, rng, ctx, tmp_dir, cameras)
    masked = hasattr(style, "configure_object_pass") and len(cameras) == len(views)
    mask_paths = render_object_pass(scene, cam, cameras, style, tmp_dir) if masked else []

    out_dir.mkdir(parents=True, exist_ok=True)
    clear_previous(out_dir, len(views))
    for i, frame in enumerate(frame_paths):
        if not masked:
            write_png(out_dir / r2n2.view_file_name(i),
                      style.postprocess(read_rgba(frame), rng, ctx))
            continue
        photo, mask = style.postprocess_with_mask(read_rgba(frame),
                                                  read_rgba(mask_paths[i])[..., 3], rng, ctx)
        write_png(out_dir / r2n2.view_file_name(i), photo)
        r2n2.mask_path(out_dir, i).parent.mkdir(exist_ok=True)
        write_png(r2n2.mask_path(out_dir, i), mask)
    r2n2.write_index(out_dir, views)  # last: marks the model complete
    return len(views)


def _run_test_hook(model_key: str) -> None:
    """Honour SYNTH_RENDER_WORKER_TEST_HOOK (see the module docstring); tests only."""
    spec = os.environ.get(TEST_HOOK_ENV)
    if not spec:
        return
    action = json.loads(spec).get(model_key)
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action and action.startswith("crash_once:"):
        marker = Path(action.split(":", 1)[1])
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    elif action == "hang":
        time.sleep(3600)


# --------------------------------------------------------------------------- main loop


def _handle(job: dict, tmp_dir: Path, styles: dict) -> dict:
    start = time.perf_counter()
    reply = {"model_key": job.get("model_key"), "ok": True, "error": None, "views": 0}
    try:
        reply["views"] = render_job(job, tmp_dir, styles)
    except Exception as exc:  # report any per-model failure and keep serving
        log.debug("job failed:\n%s", traceback.format_exc())
        reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    reply["seconds"] = time.perf_counter() - start
    reply["rss_mb"] = rss_mb()
    return reply


def main() -> int:
    """Serve jobs from stdin until EOF or ``{"op": "exit"}``."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Blender's own prints now go to stderr, never into the protocol
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="worker %(process)d %(levelname)s: %(message)s")
    import bpy  # noqa: F401  (import cost paid before "ready", not inside a job's timeout)

    tmp_dir = Path(sys.argv[1])  # the parent's scratch folder (it cleans up, even after kill)
    styles: dict = {}
    proto.write(json.dumps({"ready": True, "pid": os.getpid(), "rss_mb": rss_mb()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        if job.get("op") == "exit":
            break
        proto.write(json.dumps(_handle(job, tmp_dir, styles)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
