"""The ``photo`` render style: bpy glue for the stand-in target domain (see ``style.py``).

Cycles on the CPU with few samples; an HDRI from the model's asset pool lights the scene.
Most models stand on a shadow-catcher floor that puts their shadow into the alpha channel, so
:mod:`photo_post` lays object and shadow onto a photograph (or, in some views, the HDRI stays
visible behind them); others stand on a visible textured floor (gravel, grass, brick, planks,
tiles, concrete) under the HDRI's sky. Randomized PBR materials (plastic, paint, metal, wood,
fabric, rubber, or the model's own colour with a new finish) replace the model's materials.
All randomness comes from ``rng``; everything that is not bpy lives in :mod:`backgrounds` and
:mod:`photo_post`.
"""

from __future__ import annotations

import colorsys
import math

import bpy
import numpy as np
from mathutils import Vector  # Blender's math module, importable wherever bpy is

from .. import r2n2
from . import photo_post
from .backgrounds import floor_texture_pool, hdri_pool
from .style import StyleContext

postprocess = photo_post.postprocess
postprocess_with_mask = photo_post.postprocess_with_mask

HDRI_VISIBLE_P = 0.35  # share of (catcher-floor) views whose background is the HDRI, not a photo
FLOOR_VISIBLE_P = 0.3  # share of models standing on a visible textured floor (HDRI behind)
VISIBLE_FLOOR_KEY = "photo_floor_visible"  # scene property: configure_view must keep the HDRI
SCENERY_KEY = "photo_scenery"  # object property: not the model (hidden in the object pass)
OBJECT_PASS_SAMPLES = 8  # anti-aliased coverage in 1/8 steps; no bounces, so it is cheap
SUN_P = 0.5  # share of models lit by an extra sun (hard shadows) on top of the HDRI
TARGET_WORLD_LUMINANCE = 0.6  # mean (clipped) HDRI radiance after normalization
# OpenImageDenoise ships in the bpy wheel, but even in its fastest mode it adds 0.2-0.5 s to a
# 128 px view on one thread (the 16-sample render itself takes ~0.7 s), and the sensor noise and
# JPEG of photo_post hide path-tracing grain anyway. Off by default.
USE_DENOISER = False
MATERIAL_KINDS = ("plastic", "paint", "metal", "wood", "fabric", "rubber", "own")
MATERIAL_WEIGHTS = (0.2, 0.15, 0.15, 0.2, 0.15, 0.05, 0.1)


# --- scene ------------------------------------------------------------------------------------

def configure_scene(scene, objects, rng: np.random.Generator, ctx: StyleContext) -> None:
    """Engine, world, floor, lights and materials for one model (the contract in ``style.py``)."""
    _configure_cycles(scene, ctx)
    _configure_world(scene, rng, ctx)
    _add_floor(scene, objects, rng, ctx)
    if rng.random() < SUN_P:
        _add_sun(scene, rng)
    for obj in objects:
        _randomize_materials(obj, rng)


def _configure_cycles(scene, ctx: StyleContext) -> None:
    """Cycles CPU tuned for ~0.7 s per 128 px view (16 samples) on one thread."""
    scene.render.engine = "CYCLES"
    cyc = scene.cycles
    cyc.device = "CPU"
    cyc.samples = ctx.samples
    cyc.use_adaptive_sampling = False  # too few samples for it to stop any pixel early
    cyc.max_bounces = 4
    cyc.diffuse_bounces = 2
    cyc.glossy_bounces = 2
    cyc.transmission_bounces = 2
    cyc.volume_bounces = 0
    cyc.transparent_max_bounces = 4
    cyc.caustics_reflective = cyc.caustics_refractive = False
    cyc.blur_glossy = 1.0  # fewer fireflies at low sample counts
    cyc.use_auto_tile = False  # one tile: the images are tiny
    cyc.use_light_tree = False  # 1-2 lights; with it on, CPU time doubled for no speed-up
    cyc.sample_clamp_direct = 4.0  # no fireflies: at 16 samples a bright HDRI pixel or the
    cyc.sample_clamp_indirect = 1.0  # sun in a glossy bounce would stay a white speck
    cyc.use_denoising = USE_DENOISER and _enable_denoiser(cyc)
    render = scene.render
    render.resolution_x = render.resolution_y = ctx.size
    render.resolution_percentage = 100
    render.film_transparent = True
    # Two workers share two cores: one thread each. A single worker may raise this afterwards.
    render.threads_mode = "FIXED"
    render.threads = 1
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "AgX"  # soft highlight roll-off, like a camera's
    scene.view_settings.look = "None"


def _enable_denoiser(cyc) -> bool:
    """Select OpenImageDenoise in its fastest mode; False if this build lacks it."""
    items = {i.identifier for i in cyc.bl_rna.properties["denoiser"].enum_items}
    if "OPENIMAGEDENOISE" not in items:
        return False
    cyc.denoiser = "OPENIMAGEDENOISE"
    cyc.denoising_input_passes = "RGB"
    cyc.denoising_prefilter = "NONE"
    cyc.denoising_quality = "FAST"
    return True


def _configure_world(scene, rng: np.random.Generator, ctx: StyleContext) -> None:
    """An HDRI of the model's asset pool, normalized in brightness, at a random strength."""
    pool = hdri_pool(ctx.asset_split)
    path = pool[int(rng.integers(len(pool)))]
    world = bpy.data.worlds.new("photo_world")
    scene.world = world
    # "AUTOMATIC" builds a map as large as the image (1024 x 512) every render: ~3 s a view.
    world.cycles.sampling_method = "MANUAL"
    world.cycles.sample_map_resolution = 256  # 128: speckles from the sun; 1024: +0.8 s
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    coord = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.name = "photo_world_mapping"
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(path), check_existing=True)
    background = nodes.new("ShaderNodeBackground")
    output = nodes.new("ShaderNodeOutputWorld")
    links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    links.new(env.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])
    mean = _clipped_mean_radiance(env.image)
    background.inputs["Strength"].default_value = (
        TARGET_WORLD_LUMINANCE / max(mean, 1e-3) * float(rng.uniform(0.5, 1.6)))


def _clipped_mean_radiance(image) -> float:
    """Mean radiance with the sun clipped, so sunny and overcast HDRIs expose alike."""
    pixels = np.empty(image.size[0] * image.size[1] * image.channels, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    rgb = pixels.reshape(-1, image.channels)[:, :3]
    return float(np.minimum(rgb, 8.0).mean())


def _add_floor(scene, objects, rng: np.random.Generator, ctx: StyleContext) -> None:
    """A floor at the object's feet: a shadow catcher (shadows only, for compositing onto a
    photo or the HDRI) or, for some models, a visible textured ground under the HDRI sky."""
    z_min = min(_world_bounds(obj)[0][2] for obj in objects)
    visible = bool(rng.random() < FLOOR_VISIBLE_P)
    scene[VISIBLE_FLOOR_KEY] = visible
    # Catcher pixels cost about twice as much as others (Cycles traces the scene with and
    # without the catcher), so a catcher is just large enough for the longest sun shadow
    # (sun >= 30 deg); a visible floor must reach almost to the horizon.
    floor = _plane("photo_floor", 40.0 if visible else 2.5, z_min)
    floor[SCENERY_KEY] = True
    scene.collection.objects.link(floor)
    if visible:
        floor.data.materials.append(_floor_material(rng, ctx))
    else:
        floor.is_shadow_catcher = True


def _plane(name: str, half: float, z: float):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)],
                     [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new(name, mesh)
    obj.location = (0.0, 0.0, z)
    return obj


def _floor_material(rng: np.random.Generator, ctx: StyleContext):
    """Gravel, grass or brick from the photo pool, or procedural planks, tiles or concrete."""
    mat = bpy.data.materials.new("photo_floor")
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    photos = floor_texture_pool(ctx.asset_split)
    kind = str(rng.choice(["photo", "planks", "tiles", "concrete"], p=[0.4, 0.25, 0.2, 0.15]))
    if kind == "photo" and photos:
        colour = _photo_texture(mat, rng, photos[int(rng.integers(len(photos)))])
    elif kind in ("planks", "tiles", "photo"):
        colour = _brick_texture(mat, rng, planks=kind != "tiles")
    else:
        colour = _concrete_texture(mat, rng)
    mat.node_tree.links.new(colour, bsdf.inputs["Base Color"])
    _set(bsdf, Roughness=float(rng.uniform(0.5, 0.95)))
    return mat


def _photo_texture(mat, rng: np.random.Generator, path):
    """A tiled ground photo, tinted (the grey ones) and scaled to 0.4-1.5 units a tile."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(path), check_existing=True)
    tex.extension = "REPEAT"
    mapping = _object_coords(mat, rng)
    mapping.node.inputs["Scale"].default_value = (1 / float(rng.uniform(0.4, 1.5)),) * 3
    mapping.node.inputs["Rotation"].default_value = (0.0, 0.0, float(rng.uniform(0, 2 * math.pi)))
    links.new(mapping, tex.inputs["Vector"])
    tint = nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    tint.inputs["B"].default_value = _rgba(rng.uniform(0.6, 1.0, 3))
    links.new(tex.outputs["Color"], tint.inputs["A"])
    return tint.outputs["Result"]


def _brick_texture(mat, rng: np.random.Generator, planks: bool):
    """Wooden planks (long, brown, thin joints) or tiles (square, light, grout)."""
    tex = mat.node_tree.nodes.new("ShaderNodeTexBrick")
    if planks:
        base = np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7),
                                            rng.uniform(0.25, 0.75))) ** 2.2
        width, height, mortar = rng.uniform(1.0, 2.0), rng.uniform(0.1, 0.25), 0.005
    else:
        base = np.array(_hsv(rng, (0.0, 0.3), (0.5, 0.95))[:3])
        width = height = rng.uniform(0.2, 0.6)
        mortar = 0.015
    tex.inputs["Color1"].default_value = _rgba(base)
    tex.inputs["Color2"].default_value = _rgba(base * rng.uniform(0.7, 0.9))
    tex.inputs["Mortar"].default_value = _rgba(base * 0.4)
    tex.inputs["Scale"].default_value = 1.0
    tex.inputs["Brick Width"].default_value = float(width)
    tex.inputs["Row Height"].default_value = float(height)
    tex.inputs["Mortar Size"].default_value = mortar
    mapping = _object_coords(mat, rng)
    mapping.node.inputs["Rotation"].default_value = (0.0, 0.0, float(rng.uniform(0, 2 * math.pi)))
    mat.node_tree.links.new(mapping, tex.inputs["Vector"])
    return tex.outputs["Color"]


def _concrete_texture(mat, rng: np.random.Generator):
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = float(rng.uniform(2, 10))
    noise.inputs["Detail"].default_value = 8.0
    links.new(_object_coords(mat, rng), noise.inputs["Vector"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    grey = np.full(3, rng.uniform(0.1, 0.5)) * rng.uniform(0.9, 1.1, 3)
    mix.inputs["A"].default_value = _rgba(grey * 0.6)
    mix.inputs["B"].default_value = _rgba(grey)
    links.new(noise.outputs["Fac"], mix.inputs["Factor"])
    return mix.outputs["Result"]


def _world_bounds(obj) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    return corners.min(axis=0), corners.max(axis=0)


def _add_sun(scene, rng: np.random.Generator) -> None:
    """A sun from a random direction above the horizon, for crisp shadows on the floor."""
    sun = bpy.data.lights.new("photo_sun", type="SUN")
    sun.energy = float(rng.uniform(1.0, 4.0))
    sun.angle = math.radians(float(rng.uniform(0.5, 10.0)))  # penumbra: hazy to crisp
    sun.color = _warm_white(rng)
    obj = bpy.data.objects.new("photo_sun", sun)
    obj.rotation_euler = (math.radians(float(rng.uniform(30, 65))), 0.0,
                          float(rng.uniform(0, 2 * math.pi)))
    scene.collection.objects.link(obj)


def _warm_white(rng: np.random.Generator) -> tuple[float, float, float]:
    t = float(rng.uniform(-1, 1))  # cold (-1) .. warm (+1)
    return (1.0 + 0.1 * max(t, 0), 1.0, 1.0 + 0.15 * max(-t, 0))


# --- materials --------------------------------------------------------------------------------

def _randomize_materials(obj, rng: np.random.Generator) -> None:
    """Replace every material slot of ``obj`` with a random PBR material.

    A mesh with a single slot is sometimes split in two by height (legs vs seat, base vs
    shade), because real objects are rarely one material.
    """
    if obj.type != "MESH":
        return
    mesh = obj.data
    originals = [slot.material for slot in obj.material_slots] or [None]
    if len(originals) == 1 and rng.random() < 0.5:
        _split_by_height(mesh, rng)
        originals = originals * 2
    mesh.materials.clear()
    for original in originals:
        mesh.materials.append(_random_material(rng, original))


def _split_by_height(mesh, rng: np.random.Generator) -> None:
    """Faces below a random height get material index 1, the rest index 0."""
    n = len(mesh.polygons)
    if n < 2:
        return
    centres = np.empty(n * 3, dtype=np.float32)
    mesh.polygons.foreach_get("center", centres)
    z = centres.reshape(n, 3)[:, 2]
    cut = np.quantile(z, float(rng.uniform(0.2, 0.6)))
    mesh.polygons.foreach_set("material_index", (z < cut).astype(np.int32))


def _random_material(rng: np.random.Generator, original):
    kind = _pick_kind(rng, original)
    mat = bpy.data.materials.new(f"photo_{kind}")
    nodes = mat.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    _MAKERS[kind](mat, bsdf, rng, original)
    return mat


# Material-name words (the procedural library names materials "<role>_<family>") -> kind.
_FAMILY_KINDS = {"wood": "wood", "metal": "metal", "gun": "metal", "fabric": "fabric",
                 "shade": "fabric", "sail": "fabric", "leather": "plastic", "plastic": "plastic",
                 "paint": "paint", "livery": "paint", "hull": "paint", "accent": "paint",
                 "ceramic": "paint", "rubber": "rubber", "glass": "rubber", "screen": "rubber"}
FAMILY_HINT_P = 0.7  # how often a material named like a family gets that family's look


def _pick_kind(rng: np.random.Generator, original) -> str:
    """A material kind: usually the one its name suggests (legs_metal -> metal), else random."""
    random_kind = MATERIAL_KINDS[int(rng.choice(len(MATERIAL_KINDS), p=MATERIAL_WEIGHTS))]
    follow_hint = rng.random() < FAMILY_HINT_P
    name = original.name.lower() if original is not None else ""
    hinted = [kind for word, kind in _FAMILY_KINDS.items() if word in name]
    return hinted[0] if hinted and follow_hint else random_kind


def _set(bsdf, **values) -> None:
    """Set Principled BSDF inputs by keyword (``Base_Color`` -> ``"Base Color"``)."""
    for key, value in values.items():
        bsdf.inputs[key.replace("_", " ")].default_value = value


def _rgba(rgb) -> tuple[float, float, float, float]:
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0)


def _hsv(rng: np.random.Generator, s_range=(0.0, 0.9), v_range=(0.05, 0.9)):
    """A random colour, in linear RGB, from hue/saturation/value ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*s_range), rng.uniform(*v_range)
    return _rgba(np.array(colorsys.hsv_to_rgb(h, s, v)) ** 2.2)


def _plastic(mat, bsdf, rng, original) -> None:
    _set(bsdf, Base_Color=_hsv(rng), Roughness=float(rng.uniform(0.25, 0.7)))
    _add_noise_roughness(mat, bsdf, rng, 0.15)


def _paint(mat, bsdf, rng, original) -> None:
    _set(bsdf, Base_Color=_hsv(rng, (0.3, 1.0), (0.1, 0.8)), Roughness=float(rng.uniform(0.3, 0.6)),
         Coat_Weight=float(rng.uniform(0.3, 1.0)), Coat_Roughness=float(rng.uniform(0.02, 0.2)))


_METALS = ((0.91, 0.92, 0.92), (0.56, 0.57, 0.58), (1.0, 0.78, 0.34), (0.95, 0.64, 0.54),
           (0.2, 0.2, 0.21))  # aluminium, steel, gold, copper, dark iron (linear albedo)


def _metal(mat, bsdf, rng, original) -> None:
    base = np.array(_METALS[int(rng.integers(len(_METALS)))]) * rng.uniform(0.85, 1.0, 3)
    _set(bsdf, Base_Color=_rgba(base), Metallic=1.0, Roughness=float(rng.uniform(0.15, 0.5)),
         Anisotropic=float(rng.uniform(0.0, 0.8)))  # brushed metal when > 0
    _add_noise_roughness(mat, bsdf, rng, 0.2)


def _wood(mat, bsdf, rng, original) -> None:
    """Growth rings: a distorted wave texture through a two-brown colour ramp, plus bump."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    wave = nodes.new("ShaderNodeTexWave")
    wave.wave_type = "RINGS" if rng.random() < 0.5 else "BANDS"
    wave.inputs["Scale"].default_value = float(rng.uniform(2.0, 8.0))
    wave.inputs["Distortion"].default_value = float(rng.uniform(3.0, 12.0))
    wave.inputs["Detail"].default_value = 2.0
    links.new(_object_coords(mat, rng, stretch=True), wave.inputs["Vector"])
    ramp = nodes.new("ShaderNodeValToRGB")
    dark = np.array(colorsys.hsv_to_rgb(rng.uniform(0.04, 0.1), rng.uniform(0.5, 0.8),
                                        rng.uniform(0.25, 0.5))) ** 2.2
    light = np.array(colorsys.hsv_to_rgb(rng.uniform(0.06, 0.12), rng.uniform(0.35, 0.6),
                                         rng.uniform(0.45, 0.85))) ** 2.2
    ramp.color_ramp.elements[0].color = _rgba(dark)
    ramp.color_ramp.elements[1].color = _rgba(light)
    links.new(wave.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    _set(bsdf, Roughness=float(rng.uniform(0.35, 0.75)))
    _add_bump(mat, bsdf, wave.outputs["Fac"], float(rng.uniform(0.05, 0.2)))


def _fabric(mat, bsdf, rng, original) -> None:
    """Cloth: a fine weave (checker or noise) modulating the colour and the normal, with sheen."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    colour = np.array(_hsv(rng, (0.1, 0.8), (0.1, 0.7))[:3])
    if rng.random() < 0.4:  # plaid / check pattern
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Color1"].default_value = _rgba(colour)
        tex.inputs["Color2"].default_value = _rgba(colour * rng.uniform(0.3, 0.8))
        tex.inputs["Scale"].default_value = float(rng.uniform(8, 30))
        out = tex.outputs["Color"]
        fac = tex.outputs["Fac"]
    else:
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Scale"].default_value = float(rng.uniform(15, 50))
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.inputs["A"].default_value = _rgba(colour * 0.6)
        mix.inputs["B"].default_value = _rgba(colour)
        links.new(tex.outputs["Fac"], mix.inputs["Factor"])
        out = mix.outputs["Result"]
        fac = tex.outputs["Fac"]
    links.new(_object_coords(mat, rng), tex.inputs["Vector"])
    links.new(out, bsdf.inputs["Base Color"])
    _set(bsdf, Roughness=float(rng.uniform(0.8, 1.0)), Sheen_Weight=float(rng.uniform(0.3, 1.0)))
    _add_bump(mat, bsdf, fac, 0.3)


def _rubber(mat, bsdf, rng, original) -> None:
    _set(bsdf, Base_Color=_hsv(rng, (0.0, 0.2), (0.02, 0.08)),
         Roughness=float(rng.uniform(0.6, 0.9)))


def _own(mat, bsdf, rng, original) -> None:
    """The model's own base colour (if it has one) with a new surface finish."""
    colour = _original_colour(original)
    if colour is None:
        colour = _hsv(rng)
    jitter = rng.uniform(0.85, 1.15, 3)
    _set(bsdf, Base_Color=_rgba(np.clip(np.array(colour[:3]) * jitter, 0, 1)),
         Roughness=float(rng.uniform(0.2, 0.8)), Metallic=float(rng.uniform(0.0, 0.3)))


def _original_colour(original):
    if original is None or original.node_tree is None:
        return None if original is None else tuple(original.diffuse_color)
    for node in original.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            return tuple(node.inputs["Base Color"].default_value)
    return tuple(original.diffuse_color)


_MAKERS = {"plastic": _plastic, "paint": _paint, "metal": _metal, "wood": _wood,
           "fabric": _fabric, "rubber": _rubber, "own": _own}


def _object_coords(mat, rng: np.random.Generator, stretch: bool = False):
    """Object-space texture coordinates, randomly rotated (and stretched along one axis, like
    wood grain), so patterns stick to the object and agree between views."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    coord = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = tuple(rng.uniform(0, 2 * math.pi, 3))
    mapping.inputs["Location"].default_value = tuple(rng.uniform(-5, 5, 3))
    if stretch:
        mapping.inputs["Scale"].default_value = (1.0, 1.0, float(rng.uniform(0.1, 0.3)))
    links.new(coord.outputs["Object"], mapping.inputs["Vector"])
    return mapping.outputs["Vector"]


def _add_noise_roughness(mat, bsdf, rng: np.random.Generator, amount: float) -> None:
    """Smudges: low-frequency noise varies the roughness by ``±amount``."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = float(rng.uniform(3, 15))
    links.new(_object_coords(mat, rng), noise.inputs["Vector"])
    ramp = nodes.new("ShaderNodeMapRange")
    base = bsdf.inputs["Roughness"].default_value
    ramp.inputs["To Min"].default_value = max(base - amount, 0.02)
    ramp.inputs["To Max"].default_value = min(base + amount, 1.0)
    links.new(noise.outputs["Fac"], ramp.inputs["Value"])
    links.new(ramp.outputs["Result"], bsdf.inputs["Roughness"])


def _add_bump(mat, bsdf, height, strength: float) -> None:
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = strength
    bump.inputs["Distance"].default_value = 0.02
    links.new(height, bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


# --- views ------------------------------------------------------------------------------------

def configure_view(scene, view: r2n2.View, rng: np.random.Generator, ctx: StyleContext) -> None:
    """Per-view jitter: lens and framing, depth of field, background source, world rotation.

    Camera roll is left to :func:`photo_post.postprocess` (a roll is an image rotation).
    """
    cam = scene.camera.data
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = r2n2.SENSOR_MM
    cam.lens = r2n2.LENS_MM * float(rng.uniform(0.94, 1.06))
    # A shift of 0.03 sensor widths turns the view by ~1.6 degrees at 35 mm.
    cam.shift_x, cam.shift_y = (float(v) for v in rng.uniform(-0.03, 0.03, 2))
    cam.dof.use_dof = bool(rng.random() < 0.5)
    cam.dof.focus_distance = view.distance
    cam.dof.aperture_fstop = float(rng.uniform(0.7, 4.0))
    show_photo = rng.random() >= HDRI_VISIBLE_P
    scene.render.film_transparent = bool(show_photo and not scene.get(VISIBLE_FLOOR_KEY, False))
    mapping = scene.world.node_tree.nodes.get("photo_world_mapping")
    if mapping is not None:
        mapping.inputs["Rotation"].default_value[2] = float(rng.uniform(0, 2 * math.pi))


def configure_object_pass(scene) -> None:
    """After the views: the model alone, opaque, on a transparent film, so each frame's alpha
    is the object's exact coverage (the photo's alpha also holds the shadow catcher's shadow
    and is opaque where the HDRI shows). Touches no generator."""
    for obj in scene.objects:
        if obj.get(SCENERY_KEY) or obj.type == "LIGHT":
            obj.hide_render = True
    scene.render.film_transparent = True
    scene.camera.data.dof.use_dof = False
    cyc = scene.cycles
    cyc.samples = OBJECT_PASS_SAMPLES
    cyc.max_bounces = cyc.diffuse_bounces = cyc.glossy_bounces = 0
    cyc.transmission_bounces = cyc.transparent_max_bounces = 0
    cyc.use_denoising = False
    flat = bpy.data.materials.new("photo_object_pass")  # no glass or alpha from the materials
    scene.view_layers[0].material_override = flat
