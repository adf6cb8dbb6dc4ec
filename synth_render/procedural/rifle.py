"""Rifles: assault rifles, bolt-action/sniper rifles, shotguns, bullpups, carbines.

Side outlines (stocks, grips, magazines) are 2D polygons in the Z-Y plane extruded across X;
barrels, scopes and tubes are round. The muzzle points to -Z, the butt to +Z, +Y is up.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice


def rifle(rng: np.random.Generator) -> list[Part]:
    """One random long gun."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["assault", "sniper", "hunting", "shotgun", "bullpup", "carbine"],
        p=[0.25, 0.18, 0.17, 0.14, 0.12, 0.14],
    )
    metal = "gun"
    stock_fam = choice(rng, ["wood", "gun"]) if kind in ("hunting", "shotgun", "sniper") else "gun"
    if kind == "hunting":
        stock_fam = "wood"

    rw = rng.uniform(0.035, 0.05)  # receiver width
    rh = rng.uniform(0.05, 0.12)  # receiver height
    rl = rng.uniform(0.22, 0.35) if kind != "bullpup" else rng.uniform(0.35, 0.45)
    barrel = {
        "assault": (0.3, 0.45),
        "sniper": (0.5, 0.7),
        "hunting": (0.45, 0.6),
        "shotgun": (0.45, 0.6),
        "bullpup": (0.15, 0.3),
        "carbine": (0.18, 0.3),
    }[kind]
    bl = rng.uniform(*barrel) * rng.uniform(0.8, 1.25)
    br = rng.uniform(0.009, 0.014) if kind != "shotgun" else rng.uniform(0.014, 0.02)
    z_front, z_rear = -rl / 2, rl / 2

    # receiver (a box, sometimes with a sloped front)
    prof = np.array(
        [
            [z_front, -rh / 2],
            [z_rear, -rh / 2],
            [z_rear, rh / 2],
            [z_front + rh * rng.uniform(0.0, 0.6), rh / 2],
        ]
    )
    pl.add(P.extrude(prof, rw, axis="x"), "receiver", metal)

    # barrel, handguard, muzzle device
    by = rh * rng.uniform(0.05, 0.25)
    tip = z_front - bl
    pl.add(P.cylinder([0, by, z_front + 0.01], [0, by, tip], br, 12), "barrel", metal)
    guard = choice(rng, ["round", "box", "none", "wood"])
    if kind in ("hunting", "shotgun", "sniper") and stock_fam == "wood":
        guard = "wood"
    gl = bl * rng.uniform(0.35, 0.7)
    if guard == "round":
        pl.add(
            P.cylinder([0, by, z_front], [0, by, z_front - gl], rh * rng.uniform(0.3, 0.45), 14),
            "handguard",
            choice(rng, ["gun", "plastic"]),
        )
    elif guard == "box":
        gh = rh * rng.uniform(0.6, 0.9)
        pl.add(
            P.box([rw * 1.05, gh, gl], [0, by - gh * 0.2, z_front - gl / 2]),
            "handguard",
            choice(rng, ["gun", "plastic"]),
        )
    elif guard == "wood":  # fore-end under the barrel
        fh = rh * rng.uniform(0.5, 0.8)
        fore = np.array(
            [
                [z_front + 0.01, by + br],
                [z_front - gl, by + br],
                [z_front - gl, by - fh * 0.6],
                [z_front + 0.01, by - fh],
            ]
        )
        pl.add(P.extrude(fore, rw * 0.95, axis="x"), "stock", stock_fam)
    if rng.random() < 0.4:
        pl.add(
            P.cylinder(
                [0, by, tip + 0.01],
                [0, by, tip - rng.uniform(0.04, 0.15)],
                br * rng.uniform(1.4, 2.4),
                12,
            ),
            "muzzle",
            metal,
        )
    if kind == "shotgun" and rng.random() < 0.7:  # tube magazine and pump under the barrel
        pl.add(
            P.cylinder([0, by - br * 2.2, z_front], [0, by - br * 2.2, tip + 0.05], br * 0.9, 10),
            "tube",
            metal,
        )
        pl.add(
            P.cylinder(
                [0, by - br * 2.2, z_front - bl * 0.2],
                [0, by - br * 2.2, z_front - bl * 0.45],
                br * 1.6,
                12,
            ),
            "pump",
            stock_fam,
        )

    # grip and stock
    grip_z = z_rear - rl * 0.3 if kind != "bullpup" else z_front + rl * 0.2
    pistol = kind in ("assault", "bullpup", "carbine") or rng.random() < 0.3
    if pistol:
        gh = rng.uniform(0.09, 0.13)
        rake = rng.uniform(0.02, 0.05)
        g = np.array(
            [
                [grip_z - 0.02, -rh / 2 + 0.005],
                [grip_z + 0.03, -rh / 2 + 0.005],
                [grip_z + 0.03 + rake, -rh / 2 - gh],
                [grip_z - 0.015 + rake, -rh / 2 - gh],
            ]
        )
        pl.add(P.extrude(g, rw * 0.9, axis="x"), "grip", choice(rng, ["plastic", stock_fam]))
        # trigger guard: a small loop in front of the grip
        tg = [
            [0, -rh / 2, grip_z - 0.07],
            [0, -rh / 2 - 0.035, grip_z - 0.06],
            [0, -rh / 2 - 0.035, grip_z - 0.02],
            [0, -rh / 2, grip_z - 0.015],
        ]
        pl.add(P.tube(tg, 0.003, 6), "trigger", metal)
    _stock(pl, rng, kind, z_rear, rh, rw, stock_fam, pistol)

    # magazine
    if kind in ("assault", "carbine", "bullpup", "sniper") and rng.random() < 0.9:
        mz = (z_front + rl * 0.25) if kind != "bullpup" else z_rear - rl * 0.25
        ml = rng.uniform(0.05, 0.26)
        mw = rng.uniform(0.03, 0.05)
        curve = rng.uniform(0.0, 0.06) if kind in ("assault", "carbine") else 0.0
        mag = np.array(
            [
                [mz - mw / 2, -rh / 2 + 0.01],
                [mz + mw / 2, -rh / 2 + 0.01],
                [mz + mw / 2 - curve * 0.5, -rh / 2 - ml],
                [mz - mw / 2 - curve, -rh / 2 - ml * 0.98],
            ]
        )
        pl.add(P.extrude(mag, rw * 0.8, axis="x"), "magazine", metal)

    # optics or sights
    optic = choice(rng, ["scope", "red_dot", "carry_handle", "irons"], p=[0.35, 0.2, 0.15, 0.3])
    if kind == "sniper":
        optic = "scope"
    if optic == "scope":
        sl = rng.uniform(0.2, 0.35)
        sr = rng.uniform(0.012, 0.02)
        sy = rh / 2 + sr * 2.2
        prof = [
            [0, 0],
            [sr * 1.8, 0],
            [sr * 1.8, sl * 0.18],
            [sr, sl * 0.3],
            [sr, sl * 0.75],
            [sr * 1.5, sl * 0.85],
            [sr * 1.5, sl],
            [0, sl],
        ]
        # built along +Y (objective bell at y=0), laid down along +Z: objective to the front
        scope = P.rotated(P.revolve(prof, 16), "x", 90)
        centre = z_front + rl * rng.uniform(0.35, 0.6)
        scope.apply_translation([0, sy, centre - sl / 2])
        pl.add(scope, "scope", metal)
        for dz in (-sl * 0.15, sl * 0.15):
            pl.add(
                P.box([0.02, sy - rh / 2, 0.02], [0, (sy + rh / 2) / 2, centre + dz]),
                "mounts",
                metal,
            )
    elif optic == "red_dot":
        pl.add(P.box([rw, 0.035, 0.05], [0, rh / 2 + 0.018, z_front + rl * 0.4]), "sight", metal)
    elif optic == "carry_handle":
        pl.add(P.box([rw * 0.7, 0.05, rl * 0.6], [0, rh / 2 + 0.03, 0]), "sight", metal)
    else:
        pl.add(P.box([0.006, 0.03, 0.01], [0, by + br + 0.012, tip + 0.03]), "sight", metal)

    if kind in ("sniper", "assault", "hunting") and rng.random() < 0.4:  # deployed bipod
        bz = z_front - bl * rng.uniform(0.2, 0.5)
        leg = rng.uniform(0.12, 0.25)
        for sx in (-1, 1):
            pl.add(
                P.cylinder(
                    [0, by - br, bz], [sx * 0.05, by - leg, bz - rng.uniform(0, 0.06)], 0.005, 8
                ),
                "bipod",
                metal,
            )
    return pl.parts


def _stock(
    pl: PartList, rng, kind: str, z_rear: float, rh: float, rw: float, fam: str, pistol: bool
) -> None:
    """Buttstock behind the receiver: solid, skeleton, collapsible, or the bullpup's body."""
    sl = rng.uniform(0.22, 0.34) if kind != "bullpup" else rng.uniform(0.05, 0.1)
    drop = rng.uniform(0.02, 0.08) if not pistol else rng.uniform(-0.01, 0.03)
    butt_h = rng.uniform(0.11, 0.16)
    style = (
        choice(rng, ["solid", "skeleton", "tube"]) if kind in ("assault", "carbine") else "solid"
    )
    top0 = rh / 2
    z1 = z_rear + sl
    if style == "solid":
        # wrist (narrow) behind the receiver widening into the butt; sporting stocks hang
        # their wrist below the receiver line
        wrist_lo = -rh / 2 - (0.0 if pistol else rng.uniform(0.03, 0.06))
        poly = np.array(
            [
                [z_rear - 0.01, top0 * 0.8],
                [z1, top0 - drop],
                [z1, top0 - drop - butt_h],
                [z_rear + sl * 0.4, wrist_lo - 0.01],
                [z_rear - (0.0 if pistol else 0.08), wrist_lo],
            ]
        )
        pl.add(P.extrude(poly, rw * rng.uniform(0.8, 1.1), axis="x"), "stock", fam)
        pl.add(
            P.box([rw * 1.1, butt_h, 0.015], [0, top0 - drop - butt_h / 2, z1 + 0.007]),
            "buttpad",
            "rubber",
        )
    elif style == "skeleton":
        loop = [
            [0, top0 * 0.6, z_rear],
            [0, top0 - drop, z1],
            [0, top0 - drop - butt_h, z1],
            [0, -rh / 2, z_rear + 0.02],
        ]
        pl.add(P.tube(loop, 0.008, 8), "stock", fam)
        pl.add(P.box([rw, butt_h, 0.02], [0, top0 - drop - butt_h / 2, z1]), "buttpad", "rubber")
    else:  # buffer tube with a sliding stock
        pl.add(P.cylinder([0, 0, z_rear], [0, 0, z1], 0.014, 12), "stock", fam)
        pl.add(P.box([rw, butt_h, sl * 0.45], [0, -butt_h * 0.25, z1 - sl * 0.22]), "stock", fam)
