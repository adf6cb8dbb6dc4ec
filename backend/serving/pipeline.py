"""The reconstruction pipeline behind the daemon and ``reconstruct --local``: decoded request ->
preprocessed images -> one batched forward pass -> meshes -> :class:`ReconstructResult`.

The daemon splits it into :meth:`Pipeline.prepare` (per request), :meth:`Pipeline.infer` (per
batch of requests) and :meth:`Pipeline.finish` (per request) so dynamic batching can put many
requests into one forward pass; :meth:`Pipeline.run` chains the three for one request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.core.checkpoint import ModelInfo, load_model
from backend.core.device import resolve_device
from backend.core.foreground import load_segmenter
from backend.core.meshing import export_mesh, fuse_probabilities, voxels_to_mesh
from backend.core.preprocess import Framing, ImageError, Segmenter, preprocess_framed
from backend.models import Reconstructor
from backend.protocol.messages import (
    ProtocolError,
    ReconstructOutput,
    ReconstructResult,
    Request,
    ViewPrediction,
)
from synth_render.taxonomy import SYNSET_TO_NAME

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Model outputs for a batch, as numpy arrays."""

    probs: np.ndarray  # (B, D, D, D) float32
    class_index: np.ndarray  # (B,)
    azimuth: np.ndarray  # (B,) degrees
    elevation: np.ndarray  # (B,) degrees

    def rows(self, start: int, stop: int) -> Prediction:
        """The predictions of images ``start:stop``."""
        return Prediction(self.probs[start:stop], self.class_index[start:stop],
                          self.azimuth[start:stop], self.elevation[start:stop])


class Pipeline:
    """A loaded model plus everything around it (thread-compatible: one caller at a time)."""

    def __init__(self, model: Reconstructor, info: ModelInfo, device: str = "cpu",
                 checkpoint: str | None = None, segmenter: Segmenter | None = None):
        self.model = model.eval()
        self.info = info
        self.device = torch.device(device)
        self.checkpoint = checkpoint
        # The foreground model that frames opaque photos (None: they are used whole).
        self.segmenter = segmenter

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str = "cpu",
             threads: int = 1, foreground: str | None = "none") -> Pipeline:
        """Load a checkpoint (``None``: the shipped default weights) and the foreground model
        that frames opaque photos (``"shipped"``, ``"none"``: none, the default, or a
        path; it runs on the CPU, a few ms an image; see :func:`load_segmenter`).

        ``threads``: torch's CPU threads for this process (0: torch's default). One is the
        default because the model is small: on a busy 2-core machine two OpenMP threads spin
        against other work and a forward pass measured 20x slower than with one.
        """
        if threads > 0:
            torch.set_num_threads(threads)
        device = str(resolve_device(device))  # auto|cpu|cuda[:N]
        model, info = load_model(checkpoint, device)
        return cls(model, info, device, str(checkpoint) if checkpoint else "default",
                   load_segmenter(foreground))

    @property
    def image_size(self) -> int:
        return int(self.model.cfg.image_size)

    @property
    def voxel_size(self) -> int:
        return int(self.model.cfg.voxel_size)

    def describe(self) -> dict:
        """The model part of the ``info`` reply."""
        return {"checkpoint": self.checkpoint, "mode": self.info.mode, "step": self.info.step,
                "image_size": self.image_size, "voxel_size": self.voxel_size,
                "threshold": self.info.threshold, "metrics": self.info.metrics,
                "classes": [{"synset": s, "name": SYNSET_TO_NAME.get(s, s)}
                            for s in self.info.classes]}

    # -- the three stages

    def prepare(self, request: Request) -> tuple[np.ndarray, list[Framing]]:
        """Preprocess a request's images: ``(N, 3, S, S)`` float32 and each image's framing;
        raises ProtocolError."""
        crops = request.options.crop or (None,) * len(request.images)
        out = np.empty((len(request.images), 3, self.image_size, self.image_size), np.float32)
        framings = []
        for i, (image, crop) in enumerate(zip(request.images, crops, strict=True)):
            try:
                out[i], framing = preprocess_framed(image, self.image_size, crop,
                                                    autocrop=request.options.autocrop,
                                                    segmenter=self.segmenter)
            except ImageError as exc:
                raise _image_error(i, exc) from None
            framings.append(framing)
        return out, framings

    def infer(self, images: np.ndarray) -> Prediction:
        """One forward pass over ``(B, 3, S, S)`` images."""
        with torch.inference_mode():
            pred = self.model.predict(torch.from_numpy(images).to(self.device))
        return Prediction(pred["probs"].float().cpu().numpy(),
                          pred["class_index"].cpu().numpy(),
                          pred["azimuth"].float().cpu().numpy(),
                          pred["elevation"].float().cpu().numpy())

    def finish(self, request: Request, pred: Prediction,
               timings: dict[str, float] | None = None,
               framings: list[Framing] | None = None) -> ReconstructResult:
        """Meshes (and/or voxel grids) for one request's slice of a batch prediction."""
        opts = request.options
        threshold = opts.threshold if opts.threshold is not None else float(self.info.threshold)
        grids = list(pred.probs)
        if opts.fuse:
            grids = [fuse_probabilities(grids)]
        t0 = time.perf_counter()
        outputs = [self._output(g, threshold, opts.resolution, opts.format, opts.smooth,
                                opts.outputs) for g in grids]
        timings = {**(timings or {}), "mesh_ms": (time.perf_counter() - t0) * 1000}
        return ReconstructResult(id=request.id, format=opts.format, views=self._views(pred),
                                 outputs=outputs, fused=opts.fuse, threshold=threshold,
                                 timings={k: round(v, 3) for k, v in timings.items()},
                                 framing=[f.to_json() for f in framings or ()])

    def run(self, request: Request) -> ReconstructResult:
        """All three stages for one request (``reconstruct --local``, benchmarks)."""
        t0 = time.perf_counter()
        images, framings = self.prepare(request)
        t1 = time.perf_counter()
        pred = self.infer(images)
        t2 = time.perf_counter()
        return self.finish(request, pred, {"preprocess_ms": (t1 - t0) * 1000,
                                           "model_ms": (t2 - t1) * 1000}, framings)

    # -- helpers

    def _views(self, pred: Prediction) -> list[ViewPrediction]:
        views = []
        for k, az, el in zip(pred.class_index, pred.azimuth, pred.elevation, strict=True):
            synset = self.info.classes[int(k)] if int(k) < len(self.info.classes) else str(k)
            views.append(ViewPrediction(int(k), synset, SYNSET_TO_NAME.get(synset, synset),
                                        round(float(az), 3), round(float(el), 3)))
        return views

    def _output(self, probs: np.ndarray, threshold: float, resolution: int | None, fmt: str,
                smooth: bool, outputs: tuple[str, ...]) -> ReconstructOutput:
        probs = resample(probs, resolution)
        out = ReconstructOutput(voxels=probs.astype(np.float32) if "voxels" in outputs
                                else None)
        if "mesh" in outputs:
            try:
                out.mesh = export_mesh(voxels_to_mesh(probs, threshold, smooth), fmt)
            except ValueError as exc:  # nothing reaches the threshold
                log.debug("empty mesh: %s", exc)
                out.empty = True
        return out


def resample(probs: np.ndarray, resolution: int | None) -> np.ndarray:
    """The grid at ``resolution``³ (trilinear; same grid when ``None`` or unchanged)."""
    if resolution is None or resolution == probs.shape[0]:
        return probs
    from scipy.ndimage import zoom

    return np.clip(zoom(probs, resolution / probs.shape[0], order=1), 0.0, 1.0)


def _image_error(index: int, exc: ImageError) -> ProtocolError:
    """The reply for an image that preprocessing refused: its code, the image's index."""
    return ProtocolError(getattr(exc, "code", "bad_image"), f"image {index}: {exc}")
