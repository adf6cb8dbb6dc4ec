"""One process or several (torchrun): process-group facts, DDP wrapping, global means, and
CPU threads per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """Process-group facts of this process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0



def setup_distributed(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    env = os.environ
    d = Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
             int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE",
                                                        env.get("WORLD_SIZE", 1))))
    if d.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d



def wrap_distributed(net: nn.Module, device: torch.device, dd: Dist) -> nn.Module:
    """``net`` itself on one process, DistributedDataParallel around it on several."""
    if dd.world == 1:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)



def global_means(sums: dict[str, torch.Tensor], n: int, dd: Dist) -> dict[str, float]:
    """Loss means over the interval, averaged over all processes (every rank must call)."""
    keys = sorted(sums)
    values = torch.stack([sums[k] for k in keys]).double() / n  # on the training device
    if dd.world > 1:
        dist.all_reduce(values)
        values = values / dd.world
    return dict(zip(keys, values.tolist(), strict=True))



def default_threads(local_world: int) -> int:
    """CPU threads per process: the cores shared among the local processes.

    Measured on the 2-core development machine (unsupervised, batch 32): idle, 2 threads and
    one loader worker gave 280 images/s, 1 thread 170; but while a render job kept both cores
    busy, 2 threads made a step 6x slower than 1. On a shared machine pass ``--threads``."""
    return max(1, (os.cpu_count() or 1) // local_world)
