"""Data engine: procedural ShapeNet-layout shapes, headless Blender renders, binvox voxels.

Nothing here imports ``bpy`` at import time; Blender runs only inside render worker processes.
"""

from .binvox import Voxels, read_binvox, write_binvox

__all__ = ["Voxels", "read_binvox", "write_binvox"]
__version__ = "0.1.0"
