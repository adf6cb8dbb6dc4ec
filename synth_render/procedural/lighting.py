"""Lamps: table lamps, floor lamps, arc lamps, desk (task) lamps, pendants, chandeliers.

Bodies and shades are revolved profiles; shades are thin-walled shells (a closed loop of
outer and inner wall revolved), so they are open at top and bottom like real shades yet
remain closed surfaces for solid voxelization.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice


def _shade(style: str, r_bottom: float, height: float, rng) -> np.ndarray:
    """Outer wall of a shade as a ``(radius, y)`` polyline from its rim (y=0) upwards."""
    if style == "drum":
        r_top = r_bottom * rng.uniform(0.9, 1.0)
        return np.array([[r_bottom, 0], [r_top, height]])
    if style == "empire":
        return np.array([[r_bottom, 0], [r_bottom * rng.uniform(0.45, 0.65), height]])
    if style == "dome":
        a = np.linspace(0, np.pi / 2 * 0.92, 8)
        return np.stack([r_bottom * np.cos(a), height * np.sin(a)], 1)
    if style == "cone":
        return np.array([[r_bottom, 0], [r_bottom * 0.12, height]])
    # bell: concave flare
    t = np.linspace(0, 1, 7)
    return np.stack([r_bottom * (0.45 + 0.55 * (1 - t) ** 2), height * t], 1)


def _add_shade(
    pl: PartList,
    rng,
    style: str,
    center,
    r_bottom: float,
    height: float,
    fam: str = "shade",
    tilt: float = 0.0,
) -> None:
    wall = max(0.004, r_bottom * 0.03)
    profile = P.shell_profile(_shade(style, r_bottom, height, rng), wall)
    mesh = P.revolve(profile, 28, center)
    if tilt:
        mesh = P.rotated(mesh, "x", tilt, center)
    pl.add(mesh, "shade", fam)


def _base_disc(pl: PartList, rng, r: float, fam: str) -> float:
    """Round or square foot; returns its height."""
    h = rng.uniform(0.015, 0.05)
    if rng.random() < 0.7:
        pl.add(P.revolve([[0, 0], [r, 0], [r * 0.95, h], [0, h]], 28), "base", fam)
    else:
        pl.add(P.box([r * 1.7, h, r * 1.7], [0, h / 2, 0]), "base", fam)
    return h


def lamp(rng: np.random.Generator) -> list[Part]:
    """One random lamp."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["table", "floor", "arc", "desk", "pendant", "chandelier"],
        p=[0.27, 0.2, 0.1, 0.2, 0.13, 0.1],
    )
    metal = choice(rng, ["metal", "metal", "wood", "plastic"])
    shade_style = choice(rng, ["drum", "empire", "dome", "cone", "bell"])

    if kind == "table":
        body_h = rng.uniform(0.2, 0.45)
        body = choice(rng, ["vase", "column", "ball", "stick"])
        rb = rng.uniform(0.06, 0.14)
        if body == "vase":
            k = rng.uniform(0.3, 0.7)
            prof = [
                [0, 0],
                [rb * 0.7, 0],
                [rb, body_h * k],
                [rb * 0.35, body_h * 0.92],
                [rb * 0.3, body_h],
                [0, body_h],
            ]
            pl.add(P.revolve(prof, 28), "body", "ceramic")
        elif body == "column":
            pl.add(P.cylinder([0, 0, 0], [0, body_h, 0], rb * 0.6, 24), "body", "ceramic")
        elif body == "ball":
            pl.add(P.sphere([0, rb, 0], rb), "body", "ceramic")
            pl.add(P.cylinder([0, rb, 0], [0, body_h, 0], 0.01, 10), "stem", metal)
        else:
            _base_disc(pl, rng, rb, metal)
            pl.add(P.cylinder([0, 0, 0], [0, body_h, 0], 0.012, 10), "stem", metal)
        sh_r = rng.uniform(0.14, 0.25)
        sh_h = sh_r * rng.uniform(0.7, 1.3)
        neck = rng.uniform(0.03, 0.12)
        pl.add(
            P.cylinder([0, body_h - 0.01, 0], [0, body_h + neck + sh_h * 0.6, 0], 0.008, 8),
            "stem",
            metal,
        )
        _add_shade(
            pl,
            rng,
            shade_style if shade_style != "cone" else "drum",
            [0, body_h + neck, 0],
            sh_r,
            sh_h,
        )
    elif kind == "floor":
        height = rng.uniform(1.3, 1.8)
        if rng.random() < 0.7:
            _base_disc(pl, rng, rng.uniform(0.12, 0.2), metal)
        else:  # tripod legs
            for k in range(3):
                a = 2 * np.pi * k / 3
                pl.add(
                    P.cylinder(
                        [0.25 * np.cos(a), 0, 0.25 * np.sin(a)], [0, height * 0.45, 0], 0.012, 8
                    ),
                    "legs",
                    choice(rng, ["wood", "metal"]),
                )
        heads = int(choice(rng, [1, 1, 1, 2, 3]))
        pl.add(P.cylinder([0, 0, 0], [0, height, 0], rng.uniform(0.01, 0.02), 10), "pole", metal)
        if heads == 1:
            sh_r = rng.uniform(0.18, 0.3)
            _add_shade(pl, rng, shade_style, [0, height - sh_r * 0.5, 0], sh_r, sh_r * 0.9)
        else:  # several small heads on side arms
            for k in range(heads):
                a = 2 * np.pi * k / heads + rng.uniform(0, 1)
                tip = np.array([0.25 * np.cos(a), height * rng.uniform(0.7, 1.0), 0.25 * np.sin(a)])
                pl.add(P.tube([[0, tip[1] - 0.15, 0], tip + [0, 0.05, 0]], 0.008, 8), "arms", metal)
                _add_shade(pl, rng, "cone", tip - [0, 0.08, 0], 0.08, 0.12, tilt=0.0)
    elif kind == "arc":
        height = rng.uniform(1.6, 2.1)
        reach = rng.uniform(0.8, 1.4)
        pl.add(P.box([0.3, 0.08, 0.3], [0, 0.04, 0]), "base", choice(rng, ["stone", "metal"]))
        # a vertical pole that bends over forwards (-Z) along a circular arc
        rad = reach / 1.9
        arc = P.arc_points([0, height - rad, -rad], rad, 0, 150, 12, plane="zy")
        path = np.concatenate([[[0, 0.05, 0]], arc])
        pl.add(P.tube(path, 0.012, 8), "pole", metal)
        end = path[-1]
        _add_shade(
            pl,
            rng,
            "dome",
            end - [0, rng.uniform(0.15, 0.25), 0],
            rng.uniform(0.18, 0.3),
            0.2,
            fam=choice(rng, ["metal", "shade"]),
        )
    elif kind == "desk":
        rb = rng.uniform(0.07, 0.12)
        bh = _base_disc(pl, rng, rb, metal)
        a1 = rng.uniform(40, 85)  # lower arm elevation (degrees)
        a2 = rng.uniform(-40, 20)  # upper arm elevation
        l1, l2 = rng.uniform(0.25, 0.45), rng.uniform(0.25, 0.45)
        p0 = np.array([0, bh, rb * 0.5])
        p1 = p0 + l1 * np.array([0, np.sin(np.radians(a1)), -np.cos(np.radians(a1))])
        p2 = p1 + l2 * np.array([0, np.sin(np.radians(a2)), -np.cos(np.radians(a2))])
        r = rng.uniform(0.006, 0.012)
        double = rng.random() < 0.5  # twin rods like a balanced-arm lamp
        for dx in (-0.015, 0.015) if double else (0.0,):
            pl.add(P.cylinder(p0 + [dx, 0, 0], p1 + [dx, 0, 0], r, 8), "arms", metal)
            pl.add(P.cylinder(p1 + [dx, 0, 0], p2 + [dx, 0, 0], r, 8), "arms", metal)
        pl.add(P.sphere(p1, r * 2.2, 1), "joints", metal)
        head = choice(rng, ["cone", "dome", "bell"])
        hr = rng.uniform(0.06, 0.11)
        tilt = rng.uniform(-30, 10)
        _add_shade(
            pl,
            rng,
            head,
            p2 - [0, hr * 0.9, 0],
            hr,
            hr * 1.0,
            fam=choice(rng, ["metal", "plastic", "shade"]),
            tilt=tilt,
        )
    elif kind == "pendant":
        drop = rng.uniform(0.3, 1.0)
        top = 1.5
        pl.add(P.cylinder([0, top - 0.03, 0], [0, top, 0], 0.06, 20), "canopy", metal)
        pl.add(P.cylinder([0, top - drop, 0], [0, top - 0.03, 0], 0.004, 6), "cord", "rubber")
        sh_r = rng.uniform(0.12, 0.3)
        style = choice(rng, ["dome", "cone", "drum", "bell", "globe"])
        if style == "globe":
            pl.add(P.sphere([0, top - drop - sh_r, 0], sh_r, 3), "shade", "glass")
        else:
            _add_shade(
                pl,
                rng,
                style,
                [0, top - drop - sh_r * 0.8, 0],
                sh_r,
                sh_r * 0.8,
                fam=choice(rng, ["shade", "metal"]),
            )
    else:  # chandelier: a stem, a ring of curved arms with candle-like bulbs or small shades
        top = 1.2
        n = int(rng.integers(3, 9))
        reach = rng.uniform(0.2, 0.45)
        stem_lo = top - rng.uniform(0.3, 0.6)
        pl.add(P.cylinder([0, top - 0.03, 0], [0, top, 0], 0.06, 20), "canopy", metal)
        pl.add(P.cylinder([0, stem_lo, 0], [0, top, 0], 0.012, 8), "stem", metal)
        pl.add(P.sphere([0, stem_lo, 0], 0.04, 2), "stem", metal)
        small_shades = rng.random() < 0.5
        for k in range(n):
            a = 2 * np.pi * k / n
            d = np.array([np.cos(a), 0, np.sin(a)])
            path = [
                [0, stem_lo, 0],
                d * reach * 0.6 + [0, stem_lo - 0.06, 0],
                d * reach + [0, stem_lo + 0.02, 0],
                d * reach + [0, stem_lo + 0.08, 0],
            ]
            pl.add(P.tube(path, 0.008, 6), "arms", metal)
            tip = d * reach + [0, stem_lo + 0.08, 0]
            if small_shades:
                _add_shade(pl, rng, "empire", tip + [0, 0.02, 0], 0.06, 0.08)
            else:
                pl.add(P.cylinder(tip, tip + [0, 0.08, 0], 0.012, 8), "candles", "ceramic")
    return pl.parts
