"""The evaluation gallery: ``gallery.png`` of ``python -m backend eval``.

:func:`select_gallery` picks the rows deterministically (per class the median, best and worst
IoU); :func:`render_gallery` shows input | prediction | ground truth through
:func:`write_gallery`, which renders the meshes (:func:`backend.core.meshing.voxels_to_mesh`) with
the synth_render Blender workers from the input's own viewpoint (also used by
``python -m backend demo``). :func:`collate` and :func:`as_array` batch dataset items for the model
(shared with :func:`backend.evaluation.evaluate.evaluate`).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backend.core.meshing import export_mesh, voxels_to_mesh
from synth_render import r2n2
from synth_render.taxonomy import class_name

log = logging.getLogger(__name__)

DEFAULT_DISTANCE_RATIO = 0.8  # gallery camera when the data has no rendering_metadata
GALLERY_TILE = 128


# --------------------------------------------------------------------------- batching


def collate(items: list[dict]) -> dict:
    """Stack images into a tensor and everything else into numpy arrays / lists."""
    import torch

    return {
        "image": torch.stack([torch.as_tensor(np.asarray(it["image"], np.float32))
                              for it in items]),
        "voxels": np.stack([as_array(it["voxels"]) for it in items]),
        "class_index": np.array([int(it["class_index"]) for it in items]),
        "view": np.stack([as_array(it["view"]).astype(float) for it in items]),
        "key": [str(it["key"]) for it in items],
        "view_index": [int(it["view_index"]) for it in items],
    }


def as_array(x) -> np.ndarray:
    """A numpy array of ``x`` (a torch tensor is detached and moved to the CPU first)."""
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


# --------------------------------------------------------------------------- gallery


def select_gallery(records: Sequence[dict], n: int) -> list[dict]:
    """Up to ``n`` records, deterministically: per class the median, then best, then worst
    IoU, taken round-robin over classes; rows come out grouped by class, best first."""
    by_class: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["iou"], r["index"])):
        by_class.setdefault(r["class"], []).append(r)
    candidates = {}
    for cls in sorted(by_class):
        rs = by_class[cls]
        ranked = {r["index"]: r for r in (rs[len(rs) // 2], rs[-1], rs[0])}  # de-duplicated
        candidates[cls] = list(ranked.values())
    picks: dict[str, list[dict]] = {cls: [] for cls in candidates}
    taken = 0
    for rank in range(3):
        for cls, ranked in candidates.items():
            if rank < len(ranked) and taken < n:
                picks[cls].append(ranked[rank])
                taken += 1
    return [r for cls in picks for r in sorted(picks[cls], key=lambda r: -r["iou"])]


@dataclass
class GalleryRow:
    """One gallery row: the input, what the model predicted and the ground truth.

    ``view`` is the camera that took the input, (azimuth, elevation, distance ratio), so the
    meshes line up with it; ``ground_truth=None`` leaves its tile blank.
    """

    image: Image.Image | None
    label: str
    prediction: np.ndarray  # (D, D, D) probabilities, [x, y, z], +Y up
    threshold: float
    ground_truth: np.ndarray | None
    view: tuple[float, float, float]


def render_gallery(model, info, dataset, records: Sequence[dict], path: Path, n: int = 16,
                   device: str = "cpu", renders: Path | None = None,
                   render_workers: int = 2) -> list[dict]:
    """Write ``gallery.png`` (input | prediction | ground truth) for up to ``n`` images.

    Picks the rows with :func:`select_gallery`, predicts them and draws them with
    :func:`write_gallery`. Returns the rows shown (key, view, IoU, what was rendered).
    """
    chosen = select_gallery(records, n)
    if not chosen:
        return []
    items = [dataset[r["index"]] for r in chosen]
    probs = _predict_probs(model, items, device)
    rows = [GalleryRow(_input_image(record, item, renders),
                       f"{class_name(record['class'])}  IoU {record['iou']:.2f}", p,
                       float(info.threshold), as_array(item["voxels"]).astype(np.float32),
                       _gallery_view(record, renders))
            for record, item, p in zip(chosen, items, probs, strict=True)]
    rendered = write_gallery(rows, path, render_workers)
    return [{"key": record["key"], "view_index": record["view_index"], "iou": record["iou"],
             "view": list(row.view), "prediction_rendered": ok}
            for record, row, ok in zip(chosen, rows, rendered, strict=True)]


def write_gallery(rows: Sequence[GalleryRow], path: Path, render_workers: int = 2) -> list[bool]:
    """Write a gallery PNG (input | prediction | ground truth), one row per :class:`GalleryRow`.

    Meshes come from :func:`backend.core.meshing.voxels_to_mesh` and are rendered by synth_render's
    Blender workers in the synthetic style from the row's ``view``. Returns, per row, whether
    its prediction tile was rendered (an empty prediction or a failed render leaves it blank).
    """
    from synth_render.gallery import contact_sheet, save_png
    from synth_render.render.pool import PoolOptions, run_jobs

    with tempfile.TemporaryDirectory(prefix="gallery_") as tmp_str:
        tmp = Path(tmp_str)
        jobs, tiles = [], []
        for i, row in enumerate(rows):
            frame = _frame_box(row.ground_truth if row.ground_truth is not None
                               else row.prediction >= row.threshold)
            row_tiles = {}
            for name, grid, thr in (("pred", row.prediction, row.threshold),
                                    ("gt", row.ground_truth, 0.5)):
                job = None if grid is None else _mesh_job(tmp, f"{i:03d}_{name}", grid, thr,
                                                          frame, row.view, seed=i)
                if job is not None:
                    jobs.append(job)
                    row_tiles[name] = Path(job["out_dir"]) / r2n2.view_file_name(0)
            tiles.append(row_tiles)
        outcomes = run_jobs(jobs, PoolOptions(workers=max(1, render_workers), timeout_s=300))
        failed = [o.key for o in outcomes if not o.ok]
        if failed:
            log.warning("gallery: %d of %d renders failed (%s)", len(failed), len(jobs),
                        ", ".join(failed[:4]))
        sheet = contact_sheet([[row.image, *(_open_tile(t.get(k)) for k in ("pred", "gt"))]
                               for row, t in zip(rows, tiles, strict=True)],
                              [row.label for row in rows],
                              ["input", "prediction", "ground truth"], tile=GALLERY_TILE)
        rendered = [t.get("pred") is not None and t["pred"].is_file() for t in tiles]
    save_png(sheet, path)
    log.info("gallery of %d rows: %s", len(rows), path)
    return rendered


def _predict_probs(model, items: list[dict], device: str) -> np.ndarray:
    import torch

    batch = collate(items)
    was_training = model.training
    model.to(device).eval()
    with torch.inference_mode():
        out = model.predict(batch["image"].to(device))
    model.train(was_training)
    return as_array(out["probs"]).astype(np.float32)


def _gallery_view(record: dict, renders: Path | None) -> tuple[float, float, float]:
    """(azimuth, elevation, distance ratio) of the input: the ground-truth view, else the
    predicted one (Pix3D images may lack it); the distance from rendering_metadata.txt."""
    az, el = record["gt_azimuth"], record["gt_elevation"]
    if not (math.isfinite(az) and math.isfinite(el)):
        az, el = record["pred_azimuth"], record["pred_elevation"]
    ratio = DEFAULT_DISTANCE_RATIO
    if renders is not None:
        try:
            meta = r2n2.read_metadata(Path(renders) / record["key"] / "rendering")
            ratio = meta[record["view_index"]].distance_ratio
        except (OSError, IndexError, ValueError):
            pass
    return float(az), float(el), float(ratio)


def _frame_box(gt: np.ndarray) -> np.ndarray:
    """Corners (2, 3) of the ground-truth surface's bounding box in object coordinates."""
    try:
        return voxels_to_mesh(gt, 0.5).bounds
    except ValueError:
        return np.array([[-0.5] * 3, [0.5] * 3])


def _mesh_job(tmp: Path, name: str, grid: np.ndarray, threshold: float, frame: np.ndarray,
              view: tuple[float, float, float], seed: int) -> dict | None:
    """Write the mesh as OBJ and describe its render job; ``None`` for an empty grid."""
    try:
        mesh = voxels_to_mesh(grid, threshold)
    except ValueError:
        return None
    obj = tmp / "meshes" / f"{name}.obj"
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(export_mesh(mesh, "obj") + _frame_faces(frame, len(mesh.vertices)))
    return {"model_key": f"gallery/{name}", "mesh": str(obj),
            "out_dir": str(tmp / "renders" / name / "rendering"), "views": [list(view)],
            "size": GALLERY_TILE, "style": "synthetic", "seed": [0, seed, 7],
            "asset_split": "test", "samples": 16}


def _frame_faces(frame: np.ndarray, n_vertices: int) -> bytes:
    """Two zero-area triangles at the frame box's corners, appended to an OBJ.

    The render worker scales every mesh to a unit bounding-box diagonal; giving prediction and
    ground truth the same box (the ground truth's) makes them appear at the same scale, and
    the same as the input (rendered from the mesh the ground truth was voxelized from).
    Zero-area triangles draw nothing, and Blender's importer keeps them (loose vertices it
    would drop).
    """
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for corner in frame for x, y, z in [corner] * 3]
    first = n_vertices + 1
    lines += [f"f {first} {first + 1} {first + 2}", f"f {first + 3} {first + 4} {first + 5}"]
    return ("\n" + "\n".join(lines) + "\n").encode("ascii")


def _open_tile(path: Path | None):
    if path is None or not path.is_file():
        return None
    with Image.open(path) as im:
        return im.convert("RGBA")


def _input_image(record: dict, item: dict, renders: Path | None):
    """The input as rendered on disk when known, else the preprocessed image (in [-1, 1])."""
    if renders is not None:
        render_dir = Path(renders) / record["key"] / "rendering"
        try:
            name = r2n2.read_renderings(render_dir)[record["view_index"]]
            with Image.open(render_dir / name) as im:
                return im.convert("RGBA")
        except (OSError, IndexError):
            pass
    image = as_array(item["image"]).astype(np.float32).transpose(1, 2, 0)  # (S, S, 3)
    image = np.clip((image + 1.0) * 127.5, 0, 255)
    return Image.fromarray(image.round().astype(np.uint8), "RGB")

