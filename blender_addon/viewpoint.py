"""Where to put a camera so that a reconstruction lines up with its reference image (pure math).

The model predicts the viewpoint in the project's canonical convention
(``synth_render.frames``; the daemon's replies use it too): azimuth ``a`` and elevation ``e`` in
degrees around the object's centre, the camera at ``d * (cos e cos a, sin e, -cos e sin a)`` in
the object's frame (+Y up, -Z front), so azimuth 90 looks at the front (3D-R2N2's metadata
would say ``90 - a``). The camera of 3D-R2N2's protocol: a 35 mm lens on a 32 mm sensor at
``ratio * 1.75`` object-diagonals with ratio in [0.65, 0.95); the distance is not predicted,
so the middle of that range is used. Coordinates here are Blender's (+Z up), after the
importers' +Y-up to +Z-up conversion: the camera sits at ``d * (cos e cos a, cos e sin a,
sin e)``.
"""

from __future__ import annotations

import math

MAX_CAMERA_DIST = 1.75  # in object-diagonals (R2N2 normalizes shapes to a unit diagonal)
TYPICAL_DISTANCE_RATIO = 0.8  # middle of R2N2's [0.65, 0.95)
LENS_MM = 35.0
SENSOR_MM = 32.0


def camera_offset(azimuth: float, elevation: float, diagonal: float,
                  distance_ratio: float = TYPICAL_DISTANCE_RATIO) -> tuple[float, float, float]:
    """Camera position relative to the object's centre, for an object whose bounding box has
    the given ``diagonal`` (scene units)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    d = distance_ratio * MAX_CAMERA_DIST * diagonal
    return (d * math.cos(el) * math.cos(az), d * math.cos(el) * math.sin(az), d * math.sin(el))


def look_at_euler(offset: tuple[float, float, float]) -> tuple[float, float, float]:
    """XYZ Euler angles (radians) of a Blender camera at ``offset`` looking at the origin,
    with its up vector towards +Z (a camera looks down its local -Z axis)."""
    x, y, z = offset
    horizontal = math.hypot(x, y)
    tilt = math.atan2(horizontal, z)  # rotation about X: 0 looks straight down
    heading = math.atan2(y, x) + math.pi / 2  # rotation about Z
    return (tilt, 0.0, heading)


def sensor_width(photo_size: tuple[int, int], render_size: tuple[int, int]) -> float:
    """Horizontal sensor width (mm, with ``sensor_fit='HORIZONTAL'``) that makes the camera
    see what the model saw in a background image shown with ``frame_method='FIT'``.

    The model saw the photo padded to a square of side ``L = max(W, H)`` through a 32 mm
    sensor. FIT scales the photo by ``s = min(X / W, Y / H)`` into an ``X x Y`` render, so
    that square spans ``s * L`` render pixels, and 32 mm must span exactly those.
    """
    w, h = photo_size if min(photo_size) > 0 else (1, 1)
    x, y = render_size
    scale = min(x / w, y / h)
    return SENSOR_MM * x / (scale * max(w, h))
