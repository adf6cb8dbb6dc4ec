"""Add-on preferences: where the daemon is, how long to wait, and an optional local daemon."""

from __future__ import annotations

from types import SimpleNamespace

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from .jobs import Connection
from .protocol_import import DEFAULT_ENDPOINT

ADDON_ID = __package__  # "blender_addon" from source, "bl_ext.<repo>.unsup3d_recon" installed


class UNSUP3D_Preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    endpoint: StringProperty(name="Server", default=DEFAULT_ENDPOINT,
                             description="The daemon's ZeroMQ address, tcp://HOST:PORT")
    timeout_s: FloatProperty(name="Request timeout (s)", default=30.0, min=0.5, soft_max=600.0,
                             description="How long to wait for one reply before retrying")
    retries: IntProperty(name="Retries", default=1, min=0, max=10,
                         description="How many times to resend a request that got no reply")
    curve_dir: StringProperty(
        name="CURVE keys", subtype="DIR_PATH", default="",
        description="Folder with client.key_secret and server.key (from `python -m backend "
                    "keys`) for an encrypted connection to a remote daemon")
    daemon_python: StringProperty(
        name="Backend Python", subtype="FILE_PATH", default="",
        description="Python executable of the environment that has the backend installed "
                    "(e.g. .venv/bin/python of the project)")
    daemon_checkpoint: StringProperty(name="Weights", subtype="FILE_PATH", default="",
                                      description="model.pt to serve (empty: the shipped "
                                                  "weights)")
    start_daemon_on_load: BoolProperty(
        name="Start a local daemon", default=False,
        description="Start the daemon on this machine when the add-on loads")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "endpoint")
        row = col.row()
        row.prop(self, "timeout_s")
        row.prop(self, "retries")
        col.prop(self, "curve_dir")
        box = layout.box()
        box.label(text="Local daemon", icon="CONSOLE")
        box.prop(self, "daemon_python")
        box.prop(self, "daemon_checkpoint")
        box.prop(self, "start_daemon_on_load")
        row = box.row()
        row.operator("unsup3d.daemon_start", icon="PLAY")
        row.operator("unsup3d.daemon_stop", icon="PAUSE")


def preferences(context=None):
    """The add-on's preferences; their declared defaults when the add-on runs without being
    enabled through Blender's add-on system (``register()`` called directly, as scripts and
    some tests do)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    if addon is not None and addon.preferences:
        return addon.preferences
    return SimpleNamespace(**{prop.identifier: prop.default
                              for prop in UNSUP3D_Preferences.bl_rna.properties
                              if prop.identifier not in ("rna_type", "bl_idname")})


def connection(context=None) -> Connection:
    prefs = preferences(context)
    return Connection(endpoint=prefs.endpoint.strip(), timeout_s=float(prefs.timeout_s),
                      retries=int(prefs.retries),
                      curve_dir=bpy.path.abspath(prefs.curve_dir) if prefs.curve_dir else "")


CLASSES = (UNSUP3D_Preferences,)
