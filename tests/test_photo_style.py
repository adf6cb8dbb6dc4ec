"""The ``photo`` style (stand-in target domain): asset pools, photo effects and the bpy glue.

Pure tests run anywhere. ``blender`` tests render a trimesh-written OBJ in this process through
a minimal harness that follows the contract in ``synth_render/render/style.py`` (reset, import,
normalize, camera, configure_scene, configure_view, render, postprocess), so the style is tested
independently of the render worker; one end-to-end test goes through the CLI.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from synth_render import r2n2
from synth_render.render import backgrounds, photo_post
from synth_render.render.style import StyleContext

needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs bpy")
ROOT = Path(__file__).resolve().parents[1]
CTX = StyleContext("03001627/abc", "train", 64)


def _fake_render(size: int = 64, opaque: bool = False) -> np.ndarray:
    """A red disc (the object) over a speckled translucent shadow, as Cycles' catcher gives."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    shadow = (yy > size / 2) & ~disc
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[disc] = (200, 30, 30, 255)
    rgba[shadow, 3] = (rng.random(shadow.sum()) < 0.4) * 200  # 16-sample speckle
    if opaque:  # the HDRI is the background
        rgba[~disc] = (90, 120, 160, 255)
    return rgba


def _blockiness(img: np.ndarray) -> float:
    """Mean step across 8-pixel block borders over the mean step elsewhere (JPEG > 1)."""
    steps = np.abs(np.diff(img.astype(np.float32).mean(axis=-1), axis=1))
    at_border = (np.arange(steps.shape[1]) % 8) == 7
    return float(steps[:, at_border].mean() / steps[:, ~at_border].mean())


# --------------------------------------------------------------------------- asset pools


@pytest.mark.parametrize("pool", [backgrounds.hdri_pool, backgrounds.background_pool])
def test_asset_pools_are_nonempty_and_disjoint(pool):
    train, test = pool("train"), pool("test")
    assert train and test
    assert not set(train) & set(test)
    assert all(p.is_file() for p in train + test)


def test_asset_table_keeps_duplicates_together_and_names_unique():
    names = [a.name for a in backgrounds.HDRIS + backgrounds.PHOTOS]
    assert len(names) == len(set(names))
    split = {a.name: a.split for a in backgrounds.PHOTOS}
    assert split["motorcycle_left"] == split["motorcycle_right"]  # one stereo pair, one photo
    for s in backgrounds.SPLITS:
        assert set(backgrounds.floor_texture_pool(s)) <= set(backgrounds.background_pool(s))


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError):
        backgrounds.hdri_pool("val")


def test_sample_background_shape_determinism_and_variety():
    a = backgrounds.sample_background(np.random.default_rng(3), "test", (48, 64))
    b = backgrounds.sample_background(np.random.default_rng(3), "test", (48, 64))
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    many = [backgrounds.sample_background(np.random.default_rng(s), "train", 32)
            for s in range(8)]
    assert len({m.tobytes() for m in many}) == 8


# --------------------------------------------------------------------------- photo effects


def test_postprocess_returns_rgb_uint8_of_the_render_size():
    out = photo_post.postprocess(_fake_render(), np.random.default_rng(0), CTX)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_postprocess_is_deterministic_per_seed_and_varies_across_seeds():
    rgba = _fake_render()
    a = photo_post.postprocess(rgba, np.random.default_rng(7), CTX)
    b = photo_post.postprocess(rgba, np.random.default_rng(7), CTX)
    c = photo_post.postprocess(rgba, np.random.default_rng(8), CTX)
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5


def test_the_mask_costs_no_draws_and_follows_the_pixels_roll_and_zoom():
    rgba = _fake_render()
    disc = (rgba[..., 3] == 255).astype(np.uint8) * 255
    rng = np.random.default_rng(5)
    photo, mask = photo_post.postprocess_with_mask(rgba, disc, rng, CTX)
    after = rng.integers(2**32)
    again = np.random.default_rng(5)
    assert np.array_equal(photo, photo_post.postprocess(rgba, again, CTX))
    assert after == again.integers(2**32)  # the same number of draws
    params = photo_post.draw_params(np.random.default_rng(5))
    assert params.zoom > 1.0 and params.roll_deg != 0.0
    # the disc is zoomed about the centre: its area grows by the zoom squared (and the roll's
    # extra zoom), its centre stays
    z = params.zoom * (abs(np.cos(np.deg2rad(params.roll_deg)))
                       + abs(np.sin(np.deg2rad(params.roll_deg))))
    area = (mask >= 128).sum() / (disc >= 128).sum()
    assert area == pytest.approx(z * z, rel=0.05)
    ys, xs = np.nonzero(mask >= 128)
    assert abs(ys.mean() - 31.5) < 0.6 and abs(xs.mean() - 31.5) < 0.6
    assert mask.shape == (64, 64) and mask.dtype == np.uint8


def test_background_fills_the_transparent_pixels():
    out = photo_post.postprocess(_fake_render(), np.random.default_rng(1), CTX)
    corner = out[:12, :12].reshape(-1, 3)
    assert corner.std(axis=0).max() > 2 or np.abs(corner.mean(axis=0)).max() > 10


def test_jpeg_round_trip_leaves_block_artefacts():
    rgba = _fake_render(128)
    bg = backgrounds.sample_background(np.random.default_rng(0), "train", 128)
    params = photo_post.draw_params(np.random.default_rng(0))
    params = photo_post.without(params, "roll_deg", "zoom")
    def photo(p, capture_px):
        return photo_post.apply(rgba, bg, p, np.random.default_rng(0), capture_px=capture_px)

    raw = photo(photo_post.without(params, "jpeg_quality"), 128)
    jpeg_at_render_size = photo(replace(params, jpeg_quality=40), 128)
    jpeg_at_capture_size = photo(replace(params, jpeg_quality=40), 1024)
    assert _blockiness(jpeg_at_render_size) > 1.1 * _blockiness(raw)
    # taken with 8x the pixels and downsampled, the 8x8 blocks are sub-pixel: barely visible
    assert _blockiness(jpeg_at_capture_size) < 1.05 * _blockiness(raw)
    assert not np.array_equal(jpeg_at_capture_size, raw)


def test_sensor_noise_is_the_cameras_averaged_down_by_the_downsampling():
    flat = np.zeros((64, 64, 4), np.uint8)
    flat[..., :3], flat[..., 3] = 128, 255  # mid grey, opaque: no background, no shadow
    params = photo_post.draw_params(np.random.default_rng(3))
    params = photo_post.without(params, "jpeg_quality", "roll_deg", "zoom", "blur",
                                "motion_len", "vignette")
    params = replace(params, shot_noise=5e-3, read_noise=0.008)

    def noise_std(capture_px):
        out = photo_post.apply(flat, flat[..., :3], params, np.random.default_rng(0),
                               capture_px=capture_px)
        return out.reshape(-1, 3).astype(float).std(axis=0).mean()  # per channel: WB shifts means

    at_render_size, at_8x = noise_std(64), noise_std(512)
    assert at_render_size > 3.0  # visible grain in 8-bit units
    assert at_8x == pytest.approx(at_render_size / 8, rel=0.3)


def test_opaque_render_keeps_its_hdri_background():
    rgba = _fake_render(opaque=True)
    params = photo_post.draw_params(np.random.default_rng(2))
    clean = photo_post.without(params, "jpeg_quality", "roll_deg", "zoom", "blur", "motion_len",
                               "vignette", "shot_noise", "read_noise")
    clean = replace(clean, temperature=0.0, green_tint=0.0, exposure_ev=0.0, gamma=2.2,
                    saturation=1.0, contrast=0.0)
    white = np.full((64, 64, 3), 255, np.uint8)
    out = photo_post.apply(rgba, white, clean, np.random.default_rng(0))
    assert np.abs(out.astype(int) - rgba[..., :3]).max() <= 2


def test_shadow_speckle_is_smoothed_but_kept():
    img = photo_post._to_float(_fake_render())
    smooth = photo_post._smooth_shadow(img, 1.5)
    region = (slice(52, 62), slice(4, 20))  # inside the shadow, away from the disc
    assert smooth[region + (3,)].std() < 0.5 * img[region + (3,)].std()
    assert abs(smooth[region + (3,)].mean() - img[region + (3,)].mean()) < 0.05
    disc = img[..., 3] > 0.99
    assert np.array_equal(smooth[disc], img[disc])


# --------------------------------------------------------------------------- Blender


def _write_chair(path: Path) -> Path:
    """A chair-like OBJ in ShapeNet's frame (+Y up): seat, four legs, back."""
    def box(extents, centre):
        b = trimesh.creation.box(extents=extents)
        b.apply_translation(centre)
        return b

    parts = [box((0.5, 0.06, 0.5), (0, 0.45, 0)), box((0.5, 0.5, 0.05), (0, 0.73, 0.225))]
    parts += [box((0.05, 0.45, 0.05), (x, 0.2, z)) for x in (-0.22, 0.22) for z in (-0.22, 0.22)]
    trimesh.util.concatenate(parts).export(path)
    return path


def _render_photo(obj_path: Path, tmp: Path, seed: int, n_views: int = 2, size: int = 64,
                  hide_object: bool = False) -> list[np.ndarray]:
    """The style contract, driven the way a worker drives it (see style.py)."""
    import bpy
    from mathutils import Matrix, Vector

    from synth_render.render import style_photo

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.wm.obj_import(filepath=str(obj_path))
    objects = [o for o in scene.objects if o.type == "MESH"]
    corners = np.array([o.matrix_world @ Vector(c) for o in objects for c in o.bound_box])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    fix = Matrix.Scale(1 / np.linalg.norm(hi - lo), 4) @ Matrix.Translation(-Vector((lo + hi) / 2))
    for o in objects:
        o.matrix_world = fix @ o.matrix_world
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam

    rng = np.random.default_rng(seed)
    ctx = StyleContext("03001627/chair", "train", size, samples=8)
    style_photo.configure_scene(scene, objects, rng, ctx)
    for o in objects:
        o.hide_render = hide_object
    outputs = []
    for i, view in enumerate(r2n2.sample_views(np.random.default_rng(seed), n_views)):
        loc = Vector(view.location_blender().tolist())
        cam.location = loc
        cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()
        style_photo.configure_view(scene, view, rng, ctx)
        scene.render.filepath = str(tmp / f"view_{i}.png")
        bpy.ops.render.render(write_still=True)
        with Image.open(scene.render.filepath) as im:
            rgba = np.asarray(im.convert("RGBA"))
        outputs.append(style_photo.postprocess(rgba, rng, ctx))
    return outputs


@pytest.mark.blender
@needs_bpy
def test_photo_render_is_an_opaque_photo_showing_the_object(tmp_path):
    chair = _write_chair(tmp_path / "chair.obj")
    with_object = _render_photo(chair, tmp_path, seed=4)
    without = _render_photo(chair, tmp_path, seed=4, hide_object=True)
    for img, empty in zip(with_object, without, strict=True):
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        diff = np.abs(img.astype(int) - empty.astype(int)).max(axis=-1)
        assert (diff > 40).mean() > 0.02  # the chair covers a few % of the image at least


@pytest.mark.blender
@needs_bpy
def test_photo_render_is_deterministic_per_seed(tmp_path):
    chair = _write_chair(tmp_path / "chair.obj")
    a = _render_photo(chair, tmp_path, seed=11, n_views=1)
    b = _render_photo(chair, tmp_path, seed=11, n_views=1)
    c = _render_photo(chair, tmp_path, seed=12, n_views=1)
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.blender
@needs_bpy
def test_cli_renders_photo_style_end_to_end(tmp_path):
    shapes, out = tmp_path / "shapes", tmp_path / "out"
    mesh = shapes / "03001627" / "0123abcd" / "models" / "model_normalized.obj"
    mesh.parent.mkdir(parents=True)
    _write_chair(mesh)
    cmd = [sys.executable, "-m", "synth_render", "render", "--shapes", str(shapes), "--out",
           str(out), "--style", "photo", "--views", "2", "--size", "64", "--workers", "1",
           "--samples", "4"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    render_dir = r2n2.rendering_dir(out, "03001627", "0123abcd")
    assert r2n2.is_complete(render_dir, 2)
    for i, name in enumerate(r2n2.read_renderings(render_dir)):
        with Image.open(render_dir / name) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
        with Image.open(r2n2.mask_path(render_dir, i)) as im:  # the object pass
            assert im.mode == "L" and im.size == (64, 64)
            mask = np.asarray(im)
        covered = (mask >= 128).mean()
        assert 0.02 < covered < 0.6  # a chair at the R2N2 framing; no floor, no background
        assert ((mask < 8) | (mask > 247)).mean() > 0.9  # soft only along the outline
