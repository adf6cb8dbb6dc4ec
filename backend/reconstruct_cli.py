"""``python -m backend reconstruct IMAGE... --out DIR``: the client as a command.

Talks to a daemon (``--server``) or runs the model in this process (``--local``) through the
same message encoding and pipeline, minus the socket. Writes one mesh per image (or one fused
mesh with ``--fuse``) and a PNG preview of the occupancy next to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .protocol.client import (
    DEFAULT_ENDPOINT,
    CurveKeys,
    ReconClient,
    RequestFailed,
    ServerUnavailable,
)
from .protocol.messages import (
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
        from .pipeline import Pipeline

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


def add_reconstruct_parser(sub) -> None:
    """``reconstruct`` subcommand."""
    p = sub.add_parser("reconstruct", help="reconstruct meshes from images")
    p.add_argument("images", nargs="+", type=Path)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", default=DEFAULT_ENDPOINT, help="daemon endpoint")
    where.add_argument("--local", action="store_true", help="run the model in this process")
    p.add_argument("--checkpoint", default=None, help="with --local: model.pt to load")
    p.add_argument("--device", default="cpu", help="with --local")
    p.add_argument("--foreground", default="none", metavar="shipped|none|PATH",
                   help="with --local: the model that frames opaque photos (default none)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=MESH_FORMATS, default="glb")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--crop", default=None,
                   help="x,y,w,h in pixels around the object (applied to every image)")
    p.add_argument("--no-autocrop", dest="autocrop", action="store_false",
                   help="use the image (or --crop) as it is, without framing the object as "
                        "the training renders are")
    p.add_argument("--fuse", action="store_true", help="one mesh from all images")
    p.add_argument("--smooth", action="store_true")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--curve-keys", type=Path, default=None,
                   help="folder with client.key_secret and server.key (remote servers)")
    p.set_defaults(func=_cmd_reconstruct)


def _parse_crop(text: str | None) -> list[float] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"--crop needs x,y,w,h, got {text!r}")
    return [float(v) for v in parts]


def _cmd_reconstruct(args) -> int:
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
