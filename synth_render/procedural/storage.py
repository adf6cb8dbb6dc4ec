"""Cabinets: wardrobes, sideboards, nightstands, file cabinets, bookcases and hutches.

A cabinet is a carcass (sides, top, bottom, back as separate panels, so open compartments
are real holes) divided into vertical *bays*; each bay's front is doors, drawers or open
shelves. Frame: +Y up, the front (doors, handles) faces -Z.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice

_KINDS = {  # (width, height, depth) ranges in metres
    "wardrobe": ((0.8, 1.8), (1.6, 2.2), (0.5, 0.65)),
    "sideboard": ((1.2, 2.2), (0.6, 0.95), (0.4, 0.55)),
    "nightstand": ((0.4, 0.6), (0.45, 0.7), (0.35, 0.5)),
    "file": ((0.35, 0.55), (0.6, 1.4), (0.5, 0.7)),
    "bookcase": ((0.6, 1.4), (0.8, 2.0), (0.25, 0.4)),
    "hutch": ((0.8, 1.5), (1.4, 2.0), (0.4, 0.55)),
    "tv_stand": ((1.2, 2.0), (0.4, 0.6), (0.35, 0.5)),
    "chest": ((0.7, 1.3), (0.7, 1.3), (0.4, 0.55)),
    "locker": ((0.3, 0.45), (1.5, 1.9), (0.4, 0.5)),
}


def cabinet(rng: np.random.Generator) -> list[Part]:
    """One random cabinet."""
    pl = PartList(rng)
    kind = choice(rng, list(_KINDS))
    (w0, w1), (h0, h1), (d0, d1) = _KINDS[kind]
    # ranges stretched by 10 % either side so one kind does not produce look-alikes
    w, h, d = (rng.uniform(lo * 0.85, hi * 1.15) for lo, hi in ((w0, w1), (h0, h1), (d0, d1)))
    mat = choice(rng, ["wood", "wood", "wood", "plastic", "metal"])
    if kind in ("file", "locker"):
        mat = choice(rng, ["metal", "wood"])
    t = rng.uniform(0.015, 0.035)  # panel thickness

    base = choice(rng, ["plinth", "legs", "none"], p=[0.35, 0.4, 0.25])
    y0 = {"plinth": rng.uniform(0.04, 0.15), "legs": rng.uniform(0.06, 0.35), "none": 0.0}[base]
    if kind == "bookcase":
        y0 = min(y0, 0.1)
    if base == "plinth":
        inset = rng.uniform(0.0, 0.08)  # recessed toe kick
        pl.add(P.box([w - 2 * inset, y0, d - 2 * inset], [0, y0 / 2, 0.0]), "plinth", mat)
    elif base == "legs":
        leg_mat = choice(rng, ["wood", "metal"])
        size = rng.uniform(0.03, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = [sx * (w / 2 - size), y0, sz * (d / 2 - size)]
                splay = rng.uniform(0.0, 0.03)
                pl.add(
                    P.frustum(
                        [top[0] + sx * splay, 0, top[2] + sz * splay],
                        top,
                        size * 0.35,
                        size * 0.5,
                        10,
                    ),
                    "legs",
                    leg_mat,
                )

    # carcass
    top_over = rng.uniform(0.0, 0.06) if rng.random() < 0.5 else 0.0
    pl.add(
        P.box([w + 2 * top_over, t * 1.3, d + top_over], [0, h - t * 0.65, -top_over / 2]),
        "top",
        mat,
    )
    if kind in ("wardrobe", "hutch", "bookcase", "locker") and rng.random() < 0.35:
        cw = rng.uniform(0.03, 0.08)  # cornice: a moulded crown wider than the carcass
        ch = rng.uniform(0.04, 0.12)
        pl.add(
            P.box([w + 2 * cw, ch, d + cw], [0, h + ch / 2, -cw / 2]), "cornice", mat, like="top"
        )
    for sx in (-1, 1):
        pl.add(
            P.box([t, h - y0 - t, d], [sx * (w / 2 - t / 2), y0 + (h - y0 - t) / 2, 0]),
            "sides",
            mat,
            like="top",
        )
    pl.add(P.box([w, t, d], [0, y0 + t / 2, 0]), "bottom", mat, like="top")
    pl.add(
        P.box([w - 2 * t, h - y0 - t, t], [0, y0 + (h - y0 - t) / 2, d / 2 - t / 2]),
        "back",
        mat,
        like="top",
    )

    if kind in ("sideboard", "chest", "nightstand", "tv_stand") and rng.random() < 0.3:
        _topper(pl, rng, w, h, d, t, mat)
    # bays
    if kind in ("file", "chest"):
        bays = ["drawers"] * int(rng.integers(1, 3) if kind == "chest" else 1)
    elif kind == "locker":
        bays = ["doors"]
    elif kind == "bookcase":
        bays = ["open"] * int(rng.integers(1, 3))
    elif kind == "wardrobe":
        bays = [choice(rng, ["doors", "doors", "drawers"]) for _ in range(int(rng.integers(1, 4)))]
    elif kind == "nightstand":
        bays = [choice(rng, ["drawers", "doors", "open_drawer"])]
    else:
        bays = [choice(rng, ["doors", "drawers", "open"]) for _ in range(int(rng.integers(1, 5)))]
    inner_w, y_lo, y_hi = w - 2 * t, y0 + t, h - t
    bay_w = inner_w / len(bays)
    hutch_split = y_lo + (y_hi - y_lo) * rng.uniform(0.4, 0.55) if kind == "hutch" else None
    handle_fam = choice(rng, ["metal", "wood", "plastic"])
    for k, style in enumerate(bays):
        x0 = -inner_w / 2 + k * bay_w
        if k > 0:  # divider between bays
            pl.add(
                P.box([t, y_hi - y_lo, d - t], [x0, (y_lo + y_hi) / 2, -t / 2]),
                "dividers",
                mat,
                like="top",
            )
        if hutch_split is not None:  # closed lower half, open shelves on top
            _bay(
                pl,
                rng,
                choice(rng, ["doors", "drawers"]),
                x0,
                bay_w,
                y_lo,
                hutch_split,
                d,
                t,
                mat,
                handle_fam,
            )
            pl.add(
                P.box([bay_w, t * 1.5, d], [x0 + bay_w / 2, hutch_split, 0]),
                "shelves",
                mat,
                like="top",
            )
            _bay(pl, rng, "open", x0, bay_w, hutch_split, y_hi, d, t, mat, handle_fam)
        else:
            _bay(pl, rng, style, x0, bay_w, y_lo, y_hi, d, t, mat, handle_fam)
    return pl.parts


def _topper(pl: PartList, rng, w: float, h: float, d: float, t: float, mat: str) -> None:
    """An open shelf unit standing on the back of the top (a hutch or dresser mirror frame)."""
    tw, th, td = w * rng.uniform(0.5, 1.0), h * rng.uniform(0.3, 1.0), d * rng.uniform(0.25, 0.6)
    z = d / 2 - td / 2
    for sx in (-1, 1):
        pl.add(
            P.box([t, th, td], [sx * (tw / 2 - t / 2), h + th / 2, z]), "topper", mat, like="top"
        )
    pl.add(P.box([tw, t, td], [0, h + th - t / 2, z]), "topper", mat, like="top")
    pl.add(P.box([tw, th, t], [0, h + th / 2, d / 2 - t / 2]), "topper", mat, like="top")
    for yy in np.linspace(h, h + th, int(rng.integers(2, 4)) + 1)[1:-1]:
        pl.add(P.box([tw, t, td], [0, yy, z]), "topper", mat, like="top")


def _bay(
    pl: PartList,
    rng,
    style: str,
    x0: float,
    bw: float,
    y_lo: float,
    y_hi: float,
    d: float,
    t: float,
    mat: str,
    handle_fam: str,
) -> None:
    """Fill the bay ``[x0, x0 + bw] x [y_lo, y_hi]`` with doors, drawers or shelves."""
    cx, hgt = x0 + bw / 2, y_hi - y_lo
    zf = -d / 2 - 0.01  # door fronts stand slightly proud of the carcass
    gap = 0.006
    if style == "open" or style == "open_drawer":
        n_open = int(rng.integers(1, max(2, int(hgt / 0.3)) + 1))
        y_top = y_hi
        if style == "open_drawer":  # a drawer on top of an open cubby
            dh = hgt * rng.uniform(0.3, 0.45)
            _front(pl, cx, bw - gap, y_hi - dh / 2, dh - gap, zf, handle_fam, mat, "drawer")
            y_top = y_hi - dh
            pl.add(P.box([bw, t, d], [cx, y_top, 0]), "shelves", mat, like="top")
            n_open = 1
        for yy in np.linspace(y_lo, y_top, n_open + 1)[1:-1]:
            pl.add(P.box([bw, t, d - t], [cx, yy, -t / 2]), "shelves", mat, like="top")
        return
    if style == "doors":
        n = 1 if bw < 0.55 else 2
        glass = rng.random() < 0.15
        for j in range(n):
            dx = x0 + bw * (j + 0.5) / n
            _front(
                pl,
                dx,
                bw / n - gap,
                (y_lo + y_hi) / 2,
                hgt - gap,
                zf,
                handle_fam,
                mat,
                "door",
                side=(1 if j == 0 else -1) if n == 2 else choice(rng, [-1, 1]),
                glass=glass,
            )
        return
    n = max(2, int(round(hgt / rng.uniform(0.15, 0.35))))
    heights = np.linspace(y_lo, y_hi, n + 1)
    for j in range(n):
        _front(
            pl,
            cx,
            bw - gap,
            (heights[j] + heights[j + 1]) / 2,
            heights[j + 1] - heights[j] - gap,
            zf,
            handle_fam,
            mat,
            "drawer",
        )


def _front(
    pl: PartList,
    cx: float,
    fw: float,
    cy: float,
    fh: float,
    zf: float,
    handle_fam: str,
    mat: str,
    role: str,
    side: int = 0,
    glass: bool = False,
) -> None:
    """A door or drawer front with its handle (a vertical bar on doors, horizontal on drawers)."""
    ft = 0.02
    # fronts share the carcass colour unless the fronts are glass
    pl.add(
        P.box([fw, fh, ft], [cx, cy, zf + ft / 2]),
        f"{role}s",
        "glass" if glass else mat,
        like=None if glass else "top",
    )
    if role == "door":
        hx, hy = cx + side * (fw / 2 - 0.05), cy
        pl.add(
            P.box([0.015, min(0.25, fh * 0.3), 0.02], [hx, hy, zf - 0.012]), "handles", handle_fam
        )
    else:
        pl.add(
            P.box([min(0.2, fw * 0.4), 0.015, 0.02], [cx, cy + fh * 0.15, zf - 0.012]),
            "handles",
            handle_fam,
        )
