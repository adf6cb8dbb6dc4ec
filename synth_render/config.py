"""Typed configuration of every ``python -m synth_render`` command (one dataclass each)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ShapesConfig:
    out: Path
    synsets: list[str]
    per_class: int = 10
    seed: int = 0


@dataclass
class RenderConfig:
    shapes: Path
    out: Path
    style: str = "synthetic"  # "synthetic" (source domain) or "photo" (stand-in target domain)
    views: int = 24
    size: int = 128
    workers: int = 2
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    synsets: list[str] = field(default_factory=list)  # empty: every class in the tree
    timeout_s: float = 120.0  # per model; a hung worker is killed and the model skipped
    models_per_worker: int = 200  # recycle a worker after this many models...
    max_rss_mb: float = 2048.0  # ...or when its resident memory passes this
    samples: int = 16  # Cycles samples for the photo style
    models: Path | None = None  # a file of "<synset>/<model_id>" lines: render only those


@dataclass
class VoxelizeConfig:
    shapes: Path
    out: Path
    res: int = 32
    synsets: list[str] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)
    workers: int = 1
    models: Path | None = None  # a file of "<synset>/<model_id>" lines: voxelize only those
    fill: str = "carve"  # binvox's carving ("flood": the 6-connected fill of older versions)
    placement: str = "centred"  # R2N2's ShapeNetVox32; "corner": binvox's own (ShapeNet v2)


def to_jsonable(cfg) -> dict:
    """A config as a JSON-friendly dict (paths as strings), for saving beside outputs."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
