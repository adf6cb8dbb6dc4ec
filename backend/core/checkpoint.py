"""Checkpoint files (their one owner): the shipped model file and the training checkpoint.

Both are written atomically (temp file in the same folder, fsync, ``os.replace``) and hold only
plain containers, tensors, numbers and strings, so they load with ``torch.load(...,
weights_only=True)``: nothing in a checkpoint runs as pickle. State dicts are saved unwrapped
(no DataParallel/DDP ``module.`` prefixes) and load on any device via ``map_location``.

- ``model.pt`` (what ships, small): ``{"format": MODEL_FORMAT, "version", "config",
  "state_dict", "info"}`` -- the :class:`~backend.models.Reconstructor` weights and
  :class:`ModelInfo` minus its config.
- ``checkpoint.pt`` (training): every module including the training-only ones, optimizers,
  schedulers, AMP scaler, RNG states, step, configs; see :mod:`backend.training.state`.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backend.models import ModelConfig, Reconstructor
from synth_render.taxonomy import ALL_SYNSETS

log = logging.getLogger(__name__)

MODEL_FORMAT = "unsup3d-reconstructor"
MODEL_VERSION = 1
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.pt"


@dataclass
class ModelInfo:
    """What a user of a trained model needs besides its weights."""

    threshold: float = 0.4  # voxel occupancy threshold, chosen on source_val
    image_size: int = 64
    classes: list[str] = field(default_factory=lambda: list(ALL_SYNSETS))
    mode: str = "unknown"  # the training mode (unsupervised, source-only, oracle, ...)
    config: dict = field(default_factory=dict)  # ModelConfig as a dict
    metrics: dict = field(default_factory=dict)  # validation figures at ``step``
    step: int = 0
    # Trained on framed images (backend.core.preprocess framing: the object at the median framing),
    # so evaluation frames by default too; older files lack the key: False.
    framing: bool = False
    # How it was made: {"recipe": name or None, "config": TrainConfig.to_dict()}; files written
    # before recipes lack the key: {}.
    training: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ writing


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync it, then rename over ``path``, so a
    crash at any moment leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unwrap(module: nn.Module) -> nn.Module:
    """The bare module inside DataParallel / DistributedDataParallel wrappers."""
    while isinstance(module, nn.parallel.DataParallel | nn.parallel.DistributedDataParallel):
        module = module.module
    return module


def clean_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the unwrapped module, on CPU, without any ``module.`` prefix."""
    state = unwrap(module).state_dict()
    return {_strip_prefix(k): v.detach().cpu() for k, v in state.items()}


def _strip_prefix(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def model_payload(model: Reconstructor, info: ModelInfo) -> dict:
    """The ``model.pt`` dict for a Reconstructor and its info."""
    model = unwrap(model)
    meta = {k: v for k, v in info.__dict__.items() if k != "config"}
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "config": model.cfg.to_dict(),
            "state_dict": clean_state_dict(model), "info": _plain(meta)}


def save_model(path: str | os.PathLike, model: Reconstructor, info: ModelInfo) -> None:
    """Write the shipped model file atomically."""
    atomic_save(model_payload(model, info), path)


def _plain(value):
    """Numbers, strings, lists and dicts only (numpy scalars and tuples converted)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


# ------------------------------------------------------------------------------ reading


def load_checkpoint_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """``torch.load`` with ``weights_only=True`` (no arbitrary pickle) onto ``device``.

    A file that is not a readable checkpoint (truncated, another format, or holding objects
    that weights-only loading refuses) raises ``ValueError`` naming the path."""
    try:
        data = torch.load(Path(path), map_location=device, weights_only=True)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # pickle, zip and torch errors have no common base class
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(data).__name__})")
    return data


def load_model(path: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> tuple[Reconstructor, ModelInfo]:
    """Load a Reconstructor for inference (eval mode) and its :class:`ModelInfo`.

    ``path``: a ``model.pt`` or a training ``checkpoint.pt`` (its Reconstructor is taken);
    ``None`` means the shipped default weights ``backend/weights/default.pt``.
    """
    if path is None:
        path = DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(
                f"no shipped default weights at {path}. Train a model "
                "(python -m backend train --mode unsupervised) and pass its runs/<name>/model.pt "
                "with --checkpoint, or copy that file to this path.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    data = load_checkpoint_file(path, "cpu")
    if data.get("format") != MODEL_FORMAT and "modules" in data:
        data = data["model"]  # a training checkpoint embeds the model.pt payload
    if data.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a {MODEL_FORMAT} file (format={data.get('format')!r})")
    if data.get("version") != MODEL_VERSION:
        raise ValueError(f"{path}: model file version {data.get('version')}, "
                         f"expected {MODEL_VERSION}")
    cfg = ModelConfig.from_dict(data["config"])
    model = Reconstructor(cfg)
    model.load_state_dict({_strip_prefix(k): v for k, v in data["state_dict"].items()})
    model.to(device).eval()
    info = ModelInfo(**{**data["info"], "config": dict(data["config"])})
    info.threshold = float(info.threshold)
    return model, info


# ------------------------------------------------------------------------------ RNG state


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states as ``weights_only``-loadable values."""
    np_state = np.random.get_state()
    state = {
        "python": _plain(random.getstate()),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # Saved on a machine with more GPUs: restore as many devices as this one has.
        for device, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)
