"""The add-on's live state and the main-thread side of the network thread.

:func:`drain` applies whatever the network thread reported: it imports meshes, updates the
progress and the status light, and reports failures. ``bpy.app.timers`` calls it several
times a second; tests (where timers may not fire in background mode) call it directly.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import bpy

from . import scene_import
from .images import model_view
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
from .orientation import upright_size
from .protocol_import import LocalDaemon, is_loopback

log = logging.getLogger(__name__)

BUSY_INTERVAL_S = 0.1
IDLE_INTERVAL_S = 0.5
PROBE_EVERY_S = 5.0


@dataclass
class ActiveJob:
    job_id: int
    placement: scene_import.Placement
    total: int
    done: int = 0
    imported: int = 0
    message: str = "sending"
    started: float = field(default_factory=time.monotonic)
    empty: list = field(default_factory=list)  # names of images without an object


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
    held: list = field(default_factory=list)  # events waiting for Object Mode

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
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def stop() -> None:
    """Unregister quickly (Blender calls this on quit too): cancel, do not wait long."""
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    cancel()
    if STATE.thread is not None:
        STATE.thread.stop(timeout_s=1.0)  # the cancel flag is polled every 50 ms
    if STATE.daemon is not None:
        STATE.daemon.stop(timeout_s=2.0)
    STATE.__init__()  # a fresh state for the next register()


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    """Opening another file: the running job's results belong to the old one."""
    cancel()
    STATE.held.clear()


def _tick() -> float:
    try:
        drain()
        _maybe_probe()
        _check_daemon()
    except Exception:  # a timer that raises is unregistered for good
        log.exception("unsup3d: error while applying results")
    return BUSY_INTERVAL_S if STATE.busy or STATE.held else IDLE_INTERVAL_S


def _maybe_probe() -> None:
    if STATE.busy or STATE.probe_pending or time.monotonic() - STATE.last_probe < PROBE_EVERY_S:
        return
    from .preferences import connection

    probe(connection())


def probe(conn: Connection) -> None:
    """Ask the network thread for the server's status (answer comes through :func:`drain`).

    A daemon on another machine is not contacted while Blender's online access is off.
    """
    if STATE.thread is None:
        return
    STATE.last_probe = time.monotonic()
    if not network_allowed(conn.endpoint):
        STATE.server = ServerStatus(conn.endpoint, False, "online access is off")
        return
    STATE.probe_pending = True
    STATE.thread.probe(conn)


def network_allowed(endpoint: str) -> bool:
    """Loopback always; anything else only with Blender's online access on."""
    try:
        return is_loopback(endpoint) or bool(bpy.app.online_access)
    except ValueError:  # a malformed address: let the client explain it
        return True


def start_daemon(prefs) -> LocalDaemon:
    """Start (or keep) the local daemon the preferences describe."""
    daemon = STATE.daemon
    if daemon is None or not daemon.running:
        checkpoint = bpy.path.abspath(prefs.daemon_checkpoint) if prefs.daemon_checkpoint \
            else None
        daemon = LocalDaemon(bpy.path.abspath(prefs.daemon_python), prefs.endpoint.strip(),
                             checkpoint)
        daemon.start()
        STATE.daemon = daemon
    return daemon


def _check_daemon() -> None:
    """A local daemon that died says why (the end of its log), once."""
    daemon = STATE.daemon
    if daemon is None or daemon.running:
        return
    STATE.daemon = None
    fail(daemon.exit_message() or "The local daemon stopped.",
         f"See its log: {daemon.log_path}")


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
    STATE.job = ActiveJob(job_id, placement, total)
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
    """Show a failure in the panel (the caller reports it) and stop the job, if any."""
    if STATE.job is not None and STATE.thread is not None:
        STATE.thread.cancel(STATE.job.job_id)  # the thread must not go on with it
    STATE.job = None
    STATE.error, STATE.hint = message, hint
    STATE.message = ""


# ------------------------------------------------------------------------------ drain


def drain(max_events: int = 100) -> int:
    """Apply up to ``max_events`` pending events on the main thread; returns how many.

    Meshes are imported only in Object Mode: while the user edits or sculpts, the job's
    results wait (the panel says so) instead of throwing them out of their mode.
    """
    if STATE.thread is None:
        return 0
    pending = STATE.held
    STATE.held = []
    handled = 0
    imported = []
    while handled < max_events:
        if pending:
            event = pending.pop(0)
        else:
            try:
                event = STATE.thread.events.get_nowait()
            except queue.Empty:
                break
        handled += 1
        if _must_wait(event):
            STATE.held.append(event)
            continue
        obj = _apply(event)
        if obj is not None:
            imported.append(obj)
    STATE.held.extend(pending)
    if STATE.held and STATE.job is not None:
        STATE.message = "result ready: switch to Object Mode to import it"
    if imported:
        _undo_push("Reconstruct " + ", ".join(o.name for o in imported))
    if handled:
        _redraw()
    return handled


def drain_until(done: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    """Drain as the timer would until ``done()`` or ``timeout_s``; whether ``done()``.

    For scripts and tests in background mode, where ``bpy.app.timers`` may not fire.
    """
    end = time.monotonic() + timeout_s
    while not done() and time.monotonic() < end:
        drain()
        time.sleep(every_s)
    drain()
    return done()


def _must_wait(event) -> bool:
    """Whether ``event`` must wait: results (and what follows them) outside Object Mode."""
    if isinstance(event, (ServerStatus, Progress)):
        return False
    if STATE.job is None or event.job_id != STATE.job.job_id:
        return False  # dropped by _apply anyway
    return bool(STATE.held) or getattr(bpy.context, "mode", "OBJECT") != "OBJECT"


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
        report("ERROR", f"{event.message} {event.hint}")
    elif isinstance(event, JobFinished):
        _finish(job)
    return None


def _finish(job: ActiveJob) -> None:
    STATE.job = None
    seconds = time.monotonic() - job.started
    if job.empty:
        missing = ", ".join(job.empty)
        fail(f"No object found in {missing} ({job.imported} of {job.total} imported).",
             "Lower the threshold (untick \"Model's threshold\"), crop the image to the "
             "object, or use a photo with a plainer background.")
        report("WARNING", f"{STATE.error} {STATE.hint}")
    elif job.imported:
        STATE.message = f"imported {job.imported} object(s) in {seconds:.1f} s"
    elif not STATE.error:
        STATE.message = "finished without a mesh"


def _import(job: ActiveJob, result: ImageResult):
    name = result.names[0] if len(result.names) == 1 else f"{result.names[0]} (fused)"
    if result.empty:  # this image only: the others go on
        job.empty.append(name)
        return None
    scene = bpy.data.scenes.get(job.placement.scene) or bpy.context.scene
    try:
        obj = _place(job, result, name, scene)
    except Exception as exc:  # an importer failure must not kill the job's bookkeeping
        log.exception("unsup3d: import failed")
        fail(f"Could not import the mesh for {name}: {exc}",
             "Try another mesh format in the options; the system console has details.")
        report("ERROR", STATE.error)
        return None
    job.imported += 1
    STATE.message = f"{job.imported}/{job.total} imported {obj.name} ({result.class_name})"
    return obj


def _place(job: ActiveJob, result: ImageResult, name: str, scene):
    placement = job.placement
    path = scene_import.save_mesh(result.mesh, name, result.format)
    # Results of one job side by side along X, the first at the cursor.
    x, y, z = placement.location
    location = (x + job.imported * placement.target_size * 1.25, y, z)
    obj = scene_import.import_and_place(path, result.format, name, scene, location,
                                        placement.target_size)
    image = bpy.data.images.get(placement.image_names.get(result.names[0], ""))
    camera = None
    if placement.align_camera:
        camera = scene_import.align_camera(obj, _model_view(placement, result, image),
                                           result.azimuth, result.elevation, scene)
    _add_history(scene, obj, camera, image, path, result,
                 placement.orientations.get(result.names[0], 1))
    return obj


def _model_view(placement, result: ImageResult, image):
    """The reference as the network saw it: the reply's framing square (an older server's
    reply has none: the crop box sent, if any) of the upright image."""
    if image is None:
        return None
    name = result.names[0]
    crop = result.framing or placement.crops.get(name)
    return model_view(image, placement.orientations.get(name, 1), crop)


def _add_history(scene, obj, camera, image, path, result: ImageResult,
                 orientation: int = 1) -> None:
    settings = scene.unsup3d
    item = settings.history.add()
    item.label = obj.name
    item.object = obj
    item.camera = camera
    item.image = image
    item.mesh_path = bpy.path.relpath(str(path)) if bpy.data.filepath else str(path)
    item.mesh_format = result.format
    item.class_name = result.class_name
    item.azimuth = result.azimuth
    item.elevation = result.elevation
    item.threshold = result.threshold
    item.seconds = result.seconds
    if result.framing is not None and image is not None:
        width, height = upright_size(*image.size, orientation)
        x, y, w, h = result.framing
        item.framing = (x / width, y / height, (x + w) / width, (y + h) / height)
    item.framing_source = result.framing_source
    item.framing_note = result.framing_note
    settings.active_history = len(settings.history) - 1


# ------------------------------------------------------------------------------ UI helpers


def report(level: str, message: str) -> None:
    """``report`` from a timer, into Blender's status bar and Info log.

    Reports of an operator called from Python stay with the caller, so a modal operator is
    started instead: Blender's window manager owns the reports of modal operators. Without a
    window (background mode) the message goes to the log; the panel shows it either way.
    """
    wm = bpy.context.window_manager
    window = wm.windows[0] if wm is not None and wm.windows else None
    if window is None:
        log.warning("%s", message)
        return
    try:
        with bpy.context.temp_override(window=window):
            bpy.ops.unsup3d.report("INVOKE_DEFAULT", level=level, message=message)
    except Exception:  # e.g. during unregister
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
