"""Evaluation: ``python -m backend eval`` and the :func:`evaluate` function training reuses.

    python -m backend eval --renders R --voxels V [--split splits.json --subset test] --out DIR
    python -m backend eval --checkpoint C --pix3d PIX3D --out DIR
    python -m backend eval --compare source-only=a/report.json unsupervised=b/report.json ... \
        --out DIR

Metrics (see :mod:`backend.metrics`): voxel IoU at the checkpoint's threshold (fixed on source
validation; the 0.3/0.4/0.5 sweep is reported for information only), average precision of the
voxel probabilities, F-score@1% on marching-cubes surface points, class accuracy and viewpoint
errors, per class and as two means: the unweighted mean over classes ("class mean", the figure
3D-R2N2 and Pix2Vox publish) and the mean over images ("instance mean").

Outputs in ``--out``: ``report.json`` (every figure, the per-image records, the config, the
checkpoint and a description of the data), ``report.md`` (a table per class) and
``gallery.png`` (input | prediction | ground truth; meshes rendered by the synth_render Blender
workers from the input's own viewpoint).

``--compare`` combines several ``report.json`` (e.g. source-only / unsupervised / oracle over
seeds) into ``comparison.json`` and ``comparison.md``: mean ± std over the runs of each group
and the domain-adaptation gain (unsupervised − source-only) / (oracle − source-only).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth_render import r2n2
from synth_render.taxonomy import ALL_SYNSETS, class_name, resolve_class

from . import metrics
from .meshing import export_mesh, voxels_to_mesh

log = logging.getLogger(__name__)

REPORT_VERSION = 1
SWEEP_THRESHOLDS = (0.3, 0.4, 0.5)
DEFAULT_DISTANCE_RATIO = 0.8  # gallery camera when the data has no rendering_metadata
GALLERY_TILE = 128
# Per-image record fields that summarize() aggregates (the rest identify the image).
METRIC_KEYS = ("iou", *(f"iou@{t:.1f}" for t in SWEEP_THRESHOLDS), "ap", "fscore",
               "class_correct", "azimuth_error", "elevation_error", "view_error", "view_acc30")
# (report key, column title, number format) of the Markdown tables.
TABLE_COLUMNS = (("iou", "IoU", "{:.3f}"), ("ap", "AP", "{:.3f}"), ("fscore", "F@1%", "{:.3f}"),
                 ("class_correct", "class acc", "{:.3f}"),
                 ("azimuth_error", "az err (median °)", "{:.1f}"),
                 ("elevation_error", "el err (median °)", "{:.1f}"),
                 ("view_acc30", "view acc@30°", "{:.3f}"))


@dataclass
class EvalConfig:
    """Everything ``python -m backend eval`` needs (saved in ``report.json``)."""

    out: Path
    checkpoint: Path | None = None  # None: the shipped default weights
    renders: Path | None = None  # an R2N2 ShapeNetRendering-layout tree
    voxels: Path | None = None  # the matching ShapeNetVox32-layout tree
    split: Path | None = None  # without it: every model present in both trees
    subset: str = "test"
    pix3d: Path | None = None  # evaluate on Pix3D instead of renders + voxels
    gallery: int = 16  # rows of gallery.png; 0: no gallery
    device: str = "auto"
    batch_size: int = 32
    fscore_points: int = 8192
    workers: int = 0  # data-loading processes
    render_workers: int = 2  # Blender workers for the gallery
    compare: list[str] = field(default_factory=list)  # [LABEL=]report.json: comparison mode


# --------------------------------------------------------------------------- evaluation


def evaluate(model, info, dataset, device: str = "cpu", batch_size: int = 32,
             fscore_points: int = 8192, progress: bool = True, num_workers: int = 0) -> dict:
    """Run ``model`` over ``dataset`` and score it.

    ``model.predict(images (B, 3, S, S))`` must return ``probs (B, D, D, D)``, ``class_index``,
    ``azimuth`` and ``elevation`` (degrees); ``info.threshold`` binarizes the probabilities and
    ``info.classes`` names the predicted class indices. Returns ``{"threshold", "n_images",
    "metrics": summarize(...), "threshold_sweep", "records", "seconds"}`` where ``records`` has
    one dict per image (its dataset ``index``, ``key``, ``view_index``, ``class`` and metrics).
    """
    import torch
    from torch.utils.data import DataLoader

    start = time.perf_counter()
    threshold = float(info.threshold)
    was_training = model.training
    model.to(device).eval()
    gt_names = _dataset_class_names(dataset)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate)
    records: list[dict] = []
    for batch in _progress(loader, progress):
        with torch.inference_mode():
            out = model.predict(batch["image"].to(device))
        records += _score_batch(batch, _to_numpy(out), info, gt_names, threshold, fscore_points,
                                first_index=len(records))
    model.train(was_training)  # training calls this for validation
    summary = metrics.summarize(records, METRIC_KEYS)
    result = {"threshold": threshold, "n_images": len(records), "metrics": summary,
              "threshold_sweep": _sweep(summary), "records": records,
              "seconds": round(time.perf_counter() - start, 3)}
    _log_headline(result)
    return result


def _collate(items: list[dict]) -> dict:
    """Stack images into a tensor and everything else into numpy arrays / lists."""
    import torch

    return {
        "image": torch.stack([torch.as_tensor(np.asarray(it["image"], np.float32))
                              for it in items]),
        "voxels": np.stack([_as_array(it["voxels"]) for it in items]),
        "class_index": np.array([int(it["class_index"]) for it in items]),
        "view": np.stack([_as_array(it["view"]).astype(float) for it in items]),
        "key": [str(it["key"]) for it in items],
        "view_index": [int(it["view_index"]) for it in items],
    }


def _as_array(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _to_numpy(out: dict) -> dict:
    return {k: _as_array(v) for k, v in out.items()}


def _progress(loader, enabled: bool):
    if not enabled:
        return loader
    from tqdm import tqdm

    return tqdm(loader, unit="batch", desc="eval", mininterval=1.0)


def _score_batch(batch: dict, out: dict, info, gt_names, threshold: float, fscore_points: int,
                 first_index: int) -> list[dict]:
    """One record per image of the batch."""
    probs, gt = out["probs"].astype(np.float32), batch["voxels"] > 0.5
    iou = metrics.voxel_iou(probs, gt, threshold)
    sweep = {t: metrics.voxel_iou(probs, gt, t) for t in SWEEP_THRESHOLDS}
    ap = metrics.average_precision(probs, gt)
    views = batch["view"]
    err = metrics.angle_error_deg(out["azimuth"], out["elevation"], views[:, 0], views[:, 1])
    records = []
    for b, key in enumerate(batch["key"]):
        gt_class = _gt_class(key, int(batch["class_index"][b]), gt_names)
        pred_index = int(out["class_index"][b])
        pred_class = _pred_class(pred_index, info)
        f = metrics.surface_fscore(probs[b], gt[b], threshold, fscore_points,
                                   seed=first_index + b)
        has_view = bool(np.all(np.isfinite(views[b])))
        records.append({
            "index": first_index + b, "key": key, "view_index": batch["view_index"][b],
            "class": gt_class, "pred_class": pred_class,
            "iou": float(iou[b]), **{f"iou@{t:.1f}": float(sweep[t][b]) for t in sweep},
            "ap": float(ap[b]), "fscore": f["fscore"],
            "fscore_precision": f["precision"], "fscore_recall": f["recall"],
            "class_correct": float(_same_class(pred_class, gt_class, pred_index,
                                               int(batch["class_index"][b]))),
            "gt_azimuth": float(views[b, 0]), "gt_elevation": float(views[b, 1]),
            "pred_azimuth": float(out["azimuth"][b]), "pred_elevation": float(out["elevation"][b]),
            "azimuth_error": float(err["azimuth"][b]) if has_view else math.nan,
            "elevation_error": float(err["elevation"][b]) if has_view else math.nan,
            "view_error": float(err["geodesic"][b]) if has_view else math.nan,
            "view_acc30": (float(err["geodesic"][b] <= metrics.VIEW_ACCURACY_DEG)
                           if has_view else math.nan),
        })
    return records


# --------------------------------------------------------------------------- class labels


def _canonical(label: str) -> str:
    """A synset id for class names or ids of the 13 classes; anything else unchanged."""
    try:
        return resolve_class(str(label))
    except ValueError:
        return str(label)


def _dataset_class_names(dataset) -> list[str]:
    """The dataset's class list (index -> name or synset): its own ``classes`` when it has
    one, else backend.data's convention (the position in ``taxonomy.ALL_SYNSETS``)."""
    names = getattr(dataset, "classes", None)
    return [str(n) for n in names] if names else list(ALL_SYNSETS)


def _gt_class(key: str, class_index: int, names: list[str]) -> str:
    """Ground-truth class as a synset id (the key's first part if the index is unknown)."""
    if 0 <= class_index < len(names):
        return _canonical(names[class_index])
    return _canonical(key.split("/", 1)[0])


def _pred_class(index: int, info) -> str | None:
    classes = list(getattr(info, "classes", None) or [])
    return _canonical(classes[index]) if 0 <= index < len(classes) else None


def _same_class(pred: str | None, gt: str, pred_index: int, gt_index: int) -> bool:
    # Names when the checkpoint has them (robust to the data set using another class order).
    return pred == gt if pred is not None else pred_index == gt_index


# --------------------------------------------------------------------------- summaries


def _sweep(summary: dict) -> dict:
    """IoU at each sweep threshold, class mean and instance mean (for information only)."""
    return {f"{t:.1f}": {"class_mean": summary["class_mean"][f"iou@{t:.1f}"],
                         "instance_mean": summary["instance_mean"][f"iou@{t:.1f}"]}
            for t in SWEEP_THRESHOLDS}


def _log_headline(result: dict) -> None:
    m = result["metrics"]["class_mean"]
    log.info("%d images: IoU %s, AP %s, F@1%% %s, class acc %s (class means)",
             result["n_images"], *(_fmt(m.get(k)) for k in ("iou", "ap", "fscore",
                                                            "class_correct")))


def _fmt(value, spec: str = "{:.3f}") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else spec.format(value)


def domain_adaptation_gain(unsupervised: float, source_only: float,
                           oracle: float) -> float | None:
    """(unsupervised − source-only) / (oracle − source-only): the share of the domain gap that
    adaptation closes (1: as good as the oracle, 0: no better than source-only).

    ``None`` when any figure is missing or the oracle is not above source-only (there is no
    gap to close, so the ratio would be meaningless or infinite).
    """
    values = (unsupervised, source_only, oracle)
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    gap = oracle - source_only
    if gap <= 0:
        return None
    return (unsupervised - source_only) / gap


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


def render_gallery(model, info, dataset, records: Sequence[dict], path: Path, n: int = 16,
                   device: str = "cpu", renders: Path | None = None,
                   render_workers: int = 2) -> list[dict]:
    """Write ``gallery.png`` (input | prediction | ground truth) for up to ``n`` images.

    Meshes come from :func:`backend.meshing.voxels_to_mesh` and are rendered by synth_render's
    Blender workers in the synthetic style, both from the input's ground-truth viewpoint so
    they line up with it. Returns the rows shown (key, view, IoU, what was rendered).
    """
    from synth_render.gallery import contact_sheet, save_png
    from synth_render.render.pool import PoolOptions, run_jobs

    chosen = select_gallery(records, n)
    if not chosen:
        return []
    items = [dataset[r["index"]] for r in chosen]
    probs = _predict_probs(model, items, device)
    with tempfile.TemporaryDirectory(prefix="eval_gallery_") as tmp_str:
        tmp = Path(tmp_str)
        jobs, rows = [], []
        for i, (record, item, p) in enumerate(zip(chosen, items, probs, strict=True)):
            view = _gallery_view(record, renders)
            gt = _as_array(item["voxels"]).astype(np.float32)
            frame = _frame_box(gt)
            tiles = {}
            for name, grid, thr in (("pred", p, float(info.threshold)), ("gt", gt, 0.5)):
                job = _mesh_job(tmp, f"{i:03d}_{name}", grid, thr, frame, view, seed=i)
                if job is not None:
                    jobs.append(job)
                    tiles[name] = Path(job["out_dir"]) / r2n2.view_file_name(0)
            rows.append((record, item, tiles, view))
        outcomes = run_jobs(jobs, PoolOptions(workers=max(1, render_workers), timeout_s=300))
        failed = [o.key for o in outcomes if not o.ok]
        if failed:
            log.warning("gallery: %d of %d renders failed (%s)", len(failed), len(jobs),
                        ", ".join(failed[:4]))
        sheet_rows, labels, shown = [], [], []
        for record, item, tiles, view in rows:
            sheet_rows.append([_input_image(record, item, renders),
                               *(_open_tile(tiles.get(k)) for k in ("pred", "gt"))])
            labels.append(f"{class_name(record['class'])}  IoU {record['iou']:.2f}")
            shown.append({"key": record["key"], "view_index": record["view_index"],
                          "iou": record["iou"], "view": list(view),
                          "prediction_rendered": tiles.get("pred") is not None
                          and tiles["pred"].is_file()})
        sheet = contact_sheet(sheet_rows, labels, ["input", "prediction", "ground truth"],
                              tile=GALLERY_TILE)
    save_png(sheet, path)
    log.info("gallery of %d rows: %s", len(shown), path)
    return shown


def _predict_probs(model, items: list[dict], device: str) -> np.ndarray:
    import torch

    batch = _collate(items)
    was_training = model.training
    model.to(device).eval()
    with torch.inference_mode():
        out = model.predict(batch["image"].to(device))
    model.train(was_training)
    return _as_array(out["probs"]).astype(np.float32)


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
    from PIL import Image

    if path is None or not path.is_file():
        return None
    with Image.open(path) as im:
        return im.convert("RGBA")


def _input_image(record: dict, item: dict, renders: Path | None):
    """The input as rendered on disk when known, else the preprocessed image (in [-1, 1])."""
    from PIL import Image

    if renders is not None:
        render_dir = Path(renders) / record["key"] / "rendering"
        try:
            name = r2n2.read_renderings(render_dir)[record["view_index"]]
            with Image.open(render_dir / name) as im:
                return im.convert("RGBA")
        except (OSError, IndexError):
            pass
    image = _as_array(item["image"]).astype(np.float32).transpose(1, 2, 0)  # (S, S, 3)
    image = np.clip((image + 1.0) * 127.5, 0, 255)
    return Image.fromarray(image.round().astype(np.uint8), "RGB")


# --------------------------------------------------------------------------- data


def list_models(renders: Path, voxels: Path) -> list[str]:
    """``<synset>/<model_id>`` keys with renders (an index) and a ``model.binvox``, sorted.

    Works on 3D-R2N2's own ShapeNetRendering / ShapeNetVox32 trees as well as ours.
    """
    keys = []
    for index in sorted(Path(renders).glob(f"*/*/rendering/{r2n2.RENDERINGS_TXT}")):
        model_dir = index.parent.parent
        synset, model_id = model_dir.parent.name, model_dir.name
        if r2n2.voxel_path(voxels, synset, model_id).is_file():
            keys.append(f"{synset}/{model_id}")
    return keys


def _select_keys(cfg: EvalConfig) -> list[str]:
    present = list_models(cfg.renders, cfg.voxels)
    if cfg.split is None:
        return present
    from .splits import load_splits

    wanted = load_splits(cfg.split).subset(cfg.subset)
    available = set(present)
    keys = [k for k in wanted if k in available]
    if len(keys) < len(wanted):
        log.warning("%d of %d %s models in %s lack renders or voxels; evaluating %d",
                    len(wanted) - len(keys), len(wanted), cfg.subset, cfg.split, len(keys))
    return keys


def load_eval_dataset(cfg: EvalConfig, image_size: int):
    """The data set to evaluate and a JSON description of it."""
    from . import data

    if cfg.pix3d is not None:
        dataset = data.Pix3DDataset(cfg.pix3d, size=image_size)
        return dataset, {"kind": "pix3d", "root": str(cfg.pix3d), "images": len(dataset)}
    keys = _select_keys(cfg)
    if not keys:
        raise ValueError(f"no models with both renders in {cfg.renders} and voxels in "
                         f"{cfg.voxels}" + (f" in subset {cfg.subset}" if cfg.split else ""))
    dataset = data.RenderVoxelDataset(cfg.renders, cfg.voxels, keys, size=image_size)
    keys = list(getattr(dataset, "keys", keys))  # without the models it had to skip
    per_class: dict[str, int] = {}
    for key in keys:
        per_class[key.split("/", 1)[0]] = per_class.get(key.split("/", 1)[0], 0) + 1
    return dataset, {"kind": "renders", "renders": str(cfg.renders), "voxels": str(cfg.voxels),
                     "split": str(cfg.split) if cfg.split else None,
                     "subset": cfg.subset if cfg.split else None, "models": len(keys),
                     "images": len(dataset), "models_per_class": per_class}


# --------------------------------------------------------------------------- reports


def jsonable(value):
    """Paths, numpy values, dataclasses and NaN made JSON-safe (NaN becomes null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def checkpoint_info(info, path: Path | None) -> dict:
    """The checkpoint's identity for the report (ModelInfo's fields)."""
    fields = ("mode", "step", "threshold", "image_size", "classes", "config", "metrics")
    return {"path": str(path) if path else None, "default_weights": path is None,
            **{f: jsonable(getattr(info, f, None)) for f in fields}}


def write_report(out: Path, result: dict, cfg: EvalConfig | None, checkpoint: dict,
                 dataset: dict, gallery: list[dict] | None = None) -> dict:
    """Write ``report.json`` and ``report.md`` into ``out``; return the report."""
    report = {"version": REPORT_VERSION,
              "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "config": jsonable(cfg) if cfg is not None else None,
              "checkpoint": checkpoint, "dataset": dataset,
              "threshold": result["threshold"], "n_images": result["n_images"],
              "metrics": result["metrics"], "threshold_sweep": result["threshold_sweep"],
              "seconds": result.get("seconds"), "gallery": gallery,
              "records": result["records"]}
    report = jsonable(report)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "report.json", json.dumps(report, indent=1))
    _atomic_write(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    """The Markdown summary of a report: header, one table row per class, the sweep line."""
    ck, ds, m = report["checkpoint"], report["dataset"], report["metrics"]
    lines = ["# Evaluation report", "",
             f"- checkpoint: {ck.get('path') or 'shipped default weights'} "
             f"(mode {ck.get('mode')}, step {ck.get('step')})",
             f"- data: {_describe_dataset(ds)}; {report['n_images']} images",
             f"- threshold: {report['threshold']:.2f} (fixed on source validation)", "",
             "| class | images | " + " | ".join(t for _, t, _ in TABLE_COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(TABLE_COLUMNS)]
    for cls, row in m["per_class"].items():
        lines.append(_table_row(f"{class_name(cls)} ({cls})", row["n"], row))
    lines.append(_table_row("**mean over classes**", m["class_mean"].get("n_classes"),
                            m["class_mean"], classes=True))
    lines.append(_table_row("mean over images", m["instance_mean"]["n"], m["instance_mean"]))
    sweep = report["threshold_sweep"]
    lines += ["", "IoU at thresholds " + " / ".join(sweep) + " (for information only; never "
              "used to pick the threshold): "
              + " / ".join(_fmt(v["class_mean"]) for v in sweep.values()) + " (class mean), "
              + " / ".join(_fmt(v["instance_mean"]) for v in sweep.values()) + " (image mean).",
              "", "Class mean = unweighted mean of the per-class figures (as 3D-R2N2 and "
              "Pix2Vox report); image mean = over all images. Viewpoint errors are medians; "
              "view acc@30° counts geodesic errors up to 30°."]
    if report.get("gallery"):
        lines += ["", "![gallery: input | prediction | ground truth](gallery.png)"]
    return "\n".join(lines) + "\n"


def _describe_dataset(ds: dict) -> str:
    if ds.get("kind") == "pix3d":
        return f"Pix3D at {ds.get('root')}"
    where = f"renders {ds.get('renders')}, voxels {ds.get('voxels')}"
    if ds.get("split"):
        where += f", subset {ds.get('subset')} of {ds.get('split')}"
    return f"{where}; {ds.get('models')} models"


def _table_row(label: str, n, row: dict, classes: bool = False) -> str:
    count = f"{n} classes" if classes else str(n)
    cells = [_fmt(row.get(key), spec) for key, _, spec in TABLE_COLUMNS]
    return f"| {label} | {count} | " + " | ".join(cells) + " |"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- comparison

COMPARE_KEYS = ("iou", "ap", "fscore", "class_correct", "view_acc30")
GAIN_KEYS = ("iou", "fscore")


def _mean_std(values: list[float]) -> dict:
    arr = np.array([v for v in values if v is not None], dtype=float)
    if len(arr) == 0:
        return {"mean": None, "std": None, "runs": 0}
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "runs": len(arr)}


def _group_label(spec: str, report: dict) -> str:
    """``LABEL=path`` names the group; else the checkpoint's training mode."""
    if "=" in spec:
        return spec.split("=", 1)[0]
    mode = (report.get("checkpoint") or {}).get("mode") or "run"
    return str(mode).replace("_", "-")


def compare_reports(specs: Sequence[str | os.PathLike]) -> dict:
    """Combine ``report.json`` files into groups (``LABEL=path``, else the checkpoint's mode).

    Per group: mean ± std (sample std over runs, e.g. seeds) of the class-mean figures and of
    each class's IoU. With groups ``source-only``, ``unsupervised`` and ``oracle`` also the
    domain-adaptation gain of the group means for IoU and F-score.
    """
    runs: dict[str, list[dict]] = {}
    datasets = set()
    for spec in map(str, specs):
        path = spec.split("=", 1)[1] if "=" in spec else spec
        report = json.loads(Path(path).read_text())
        runs.setdefault(_group_label(spec, report), []).append({"path": path, "report": report})
        datasets.add(json.dumps(report.get("dataset"), sort_keys=True))
    if len(datasets) > 1:
        log.warning("the reports were evaluated on %d different data sets", len(datasets))
    groups = {label: _group_figures(items) for label, items in runs.items()}
    gain = {}
    if {"source-only", "unsupervised", "oracle"} <= set(groups):
        for key in GAIN_KEYS:
            gain[key] = domain_adaptation_gain(
                *(groups[g]["class_mean"][key]["mean"]
                  for g in ("unsupervised", "source-only", "oracle")))
    return {"version": REPORT_VERSION, "groups": groups, "domain_adaptation_gain": gain or None,
            "same_data": len(datasets) == 1}


def _group_figures(items: list[dict]) -> dict:
    reports = [it["report"] for it in items]
    classes = sorted({c for r in reports for c in r["metrics"]["per_class"]})
    return {
        "runs": [it["path"] for it in items],
        "class_mean": {k: _mean_std([r["metrics"]["class_mean"].get(k) for r in reports])
                       for k in COMPARE_KEYS},
        "per_class_iou": {c: _mean_std([r["metrics"]["per_class"].get(c, {}).get("iou")
                                        for r in reports]) for c in classes},
    }


def comparison_markdown(comparison: dict) -> str:
    """Markdown: one row per group (mean ± std over runs), then the adaptation gain."""
    titles = dict((k, t) for k, t, _ in TABLE_COLUMNS)
    lines = ["# Comparison", "", "Class means, mean ± std over runs.", "",
             "| group | runs | " + " | ".join(titles[k] for k in COMPARE_KEYS) + " |",
             "|---|---:|" + "---:|" * len(COMPARE_KEYS)]
    for label, g in comparison["groups"].items():
        cells = [_pm(g["class_mean"][k]) for k in COMPARE_KEYS]
        lines.append(f"| {label} | {len(g['runs'])} | " + " | ".join(cells) + " |")
    gain = comparison.get("domain_adaptation_gain")
    if gain:
        lines += ["", "Domain-adaptation gain (unsupervised − source-only) / (oracle − "
                  "source-only): " + ", ".join(f"{titles[k]} {_fmt(v, '{:.2f}')}"
                                               for k, v in gain.items())
                  + " (– when oracle is not above source-only)."]
    return "\n".join(lines) + "\n"


def _pm(stat: dict) -> str:
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def run_compare(specs: Sequence[str], out: Path) -> int:
    """Write ``comparison.json`` and ``comparison.md`` into ``out``; 2 on unreadable input."""
    try:
        comparison = jsonable(compare_reports(specs))
    except (OSError, ValueError, KeyError) as exc:
        log.error("cannot compare reports: %s", exc)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "comparison.json", json.dumps(comparison, indent=1))
    _atomic_write(out / "comparison.md", comparison_markdown(comparison))
    log.info("comparison of %d reports: %s", len(specs), out / "comparison.md")
    return 0


# --------------------------------------------------------------------------- command


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_eval(cfg: EvalConfig, load_model: Callable | None = None) -> int:
    """The ``eval`` command: 0 on success, 2 on bad input. ``load_model`` defaults to
    :func:`backend.checkpoint.load_model` (tests pass a fake)."""
    if cfg.compare:
        return run_compare(cfg.compare, cfg.out)
    if cfg.pix3d is None and (cfg.renders is None or cfg.voxels is None):
        log.error("eval needs --renders and --voxels, or --pix3d")
        return 2
    if load_model is None:
        from .checkpoint import load_model
    device = _resolve_device(cfg.device)
    try:
        model, info = load_model(cfg.checkpoint, device)
        dataset, description = load_eval_dataset(cfg, int(info.image_size))
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    result = evaluate(model, info, dataset, device, cfg.batch_size, cfg.fscore_points,
                      num_workers=cfg.workers)
    checkpoint = checkpoint_info(info, cfg.checkpoint)
    # Figures first: a gallery that fails (no Blender, a crashed worker) must not lose them.
    write_report(cfg.out, result, cfg, checkpoint, description)
    if cfg.gallery > 0:
        renders = cfg.renders if cfg.pix3d is None else None
        try:
            gallery = render_gallery(model, info, dataset, result["records"],
                                     cfg.out / "gallery.png", cfg.gallery, device, renders,
                                     cfg.render_workers)
        except Exception:  # any gallery failure is reported, never fatal
            log.exception("gallery failed; the report is complete without it")
        else:
            write_report(cfg.out, result, cfg, checkpoint, description, gallery)
    log.info("report: %s", cfg.out / "report.md")
    return 0


def add_eval_parser(subparsers) -> None:
    """Register ``eval`` on ``python -m backend``'s sub-command parsers."""
    d = EvalConfig(out=Path("."))
    p = subparsers.add_parser("eval", help="score a checkpoint (IoU, AP, F@1%%, class, view) "
                              "and write report.json, report.md, gallery.png",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, help="default: the shipped weights")
    p.add_argument("--renders", type=Path, help="ShapeNetRendering-layout tree")
    p.add_argument("--voxels", type=Path, help="ShapeNetVox32-layout tree")
    p.add_argument("--split", type=Path, help="split file; default: every model in both trees")
    p.add_argument("--subset", default=d.subset, help="subset of --split (default %(default)s)")
    p.add_argument("--pix3d", type=Path, help="evaluate on Pix3D instead")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--gallery", type=int, default=d.gallery, metavar="N",
                   help="gallery rows (0: none; default %(default)s)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--fscore-points", type=int, default=d.fscore_points)
    p.add_argument("--workers", type=int, default=d.workers, help="data-loading processes")
    p.add_argument("--render-workers", type=int, default=d.render_workers,
                   help="Blender workers for the gallery")
    p.add_argument("--compare", nargs="+", metavar="[LABEL=]REPORT",
                   help="combine report.json files (groups: LABEL, else the checkpoint's mode) "
                        "into comparison.json/.md instead of evaluating")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    names = [f.name for f in dataclasses.fields(EvalConfig)]
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    values["compare"] = values.get("compare") or []
    return run_eval(EvalConfig(**values))
