"""Evaluation reports and their comparison.

:func:`write_report` writes ``report.json`` (every figure, the per-image records, the config,
the checkpoint and a description of the data) and ``report.md`` (a table per class).

:func:`run_compare` (``python -m backend eval --compare``) combines several ``report.json``
(e.g. source-only / unsupervised / oracle over seeds) into ``comparison.json`` and
``comparison.md``: mean ± std over the runs of each group and the domain-adaptation gain
(unsupervised − source-only) / (oracle − source-only).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synth_render.atomic import atomic_write_text
from synth_render.taxonomy import class_name

log = logging.getLogger(__name__)

REPORT_VERSION = 1
# (report key, column title, number format) of the Markdown tables.
TABLE_COLUMNS = (("iou", "IoU", "{:.3f}"), ("ap", "AP", "{:.3f}"), ("fscore", "F@1%", "{:.3f}"),
                 ("class_correct", "class acc", "{:.3f}"),
                 ("azimuth_error", "az err (median °)", "{:.1f}"),
                 ("elevation_error", "el err (median °)", "{:.1f}"),
                 ("view_acc30", "view acc@30°", "{:.3f}"))


def format_value(value, spec: str = "{:.3f}") -> str:
    """``value`` formatted with ``spec``; a dash for a missing figure (None or NaN)."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else spec.format(value)


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


def write_report(out: Path, result: dict, cfg, checkpoint: dict, dataset: dict,
                 gallery: list[dict] | None = None) -> dict:
    """Write ``report.json`` and ``report.md`` into ``out``; return the report.

    ``cfg`` is the run's configuration (an
    :class:`backend.evaluation.evaluate.EvalConfig`) or ``None``.
    """
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
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    atomic_write_text(out / "report.md", report_markdown(report))
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
              + " / ".join(format_value(v["class_mean"]) for v in sweep.values())
              + " (class mean), "
              + " / ".join(format_value(v["instance_mean"]) for v in sweep.values())
              + " (image mean).",
              "", "Class mean = unweighted mean of the per-class figures; image mean = over "
              "all images (Pix2Vox's overall figure). Viewpoint errors are medians; "
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
    cells = [format_value(row.get(key), spec) for key, _, spec in TABLE_COLUMNS]
    return f"| {label} | {count} | " + " | ".join(cells) + " |"


# --------------------------------------------------------------------------- comparison

COMPARE_KEYS = ("iou", "ap", "fscore", "class_correct", "view_acc30")
GAIN_KEYS = ("iou", "fscore")
# The gain is only reported where the domain really has a gap: oracle − source-only mean IoU of
# at least this much (below it the ratio divides by noise, e.g. on the source domain itself).
MIN_GAP_IOU = 0.10


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


def compare_reports(specs: Sequence[str | os.PathLike]) -> dict:
    """Combine ``report.json`` files into groups (``LABEL=path``, else the checkpoint's mode).

    Per group: mean ± std (sample std over runs, e.g. seeds) of the class-mean figures and of
    each class's IoU. With groups ``source-only`` and ``oracle`` at least ``MIN_GAP_IOU`` apart
    in mean IoU, and all reports scored on one data set, also each other group's
    domain-adaptation gain (``gain``) of the group means for IoU and F-score; the top-level
    ``domain_adaptation_gain`` is the ``unsupervised`` group's.
    """
    runs: dict[str, list[dict]] = {}
    datasets = set()
    for spec in map(str, specs):
        path = spec.split("=", 1)[1] if "=" in spec else spec
        report = json.loads(Path(path).read_text())
        runs.setdefault(_group_label(spec, report), []).append({"path": path, "report": report})
        datasets.add(json.dumps(report.get("dataset"), sort_keys=True))
    same_data = len(datasets) == 1
    if not same_data:  # e.g. photo-style and synthetic reports of one run, unlabelled
        log.warning("the reports were evaluated on %d different data sets: their groups are "
                    "not comparable, so no adaptation gain is computed", len(datasets))
    groups = {label: _group_figures(items) for label, items in runs.items()}
    if same_data and _iou_gap(groups) >= MIN_GAP_IOU:
        bounds = [groups[g]["class_mean"] for g in ("source-only", "oracle")]
        for label, group in groups.items():
            if label not in ("source-only", "oracle"):
                group["gain"] = {k: domain_adaptation_gain(group["class_mean"][k]["mean"],
                                                           *(b[k]["mean"] for b in bounds))
                                 for k in GAIN_KEYS}
    return {"version": REPORT_VERSION, "groups": groups,
            "domain_adaptation_gain": groups.get("unsupervised", {}).get("gain"),
            "same_data": same_data}


def _iou_gap(groups: dict) -> float:
    """Oracle − source-only mean IoU; -inf when either group or its figure is missing."""
    if not {"source-only", "oracle"} <= groups.keys():
        return -math.inf
    low, high = (groups[g]["class_mean"]["iou"]["mean"] for g in ("source-only", "oracle"))
    return -math.inf if low is None or high is None else high - low


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
    gains = {label: g["gain"] for label, g in comparison["groups"].items() if g.get("gain")}
    if gains:
        lines += ["", "Domain-adaptation gain (group − source-only) / (oracle − source-only), "
                  "on the group means (– when oracle is not above source-only):", ""]
        lines += [f"- {label}: " + ", ".join(f"{titles[k]} {format_value(v, '{:.2f}')}"
                                             for k, v in gain.items())
                  for label, gain in gains.items()]
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
    atomic_write_text(out / "comparison.json", json.dumps(comparison, indent=1))
    atomic_write_text(out / "comparison.md", comparison_markdown(comparison))
    log.info("comparison of %d reports: %s", len(specs), out / "comparison.md")
    return 0
