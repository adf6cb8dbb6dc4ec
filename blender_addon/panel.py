"""The sidebar tab in the 3D viewport (drawing only: no network, no state changes)."""

from __future__ import annotations

import textwrap

import bpy

from . import runtime
from .operators import is_in_scene
from .preferences import connection

CATEGORY = "Reconstruct"


class UNSUP3D_UL_references(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property,
                  index=0, flt_flag=0):
        image = item.image
        if image is None:
            layout.label(text="(missing image)", icon="ERROR")
            return
        row = layout.row(align=True)
        row.label(text=image.name, icon_value=layout.icon(image))
        row.prop(item, "use_crop", text="", icon="SELECT_SET", emboss=False)


class UNSUP3D_UL_history(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property,
                  index=0, flt_flag=0):
        row = layout.row(align=True)
        icon = "OUTLINER_OB_MESH" if is_in_scene(item.object) else "GHOST_DISABLED"
        row.label(text=item.label, icon=icon)
        row.label(text=item.class_name)


class UNSUP3D_PT_base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY


class VIEW3D_PT_unsup3d_recon(UNSUP3D_PT_base, bpy.types.Panel):
    """Server status, Reconstruct / Cancel and progress."""

    bl_label = "Photo to 3D"

    def draw(self, context):
        layout = self.layout
        state = runtime.STATE
        _draw_server(layout, context, state)
        settings = context.scene.unsup3d
        col = layout.column(align=True)
        if state.busy:
            job = state.job
            col.progress(factor=job.done / max(job.total, 1),
                         text=f"{job.done}/{job.total} {job.message}")
            col.operator("unsup3d.cancel", icon="CANCEL")
        else:
            col.scale_y = 1.4
            col.operator("unsup3d.reconstruct", icon="MESH_MONKEY",
                         text=f"Reconstruct {len(settings.references)} image(s)")
        if state.error:
            box = layout.box()
            _wrapped_label(box, context, state.error, "ERROR")
            if state.hint:
                _wrapped_label(box, context, state.hint, "INFO")
        elif state.message:
            layout.label(text=state.message, icon="CHECKMARK")


def _wrapped_label(layout, context, text: str, icon: str) -> None:
    """A long message as several labels (Blender's labels do not wrap), the icon on the
    first; about 7 px per character at the region's width."""
    region = getattr(context, "region", None)
    width = max(20, int((region.width if region else 420) / 7))
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


def _draw_server(layout, context, state) -> None:
    row = layout.row(align=True)
    server = state.server
    endpoint = connection(context).endpoint
    if server is None or server.endpoint != endpoint:
        row.label(text=f"{endpoint}: checking", icon="SORTTIME")
    elif server.ok:
        row.label(text=f"{server.model} on {server.device}", icon="CHECKMARK")
    else:
        row.label(text=f"{endpoint}: {server.message}", icon="CANCEL")
    row.operator("unsup3d.refresh_status", text="", icon="FILE_REFRESH")


class VIEW3D_PT_unsup3d_references(UNSUP3D_PT_base, bpy.types.Panel):
    bl_label = "Reference Images"
    bl_parent_id = "VIEW3D_PT_unsup3d_recon"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.unsup3d
        row = layout.row()
        row.template_list("UNSUP3D_UL_references", "", settings, "references", settings,
                          "active_reference", rows=3)
        col = row.column(align=True)
        col.operator("unsup3d.add_images", text="", icon="FILEBROWSER")
        col.operator("unsup3d.remove_image", text="", icon="REMOVE")
        col.operator("unsup3d.clear_images", text="", icon="TRASH")
        row = layout.row(align=True)
        row.prop(settings, "pick_image", text="")
        row.operator("unsup3d.add_scene_images", text="Add", icon="IMAGE_REFERENCE")
        refs = settings.references
        if 0 <= settings.active_reference < len(refs):
            ref = refs[settings.active_reference]
            if ref.image is not None:
                layout.template_icon(icon_value=layout.icon(ref.image), scale=6.0)
            if ref.use_crop:
                layout.prop(ref, "crop")


class VIEW3D_PT_unsup3d_options(UNSUP3D_PT_base, bpy.types.Panel):
    bl_label = "Options"
    bl_parent_id = "VIEW3D_PT_unsup3d_recon"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        settings = context.scene.unsup3d
        layout.prop(settings, "use_model_threshold")
        sub = layout.row()
        sub.enabled = not settings.use_model_threshold
        sub.prop(settings, "threshold")
        layout.prop(settings, "smooth")
        layout.prop(settings, "mesh_format")
        layout.prop(settings, "fuse")
        layout.prop(settings, "target_size")
        layout.prop(settings, "align_camera")


class VIEW3D_PT_unsup3d_history(UNSUP3D_PT_base, bpy.types.Panel):
    bl_label = "History"
    bl_parent_id = "VIEW3D_PT_unsup3d_recon"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.unsup3d
        layout.template_list("UNSUP3D_UL_history", "", settings, "history", settings,
                             "active_history", rows=3)
        row = layout.row(align=True)
        row.operator("unsup3d.history_select", icon="RESTRICT_SELECT_OFF")
        row.operator("unsup3d.history_reimport", icon="IMPORT")
        if 0 <= settings.active_history < len(settings.history):
            item = settings.history[settings.active_history]
            layout.label(text=f"{item.class_name}: azimuth {item.azimuth:.0f}°, "
                              f"elevation {item.elevation:.0f}°, {item.seconds:.2f} s")
            if item.framing_source:
                left, top, right, bottom = item.framing
                layout.label(text=f"Framed by {item.framing_source}: {left:.0%}-{right:.0%} "
                                  f"across, {top:.0%}-{bottom:.0%} down", icon="SELECT_SET")
                if item.framing_note:
                    layout.label(text=item.framing_note)
                layout.operator("unsup3d.history_use_framing", icon="SELECT_SET")


CLASSES = (UNSUP3D_UL_references, UNSUP3D_UL_history, VIEW3D_PT_unsup3d_recon,
           VIEW3D_PT_unsup3d_references, VIEW3D_PT_unsup3d_options, VIEW3D_PT_unsup3d_history)
