"""What the add-on stores in the .blend file: reference images, options and the history."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

MESH_FORMATS = [
    ("glb", "glTF binary", "Binary glTF (.glb), Blender's glTF importer"),
    ("obj", "OBJ", "Wavefront OBJ, Blender's built-in importer"),
    ("ply", "PLY", "Binary PLY, Blender's built-in importer"),
]


class UNSUP3D_ReferenceImage(bpy.types.PropertyGroup):
    """One reference image to reconstruct, with an optional crop."""

    image: PointerProperty(type=bpy.types.Image, name="Image")
    use_crop: BoolProperty(name="Crop", default=False,
                           description="Reconstruct only a box of the image (where the object is)")
    # (left, top, right, bottom) as fractions of the width and height; top-left origin; of the
    # photo as viewers show it (EXIF orientation applied), which is how the daemon sees it.
    crop: FloatVectorProperty(name="Crop box", size=4, min=0.0, max=1.0,
                              default=(0.0, 0.0, 1.0, 1.0), subtype="NONE",
                              description="Left, top, right, bottom edges, 0-1 of the image "
                                          "as photo viewers show it (EXIF orientation applied)")


class UNSUP3D_HistoryItem(bpy.types.PropertyGroup):
    """One finished reconstruction (saved with the .blend file)."""

    label: StringProperty(name="Name")
    object: PointerProperty(type=bpy.types.Object, name="Object")
    camera: PointerProperty(type=bpy.types.Object, name="Camera")
    image: PointerProperty(type=bpy.types.Image, name="Reference")
    mesh_path: StringProperty(name="Mesh file", subtype="FILE_PATH")
    mesh_format: StringProperty(name="Format")
    class_name: StringProperty(name="Predicted class")
    azimuth: FloatProperty(name="Azimuth")
    elevation: FloatProperty(name="Elevation")
    threshold: FloatProperty(name="Threshold")
    seconds: FloatProperty(name="Seconds")
    # The square the network saw: (left, top, right, bottom) as fractions of the upright
    # reference (it may reach past 0..1, where the daemon padded), and where it came from.
    framing: FloatVectorProperty(name="Framing", size=4, default=(0.0, 0.0, 1.0, 1.0))
    framing_source: StringProperty(name="Framed by")
    framing_note: StringProperty(name="Framing note")


class UNSUP3D_Settings(bpy.types.PropertyGroup):
    """The panel's state, one per scene."""

    references: CollectionProperty(type=UNSUP3D_ReferenceImage)
    active_reference: IntProperty(default=0)
    pick_image: PointerProperty(type=bpy.types.Image, name="Image",
                                description="An image already in the blend file to add")
    use_model_threshold: BoolProperty(
        name="Model's threshold", default=True,
        description="Use the threshold chosen on validation data and stored with the model")
    threshold: FloatProperty(name="Threshold", default=0.4, min=0.01, max=0.99,
                             description="Occupancy probability above which a voxel is solid")
    smooth: BoolProperty(name="Smooth surface", default=True,
                         description="Taubin-smooth the voxel staircase on the daemon")
    mesh_format: EnumProperty(name="Format", items=MESH_FORMATS, default="glb")
    fuse: BoolProperty(name="One mesh from all images", default=False,
                       description="Fuse the images (views of one object) into one mesh "
                                   "instead of one mesh per image")
    target_size: FloatProperty(name="Size", default=1.0, min=0.001, soft_max=100.0,
                               unit="LENGTH",
                               description="Largest dimension of the imported object")
    align_camera: BoolProperty(
        name="Align a camera", default=True,
        description="Add a camera at the predicted viewpoint with the reference image as its "
                    "background, so the mesh lines up with the photo")
    history: CollectionProperty(type=UNSUP3D_HistoryItem)
    active_history: IntProperty(default=0)


CLASSES = (UNSUP3D_ReferenceImage, UNSUP3D_HistoryItem, UNSUP3D_Settings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.unsup3d = PointerProperty(type=UNSUP3D_Settings)


def unregister() -> None:
    del bpy.types.Scene.unsup3d
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
