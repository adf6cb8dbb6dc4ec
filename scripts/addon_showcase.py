"""Render the README's picture of the add-on at work: reference images and their reconstructions.

Everything is real: held-out procedural shapes are rendered in both styles (a synthetic render
like the model was trained on, and a photo-style image like users bring), a daemon with the
shipped weights is started the add-on's way, the add-on's Reconstruct operator imports the
meshes, and Blender renders the scene (image planes beside the imported objects, captioned
with the predicted class).

    .venv/bin/python scripts/addon_showcase.py [--out docs/images/addon_result.png]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class ShowcaseConfig:
    out: Path = ROOT / "docs" / "images" / "addon_result.png"
    classes: str = "car,chair"
    seed: int = 4242  # not a training seed: the shapes are new to the model
    width: int = 1600
    height: int = 470


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _inputs(work: Path, cfg: ShowcaseConfig) -> list[tuple[str, Path]]:
    """``(label, png)`` per class and style: a synthetic render and a photo-style one."""
    from synth_render import r2n2
    from synth_render.demo import build_demo_data
    from synth_render.taxonomy import class_name, resolve_classes

    data = build_demo_data(work, resolve_classes(cfg.classes), per_class=1, views=1, size=128,
                           seed=cfg.seed, workers=1, styles=("synthetic", "photo"))
    if data.failures:
        raise SystemExit(f"building the inputs failed ({data.failures} step(s)); see the log")
    return [(f"{class_name(ref.synset)} {style}",
             r2n2.rendering_dir(tree, ref.synset, ref.model_id) / r2n2.view_file_name(0))
            for ref in data.models() for style, tree in data.renders.items()]


def _reconstruct(bpy, photos: list[Path], names: list[str]) -> None:
    from blender_addon import runtime

    settings = bpy.context.scene.unsup3d
    for photo, name in zip(photos, names, strict=True):
        image = bpy.data.images.load(str(photo))
        image.name = name
        settings.references.add().image = image
    settings.target_size, settings.align_camera = 1.0, False
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)
    bpy.ops.unsup3d.reconstruct()
    runtime.drain_until(lambda: not runtime.STATE.busy, timeout_s=300)
    if runtime.STATE.busy or runtime.STATE.error:
        raise SystemExit(f"reconstruction failed: {runtime.STATE.error}")


def _photo_plane(bpy, image, location) -> None:
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=location, rotation=(1.5708, 0, 0))
    plane = bpy.context.active_object
    mat = bpy.data.materials.new(f"{image.name} photo")
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    plane.data.materials.append(mat)


def _label(bpy, text: str, location) -> None:
    curve = bpy.data.curves.new(text, "FONT")
    curve.body, curve.size, curve.align_x = text, 0.22, "CENTER"
    label = bpy.data.objects.new(text, curve)
    label.location, label.rotation_euler = location, (1.5708, 0.0, 0.0)
    label.visible_shadow = False
    bpy.context.scene.collection.objects.link(label)


def _stage(bpy, cfg: ShowcaseConfig) -> None:
    """Each input stands upright, its reconstruction beside it, a caption below with the
    predicted class; one camera sees them all."""
    settings = bpy.context.scene.unsup3d
    pitch = 2.7
    for i, item in enumerate(settings.history):
        x = i * pitch
        obj = item.object
        obj.location = (x + 0.6, 0.0, 0.0)
        obj.rotation_euler = (0.0, 0.0, 0.5)
        bpy.context.view_layer.update()
        bottom = min((obj.matrix_world @ v.co).z for v in obj.data.vertices)
        obj.location.z -= bottom + 0.5  # stand on the floor at z = -0.5
        _photo_plane(bpy, item.image, (x - 0.65, 0.0, 0.0))
        _label(bpy, f"{item.image.name} -> {item.class_name}", (x, 0.0, 0.75))
    bpy.ops.mesh.primitive_plane_add(size=60.0, location=(0, 0, -0.5))
    scene = bpy.context.scene
    cam = bpy.data.objects.new("showcase", bpy.data.cameras.new("showcase"))
    scene.collection.objects.link(cam)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = pitch * len(settings.history) + 0.2
    cam.location = (pitch * (len(settings.history) - 1) / 2, -10.0, 1.25)
    cam.rotation_euler = (1.45, 0.0, 0.0)
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "TEXTURE"
    shading.show_shadows, shading.show_cavity = True, True
    scene.render.resolution_x, scene.render.resolution_y = cfg.width, cfg.height
    scene.render.image_settings.file_format = "PNG"


def main(argv: list[str] | None = None) -> int:
    d = ShowcaseConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--classes", default=d.classes)
    p.add_argument("--seed", type=int, default=d.seed)
    cfg = ShowcaseConfig(**vars(p.parse_args(argv)))

    import bpy  # noqa: I001  (bpy first: it provides addon_utils)
    import addon_utils

    from backend.protocol import LocalDaemon

    work = Path(tempfile.mkdtemp(prefix="showcase_"))
    try:
        return _showcase(cfg, work, bpy, addon_utils, LocalDaemon)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _showcase(cfg: ShowcaseConfig, work: Path, bpy, addon_utils, LocalDaemon) -> int:
    names, photos = zip(*_inputs(work, cfg), strict=True)
    endpoint = _free_endpoint()
    daemon = LocalDaemon(sys.executable, endpoint)
    daemon.start()
    try:
        daemon.wait_ready(timeout_s=120)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        addon_utils.enable("blender_addon", default_set=True)
        prefs = bpy.context.preferences.addons["blender_addon"].preferences
        prefs.endpoint, prefs.timeout_s = endpoint, 120.0
        _reconstruct(bpy, photos, names)
        _stage(bpy, cfg)
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        bpy.context.scene.render.filepath = str(cfg.out)
        bpy.ops.render.render(write_still=True)
        for item in bpy.context.scene.unsup3d.history:
            print(f"{item.label}: predicted {item.class_name}, azimuth {item.azimuth:.0f}")
        print(f"wrote {cfg.out}")
    finally:
        addon_utils.disable("blender_addon", default_set=True)
        daemon.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
