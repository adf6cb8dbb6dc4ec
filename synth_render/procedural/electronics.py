"""Electronics: display, loudspeaker, telephone.

Screens, drivers and keypads face the front (-Z); +Y is up. Screens are a dark slab laid
just proud of a bezel so renders show the familiar black rectangle.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice

# --------------------------------------------------------------------------- display


def display(rng: np.random.Generator) -> list[Part]:
    """Monitors (several stands), TVs on feet or a pedestal, curved monitors, CRTs, all-in-ones."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["monitor", "tv", "curved", "crt", "allinone", "wall"],
        p=[0.37, 0.28, 0.1, 0.1, 0.1, 0.05],
    )
    aspect = choice(
        rng, [16 / 9, 16 / 10, 4 / 3, 5 / 4, 21 / 9, 32 / 9], p=[0.4, 0.2, 0.12, 0.08, 0.15, 0.05]
    ) * rng.uniform(0.95, 1.05)
    if kind == "crt":
        aspect = 4 / 3
    w = {"tv": rng.uniform(0.9, 1.6), "wall": rng.uniform(0.8, 1.6)}.get(
        kind, rng.uniform(0.45, 0.8)
    )
    h = w / aspect
    bezel = rng.uniform(0.008, 0.04) * w
    t = rng.uniform(0.01, 0.07)
    case = choice(rng, ["plastic", "metal"])
    chin = rng.uniform(0.08, 0.18) * h if kind == "allinone" else 0.0
    stand_h = {"tv": rng.uniform(0.06, 0.3), "wall": 0.0}.get(kind, rng.uniform(0.05, 0.3))
    y0 = stand_h  # bottom of the panel
    cy = y0 + (h + 2 * bezel + chin) / 2

    if kind == "curved":  # the sides wrap forwards, towards the viewer at -Z
        depth = w * rng.uniform(0.05, 0.1)
        s = np.linspace(-1, 1, 16)
        front = np.stack([s * (w / 2 + bezel), -depth * s * s], 1)
        outline = np.concatenate([front, (front + [0, t])[::-1]])
        # extrude(axis="y") reads the outline as (x, z)
        pl.add(P.extrude(outline, h + 2 * bezel, axis="y", offset=cy), "panel", case)
        sx = s * w / 2
        sz = -depth * (sx / (w / 2 + bezel)) ** 2
        screen = np.concatenate(
            [np.stack([sx, sz - 0.003], 1), np.stack([sx, sz + 0.001], 1)[::-1]]
        )
        pl.add(P.extrude(screen, h, axis="y", offset=cy), "screen", "screen")
    elif kind == "crt":
        d = w * rng.uniform(0.6, 1.2)
        front_ring = P.rounded_rect(w + 2 * bezel, h + 2 * bezel, 0.02, 2)
        back_ring = P.rounded_rect(
            (w + 2 * bezel) * rng.uniform(0.35, 0.75),
            (h + 2 * bezel) * rng.uniform(0.35, 0.75),
            0.02,
            2,
        )
        back_dy = (h + 2 * bezel) * rng.uniform(-0.15, 0.1)  # the tube's neck sits low or high
        box_len = rng.uniform(0.1, 0.5)
        rings = [
            np.column_stack([r[:, 0], r[:, 1] + cy + dy, np.full(len(r), z)])
            for r, z, dy in (
                (front_ring, 0.0, 0),
                (front_ring, d * box_len, 0),
                (back_ring, d, back_dy),
            )
        ]
        pl.add(P.loft(rings), "case", "plastic")
        pl.add(P.box([w, h, 0.01], [0, cy, -0.004]), "screen", "screen")
    else:
        ph = h + 2 * bezel + chin
        pl.add(
            P.extrude(
                P.rounded_rect(w + 2 * bezel, ph, rng.uniform(0, 0.02), 2), t, "z", t / 2
            ).apply_translation([0, cy, 0]),
            "panel",
            case,
        )
        pl.add(P.box([w, h, 0.006], [0, y0 + chin + bezel + h / 2, -0.002]), "screen", "screen")
        if rng.random() < 0.5:  # electronics hump on the back
            pl.add(
                P.box(
                    [
                        w * rng.uniform(0.4, 0.8),
                        h * rng.uniform(0.4, 0.7),
                        t * rng.uniform(0.8, 2.5),
                    ],
                    [0, cy - h * 0.1, t * 1.2],
                ),
                "back",
                case,
            )
    if kind == "wall":  # a wall bracket behind the panel
        bd = rng.uniform(0.03, 0.12)
        pl.add(
            P.box([w * rng.uniform(0.2, 0.5), h * rng.uniform(0.2, 0.5), bd], [0, cy, t + bd / 2]),
            "bracket",
            "metal",
        )
        return pl.parts

    # stand
    style = {
        "tv": choice(rng, ["feet", "pedestal"]),
        "crt": choice(rng, ["none", "round"]),
        "allinone": "easel",
    }.get(kind, choice(rng, ["pedestal", "round", "v", "easel"]))
    stand_fam = choice(rng, [case, "metal"])
    if style == "feet":  # two feet under the panel, splayed or upright
        fx, fd = w * rng.uniform(0.15, 0.45), rng.uniform(0.12, 0.3)
        for sx in (-1, 1):
            foot = np.array([[-fd / 2, 0], [fd / 2, 0], [0.02, y0 + 0.05], [-0.01, y0 + 0.05]])
            pl.add(
                P.extrude(foot, rng.uniform(0.02, 0.06), axis="x", offset=sx * fx),
                "stand",
                stand_fam,
            )
    elif style == "easel":  # a slanted leg behind
        pl.add(P.beam([0, cy, t], [0, 0, t + h * 0.5], w * 0.25, 0.02), "stand", stand_fam)
        pl.add(P.box([w * 0.3, 0.01, h * 0.5], [0, 0.005, h * 0.2]), "stand", stand_fam)
    elif style != "none":
        neck_w = w * rng.uniform(0.05, 0.2)
        base_y = rng.uniform(0.008, 0.03)
        zn = t + rng.uniform(0.0, 0.1)
        pl.add(P.beam([0, base_y, zn], [0, cy, t * 0.7], neck_w, 0.02), "stand", stand_fam)
        bw = w * rng.uniform(0.25, 0.7)
        bd = rng.uniform(0.12, 0.32)
        if style == "round":
            pl.add(
                P.cylinder([0, 0, zn - bd * 0.2], [0, base_y * 1.5, zn - bd * 0.2], bd * 0.6, 24),
                "stand",
                stand_fam,
            )
        elif style == "v":
            for sx in (-1, 1):
                pl.add(
                    P.beam([0, base_y / 2, zn], [sx * bw / 2, base_y / 2, zn - bd], 0.03, base_y),
                    "stand",
                    stand_fam,
                )
        else:
            pl.add(P.box([bw, base_y, bd], [0, base_y / 2, zn - bd * 0.3]), "stand", stand_fam)
    return pl.parts


# --------------------------------------------------------------------------- loudspeaker


def _driver(pl: PartList, center, radius: float, cone_fam: str) -> None:
    """A woofer on the front baffle: rubber surround ring and a dished cone, facing -Z."""
    c = np.asarray(center, float)
    rim = P.cylinder(c, c - [0, 0, 0.012], radius, 24)
    pl.add(rim, "surrounds", "rubber")
    prof = [
        [0, 0],
        [radius * 0.85, 0],
        [radius * 0.8, 0.006],
        [radius * 0.25, 0.004],
        [radius * 0.22, 0.02],
        [0, 0.022],
    ]
    cone = P.rotated(P.revolve(prof, 20), "x", -90)  # +Y axis -> -Z axis
    cone.apply_translation(c - [0, 0, 0.012])
    pl.add(cone, "cones", cone_fam)


def loudspeaker(rng: np.random.Generator) -> list[Part]:
    """Tower, bookshelf (optionally on a stand), subwoofer, cylinder, PA, soundbar, smart."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["tower", "bookshelf", "sub", "cylinder", "pa", "soundbar", "smart", "portable"],
        p=[0.24, 0.24, 0.12, 0.08, 0.1, 0.07, 0.08, 0.07],
    )
    fam = choice(rng, ["wood", "plastic", "plastic", "metal"])
    cone_fam = choice(rng, ["plastic", "metal", "paint"])
    w, h, d = {
        "tower": (rng.uniform(0.16, 0.35), rng.uniform(0.7, 1.3), rng.uniform(0.2, 0.45)),
        "bookshelf": (rng.uniform(0.13, 0.3), rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.35)),
        "sub": (rng.uniform(0.3, 0.5),) * 2 + (rng.uniform(0.3, 0.5),),
        "cylinder": (rng.uniform(0.1, 0.25), rng.uniform(0.12, 0.5), 0.0),
        "portable": (rng.uniform(0.15, 0.3), rng.uniform(0.06, 0.11), 0.0),
        "pa": (rng.uniform(0.35, 0.5), rng.uniform(0.55, 0.8), rng.uniform(0.3, 0.45)),
        "soundbar": (rng.uniform(0.8, 1.1), rng.uniform(0.06, 0.12), rng.uniform(0.08, 0.14)),
        "smart": (rng.uniform(0.09, 0.2), rng.uniform(0.06, 0.25), 0.0),
    }[kind]
    y0 = 0.0
    if kind == "bookshelf" and rng.random() < 0.5:  # speaker stand: plate, pillar(s), plate
        y0 = rng.uniform(0.35, 0.8)
        pl.add(
            P.box([w * rng.uniform(1.0, 1.6), 0.015, d * rng.uniform(1.0, 1.5)], [0, 0.0075, 0]),
            "stand",
            "metal",
        )
        pillars = int(choice(rng, [1, 2]))
        pw = rng.uniform(0.03, 0.09)
        for x in [0.0] if pillars == 1 else [-w * 0.3, w * 0.3]:
            pl.add(P.box([pw, y0, pw], [x, y0 / 2, 0]), "stand", "metal")
        pl.add(P.box([w, 0.012, d], [0, y0 - 0.006, 0]), "stand", "metal")
    elif kind in ("tower", "sub") and rng.random() < 0.6:  # spikes / feet
        y0 = rng.uniform(0.02, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                pl.add(
                    P.frustum(
                        [sx * w * 0.4, 0, sz * d * 0.4],
                        [sx * w * 0.4, y0, sz * d * 0.4],
                        0.005,
                        0.015,
                        8,
                    ),
                    "feet",
                    "metal",
                )

    if kind == "portable":  # a capsule lying on its side, end caps and a strap
        r = h / 2
        pl.add(
            P.capsule([-w / 2 + r, r, 0], [w / 2 - r, r, 0], r),
            "body",
            choice(rng, ["fabric", "plastic", "rubber"]),
        )
        for sx in (-1, 1):
            pl.add(
                P.cylinder(
                    [sx * (w / 2 - r * 0.9), r, 0], [sx * (w / 2 - r * 1.1), r, 0], r * 1.04, 20
                ),
                "caps",
                "rubber",
            )
        if rng.random() < 0.5:
            pl.add(
                P.tube(
                    [
                        [-w / 2 + r, r * 1.8, 0],
                        [-w / 4, r * 2.6, 0],
                        [w / 4, r * 2.6, 0],
                        [w / 2 - r, r * 1.8, 0],
                    ],
                    0.006,
                    6,
                ),
                "strap",
                "rubber",
            )
        return pl.parts
    if kind in ("cylinder", "smart"):
        r = w / 2
        r_top = r * rng.uniform(0.6, 1.1)  # tapered or flared
        cap = min(r_top, h / 2) * rng.uniform(0.05, 0.6)
        prof = [[0, 0], [r * 0.95, 0], [r, 0.01], [r_top, h - cap]]
        prof += [
            [r_top * np.cos(a), h - cap + cap * np.sin(a)] for a in np.linspace(0.3, np.pi / 2, 4)
        ]
        prof[-1] = [0, h]
        pl.add(P.revolve(prof, 28), "body", choice(rng, ["fabric", "plastic"]))
        if kind == "cylinder":
            pl.add(
                P.cylinder([0, h - cap * 0.5, 0], [0, h - cap * 0.5 + 0.01, 0], r_top * 0.6, 20),
                "top",
                "plastic",
            )
        else:
            pl.add(
                P.torus([0, h - cap * 0.9, 0], r_top * 0.6, 0.006, sections=(20, 6)),
                "ring",
                "accent",
            )
        return pl.parts

    # box body (PA cabinets are trapezoids in plan)
    if kind == "pa":
        plan = np.array([[-w / 2, -d / 2], [w / 2, -d / 2], [w * 0.3, d / 2], [-w * 0.3, d / 2]])
        body = P.extrude(plan, h, axis="y", offset=y0 + h / 2)
    elif kind in ("tower", "bookshelf") and rng.random() < 0.6:
        # side profile with a sloping back/top (time-aligned designs): outline in (z, y)
        top_d = d * rng.uniform(0.4, 0.9)
        prof = np.array(
            [
                [-d / 2, y0],
                [d / 2, y0],
                [d / 2, y0 + h * rng.uniform(0.5, 0.9)],
                [-d / 2 + top_d, y0 + h],
                [-d / 2, y0 + h],
            ]
        )
        body = P.extrude(prof, w, axis="x")
    else:
        r = rng.uniform(0, 0.5) * min(w, d)
        # extrude(axis="y") reads (x, z); the rounding is on the vertical edges
        body = P.extrude(P.rounded_rect(w, d, r, 3), h, axis="y", offset=y0 + h / 2)
    first = len(pl.parts)
    pl.add(body, "cabinet", fam)
    if kind in ("tower", "bookshelf") and rng.random() < 0.25:  # tweeter pod on top
        pod_r = min(w, d) * rng.uniform(0.25, 0.45)
        pl.add(P.sphere([0, y0 + h + pod_r * 0.9, -d * 0.1], pod_r, 2), "pod", fam)
        pl.add(
            P.cylinder(
                [0, y0 + h + pod_r * 0.9, -d * 0.1 - pod_r * 0.9],
                [0, y0 + h + pod_r * 0.9, -d * 0.1 - pod_r * 1.05],
                pod_r * 0.5,
                16,
            ),
            "tweeter",
            "metal",
        )
    if kind == "tower" and rng.random() < 0.4:  # outrigger plinth, wider than the cabinet
        pl.add(
            P.box(
                [w * rng.uniform(1.2, 1.6), 0.03, d * rng.uniform(1.05, 1.3)], [0, y0 - 0.015, 0]
            ),
            "plinth",
            choice(rng, ["metal", "plastic"]),
        )
    zf = -d / 2
    if kind != "sub" and rng.random() < 0.5:  # fabric grille over the baffle
        pl.add(
            P.box([w * 0.96, h * 0.96, 0.01], [0, y0 + h / 2, zf - 0.005]),
            "grille",
            choice(rng, ["fabric", "rubber"]),
        )
        return pl.parts

    # drivers from the bottom up, tweeter on top
    if kind == "soundbar":
        n = int(rng.integers(2, 6))
        for x in np.linspace(-w * 0.4, w * 0.4, n):
            _driver(pl, [x, y0 + h / 2, zf], h * 0.35, cone_fam)
        return pl.parts
    woofer_r = min(w, h) * rng.uniform(0.3, 0.42)
    n = {"tower": int(rng.integers(2, 4)), "sub": 1, "pa": 1}.get(kind, 1)
    y = y0 + woofer_r * 1.3
    if kind == "sub":
        y = y0 + h / 2
    for _ in range(n):
        _driver(pl, [0, y, zf], woofer_r, cone_fam)
        y += woofer_r * 2.3
    if kind != "sub":
        tr = min(w, h) * rng.uniform(0.08, 0.12)
        ty = min(y + tr, y0 + h - tr * 1.5)
        pl.add(P.ellipsoid([0, ty, zf], [tr, tr, tr * 0.6]), "tweeter", "metal")
        if kind == "pa":  # horn instead of a dome
            pl.add(P.box([w * 0.6, tr * 2.2, 0.02], [0, ty, zf - 0.005]), "horn", "rubber")
    if rng.random() < 0.5:  # bass port
        pl.add(
            P.cylinder(
                [0, y0 + woofer_r * 0.4 + 0.02, zf + 0.001],
                [0, y0 + woofer_r * 0.4 + 0.02, zf - 0.004],
                woofer_r * 0.3,
                16,
            ),
            "port",
            "rubber",
        )
    if kind in ("tower", "bookshelf", "pa") and rng.random() < 0.35:
        # baffle tilted back (time alignment / floor monitors): tilt cabinet and drivers
        pl.rotate_since(first, "x", rng.uniform(4, 12), [0, y0, -d / 2])
    return pl.parts


# --------------------------------------------------------------------------- telephone


def telephone(rng: np.random.Generator) -> list[Part]:
    """Smartphones, candybar phones, flip phones, desk phones and cordless phones."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["smartphone", "candybar", "flip", "desk", "cordless", "slider", "docked"],
        p=[0.24, 0.14, 0.13, 0.14, 0.1, 0.11, 0.14],
    )
    if kind in ("smartphone", "candybar"):
        _handset_slab(pl, rng, kind, y0=0.0, tilt=0.0)
    elif kind == "docked":  # a smartphone leaning back on a small desk stand
        sw, sd = rng.uniform(0.06, 0.09), rng.uniform(0.06, 0.1)
        prof = np.array([[-sd / 2, 0], [sd / 2, 0], [sd / 2, 0.012], [-sd / 2 + 0.01, 0.012]])
        pl.add(P.extrude(prof, sw, axis="x"), "stand", choice(rng, ["metal", "plastic"]))
        tilt = rng.uniform(10, 30)
        pl.add(
            P.rotated(P.box([sw * 0.8, 0.08, 0.006], [0, 0.04, 0.02]), "x", tilt, [0, 0, 0.02]),
            "stand",
            choice(rng, ["metal", "plastic"]),
        )
        _handset_slab(pl, rng, "smartphone", y0=0.012, tilt=tilt, z0=-0.01)
    elif kind == "slider":  # the upper half slid up, uncovering a keyboard
        w = rng.uniform(0.042, 0.07)
        hh = rng.uniform(0.08, 0.12)
        t = rng.uniform(0.005, 0.014)
        slide = hh * rng.uniform(0.2, 0.75)
        case = choice(rng, ["plastic", "metal", "paint"])
        lower = P.extrude(P.rounded_rect(w, hh, 0.006, 3), t, "z", t * 1.5)
        pl.add(lower.apply_translation([0, hh / 2, 0]), "body", case)
        pl.extend(_keypad(w, slide * 0.9, 0.002, t * 0.98), "keys", "plastic")
        upper = P.extrude(P.rounded_rect(w, hh, 0.006, 3), t, "z", t / 2)
        pl.add(upper.apply_translation([0, hh / 2 + slide, 0]), "lid", case, like="body")
        pl.add(P.box([w * 0.85, hh * 0.7, 0.001], [0, hh / 2 + slide, -0.0004]), "screen", "screen")
    elif kind == "flip":
        w = rng.uniform(0.045, 0.055)
        hh = rng.uniform(0.085, 0.1)
        t = rng.uniform(0.01, 0.015)
        angle = rng.uniform(140, 175)
        case = choice(rng, ["plastic", "metal", "paint"])
        lower = P.extrude(P.rounded_rect(w, hh, 0.008, 3), t, "z", t / 2)
        lower.apply_translation([0, hh / 2, 0])
        pl.add(lower, "body", case)
        pl.extend(_keypad(w, hh * 0.7, hh * 0.05, -0.001), "keys", "plastic")
        upper = P.extrude(P.rounded_rect(w, hh, 0.008, 3), t * 0.8, "z", t * 0.4)
        upper.apply_translation([0, hh * 1.5, 0])
        pl.add(P.rotated(upper, "x", -(180 - angle), [0, hh, 0]), "lid", case, like="body")
        screen = P.box([w * 0.8, hh * 0.6, 0.002], [0, hh * 1.55, -0.0005])
        pl.add(P.rotated(screen, "x", -(180 - angle), [0, hh, 0]), "screen", "screen")
        pl.add(
            P.cylinder([-w / 2, hh, t / 2], [w / 2, hh, t / 2], t * 0.55, 12),
            "hinge",
            case,
            like="body",
        )
    elif kind == "desk":
        _desk_phone(pl, rng)
    else:  # cordless: a handset standing in a charging cradle
        bw, bd, bh = rng.uniform(0.07, 0.1), rng.uniform(0.08, 0.12), rng.uniform(0.025, 0.05)
        prof = np.array([[-bd / 2, 0], [bd / 2, 0], [bd / 2, bh], [-bd / 2, bh * 0.6]])
        pl.add(P.extrude(prof, bw, axis="x"), "base", choice(rng, ["plastic", "plastic"]))
        _handset_slab(pl, rng, "candybar", y0=bh * 0.5, tilt=rng.uniform(5, 20))
    return pl.parts


def _handset_slab(pl: PartList, rng, kind: str, y0: float, tilt: float, z0: float = 0.0) -> None:
    """A phone body standing upright, screen facing -Z, tilted back by ``tilt`` degrees."""
    if kind == "smartphone":
        h = rng.uniform(0.12, 0.17)
        w = h * rng.uniform(0.4, 0.7)
        t = h * rng.uniform(0.035, 0.15)
        r = w * rng.uniform(0.0, 0.25)
    else:
        h = rng.uniform(0.1, 0.15)
        w = h * rng.uniform(0.3, 0.48)
        t = rng.uniform(0.012, 0.03)
        r = w * rng.uniform(0.05, 0.35)
    case = choice(rng, ["plastic", "metal", "paint"])
    meshes = []
    edge = t * (rng.uniform(0.35, 1.0) if kind == "smartphone" else 1.0)
    body = P.extrude(P.rounded_rect(w, h, r, 4), edge, "z", edge / 2)
    meshes.append((body.apply_translation([0, y0 + h / 2, 0]), "body", case))
    if edge < t * 0.95:  # a curved back: thickest along the middle, thin at the edges
        x = np.linspace(-w / 2, w / 2, 11)
        back = edge + (t - edge) * np.cos(x / (w / 2) * np.pi / 2) ** 0.7
        outline = np.concatenate([np.stack([x, back], 1), [[w / 2, edge / 2], [-w / 2, edge / 2]]])
        bulge = P.extrude(outline, h - 2 * r - 0.004, axis="y", offset=y0 + h / 2)
        meshes.append((bulge, "body", case))
    if kind == "smartphone":
        bez = w * rng.uniform(0.02, 0.08)
        meshes.append(
            (
                P.box(
                    [w - 2 * bez, h - 2 * bez - h * rng.uniform(0.0, 0.12), 0.001],
                    [0, y0 + h / 2, -0.0004],
                ),
                "screen",
                "screen",
            )
        )
        cam = rng.uniform(0.1, 0.9) * w
        ct = rng.uniform(0.001, 0.004)
        # corner or centred camera module (wide ones are a bar across the back)
        cam_x = choice(rng, [-w / 2 + cam * 0.6, 0.0]) if cam < 0.5 * w else 0.0
        cam_h = cam * rng.uniform(0.5, 2.5)
        meshes.append(
            (
                P.box([cam, cam_h, ct], [cam_x, y0 + h - cam_h / 2 - cam * 0.4, t + ct / 2]),
                "camera",
                choice(rng, ["rubber", "metal"]),
            )
        )
        cover = choice(rng, ["none", "case", "rugged", "kickstand"], p=[0.4, 0.2, 0.2, 0.2])
        if cover == "case":  # a protective case around the sides and back, flush at the front
            lip = P.extrude(
                P.rounded_rect(w + 0.004, h + 0.004, r + 0.002, 4), t + 0.003, "z", (t + 0.003) / 2
            ).apply_translation([0, y0 + h / 2, 0])
            meshes.append((lip, "case", choice(rng, ["plastic", "rubber", "leather"])))
        elif cover == "rugged":  # bumpers on the four corners, standing proud front and back
            bump = rng.uniform(0.01, 0.02)
            for sx in (-1, 1):
                for sy in (0, 1):
                    c = [sx * (w / 2 - bump / 3), y0 + sy * h + (1 - 2 * sy) * bump / 3, t / 2]
                    meshes.append(
                        (P.box([bump, bump, t + rng.uniform(0.002, 0.008)], c), "bumpers", "rubber")
                    )
        elif cover == "kickstand":  # a flap folded out of the back, the phone stands on it
            angle = np.radians(rng.uniform(15, 40))
            top = np.array([0, y0 + h * rng.uniform(0.45, 0.7), t])
            foot = top + (top[1] - y0) * np.array([0, -1, np.tan(angle)])
            meshes.append((P.beam(top, foot, w * rng.uniform(0.3, 0.8), 0.003), "stand", "plastic"))
        meshes.append(
            (
                P.box([0.002, h * 0.12, 0.004], [w / 2 + 0.0008, y0 + h * 0.7, t / 2]),
                "buttons",
                "metal",
            )
        )
    else:
        meshes.append(
            (P.box([w * 0.8, h * 0.35, 0.002], [0, y0 + h * 0.72, -0.0008]), "screen", "screen")
        )
        if rng.random() < 0.4:
            meshes.append(
                (
                    P.cylinder([w * 0.3, y0 + h, t / 2], [w * 0.3, y0 + h * 1.25, t / 2], 0.004, 8),
                    "antenna",
                    "rubber",
                )
            )
    if kind != "smartphone":
        meshes += [(k, "keys", "plastic") for k in _keypad(w, h * 0.42, y0 + h * 0.05, -0.001)]
    for mesh, role, fam in meshes:
        mesh.apply_translation([0, 0, z0])
        pl.add(P.rotated(mesh, "x", tilt, [0, y0, z0]) if tilt else mesh, role, fam)


def _keypad(w: float, h: float, y_lo: float, z: float) -> list:
    """A 4x3 grid of keys on the front face (at ``z``) between ``y_lo`` and ``y_lo + h``."""
    kw, kh = w * 0.22, h / 4 * 0.7
    return [
        P.box([kw, kh, 0.003], [(col - 1) * w * 0.28, y_lo + h * (row + 0.5) / 4, z - 0.001])
        for row in range(4)
        for col in range(3)
    ]


def _desk_phone(pl: PartList, rng) -> None:
    """A wedge-shaped base with a keypad and a handset lying across the top."""
    bw, bd = rng.uniform(0.14, 0.28), rng.uniform(0.14, 0.26)
    hf, hb = rng.uniform(0.02, 0.06), rng.uniform(0.06, 0.13)
    case = choice(rng, ["plastic", "plastic", "paint"])
    prof = np.array([[-bd / 2, 0], [bd / 2, 0], [bd / 2, hb], [-bd / 2, hf]])
    pl.add(P.extrude(prof, bw, axis="x"), "base", case)
    # keypad on the sloped front half
    slope = np.degrees(np.arctan2(hb - hf, bd))
    for row in range(4):
        for col in range(3):
            key = P.box(
                [0.018, 0.006, 0.014],
                [(col - 1) * 0.026 - bw * 0.15, 0.0, -bd * 0.35 + row * 0.022],
            )
            key = P.rotated(key, "x", -slope).apply_translation([0, (hf + hb) / 2 + 0.002, 0])
            pl.add(key, "keys", "plastic")
    # handset: ear and mouth pieces joined by a bar, across the back or along one side
    side = rng.random() < 0.4
    hl = (bd if side else bw) * rng.uniform(0.8, 1.1)
    hy = hb + 0.02 if not side else (hf + hb) / 2 + 0.025
    ends = [np.array([-hl / 2 + 0.03, 0, 0]), np.array([hl / 2 - 0.03, 0, 0])]
    if side:  # along Z on the left edge
        ends = [np.array([-bw / 2 + 0.03, 0, e[0]]) for e in ends]
    else:
        ends = [e + [0, 0, bd * rng.uniform(0.0, 0.25)] for e in ends]
    ends = [e + [0, hy, 0] for e in ends]
    pl.add(
        P.capsule(ends[0] + [0, 0.012, 0], ends[1] + [0, 0.012, 0], rng.uniform(0.01, 0.016)),
        "handset",
        case,
        like="base",
    )
    for e in ends:
        radii = [0.028, 0.018, 0.03] if side else [0.03, 0.018, 0.028]
        pl.add(P.ellipsoid(e, radii), "handset", case, like="base")
    if rng.random() < 0.3:  # coiled cord as a straight thick tube to the base's side
        pl.add(
            P.tube(
                [ends[0], ends[0] + [-0.03, -hy * 0.7, 0.0], [-bw / 2 - 0.01, 0.01, 0]], 0.005, 6
            ),
            "cord",
            "rubber",
        )
    if rng.random() < 0.5:  # a display above the keypad
        pl.add(
            P.rotated(
                P.box([bw * 0.4, 0.004, 0.04], [bw * 0.2, 0, -bd * 0.1]), "x", -slope, [0, 0, 0]
            ).apply_translation([0, (hf + hb) / 2 + 0.002, 0]),
            "screen",
            "screen",
        )
