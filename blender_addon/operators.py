"""The add-on's operators: manage reference images, reconstruct, cancel, history, daemon."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import CollectionProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import runtime, scene_import
from .images import (
    ImageError,
    crop_box,
    image_payload,
    payload_orientation,
    scene_images,
)
from .preferences import connection, preferences
from .protocol_import import DaemonError


def _settings(context):
    return context.scene.unsup3d


def _add_reference(settings, image: bpy.types.Image) -> bool:
    if any(ref.image == image for ref in settings.references):
        return False
    settings.references.add().image = image
    settings.active_reference = len(settings.references) - 1
    return True


class UNSUP3D_OT_add_images(bpy.types.Operator, ImportHelper):
    """Add image files as references (several at once)"""

    bl_idname = "unsup3d.add_images"
    bl_label = "Add Image Files"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.png;*.jpg;*.jpeg;*.webp;*.bmp;*.tif;*.tiff",
                                options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN"})

    def execute(self, context):
        folder = Path(self.directory) if self.directory else Path(self.filepath).parent
        names = [f.name for f in self.files if f.name] or [Path(self.filepath).name]
        added = 0
        for name in names:
            try:
                image = bpy.data.images.load(str(folder / name), check_existing=True)
            except RuntimeError as exc:
                self.report({"WARNING"}, f"Cannot open {name}: {exc}")
                continue
            added += _add_reference(_settings(context), image)
        self.report({"INFO"}, f"Added {added} reference image(s)")
        return {"FINISHED"} if added else {"CANCELLED"}


class UNSUP3D_OT_add_scene_images(bpy.types.Operator):
    """Add the picked image, selected reference-image empties and images open in image
    editors"""

    bl_idname = "unsup3d.add_scene_images"
    bl_label = "Add From Blend File"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        candidates = ([settings.pick_image] if settings.pick_image else []) + \
            scene_images(context)
        added = sum(_add_reference(settings, image) for image in candidates)
        settings.pick_image = None
        if not added:
            self.report({"WARNING"}, "No new image: pick one in the field, select an image "
                                     "empty, or open one in an image editor")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Added {added} reference image(s)")
        return {"FINISHED"}


class UNSUP3D_OT_remove_image(bpy.types.Operator):
    """Remove the active reference image from the list (the image itself stays)"""

    bl_idname = "unsup3d.remove_image"
    bl_label = "Remove Reference"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1)

    def execute(self, context):
        settings = _settings(context)
        index = self.index if self.index >= 0 else settings.active_reference
        if not 0 <= index < len(settings.references):
            return {"CANCELLED"}
        settings.references.remove(index)
        settings.active_reference = min(index, len(settings.references) - 1)
        return {"FINISHED"}


class UNSUP3D_OT_clear_images(bpy.types.Operator):
    """Remove every reference image from the list"""

    bl_idname = "unsup3d.clear_images"
    bl_label = "Clear References"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        _settings(context).references.clear()
        return {"FINISHED"}


class UNSUP3D_OT_reconstruct(bpy.types.Operator):
    """Send the reference images to the daemon and import one mesh per image at the 3D
    cursor"""

    bl_idname = "unsup3d.reconstruct"
    bl_label = "Reconstruct"

    @classmethod
    def poll(cls, context):
        return not runtime.STATE.busy and len(_settings(context).references) > 0

    def execute(self, context):
        settings = _settings(context)
        conn = connection(context)
        if not runtime.network_allowed(conn.endpoint):
            return self._fail("Online access is off, and the daemon is not on this machine.",
                              "Allow online access in Preferences > System > Network, or "
                              "use a daemon on 127.0.0.1.")
        try:
            names, images, crops, orientations = _capture(settings)
        except (ImageError, OSError) as exc:
            return self._fail(str(exc), "Fix or remove that reference image.")
        options = {"format": settings.mesh_format, "smooth": settings.smooth}
        if not settings.use_model_threshold:
            options["threshold"] = settings.threshold
        placement = scene_import.Placement(
            scene=context.scene.name, location=tuple(context.scene.cursor.location),
            target_size=settings.target_size, align_camera=settings.align_camera,
            image_names={n: ref.image.name
                         for n, ref in zip(names, settings.references, strict=True)},
            orientations=dict(zip(names, orientations, strict=True)),
            crops=dict(zip(names, crops, strict=True)))
        try:
            runtime.submit(names, images, crops, conn, options, settings.fuse, placement)
        except RuntimeError as exc:
            return self._fail(str(exc), "")
        self.report({"INFO"}, f"Reconstructing {len(names)} image(s) on {conn.endpoint}")
        return {"FINISHED"}

    def _fail(self, message: str, hint: str):
        runtime.fail(message, hint)
        self.report({"ERROR"}, f"{message} {hint}".strip())
        return {"CANCELLED"}


def _capture(settings) -> tuple[list[str], list, list, list[int]]:
    """Names, payloads, crops and EXIF orientations of the references, read here on the main
    thread (the camera background is cut when the reply says what the network saw)."""
    names, images, crops, orientations = [], [], [], []
    for ref in settings.references:
        if ref.image is None:
            raise ImageError("a reference has no image (it was deleted); remove it")
        name = Path(ref.image.name).stem or ref.image.name
        names.append(name if name not in names else f"{name}.{len(names)}")
        payload = image_payload(ref.image)
        orientation = payload_orientation(payload)
        crop = crop_box(ref.image, ref.crop, orientation) if ref.use_crop else None
        images.append(payload)
        crops.append(crop)
        orientations.append(orientation)
    return names, images, crops, orientations


class UNSUP3D_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction (the daemon drops it; late results are discarded)"""

    bl_idname = "unsup3d.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return runtime.STATE.busy

    def execute(self, context):
        runtime.cancel()
        self.report({"INFO"}, "Reconstruction cancelled")
        return {"FINISHED"}


class UNSUP3D_OT_report(bpy.types.Operator):
    """Show a message from the add-on in the status bar (results that arrive later)"""

    bl_idname = "unsup3d.report"
    bl_label = "Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=[(k, k, "") for k in ("INFO", "WARNING", "ERROR")])
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        # Modal for one tick: the window manager keeps (and shows) a modal operator's reports.
        self._timer = context.window_manager.event_timer_add(0.01, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        self.report({self.level}, self.message)
        return {"FINISHED"}


class UNSUP3D_OT_refresh_status(bpy.types.Operator):
    """Ask the daemon whether it is up"""

    bl_idname = "unsup3d.refresh_status"
    bl_label = "Refresh Server Status"

    def execute(self, context):
        runtime.probe(connection(context))
        return {"FINISHED"}


class UNSUP3D_OT_history_select(bpy.types.Operator):
    """Select the object of a history entry and make it active"""

    bl_idname = "unsup3d.history_select"
    bl_label = "Select Result"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1)

    def execute(self, context):
        item = _history_item(context, self.index)
        if item is None or not is_in_scene(item.object) or \
                item.object.name not in context.view_layer.objects:
            self.report({"WARNING"}, "That result's object is no longer in the scene; "
                                     "use Re-import")
            return {"CANCELLED"}
        for obj in context.selected_objects:
            obj.select_set(False)
        item.object.select_set(True)
        context.view_layer.objects.active = item.object
        return {"FINISHED"}


class UNSUP3D_OT_history_use_framing(bpy.types.Operator):
    """Make the square the network saw the reference's crop box, to adjust and reconstruct
    again (a crop box marks the object; the daemon re-frames it the same way)"""

    bl_idname = "unsup3d.history_use_framing"
    bl_label = "Use Framing as Crop"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1)

    def execute(self, context):
        item = _history_item(context, self.index)
        if item is None or not item.framing_source:
            return {"CANCELLED"}
        refs = [r for r in _settings(context).references if r.image == item.image]
        if not refs:
            self.report({"ERROR"}, "Its reference image is no longer in the list; add it again.")
            return {"CANCELLED"}
        box = tuple(min(max(v, 0.0), 1.0) for v in item.framing)  # the image part of it
        for ref in refs:
            ref.crop, ref.use_crop = box, True
        self.report({"INFO"}, f"Crop box of {item.image.name} set to the framing")
        return {"FINISHED"}


class UNSUP3D_OT_history_reimport(bpy.types.Operator):
    """Import the mesh file of a history entry again, at the 3D cursor"""

    bl_idname = "unsup3d.history_reimport"
    bl_label = "Re-import Result"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1)

    def execute(self, context):
        item = _history_item(context, self.index)
        if item is None:
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(item.mesh_path))
        if not path.is_file():
            self.report({"ERROR"}, f"The mesh file is gone: {path}")
            return {"CANCELLED"}
        try:
            obj = scene_import.import_and_place(path, item.mesh_format, item.label,
                                                context.scene,
                                                tuple(context.scene.cursor.location),
                                                _settings(context).target_size)
        except (RuntimeError, ValueError, OSError) as exc:
            self.report({"ERROR"}, f"Cannot re-import {path.name}: {exc}. The file may be "
                                   "damaged; reconstruct the image again.")
            return {"CANCELLED"}
        if not is_in_scene(item.object):  # the original was deleted: the entry now points here
            item.object = obj
        self.report({"INFO"}, f"Re-imported {obj.name}")
        return {"FINISHED"}


def is_in_scene(obj) -> bool:
    """Deleted objects linger in bpy.data while the history points at them."""
    return obj is not None and len(obj.users_collection) > 0


def _history_item(context, index: int):
    settings = _settings(context)
    index = index if index >= 0 else settings.active_history
    return settings.history[index] if 0 <= index < len(settings.history) else None


class UNSUP3D_OT_daemon_start(bpy.types.Operator):
    """Start a reconstruction daemon on this machine with the Python set in the preferences"""

    bl_idname = "unsup3d.daemon_start"
    bl_label = "Start Daemon"

    def execute(self, context):
        prefs = preferences(context)
        try:
            daemon = runtime.start_daemon(prefs)
        except (DaemonError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Daemon starting on {prefs.endpoint} (log: {daemon.log_path})")
        return {"FINISHED"}


class UNSUP3D_OT_daemon_stop(bpy.types.Operator):
    """Stop the daemon this add-on started"""

    bl_idname = "unsup3d.daemon_stop"
    bl_label = "Stop Daemon"

    def execute(self, context):
        if runtime.STATE.daemon is None:
            self.report({"WARNING"}, "No daemon was started from Blender")
            return {"CANCELLED"}
        runtime.STATE.daemon.stop_in_background()  # it drains first: the UI must not wait
        runtime.STATE.daemon = None
        self.report({"INFO"}, "Daemon stopping")
        return {"FINISHED"}


CLASSES = (UNSUP3D_OT_add_images, UNSUP3D_OT_add_scene_images, UNSUP3D_OT_remove_image,
           UNSUP3D_OT_clear_images, UNSUP3D_OT_reconstruct, UNSUP3D_OT_cancel,
           UNSUP3D_OT_report, UNSUP3D_OT_refresh_status, UNSUP3D_OT_history_select,
           UNSUP3D_OT_history_use_framing, UNSUP3D_OT_history_reimport,
           UNSUP3D_OT_daemon_start, UNSUP3D_OT_daemon_stop)
