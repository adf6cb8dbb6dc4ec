"""Torch data sets on tiny fixtures made here: R2N2 renders + binvox, image folders, Pix3D."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import synth_render.binvox
from backend.data import datasets as data
from backend.data.datasets import ImageOnlyDataset, Pix3DDataset, RenderVoxelDataset
from synth_render import r2n2, taxonomy
from synth_render.binvox import write_binvox

CHAIR, TABLE = "03001627", "04379243"
CHAIR_INDEX, TABLE_INDEX = 4, 10
VIEWS = [r2n2.View(30.0, 25.5, 0.7), r2n2.View(200.0, 27.0, 0.8), r2n2.View(359.0, 29.9, 0.9)]


def _rgba_render(color=(180, 40, 40), size=64) -> Image.Image:
    """An object (a disc) on a transparent background, like the synthetic renders."""
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[(xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 4) ** 2] = (*color, 255)
    return Image.fromarray(rgba, "RGBA")


def _slab(height: int = 10) -> np.ndarray:
    grid = np.zeros((32, 32, 32), bool)
    grid[:, :height, :] = True  # a floor slab: low y (+Y up)
    return grid


def _write_model(render_root: Path | None, voxel_root: Path | None, key: str,
                 views=VIEWS, slab=10) -> None:
    synset, model_id = key.split("/")
    if render_root is not None:
        render_dir = r2n2.rendering_dir(render_root, synset, model_id)
        render_dir.mkdir(parents=True)
        for i in range(len(views)):
            _rgba_render().save(render_dir / r2n2.view_file_name(i))
        r2n2.write_index(render_dir, list(views))
    if voxel_root is not None:
        write_binvox(r2n2.voxel_path(voxel_root, synset, model_id), _slab(slab))


@pytest.fixture
def r2n2_tree(tmp_path):
    """Renders and voxels in separate trees: two complete models, one without voxels, one
    without renders."""
    renders, voxels = tmp_path / "renders", tmp_path / "voxels"
    _write_model(renders, voxels, f"{CHAIR}/a1", slab=10)
    _write_model(renders, voxels, f"{TABLE}/b2", views=VIEWS[:2], slab=20)
    _write_model(renders, None, f"{CHAIR}/c3")
    _write_model(None, voxels, f"{TABLE}/d4")
    keys = [f"{CHAIR}/a1", f"{TABLE}/b2", f"{CHAIR}/c3", f"{TABLE}/d4"]
    return renders, voxels, keys


def test_class_names_follow_the_taxonomy_order():
    assert data.NUM_CLASSES == 13 and len(data.class_names()) == 13
    assert data.class_names()[CHAIR_INDEX] == "chair"
    assert data.class_names()[TABLE_INDEX] == "table"
    assert data.class_index(CHAIR) == list(taxonomy.ALL_SYNSETS).index(CHAIR)


def test_paired_items(r2n2_tree, caplog):
    renders, voxels, keys = r2n2_tree
    with caplog.at_level(logging.WARNING, logger="backend.data.datasets"):
        ds = RenderVoxelDataset(renders, voxels, keys)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 of 4" in warnings[0].getMessage()
    assert ds.keys == [f"{CHAIR}/a1", f"{TABLE}/b2"] and len(ds) == 5

    item = ds[1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert torch.all(item["image"][:, 0, 0] == 1.0)  # transparent background -> white
    assert item["voxels"].shape == (32, 32, 32) and item["voxels"].dtype == torch.float32
    np.testing.assert_array_equal(item["voxels"].numpy(), _slab(10).astype(np.float32))
    assert item["class_index"].dtype == torch.long and item["class_index"].shape == ()
    assert int(item["class_index"]) == CHAIR_INDEX
    torch.testing.assert_close(item["view"], torch.tensor([200.0, 27.0]))
    assert item["key"] == f"{CHAIR}/a1" and item["view_index"] == 1

    last = ds[4]
    assert int(last["class_index"]) == TABLE_INDEX and last["view_index"] == 1
    assert int(last["voxels"][:, :20].sum()) == 32 * 20 * 32 == int(last["voxels"].sum())


def test_view_count_and_size(r2n2_tree):
    renders, voxels, keys = r2n2_tree
    ds = RenderVoxelDataset(renders, voxels, keys, views=1, size=32)
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 32, 32)


def test_nothing_usable_is_a_clear_error(r2n2_tree, tmp_path):
    renders, voxels, keys = r2n2_tree
    with pytest.raises(ValueError, match="no usable models"):
        RenderVoxelDataset(renders, tmp_path / "nowhere", keys)
    with pytest.raises(ValueError, match="no complete renders"):
        ImageOnlyDataset.from_r2n2(tmp_path / "nowhere", keys)


def test_augmentation_is_light_and_seeded(r2n2_tree):
    renders, voxels, keys = r2n2_tree
    plain = RenderVoxelDataset(renders, voxels, keys)[0]
    aug = RenderVoxelDataset(renders, voxels, keys, augment=True)
    torch.manual_seed(0)
    first = aug[0]
    torch.manual_seed(0)
    again = aug[0]
    torch.testing.assert_close(first["image"], again["image"])
    assert first["image"].shape == plain["image"].shape
    assert first["image"].min() >= -1 and first["image"].max() <= 1
    # Labels untouched; the image changes only a little.
    torch.testing.assert_close(first["voxels"], plain["voxels"])
    torch.testing.assert_close(first["view"], plain["view"])
    assert 0 < (first["image"] - plain["image"]).abs().mean() < 0.3


def test_dataloader_collates(r2n2_tree):
    renders, voxels, keys = r2n2_tree
    loader = DataLoader(RenderVoxelDataset(renders, voxels, keys), batch_size=2, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 64, 64)
    assert batch["voxels"].shape == (2, 32, 32, 32)
    assert batch["class_index"].shape == (2,) and batch["view"].shape == (2, 2)
    assert batch["key"] == [f"{CHAIR}/a1"] * 2 and batch["view_index"].tolist() == [0, 1]
    images = DataLoader(ImageOnlyDataset.from_r2n2(renders, keys), batch_size=2)
    assert next(iter(images))["image"].shape == (2, 3, 64, 64)


# Paths opened while `_OPENED` is a list (an audit hook sees every open, whatever the API).
_OPENED: list[str] | None = None


def _record_open(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | bytes | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_record_open)


def test_target_images_cannot_reach_voxels(r2n2_tree, monkeypatch):
    global _OPENED
    renders, voxels, keys = r2n2_tree

    def forbidden(*args, **kwargs):
        raise AssertionError("the target loader read voxels")

    monkeypatch.setattr(synth_render.binvox, "read_binvox", forbidden)
    _OPENED = []
    try:
        ds = ImageOnlyDataset.from_r2n2(renders, keys, augment=True)
        items = list(DataLoader(ds, batch_size=2, num_workers=0))
        items += [ds[i] for i in range(len(ds))]
        opened = _OPENED
    finally:
        _OPENED = None
    assert len(ds) == 3 + 2 + 3  # the model without voxels still gives target images
    assert opened and not [p for p in opened if p.endswith(".binvox") or str(voxels) in p]
    assert all(set(item) == {"image", "path"} for item in items)
    assert not any(str(voxels) in repr(v) for v in vars(ds).values())


def test_paste_over_puts_the_render_on_a_target_image(r2n2_tree, tmp_path):
    """Cut-paste for unsupervised training: the object stays, white becomes the photo."""
    renders, voxels, keys = r2n2_tree
    (tmp_path / "photos").mkdir()
    green_photo = np.full((40, 40, 3), (20, 200, 30), np.uint8)
    Image.fromarray(green_photo).save(tmp_path / "photos" / "green.png")
    photos = ImageOnlyDataset.from_folder(tmp_path / "photos", size=64)
    plain = RenderVoxelDataset(renders, voxels, keys)[0]
    always = RenderVoxelDataset(renders, voxels, keys, backgrounds=photos, paste_p=1.0)[0]
    never = RenderVoxelDataset(renders, voxels, keys, backgrounds=photos, paste_p=0.0)[0]
    torch.testing.assert_close(never["image"], plain["image"])
    green = torch.tensor([20, 200, 30]) / 127.5 - 1.0
    torch.testing.assert_close(always["image"][:, 0, 0], green, atol=0.02, rtol=0)  # corner
    torch.testing.assert_close(always["image"][:, 32, 32], plain["image"][:, 32, 32])  # disc
    torch.testing.assert_close(always["voxels"], plain["voxels"])  # labels untouched
    with pytest.raises(ValueError, match="paste_p"):
        RenderVoxelDataset(renders, voxels, keys, backgrounds=photos, paste_p=1.5)


def test_alpha_mask_follows_the_preprocessing_geometry():
    from backend.core.preprocess import alpha_mask, preprocess

    rgba = np.zeros((40, 80, 4), np.uint8)
    rgba[10:30, 30:50] = (255, 0, 0, 255)  # a red box in a wide, transparent image
    alpha = alpha_mask(rgba, 32)
    image = preprocess(rgba, 32)
    red = (image[0] > 0.5) & (image[1] < -0.5)
    assert alpha.shape == (32, 32) and alpha.dtype == np.float32
    assert np.array_equal(alpha > 0.5, red)
    assert alpha_mask(rgba[:, :, :3], 32) is None  # opaque: nothing to paste onto


def test_image_folder(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    photo = Image.fromarray(np.full((20, 30, 3), 90, np.uint8))
    photo.save(tmp_path / "a" / "b" / "Z.JPG", "JPEG")
    photo.save(tmp_path / "a" / "x.png")
    photo.save(tmp_path / "y.webp")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageOnlyDataset.from_folder(tmp_path, size=16)
    assert [Path(p).name for p in map(str, ds.files)] == ["Z.JPG", "x.png", "y.webp"]
    item = ds[0]
    assert set(item) == {"image", "path"} and item["image"].shape == (3, 16, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageOnlyDataset.from_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="does not exist"):
        ImageOnlyDataset.from_folder(tmp_path / "missing")


@pytest.mark.parametrize("azimuth", [0.0, 30.0, 90.0, 179.0, 200.0, 270.0, 359.5])
@pytest.mark.parametrize("elevation", [-20.0, 0.0, 27.5, 60.0])
def test_view_angles_invert_the_r2n2_camera(azimuth, elevation):
    location = r2n2.View(azimuth, elevation, 0.8).location_shapenet()
    az, el = data.view_angles(location)
    assert az == pytest.approx(azimuth, abs=1e-9) and el == pytest.approx(elevation, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Pix3D fixture: pix3d.json, img/, mask/, model/ as Pix3D ships them.
# ---------------------------------------------------------------------------------------------

OBJECT_RGB = (20, 160, 60)


def _box_obj(path: Path, extents) -> None:
    import trimesh

    path.parent.mkdir(parents=True, exist_ok=True)
    box = trimesh.creation.box(extents=extents)
    box.apply_translation((5.0, 3.0, -2.0))  # Pix3D models need not be centred
    box.export(path)


def _pix3d_record(root: Path, name: str, category: str, ext: str, view: r2n2.View | None,
                  truncated: bool = False) -> dict:
    """A 90x60 photo (noisy background) with the object at x 30..60, y 10..50."""
    rng = np.random.default_rng(len(name))
    photo = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    mask = np.zeros((60, 90), np.uint8)
    mask[10:50, 30:60] = 255
    photo[mask > 0] = OBJECT_RGB
    img, msk = f"img/{category}/{name}.{ext}", f"mask/{category}/{name}.png"
    (root / img).parent.mkdir(parents=True, exist_ok=True)
    (root / msk).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(root / img, quality=95)
    Image.fromarray(mask).save(root / msk)
    model = f"model/{category}/IKEA_{name}/model.obj"
    _box_obj(root / model, (1.0, 2.0, 0.5))
    rec = {"img": img, "category": category, "img_size": [90, 60], "bbox": [30, 10, 59, 49],
           "mask": msk, "model": model, "truncated": truncated, "occluded": False,
           "rot_mat": np.eye(3).tolist(), "trans_mat": [0, 0, 2], "focal_length": 35.0,
           "inplane_rotation": 0.0, "voxel": f"model/{category}/IKEA_{name}/voxel.mat"}
    if view is not None:
        rec["cam_position"] = view.location_shapenet().tolist()
    return rec


@pytest.fixture
def pix3d_root(tmp_path):
    records = [
        _pix3d_record(tmp_path, "0001", "chair", "jpg", r2n2.View(45.0, 20.0, 0.8)),
        _pix3d_record(tmp_path, "0002", "desk", "png", None),
        _pix3d_record(tmp_path, "0003", "bed", "jpg", r2n2.View(10.0, 10.0, 0.8)),
        _pix3d_record(tmp_path, "0004", "chair", "jpg", r2n2.View(300.0, 5.0, 0.8),
                      truncated=True),
    ]
    (tmp_path / "pix3d.json").write_text(json.dumps(records))
    return tmp_path


def test_pix3d_items(pix3d_root):
    ds = Pix3DDataset(pix3d_root)
    assert [r.img for r in ds.records] == ["img/chair/0001.jpg", "img/desk/0002.png"]
    chair, desk = ds[0], ds[1]
    assert int(chair["class_index"]) == CHAIR_INDEX and int(desk["class_index"]) == TABLE_INDEX
    torch.testing.assert_close(chair["view"], torch.tensor([45.0, 20.0]))
    assert torch.isnan(desk["view"]).all()
    image = chair["image"]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert torch.all(image[:, :4, :] == 1.0) and torch.all(image[:, :, :4] == 1.0)  # white
    expected = torch.tensor(OBJECT_RGB, dtype=torch.float32) / 127.5 - 1
    torch.testing.assert_close(image[:, 32, 32], expected, atol=0.05, rtol=0)
    # The object's longer side spans about OBJECT_FRACTION of the frame, centred.
    rows = torch.nonzero((image - 1).abs().amax(dim=(0, 2)) > 0.2).flatten()
    assert abs(len(rows) / 64 - data.OBJECT_FRACTION) < 0.06
    assert abs(rows.float().mean().item() - 31.5) < 1.5
    # Voxels: a 1 x 2 x 0.5 box, +Y longest, fitted to the grid cube.
    vox = chair["voxels"]
    assert vox.shape == (32, 32, 32) and set(vox.unique().tolist()) == {0.0, 1.0}
    filled = torch.nonzero(vox)
    spans = (filled.max(dim=0).values - filled.min(dim=0).values + 1).tolist()
    assert spans[1] == 32 and 15 <= spans[0] <= 18 and 7 <= spans[2] <= 10
    torch.testing.assert_close(desk["voxels"], vox)  # same box; cached per model path
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 64, 64) and batch["voxels"].shape == (2, 32, 32, 32)


def test_pix3d_class_selection(pix3d_root):
    assert len(Pix3DDataset(pix3d_root, include_truncated=True)) == 3
    assert [r.img for r in Pix3DDataset(pix3d_root, classes=["chair"]).records] == [
        "img/chair/0001.jpg"]
    beds = Pix3DDataset(pix3d_root, classes={"bed": "sofa"})
    assert len(beds) == 1 and int(beds[0]["class_index"]) == data.class_index("04256520")
    with pytest.raises(ValueError, match="no default class"):
        Pix3DDataset(pix3d_root, classes=["bed"])
    with pytest.raises(ValueError, match="no usable Pix3D records"):
        Pix3DDataset(pix3d_root, classes=["wardrobe"])
    with pytest.raises(ValueError, match="cannot read Pix3D annotations"):
        Pix3DDataset(pix3d_root / "img")


def test_shift_moves_content_and_replicates_edges():
    img = np.zeros((1, 5, 5), np.float32)
    img[0, 2, 2] = 1.0
    img[0, :, 0] = 0.5  # left edge
    out = data._shift(img, dx=2, dy=-1)
    assert out[0, 1, 4] == 1.0 and out[0, 2, 4] == 0.0 and out.sum() == 1.0 + 0.5 * 15
    assert np.all(out[0, :, :3] == 0.5)  # the left edge fills the uncovered columns
