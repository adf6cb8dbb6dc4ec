"""Size and speed of the networks: parameters, training images/s, inference latency.

    python benchmarks/bench_train.py [--batch 32] [--steps 5] [--threads 0] [--device auto]
        [--model-enc-channels 32 64 128 256 384 --model-vox-channels 128 64 32 ...]

Training steps run the real :class:`~backend.training.losses.TrainingNet` forward/backward and Adam
steps on random tensors (no data loading), per mode, so they measure the network alone. Inference is
``Reconstructor.predict`` at batch 1 and 32. The ``--model-*`` flags are ``train``'s (the
architecture; default: ``ModelConfig``'s). Figures depend on the machine's load: run it on an
idle machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from backend.core.config import add_dataclass_arguments, dataclass_from_args
from backend.core.device import resolve_device
from backend.models import ModelConfig, Reconstructor
from backend.training.cli import DERIVED_MODEL_FLAGS
from backend.training.config import MODES, TrainConfig
from backend.training.losses import TrainingNet
from backend.training.optim import build_optimizers

log = logging.getLogger("bench_train")


def fake_batch(n: int, cfg: ModelConfig, device, pairs: bool) -> dict:
    batch = {"image": torch.rand(n, 3, cfg.image_size, cfg.image_size, device=device) * 2 - 1}
    if pairs:
        r = cfg.voxel_size
        batch["voxels"] = (torch.rand(n, r, r, r, device=device) < 0.15).float()
        batch["class_index"] = torch.randint(0, cfg.num_classes, (n,), device=device)
        batch["view"] = torch.stack([torch.rand(n) * 360, 25 + torch.rand(n) * 5], 1).to(device)
    return batch


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_training(mode: str, model: ModelConfig, batch: int, steps: int, device) -> dict:
    """Seconds per step and images/s (both domains counted) for one mode."""
    cfg = TrainConfig(mode=mode, batch_size=batch, model=model)
    net = TrainingNet(cfg).to(device)
    opts = build_optimizers(net, cfg)
    source = fake_batch(batch, cfg.model, device, pairs=True)
    kind = MODES[mode]["target"]  # None, "images" or "pairs"
    target = None if kind is None else fake_batch(batch, cfg.model, device, kind == "pairs")
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        _sync(device)
        t0 = time.perf_counter()
        loss, _ = net(source, target, 0.1)
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts.values():
            o.step()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    per_step = statistics.median(times)
    n_images = batch * (1 if target is None else 2)
    return {"s_per_step": per_step, "images_per_s": n_images / per_step,
            "steps_per_hour": 3600 / per_step}


def bench_inference(config: ModelConfig, batch: int, repeats: int, device) -> float:
    """Median seconds of one ``predict`` call on a batch."""
    model = Reconstructor(config).to(device).eval()
    size = config.image_size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    model.predict(images)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        model.predict(images)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parameter_counts(model: ModelConfig) -> dict[str, int]:
    net = TrainingNet(TrainConfig(mode="unsupervised", model=model))
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in net.nets.items()}
    recon = net.nets["reconstructor"]
    counts.update({f"reconstructor.{k}": sum(p.numel() for p in m.parameters())
                   for k, m in recon.named_children()})
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--modes", nargs="+",
                        default=["source-only", "no-reconstruction", "unsupervised", "oracle"])
    add_dataclass_arguments(parser, ModelConfig, prefix="model_", skip=DERIVED_MODEL_FLAGS)
    args = parser.parse_args()
    model = dataclass_from_args(ModelConfig, args, prefix="model_")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, 0)
    log.info("device %s, torch %s, %d threads", device, torch.__version__,
             torch.get_num_threads())
    for name, n in parameter_counts(model).items():
        log.info("parameters %-32s %10d", name, n)
    for mode in args.modes:
        r = bench_training(mode, model, args.batch, args.steps, device)
        log.info("train %-14s batch %d/domain: %.3f s/step, %.1f images/s, %.0f steps/hour",
                 mode, args.batch, r["s_per_step"], r["images_per_s"], r["steps_per_hour"])
    for batch in (1, 32):
        t = bench_inference(model, batch, 10 if batch == 1 else 5, device)
        log.info("inference batch %2d: %.1f ms (%.1f ms/image)", batch, 1000 * t,
                 1000 * t / batch)


if __name__ == "__main__":
    main()
