"""``python -m backend reconstruct IMAGE... --out DIR``: the client as a command.

Talks to a daemon (``--server``) or runs the model in this process (``--local``) through the
same message encoding and pipeline, minus the socket. Writes one mesh per image (or one fused
mesh with ``--fuse``) and a PNG preview of the occupancy next to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    positive_float,
)
from backend.core.device import DEVICE_HELP, device_name
from backend.protocol.client import (
    DEFAULT_ENDPOINT,
    CurveKeys,
    ReconClient,
    RequestFailed,
    ServerUnavailable,
)
from backend.protocol.messages import (
    MESH_FORMATS,
    ProtocolError,
    ReconstructResult,
    decode_reconstruct_reply,
    decode_reply,
    decode_request,
    encode_reconstruct_reply,
    encode_request,
    new_id,
    parse_options,
)

log = logging.getLogger(__name__)


class LocalClient:
    """:class:`ReconClient`'s ``reconstruct`` without a daemon: the request is encoded and
    decoded exactly as on the wire, then run by an in-process :class:`Pipeline`."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", pipeline=None,
                 foreground: str | None = "none"):
        from backend.serving.pipeline import Pipeline

        self.pipeline = pipeline or Pipeline.load(checkpoint, device, foreground=foreground)

    def reconstruct(self, images: Sequence[bytes | np.ndarray], request_id: str | None = None,
                    **options) -> ReconstructResult:
        """Same contract as :meth:`ReconClient.reconstruct`."""
        try:
            request = decode_request(encode_request("reconstruct", request_id or new_id(),
                                                    list(images), options))
            frames = encode_reconstruct_reply(self.pipeline.run(request))
        except ProtocolError as exc:
            raise RequestFailed(exc.code, exc.message) from None
        return decode_reconstruct_reply(decode_reply(frames))

    def close(self) -> None:
        pass


@dataclass
class ReconstructConfig:
    """``backend reconstruct``: which images, which model (a daemon or this process), what to
    write."""

    images: list[Path] = arg(help="photos or renders (JPEG, PNG, ...)", positional=True)
    out: Path = arg(help="folder for the meshes and their previews")
    server: str = arg(DEFAULT_ENDPOINT, "daemon endpoint", exclusive="where")
    local: bool = arg(False, "run the model in this process", exclusive="where")
    checkpoint: str | None = arg(None, "with --local: model.pt to load")
    device: str = arg("cpu", f"with --local: {DEVICE_HELP}", type=device_name)
    foreground: str = arg("none", "with --local: the model that frames opaque photos "
                                  "(default none)", metavar="shipped|none|PATH")
    format: str = arg("glb", "mesh file format", choices=list(MESH_FORMATS))
    threshold: float | None = arg(None, "occupancy threshold (default: the model's)")
    crop: str | None = arg(None, "x,y,w,h in pixels around the object (applied to every "
                                 "image)")
    autocrop: bool = arg(True, "frame the object as the training renders are (--no-autocrop: "
                               "use the image, or --crop, as it is)")
    fuse: bool = arg(False, "one mesh from all images")
    smooth: bool = arg(False, "smooth the mesh")
    timeout: float = arg(30.0, "seconds per request", type=positive_float)
    curve_keys: Path | None = arg(None, "folder with client.key_secret and server.key (remote "
                                        "servers)")


def add_reconstruct_parser(sub) -> None:
    """``reconstruct`` subcommand."""
    p = sub.add_parser("reconstruct", help="reconstruct meshes from images")
    add_dataclass_arguments(p, ReconstructConfig)
    p.set_defaults(func=lambda args: run_reconstruct(dataclass_from_args(ReconstructConfig,
                                                                         args)))


def _parse_crop(text: str | None) -> list[float] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"--crop needs x,y,w,h, got {text!r}")
    return [float(v) for v in parts]


def run_reconstruct(args: ReconstructConfig) -> int:
    """The ``reconstruct`` command: 0 on success, 1 when a request failed, 2 on bad input."""
    try:
        options = {"format": args.format, "outputs": ["mesh", "voxels"], "smooth": args.smooth,
                   "threshold": args.threshold, "crop": _parse_crop(args.crop),
                   "autocrop": args.autocrop}
        parse_options(options, len(args.images) if args.fuse else 1)  # fail before any work
        datas = [p.read_bytes() for p in args.images]
        curve = CurveKeys.from_dir(args.curve_keys) if args.curve_keys else None
        client = (LocalClient(args.checkpoint, args.device, foreground=args.foreground)
                  if args.local
                  else ReconClient(args.server, timeout_s=args.timeout, retries=1, curve=curve))
    except (OSError, ValueError, ProtocolError, ServerUnavailable) as exc:
        log.error("%s", exc)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        if args.fuse:
            result = client.reconstruct(datas, fuse=True, **options)
            _write(result, args.out / f"{args.images[0].stem}_fused", args.format)
        else:
            for path, data in zip(_progress(args.images), datas, strict=True):
                _write(client.reconstruct([data], **options), args.out / path.stem, args.format)
    except (RequestFailed, ServerUnavailable) as exc:
        log.error("%s", exc)
        return 1
    finally:
        client.close()
    return 0


def _progress(paths: list[Path]):
    if len(paths) < 2:
        return paths
    from tqdm import tqdm

    return tqdm(paths, unit="image", desc="reconstruct")


def _write(result: ReconstructResult, stem: Path, fmt: str) -> None:
    """Mesh file, PNG preview, and a log line with the predicted class and viewpoint."""
    from synth_render.gallery import voxel_preview

    view = result.views[0]
    out = result.outputs[0]
    if out.mesh is not None:
        stem.with_suffix(f".{fmt}").write_bytes(out.mesh)
    else:
        log.warning("%s: no voxel reached threshold %.2f; no mesh written", stem.name,
                    result.threshold)
    if out.voxels is not None:
        voxel_preview(out.voxels >= result.threshold, size=256).save(stem.with_suffix(".png"))
    log.info("%s: %s (%s), azimuth %.1f, elevation %.1f", stem.name, view.class_name,
             view.synset, view.azimuth, view.elevation)
    for framing in result.framing:
        x, y, w, h = framing["crop"]
        log.info("%s: framed by %s: crop x=%.0f y=%.0f w=%.0f h=%.0f%s", stem.name,
                 framing["source"], x, y, w, h,
                 f" ({framing['note']})" if framing.get("note") else "")
