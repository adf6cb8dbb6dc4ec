"""Render throughput: long-lived worker pool vs one fresh Python+bpy process per model.

    python benchmarks/bench_render.py                 # pool vs per-process baseline
    python benchmarks/bench_render.py --memory 500    # + RSS of one worker over 500 models
    python benchmarks/bench_render.py --style photo   # + seconds per view of the photo style

Both sides run the same worker code (``synth_render.render.worker``) with the same number of
workers; the baseline just recycles every worker after one model (``models_per_worker=1``),
which is what BlenderProc and most ShapeNet render scripts do (a Blender launch per model).
Meshes are generated here with trimesh (seeded, ~10k triangles, MTL colours, v2 layout).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh
from machine import describe

from synth_render.render.pool import PoolOptions, model_views, run_jobs
from synth_render.render.worker_client import WorkerProcess
from synth_render.shapenet import Part, find_models, write_v2_model

SYNSET = "03001627"


def _random_part(rng: np.random.Generator) -> trimesh.Trimesh:
    kind = rng.integers(4)
    if kind == 0:
        mesh = trimesh.creation.icosphere(subdivisions=4, radius=rng.uniform(0.2, 0.5))
    elif kind == 1:
        mesh = trimesh.creation.capsule(height=rng.uniform(0.3, 1.0), radius=rng.uniform(0.05, 0.2),
                                        count=[48, 48])
    elif kind == 2:
        mesh = trimesh.creation.cylinder(radius=rng.uniform(0.05, 0.3),
                                         height=rng.uniform(0.2, 1.2), sections=96)
    else:
        mesh = trimesh.creation.box(extents=rng.uniform(0.1, 1.0, size=3))
        mesh = mesh.subdivide().subdivide().subdivide()
    rot = trimesh.transformations.random_rotation_matrix(rng.random(3))
    mesh.apply_transform(rot)
    mesh.apply_translation(rng.uniform(-0.6, 0.6, size=3))
    return mesh


def make_meshes(root: Path, n: int = 12, seed: int = 0, faces: int = 10_000) -> list:
    """``n`` seeded multi-part meshes of about ``faces`` triangles in the v2 layout."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        parts, total = [], 0
        while total < faces:
            mesh = _random_part(rng)
            colour = tuple(rng.uniform(0.2, 0.9, size=3))
            parts.append(Part(mesh.vertices, mesh.faces, f"mat{len(parts)}", colour))
            total += len(mesh.faces)
        write_v2_model(root, SYNSET, f"bench{i:03d}", parts)
    return find_models(root)


def _jobs(refs, out: Path, views: int, size: int, style: str = "synthetic",
          copies: int = 1) -> list[dict]:
    jobs = []
    for c in range(copies):
        for ref in refs:
            key = f"{ref.key}-{c}" if copies > 1 else ref.key
            vs = model_views(0, key, views)
            jobs.append({
                "model_key": key, "mesh": str(ref.mesh_path),
                "out_dir": str(out / key.replace("/", "_") / "rendering"),
                "views": [[v.azimuth, v.elevation, v.distance_ratio] for v in vs],
                "size": size, "style": style, "seed": [0, c, 1], "asset_split": "train",
                "samples": 16,
            })
    return jobs


def _timed_run(jobs, opts: PoolOptions) -> tuple[float, int]:
    start = time.perf_counter()
    outcomes = run_jobs(jobs, opts)
    seconds = time.perf_counter() - start
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} models failed, e.g. {failed[0].key}: {failed[0].error}")
    return seconds, sum(o.views for o in outcomes)


def bench_throughput(refs, tmp: Path, args) -> None:
    """(a) long-lived pool vs (b) a fresh process per model, same code and worker count."""
    jobs = _jobs(refs, tmp / "pool", args.views, args.size)
    pool_s, n_views = _timed_run(jobs, PoolOptions(workers=args.workers))
    jobs = _jobs(refs, tmp / "fresh", args.views, args.size)
    fresh_s, _ = _timed_run(jobs, PoolOptions(workers=args.workers, models_per_worker=1))
    pool_vps, fresh_vps = n_views / pool_s, n_views / fresh_s
    print(f"{len(refs)} models x {args.views} views at {args.size} px, synthetic style, "
          f"{args.workers} workers")
    print(f"  (a) long-lived worker pool : {pool_s:6.2f} s  {pool_vps:6.1f} views/s")
    print(f"  (b) process per model      : {fresh_s:6.2f} s  {fresh_vps:6.1f} views/s")
    print(f"  speed-up (a)/(b)           : {pool_vps / fresh_vps:6.2f}x  (target >= 4x; "
          f"(a) target >= 40 views/s)")


def bench_overhead(refs, tmp: Path, args) -> None:
    """Where a fresh process's cost goes: start-up (Python + bpy), first model, later ones."""
    jobs = _jobs(refs[:3], tmp / "overhead", args.views, args.size)
    start = time.perf_counter()
    worker = WorkerProcess()
    ready = time.perf_counter() - start
    seconds = [worker.run(job, timeout_s=120)["seconds"] for job in jobs]
    start = time.perf_counter()
    worker.close()
    close = time.perf_counter() - start
    print(f"  one fresh worker: start-up {ready:.2f} s, first model {seconds[0]:.2f} s, "
          f"later models {np.mean(seconds[1:]):.2f} s, exit {close:.2f} s")


def bench_memory(refs, tmp: Path, n_models: int) -> None:
    """One worker, ``n_models`` imports + 1 view at 32 px each: RSS must stay flat."""
    jobs = _jobs(refs, tmp / "memory", 1, 32, copies=-(-n_models // len(refs)))[:n_models]
    worker = WorkerProcess()
    marks, start = {}, time.perf_counter()
    try:
        for i, job in enumerate(jobs, start=1):
            reply = worker.run(job, timeout_s=120)
            if not reply["ok"]:
                raise SystemExit(f"memory run failed on {job['model_key']}: {reply['error']}")
            if i in (50, n_models):
                marks[i] = reply["rss_mb"]
    finally:
        worker.close()
    seconds = time.perf_counter() - start
    first, last = marks.get(50, float("nan")), marks[n_models]
    print(f"memory: one worker, {n_models} models (import + 1 view at 32 px), "
          f"{seconds / n_models * 1000:.0f} ms a model")
    print(f"  RSS after 50: {first:.1f} MiB, after {n_models}: {last:.1f} MiB "
          f"({(last - first) / first * 100:+.1f} %, target within 10 %)")


def bench_photo(refs, tmp: Path, args) -> None:
    """Seconds per view of the photo style on one worker (one Cycles thread: one core).

    Reports the steady state (models after the first, as a long render run sees them) and the
    wall time including the worker's start-up and first-model set-up.
    """
    jobs = _jobs(refs[:4], tmp / "photo", args.photo_views, args.size, style="photo")
    worker = WorkerProcess()
    start = time.perf_counter()
    try:
        replies = [worker.run(job, timeout_s=600) for job in jobs]
    finally:
        worker.close()
    wall = time.perf_counter() - start
    if not all(r["ok"] for r in replies):
        raise SystemExit(f"photo run failed: {[r['error'] for r in replies if not r['ok']]}")
    steady = sum(r["seconds"] for r in replies[1:]) / sum(r["views"] for r in replies[1:])
    n_views = sum(r["views"] for r in replies)
    print(f"photo: {len(jobs)} models x {args.photo_views} views at {args.size} px, one worker: "
          f"{steady:.2f} s a view steady state (target <= 1 s on one core), "
          f"{wall / n_views:.2f} s a view including the first model")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", type=int, default=12)
    p.add_argument("--views", type=int, default=24)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory", type=int, default=0, metavar="N",
                   help="also run the memory check over N models (e.g. 500)")
    p.add_argument("--style", choices=("synthetic", "photo"), default="synthetic",
                   help="photo: also time the photo style on one worker")
    p.add_argument("--photo-views", type=int, default=8)
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()

    print(f"CPU: {describe()}")
    with tempfile.TemporaryDirectory(prefix="bench_render_") as tmp_str:
        tmp = Path(tmp_str)
        refs = make_meshes(tmp / "shapes", n=args.models)
        faces = [len(trimesh.load(r.mesh_path, force="mesh").faces) for r in refs]
        print(f"meshes: {len(refs)}, {min(faces)}-{max(faces)} triangles")
        if not args.skip_throughput:
            bench_throughput(refs, tmp, args)
            bench_overhead(refs, tmp, args)
        if args.memory:
            bench_memory(refs, tmp, args.memory)
        if args.style == "photo":
            bench_photo(refs, tmp, args)


if __name__ == "__main__":
    main()
