"""Reconstruction and viewpoint metrics (numpy and scipy; torch tensors are accepted as input).

* :func:`voxel_iou` – intersection over union of the voxels at or above a threshold.
* :func:`average_precision` – area under the precision-recall curve of voxel probabilities,
  computed step-wise like ``sklearn.metrics.average_precision_score`` (no interpolation).
* :func:`fscore` – F-score at distance ``tau`` between surface point sets (Tatarchenko et al.
  2019, "What do single-view 3D reconstruction networks learn?"); :func:`surface_fscore`
  meshes both grids the same way and uses ``tau = 0.01`` of the unit cube (F-score@1%), with
  dense reference samples so that sampling gaps do not count as errors.
* :func:`angle_error_deg` – azimuth (with wrap-around), elevation and geodesic viewpoint errors.
* :func:`summarize` – per-class figures, their unweighted mean over classes ("class mean") and
  the mean over all samples ("instance mean", what Pix2Vox's "overall" figure is).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from backend.core.meshing import sample_surface_points, voxels_to_mesh

FSCORE_TAU = 0.01  # 1 % of the unit cube's side (object coordinates span [-0.5, 0.5])
GT_THRESHOLD = 0.5  # ground-truth grids are {0, 1}; any threshold in (0, 1] gives the same mesh
REFERENCE_MISS = 1e-3  # chance that a surface point has no reference sample within tau
VIEW_ACCURACY_DEG = 30.0  # "Acc_pi/6" of viewpoint estimation (Tulsiani & Malik 2015)


def _numpy(x) -> np.ndarray:
    """numpy view of an array or a (possibly CUDA) torch tensor, without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _batched(probs, gt) -> tuple[np.ndarray, np.ndarray, bool]:
    p, g = _numpy(probs).astype(np.float32), _numpy(gt) > 0.5
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} != ground-truth shape {g.shape}")
    single = p.ndim == 3
    if single:
        p, g = p[None], g[None]
    return p.reshape(len(p), -1), g.reshape(len(g), -1), single


# --------------------------------------------------------------------------- voxels


def voxel_iou(probs, gt, threshold: float = 0.5) -> np.ndarray | float:
    """IoU of ``probs >= threshold`` with ``gt``, per sample.

    ``probs``, ``gt``: ``(B, D, D, D)`` (returns ``(B,)``) or ``(D, D, D)`` (returns a float).
    Two empty grids agree perfectly (IoU 1).
    """
    p, g, single = _batched(probs, gt)
    pred = p >= threshold
    inter = np.logical_and(pred, g).sum(axis=1)
    union = np.logical_or(pred, g).sum(axis=1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return float(iou[0]) if single else iou


def _average_precision_1d(scores: np.ndarray, labels: np.ndarray) -> float:
    """Step-wise AP: sum over distinct thresholds of (recall gain) x (precision there)."""
    positives = int(labels.sum())
    if positives == 0:
        return math.nan  # recall is undefined without positives
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # Tied scores form one threshold: evaluate only at the last element of each run of ties.
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(labels)[last_of_run]
    precision = tp / (last_of_run + 1)
    recall_gain = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_gain * precision))


def average_precision(probs, gt) -> np.ndarray | float:
    """Average precision of voxel probabilities against the ground truth, per sample.

    Equal to ``sklearn.metrics.average_precision_score(gt.ravel(), probs.ravel())`` for each
    sample; NaN for a sample without occupied voxels.
    """
    p, g, single = _batched(probs, gt)
    ap = np.array([_average_precision_1d(pi, gi) for pi, gi in zip(p, g, strict=True)])
    return float(ap[0]) if single else ap


# --------------------------------------------------------------------------- surfaces


def fscore(pred_points, gt_points, tau: float = FSCORE_TAU, pred_reference=None,
           gt_reference=None) -> dict:
    """F-score at distance ``tau`` between two point sets ``(N, 3)`` and ``(M, 3)``.

    precision = fraction of predicted points within ``tau`` of the ground truth, recall =
    fraction of ground-truth points within ``tau`` of the prediction, F = 2PR / (P + R).
    Distances are measured to ``gt_reference`` / ``pred_reference`` when given (denser samples
    of the same surfaces), else to the other point set. An empty prediction scores 0.
    Returns ``{"fscore", "precision", "recall"}``.
    """
    pred, gt = np.asarray(pred_points, float), np.asarray(gt_points, float)
    if len(pred) == 0 or len(gt) == 0:
        return {"fscore": 0.0, "precision": 0.0, "recall": 0.0}
    pred_ref = pred if pred_reference is None else np.asarray(pred_reference, float)
    gt_ref = gt if gt_reference is None else np.asarray(gt_reference, float)
    precision = _fraction_within(pred, gt_ref, tau)
    recall = _fraction_within(gt, pred_ref, tau)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"fscore": f, "precision": precision, "recall": recall}


def _fraction_within(queries: np.ndarray, reference: np.ndarray, tau: float) -> float:
    # distance_upper_bound stops each search at tau: we only need "within or not".
    dist, _ = cKDTree(reference).query(queries, k=1, distance_upper_bound=tau * (1 + 1e-9))
    return float(np.mean(dist <= tau))


def reference_count(mesh, n: int, tau: float = FSCORE_TAU) -> int:
    """Points for a reference sample of ``mesh`` dense enough that a point ON the surface
    almost surely has a sample within ``tau``: Poisson density rho with exp(-rho pi tau²)
    <= 1e-3, i.e. rho = 6.9 / (pi tau²) per unit area (capped at 64 n)."""
    rho = -math.log(REFERENCE_MISS) / (math.pi * tau * tau)
    return int(min(max(n, math.ceil(rho * float(mesh.area))), 64 * n))


def _surface_samples(probs, threshold: float, n: int, seed: int,
                     tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(n query points, dense reference points) of a grid's surface; empty when no surface."""
    try:
        mesh = voxels_to_mesh(_numpy(probs), threshold)
    except ValueError:
        return np.zeros((0, 3)), np.zeros((0, 3))
    queries = sample_surface_points(mesh, n, seed)
    reference = sample_surface_points(mesh, reference_count(mesh, n, tau), seed + 1)
    return queries, reference


def surface_fscore(probs, gt, threshold: float, n_points: int = 8192, seed: int = 0,
                   tau: float = FSCORE_TAU) -> dict:
    """F-score@``tau`` of one prediction from its marching-cubes surface.

    Both grids are meshed alike (:func:`backend.core.meshing.voxels_to_mesh`; the prediction at
    ``threshold``, the ground truth at 0.5). ``n_points`` seeded points of each surface are
    the queries; distances go to a dense reference sample of the other surface
    (:func:`reference_count`), so the figure estimates the point-to-surface F-score: with
    point-to-point distances between two independent 8192-point samples a perfect prediction
    would score only about 0.75 at tau = 1 %. NaN when the ground truth is empty.

    The prediction's surface is the probability contour at ``threshold``, which is the mesh
    the daemon sends, so F measures what users receive. Unlike IoU it therefore depends on
    confidence: a shape predicted at 0.45 inside and 0 outside has IoU 1 but a surface
    shifted about a third of a voxel outwards (F@1% 0.57 on a sphere at threshold 0.4).
    """
    gt_q, gt_ref = _surface_samples(gt, GT_THRESHOLD, n_points, seed, tau)
    if len(gt_q) == 0:
        return {"fscore": math.nan, "precision": math.nan, "recall": math.nan}
    pred_q, pred_ref = _surface_samples(probs, threshold, n_points, seed + 2, tau)
    return fscore(pred_q, gt_q, tau, pred_reference=pred_ref, gt_reference=gt_ref)


# --------------------------------------------------------------------------- viewpoint


def view_direction(azimuth_deg, elevation_deg) -> np.ndarray:
    """Unit vectors from the object towards the camera, ``(..., 3)`` (R2N2's camera sphere)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def angle_error_deg(pred_az, pred_el, gt_az, gt_el) -> dict:
    """Viewpoint errors in degrees (arrays or scalars, broadcast).

    ``azimuth``: the shorter way round the circle (359° vs 1° is 2°), in [0, 180];
    ``elevation``: absolute difference; ``geodesic``: the angle between the two viewing
    directions, in [0, 180] (azimuth errors matter less near the poles).
    """
    pred_az, pred_el = np.asarray(pred_az, float), np.asarray(pred_el, float)
    gt_az, gt_el = np.asarray(gt_az, float), np.asarray(gt_el, float)
    azimuth = np.abs((pred_az - gt_az + 180.0) % 360.0 - 180.0)
    elevation = np.abs(pred_el - gt_el)
    cos = np.sum(view_direction(pred_az, pred_el) * view_direction(gt_az, gt_el), axis=-1)
    geodesic = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {"azimuth": azimuth, "elevation": elevation, "geodesic": geodesic}


# --------------------------------------------------------------------------- summaries

# Per-sample record keys aggregated by the median (robust to the 180° flips of symmetric
# objects); every other numeric key is averaged. NaNs (e.g. no viewpoint label) are skipped.
MEDIAN_KEYS = ("azimuth_error", "elevation_error", "view_error")
ID_KEYS = ("index", "view_index")  # numeric record fields that are not metrics


def _aggregate(records: Sequence[dict], keys: Iterable[str]) -> dict:
    out: dict = {"n": len(records)}
    for key in keys:
        values = np.array([r[key] for r in records if r.get(key) is not None], dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            out[key] = None
        else:
            out[key] = float(np.median(values) if key in MEDIAN_KEYS else np.mean(values))
    return out


def summarize(records: Sequence[dict], keys: Sequence[str] | None = None,
              class_key: str = "class") -> dict:
    """Aggregate per-sample records into per-class figures and two overall means.

    ``records``: dicts with ``record[class_key]`` and numeric metrics (``keys``; by default
    every numeric field of the first record but :data:`ID_KEYS`). Per class a metric is the
    mean over its samples (the median for :data:`MEDIAN_KEYS`). Returns::

        {"per_class": {cls: {"n": ..., key: ...}},
         "class_mean": {key: unweighted mean of the per-class figures},
         "instance_mean": {key: aggregate over all samples pooled}}

    A metric with no finite value is ``None``.
    """
    if keys is None:
        first = records[0] if records else {}
        keys = [k for k, v in first.items() if k != class_key and k not in ID_KEYS
                and isinstance(v, (int, float, np.number)) and v is not None]
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[str(record[class_key])].append(record)
    per_class = {cls: _aggregate(groups[cls], keys) for cls in sorted(groups)}
    class_mean: dict = {"n_classes": len(per_class)}
    for key in keys:
        values = [c[key] for c in per_class.values() if c[key] is not None]
        class_mean[key] = float(np.mean(values)) if values else None
    return {"per_class": per_class, "class_mean": class_mean,
            "instance_mean": _aggregate(records, keys)}
