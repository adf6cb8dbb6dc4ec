"""Drive a pool of long-lived render workers over a shape tree (``python -m synth_render render``).

:func:`run_render` lists the models, applies the shard, skips complete ones, draws every
model's views from (seed, model key) and feeds the models one at a time to ``cfg.workers``
worker subprocesses. :func:`run_jobs` is the reusable core: crash isolation (a worker that dies
is restarted and its model retried once, then reported failed), per-model timeouts (the worker
is killed, the model skipped) and worker recycling (after N models or past an RSS limit).
No bpy here: Blender runs only inside the workers.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import r2n2
from ..atomic import atomic_write_text
from ..config import RenderConfig, to_jsonable
from ..shapenet import ModelRef, select_models
from ..shards import asset_split, stable_hash
from .worker_client import WorkerDied, WorkerError, WorkerProcess, WorkerTimeout

log = logging.getLogger(__name__)

VIEWS_STREAM, STYLE_STREAM = 0, 1  # independent random streams per model


@dataclass
class PoolOptions:
    """How :func:`run_jobs` runs its workers."""

    workers: int = 2
    timeout_s: float = 120.0
    models_per_worker: int = 200
    max_rss_mb: float = 2048.0
    crash_retries: int = 1  # a model whose worker died is retried this often on a fresh worker
    env: dict = field(default_factory=dict)  # extra environment for the worker processes


@dataclass
class Outcome:
    """What happened to one job."""

    key: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    rss_mb: float = 0.0
    attempts: int = 1
    views: int = 0


# --------------------------------------------------------------------------- jobs


def model_seed(seed: int, key: str, stream: int) -> list[int]:
    """Seed material for one model's generator: the same in every run, process and shard."""
    return [int(seed), stable_hash(key), int(stream)]


def model_views(seed: int, key: str, n: int) -> list[r2n2.View]:
    """The model's views, drawn from (seed, model key) so a resumed run redraws them exactly."""
    return r2n2.sample_views(np.random.default_rng(model_seed(seed, key, VIEWS_STREAM)), n)


def build_job(ref: ModelRef, cfg: RenderConfig) -> dict:
    """The worker's job description for one model (plain JSON)."""
    views = model_views(cfg.seed, ref.key, cfg.views)
    return {
        "model_key": ref.key,
        "mesh": str(ref.mesh_path),
        "mesh_frame": ref.frame,
        "out_dir": str(r2n2.rendering_dir(cfg.out, ref.synset, ref.model_id)),
        "views": [[v.azimuth, v.elevation, v.distance_ratio] for v in views],
        "size": cfg.size,
        "style": cfg.style,
        "seed": model_seed(cfg.seed, ref.key, STYLE_STREAM),
        "asset_split": asset_split(ref.model_id),
        "samples": cfg.samples,
    }


# --------------------------------------------------------------------------- the pool


class _Slot(threading.Thread):
    """One worker slot: takes models from the shared queue until it is empty."""

    def __init__(self, index: int, tasks: queue.Queue, opts: PoolOptions,
                 record: Callable[[Outcome], None], stop: threading.Event, live: set):
        super().__init__(name=f"render-slot-{index}", daemon=True)
        self.tasks, self.opts, self.record, self.stop, self.live = tasks, opts, record, stop, live
        self.worker: WorkerProcess | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    job, attempts = self.tasks.get_nowait()
                except queue.Empty:
                    return
                self._render(job, attempts + 1)
        finally:
            self._drop_worker(close=True)

    def _render(self, job: dict, attempt: int) -> None:
        key = job["model_key"]
        try:
            worker = self._ensure_worker()
            reply = worker.run(job, self.opts.timeout_s)
        except WorkerTimeout as exc:
            self._drop_worker(close=False)
            self.record(Outcome(key, False, f"timeout: {exc}", attempts=attempt))
            return
        except WorkerDied as exc:
            self._drop_worker(close=False)
            self._crashed(job, attempt, str(exc))
            return
        except WorkerError as exc:  # could not start one
            self._drop_worker(close=False)
            self.record(Outcome(key, False, f"worker start failed: {exc}", attempts=attempt))
            return
        self.record(Outcome(key, bool(reply["ok"]), reply.get("error"), reply.get("seconds", 0.0),
                            reply.get("rss_mb", 0.0), attempt, reply.get("views", 0)))
        self._maybe_recycle()

    def _crashed(self, job: dict, attempt: int, message: str) -> None:
        key = job["model_key"]
        if attempt <= self.opts.crash_retries and not self.stop.is_set():
            log.warning("%s: %s; retrying on a fresh worker", key, message)
            self.tasks.put((job, attempt))
        else:
            self.record(Outcome(key, False, message, attempts=attempt))

    def _ensure_worker(self) -> WorkerProcess:
        if self.worker is None:
            self.worker = WorkerProcess(env=self.opts.env)
            self.live.add(self.worker)
        return self.worker

    def _maybe_recycle(self) -> None:
        w = self.worker
        if w.jobs_done >= self.opts.models_per_worker or w.rss_mb > self.opts.max_rss_mb:
            log.debug("recycling worker %d after %d models at %.0f MiB",
                      w.pid, w.jobs_done, w.rss_mb)
            self._drop_worker(close=True)

    def _drop_worker(self, close: bool) -> None:
        if self.worker is None:
            return
        self.live.discard(self.worker)
        if close:
            self.worker.close()
        else:
            self.worker.kill()
        self.worker = None


def run_jobs(jobs: list[dict], opts: PoolOptions,
             on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Render ``jobs`` on ``opts.workers`` worker processes; one :class:`Outcome` per job.

    Never raises for a bad model: crashes, hangs and errors become failed outcomes.
    """
    tasks: queue.Queue = queue.Queue()
    for job in jobs:
        tasks.put((job, 0))
    outcomes: list[Outcome] = []
    lock, stop, live = threading.Lock(), threading.Event(), set()

    def record(outcome: Outcome) -> None:
        if not outcome.ok:
            log.error("%s failed: %s", outcome.key, outcome.error)
        with lock:
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)

    slots = [_Slot(i, tasks, opts, record, stop, live)
             for i in range(max(1, min(opts.workers, len(jobs))))]
    for slot in slots:
        slot.start()
    try:
        for slot in slots:
            while slot.is_alive():
                slot.join(timeout=0.5)
    except KeyboardInterrupt:
        stop.set()
        for worker in list(live):
            worker.kill()
        raise
    return outcomes


# --------------------------------------------------------------------------- the command


def _style_available(style: str) -> bool:
    return importlib.util.find_spec(f"synth_render.render.style_{style}") is not None


def _pending(refs: list[ModelRef], cfg: RenderConfig) -> tuple[list[ModelRef], list[ModelRef]]:
    """Split into (to render, already complete); partial models, and models rendered at
    another size, are rendered again."""
    todo, done = [], []
    for ref in refs:
        render_dir = r2n2.rendering_dir(cfg.out, ref.synset, ref.model_id)
        complete = r2n2.is_complete(render_dir, cfg.views) and _image_side(render_dir) == cfg.size
        (done if complete else todo).append(ref)
    return todo, done


def _image_side(render_dir: Path) -> int | None:
    """The first view's width (header only), or None when it cannot be read."""
    try:
        with Image.open(render_dir / r2n2.read_renderings(render_dir)[0]) as img:
            return img.size[0]
    except (OSError, IndexError):
        return None


# Flags that change every image: resuming into a folder rendered with other values would mix
# two data sets (the view count is checked per model).
OUTPUT_FLAGS = ("style", "size", "seed", "samples")


def _conflicting_output(cfg: RenderConfig) -> str | None:
    """What an earlier run into ``cfg.out`` (per its summaries) did differently, if anything."""
    ours = to_jsonable(cfg)
    for path in sorted(Path(cfg.out).glob("render_summary*.json")):
        try:
            theirs = json.loads(path.read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        diff = [f"{k} {theirs[k]!r} (now {ours[k]!r})" for k in OUTPUT_FLAGS
                if k in theirs and theirs[k] != ours[k]]
        if diff:
            return f"{path.name} says this folder was rendered with " + ", ".join(diff)
    return None


def summary_path(cfg: RenderConfig) -> Path:
    """``render_summary.json``; sharded runs get one file per shard so they never collide."""
    k, n = cfg.shard
    name = "render_summary.json" if n == 1 else f"render_summary.shard-{k}-of-{n}.json"
    return Path(cfg.out) / name


def _write_summary(cfg: RenderConfig, summary: dict) -> Path:
    path = summary_path(cfg)
    atomic_write_text(path, json.dumps(summary, indent=1))
    return path


def _pool_options(cfg: RenderConfig) -> PoolOptions:
    return PoolOptions(workers=cfg.workers, timeout_s=cfg.timeout_s,
                       models_per_worker=cfg.models_per_worker, max_rss_mb=cfg.max_rss_mb)


def run_render(cfg: RenderConfig) -> int:
    """Render every (pending) model of the tree; 0 when none failed, 1 otherwise, 2 on bad input."""
    if not _style_available(cfg.style):
        log.error("render style %r is not available (no synth_render.render.style_%s module)",
                  cfg.style, cfg.style)
        return 2
    conflict = _conflicting_output(cfg)
    if conflict:
        log.error("%s: %s; render into another --out (mixing would corrupt the data set)",
                  cfg.out, conflict)
        return 2
    try:  # views are written in R2N2's camera convention: never into an older tree
        r2n2.claim_tree(cfg.out, r2n2.RENDERS)
    except r2n2.TreeConventionError as exc:
        log.error("%s", exc)
        return 2
    start = time.perf_counter()
    refs = select_models(cfg.shapes, cfg.synsets, cfg.shard, cfg.models)
    todo, done = _pending(refs, cfg)
    log.info("%d models in shard %d/%d: %d to render, %d already complete",
             len(refs), cfg.shard[0], cfg.shard[1], len(todo), len(done))

    jobs = [build_job(ref, cfg) for ref in todo]
    with tqdm(total=len(jobs), unit="model", desc=f"render {cfg.style}",
              mininterval=1.0) as bar:
        outcomes = run_jobs(jobs, _pool_options(cfg), on_done=lambda _o: bar.update(1))

    summary = _summarize(cfg, outcomes, done, time.perf_counter() - start)
    path = _write_summary(cfg, summary)
    _log_summary(summary, path)
    return 1 if summary["failed"] else 0


def _summarize(cfg: RenderConfig, outcomes: list[Outcome], done: list[ModelRef],
               seconds: float) -> dict:
    ok = [o for o in outcomes if o.ok]
    failed = sorted((o for o in outcomes if not o.ok), key=lambda o: o.key)
    views = sum(o.views for o in ok)
    return {
        "rendered": len(ok),
        "skipped_done": len(done),
        "failed": [{"model": o.key, "reason": o.error, "attempts": o.attempts} for o in failed],
        "views": views,
        "seconds": round(seconds, 3),
        "views_per_s": round(views / seconds, 2) if seconds > 0 else None,
        "max_worker_rss_mb": round(max((o.rss_mb for o in outcomes), default=0.0), 1),
        "config": to_jsonable(cfg),
        "outcomes": [asdict(o) for o in sorted(outcomes, key=lambda o: o.key)],
    }


def _log_summary(summary: dict, path: Path) -> None:
    log.info("rendered %d models (%d views, %.1f views/s), %d already done, %d failed; summary: %s",
             summary["rendered"], summary["views"], summary["views_per_s"] or 0.0,
             summary["skipped_done"], len(summary["failed"]), path)
    for item in summary["failed"]:
        log.error("failed: %s: %s", item["model"], item["reason"])
