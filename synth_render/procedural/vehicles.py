"""Vehicles: car, airplane, watercraft.

Bodies are lofts of cross-sections placed along the length axis (Z, nose towards -Z), so
a handful of numbers per section (width, floor, roof) give smooth, ShapeNet-like hulls,
fuselages and car bodies without boolean operations.
"""

from __future__ import annotations

import numpy as np

from ..shapenet import Part
from . import parts as P
from .builder import PartList, choice

# --------------------------------------------------------------------------- car

_CAR_TYPES = {
    # length, width, roof height, hood fraction, roof end (fraction), rear style
    "sedan": ((4.3, 5.1), (1.75, 1.9), (1.38, 1.5)),
    "hatchback": ((3.6, 4.3), (1.65, 1.8), (1.42, 1.55)),
    "suv": ((4.3, 5.0), (1.85, 2.0), (1.65, 1.9)),
    "wagon": ((4.5, 5.0), (1.75, 1.9), (1.42, 1.55)),
    "sports": ((4.0, 4.7), (1.8, 2.0), (1.1, 1.3)),
    "pickup": ((5.0, 5.8), (1.85, 2.0), (1.75, 1.95)),
    "van": ((4.6, 5.4), (1.85, 2.0), (1.85, 2.2)),
    "microcar": ((2.5, 3.4), (1.45, 1.65), (1.45, 1.65)),
    "convertible": ((3.9, 4.8), (1.7, 1.9), (1.2, 1.35)),
    "offroad": ((3.8, 4.6), (1.75, 1.95), (1.75, 2.0)),
    "limo": ((5.6, 6.8), (1.8, 2.0), (1.4, 1.5)),
}


def car(rng: np.random.Generator) -> list[Part]:
    """Sedans, hatchbacks, SUVs, wagons, sports cars, pickups and vans."""
    pl = PartList(rng)
    kind = choice(
        rng, list(_CAR_TYPES), p=[0.2, 0.12, 0.14, 0.08, 0.1, 0.08, 0.07, 0.06, 0.06, 0.05, 0.04]
    )
    (l0, l1), (w0, w1), (r0, r1) = _CAR_TYPES[kind]
    # ranges widened by 10 % either side so that two cars of one type rarely coincide
    L = rng.uniform(l0 * 0.92, l1 * 1.08)
    W = rng.uniform(w0 * 0.92, w1 * 1.08)
    roof = rng.uniform(r0 * 0.92, r1 * 1.08)
    tall = kind in ("suv", "pickup", "offroad")
    wheel_r = rng.uniform(0.28, 0.38) if not tall else rng.uniform(0.36, 0.46)
    clear = rng.uniform(0.1, 0.22) if not tall else rng.uniform(0.25, 0.4)
    if kind == "sports":
        clear = rng.uniform(0.08, 0.13)
    belt = clear + rng.uniform(0.5, 0.72) * (roof - clear) * (0.95 if kind != "sports" else 1.1)
    nose_h = clear + rng.uniform(0.3, 0.65) * (belt - clear)

    # key stations along Z (front = -L/2): windshield base, roof start/end, rear glass end
    hood = {
        "sports": 0.38,
        "van": 0.12,
        "pickup": 0.27,
        "hatchback": 0.24,
        "microcar": 0.14,
        "convertible": 0.35,
        "offroad": 0.25,
    }.get(kind, 0.28)
    z_ws = -L / 2 + L * (hood + rng.uniform(-0.08, 0.08))
    z_rf = z_ws + L * rng.uniform(0.1, 0.18) * (1.4 if kind == "sports" else 1.0)
    if kind in ("suv", "wagon", "van", "offroad"):
        z_rr, z_re = L / 2 - L * rng.uniform(0.04, 0.1), L / 2 - L * 0.02
    elif kind in ("hatchback", "microcar"):
        z_rr, z_re = L / 2 - L * rng.uniform(0.15, 0.22), L / 2 - L * 0.04
    elif kind == "pickup":
        z_rr = z_ws + L * rng.uniform(0.22, 0.3)
        z_re = z_rr + 0.05
    elif kind == "sports" and rng.random() < 0.5:  # fastback: the roof slopes to the tail
        z_rr = z_rf + L * rng.uniform(0.05, 0.12)
        z_re = L / 2 - L * rng.uniform(0.03, 0.1)
    else:
        z_rr = L / 2 - L * rng.uniform(0.28, 0.4)
        z_re = L / 2 - L * rng.uniform(0.1, 0.22)
    z_rr = max(z_rr, z_rf + 0.3)
    z_re = max(z_re, z_rr + 0.05)
    tail_h = belt + rng.uniform(-0.1, 0.1)
    taper_f, taper_r = rng.uniform(0.05, 0.25), rng.uniform(0.03, 0.15)  # plan-view rounding
    side_round = rng.uniform(0.15, 0.5)  # section corner radius, as a fraction of its height
    top_w = W * rng.uniform(0.32, 0.42)  # roof width (tumblehome)

    body_end = L / 2 if kind != "pickup" else z_re + 0.05
    zs = np.linspace(-L / 2, body_end, 28)
    top = np.interp(
        zs,
        [-L / 2, -L / 2 + 0.25, z_ws, z_re, L / 2 - 0.15, L / 2],
        [nose_h - 0.08, nose_h, belt, tail_h, tail_h, tail_h - 0.1],
    )
    u = (zs + L / 2) / L  # 0 at the nose, 1 at the tail
    plan = W * (
        1
        - taper_f * np.clip((0.18 - u) / 0.18, 0, 1) ** 1.5
        - taper_r * np.clip((u - 0.85) / 0.15, 0, 1) ** 2
    )
    rings = []
    for z, y1, w in zip(zs, top, plan, strict=True):
        sec = P.rounded_rect(w, y1 - clear, min(0.25, (y1 - clear) * side_round), 3)
        rings.append(
            np.column_stack([sec[:, 0], sec[:, 1] + (y1 + clear) / 2, np.full(len(sec), z)])
        )
    pl.add(P.loft(rings), "body", "paint")

    if kind == "convertible":  # open top: a raked windshield and seats instead of a cabin
        ws = P.box([W * 0.8, (roof - belt) * 1.3, 0.03], [0, belt + (roof - belt) * 0.6, z_ws])
        pl.add(P.rotated(ws, "x", 35, [0, belt, z_ws]), "windows", "glass")
        for zz in (z_ws + L * 0.15, z_ws + L * 0.32)[: int(rng.integers(1, 3))]:
            for sx in (-1, 1):
                seat = P.box(
                    [W * 0.3, (roof - belt) * 0.8, 0.1],
                    [sx * W * 0.2, belt + (roof - belt) * 0.3, zz],
                )
                pl.add(seat, "seats", "leather")
        z_re = z_ws  # no roof
    # greenhouse: glass, narrower at the roof (tumblehome), painted roof panel on top
    gz = np.linspace(z_ws, z_re, 16)
    gtop = np.interp(
        gz,
        [z_ws, z_rf, z_rr, z_re],
        [belt + 0.02, roof, roof - 0.02, belt + (0.02 if kind != "van" else 0.3)],
    )
    if kind in ("suv", "wagon", "van", "hatchback", "microcar", "offroad"):
        gtop = np.interp(
            gz,
            [z_ws, z_rf, z_rr, z_re],
            [belt + 0.02, roof, roof - 0.03, roof - rng.uniform(0.1, 0.35)],
        )
    cabin = []
    for z, y1 in zip(gz, gtop, strict=True):
        hw0, hw1 = W * 0.46, top_w
        sec = np.array([[-hw0, belt - 0.05], [hw0, belt - 0.05], [hw1, y1], [-hw1, y1]])
        cabin.append(np.column_stack([sec[:, 0], sec[:, 1], np.full(4, z)]))
    if kind != "convertible":
        pl.add(P.loft(cabin), "windows", "glass")
    k0, k1 = np.searchsorted(gz, z_rf), np.searchsorted(gz, z_rr)
    if k1 - k0 >= 1 and kind != "convertible":
        roof_rings = [
            np.column_stack(
                [
                    [-top_w * 0.98, top_w * 0.98, top_w * 0.98, -top_w * 0.98],
                    [y - 0.03, y - 0.03, y + 0.02, y + 0.02],
                    np.full(4, z),
                ]
            )
            for z, y in zip(gz[k0 : k1 + 1], gtop[k0 : k1 + 1], strict=True)
        ]
        pl.add(P.loft(roof_rings), "roof", "paint", like="body")

    if kind == "pickup":  # open cargo bed behind the cab: floor and three walls
        bz0, bz1 = body_end - 0.05, L / 2
        bed_t = 0.06
        pl.add(
            P.box_between([-W / 2, clear, bz0], [W / 2, clear + 0.25, bz1]),
            "bed",
            "paint",
            like="body",
        )
        for sx in (-1, 1):
            pl.add(
                P.box_between([sx * W / 2 - sx * bed_t, clear, bz0], [sx * W / 2, belt, bz1]),
                "bed",
                "paint",
                like="body",
            )
        pl.add(
            P.box_between([-W / 2, clear, bz1 - bed_t], [W / 2, belt, bz1]),
            "bed",
            "paint",
            like="body",
        )

    # wheels: tyre (rubber) and hub (metal), the tyres poke out of the body's lower edge
    wb_front = -L / 2 + L * rng.uniform(0.16, 0.22)
    wb_rear = L / 2 - L * rng.uniform(0.17, 0.24)
    tw = rng.uniform(0.18, 0.34)
    track = rng.uniform(-0.06, 0.1)  # how far the tyres stand out of the body's sides
    for z in (wb_front, wb_rear):
        for sx in (-1, 1):
            x = sx * (W / 2 - tw / 2 + track)
            pl.add(
                P.cylinder([x - tw / 2, wheel_r, z], [x + tw / 2, wheel_r, z], wheel_r, 20),
                "tires",
                "rubber",
            )
            pl.add(
                P.cylinder(
                    [x, wheel_r, z], [x + sx * (tw / 2 + 0.01), wheel_r, z], wheel_r * 0.6, 16
                ),
                "rims",
                "metal",
            )
    # lights and bumpers
    for sx in (-1, 1):
        pl.add(
            P.box([W * 0.18, 0.08, 0.04], [sx * W * 0.32, nose_h - 0.08, -L / 2 + 0.01]),
            "headlights",
            "livery",
        )
    if rng.random() < 0.6:
        pl.add(P.box([W * 0.96, 0.14, 0.1], [0, clear + 0.12, -L / 2 + 0.03]), "bumpers", "plastic")
        pl.add(P.box([W * 0.96, 0.14, 0.1], [0, clear + 0.12, L / 2 - 0.03]), "bumpers", "plastic")
    if kind == "offroad" and rng.random() < 0.7:  # spare wheel on the tailgate
        pl.add(
            P.cylinder([0, belt, L / 2], [0, belt, L / 2 + 0.25], wheel_r, 20), "tires", "rubber"
        )
    if kind in ("suv", "van", "offroad") and rng.random() < 0.5:  # roof rails
        for sx in (-1, 1):
            pl.add(
                P.box(
                    [0.05, 0.05, (z_rr - z_rf) * 1.1],
                    [sx * W * 0.33, roof + 0.04, (z_rf + z_rr) / 2],
                ),
                "rails",
                "metal",
            )
    closed_roof = kind not in ("sports", "convertible", "pickup")
    if closed_roof and rng.random() < 0.2:  # roof box on bars
        bl = (z_rr - z_rf) * rng.uniform(0.6, 1.0)
        pl.add(
            P.extrude(
                P.rounded_rect(top_w * 1.5, 0.16, 0.06, 3), bl, "z", (z_rf + z_rr) / 2
            ).apply_translation([0, roof + 0.14, 0]),
            "roof_box",
            "plastic",
        )
    if kind in ("offroad", "suv", "pickup") and rng.random() < 0.4:  # bull bar
        pl.add(
            P.tube(
                [
                    [-W * 0.35, clear + 0.1, -L / 2 - 0.05],
                    [-W * 0.3, nose_h + 0.15, -L / 2 - 0.12],
                    [W * 0.3, nose_h + 0.15, -L / 2 - 0.12],
                    [W * 0.35, clear + 0.1, -L / 2 - 0.05],
                ],
                0.035,
                8,
            ),
            "bull_bar",
            "metal",
        )
    if kind in ("sedan", "hatchback", "wagon") and rng.random() < 0.2:
        pl.add(
            P.box([W * 0.7, 0.03, 0.2], [0, tail_h + 0.08, L / 2 - 0.15]),
            "spoiler",
            "paint",
            like="body",
        )
    if kind == "sports" and rng.random() < 0.5:  # rear wing
        pl.add(
            P.box([W * 0.8, 0.03, 0.25], [0, tail_h + 0.18, L / 2 - 0.2]),
            "spoiler",
            "paint",
            like="body",
        )
        for sx in (-1, 1):
            pl.add(
                P.box([0.04, 0.18, 0.1], [sx * W * 0.3, tail_h + 0.09, L / 2 - 0.2]),
                "spoiler",
                "paint",
                like="body",
            )
    return pl.parts


# --------------------------------------------------------------------------- airplane


def _airfoil(chord: float, thickness: float, n: int = 10) -> np.ndarray:
    """Symmetric lens-like section in (chord-wise, thickness) coordinates, leading edge at 0."""
    t = np.linspace(0, np.pi, n, endpoint=False)[1:]
    x = (1 - np.cos(t)) / 2  # cosine spacing: dense at the leading edge
    half = 0.5 * thickness * 2.6 * np.sqrt(x) * (1 - x)
    upper = np.stack([x, half], 1)
    lower = np.stack([x[::-1], -half[::-1]], 1)
    pts = np.concatenate([[[0, 0]], upper, [[1, 0]], lower])
    return pts * [chord, chord]


def _wing(
    root: np.ndarray,
    span: float,
    c_root: float,
    c_tip: float,
    sweep_deg: float,
    dihedral_deg: float,
    thick: float,
    vertical: bool = False,
) -> object:
    """One wing (or fin) from ``root`` (leading edge point) out along +X (or +Y)."""
    sweep = np.tan(np.radians(sweep_deg)) * span
    rise = np.tan(np.radians(dihedral_deg)) * span
    rings = []
    for f, c in ((0.0, c_root), (1.0, c_tip)):
        sec = _airfoil(c, thick)
        ring = np.zeros((len(sec), 3))
        ring[:, 2] = sec[:, 0] + f * sweep  # chord runs backwards (+Z)
        if vertical:
            ring[:, 0] = sec[:, 1]
            ring[:, 1] = f * span
        else:
            ring[:, 1] = sec[:, 1] + f * rise
            ring[:, 0] = f * span
        rings.append(ring + root)
    return P.loft(rings)


def airplane(rng: np.random.Generator) -> list[Part]:
    """Airliners, business jets, fighters, propeller planes and gliders."""
    pl = PartList(rng)
    kind = choice(
        rng, ["airliner", "bizjet", "fighter", "prop", "glider"], p=[0.35, 0.15, 0.2, 0.2, 0.1]
    )
    L = 1.0
    R = (
        L
        * {
            "airliner": (0.045, 0.065),
            "bizjet": (0.04, 0.055),
            "fighter": (0.04, 0.06),
            "prop": (0.04, 0.06),
            "glider": (0.025, 0.04),
        }[kind][0]
    )
    R *= rng.uniform(1.0, 1.4)
    body = choice(rng, ["paint", "livery"]) if kind != "fighter" else "livery"

    # fuselage: round sections, blunt nose, tail tapering and sweeping up
    nose_len = rng.uniform(0.08, 0.14) if kind != "fighter" else rng.uniform(0.18, 0.28)
    tail_len = rng.uniform(0.25, 0.4)
    zs = np.linspace(0, 1, 30)
    radius = np.where(zs < nose_len, R * np.sqrt(np.clip(zs / nose_len, 0.02, 1)), R)
    taper = np.clip((zs - (1 - tail_len)) / tail_len, 0, 1)
    radius = radius * (1 - 0.8 * taper)
    centre_y = R * 0.7 * taper**1.5
    rings = []
    for z, r, cy in zip(zs, radius, centre_y, strict=True):
        ring = P.ellipse(r, r * (1.05 if kind != "fighter" else 0.9), 16)
        rings.append(np.column_stack([ring[:, 0], ring[:, 1] + cy, np.full(16, z * L - L / 2)]))
    pl.add(P.loft(rings), "fuselage", body)

    # main wings
    span = {
        "airliner": (0.45, 0.6),
        "bizjet": (0.35, 0.5),
        "fighter": (0.22, 0.32),
        "prop": (0.45, 0.6),
        "glider": (0.75, 1.0),
    }[kind]
    half = L * rng.uniform(*span)
    c_root = L * {"fighter": rng.uniform(0.35, 0.5), "glider": rng.uniform(0.06, 0.09)}.get(
        kind, rng.uniform(0.14, 0.22)
    )
    taper_r = rng.uniform(0.2, 0.45) if kind != "prop" else rng.uniform(0.5, 1.0)
    sweep = {
        "airliner": (25, 38),
        "bizjet": (20, 35),
        "fighter": (35, 60),
        "prop": (-2, 6),
        "glider": (-2, 4),
    }[kind]
    sweep = rng.uniform(*sweep)
    mount = (
        choice(rng, ["low", "mid", "high"], p=[0.6, 0.2, 0.2])
        if kind != "prop"
        else choice(rng, ["low", "high"])
    )
    wy = {"low": -R * 0.6, "mid": 0.0, "high": R * 0.75}[mount]
    wz = -L / 2 + L * rng.uniform(0.32, 0.45) if kind != "fighter" else -L / 2 + L * 0.4
    dihedral = rng.uniform(0, 7) if mount != "high" else rng.uniform(-3, 2)
    wing = _wing(
        np.array([0.0, wy, wz]),
        half,
        c_root,
        c_root * taper_r,
        sweep,
        dihedral,
        rng.uniform(0.08, 0.13),
    )
    pl.add_mirrored(wing, "wings", body)

    # tail
    tail = choice(rng, ["conventional", "t_tail"], p=[0.7, 0.3])
    if kind == "fighter":
        tail = choice(rng, ["twin", "conventional"])
    tz = L / 2 - L * rng.uniform(0.12, 0.2)
    fin_h = L * rng.uniform(0.12, 0.2)
    fin_c = L * rng.uniform(0.1, 0.18)
    fin_y = centre_y[-4] + radius[-4] * 0.5
    if tail == "twin":
        for sx in (-1, 1):
            fin = _wing(
                np.array([sx * R * 0.8, fin_y, tz]),
                fin_h * 0.8,
                fin_c,
                fin_c * 0.4,
                rng.uniform(35, 50),
                0,
                0.06,
                vertical=True,
            )
            pl.add(P.rotated(fin, "z", -sx * 15, [sx * R * 0.8, fin_y, tz]), "tail", body)
    else:
        fin = _wing(
            np.array([0, fin_y, tz - 0.02]),
            fin_h,
            fin_c,
            fin_c * rng.uniform(0.4, 0.7),
            rng.uniform(25, 50),
            0,
            0.09,
            vertical=True,
        )
        pl.add(fin, "tail", body)
    if kind != "glider" or rng.random() < 0.5:
        h_span = half * rng.uniform(0.3, 0.42)
        h_c = fin_c * rng.uniform(0.7, 1.0)
        hy = fin_y + fin_h * 0.95 if tail == "t_tail" else fin_y - R * 0.2
        hz = tz + (np.tan(np.radians(35)) * fin_h * 0.9 if tail == "t_tail" else 0.01)
        stab = _wing(
            np.array([0, hy, hz]),
            h_span,
            h_c,
            h_c * 0.5,
            rng.uniform(20, 40),
            rng.uniform(0, 6),
            0.08,
        )
        pl.add_mirrored(stab, "stabilizers", body)

    # engines
    eng_color = choice(rng, ["metal", "livery", "paint"])

    def tip_le(f: float) -> np.ndarray:
        """Leading-edge point of the right wing at span fraction ``f``."""
        return np.array(
            [
                f * half,
                wy + np.tan(np.radians(dihedral)) * f * half,
                wz + np.tan(np.radians(sweep)) * f * half,
            ]
        )

    if kind == "airliner":
        n = int(choice(rng, [2, 2, 4]))
        spots = [0.35] if n == 2 else [0.3, 0.62]
        er = R * rng.uniform(0.45, 0.65)
        for f in spots:
            le = tip_le(f)
            c = np.array([le[0], le[1] - er * 1.3, le[2] - er * 1.2])
            nac = P.frustum(c - [0, 0, er * 2.5], c + [0, 0, er * 2.0], er, er * 0.7, 16)
            pylon = P.box([er * 0.3, er * 1.2, er * 2], c + [0, er * 0.8, er * 0.5])
            for m in (nac, pylon):
                pl.add_mirrored(m, "engines", eng_color)
    elif kind == "bizjet":
        er = R * rng.uniform(0.35, 0.5)
        c = np.array([R + er * 1.1, centre_y[-8] + R * 0.3, L / 2 - L * 0.28])
        pl.add_mirrored(
            P.frustum(c - [0, 0, er * 2.5], c + [0, 0, er * 2.0], er, er * 0.7, 16),
            "engines",
            eng_color,
        )
        pl.add_mirrored(P.box([er * 1.5, er * 0.4, er * 2], c - [er, 0, 0]), "engines", eng_color)
    elif kind == "prop":
        n = int(choice(rng, [1, 2, 2]))
        blades = int(choice(rng, [2, 3, 4]))
        prop_r = L * rng.uniform(0.06, 0.1)
        hubs = [np.array([0, 0, -L / 2 - 0.01])] if n == 1 else [tip_le(0.3) + [0, 0, -0.06]]
        for hub in hubs:
            parts = []
            if n == 2:
                parts.append(P.capsule(hub + [0, 0, 0.02], hub + [0, 0, c_root * 1.1], R * 0.4))
            parts.append(P.frustum(hub + [0, 0, 0.01], hub - [0, 0, R * 0.6], R * 0.35, 0.004))
            for b in range(blades):
                blade = P.box([0.012, prop_r, 0.004], hub + [0, prop_r / 2, 0])
                parts.append(P.rotated(blade, "z", 360 * b / blades + 20, hub))
            for m in parts:
                if n == 1:
                    pl.add(m, "propeller", "metal")
                else:
                    pl.add_mirrored(m, "propeller", "metal")
    elif kind == "fighter":  # intakes beside the fuselage and a canopy
        for sx in (-1, 1):
            pl.add(
                P.box([R * 0.7, R * 1.0, L * 0.35], [sx * R * 0.95, -R * 0.2, -L * 0.05]),
                "intakes",
                body,
                like="fuselage",
            )
    if kind in ("fighter", "glider", "prop") or rng.random() < 0.2:  # bubble canopy
        cz = -L / 2 + nose_len * L * 1.3
        pl.add(P.ellipsoid([0, R * 0.75, cz], [R * 0.6, R * 0.55, L * 0.08]), "canopy", "glass")
    return pl.parts


# --------------------------------------------------------------------------- watercraft


def _hull(
    L: float,
    B: float,
    D: float,
    freeboard: float,
    rng,
    bow_pow: float,
    stern_w: float,
    v_shape: float,
    both_ends: bool = False,
) -> object:
    """A boat hull: sections along Z from a pointed bow (-Z) to a transom (+Z)."""
    zs = np.linspace(0, 1, 24)
    rise = rng.uniform(0.1, 0.8)
    rings = []
    for u in zs:
        fb = np.clip(u / 0.35, 0.03, 1) ** bow_pow  # bow narrows to a point
        if both_ends:
            fb *= np.clip((1 - u) / 0.35, 0.03, 1) ** bow_pow
        else:
            fb *= 1 - (1 - stern_w) * np.clip((u - 0.75) / 0.25, 0, 1)
        b = max(B / 2 * fb, 0.004)
        depth = (
            D
            * (0.35 + 0.65 * np.clip(u / 0.3, 0, 1) ** 0.7)
            * (1 if not both_ends else min(1, (1 - u) / 0.3 + 0.35))
        )
        sheer = freeboard * (1 + rise * (1 - u) ** 2)  # deck rises towards the bow
        if both_ends:
            sheer = freeboard * (1 + rise * (2 * u - 1) ** 4)
        t = np.linspace(0, np.pi, 9)
        # one side from the deck down to the keel and up the other side
        xs = -b * np.cos(t)
        ys = -depth * (np.sin(t) ** v_shape)
        section = np.column_stack([xs, ys])
        section = np.concatenate([[[b, sheer]], section[::-1], [[-b, sheer]]])[::-1]
        rings.append(
            np.column_stack([section[:, 0], section[:, 1], np.full(len(section), -L / 2 + u * L)])
        )
    return P.loft(rings)


def watercraft(rng: np.random.Generator) -> list[Part]:
    """Sailboats, motorboats, yachts, cargo ships, warships, canoes and submarines."""
    pl = PartList(rng)
    kind = choice(
        rng,
        ["sailboat", "motorboat", "yacht", "cargo", "warship", "canoe", "submarine"],
        p=[0.22, 0.18, 0.15, 0.15, 0.12, 0.1, 0.08],
    )
    L = 1.0
    B = L * {
        "canoe": rng.uniform(0.08, 0.2),
        "cargo": rng.uniform(0.12, 0.2),
        "warship": rng.uniform(0.09, 0.15),
    }.get(kind, rng.uniform(0.2, 0.4))
    D = B * rng.uniform(0.25, 0.7)
    fb = B * rng.uniform(0.12, 0.45)
    hull_fam = "hull"

    if kind == "submarine":
        R = L * rng.uniform(0.05, 0.08)
        zs = np.linspace(0, 1, 24)
        r = (
            R
            * np.clip(np.minimum(zs / 0.12, 1), 0.05, 1) ** 0.5
            * np.clip((1 - zs) / 0.35, 0.05, 1)
        )
        rings = [
            np.column_stack([c[:, 0], c[:, 1], np.full(12, z - L / 2)])
            for z, rr in zip(zs, r, strict=True)
            for c in [P.circle(rr, 12)]
        ]
        pl.add(P.loft(rings), "hull", "gun")
        sail_z = -L / 2 + L * rng.uniform(0.25, 0.4)
        sail_h = R * rng.uniform(1.0, 1.8)
        sail = P.extrude(P.rounded_rect(L * 0.12, sail_h, 0.01), R * 0.5, axis="x")
        pl.add(sail.apply_translation([0, R + sail_h / 2 - 0.01, sail_z]), "sail", "gun")
        for sx in (-1, 1):
            pl.add(P.box([R * 1.5, 0.005, L * 0.05], [sx * R, 0, L / 2 - L * 0.08]), "fins", "gun")
        pl.add(P.box([0.005, R * 1.8, L * 0.05], [0, 0, L / 2 - L * 0.08]), "fins", "gun")
        return pl.parts

    both = kind == "canoe"
    hull = _hull(
        L,
        B,
        D,
        fb,
        rng,
        bow_pow=rng.uniform(0.5, 1.0),
        stern_w=rng.uniform(0.6, 0.95),
        v_shape=rng.uniform(0.5, 1.5),
        both_ends=both,
    )
    pl.add(hull, "hull", hull_fam)
    deck_y = fb

    if kind == "canoe":
        if rng.random() < 0.5:  # kayak: closed deck with a cockpit rim and maybe a paddle
            pl.add(P.torus([0, fb, 0], B * 0.25, B * 0.04, sections=(16, 6)), "cockpit", "plastic")
            if rng.random() < 0.5:
                ang = rng.uniform(-40, 40)
                paddle = P.cylinder([-L * 0.22, fb * 1.6, 0], [L * 0.22, fb * 1.6, 0], 0.005, 8)
                pl.add(P.rotated(paddle, "y", ang), "paddle", "accent")
        elif rng.random() < 0.4:  # outrigger canoe: a float on two booms to one side
            side = choice(rng, [-1, 1])
            off = B * rng.uniform(1.5, 3.0)
            pl.add(
                P.capsule([side * off, 0, -L * 0.2], [side * off, 0, L * 0.2], B * 0.12),
                "outrigger",
                "wood",
            )
            for z in (-L * 0.12, L * 0.12):
                pl.add(
                    P.cylinder([0, fb, z], [side * off, B * 0.1, z], 0.006, 6), "outrigger", "wood"
                )
        else:  # open canoe: thwarts / seats across
            for z in np.linspace(-L * 0.25, L * 0.25, int(rng.integers(2, 4))):
                pl.add(P.box([B * 0.8, 0.01, 0.04], [0, fb * 0.9, z]), "seats", "wood")
        return pl.parts

    if kind == "sailboat":
        masts = int(choice(rng, [1, 1, 1, 2]))
        mast_h = L * rng.uniform(0.6, 1.5)
        for m in range(masts):
            mz = -L / 2 + L * (0.35 if m == 0 else 0.65) + rng.uniform(-0.05, 0.05)
            h = mast_h * (1.0 if m == 0 else 0.7)
            pl.add(P.cylinder([0, 0, mz], [0, deck_y + h, mz], 0.008, 10), "mast", "metal")
            boom = L * rng.uniform(0.2, 0.5)
            pl.add(
                P.cylinder([0, deck_y + 0.08, mz], [0, deck_y + 0.08, mz + boom], 0.006, 8),
                "mast",
                "metal",
            )
            if rng.random() < 0.85:  # mainsail: triangle from masthead to boom end
                sail = np.array(
                    [
                        [mz + 0.01, deck_y + 0.09],
                        [mz + boom, deck_y + 0.09],
                        [mz + 0.01, deck_y + h * 0.95],
                    ]
                )
                pl.add(P.extrude(sail, 0.004, axis="x"), "sails", "sail")
                if m == 0 and rng.random() < 0.7:  # jib ahead of the mast
                    jib_top = rng.uniform(0.6, 0.95)
                    bowsprit = L * rng.uniform(-0.1, 0.12)
                    jib = np.array(
                        [
                            [mz - 0.01, deck_y + 0.05],
                            [mz - 0.01, deck_y + h * jib_top],
                            [-L / 2 - bowsprit, deck_y + 0.05],
                        ]
                    )
                    pl.add(P.extrude(jib, 0.004, axis="x"), "sails", "sail")
        pl.add(
            P.extrude(
                np.array(
                    [
                        [-L * 0.05, -D * 0.9],
                        [L * 0.1, -D * 0.9],
                        [L * 0.08, -D - L * 0.15],
                        [-L * 0.0, -D - L * 0.15],
                    ]
                ),
                0.02,
                axis="x",
            ),
            "keel",
            "metal",
        )
        if rng.random() < 0.7:
            _cabin_block(pl, rng, B * 0.6, L * 0.25, fb * 0.9, deck_y, L * 0.05)
        return pl.parts

    if kind == "motorboat":
        cz = -L * rng.uniform(0.0, 0.15)
        if rng.random() < 0.6:  # windshield + console
            pl.add(
                P.rotated(
                    P.box([B * 0.7, fb * 1.2, 0.01], [0, deck_y + fb * 0.6, cz]),
                    "x",
                    -30,
                    [0, deck_y, cz],
                ),
                "windshield",
                "glass",
            )
        else:
            _cabin_block(pl, rng, B * 0.75, L * 0.35, fb * 1.5, deck_y, cz)
        if rng.random() < 0.8:
            pl.add(
                P.box([B * 0.25, fb * 1.5, L * 0.08], [0, deck_y - fb * 0.2, L / 2 + L * 0.03]),
                "outboard",
                "plastic",
            )
        return pl.parts

    if kind == "yacht":
        levels = int(rng.integers(1, 4))
        length, width, z0 = L * rng.uniform(0.45, 0.6), B * 0.8, L * rng.uniform(0.0, 0.1)
        y = deck_y
        for _lv in range(levels):
            hgt = fb * rng.uniform(1.0, 1.6)
            _cabin_block(pl, rng, width, length, hgt, y, z0)
            y += hgt
            length *= rng.uniform(0.55, 0.8)
            width *= rng.uniform(0.8, 0.95)
            z0 += L * 0.03
        if rng.random() < 0.6:
            pl.add(P.cylinder([0, y, z0], [0, y + fb * 1.5, z0], 0.006, 8), "mast", "metal")
        return pl.parts

    if kind == "cargo":
        bridge_z = L / 2 - L * rng.uniform(0.1, 0.2)
        bh = fb * rng.uniform(2.5, 4.5)
        pl.add(
            P.box([B * 0.85, bh, L * 0.08], [0, deck_y + bh / 2, bridge_z]),
            "superstructure",
            "livery",
        )
        pl.add(
            P.box([B * 1.05, fb * 0.3, L * 0.04], [0, deck_y + bh, bridge_z - L * 0.02]),
            "superstructure",
            "livery",
        )
        pl.add(
            P.cylinder(
                [0, deck_y, bridge_z + L * 0.06],
                [0, deck_y + bh * 0.9, bridge_z + L * 0.06],
                B * 0.12,
                12,
            ),
            "funnel",
            "accent",
        )
        if rng.random() < 0.7:  # container stacks
            rows = int(rng.integers(4, 10))
            for k in range(rows):
                z = -L / 2 + L * 0.15 + k * (L * 0.58 / rows)
                hgt = fb * rng.uniform(0.5, 2.0)
                pl.add(
                    P.box([B * 0.8, hgt, L * 0.58 / rows * 0.9], [0, deck_y + hgt / 2, z]),
                    "containers",
                    choice(rng, ["accent", "paint"]),
                )
        else:  # tanker: pipes and a catwalk
            pl.add(
                P.box([B * 0.1, fb * 0.3, L * 0.6], [0, deck_y + fb * 0.15, -L * 0.1]),
                "deck",
                "accent",
            )
        return pl.parts

    # warship: stepped superstructure, gun turrets, mast
    s_len, s_h, s_z = (
        L * rng.uniform(0.15, 0.4),
        fb * rng.uniform(1.2, 3.0),
        L * rng.uniform(-0.1, 0.15),
    )
    pl.add(P.box([B * 0.7, s_h, s_len], [0, deck_y + s_h / 2, s_z]), "superstructure", "gun")
    t_h = fb * rng.uniform(0.8, 2.5)
    pl.add(
        P.box([B * 0.5, t_h, s_len * 0.5], [0, deck_y + s_h + t_h / 2, s_z - s_len * 0.2]),
        "superstructure",
        "gun",
    )
    pl.add(
        P.cylinder(
            [0, deck_y + s_h + t_h, s_z - s_len * 0.2],
            [0, deck_y + s_h + t_h + fb * rng.uniform(1.0, 4.0), s_z - s_len * 0.2],
            0.006,
            8,
        ),
        "mast",
        "metal",
    )
    if rng.random() < 0.6:
        pl.add(
            P.cylinder(
                [0, deck_y, s_z + s_len * 0.6],
                [0, deck_y + s_h * 1.2, s_z + s_len * 0.6],
                B * 0.12,
                12,
            ),
            "funnel",
            "gun",
        )
    for z in (-L * 0.3, L * 0.3)[: int(rng.integers(1, 3))]:
        pl.add(P.cylinder([0, deck_y, z], [0, deck_y + fb * 0.6, z], B * 0.2, 16), "turrets", "gun")
        pl.add(
            P.cylinder(
                [0, deck_y + fb * 0.35, z],
                [0, deck_y + fb * 0.45, z - np.sign(z + 1e-9) * L * 0.08],
                0.006,
                8,
            ),
            "turrets",
            "gun",
        )
    return pl.parts


def _cabin_block(
    pl: PartList, rng, width: float, length: float, height: float, y: float, z: float
) -> None:
    """A deckhouse with a raked front and a dark window band."""
    prof = np.array(
        [
            [z - length / 2, y],
            [z + length / 2, y],
            [z + length / 2, y + height],
            [z - length / 2 + height * rng.uniform(0.3, 1.0), y + height],
        ]
    )
    pl.add(P.extrude(prof, width, axis="x"), "cabin", "hull", like="hull")
    pl.add(
        P.box([width * 1.01, height * 0.3, length * 0.6], [0, y + height * 0.6, z + length * 0.1]),
        "windows",
        "glass",
    )
