"""The foreground model: its training data, file format, training run and framing use.

Fixtures are written by hand here (a red box on a transparent canvas, a hand-made R2N2-layout
tree with object masks), never by the renderer whose output the model is trained on.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from backend.core.foreground import (
    FOREGROUND_FORMAT,
    ForegroundSegmenter,
    load_foreground,
    save_foreground,
)
from backend.core.preprocess import MASK_SIZE, foreground_box, preprocess_framed
from backend.data import foreground as fd
from backend.models.foreground import ForegroundConfig, ForegroundNet
from backend.training.foreground import ForegroundTrainConfig, loss_fn, mask_iou, train_foreground


def _box_rgba(size: int = 64, box=(20, 16, 44, 48)) -> np.ndarray:
    x0, y0, x1, y1 = box
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[y0:y1, x0:x1] = (220, 30, 30, 255)
    return rgba


def _write_png(path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# --------------------------------------------------------------------------- training data


def test_a_placed_object_and_its_mask_stay_together(tmp_path):
    _write_png(tmp_path / "obj.png", _box_rgba())
    view = fd.ObjectView(tmp_path / "obj.png")
    spans = []
    for seed in range(40):
        img, mask = fd.compose(view, np.random.default_rng(seed), size=128)
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        assert mask.shape == (128, 128) and mask.dtype == np.float32
        on = mask >= 0.5
        if on.sum() < 20:
            continue  # an empty sample, or the box mostly outside the frame
        # the object is red wherever the mask says so (photo effects shift colours a little)
        red = img[..., 0].astype(int) - img[..., 1:].mean(-1)
        inner = np.zeros_like(on)
        inner[2:-2, 2:-2] = on[4:, 4:] & on[:-4, :-4] & on[4:, :-4] & on[:-4, 4:]
        if inner.sum() > 10:
            assert np.median(red[inner]) > 60
            assert np.median(red[~on]) < np.median(red[inner]) - 40
        box = fd.mask_box((mask * 255).astype(np.uint8))
        spans.append(max(box[2] - box[0], box[3] - box[1]) / 128)
    # framings vary: small objects and ones that fill the frame
    assert min(spans) < 0.35 and max(spans) > 0.8


def test_in_context_windows_crop_the_photo_and_the_mask_alike(tmp_path):
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[..., 2] = 200  # a blue photo ...
    photo[20:40, 10:30] = (250, 250, 0)  # ... with a yellow object
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:30] = 255
    _write_png(tmp_path / "00.png", photo)
    _write_png(tmp_path / "masks" / "00.png", mask)
    view = fd.ObjectView(tmp_path / "00.png", tmp_path / "masks" / "00.png")
    rng = np.random.default_rng(3)
    for _ in range(30):
        img, m = fd._window(*view.load()[:2], rng, 96)
        yellow = (img[..., 0] > 125) & (img[..., 2] < 100)
        agree = (yellow == (m >= 0.5)).mean()
        assert agree > 0.97


def test_tree_views_need_masks_for_photo_style(tmp_path, caplog):
    from synth_render import r2n2

    root = tmp_path / "renders_photo"
    for i, model in enumerate(("aaa", "bbb")):
        d = r2n2.rendering_dir(root, "03001627", model)
        _write_png(d / "00.png", np.zeros((8, 8, 3), np.uint8))
        if i == 0:
            _write_png(r2n2.mask_path(d, 0), np.zeros((8, 8), np.uint8))
        r2n2.write_index(d, [r2n2.View(10.0, 20.0, 1.0)])
    views = fd.tree_views(root, ["03001627/aaa", "03001627/bbb", "03001627/ccc"], masks=True)
    assert [v.image.parent.parent.name for v in views] == ["aaa"]
    assert "no object mask" in caplog.text


# --------------------------------------------------------------------------- model and file


def test_the_network_maps_images_to_same_size_logits():
    net = ForegroundNet(ForegroundConfig())
    out = net(torch.zeros(2, 3, 128, 128))
    assert out.shape == (2, 1, 128, 128)
    assert sum(p.numel() for p in net.parameters()) < 2_000_000  # a few MB on disk


def test_the_file_round_trips_and_refuses_others(tmp_path):
    net = ForegroundNet(ForegroundConfig(widths=(4, 8, 8)))
    save_foreground(tmp_path / "fg.pt", net, {"step": 3})
    seg = load_foreground(tmp_path / "fg.pt")
    assert seg.info == {"step": 3}
    x = np.random.default_rng(0).integers(0, 255, (MASK_SIZE, MASK_SIZE, 3), dtype=np.uint8)
    expect = torch.sigmoid(net.eval()(torch.from_numpy(x).permute(2, 0, 1)[None].float()
                                      / 127.5 - 1))[0, 0].detach().numpy()
    assert np.allclose(seg(x), expect, atol=1e-6)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=FOREGROUND_FORMAT):
        load_foreground(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_foreground(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="expected"):
        seg(x[:64])


def test_loss_and_iou_reward_the_right_mask():
    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 4:12] = 1
    good, bad = (target * 20 - 10), -(target * 20 - 10)
    assert loss_fn(good, target) < 0.05 < loss_fn(bad, target)
    assert mask_iou(target[0, 0].numpy(), target[0, 0].numpy()) == 1.0
    assert mask_iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # both empty


# --------------------------------------------------------------------------- training run


def _tiny_tree(root):
    """A hand-made data set: photo views with masks, synthetic RGBA views, a split file."""
    from synth_render import r2n2

    keys = {"target_train": [], "source_train": [], "source_val": [], "test": []}
    rng = np.random.default_rng(0)
    for subset, style in (("target_train", "photo"), ("source_train", "synthetic"),
                          ("source_val", "synthetic")):
        for i in range(2):
            key = f"03001627/{subset}{i}"
            keys[subset].append(key)
            d = r2n2.rendering_dir(root / f"renders_{style}", *key.split("/"))
            x0, y0 = (int(v) for v in rng.integers(8, 24, 2))
            box = (x0, y0, x0 + 24, y0 + 30)
            rgba = _box_rgba(64, box)
            if style == "photo":
                photo = np.where(rgba[..., 3:] > 0, rgba[..., :3], 90).astype(np.uint8)
                _write_png(d / "00.png", photo)
                _write_png(r2n2.mask_path(d, 0), rgba[..., 3].copy())
            else:
                _write_png(d / "00.png", rgba)
            r2n2.write_index(d, [r2n2.View(30.0, 20.0, 1.0)])
    (root / "splits.json").write_text(json.dumps({"version": 1, **keys}))  # splits.json v1
    return root


def test_training_runs_resumes_and_writes_a_loadable_model(tmp_path):
    data = _tiny_tree(tmp_path / "data")
    cfg = ForegroundTrainConfig(data=data, out=tmp_path / "run", steps=2, batch_size=2,
                                val_images=4, val_every=2, checkpoint_every=1, threads=1)
    train_foreground(cfg)
    first = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert first["step"] == 2
    cfg.steps = 3
    out = train_foreground(cfg)  # resumes at step 2
    seg = load_foreground(out)
    assert seg.info["step"] == 3
    assert [h["step"] for h in seg.info["history"]] == [2, 3]
    prob = seg(np.zeros((MASK_SIZE, MASK_SIZE, 3), np.uint8))
    assert prob.shape == (MASK_SIZE, MASK_SIZE) and 0 <= prob.min() <= prob.max() <= 1


def test_a_fine_tune_starts_from_the_given_model_and_keeps_its_widths(tmp_path):
    data = _tiny_tree(tmp_path / "data")
    start = ForegroundNet(ForegroundConfig(widths=(4, 8, 8)))
    save_foreground(tmp_path / "start.pt", start, {"step": 7})
    cfg = ForegroundTrainConfig(data=data, out=tmp_path / "run", steps=1, batch_size=2, lr=0.0,
                                weight_decay=0.0, val_images=4, val_every=1, threads=1,
                                init=tmp_path / "start.pt", procedural=0.5)
    tuned = load_foreground(train_foreground(cfg))
    assert tuned.net.cfg.widths == (4, 8, 8)  # not the default widths of cfg.widths
    # at lr 0 only BatchNorm's running statistics move: the convolutions are the start's
    for name, value in start.state_dict().items():
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(tuned.net.state_dict()[name], value), name


def test_training_without_masks_says_what_to_build(tmp_path):
    data = _tiny_tree(tmp_path / "data")
    for mask in (data / "renders_photo").rglob("masks/*.png"):
        mask.unlink()
    with pytest.raises(SystemExit, match="backend dataset"):
        train_foreground(ForegroundTrainConfig(data=data, out=tmp_path / "run", steps=1))


# --------------------------------------------------------------------------- framing with it


class _Oracle(ForegroundSegmenter):
    """A 'model' that knows where the object is: red pixels."""

    def __init__(self):
        pass

    def __call__(self, rgb):
        return ((rgb[..., 0] > 150) & (rgb[..., 1] < 100)).astype(np.float32)


def test_the_found_box_is_in_full_resolution_pixels():
    photo = np.full((300, 400, 3), 90, np.uint8)
    photo[100:160, 250:330] = (220, 30, 30)
    box, why = foreground_box(photo, _Oracle())
    assert why == "" and np.allclose(box, (250, 100, 330, 160), atol=400 / MASK_SIZE + 1)
    _, framing = preprocess_framed(photo, segmenter=_Oracle())
    assert framing.source == "mask"


# --------------------------------------------------------------------------- re-framed test sets


@pytest.mark.parametrize("variant", ["composited", "fill95", "small35", "offcentre15"])
def test_reframing_puts_the_object_at_the_stated_framing_at_native_resolution(variant):
    from backend.data.reframing import reframe

    photo = np.full((64, 64, 3), 40, np.uint8)
    photo[12:52, 22:42] = (230, 40, 40)  # a red object 40 px tall, 20 wide
    mask = np.zeros((64, 64), np.uint8)
    mask[12:52, 22:42] = 255
    img, box, placed = reframe(photo, mask, variant, np.random.default_rng(0))
    assert fd.mask_box(placed) == box
    side = img.shape[0]
    assert img.shape == (side, side, 3)
    want_side = {"composited": 64, "fill95": round(40 / 0.95), "small35": round(40 / 0.35),
                 "offcentre15": 64}[variant]
    assert side == want_side
    x0, y0, x1, y1 = box
    assert (x1 - x0, y1 - y0) == (20, 40) or variant == "offcentre15"  # never resized
    red = (img[..., 0] > 170) & (img[..., 1] < 110)
    inner = red[y0 + 2:y1 - 2, x0 + 2:x1 - 2]
    assert inner.mean() > 0.95  # the object's own pixels, where the box says
    centre = ((x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2)
    if variant == "offcentre15":
        assert math.hypot(*centre) == pytest.approx(0.15 * 64, abs=1.0)
    else:
        assert max(abs(c) for c in centre) <= 1.0
    # the rest is a background photo, not the render's flat grey: no pasted rectangle
    outside = np.ones_like(red)
    outside[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = False
    assert not (np.abs(img[outside].astype(int) - 40).max(axis=-1) < 6).all()


def test_reframed_trees_keep_the_index_and_skip_models_without_masks(tmp_path):
    from backend.data.reframing import build_reframed_trees
    from synth_render import r2n2

    src = tmp_path / "renders_photo"
    for model, masked in (("aaa", True), ("bbb", False)):
        d = r2n2.rendering_dir(src, "03001627", model)
        photo = np.full((64, 64, 3), 40, np.uint8)
        photo[20:40, 20:40] = 200
        _write_png(d / "00.png", photo)
        if masked:
            m = np.zeros((64, 64), np.uint8)
            m[20:40, 20:40] = 255
            _write_png(r2n2.mask_path(d, 0), m)
        r2n2.write_index(d, [r2n2.View(30.0, 20.0, 1.0)])
    trees = build_reframed_trees(src, ["03001627/aaa", "03001627/bbb"], tmp_path / "out")
    for tree in trees.values():
        out = r2n2.rendering_dir(tree, "03001627", "aaa")
        assert r2n2.is_complete(out, 1)
        assert r2n2.read_metadata(out) == r2n2.read_metadata(
            r2n2.rendering_dir(src, "03001627", "aaa"))
        assert not r2n2.rendering_dir(tree, "03001627", "bbb").exists()
        assert r2n2.tree_conventions(tree, r2n2.RENDERS)["source"] == "reframed"
        assert r2n2.mask_path(out, 0).is_file()


def test_cut_out_renders_become_a_masked_tree_that_reframes(tmp_path):
    """The dev set's source: a synthetic render's alpha is its object mask."""
    from backend.data.reframing import alpha_object_tree, build_reframed_trees
    from synth_render import r2n2

    src = r2n2.rendering_dir(tmp_path / "renders_synthetic", "03001627", "aaa")
    views = [r2n2.View(30.0, 20.0, 1.0), r2n2.View(120.0, 25.0, 0.9), r2n2.View(200, 28, 0.8)]
    for i in range(3):
        _write_png(src / r2n2.view_file_name(i), _box_rgba(box=(20 + i, 16, 44, 48)))
    r2n2.write_index(src, views)
    out = alpha_object_tree(tmp_path / "renders_synthetic", ["03001627/aaa", "03001627/none"],
                            tmp_path / "dev", views=2)
    dst = r2n2.rendering_dir(out, "03001627", "aaa")
    assert r2n2.is_complete(dst, 2) and r2n2.read_metadata(dst) == views[:2]
    for i in range(2):
        rgb = np.asarray(Image.open(dst / r2n2.view_file_name(i)))
        mask = np.asarray(Image.open(r2n2.mask_path(dst, i)))
        assert rgb.shape == (64, 64, 3) and mask.shape == (64, 64)
        assert fd.mask_box(mask) == (20 + i, 16, 44, 48)
        assert (rgb[mask == 255] == (220, 30, 30)).all()
    trees = build_reframed_trees(out, ["03001627/aaa"], tmp_path / "trees", seed=7)
    small = r2n2.rendering_dir(trees["small35"], "03001627", "aaa")
    placed = np.asarray(Image.open(r2n2.mask_path(small, 0)))
    x0, y0, x1, y1 = fd.mask_box(placed)
    assert placed.shape[0] == round(32 / 0.35) and max(x1 - x0, y1 - y0) == 32


def test_eval_foreground_scores_a_perfect_model_one_and_a_blind_one_zero(tmp_path):
    from backend.evaluation.foreground import box_iou, evaluate_foreground
    from synth_render import r2n2

    root = tmp_path / "renders_photo"
    d = r2n2.rendering_dir(root, "03001627", "aaa")
    photo = np.full((64, 64, 3), 90, np.uint8)
    photo[16:48, 8:40] = (220, 30, 30)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 8:40] = 255
    _write_png(d / "00.png", photo)
    _write_png(r2n2.mask_path(d, 0), mask)
    r2n2.write_index(d, [r2n2.View(30.0, 20.0, 1.0)])
    perfect = evaluate_foreground(root, ["03001627/aaa"], _Oracle())
    assert perfect["images"] == 1
    assert perfect["class_mean"]["mask_iou"] > 0.97
    assert perfect["class_mean"]["box_iou"] > 0.95 and perfect["class_mean"]["fallback"] == 0

    class Blind(_Oracle):
        def __call__(self, rgb):
            return np.zeros(rgb.shape[:2], np.float32)

    blind = evaluate_foreground(root, ["03001627/aaa"], Blind())
    assert blind["class_mean"]["box_iou"] == 0 and blind["class_mean"]["fallback"] == 1
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)


def test_cached_samples_are_made_once_and_match_the_samples_they_stand_for(tmp_path):
    data = _tiny_tree(tmp_path / "data")
    cfg = ForegroundTrainConfig(data=data, out=tmp_path / "run", steps=2, batch_size=2,
                                val_images=4, val_every=2, checkpoint_every=1, threads=1,
                                cache_samples=5, sample_workers=1, widths=(4, 8, 8))
    train_foreground(cfg)
    chunk = tmp_path / "run" / "samples" / "0000-5.npz"
    cached = np.load(chunk)
    assert cached["images"].shape == (5, 128, 128, 3) and cached["masks"].shape == (5, 128, 128)
    photo, synthetic = (fd.tree_views(data / f"renders_{s}", [f"03001627/{k}{i}" for i in (0, 1)],
                                      masks=s == "photo")
                        for s, k in (("photo", "target_train"), ("synthetic", "source_train")))
    img, mask = fd.sample(photo, synthetic, 3, cfg.seed, cfg.photo_share)
    assert np.array_equal(cached["images"][3], img)
    assert np.array_equal(cached["masks"][3], np.rint(mask * 255).astype(np.uint8))
    made = chunk.stat().st_mtime_ns
    cfg.steps = 3
    seg = load_foreground(train_foreground(cfg))  # resumes; the samples are not made again
    assert chunk.stat().st_mtime_ns == made and seg.net.cfg.widths == (4, 8, 8)
    cfg.seed = 1
    with pytest.raises(SystemExit, match="another"):
        train_foreground(cfg)


def test_procedural_backgrounds_replace_the_photos_only_when_asked(tmp_path):
    _write_png(tmp_path / "obj.png", _box_rgba())
    view = fd.ObjectView(tmp_path / "obj.png")
    for seed in range(12):
        plain = fd.compose(view, np.random.default_rng(seed), size=64)
        same = fd.compose(view, np.random.default_rng(seed), size=64, mix=fd.SampleMix(0.0, 0.0))
        assert all(np.array_equal(a, b) for a, b in zip(plain, same, strict=True))
        img, mask = fd.compose(view, np.random.default_rng(seed), size=64,
                               mix=fd.SampleMix(procedural=1.0))
        # the object is where its mask says, as over a photo: only the background changed
        assert np.array_equal(mask >= 0.5, plain[1] >= 0.5)
        off = mask < 0.01
        if off.sum() > 100:
            assert not np.array_equal(img[off], plain[0][off])


# The digest of the placed masks of samples 0-15 below (seed 3, procedural backgrounds only, so
# no photo asset is read), made by the code before SampleMix and distractors existed (commit
# 0468212): zero distractors must keep every earlier sample, so the draws' order may never move.
PLAIN_MASKS_DIGEST = "e4016929780d43cf"


def test_a_sample_mix_without_distractors_draws_the_earlier_samples(tmp_path):
    import hashlib

    _write_png(tmp_path / "a.png", _box_rgba())
    _write_png(tmp_path / "b.png", _box_rgba(box=(8, 30, 60, 40)))
    views = [fd.ObjectView(tmp_path / "a.png"), fd.ObjectView(tmp_path / "b.png")]
    digest = hashlib.sha256()
    for i in range(16):
        _, mask = fd.sample(views, views, i, seed=3, photo_share=0.5, size=64,
                            mix=fd.SampleMix(procedural=1.0, distractors=0.0))
        digest.update(np.packbits(mask >= 0.5).tobytes())
    assert digest.hexdigest()[:16] == PLAIN_MASKS_DIGEST


def _red_and_blue_views(tmp_path) -> tuple[fd.ObjectView, fd.ObjectView]:
    """A red box and a wide blue box, each on a transparent canvas."""
    _write_png(tmp_path / "red.png", _box_rgba())
    blue = np.zeros((64, 64, 4), np.uint8)
    blue[10:54, 4:60] = (30, 40, 230, 255)
    _write_png(tmp_path / "blue.png", blue)
    return fd.ObjectView(tmp_path / "red.png"), fd.ObjectView(tmp_path / "blue.png")


def test_a_distractor_is_background_near_a_border_behind_a_whole_subject(tmp_path):
    """The subject (red) is whole and towards the middle, and the mask is it alone; the
    distractor (blue) is drawn, near a border, and never in the mask."""
    red, other = _red_and_blue_views(tmp_path)
    size, shown = 96, 0
    for seed in range(30):
        img, mask = fd.compose(red, np.random.default_rng(seed), size=size, distractor=other)
        if mask.max() < 0.5:
            continue  # an empty sample (EMPTY_P): background alone
        x0, y0, x1, y1 = fd.mask_box(mask, 0.5)
        assert x0 > 0 and y0 > 0 and x1 < size and y1 < size  # whole
        assert abs((x0 + x1) / 2 - size / 2) < 0.4 * size
        rgb = img.astype(int)
        is_red = (rgb[..., 0] > rgb[..., 2] + 60) & (mask >= 0.5)
        is_blue = (rgb[..., 2] > rgb[..., 0] + 60) & (rgb[..., 2] > rgb[..., 1] + 40)
        assert is_red.sum() > 0.5 * (mask >= 0.5).sum()
        assert (mask[is_blue] < 0.5).mean() > 0.95  # the distractor is background
        if is_blue.sum() > 20:
            shown += 1
            ys, xs = np.nonzero(is_blue)
            margin = min(xs.min(), ys.min(), size - 1 - xs.max(), size - 1 - ys.max())
            assert margin <= 0.15 * size + 2
    assert shown >= 15


def test_drawn_distractors_come_from_the_pools_and_stay_out_of_the_mask(tmp_path):
    """sample() with every sample given a distractor: where a red and a blue object both show,
    one of them is the mask and the other is not in it."""
    pool = list(_red_and_blue_views(tmp_path))
    both = 0
    for i in range(40):
        img, mask = fd.sample(pool, pool, i, seed=5, photo_share=0.5, size=96,
                              mix=fd.SampleMix(distractors=1.0))
        rgb = img.astype(int)
        red = (rgb[..., 0] > rgb[..., 2] + 60) & (rgb[..., 0] > rgb[..., 1] + 60)
        blue_px = (rgb[..., 2] > rgb[..., 0] + 60) & (rgb[..., 2] > rgb[..., 1] + 40)
        if red.sum() < 20 or blue_px.sum() < 20:
            continue  # the same object twice, or one hidden
        both += 1
        on = mask >= 0.5  # the mask is one of the two (the background photo may share a colour)
        shares = sorted([(red & on).sum() / on.sum(), (blue_px & on).sum() / on.sum()])
        assert shares[0] < 0.05 and shares[1] > 0.7, shares
    assert both >= 8


def test_every_kind_of_procedural_background_is_a_textured_image():
    from backend.data import textures

    rng = np.random.default_rng(0)
    for kind, generator in textures.GENERATORS.items():
        for size in ((48, 80), (64, 64)):
            img = generator(rng, *size)
            assert img.shape == (*size, 3) and np.isfinite(img).all(), kind
    a = textures.procedural_background(np.random.default_rng(5), (40, 60))
    b = textures.procedural_background(np.random.default_rng(5), (40, 60))
    assert a.shape == (40, 60, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    spreads = [textures.procedural_background(np.random.default_rng(s), (64, 64)).std()
               for s in range(30)]
    assert np.median(spreads) > 5  # mostly textures, not flat fills
    noise = textures.fractal_noise(np.random.default_rng(1), 32, 48, 2.0)
    assert noise.shape == (32, 48) and noise.min() == 0.0 and noise.max() == 1.0


def test_reaspect_shows_a_square_sample_as_a_padded_photo():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.ones((64, 64), np.float32)
    shapes = set()
    for _ in range(20):
        img, m = fd.reaspect(image, mask, rng)
        assert img.shape == (64, 64, 3) and m.shape == (64, 64)
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        kept = (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
        assert min(kept) >= round(64 * fd.ASPECT_RANGE[0]) and max(kept) == 64
        shapes.add(kept)
        if kept[0] < 64:  # padding rows repeat the image's edge rows, and are not the object
            assert np.array_equal(img[0], img[rows[0]]) and m[:rows[0]].sum() == 0
    assert len(shapes) > 5
