"""Evaluation: ``python -m backend eval`` and the :func:`evaluate` function behind it.

    python -m backend eval --renders R --voxels V [--split splits.json --subset test] --out DIR
    python -m backend eval --checkpoint C --pix3d PIX3D --out DIR
    python -m backend eval --compare source-only=a/report.json unsupervised=b/report.json ... \
        --out DIR

Metrics (see :mod:`backend.core.metrics`): voxel IoU at the checkpoint's threshold (fixed on source
validation; the 0.3/0.4/0.5 sweep is reported for information only), average precision of the
voxel probabilities, F-score@1% on marching-cubes surface points, class accuracy and viewpoint
errors, per class (the tables 3D-R2N2 and Pix2Vox publish) and as two means: the unweighted
mean over classes ("class mean", this project's headline) and the mean over images ("instance
mean", what Pix2Vox's "overall" row is).

Outputs in ``--out``: ``report.json`` and ``report.md`` (:mod:`backend.evaluation.reports`) and
``gallery.png`` (input | prediction | ground truth; :mod:`backend.evaluation.gallery`).
``--compare`` combines several ``report.json`` instead
(:func:`backend.evaluation.reports.run_compare`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.core import metrics
from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    non_negative_int,
    positive_int,
)
from backend.core.device import DEVICE_HELP, device_name, resolve_device
from backend.evaluation.gallery import as_array, collate, render_gallery
from backend.evaluation.reports import checkpoint_info, format_value, run_compare, write_report
from synth_render import r2n2
from synth_render.taxonomy import ALL_SYNSETS, resolve_class

log = logging.getLogger(__name__)

SWEEP_THRESHOLDS = (0.3, 0.4, 0.5)
# Per-image record fields that summarize() aggregates (the rest identify the image).
METRIC_KEYS = ("iou", *(f"iou@{t:.1f}" for t in SWEEP_THRESHOLDS), "ap", "fscore",
               "class_correct", "azimuth_error", "elevation_error", "view_error", "view_acc30")


@dataclass
class EvalConfig:
    """Everything ``python -m backend eval`` needs (saved in ``report.json``)."""

    out: Path = arg(help="folder for report.json, report.md and gallery.png")
    checkpoint: Path | None = arg(None, "model.pt or checkpoint.pt (default: the shipped "
                                        "weights)")
    renders: Path | None = arg(None, "an R2N2 ShapeNetRendering-layout tree")
    voxels: Path | None = arg(None, "the matching ShapeNetVox32-layout tree")
    split: Path | None = arg(None, "split file; default: every model present in both trees")
    subset: str | None = arg(None, "subset of --split (default test); needs --split")
    pix3d: Path | None = arg(None, "evaluate on Pix3D instead of renders + voxels")
    gallery: int = arg(16, "rows of gallery.png (0: no gallery)", type=non_negative_int,
                       metavar="N")
    device: str = arg("auto", DEVICE_HELP, type=device_name)
    batch_size: int = arg(32, "images per forward pass", type=positive_int)
    fscore_points: int = arg(8192, "points sampled per surface for the F-score",
                             type=positive_int)
    views: int | None = arg(None, "evaluate the first N views of each model (default: all)",
                            type=positive_int)
    workers: int = arg(0, "data-loading processes", flag="loader_workers",
                       aliases=("--workers",), type=non_negative_int)
    render_workers: int = arg(2, "Blender workers for the gallery", type=positive_int)
    compare: list[str] = arg([], "combine report.json files (groups: LABEL, else the "
                                 "checkpoint's mode) into comparison.json/.md instead of "
                                 "evaluating", metavar="[LABEL=]REPORT")
    # Framing as the daemon does it; None: as the model was trained (ModelInfo.framing)
    autocrop: bool | None = arg(None, "frame each image's object as the daemon does (alpha, "
                                      "else the foreground model); default: as the model was "
                                      "trained")
    foreground: str = arg("shipped", "with --autocrop: the framing model",
                          metavar="shipped|none|PATH")

    @property
    def split_subset(self) -> str:
        """The subset of ``split`` that is scored."""
        return self.subset or "test"


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
                        collate_fn=collate)
    records: list[dict] = []
    for batch in _progress(loader, progress):
        with torch.inference_mode():
            out = model.predict(batch["image"].to(device))
        records += _score_batch(batch, _to_numpy(out), info, gt_names, threshold, fscore_points,
                                first_index=len(records))
    model.train(was_training)  # callers may pass a model that is training
    summary = metrics.summarize(records, METRIC_KEYS)
    result = {"threshold": threshold, "n_images": len(records), "metrics": summary,
              "threshold_sweep": _sweep(summary), "records": records,
              "seconds": round(time.perf_counter() - start, 3)}
    _log_headline(result)
    return result


def _to_numpy(out: dict) -> dict:
    return {k: as_array(v) for k, v in out.items()}


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
    one, else backend.data.datasets's convention (the position in ``taxonomy.ALL_SYNSETS``)."""
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
             result["n_images"], *(format_value(m.get(k)) for k in ("iou", "ap", "fscore",
                                                                    "class_correct")))


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
    from backend.data.splits import load_splits

    subset = cfg.split_subset
    wanted = load_splits(cfg.split).subset(subset)
    available = set(present)
    keys = [k for k in wanted if k in available]
    if len(keys) < len(wanted):
        log.warning("%d of %d %s models in %s lack renders or voxels; evaluating %d",
                    len(wanted) - len(keys), len(wanted), subset, cfg.split, len(keys))
    return keys


def load_eval_dataset(cfg: EvalConfig, image_size: int, voxel_res: int = 32):
    """The data set to evaluate (ground truth at the model's ``voxel_res``) and a JSON
    description of it."""
    from backend.data import datasets as data

    if cfg.pix3d is not None:
        dataset = data.Pix3DDataset(cfg.pix3d, size=image_size, res=voxel_res)
        return dataset, {"kind": "pix3d", "root": str(cfg.pix3d), "images": len(dataset)}
    keys = _select_keys(cfg)
    if not keys:
        raise ValueError(f"no models with both renders in {cfg.renders} and voxels in "
                         f"{cfg.voxels}" + (f" in subset {cfg.split_subset}" if cfg.split else ""))
    segmenter = None
    if cfg.autocrop:
        from backend.core.foreground import load_segmenter

        segmenter = load_segmenter(cfg.foreground)
    dataset = data.RenderVoxelDataset(cfg.renders, cfg.voxels, keys, size=image_size,
                                      views=cfg.views, voxel_res=voxel_res,
                                      autocrop=cfg.autocrop, segmenter=segmenter)
    keys = list(getattr(dataset, "keys", keys))  # without the models it had to skip
    per_class: dict[str, int] = {}
    for key in keys:
        per_class[key.split("/", 1)[0]] = per_class.get(key.split("/", 1)[0], 0) + 1
    return dataset, {"kind": "renders", "renders": str(cfg.renders), "voxels": str(cfg.voxels),
                     "autocrop": cfg.autocrop,
                     "foreground": cfg.foreground if cfg.autocrop else None,
                     "split": str(cfg.split) if cfg.split else None,
                     "subset": cfg.split_subset if cfg.split else None, "models": len(keys),
                     "images": len(dataset), "models_per_class": per_class}

# --------------------------------------------------------------------------- command


def _voxel_res(info) -> int:
    from backend.models import ModelConfig

    return ModelConfig.from_dict(info.config).voxel_size if info.config else 32


def run_eval(cfg: EvalConfig, load_model: Callable | None = None) -> int:
    """The ``eval`` command: 0 on success, 2 on bad input. ``load_model`` defaults to
    :func:`backend.core.checkpoint.load_model` (tests pass a fake)."""
    if cfg.compare:
        return run_compare(cfg.compare, cfg.out)
    if cfg.pix3d is None and (cfg.renders is None or cfg.voxels is None):
        log.error("eval needs --renders and --voxels, or --pix3d")
        return 2
    if cfg.subset and cfg.split is None:
        # Without a split file every model in the trees is scored, training shapes included.
        log.error("--subset %s needs --split (the split file that defines it)", cfg.subset)
        return 2
    if load_model is None:
        from backend.core.checkpoint import load_model
    try:
        device = str(resolve_device(cfg.device))
        model, info = load_model(cfg.checkpoint, device)
        if cfg.autocrop is None:
            cfg = dataclasses.replace(cfg, autocrop=bool(getattr(info, "framing", False)))
        dataset, description = load_eval_dataset(cfg, int(info.image_size),
                                                 _voxel_res(info))
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
    p = subparsers.add_parser("eval", help="score a checkpoint (IoU, AP, F@1%%, class, view) "
                              "and write report.json, report.md, gallery.png",
                              description=__doc__.split("\n\n")[0])
    add_dataclass_arguments(p, EvalConfig)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    return run_eval(dataclass_from_args(EvalConfig, args))
