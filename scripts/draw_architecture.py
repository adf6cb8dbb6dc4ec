"""Draw docs/images/architecture.png: the data flow from shapes to the Blender add-on.

    .venv/bin/python scripts/draw_architecture.py [--out docs/images/architecture.png]

Boxes are coloured by the package that owns them (see docs/architecture.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch  # noqa: E402

COLOURS = {"synth_render": "#d7ecd9", "backend": "#d6e4f5", "blender_addon": "#fbe3c9",
           "your data": "#eeeeee"}
BOX_W, BOX_H = 2.6, 1.15
COL_STEP, ROW_STEP = 3.3, 1.9

# name: (column, row, owner, title, details)
BOXES = {
    "shapes": (0, 0, "synth_render", "Shapes",
               "procedural library (13 classes)\nor ShapeNet v1 / v2\nsynth_render shapes"),
    "renders": (1, 0, "synth_render", "Renders",
                "synthetic (source) and\nphoto style (target stand-in)\nheadless Blender workers"),
    "voxels": (1, 1, "synth_render", "Voxels",
               "solid binvox, 32³\nsynth_render voxelize"),
    "photos": (2, 1, "your data", "Your photos",
               "unlabelled, no 3D\n--target-images DIR"),
    "training": (2, 0, "backend", "Training",
                 "encoder E, voxel decoder G,\nimage decoders, discriminator D\n"
                 "backend train / torchrun"),
    "weights": (3, 0, "backend", "Weights",
                "model.pt (E + G + heads)\nshipped: backend/weights/\ndefault.pt"),
    "eval": (3, 1, "backend", "Evaluation",
             "IoU, AP, F-score, gallery\nbackend eval"),
    "daemon": (4, 0, "backend", "Daemon",
               "ZeroMQ ROUTER, batching,\nworkers, CURVE\nbackend serve"),
    "clients": (4, 1, "backend", "Other clients",
                "backend reconstruct,\nReconClient, your own\n(docs/protocol.md)"),
    "addon": (5, 0, "blender_addon", "Blender add-on",
              "sidebar panel: images in,\nmesh at the 3D cursor\nblender_addon build"),
}
ARROWS = [("shapes", "renders", ""), ("shapes", "voxels", ""), ("renders", "training", ""),
          ("voxels", "training", "source pairs"), ("photos", "training", "images only"),
          ("training", "weights", ""), ("weights", "daemon", ""), ("weights", "eval", ""),
          ("daemon", "addon", "ZeroMQ"), ("daemon", "clients", "")]


def centre(name: str) -> tuple[float, float]:
    col, row = BOXES[name][:2]
    return col * COL_STEP + BOX_W / 2, -row * ROW_STEP + BOX_H / 2


def border_point(frm: tuple[float, float], to: tuple[float, float],
                 gap: float = 0.06) -> tuple[float, float]:
    """Where the line from box centre ``frm`` towards ``to`` leaves that box (plus a gap)."""
    dx, dy = to[0] - frm[0], to[1] - frm[1]
    half_w, half_h = BOX_W / 2 + gap, BOX_H / 2 + gap
    scale = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return frm[0] + dx * scale, frm[1] + dy * scale


def draw(out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(16, 4.6), dpi=110)
    for name, (_, _, owner, title, details) in BOXES.items():
        x, y = centre(name)
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0.05,rounding_size=0.12",
                                    facecolor=COLOURS[owner], edgecolor="#555555"))
        ax.text(x, y + 0.36, title, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x, y - 0.14, details, ha="center", va="center", fontsize=8, linespacing=1.3)
    for a, b, label in ARROWS:
        start, end = border_point(centre(a), centre(b)), border_point(centre(b), centre(a))
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14,
                                     color="#333333", linewidth=1.3))
        if label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            vertical, level = abs(end[0] - start[0]) < 1e-6, abs(end[1] - start[1]) < 1e-6
            if vertical:
                where = dict(xy=(mx + 0.08, my), ha="left", va="center")
            elif level:
                where = dict(xy=(mx, my + 0.12), ha="center", va="bottom")
            else:  # diagonal: beside the line, on its upper-left side
                where = dict(xy=(mx - 0.12, my + 0.05), ha="right", va="bottom")
            x, y = where.pop("xy")
            ax.text(x, y, label, fontsize=8, style="italic", color="#333333", **where)
    ax.legend(handles=[Patch(facecolor=c, edgecolor="#555555", label=k)
                       for k, c in COLOURS.items()],
              loc="lower right", ncol=4, fontsize=9, frameon=False)
    ax.set_xlim(-0.2, 5 * COL_STEP + BOX_W + 0.2)
    ax.set_ylim(-ROW_STEP - 0.6, BOX_H + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/architecture.png"))
    print(draw(parser.parse_args().out))


if __name__ == "__main__":
    main()
