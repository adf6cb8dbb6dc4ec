"""The add-on's live state and the main-thread side of the network thread.

:func:`drain` applies whatever the network thread reported: it imports meshes, updates the
progress and the status light, and reports failures. ``bpy.app.timers`` calls it several
times a second; tests (where timers may not fire in background mode) call it directly.
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass, field

import bpy

from . import scene_import
from .jobs import (
    Connection,
    ImageResult,
    JobFailed,
    JobFinished,
    NetworkThread,
    Progress,
    ReconstructJob,
    ServerStatus,
)
from .local_daemon import LocalDaemon

log = logging.getLogger(__name__)

BUSY_INTERVAL_S = 0.1
IDLE_INTERVAL_S = 0.5
PROBE_EVERY_S = 5.0


@dataclass
class ActiveJob:
    job_id: int
    placement: scene_import.Placement
    total: int
    format: str
    done: int = 0
    imported: int = 0
    message: str = "sending"
    started: float = field(default_factory=time.monotonic)


@dataclass
class State:
    """Everything transient (not saved): the thread, the running job, the last outcome."""

    thread: NetworkThread | None = None
    job: ActiveJob | None = None
    next_job_id: int = 1
    message: str = ""
    error: str = ""
    hint: str = ""
    server: ServerStatus | None = None
    probe_pending: bool = False
    last_probe: float = 0.0
    daemon: LocalDaemon | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None


STATE = State()


# ------------------------------------------------------------------------------ lifecycle


def start() -> None:
    STATE.thread = NetworkThread()
    STATE.thread.start()
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=IDLE_INTERVAL_S, persistent=True)


def stop() -> None:
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if STATE.thread is not None:
        STATE.thread.stop()
    if STATE.daemon is not None:
        STATE.daemon.stop()
    STATE.__init__()  # a fresh state for the next register()


def _tick() -> float:
    try:
        drain()
        _maybe_probe()
    except Exception:  # a timer that raises is unregistered for good
        log.exception("unsup3d: error while applying results")
    return BUSY_INTERVAL_S if STATE.busy else IDLE_INTERVAL_S


def _maybe_probe() -> None:
    if STATE.busy or STATE.probe_pending or time.monotonic() - STATE.last_probe < PROBE_EVERY_S:
        return
    from .preferences import connection

    probe(connection())


def probe(conn: Connection) -> None:
    """Ask the network thread for the server's status (answer comes through :func:`drain`)."""
    if STATE.thread is None:
        return
    STATE.probe_pending = True
    STATE.last_probe = time.monotonic()
    STATE.thread.probe(conn)


# ------------------------------------------------------------------------------ jobs


def submit(names: list[str], images: list, crops: list, conn: Connection, options: dict,
           fuse: bool, placement: scene_import.Placement) -> int:
    """Hand a job to the network thread; returns its id."""
    if STATE.thread is None:
        raise RuntimeError("the add-on is not registered")
    if STATE.busy:
        raise RuntimeError("a reconstruction is already running; cancel it first")
    job_id = STATE.next_job_id
    STATE.next_job_id += 1
    total = 1 if fuse else len(images)
    STATE.job = ActiveJob(job_id, placement, total, options.get("format", "glb"))
    STATE.error = STATE.hint = ""
    STATE.message = f"sending {len(images)} image(s)"
    STATE.thread.submit(ReconstructJob(job_id, tuple(names), tuple(images), conn, options,
                                       fuse, tuple(crops) if any(crops) else ()))
    return job_id


def cancel() -> bool:
    """Cancel the running job: the daemon is told, late results are discarded."""
    if STATE.job is None:
        return False
    if STATE.thread is not None:
        STATE.thread.cancel(STATE.job.job_id)
    STATE.message = f"cancelled ({STATE.job.imported} of {STATE.job.total} imported)"
    STATE.job = None
    return True


def fail(message: str, hint: str) -> None:
    """Show a failure in the panel (and let the caller ``report`` it)."""
    STATE.job = None
    STATE.error, STATE.hint = message, hint
    STATE.message = ""


# ------------------------------------------------------------------------------ drain


def drain(max_events: int = 100) -> int:
    """Apply up to ``max_events`` pending events on the main thread; returns how many."""
    if STATE.thread is None:
        return 0
    handled = 0
    imported = []
    while handled < max_events:
        try:
            event = STATE.thread.events.get_nowait()
        except queue.Empty:
            break
        handled += 1
        obj = _apply(event)
        if obj is not None:
            imported.append(obj)
    if imported:
        _undo_push("Reconstruct " + ", ".join(o.name for o in imported))
    if handled:
        _redraw()
    return handled


def _apply(event):
    if isinstance(event, ServerStatus):
        STATE.probe_pending = False
        STATE.server = event
        return None
    job = STATE.job
    if job is None or event.job_id != job.job_id:
        return None  # a late event of a cancelled or failed job
    if isinstance(event, Progress):
        job.done, job.message = event.done, event.message
        STATE.message = f"{event.done}/{event.total} {event.message}"
    elif isinstance(event, ImageResult):
        return _import(job, event)
    elif isinstance(event, JobFailed):
        fail(event.message, event.hint)
        _report("ERROR", f"{event.message} {event.hint}")
    elif isinstance(event, JobFinished):
        STATE.job = None
        if job.imported:
            STATE.message = f"imported {job.imported} object(s) in " \
                            f"{time.monotonic() - job.started:.1f} s"
        elif not STATE.error:
            STATE.message = "finished without a mesh"
    return None


def _import(job: ActiveJob, result: ImageResult):
    name = result.names[0] if len(result.names) == 1 else f"{result.names[0]} (fused)"
    if result.empty:
        fail(f"The daemon found no object in {name} at threshold {result.threshold:.2f}.",
             "Lower the threshold (untick \"Model's threshold\"), crop the image to the "
             "object, or use a photo with a plainer background.")
        _report("WARNING", STATE.error)
        return None
    scene = bpy.data.scenes.get(job.placement.scene) or bpy.context.scene
    try:
        obj = _place(job, result, name, scene)
    except Exception as exc:  # an importer failure must not kill the job's bookkeeping
        log.exception("unsup3d: import failed")
        fail(f"Could not import the mesh for {name}: {exc}",
             "Try another mesh format in the options.")
        _report("ERROR", STATE.error)
        return None
    job.imported += 1
    STATE.message = f"{job.imported}/{job.total} imported {obj.name} ({result.class_name})"
    return obj


def _place(job: ActiveJob, result: ImageResult, name: str, scene):
    placement = job.placement
    path = scene_import.save_mesh(result.mesh, name, result.format, job.job_id)
    obj = scene_import.import_mesh_file(path, result.format)
    # Results of one job side by side along X, the first at the cursor.
    x, y, z = placement.location
    location = (x + job.imported * placement.target_size * 1.25, y, z)
    scene_import.place_object(obj, name, scene, location, placement.target_size)
    image = bpy.data.images.get(placement.image_names.get(result.names[0], ""))
    camera = None
    if placement.align_camera:
        camera = scene_import.align_camera(obj, image, result.azimuth, result.elevation, scene)
    _add_history(scene, obj, camera, image, path, result)
    return obj


def _add_history(scene, obj, camera, image, path, result: ImageResult) -> None:
    settings = scene.unsup3d
    item = settings.history.add()
    item.label = obj.name
    item.object = obj
    item.camera = camera
    item.image = image
    item.mesh_path = str(path)
    item.mesh_format = result.format
    item.class_name = result.class_name
    item.azimuth = result.azimuth
    item.elevation = result.elevation
    item.threshold = result.threshold
    item.seconds = result.seconds
    settings.active_history = len(settings.history) - 1


# ------------------------------------------------------------------------------ UI helpers


def _report(level: str, message: str) -> None:
    """``report`` from outside an operator: through a tiny operator that reports."""
    try:
        bpy.ops.unsup3d.report(level=level, message=message)
    except Exception:  # no operator context (e.g. during unregister): the panel still shows it
        log.warning("%s", message)


def _undo_push(message: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:  # no undo stack (background mode)
        pass


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm else ():
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES"):
                area.tag_redraw()
