"""One batch of reconstruct requests -> one reply per request (used by the daemon's compute
thread and by its worker processes alike)."""

from __future__ import annotations

import logging
import time

import numpy as np

from backend.protocol.messages import ProtocolError, Request, encode_error, encode_reconstruct_reply
from backend.serving.pipeline import Pipeline

log = logging.getLogger(__name__)

Outcome = tuple[list[bytes], str | None]  # reply frames, error code (None: success)


def error_outcome(request: Request, err: ProtocolError) -> Outcome:
    """The error reply to ``request``."""
    return encode_error(err, "reconstruct", request.id), err.code


def compute_batch(pipeline: Pipeline, requests: list[Request], waited_ms: list[float]
                  ) -> list[Outcome]:
    """Preprocess every request (a bad image fails only its own request), run one forward pass
    over all their images, mesh each request. ``waited_ms``: time each spent queued."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    live: list[tuple[int, np.ndarray, float]] = []
    framings: dict[int, list] = {}
    for i, request in enumerate(requests):
        t0 = time.perf_counter()
        try:
            images, framings[i] = pipeline.prepare(request)
            live.append((i, images, (time.perf_counter() - t0) * 1000))
        except ProtocolError as exc:
            outcomes[i] = error_outcome(request, exc)
        except Exception as exc:  # e.g. MemoryError, or a decoder bug: fail this request only
            log.exception("preprocessing failed for %s", request.id)
            outcomes[i] = error_outcome(request, ProtocolError(
                "internal", f"preprocessing failed: {type(exc).__name__}: {exc}"))
    if live:
        _infer(pipeline, requests, waited_ms, live, outcomes, framings)
    return outcomes


def _infer(pipeline: Pipeline, requests: list[Request], waited_ms: list[float],
           live: list[tuple[int, np.ndarray, float]], outcomes: list,
           framings: dict[int, list]) -> None:
    t0 = time.perf_counter()
    try:
        pred = pipeline.infer(np.concatenate([images for _, images, _ in live]))
    except Exception as exc:
        log.exception("forward pass failed")
        for i, _, _ in live:
            outcomes[i] = error_outcome(requests[i], ProtocolError("internal",
                                                                   f"model failed: {exc}"))
        return
    model_ms = (time.perf_counter() - t0) * 1000
    n_images = sum(images.shape[0] for _, images, _ in live)
    start = 0
    for i, images, prep_ms in live:
        rows = pred.rows(start, start + images.shape[0])
        start += images.shape[0]
        timings = {"queue_ms": waited_ms[i], "preprocess_ms": prep_ms, "model_ms": model_ms,
                   "batch_images": n_images}
        try:
            result = pipeline.finish(requests[i], rows, timings, framings[i])
            result.timings["total_ms"] = round(waited_ms[i] + (time.perf_counter() - t0) * 1000
                                               + prep_ms, 3)
            outcomes[i] = (encode_reconstruct_reply(result), None)
        except Exception as exc:
            log.exception("meshing failed for %s", requests[i].id)
            outcomes[i] = error_outcome(requests[i], ProtocolError("internal",
                                                                   f"meshing failed: {exc}"))
