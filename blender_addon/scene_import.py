"""Results into the scene (main thread only): mesh import, placement, camera, history."""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import bpy
from mathutils import Vector

from .viewpoint import LENS_MM, camera_offset, look_at_euler, sensor_width

COLLECTION = "Reconstructions"


@dataclass(frozen=True)
class Placement:
    """How a job's results go into the scene, captured when Reconstruct was pressed."""

    scene: str
    location: tuple[float, float, float]  # the 3D cursor
    target_size: float
    align_camera: bool
    image_names: dict  # reference name -> bpy image name (for the camera background)
    orientations: dict = field(default_factory=dict)  # reference name -> EXIF orientation
    crops: dict = field(default_factory=dict)  # reference name -> the crop box sent, or None


def results_dir() -> Path:
    """Where mesh files are kept: next to the saved .blend file, else the temp folder."""
    if bpy.data.filepath:
        folder = Path(bpy.path.abspath("//reconstructions"))
    else:
        folder = Path(tempfile.gettempdir()) / "unsup3d_reconstructions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_mesh(data: bytes, name: str, fmt: str) -> Path:
    """Keep a result's mesh file under a name no other session reuses."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "mesh"
    path = results_dir() / f"{safe}_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}.{fmt}"
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def import_mesh_file(path: Path, fmt: str) -> bpy.types.Object:
    """Import with Blender's own importer; one mesh object (parts are joined).

    The daemon's meshes are +Y up, -Z forward (ShapeNet's and glTF's frame); every importer is
    told so, and turns them +Z up.
    """
    before = set(bpy.data.objects)
    if fmt == "obj":
        bpy.ops.wm.obj_import(filepath=str(path), forward_axis="NEGATIVE_Z", up_axis="Y")
    elif fmt == "ply":
        bpy.ops.wm.ply_import(filepath=str(path), forward_axis="NEGATIVE_Z", up_axis="Y")
    elif fmt == "glb":
        _ensure_gltf_importer()
        bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        raise ValueError(f"unknown mesh format {fmt!r}")
    new = [o for o in bpy.data.objects if o not in before]
    meshes = [o for o in new if o.type == "MESH"]
    if not meshes:
        raise ValueError(f"the importer found no mesh in {path.name}")
    for other in new:  # glTF may add empties for scene nodes
        if other.type != "MESH":
            bpy.data.objects.remove(other)
    return _join(meshes)


def _ensure_gltf_importer() -> None:
    if not hasattr(bpy.types, "IMPORT_SCENE_OT_gltf"):
        import addon_utils

        addon_utils.enable("io_scene_gltf2", default_set=False)  # not saved in prefs
    if not hasattr(bpy.types, "IMPORT_SCENE_OT_gltf"):
        raise RuntimeError("Blender's glTF importer is not available; choose OBJ or PLY")


def _join(meshes: list[bpy.types.Object]) -> bpy.types.Object:
    """One object: bake each part's transform into its mesh and merge them."""
    import bmesh

    first = meshes[0]
    for obj in meshes:
        obj.data.transform(obj.matrix_world)
        obj.matrix_world.identity()
        obj.parent = None
    if len(meshes) > 1:
        merged = bmesh.new()
        for obj in meshes:
            merged.from_mesh(obj.data)
        merged.to_mesh(first.data)
        merged.free()
        for obj in meshes[1:]:
            bpy.data.objects.remove(obj)
    return first


def addon_collection(scene: bpy.types.Scene) -> bpy.types.Collection:
    coll = bpy.data.collections.get(COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    return coll


def _move_to(obj: bpy.types.Object, coll: bpy.types.Collection) -> None:
    for other in list(obj.users_collection):
        other.objects.unlink(obj)
    coll.objects.link(obj)


def place_object(obj: bpy.types.Object, name: str, scene: bpy.types.Scene,
                 location: tuple[float, float, float], target_size: float) -> None:
    """Name it, put it in the add-on's collection at ``location``, scale its largest
    dimension to ``target_size`` and shade it smooth."""
    obj.name = name
    obj.data.name = name
    _move_to(obj, addon_collection(scene))
    obj.scale = (1.0, 1.0, 1.0)
    largest = max(obj.dimensions)
    if largest <= 0:
        raise ValueError(f"the mesh for {name} is flat")
    factor = target_size / largest
    obj.scale = (factor, factor, factor)
    obj.location = location
    obj.data.shade_smooth()


def import_and_place(path: Path, fmt: str, name: str, scene: bpy.types.Scene,
                     location: tuple[float, float, float], target_size: float
                     ) -> bpy.types.Object:
    """:func:`import_mesh_file` then :func:`place_object`; on failure nothing is left behind
    (the importer may have added objects before the error) and the error is raised."""
    before = set(bpy.data.objects)
    try:
        obj = import_mesh_file(path, fmt)
        place_object(obj, name, scene, location, target_size)
    except Exception:
        for leftover in set(bpy.data.objects) - before:
            bpy.data.objects.remove(leftover)
        raise
    return obj


def align_camera(obj: bpy.types.Object, image: bpy.types.Image | None, azimuth: float,
                 elevation: float, scene: bpy.types.Scene) -> bpy.types.Object:
    """A camera at the predicted viewpoint looking at ``obj``, with ``image`` behind."""
    data = bpy.data.cameras.new(f"{obj.name} camera")
    data.lens = LENS_MM
    render = scene.render
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = sensor_width(tuple(image.size) if image is not None else (1, 1),
                                     (render.resolution_x * render.pixel_aspect_x,
                                      render.resolution_y * render.pixel_aspect_y))
    offset = camera_offset(azimuth, elevation, obj.dimensions.length)
    distance = Vector(offset).length
    data.clip_start = min(0.1, 0.05 * distance)
    data.clip_end = max(100.0, distance * 20)
    cam = bpy.data.objects.new(f"{obj.name} camera", data)
    obj.users_collection[0].objects.link(cam)
    cam.location = obj.location + Vector(offset)
    cam.rotation_euler = look_at_euler(offset)
    if image is not None:
        data.show_background_images = True
        background = data.background_images.new()
        background.image = image
        background.alpha = 0.6
        background.frame_method = "FIT"
    if scene.camera is None:
        scene.camera = cam
    return cam
