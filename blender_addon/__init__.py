"""Blender sidebar add-on (see issue 6). Never imports torch."""
