"""Framing: the object found (user box, alpha, foreground mask) and re-framed as the training
renders are, with the square the network saw reported in full-resolution upright pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from backend.core.preprocess import (
    FRAMING_OFFSET,
    FRAMING_RANGE,
    MASK_SIZE,
    OBJECT_FRACTION,
    foreground_mask,
    preprocess,
    preprocess_framed,
    range_framed_box,
    square_box_around,
)
from backend.protocol import messages as m


def _object_rgba(side: int = 137) -> Image.Image:
    """A hand-made render: a two-tone object on transparency, longer side 64 % of the frame,
    its box deliberately off the image centre (as perspective leaves real renders)."""
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    w, h = round(0.64 * side), round(0.40 * side)
    x0, y0 = (side - w) // 2 + 5, (side - h) // 2 - 7
    img.paste((200, 40, 30, 255), (x0, y0, x0 + w, y0 + h))
    img.paste((30, 60, 180, 255), (x0 + w // 3, y0 + h // 4, x0 + w // 2, y0 + h))
    return img


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _box_iou(a, b) -> float:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


def _opaque_box(img: Image.Image) -> tuple[int, int, int, int]:
    alpha = np.asarray(img)[:, :, 3] > 0
    ys, xs = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    return xs[0], ys[0], xs[-1] + 1, ys[-1] + 1


def test_a_cut_out_pasted_small_and_off_centre_gives_the_renders_input():
    render = _object_rgba()
    canvas = Image.new("RGBA", (1200, 900), (0, 0, 0, 0))
    canvas.paste(render, (80, 610))  # small, near a corner
    framed, framing = preprocess_framed(_encode(canvas))
    # The render at the renders' median framing, centred on its object.
    as_rendered = preprocess(_encode(render), crop=square_box_around(_opaque_box(render)))
    assert framing.source == "alpha" and framing.note == ""
    # Same object pixels at the same scale: the same network input but for rounding.
    assert np.abs(framed - as_rendered).mean() * 127.5 < 1.0
    # Without framing the object is a speck in the corner.
    raw = preprocess(_encode(canvas))
    assert np.abs(raw - as_rendered).mean() * 127.5 > 20
    # The square reported: centred on the opaque box, which spans 64 % of it.
    x, y, w, h = framing.box
    assert w == h and w == pytest.approx(round(0.64 * 137) / OBJECT_FRACTION, abs=2)


def test_a_render_framed_as_the_renders_are_is_left_as_it_is():
    # Longer side 64 % of the frame, centre 5 and 7 px (4-5 %) off: within the renders' range.
    render = _encode(_object_rgba())
    image, framing = preprocess_framed(render)
    assert framing.source == "alpha" and framing.box == (0.0, 0.0, 137.0, 137.0)
    assert np.array_equal(image, preprocess(render))


@pytest.mark.parametrize("share, offset, kept", [
    (0.64, 0.0, True), (0.50, 0.07, True), (0.80, -0.05, True),  # as the renders frame
    (0.95, 0.0, False), (0.35, 0.0, False), (0.64, 0.15, False),  # close-up, wide, shifted
])
def test_range_framing_keeps_the_renders_framings_and_reframes_the_rest(share, offset, kept):
    width, height = 1000, 600  # the padded square: side 1000, from y = -200
    longer, shorter = share * 1000, share * 500
    cx, cy = 500 + offset * 1000, 300 - offset * 1000 / 2
    bbox = (cx - longer / 2, cy - shorter / 2, cx + longer / 2, cy + shorter / 2)
    box = range_framed_box(bbox, (width, height))
    if kept:
        assert box == pytest.approx((0, -200, 1000, 1000))
    else:  # the renders' median framing, centred on the object
        assert box == pytest.approx((cx - longer / OBJECT_FRACTION / 2,
                                     cy - longer / OBJECT_FRACTION / 2,
                                     longer / OBJECT_FRACTION, longer / OBJECT_FRACTION))
    assert FRAMING_RANGE[0] < OBJECT_FRACTION < FRAMING_RANGE[1] and 0 < FRAMING_OFFSET < 0.1


def test_framing_off_is_todays_preprocessing_and_reports_the_padded_square():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 200, 3), np.uint8))
    data = _encode(photo, "JPEG")
    image, framing = preprocess_framed(data, autocrop=False)
    assert np.array_equal(image, preprocess(data))
    assert framing.source == "none" and framing.box == (0.0, -40.0, 200.0, 200.0)
    # A user crop without framing is the region used, padded to its square.
    _, framing = preprocess_framed(data, crop=(10, 20, 60, 40), autocrop=False)
    assert framing.source == "user" and framing.box == (10.0, 10.0, 60.0, 60.0)


def test_a_user_box_marks_the_object_and_is_reframed():
    photo = Image.fromarray(np.full((400, 600, 3), 128, np.uint8))
    _, framing = preprocess_framed(_encode(photo, "JPEG"), crop=(100, 150, 128, 64))
    x, y, w, h = framing.box
    assert framing.source == "user"
    assert w == h == pytest.approx(128 / OBJECT_FRACTION, abs=1)
    assert (x + w / 2, y + h / 2) == pytest.approx((164, 182), abs=1)


def test_fallbacks_answer_clearly_and_report_the_crop():
    transparent = _encode(Image.new("RGBA", (50, 40), (0, 0, 0, 0)))
    _, framing = preprocess_framed(transparent)
    assert framing.source == "none" and "transparent everywhere" in framing.note
    assert framing.box == (0.0, -5.0, 50.0, 50.0)

    opaque_rgba = _encode(Image.new("RGBA", (40, 40), (90, 90, 90, 255)))
    _, framing = preprocess_framed(opaque_rgba)
    assert framing.source == "none" and "opaque everywhere" in framing.note

    blank = _encode(Image.new("RGB", (64, 48), (255, 255, 255)), "JPEG")
    _, framing = preprocess_framed(blank)
    assert framing.source == "none" and "no foreground model" in framing.note

    thin = Image.new("RGBA", (1, 40), (0, 0, 0, 0))
    thin.putpixel((0, 20), (255, 0, 0, 255))
    image, framing = preprocess_framed(_encode(thin))
    assert image.shape == (3, 64, 64) and np.isfinite(image).all()
    assert framing.source == "alpha"


def test_a_huge_phone_jpeg_with_exif_rotation_reports_its_upright_full_size_square():
    stored = Image.new("RGB", (8000, 6000), (120, 130, 140))  # 48 MP: decoded reduced
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _encode(stored, "JPEG", exif=exif, quality=70)
    image, framing = preprocess_framed(data)
    assert image.shape == (3, 64, 64)
    # Displayed 6000 wide, 8000 tall; the square padded around it, in full-size pixels.
    assert framing.source == "none"
    assert framing.box == pytest.approx((-1000.0, 0.0, 8000.0, 8000.0), abs=8)


class ColourSegmenter:
    """A stand-in foreground model for the framing geometry: the objects in these scenes are
    red, their backgrounds green (the real model is tested with its weights)."""

    def __init__(self, confident: bool = True):
        self.confident, self.seen = confident, []

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.seen.append(rgb.shape)
        if not self.confident:
            return np.full(rgb.shape[:2], 0.5, np.float32)
        r, g = rgb[..., 0].astype(np.int16), rgb[..., 1].astype(np.int16)
        return (r - g > 80).astype(np.float32)


def _scene(size=(900, 700), box=(520, 80, 760, 260)) -> bytes:
    rng = np.random.default_rng(3)
    bg = (rng.normal(0, 4, (size[1], size[0], 3)) + (90, 140, 90)).clip(0, 255)
    x0, y0, x1, y1 = box
    bg[y0:y1, x0:x1] = (220, 50, 40)
    return _encode(Image.fromarray(bg.astype(np.uint8)), "JPEG", quality=95)


def test_mask_framing_finds_the_object_where_it_was_composited():
    seg = ColourSegmenter()
    true = (520, 80, 760, 260)
    _, framing = preprocess_framed(_scene(box=true), segmenter=seg)
    # Smaller than the renders ever frame it: looked at again, closer.
    assert framing.source == "mask" and seg.seen == [(MASK_SIZE, MASK_SIZE, 3)] * 2
    x, y, w, h = framing.box
    side = max(true[2] - true[0], true[3] - true[1]) / OBJECT_FRACTION
    assert w == pytest.approx(side, rel=0.05)
    cx, cy = x + w / 2, y + h / 2
    found = (cx - w * OBJECT_FRACTION / 2, cy - (true[3] - true[1]) / 2,
             cx + w * OBJECT_FRACTION / 2, cy + (true[3] - true[1]) / 2)
    assert _box_iou(found, true) >= 0.7


def test_a_small_object_is_looked_at_again_closer_and_outlined_to_the_pixel():
    # 1/16 of a 1600-wide photo: 8 x 6 pixels in the segmenter's whole-image view, whose box
    # alone is off by up to a view pixel (12.5 photo pixels) on each side.
    true = (1003, 611, 1103, 681)
    seg = ColourSegmenter()
    _, box, why = foreground_mask(_scene((1600, 1200), true), seg)
    assert why == "" and len(seg.seen) == 2
    assert box == pytest.approx(true, abs=1.5)
    # A first look that finds the object big enough is the only one.
    seg = ColourSegmenter()
    foreground_mask(_scene((900, 700), (200, 150, 700, 560)), seg)
    assert len(seg.seen) == 1


def test_a_salient_thing_near_the_border_does_not_take_the_box_from_a_centred_object():
    # A red thing twice the object's area in the corner: by area alone both would be kept and
    # the box would span the photo; weighted by nearness to the centre, only the object is.
    img = np.asarray(Image.open(io.BytesIO(_scene((900, 700), (380, 280, 520, 420))))).copy()
    img[0:200, 0:200] = (220, 50, 40)
    _, box, why = foreground_mask(_encode(Image.fromarray(img), "PNG"), ColourSegmenter())
    assert why == "" and _box_iou(box, (380, 280, 520, 420)) >= 0.9


def test_a_moderately_sure_leak_into_the_background_does_not_stretch_the_box():
    # A red object in grey background the model is not sure of (0.55), connected to it,
    # inside a green photo: the box is the object's alone.
    img = np.full((512, 512, 3), (90, 140, 90), np.uint8)
    img[128:384, 128:384] = (128, 128, 128)
    img[192:320, 192:320] = (220, 50, 40)

    def leaky(rgb):
        r, g = rgb[..., 0].astype(np.int16), rgb[..., 1].astype(np.int16)
        return np.where(r - g > 80, 0.95, np.where(abs(r - g) < 20, 0.55, 0.0))

    _, box, why = foreground_mask(_encode(Image.fromarray(img), "PNG"), leaky)
    assert why == "" and box == pytest.approx((192, 192, 320, 320), abs=4)


def test_an_object_filling_the_frame_is_padded_not_cropped():
    # The object overflows the left, top and bottom borders of the photo.
    _, framing = preprocess_framed(_scene((600, 400), (0, 0, 450, 400)),
                                   segmenter=ColourSegmenter())
    x, y, w, h = framing.box
    assert framing.source == "mask"
    assert x < 0 and y < 0 and y + h > 400  # the square reaches past the border: padding
    assert w >= 450 / OBJECT_FRACTION * 0.95


def test_an_unsure_or_empty_mask_falls_back_to_the_whole_image_and_says_so():
    _, framing = preprocess_framed(_scene(), segmenter=ColourSegmenter(confident=False))
    assert framing.source == "none" and "unsure" in framing.note
    plain = _encode(Image.new("RGB", (300, 200), (90, 140, 90)), "JPEG")
    _, framing = preprocess_framed(plain, segmenter=ColourSegmenter())
    assert framing.source == "none" and "no foreground" in framing.note


def test_the_protocol_carries_autocrop_and_the_framing():
    opts = m.parse_options({"autocrop": False}, 1)
    assert opts.autocrop is False and m.parse_options({}, 1).autocrop is True
    with pytest.raises(m.ProtocolError) as err:
        m.parse_options({"autocrop": "yes"}, 1)
    assert err.value.code == "bad_option"
    framing = [{"crop": [1.5, -2.0, 30.0, 30.0], "source": "alpha", "note": ""}]
    result = m.ReconstructResult(id="r", format="glb", views=[],
                                 outputs=[m.ReconstructOutput(empty=True)], framing=framing)
    back = m.decode_reconstruct_reply(m.decode_reply(m.encode_reconstruct_reply(result)))
    assert back.framing == framing
