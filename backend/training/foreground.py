"""Train the foreground model: ``python -m backend train-foreground --data data/procedural``.

Objects from the data set's training shapes only (photo-style renders of ``target_train`` with
their object masks, synthetic renders of ``source_train``), re-framed at random and laid over
the ``train`` pool of background photos (:mod:`backend.data.foreground`); validation on
``source_val`` shapes at fixed draws. Making a sample (the photo style's camera model, a JPEG
round trip at camera resolution) costs several times a training step, so with ``--cache-samples
N`` the run first makes N samples once, in ``--sample-workers`` processes, into
``<out>/samples/`` (chunks written atomically: an interrupted run picks up where it stopped),
and trains on them, each drawn again with a random flip and aspect ratio. Loss: binary
cross-entropy plus soft Dice (the object is often a few % of the image). Resumable:
``--resume`` continues from ``<out>/checkpoint.pt`` (written every ``--checkpoint-every`` steps,
atomically); the model file is written at the end, and ``--ship`` copies it to
``backend/weights/foreground.pt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from backend.core.checkpoint import atomic_save, load_checkpoint_file
from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    non_negative_int,
    positive_int,
)
from backend.core.foreground import DEFAULT_FOREGROUND, load_foreground, save_foreground, to_input
from backend.data.foreground import (
    PLAIN,
    ObjectView,
    SampleMix,
    draw,
    reaspect,
    sample,
    tree_views,
)
from backend.data.splits import load_splits
from backend.models.foreground import ForegroundConfig, ForegroundNet

log = logging.getLogger(__name__)


@dataclass
class ForegroundTrainConfig:
    data: Path = arg(Path("data/procedural"), "data set root (backend dataset's layout)")
    out: Path = arg(Path("runs/foreground"), "run folder (checkpoint, log, model)")
    steps: int = arg(3000, "optimizer steps", type=positive_int)
    batch_size: int = arg(24, "images per step", type=positive_int)
    lr: float = arg(2e-3, "peak learning rate (AdamW, cosine decay)")
    weight_decay: float = arg(1e-4, "AdamW weight decay")
    photo_share: float = arg(0.6, "share of samples from photo-style renders (rest synthetic)")
    procedural: float = arg(0.0, "share of placed and empty samples laid over procedural "
                                 "textures instead of the background photos")
    distractors: float = arg(0.0, "share of samples whose placed object gets a second object "
                                  "behind it, cut off by a border, as background")
    init: Path | None = arg(None, "start from this foreground model file (a fine-tune; its "
                                  "widths are used)")
    widths: tuple[int, ...] = arg(ForegroundConfig().widths,
                                  "the network's channels at 1/2, 1/4 ... of the input size")
    cache_samples: int = arg(0, "make this many samples once and train on them "
                                "(0: a fresh sample every time)", type=non_negative_int)
    sample_workers: int = arg(2, "processes that make the cached samples", type=positive_int)
    val_images: int = arg(192, "validation images (source_val shapes, fixed draws)",
                          type=positive_int)
    val_every: int = arg(250, "steps between validations", type=positive_int)
    checkpoint_every: int = arg(100, "steps between checkpoints", type=positive_int)
    seed: int = arg(0, "seed of the sample draws and the initialization")
    threads: int = arg(2, "torch CPU threads", type=positive_int)
    resume: bool = arg(True, "continue from <out>/checkpoint.pt when it exists")
    ship: bool = arg(False, "copy the final model to backend/weights/foreground.pt")


def _views(cfg: ForegroundTrainConfig) -> tuple[list[ObjectView], list[ObjectView],
                                                list[ObjectView]]:
    splits = load_splits(cfg.data / "splits.json")
    photo = tree_views(cfg.data / "renders_photo", splits.target_train, masks=True)
    synthetic = tree_views(cfg.data / "renders_synthetic", splits.source_train, masks=False)
    val = tree_views(cfg.data / "renders_synthetic", splits.source_val, masks=False)
    if not photo or not synthetic or not val:
        raise SystemExit(f"{cfg.data}: need photo-style renders with object masks of "
                         f"target_train ({len(photo)} views), synthetic renders of source_train "
                         f"({len(synthetic)}) and source_val ({len(val)}); build the data set "
                         "with `python -m backend dataset` first")
    return photo, synthetic, val


def _mix(cfg: ForegroundTrainConfig) -> SampleMix:
    return SampleMix(procedural=cfg.procedural, distractors=cfg.distractors)


def _batch(photo: list[ObjectView], synthetic: list[ObjectView], n: int, share: float,
           rng: np.random.Generator, split: str = "train", mix: SampleMix = PLAIN
           ) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [draw(photo, synthetic, share, rng, split=split, mix=mix) for _ in range(n)]
    return (to_input(np.stack([p[0] for p in pairs])),
            torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None])


CHUNK = 1000  # cached samples per file


def _cache_meta(cfg: ForegroundTrainConfig, photo: list, synthetic: list) -> dict:
    meta = {"seed": cfg.seed, "photo_share": cfg.photo_share,
            "size": ForegroundConfig().image_size,
            "views": {"photo": len(photo), "synthetic": len(synthetic)}}
    for key, share in asdict(_mix(cfg)).items():
        if share:  # absent when 0, so earlier caches stay valid
            meta[key] = share
    return meta


def _chunk_file(root: Path, k: int, n: int) -> Path:
    """Chunk ``k`` of ``n`` samples (the size in the name: a run asking for another count
    never takes a chunk of the wrong length)."""
    return root / f"{k:04d}-{n}.npz"


def _write_chunk(job: tuple) -> int:
    """Make cached chunk ``k`` (``n`` samples) and write it atomically; returns its size."""
    root, k, n, photo, synthetic, meta = job
    mix = SampleMix(**{name: meta[name] for name in asdict(PLAIN) if name in meta})
    pairs = [sample(photo, synthetic, i, meta["seed"], meta["photo_share"], meta["size"], mix=mix)
             for i in range(k * CHUNK, k * CHUNK + n)]
    tmp = root / f".{k:04d}.{os.getpid()}.npz"
    np.savez(tmp, images=np.stack([p[0] for p in pairs]),
             masks=np.stack([np.rint(p[1] * 255).astype(np.uint8) for p in pairs]))
    tmp.replace(_chunk_file(root, k, n))
    return n


def sample_cache(cfg: ForegroundTrainConfig, photo: list[ObjectView],
                 synthetic: list[ObjectView]) -> tuple[np.ndarray, np.ndarray]:
    """``cfg.cache_samples`` samples as ``(N, S, S, 3)`` images and ``(N, S, S)`` uint8 masks,
    made once into ``<out>/samples/`` (resumable) and loaded."""
    root = cfg.out / "samples"
    root.mkdir(parents=True, exist_ok=True)
    meta = _cache_meta(cfg, photo, synthetic)
    meta_file = root / "meta.json"
    if meta_file.is_file() and json.loads(meta_file.read_text()) != meta:
        raise SystemExit(f"{root} holds samples of another data set or seed "
                         f"({meta_file.read_text().strip()}); use another --out")
    meta_file.write_text(json.dumps(meta))
    sizes = [min(CHUNK, cfg.cache_samples - k) for k in range(0, cfg.cache_samples, CHUNK)]
    todo = [(root, k, n, photo, synthetic, meta) for k, n in enumerate(sizes)
            if not _chunk_file(root, k, n).is_file()]
    with tqdm(total=cfg.cache_samples, initial=cfg.cache_samples - sum(j[2] for j in todo),
              desc="foreground samples", unit="image") as bar:
        if cfg.sample_workers == 1:
            for job in todo:
                bar.update(_write_chunk(job))
        elif todo:
            with ProcessPoolExecutor(cfg.sample_workers) as pool:
                for n in pool.map(_write_chunk, todo):
                    bar.update(n)
    chunks = [np.load(_chunk_file(root, k, n)) for k, n in enumerate(sizes)]
    return (np.concatenate([c["images"] for c in chunks]),
            np.concatenate([c["masks"] for c in chunks]))


def _cached_batch(cache: tuple[np.ndarray, np.ndarray], n: int, rng: np.random.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` cached samples drawn again, each flipped and re-shaped at random."""
    images, masks = [], []
    for i in rng.integers(len(cache[0]), size=n):
        img, mask = cache[0][i], cache[1][i].astype(np.float32) / 255.0
        if rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        if rng.random() < 0.5:
            img, mask = reaspect(img, mask, rng)
        images.append(img)
        masks.append(mask)
    return to_input(np.stack(images)), torch.from_numpy(np.stack(masks))[:, None]


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE plus soft Dice per image (an empty image's Dice term is 0 when it predicts none)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    union = p.sum((1, 2, 3)) + target.sum((1, 2, 3))
    dice = 1.0 - (2 * inter + 1.0) / (union + 1.0)
    return bce + dice.mean()


def mask_iou(prob: np.ndarray, target: np.ndarray) -> float:
    """IoU of ``prob >= 0.5`` and ``target >= 0.5`` (1.0 when both are empty)."""
    a, b = prob >= 0.5, target >= 0.5
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def validate(net: ForegroundNet, images: torch.Tensor, masks: torch.Tensor) -> float:
    net.eval()
    with torch.inference_mode():
        probs = torch.cat([torch.sigmoid(net(images[i:i + 32]))
                           for i in range(0, len(images), 32)])
    net.train()
    return float(np.mean([mask_iou(p[0].numpy(), m[0].numpy())
                          for p, m in zip(probs, masks, strict=True)]))


def train_foreground(cfg: ForegroundTrainConfig) -> Path:
    """Train (or resume) and write ``<out>/foreground.pt``; returns its path."""
    torch.set_num_threads(cfg.threads)
    photo, synthetic, val_views = _views(cfg)
    torch.manual_seed(cfg.seed)
    cache = sample_cache(cfg, photo, synthetic) if cfg.cache_samples else None
    if cfg.init is not None:  # a fine-tune: the file's widths and weights
        net = load_foreground(cfg.init).net.train()
        log.info("starting from %s", cfg.init)
    else:
        net = ForegroundNet(ForegroundConfig(widths=tuple(cfg.widths)))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    rng = np.random.default_rng([cfg.seed, 1])
    step, history = 0, []
    ckpt = cfg.out / "checkpoint.pt"
    if cfg.resume and ckpt.is_file():
        state = load_checkpoint_file(ckpt)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = json.loads(state["rng"])
        step, history = int(state["step"]), list(state["history"])
        log.info("resumed %s at step %d", ckpt, step)
    val = _batch([], val_views, cfg.val_images, 0.0, np.random.default_rng([cfg.seed, 2]))
    cfg.out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=cfg.steps, initial=step, desc="foreground", unit="step")
    net.train()
    t0 = time.perf_counter()
    mix = _mix(cfg)
    while step < cfg.steps:
        if cache is None:
            images, masks = _batch(photo, synthetic, cfg.batch_size, cfg.photo_share, rng,
                                   mix=mix)
        else:
            images, masks = _cached_batch(cache, cfg.batch_size, rng)
        loss = loss_fn(net(images), masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.val_every == 0 or step == cfg.steps:
            history.append({"step": step, "loss": loss.item(), "val_iou": validate(net, *val),
                            "seconds": round(time.perf_counter() - t0, 1)})
            log.info("step %d: %s", step, history[-1])
            with open(cfg.out / "log.jsonl", "a") as f:
                f.write(json.dumps(history[-1]) + "\n")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            atomic_save({"net": net.state_dict(), "opt": opt.state_dict(),
                         "sched": sched.state_dict(), "step": step, "history": history,
                         "rng": json.dumps(rng.bit_generator.state)}, ckpt)
    bar.close()
    config = {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
              for k, v in asdict(cfg).items()}
    info = {"step": step, "config": config, "history": history,
            "train_views": {"photo": len(photo), "synthetic": len(synthetic)}}
    out = cfg.out / "foreground.pt"
    save_foreground(out, net, info)
    if cfg.ship:
        shutil.copyfile(out, DEFAULT_FOREGROUND)
        log.info("shipped %s -> %s", out, DEFAULT_FOREGROUND)
    return out


def add_train_foreground_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train-foreground", help="train the foreground (framing) model",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_arguments(p, ForegroundTrainConfig)
    p.set_defaults(func=lambda a: print(train_foreground(
        dataclass_from_args(ForegroundTrainConfig, a))) or 0)
    return p
