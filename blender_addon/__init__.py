"""Photo to 3D: a Blender sidebar panel that sends reference images to the reconstruction
daemon and imports the meshes it returns (never imports torch).

Layout: ``jobs`` (the network thread, no bpy), ``viewpoint`` (pure), ``protocol_import`` (the
client and the local daemon of ``backend/protocol``),
``runtime`` (live state and the main-thread drain), ``scene_import`` and ``images`` (bpy data),
``properties``/``preferences``/``operators``/``panel`` (Blender UI classes). The bpy modules
are imported in :func:`register`, so ``python -m blender_addon build`` and the pure modules
work without Blender.
"""


def _modules():
    from . import operators, panel, preferences, properties

    return properties, preferences, operators, panel


def register() -> None:
    import bpy

    from . import runtime

    properties, preferences, operators, panel = _modules()
    properties.register()
    for module in (preferences, operators, panel):
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    runtime.start()
    from .protocol_import import IMPORT_ERROR, IMPORT_HINT

    if IMPORT_ERROR:  # the panel says why nothing can be sent (the console said it too)
        runtime.fail(IMPORT_ERROR, IMPORT_HINT)
        return
    prefs = preferences.preferences()
    if prefs.start_daemon_on_load and prefs.daemon_python:
        # Never fail registration over the daemon: the panel explains, preferences stay open.
        try:
            runtime.start_daemon(prefs)
        except Exception as exc:
            runtime.fail(f"Could not start the local daemon: {exc}",
                         "Check Backend Python in the add-on preferences.")


def unregister() -> None:
    import bpy

    from . import runtime

    runtime.stop()
    properties, preferences, operators, panel = _modules()
    for module in (panel, operators, preferences):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
    properties.unregister()
