"""Seating and tables: chair, bench, sofa, table.

Each generator draws a *type* first (which parts exist: backs, arms, leg systems,
stretchers, shelves), then continuous proportions, so shapes differ in topology as well as
in size, the way ShapeNet's classes do. Units are roughly metres; the writer normalizes.
Frame: +Y up, seat/table front towards -Z, the object centred on X=0, standing on Y=0.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice

# --------------------------------------------------------------------------- shared pieces


def _leg(p_top, p_bottom, size: float, round_: bool, taper: float = 1.0):
    """One leg, round (cylinder/frustum) or square (beam)."""
    if round_:
        return P.frustum(p_bottom, p_top, size / 2 * taper, size / 2, sections=12)
    return P.beam(p_top, p_bottom, size, taper=taper)


def _four_legs(
    pl: PartList,
    rng,
    w: float,
    d: float,
    top_y: float,
    inset: float,
    size: float,
    family: str,
    splay: float = 0.0,
    round_: bool = False,
    taper: float = 1.0,
) -> list[np.ndarray]:
    """Four legs under a ``w`` x ``d`` footprint; returns their bottom points."""
    bottoms = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            top = np.array([sx * (w / 2 - inset), top_y, sz * (d / 2 - inset)])
            bottom = top + np.array([sx * splay, -top_y, sz * splay])
            bottom[1] = 0.0
            pl.add(_leg(top, bottom, size, round_, taper), "legs", family)
            bottoms.append(bottom)
    return bottoms


def _stretchers(
    pl: PartList,
    rng,
    w: float,
    d: float,
    y: float,
    inset: float,
    size: float,
    family: str,
    style: str,
) -> None:
    """Rails between legs: ``box`` (all four sides), ``h`` (sides + middle), ``x``."""
    xs, zs = w / 2 - inset, d / 2 - inset
    r = size * 0.35
    if style == "box":
        for sz in (-1, 1):
            pl.add(P.beam([-xs, y, sz * zs], [xs, y, sz * zs], r * 2), "legs", family)
        for sx in (-1, 1):
            pl.add(P.beam([sx * xs, y, -zs], [sx * xs, y, zs], r * 2), "legs", family)
    elif style == "h":
        for sx in (-1, 1):
            pl.add(P.beam([sx * xs, y, -zs], [sx * xs, y, zs], r * 2), "legs", family)
        pl.add(P.beam([-xs, y, 0], [xs, y, 0], r * 2), "legs", family)
    else:  # x
        pl.add(P.cylinder([-xs, y, -zs], [xs, y, zs], r, 8), "legs", family)
        pl.add(P.cylinder([-xs, y, zs], [xs, y, -zs], r, 8), "legs", family)


def _cushion(w: float, h: float, d: float, center, radius: float):
    """A soft block: rounded-rectangle section (in X-Y) extruded along Z."""
    return P.extrude(
        P.rounded_rect(w, h, radius, 3), d, axis="z", offset=center[2]
    ).apply_translation([center[0], center[1], 0])


def _bent_panel(
    width: float, thickness: float, depth: float, y0: float, y1: float, z_back: float, n: int = 12
):
    """A panel curved in plan (outline in X-Z extruded along Y), sides ``depth`` forwards."""
    s = np.linspace(-1, 1, n)
    outer = np.stack([s * width / 2, z_back - depth * s * s], 1)
    inner = (outer - [0, thickness])[::-1]
    # extrude() maps an outline for axis "y" as (x, z)
    return P.extrude(np.concatenate([outer, inner]), y1 - y0, axis="y", offset=(y0 + y1) / 2)


def _swivel_base(pl: PartList, rng, top_y: float, radius: float) -> None:
    """Office-chair base: gas column, five spokes, casters."""
    hub_y = rng.uniform(0.07, 0.11)
    pl.add(
        P.cylinder([0, hub_y, 0], [0, top_y, 0], rng.uniform(0.02, 0.035), 12), "column", "metal"
    )
    spokes = int(choice(rng, [5, 5, 4]))
    for k in range(spokes):
        a = 2 * np.pi * k / spokes + np.pi / 2
        tip = np.array([radius * np.cos(a), 0.05, radius * np.sin(a)])
        pl.add(P.capsule([0, hub_y, 0], tip, 0.018), "base", "plastic")
        pl.add(P.cylinder(tip + [0, -0.02, 0], tip + [0, -0.05, 0], 0.025, 10), "casters", "rubber")


# --------------------------------------------------------------------------- chair


def chair(rng: np.random.Generator) -> list[Part]:
    """Dining/side chairs, office chairs, armchairs, stools and bar stools."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["side", "side", "office", "armchair", "stool", "barstool", "cantilever"],
        p=[0.25, 0.15, 0.18, 0.15, 0.07, 0.08, 0.12],
    )
    w = rng.uniform(0.40, 0.56)
    d = rng.uniform(0.38, 0.52)
    h = rng.uniform(0.40, 0.50)
    frame = choice(rng, ["wood", "metal", "plastic"], p=[0.55, 0.3, 0.15])
    soft = rng.random() < 0.45
    if kind == "armchair":
        w, d, h, soft = (
            rng.uniform(0.65, 0.9),
            rng.uniform(0.6, 0.85),
            rng.uniform(0.36, 0.45),
            True,
        )
    if kind == "barstool":
        h = rng.uniform(0.62, 0.80)
    seat_fam = choice(rng, ["fabric", "leather"]) if soft else frame
    t = rng.uniform(0.06, 0.14) if soft else rng.uniform(0.02, 0.05)

    legs_top = h - t  # where the legs meet the seat (or the armchair's frame)
    # seat
    round_seat = kind in ("stool", "barstool") and rng.random() < 0.6
    if round_seat:
        r = min(w, d) / 2
        pl.add(P.cylinder([0, h - t, 0], [0, h, 0], r, 24), "seat", seat_fam)
        w = d = r * 2 * 0.85
    elif kind == "armchair":  # cushion on an upholstered frame that stands on short feet
        pl.add(_cushion(w * 0.75, t, d * 0.9, [0, h - t / 2, -d * 0.05], t / 2.5), "seat", seat_fam)
        legs_top = rng.uniform(0.04, 0.2)
        pl.add(
            _cushion(w, h - t - legs_top, d, [0, (h - t + legs_top) / 2, 0], 0.02),
            "frame",
            seat_fam,
            like="seat",
        )
    else:
        pl.add(_cushion(w, t, d, [0, h - t / 2, 0], t / 3 if soft else 0.005), "seat", seat_fam)

    # support
    base = _chair_base(pl, rng, kind, w, d, legs_top, frame)

    # back
    if kind not in ("stool", "barstool") or rng.random() < 0.25:
        _chair_back(pl, rng, kind, w, d, h, t, frame, seat_fam, soft)
    # arms
    if kind == "armchair" or (kind in ("side", "office", "cantilever") and rng.random() < 0.35):
        _chair_arms(pl, rng, kind, w, d, h, frame, seat_fam, base)
    return pl.parts


def _chair_base(pl: PartList, rng, kind: str, w: float, d: float, y: float, frame: str) -> str:
    """Legs under the seat (whose underside is at ``y``); returns the base style used."""
    if kind == "office":
        _swivel_base(pl, rng, y, rng.uniform(0.26, 0.34))
        return "swivel"
    if kind == "cantilever":
        style = choice(rng, ["sled", "cantilever"])
        r = rng.uniform(0.010, 0.016)
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.02)
            if style == "sled":
                path = [
                    [x, y, -d / 2 + 0.04],
                    [x, 0.012, -d / 2 - 0.02],
                    [x, 0.012, d / 2 + 0.02],
                    [x, y, d / 2 - 0.04],
                ]
            else:  # a bent tube: front edge down to the floor, floor run, up at the back
                path = [
                    [x, y, d / 2 - 0.05],
                    [x, y, -d / 2 + 0.02],
                    [x, y * 0.6, -d / 2 - 0.03],
                    [x, 0.012, -d / 2 + 0.0],
                    [x, 0.012, d / 2 * 0.7],
                ]
            pl.add(P.tube(path, r, 10), "frame", "metal")
        return style
    if kind in ("stool", "barstool") and rng.random() < 0.35:
        _pedestal(pl, rng, y, frame)
        if kind == "barstool":
            pl.add(P.torus([0, y * 0.35, 0], w * 0.45, 0.012), "footrest", "metal")
        return "pedestal"
    if kind == "side" and rng.random() < 0.2:
        _pedestal(pl, rng, y, frame)
        return "pedestal"
    size = rng.uniform(0.025, 0.05)
    round_ = frame == "metal" or rng.random() < 0.4
    splay = rng.uniform(0.0, 0.06) if kind != "armchair" else 0.0
    if kind == "barstool":
        splay = rng.uniform(0.03, 0.1)
    inset = size / 2 + (0.0 if kind == "armchair" else rng.uniform(0.0, 0.03))
    legs_h = y
    _four_legs(pl, rng, w, d, y, inset, size, frame, splay, round_, taper=rng.uniform(0.6, 1.0))
    if kind in ("side", "stool", "barstool") and rng.random() < 0.45:
        style = choice(rng, ["box", "h", "x"], p=[0.45, 0.4, 0.15])
        sy = rng.uniform(0.12, 0.3) * legs_h
        _stretchers(pl, rng, w + splay * 0.6, d + splay * 0.6, sy, inset, size, frame, style)
    return "legs"


def _pedestal(pl: PartList, rng, top_y: float, family: str) -> None:
    """Tulip base: a revolved column on a round foot."""
    rb, rc = rng.uniform(0.18, 0.26), rng.uniform(0.025, 0.05)
    profile = [
        [0, 0],
        [rb, 0],
        [rb, 0.015],
        [rc * 1.5, rng.uniform(0.04, 0.1)],
        [rc, top_y * 0.5],
        [rc * rng.uniform(1.0, 2.5), top_y],
        [0, top_y],
    ]
    pl.add(P.revolve(profile, 24), "base", family if family != "wood" else "metal")


def _chair_back(
    pl: PartList,
    rng,
    kind: str,
    w: float,
    d: float,
    h: float,
    t: float,
    frame: str,
    seat_fam: str,
    soft: bool,
) -> None:
    """Backrest above the rear edge of the seat, leaning back by a few degrees."""
    style = choice(
        rng,
        ["solid", "slats", "ladder", "spindle", "curved", "frame"],
        p=[0.3, 0.17, 0.15, 0.1, 0.13, 0.15],
    )
    if soft or kind in ("office", "armchair"):
        style = choice(rng, ["solid", "curved", "frame"], p=[0.6, 0.25, 0.15])
    bh = rng.uniform(0.3, 0.55) if kind != "office" else rng.uniform(0.4, 0.7)
    if kind in ("stool", "barstool"):
        bh = rng.uniform(0.12, 0.3)
    tilt = rng.uniform(0.0, 18.0)
    z0 = d / 2 - 0.02
    gap = rng.uniform(0.04, 0.15) if kind == "office" else 0.0
    y0 = h + gap
    pivot = [0, h, z0]
    meshes: list[tuple] = []
    post = rng.uniform(0.022, 0.04)
    bw = w * (0.92 if kind != "office" else rng.uniform(0.8, 1.0))
    if kind == "armchair":
        bw, bh, tilt = w * 0.95, rng.uniform(0.35, 0.6), rng.uniform(5, 20)
    if style in ("solid", "curved"):
        bt = rng.uniform(0.07, 0.16) if soft else rng.uniform(0.015, 0.03)
        y_lo = y0 + (rng.uniform(0.05, 0.15) if rng.random() < 0.3 and not soft else 0.0)
        if style == "solid":
            outline = P.rounded_rect(bw, bh - (y_lo - y0), rng.uniform(0, 0.5) * bw / 2, 4)
            outline[:, 1] += (y_lo + y0 + bh) / 2
            panel = P.extrude(outline, bt, axis="z", offset=z0 + bt / 2)
        else:  # bent panel: an arc in plan whose sides wrap forwards around the sitter
            panel = _bent_panel(bw, bt, rng.uniform(0.04, 0.12), y_lo, y0 + bh, z0 + bt / 2)
        meshes.append((panel, "back", seat_fam if soft else frame))
        if gap > 0 or y_lo > y0 + 1e-6:
            for sx in (-1, 1) if gap == 0 else (0,):
                x = sx * (bw / 2 - post)
                meshes.append(
                    (
                        P.beam([x, h - t, z0], [x, y_lo + 0.1, z0 + bt / 2], post),
                        "back_support",
                        "metal" if kind == "office" else frame,
                    )
                )
    else:
        for sx in (-1, 1):
            x = sx * (bw / 2 - post / 2)
            meshes.append((P.beam([x, h - t, z0], [x, y0 + bh, z0], post), "back", frame))
        rail = rng.uniform(0.04, 0.1)
        meshes.append((P.box([bw, rail, post * 0.9], [0, y0 + bh - rail / 2, z0]), "back", frame))
        if style == "slats":
            n = int(rng.integers(2, 6))
            sw = rng.uniform(0.2, 0.7) * (bw - 2 * post) / n
            for x in np.linspace(-(bw / 2 - post), bw / 2 - post, n + 2)[1:-1]:
                meshes.append(
                    (
                        P.box([sw, bh - rail, post * 0.6], [x, y0 + (bh - rail) / 2, z0]),
                        "back",
                        frame,
                    )
                )
        elif style == "spindle":
            n = int(rng.integers(3, 8))
            for x in np.linspace(-(bw / 2 - post), bw / 2 - post, n + 2)[1:-1]:
                meshes.append(
                    (
                        P.cylinder(
                            [x, h, z0], [x, y0 + bh - rail / 2, z0], rng.uniform(0.006, 0.012), 8
                        ),
                        "back",
                        frame,
                    )
                )
        elif style == "ladder":
            n = int(rng.integers(1, 4))
            for yy in np.linspace(y0, y0 + bh - rail, n + 2)[1:-1]:
                meshes.append((P.box([bw, rail * 0.8, post * 0.8], [0, yy, z0]), "back", frame))
        else:  # frame: upholstered or mesh panel inside the posts
            panel_h = bh * rng.uniform(0.4, 0.8)
            meshes.append(
                (
                    _cushion(
                        bw - 2 * post,
                        panel_h,
                        post * 1.2,
                        [0, y0 + bh - rail - panel_h / 2, z0],
                        0.01,
                    ),
                    "back_panel",
                    choice(rng, ["fabric", "leather", "plastic"]),
                )
            )
    for mesh, role, fam in meshes:
        pl.add(P.rotated(mesh, "x", tilt, pivot), role, fam)


def _chair_arms(
    pl: PartList, rng, kind: str, w: float, d: float, h: float, frame: str, seat_fam: str, base: str
) -> None:
    """Armrests: upholstered blocks for armchairs, posts + rests for others."""
    ah = rng.uniform(0.18, 0.28)
    if kind == "armchair":
        aw = rng.uniform(0.08, 0.18)
        lo = rng.uniform(0.04, 0.2)
        for sx in (-1, 1):
            x = sx * (w / 2 - aw / 2)
            arm = _cushion(aw, h + ah - lo, d, [x, (h + ah + lo) / 2, 0], aw / 3)
            pl.add(arm, "arms", seat_fam, like="frame")
        return
    r = rng.uniform(0.012, 0.025)
    for sx in (-1, 1):
        x = sx * (w / 2 + 0.01)
        if base == "swivel":  # office arms: an L bracket from under the seat
            pl.add(
                P.tube([[x * 0.8, h - 0.08, 0.05], [x, h - 0.04, 0.05], [x, h + ah, 0.05]], r),
                "arms",
                "plastic",
            )
            pl.add(P.box([0.06, 0.03, d * 0.55], [x, h + ah, 0.0]), "arms", "plastic")
        elif rng.random() < 0.5:
            path = [[x, h - 0.02, -d / 2 + 0.05], [x, h + ah, -d / 2 + 0.03], [x, h + ah, d / 2]]
            pl.add(P.tube(path, r, 10), "arms", frame)
        else:
            pl.add(
                P.beam([x, h - 0.02, -d / 2 + 0.05], [x, h + ah, -d / 2 + 0.05], r * 2),
                "arms",
                frame,
            )
            pl.add(P.box([0.05, 0.025, d * 0.95], [x, h + ah, 0.02]), "arms", frame)


# --------------------------------------------------------------------------- table


def table(rng: np.random.Generator) -> list[Part]:
    """Dining, coffee, side, bar tables and desks with several leg systems."""
    pl = PartList(rng)
    kind = choice(rng, ["dining", "coffee", "side", "desk", "bar"], p=[0.35, 0.2, 0.15, 0.2, 0.1])
    L = {
        "dining": (1.0, 2.2),
        "coffee": (0.8, 1.4),
        "side": (0.4, 0.7),
        "desk": (1.0, 1.8),
        "bar": (0.6, 1.2),
    }[kind]
    length = rng.uniform(*L)
    depth = length * rng.uniform(0.45, 1.0) if kind != "desk" else rng.uniform(0.5, 0.8)
    height = {
        "dining": (0.7, 0.78),
        "coffee": (0.32, 0.48),
        "side": (0.45, 0.7),
        "desk": (0.7, 0.77),
        "bar": (0.95, 1.1),
    }[kind]
    hgt = rng.uniform(*height)
    top_t = rng.uniform(0.02, 0.07)
    mat = choice(rng, ["wood", "wood", "metal", "stone", "glass", "plastic"])
    leg_mat = choice(rng, ["wood", "metal"]) if mat != "wood" or rng.random() < 0.3 else "wood"
    shape = "rect"
    if kind in ("dining", "coffee", "side", "bar") and rng.random() < 0.4:
        shape = choice(rng, ["round", "oval"]) if kind != "side" else "round"
    if shape == "round":
        depth = length = min(length, 1.4)

    # top
    y_top = hgt - top_t
    if shape == "rect":
        outline = P.rounded_rect(length, depth, rng.uniform(0, 0.3) * min(length, depth) / 2, 3)
    else:
        outline = P.ellipse(length / 2, depth / 2, 40)
    pl.add(P.extrude(outline, top_t, axis="y", offset=hgt - top_t / 2), "top", mat)

    supports = ["legs4"] * 4 + ["trestle", "panels"]
    if shape != "rect":
        supports = ["legs4", "legs3", "pedestal", "pedestal"]
    if kind == "desk":
        supports = ["legs4", "panels", "drawer_pedestal", "drawer_pedestal"]
    if kind in ("bar", "side") and shape != "rect":
        supports = ["pedestal", "legs3", "legs4"]
    support = choice(rng, supports)
    leg = rng.uniform(0.03, 0.08)
    round_leg = leg_mat == "metal" or rng.random() < 0.4
    inset = rng.uniform(0.02, 0.12) * min(length, depth) + leg / 2

    if support == "legs4":
        if shape != "rect":  # legs on a square inscribed in the round top
            s = min(length, depth) / np.sqrt(2)
            _four_legs(
                pl,
                rng,
                s,
                s * depth / length,
                y_top,
                leg / 2,
                leg,
                leg_mat,
                rng.uniform(0, 0.05),
                round_leg,
            )
        else:
            _four_legs(
                pl,
                rng,
                length,
                depth,
                y_top,
                inset,
                leg,
                leg_mat,
                rng.uniform(0, 0.04),
                round_leg,
                rng.uniform(0.6, 1.0),
            )
            if rng.random() < 0.5:  # apron below the top
                ah = rng.uniform(0.05, 0.12)
                for sz in (-1, 1):
                    pl.add(
                        P.box(
                            [length - 2 * inset, ah, 0.02],
                            [0, y_top - ah / 2, sz * (depth / 2 - inset)],
                        ),
                        "apron",
                        leg_mat,
                    )
                for sx in (-1, 1):
                    pl.add(
                        P.box(
                            [0.02, ah, depth - 2 * inset],
                            [sx * (length / 2 - inset), y_top - ah / 2, 0],
                        ),
                        "apron",
                        leg_mat,
                    )
            if rng.random() < 0.3:  # lower shelf
                pl.add(
                    P.box(
                        [length - 2 * inset, 0.02, depth - 2 * inset],
                        [0, rng.uniform(0.08, 0.3) * hgt, 0],
                    ),
                    "shelf",
                    mat,
                )
            elif rng.random() < 0.3:
                _stretchers(
                    pl,
                    rng,
                    length,
                    depth,
                    rng.uniform(0.1, 0.3) * hgt,
                    inset,
                    leg,
                    leg_mat,
                    choice(rng, ["box", "h"]),
                )
    elif support == "legs3":
        r = min(length, depth) / 2 * rng.uniform(0.5, 0.85)
        for k in range(3):
            a = 2 * np.pi * k / 3 + np.pi / 2
            top = [r * 0.8 * np.cos(a), y_top, r * 0.8 * np.sin(a)]
            pl.add(_leg(top, [r * np.cos(a), 0, r * np.sin(a)], leg, round_leg), "legs", leg_mat)
    elif support == "pedestal":
        rb = min(length, depth) / 2 * rng.uniform(0.35, 0.7)
        rc = rng.uniform(0.03, 0.09)
        if rng.random() < 0.5:
            profile = [
                [0, 0],
                [rb, 0],
                [rb, 0.03],
                [rc * 1.5, 0.08],
                [rc, hgt * 0.5],
                [rc * 1.3, y_top - 0.02],
                [rc * 2.5, y_top],
                [0, y_top],
            ]
            pl.add(P.revolve(profile, 28), "base", leg_mat)
        else:  # column on cross feet
            pl.add(P.cylinder([0, 0.03, 0], [0, y_top, 0], rc, 16), "base", leg_mat)
            n = int(choice(rng, [3, 4]))
            for k in range(n):
                a = 2 * np.pi * k / n
                pl.add(
                    P.beam([0, 0.03, 0], [rb * np.cos(a), 0.03, rb * np.sin(a)], 0.05, 0.06),
                    "base",
                    leg_mat,
                )
    elif support == "trestle":
        foot_d = depth * rng.uniform(0.6, 0.95)
        for sx in (-1, 1):
            x = sx * (length / 2 - inset)
            pl.add(P.box([leg * 1.2, 0.05, foot_d], [x, 0.025, 0]), "legs", leg_mat)
            pl.add(
                P.box([leg * 1.2, y_top - 0.05, leg * 1.5], [x, 0.05 + (y_top - 0.05) / 2, 0]),
                "legs",
                leg_mat,
            )
            pl.add(P.box([leg * 1.2, 0.05, foot_d * 0.9], [x, y_top - 0.025, 0]), "legs", leg_mat)
        pl.add(
            P.box([length - 2 * inset, 0.05, 0.03], [0, hgt * rng.uniform(0.2, 0.5), 0]),
            "legs",
            leg_mat,
        )
    elif support == "panels":
        pt = rng.uniform(0.02, 0.06)
        for sx in (-1, 1):
            pl.add(
                P.box([pt, y_top, depth * 0.95], [sx * (length / 2 - pt / 2 - 0.01), y_top / 2, 0]),
                "legs",
                mat,
            )
        if rng.random() < 0.6:  # modesty panel
            pl.add(
                P.box([length - 0.1, y_top * 0.4, 0.02], [0, y_top * 0.75, depth * 0.35]),
                "legs",
                mat,
            )
    else:  # drawer_pedestal: a drawer unit on one side, a leg or panel on the other
        side = choice(rng, [-1, 1])
        pw = rng.uniform(0.35, 0.5)
        x = side * (length / 2 - pw / 2 - 0.01)
        pl.add(P.box([pw, y_top, depth * 0.95], [x, y_top / 2, 0]), "drawers", mat)
        n = int(rng.integers(2, 5))
        dh = y_top / n
        for k in range(n):
            pl.add(
                P.box([pw * 0.9, dh * 0.85, 0.02], [x, dh * (k + 0.5), -depth * 0.475 - 0.01]),
                "drawer_fronts",
                mat,
            )
            pl.add(
                P.box([pw * 0.3, 0.015, 0.02], [x, dh * (k + 0.6), -depth * 0.475 - 0.03]),
                "handles",
                "metal",
            )
        if rng.random() < 0.5:
            pl.add(
                P.box([0.04, y_top, depth * 0.95], [-side * (length / 2 - 0.03), y_top / 2, 0]),
                "legs",
                mat,
            )
        else:
            for sz in (-1, 1):
                pl.add(
                    _leg(
                        [-side * (length / 2 - inset), y_top, sz * (depth / 2 - inset)],
                        [-side * (length / 2 - inset), 0, sz * (depth / 2 - inset)],
                        leg,
                        round_leg,
                    ),
                    "legs",
                    leg_mat,
                )
    return pl.parts


# --------------------------------------------------------------------------- bench


def bench(rng: np.random.Generator) -> list[Part]:
    """Park benches, flat benches, slab benches, backless and with a backrest."""
    pl = PartList(rng)
    length = rng.uniform(0.9, 2.2)
    d = rng.uniform(0.3, 0.55)
    h = rng.uniform(0.38, 0.5)
    mat = choice(rng, ["wood", "wood", "metal", "stone"])
    frame = choice(rng, ["metal", "wood", "stone"]) if mat != "stone" else "stone"
    has_back = rng.random() < 0.5
    slatted = mat == "wood" and rng.random() < 0.6
    t = rng.uniform(0.03, 0.08) if mat != "stone" else rng.uniform(0.08, 0.15)

    # seat
    if slatted:
        n = int(rng.integers(3, 7))
        sd = d / n * rng.uniform(0.55, 0.85)
        for z in np.linspace(-d / 2 + sd / 2, d / 2 - sd / 2, n):
            pl.add(P.box([length, t * 0.7, sd], [0, h - t / 2, z]), "seat", mat)
    else:
        pl.add(P.box([length, t, d], [0, h - t / 2, 0]), "seat", mat)

    # supports
    support = choice(rng, ["legs", "slabs", "frames", "legs6"], p=[0.35, 0.25, 0.3, 0.1])
    if frame == "stone":
        support = "slabs"
    y = h - t
    inset = rng.uniform(0.05, 0.25) * length / 2
    if support in ("legs", "legs6"):
        size = rng.uniform(0.04, 0.08)
        _four_legs(pl, rng, length, d, y, inset + size / 2, size, frame, rng.uniform(0, 0.04))
        if support == "legs6":
            for sz in (-1, 1):
                pl.add(
                    P.beam([0, y, sz * (d / 2 - size)], [0, 0, sz * (d / 2 - size)], size),
                    "legs",
                    frame,
                )
        if rng.random() < 0.5:
            _stretchers(
                pl, rng, length, d, y * rng.uniform(0.15, 0.4), inset + size / 2, size, frame, "h"
            )
    elif support == "slabs":
        st = rng.uniform(0.04, 0.15)
        for sx in (-1, 1):
            x = sx * (length / 2 - inset)
            pl.add(P.box([st, y, d * rng.uniform(0.7, 1.0)], [x, y / 2, 0]), "legs", frame)
    else:  # cast side frames: a closed trapezoid loop of tube per end
        r = rng.uniform(0.012, 0.025)
        for sx in (-1, 1):
            x = sx * (length / 2 - inset)
            path = [
                [x, y, -d / 2 + 0.02],
                [x, 0.02, -d / 2 - 0.03],
                [x, 0.02, d / 2 + 0.03],
                [x, y, d / 2 - 0.02],
                [x, y - 0.01, 0],
                [x, y, -d / 2 + 0.02 + 1e-3],
            ]
            pl.add(P.tube(path, r, 8), "legs", "metal")

    # backrest (and arms) on rear posts
    if has_back:
        bh = rng.uniform(0.25, 0.5)
        tilt = rng.uniform(5, 20)
        z0 = d / 2 - 0.03
        pivot = [0, h, z0]
        back_parts = []
        for x in (-(length / 2 - inset), length / 2 - inset):
            back_parts.append(P.beam([x, h - t, z0], [x, h + bh, z0], 0.05))
        if slatted or rng.random() < 0.5:
            n = int(rng.integers(2, 5))
            sh = bh / n * rng.uniform(0.5, 0.8)
            for yy in np.linspace(h + 0.05 + sh / 2, h + bh - sh / 2, n):
                back_parts.append(P.box([length, sh, 0.025], [0, yy, z0]))
        else:
            back_parts.append(P.box([length, bh * 0.8, 0.03], [0, h + bh * 0.55, z0]))
        for m in back_parts:
            pl.add(P.rotated(m, "x", tilt, pivot), "back", mat)
        if rng.random() < 0.5:
            ah = rng.uniform(0.18, 0.26)
            for sx in (-1, 1):
                x = sx * (length / 2 - inset * rng.uniform(0.0, 0.5))
                pl.add(
                    P.tube(
                        [
                            [x, h - t, -d / 2 + 0.04],
                            [x, h + ah, -d / 2 + 0.02],
                            [x, h + ah, d / 2 - 0.02],
                        ],
                        0.02,
                        8,
                    ),
                    "arms",
                    frame if frame != "stone" else "metal",
                )
    return pl.parts


# --------------------------------------------------------------------------- sofa


def sofa(rng: np.random.Generator) -> list[Part]:
    """Sofas, loveseats, sectionals (L-shapes), daybeds: arms, cushions and legs vary."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["sofa", "loveseat", "sectional", "daybed", "modern", "chesterfield", "club"],
        p=[0.26, 0.16, 0.18, 0.08, 0.12, 0.1, 0.1],
    )
    length = {
        "sofa": (1.8, 2.6),
        "loveseat": (1.2, 1.6),
        "sectional": (2.0, 3.0),
        "daybed": (1.6, 2.2),
        "modern": (1.6, 2.8),
        "chesterfield": (1.5, 2.4),
        "club": (0.8, 1.15),
    }[kind]
    length = rng.uniform(*length)
    d = rng.uniform(0.7, 1.1)
    seat_h = rng.uniform(0.33, 0.5)
    fam = choice(rng, ["fabric", "fabric", "leather"])
    leg_h = choice(rng, [0.0, rng.uniform(0.04, 0.1), rng.uniform(0.12, 0.25)], p=[0.3, 0.35, 0.35])
    cush_t = rng.uniform(0.08, 0.18)
    base_top = seat_h - cush_t
    base_lo = max(leg_h, 0.02)
    back_h = seat_h + rng.uniform(0.25, 0.6)
    if kind == "modern":
        back_h = seat_h + rng.uniform(0.15, 0.35)
    back_t = rng.uniform(0.1, 0.3)
    back_tilt = rng.uniform(0, 15)
    arms = choice(rng, ["both", "both", "both", "none", "left"])
    if kind in ("daybed", "chesterfield", "club"):
        arms = "both"
    arm_w = rng.uniform(0.08, 0.3)
    arm_h = rng.uniform(seat_h + 0.05, max(back_h - 0.05, seat_h + 0.1))
    if kind == "modern":
        arm_h = seat_h + rng.uniform(-0.05, 0.1)
    elif kind in ("daybed", "chesterfield"):
        arm_h = back_h
    round_r = rng.uniform(0.01, 0.06)

    # base block(s)
    pl.add(
        _cushion(length, base_top - base_lo, d, [0, (base_top + base_lo) / 2, 0], round_r),
        "base",
        fam,
    )
    contrast = rng.random() < 0.3  # seat cushions in a second colour now and then
    cushion_like = None if contrast else "base"
    chaise = None
    if kind == "sectional":
        chaise_w = rng.uniform(0.7, 1.0)
        chaise_d = rng.uniform(0.6, 0.9)
        sx = choice(rng, [-1, 1])
        cx = sx * (length / 2 - chaise_w / 2)
        chaise = (cx, chaise_w, chaise_d)
        pl.add(
            _cushion(
                chaise_w,
                base_top - base_lo,
                chaise_d,
                [cx, (base_top + base_lo) / 2, -d / 2 - chaise_d / 2 + 0.02],
                round_r,
            ),
            "base",
            fam,
        )

    # arms
    arm_xs = {"both": (-1, 1), "none": (), "left": (-1,)}[arms]
    arm_style = choice(rng, ["box", "rolled", "slim", "sloped"])
    if kind == "chesterfield":
        arm_style = "rolled"
    inner = length
    for sx in arm_xs:
        x = sx * (length / 2 - arm_w / 2)
        if chaise is not None and np.sign(chaise[0]) == sx:
            continue
        if arm_style == "sloped":  # arm top falls towards the front
            front_h = rng.uniform(min(seat_h, arm_h), max(seat_h, arm_h))  # low arms exist
            prof = np.array(
                [
                    [-d / 2, base_lo],
                    [d / 2, base_lo],
                    [d / 2, arm_h],
                    [-d / 2 + 0.1, front_h],
                    [-d / 2, front_h - 0.05],
                ]
            )
            pl.add(P.extrude(prof, arm_w, axis="x", offset=x), "arms", fam, like="base")
        else:
            pl.add(
                _cushion(
                    arm_w,
                    arm_h - base_lo,
                    d,
                    [x, (arm_h + base_lo) / 2, 0],
                    arm_w / (2.5 if arm_style == "rolled" else 6),
                ),
                "arms",
                fam,
                like="base",
            )
        if arm_style == "rolled":
            pl.add(
                P.cylinder([x, arm_h, -d / 2], [x, arm_h, d / 2], arm_w * 0.6, 16),
                "arms",
                fam,
                like="base",
            )
        inner -= arm_w
    x_lo = -length / 2 + (arm_w if -1 in arm_xs else 0)
    x_hi = length / 2 - (arm_w if 1 in arm_xs else 0)
    if chaise is not None:  # the arm on the chaise side is dropped: it is open
        if chaise[0] < 0:
            x_lo = -length / 2
        else:
            x_hi = length / 2

    # back (one block or cushions)
    back = _cushion(
        length, back_h - base_lo, back_t, [0, (back_h + base_lo) / 2, d / 2 - back_t / 2], round_r
    )
    pl.add(P.rotated(back, "x", back_tilt, [0, base_top, d / 2 - back_t]), "back", fam, like="base")
    if chaise is not None and rng.random() < 0.5:  # corner sectional: the chaise has a back too
        cx, chaise_w, chaise_d = chaise
        side_x = cx + np.sign(cx) * (chaise_w / 2 - back_t / 2)
        pl.add(
            _cushion(
                back_t,
                back_h - base_lo,
                chaise_d + d - back_t,
                [side_x, (back_h + base_lo) / 2, -chaise_d / 2 - back_t / 2 + 0.02],
                round_r,
            ),
            "back",
            fam,
            like="base",
        )
    if kind != "daybed" and rng.random() < 0.6:
        n = max(1, int(round((x_hi - x_lo) / rng.uniform(0.5, 0.9))))
        cw = (x_hi - x_lo) / n
        bc_t = rng.uniform(0.08, 0.18)
        bc_h = (back_h - seat_h) * rng.uniform(0.7, 1.0)
        for k in range(n):
            cx = x_lo + cw * (k + 0.5)
            c = _cushion(
                cw - 0.02,
                bc_h,
                bc_t,
                [cx, seat_h + bc_h / 2, d / 2 - back_t - bc_t / 2 + 0.02],
                0.04,
            )
            pl.add(
                P.rotated(c, "x", rng.uniform(0, 12), [cx, seat_h, d / 2 - back_t]),
                "back_cushions",
                fam,
                like="base",
            )

    # seat cushions
    n = int(rng.integers(1, 5)) if kind != "daybed" else 1
    cw = (x_hi - x_lo) / n
    sd = d - back_t
    for k in range(n):
        cx = x_lo + cw * (k + 0.5)
        pl.add(
            _cushion(cw - 0.015, cush_t, sd, [cx, base_top + cush_t / 2, -back_t / 2], cush_t / 3),
            "seat_cushions",
            fam,
            like=cushion_like,
        )
    if chaise is not None:
        cx, chaise_w, chaise_d = chaise
        pl.add(
            _cushion(
                chaise_w - 0.02,
                cush_t,
                chaise_d,
                [cx, base_top + cush_t / 2, -d / 2 - chaise_d / 2 + 0.02],
                cush_t / 3,
            ),
            "seat_cushions",
            fam,
            like=cushion_like,
        )

    # legs
    if leg_h > 0:
        leg_fam = choice(rng, ["wood", "metal"])
        size = rng.uniform(0.03, 0.06)
        feet = [(sx * (length / 2 - 0.06), sz * (d / 2 - 0.06)) for sx in (-1, 1) for sz in (-1, 1)]
        if length > 2.0:
            feet += [(0, sz * (d / 2 - 0.06)) for sz in (-1, 1)]
        if chaise is not None:
            cx, chaise_w, chaise_d = chaise
            feet += [(cx + sx * (chaise_w / 2 - 0.06), -d / 2 - chaise_d + 0.06) for sx in (-1, 1)]
        for fx, fz in feet:
            pl.add(
                P.frustum([fx, 0, fz], [fx, leg_h + 0.01, fz], size * 0.35, size / 2, 10),
                "legs",
                leg_fam,
            )
    return pl.parts
