"""The shipped foreground model as a :data:`backend.core.preprocess.Segmenter`, and its file format.

``backend/weights/foreground.pt`` (a few MB, loaded weights-only: no pickle) holds
``{"format": FOREGROUND_FORMAT, "version": 1, "config": {...}, "state_dict": {...},
"info": {...}}``; ``info`` records how it was trained and what it measured. The daemon, the
CLI and evaluation load it with :func:`load_segmenter`; preprocessing stays torch-free and
only sees the callable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from backend.core.checkpoint import atomic_save, load_checkpoint_file
from backend.core.preprocess import MASK_SIZE
from backend.models.foreground import ForegroundConfig, ForegroundNet

log = logging.getLogger(__name__)

FOREGROUND_FORMAT = "unsup3d-foreground"
FOREGROUND_VERSION = 1
DEFAULT_FOREGROUND = Path(__file__).resolve().parents[1] / "weights" / "foreground.pt"


def to_input(rgb: np.ndarray) -> torch.Tensor:
    """``(B, S, S, 3)`` or ``(S, S, 3)`` uint8 -> ``(B, 3, S, S)`` float in [-1, 1]."""
    x = torch.from_numpy(np.array(rgb))  # a copy: the caller's array may be read-only
    if x.ndim == 3:
        x = x[None]
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class ForegroundSegmenter:
    """``(MASK_SIZE, MASK_SIZE, 3) uint8 -> (MASK_SIZE, MASK_SIZE) float32`` probabilities."""

    def __init__(self, net: ForegroundNet, info: dict | None = None, path: str = ""):
        self.net = net.eval()
        self.info = info or {}
        self.path = path

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape != (MASK_SIZE, MASK_SIZE, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected ({MASK_SIZE}, {MASK_SIZE}, 3) uint8, got "
                             f"{rgb.shape} {rgb.dtype}")
        with torch.inference_mode():
            return torch.sigmoid(self.net(to_input(rgb)))[0, 0].numpy()


def save_foreground(path: str | os.PathLike, net: ForegroundNet, info: dict) -> None:
    cfg = {"widths": list(net.cfg.widths), "image_size": net.cfg.image_size}
    atomic_save({"format": FOREGROUND_FORMAT, "version": FOREGROUND_VERSION, "config": cfg,
                 "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                 "info": info}, path)


def load_foreground(path: str | os.PathLike | None = None) -> ForegroundSegmenter:
    """The foreground model at ``path`` (None: the shipped one); raises FileNotFoundError or
    ValueError with the path for a missing or foreign file."""
    path = Path(path) if path is not None else DEFAULT_FOREGROUND
    if not path.is_file():
        raise FileNotFoundError(f"no foreground model at {path}")
    data = load_checkpoint_file(path)
    if data.get("format") != FOREGROUND_FORMAT or data.get("version") != FOREGROUND_VERSION:
        raise ValueError(f"{path} is not a {FOREGROUND_FORMAT} v{FOREGROUND_VERSION} file")
    cfg = ForegroundConfig(tuple(data["config"]["widths"]), int(data["config"]["image_size"]))
    net = ForegroundNet(cfg)
    net.load_state_dict(data["state_dict"])
    return ForegroundSegmenter(net, dict(data.get("info", {})), str(path))


def load_segmenter(choice: str | None = "shipped") -> ForegroundSegmenter | None:
    """A command's ``--foreground`` choice: ``"shipped"`` (``backend/weights/foreground.pt``),
    ``"none"`` (no model: opaque photos are used whole) or a path.

    Serving and the CLI default to ``"none"`` for now: with today's shipped models, mask framing
    costs more on photos framed like the renders than it gains on others (docs/framing.md);
    evaluation with ``--autocrop`` and training with ``--framing`` default to the shipped
    model."""
    if choice in (None, "none"):
        return None
    if choice == "shipped" and not DEFAULT_FOREGROUND.is_file():
        # A checkout without the shipped file (it is built by train-foreground --ship):
        # framing then says "no foreground model" for opaque photos, as with "none".
        log.warning("no shipped foreground model at %s: opaque photos are used whole",
                    DEFAULT_FOREGROUND)
        return None
    return load_foreground(None if choice == "shipped" else choice)


def cached_squares(files: list[Path], segmenter: ForegroundSegmenter, cache: Path
                   ) -> dict[str, list[float]]:
    """Each file's framing square as the daemon would find it with ``segmenter`` (training
    frames target photos by them), computed once and kept in ``cache`` (JSON keyed by path,
    tagged with the model file so another model recomputes them)."""
    import json

    from tqdm import tqdm

    from backend.core.preprocess import ImageError, framing_of

    tag = f"{segmenter.path}:{segmenter.info.get('step')}"
    have: dict = {}
    if cache.is_file():
        data = json.loads(cache.read_text())
        have = data.get("squares", {}) if data.get("model") == tag else {}
    todo = [f for f in files if str(f) not in have]
    for path in tqdm(todo, desc="framing target images", unit="image", disable=not todo):
        try:
            framing = framing_of(path, segmenter=segmenter)
        except ImageError:
            continue  # the data set skips it too
        if framing.source == "mask":
            have[str(path)] = list(framing.box)
    if todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"model": tag, "squares": have}))
    return have
