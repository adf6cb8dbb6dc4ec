"""The daemon's wire format (its one owner): encode and decode every request and reply.

A message is a ZeroMQ multipart message. Frame 0 is a UTF-8 JSON object, the header::

    {"v": 1, "op": "reconstruct", "id": "3f2a...", ...op fields...}

Further frames are raw bytes whose meaning the header states: encoded images (PNG, JPEG, ...)
or raw ``uint8`` pixel arrays in a ``reconstruct`` request; mesh files and voxel grids (raw
arrays described by ``dtype``/``shape``) in its reply. Nothing is ever pickled: arrays are
rebuilt with ``numpy.frombuffer`` from a short whitelist of dtypes.

Replies echo ``op`` and ``id`` and carry ``"ok": true`` plus the op's fields, or ``"ok": false``
and ``"error": {"code": ..., "message": ...}`` with a stable code from :data:`ERROR_CODES`.

Requests (header fields beyond v/op/id):

- ``reconstruct``: ``images``: one descriptor per image frame, ``{"type": "encoded"}`` or
  ``{"type": "array", "dtype": "uint8", "shape": [H, W, C]}``; ``options``: see
  :class:`ReconstructOptions`.
- ``cancel``: ``target``: the id of a queued reconstruct request.
- ``health``, ``info``, ``stats``: nothing else.

``reconstruct`` and ``cancel`` may carry ``client``: a token the client makes up (1 to 128
characters) and keeps across reconnects. Request ids are scoped by it: only a request with the
same token and id is the same request (a retry, answered by the one computation) or may cancel
it. Without a token a request is scoped by its connection, as in earlier v1 servers.

``reconstruct`` may also ask for ``"ack": true``: the server then answers at once with an
acknowledgement (``"ok": true, "ack": true``, no outputs) before the result, and again for each
retry while the request is still queued or computing, so a client can tell a slow request from
a dead server. A client that reads one reply per request must not ask for it.

Stdlib, numpy and zmq only, relative imports only: the Blender add-on bundles this package.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

PROTOCOL_VERSION = 1
OPS = ("reconstruct", "cancel", "health", "info", "stats")
MESH_FORMATS = ("glb", "obj", "ply")
OUTPUTS = ("mesh", "voxels")
RESOLUTIONS = (16, 32, 64, 128)
# Arrays may only have these dtypes (little-endian); anything else is ``bad_array``.
ARRAY_DTYPES = {"uint8": np.dtype("u1"), "float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
MAX_ID_CHARS = 128
MAX_DEADLINE_MS = 3_600_000.0
MAX_IMAGE_SIDE = 16384

Box = tuple[float, float, float, float]
Frames = Sequence[bytes | bytearray | memoryview]

# Stable error codes and what they mean to a person.
ERROR_CODES: dict[str, str] = {
    "bad_json": "the header frame is not a UTF-8 JSON object",
    "bad_version": "unsupported protocol version",
    "unknown_op": "unknown operation",
    "bad_request": "the header is missing a field or has a field of the wrong type",
    "missing_frames": "fewer binary frames than the header announces",
    "extra_frames": "more binary frames than the header announces",
    "too_large": "the message is larger than the server accepts",
    "bad_image": "an image could not be decoded",
    "image_too_large": "an image has more pixels than the server accepts",
    "bad_array": "an array frame has a wrong dtype, shape or size",
    "bad_option": "an option has an invalid value",
    "busy": "the server's queue is full; try again shortly",
    "deadline_exceeded": "the request's deadline passed before it was computed",
    "cancelled": "the request was cancelled",
    "shutting_down": "the server is shutting down",
    "internal": "internal server error",
}
# Codes after which sending the same request again may succeed.
RETRYABLE = frozenset({"busy", "shutting_down"})


class ProtocolError(Exception):
    """A message that breaks the protocol, with a stable ``code`` and a human ``message``.

    ``request_id`` and ``op`` are filled in when the header got far enough to know them, so
    the error reply can echo them.
    """

    def __init__(self, code: str, message: str | None = None, *, request_id: str | None = None,
                 op: str | None = None):
        if code not in ERROR_CODES:
            code, message = "internal", f"unknown error code {code!r}: {message}"
        self.code = code
        self.message = message or ERROR_CODES[code]
        self.request_id = request_id
        self.op = op
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True)
class Limits:
    """What the server accepts; ``info`` reports them so clients can check before sending."""

    max_header_bytes: int = 64 * 1024
    max_frame_bytes: int = 64 * 1024 * 1024  # also the socket's MAXMSGSIZE
    max_request_bytes: int = 128 * 1024 * 1024
    max_images: int = 16


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class ReconstructOptions:
    """Options of a ``reconstruct`` request (``None`` = the server's default).

    ``crop``: one ``(x, y, w, h)`` box in pixels per image (``None`` entries: no crop);
    ``autocrop``: frame each image's object as the training renders are (a crop box then marks
    the object); false: the crop box, or the whole image, as it is;
    ``deadline_ms``: the server drops the request when it cannot start computing it within
    this many milliseconds of receiving it; ``fuse``: one mesh from the mean of all views.
    """

    threshold: float | None = None
    resolution: int | None = None
    format: str = "glb"
    outputs: tuple[str, ...] = ("mesh",)
    smooth: bool = False
    fuse: bool = False
    crop: tuple[Box | None, ...] | None = None
    deadline_ms: float | None = None
    autocrop: bool = True

    def to_json(self) -> dict:
        d = asdict(self)
        d["outputs"] = list(self.outputs)
        if self.crop is not None:
            d["crop"] = [list(b) if b is not None else None for b in self.crop]
        return {k: v for k, v in d.items() if v is not None}


@dataclass
class Request:
    """A decoded, validated request. ``images`` holds encoded bytes or uint8 arrays."""

    op: str
    id: str
    images: list[bytes | np.ndarray] = field(default_factory=list)
    options: ReconstructOptions | None = None
    target: str | None = None  # cancel: the id to drop
    client: str | None = None  # the client's token (scopes ids); None: the connection's
    ack: bool = False  # reconstruct: acknowledge at once (and on each retry), then the result


def new_id() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex


def encode_request(op: str, request_id: str | None = None,
                   images: Sequence[bytes | np.ndarray] = (),
                   options: ReconstructOptions | Mapping | None = None,
                   target: str | None = None, client: str | None = None,
                   ack: bool = False) -> list[bytes]:
    """Frames of a request. ``options`` may be a :class:`ReconstructOptions` or a dict of its
    fields (validated here too, so a client fails before sending); ``client``: the client's
    token (see the module docstring)."""
    if op not in OPS:
        raise ProtocolError("unknown_op", f"unknown operation {op!r}; expected one of {OPS}")
    header: dict = {"v": PROTOCOL_VERSION, "op": op, "id": request_id or new_id()}
    if client is not None:
        header["client"] = _client_token({"client": client})
    if ack and op == "reconstruct":
        header["ack"] = True
    frames: list[bytes] = []
    if op == "reconstruct":
        if not isinstance(options, ReconstructOptions):
            options = parse_options(dict(options or {}), len(images))
        descriptors = []
        for image in images:
            desc, data = _encode_image(image)
            descriptors.append(desc)
            frames.append(data)
        header["images"] = descriptors
        header["options"] = options.to_json()
    elif op == "cancel":
        header["target"] = target
    return [_dump(header), *frames]


def _encode_image(image: bytes | bytearray | memoryview | np.ndarray) -> tuple[dict, bytes]:
    if isinstance(image, np.ndarray):
        desc, data = encode_array(image)
        return {"type": "array", **desc}, data
    if isinstance(image, bytes | bytearray | memoryview):
        return {"type": "encoded"}, bytes(image)
    raise ProtocolError("bad_image", f"an image must be encoded bytes or a uint8 array, not "
                                     f"{type(image).__name__}")


def decode_request(frames: Frames, limits: Limits = Limits()) -> Request:
    """Parse and validate a request's frames; raises :class:`ProtocolError`."""
    if not frames:
        raise ProtocolError("missing_frames", "empty message: no header frame")
    _check_sizes(frames, limits)
    header = _load(frames[0])
    op = header.get("op")
    try:
        _check_version(header)  # first: another version may spell everything else differently
        request_id = _request_id(header)
        if op not in OPS:
            raise ProtocolError("unknown_op", f"unknown operation {op!r}; expected one of {OPS}")
        body = list(frames[1:])
        client = _client_token(header)
        if op == "reconstruct":
            request = _decode_reconstruct(header, body, request_id, limits)
            request.client = client
            request.ack = header.get("ack", False)
            if not isinstance(request.ack, bool):
                raise ProtocolError("bad_request", "'ack' must be true or false")
            return request
        _expect_frames(body, 0)
        target = _cancel_target(header) if op == "cancel" else None
        return Request(op=op, id=request_id, target=target, client=client)
    except ProtocolError as exc:
        rid = header.get("id")
        exc.request_id = rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS else None
        exc.op = op if isinstance(op, str) and op in OPS else None
        raise


def _check_sizes(frames: Frames, limits: Limits) -> None:
    if len(frames[0]) > limits.max_header_bytes:
        raise ProtocolError("too_large", f"header frame of {len(frames[0])} bytes exceeds "
                                         f"{limits.max_header_bytes}")
    sizes = [len(f) for f in frames]
    if max(sizes) > limits.max_frame_bytes:
        raise ProtocolError("too_large", f"a frame of {max(sizes)} bytes exceeds "
                                         f"{limits.max_frame_bytes}")
    if sum(sizes) > limits.max_request_bytes:
        raise ProtocolError("too_large", f"message of {sum(sizes)} bytes exceeds "
                                         f"{limits.max_request_bytes}")
    if len(frames) > limits.max_images + 1:
        raise ProtocolError("extra_frames", f"{len(frames) - 1} binary frames; at most "
                                            f"{limits.max_images} images per request")


def _request_id(header: dict) -> str:
    rid = header.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID_CHARS:
        raise ProtocolError("bad_request", f"'id' must be a string of 1 to {MAX_ID_CHARS} "
                                           "characters")
    return rid


def _check_version(header: dict) -> None:
    if "v" not in header:
        raise ProtocolError("bad_version", "the header has no protocol version 'v'")
    if header["v"] != PROTOCOL_VERSION or isinstance(header["v"], bool):
        raise ProtocolError("bad_version", f"protocol version {header['v']!r} is not supported; "
                                           f"this server speaks v{PROTOCOL_VERSION}")


def _expect_frames(body: list, n: int) -> None:
    if len(body) < n:
        raise ProtocolError("missing_frames", f"the header announces {n} binary frames, the "
                                              f"message has {len(body)}")
    if len(body) > n:
        raise ProtocolError("extra_frames", f"the header announces {n} binary frames, the "
                                            f"message has {len(body)}")


def _client_token(header: dict) -> str | None:
    token = header.get("client")
    if token is None:
        return None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_ID_CHARS:
        raise ProtocolError("bad_request", f"'client' must be a string of 1 to {MAX_ID_CHARS} "
                                           "characters (the client's token)")
    return token


def _cancel_target(header: dict) -> str:
    target = header.get("target")
    if not isinstance(target, str) or not 0 < len(target) <= MAX_ID_CHARS:
        raise ProtocolError("bad_request", "cancel needs 'target': the id of the request to drop")
    return target


def _decode_reconstruct(header: dict, body: list, request_id: str, limits: Limits) -> Request:
    descriptors = header.get("images")
    if not isinstance(descriptors, list) or not descriptors:
        raise ProtocolError("bad_request", "reconstruct needs 'images': a non-empty list with "
                                           "one descriptor per image frame")
    if len(descriptors) > limits.max_images:
        raise ProtocolError("bad_request", f"{len(descriptors)} images; at most "
                                           f"{limits.max_images} per request")
    _expect_frames(body, len(descriptors))
    images = [_decode_image(d, bytes(f), i) for i, (d, f) in enumerate(zip(descriptors, body,
                                                                           strict=True))]
    raw_options = header.get("options", {})
    if not isinstance(raw_options, dict):
        raise ProtocolError("bad_request", "'options' must be a JSON object")
    options = parse_options(raw_options, len(images))
    return Request(op="reconstruct", id=request_id, images=images, options=options)


def _decode_image(desc, data: bytes, index: int) -> bytes | np.ndarray:
    if not isinstance(desc, dict) or desc.get("type") not in ("encoded", "array"):
        raise ProtocolError("bad_request", f"image {index}: descriptor must be "
                                           "{'type': 'encoded'} or {'type': 'array', ...}")
    if not data:
        raise ProtocolError("bad_image", f"image {index}: empty frame (0 bytes)")
    if desc["type"] == "encoded":
        return data
    arr = decode_array(desc, data, what=f"image {index}")
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3
                                                          and arr.shape[2] not in (1, 3, 4)):
        raise ProtocolError("bad_array", f"image {index}: a pixel array must be uint8 (H, W) or "
                                         f"(H, W, 1|3|4), got {arr.dtype} {arr.shape}")
    if max(arr.shape[:2]) > MAX_IMAGE_SIDE:
        raise ProtocolError("image_too_large", f"image {index}: {arr.shape[1]}x{arr.shape[0]} "
                                               f"pixels; at most {MAX_IMAGE_SIDE} per side")
    return arr


# ------------------------------------------------------------------------------ options


def parse_options(raw: Mapping, n_images: int) -> ReconstructOptions:
    """Validate a dict of reconstruct options (unknown keys are an error: typos must not pass
    silently)."""
    known = {f for f in ReconstructOptions.__dataclass_fields__}
    unknown = set(raw) - known
    if unknown:
        raise ProtocolError("bad_option", f"unknown option(s) {sorted(unknown)}; known: "
                                          f"{sorted(known)}")
    fmt = raw.get("format", "glb")
    if not isinstance(fmt, str) or fmt.lower() not in MESH_FORMATS:
        raise ProtocolError("bad_option", f"format must be one of {MESH_FORMATS}, got {fmt!r}")
    return ReconstructOptions(
        threshold=_threshold(raw.get("threshold")),
        resolution=_resolution(raw.get("resolution")),
        format=fmt.lower(),
        outputs=_outputs(raw.get("outputs", ["mesh"])),
        smooth=_flag(raw, "smooth"),
        fuse=_flag(raw, "fuse"),
        crop=_crops(raw.get("crop"), n_images),
        deadline_ms=_deadline(raw.get("deadline_ms")),
        autocrop=_flag(raw, "autocrop", default=True),
    )


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _threshold(value) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0 < value < 1:
        raise ProtocolError("bad_option", f"threshold must be a number in (0, 1), got {value!r}")
    return float(value)


def _resolution(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or value not in RESOLUTIONS:
        raise ProtocolError("bad_option", f"resolution must be one of {RESOLUTIONS}, "
                                          f"got {value!r}")
    return int(value)


def _outputs(value) -> tuple[str, ...]:
    if (not isinstance(value, list | tuple) or not value
            or any(not isinstance(v, str) or v not in OUTPUTS for v in value)):
        raise ProtocolError("bad_option", f"outputs must be a non-empty subset of {OUTPUTS}, "
                                          f"got {value!r}")
    return tuple(o for o in OUTPUTS if o in value)


def _flag(raw: Mapping, name: str, default: bool = False) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ProtocolError("bad_option", f"{name} must be true or false, got {value!r}")
    return value


def _crops(value, n_images: int) -> tuple[Box | None, ...] | None:
    """One box for every image, or a list with one box (or null) per image."""
    if value is None:
        return None
    if isinstance(value, list | tuple) and len(value) == 4 and all(map(_number, value)):
        boxes = [value] * n_images
    elif isinstance(value, list | tuple) and len(value) == n_images:
        boxes = list(value)
    else:
        raise ProtocolError("bad_option", "crop must be [x, y, w, h] or one such box (or null) "
                                          f"per image, got {value!r}")
    return tuple(None if b is None else _box(b) for b in boxes)


def _box(box) -> Box:
    if not isinstance(box, list | tuple) or len(box) != 4 or not all(map(_number, box)):
        raise ProtocolError("bad_option", f"a crop box must be four numbers [x, y, w, h], "
                                          f"got {box!r}")
    x, y, w, h = (float(v) for v in box)
    if w < 1 or h < 1 or max(abs(x), abs(y), w, h) > 10 * MAX_IMAGE_SIDE:
        raise ProtocolError("bad_option", f"crop box {box!r}: width and height must be at least "
                                          "one pixel and the box of a plausible size")
    return x, y, w, h


def _deadline(value) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0 < value <= MAX_DEADLINE_MS:
        raise ProtocolError("bad_option", f"deadline_ms must be in (0, {MAX_DEADLINE_MS:g}], "
                                          f"got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------ arrays


def encode_array(arr: np.ndarray) -> tuple[dict, bytes]:
    """``({"dtype", "shape"}, raw C-order little-endian bytes)`` of an array."""
    arr = np.asarray(arr)
    name = next((n for n, dt in ARRAY_DTYPES.items() if dt == arr.dtype.newbyteorder("<")
                 or dt == arr.dtype), None)
    if name is None:
        raise ProtocolError("bad_array", f"dtype {arr.dtype} cannot be sent; use one of "
                                         f"{sorted(ARRAY_DTYPES)}")
    data = np.ascontiguousarray(arr, dtype=ARRAY_DTYPES[name]).tobytes()
    return {"dtype": name, "shape": [int(s) for s in arr.shape]}, data


def decode_array(desc: Mapping, data: bytes, what: str = "array") -> np.ndarray:
    """Rebuild an array from its descriptor and bytes (read-only, no copy, never pickle)."""
    dtype = ARRAY_DTYPES.get(desc.get("dtype")) if isinstance(desc.get("dtype"), str) else None
    if dtype is None:
        raise ProtocolError("bad_array", f"{what}: dtype {desc.get('dtype')!r} is not one of "
                                         f"{sorted(ARRAY_DTYPES)}")
    shape = desc.get("shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 4
            or any(not isinstance(s, int) or isinstance(s, bool) or not 0 < s <= 1 << 20
                   for s in shape)):
        raise ProtocolError("bad_array", f"{what}: shape must be 1 to 4 positive integers, "
                                         f"got {shape!r}")
    expected = dtype.itemsize * math.prod(shape)
    if expected != len(data):
        raise ProtocolError("bad_array", f"{what}: {dtype.name} {shape} needs {expected} bytes, "
                                         f"the frame has {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


# ------------------------------------------------------------------------------ replies


@dataclass
class Reply:
    """A decoded reply: its header fields (``body``) and binary frames."""

    op: str
    id: str | None
    ok: bool
    body: dict
    frames: list[bytes]

    @property
    def error(self) -> tuple[str, str]:
        """``(code, message)`` of an error reply."""
        err = self.body.get("error") or {}
        return str(err.get("code", "internal")), str(err.get("message", "unknown error"))


def encode_reply(op: str, request_id: str | None, body: Mapping | None = None,
                 frames: Sequence[bytes] = ()) -> list[bytes]:
    """Frames of a success reply."""
    header = {"v": PROTOCOL_VERSION, "op": op, "id": request_id, "ok": True, **(body or {})}
    return [_dump(header), *[bytes(f) for f in frames]]


def encode_error(error: ProtocolError, op: str | None = None,
                 request_id: str | None = None) -> list[bytes]:
    """Frames of an error reply (``op``/``id`` default to what the error knows)."""
    header = {"v": PROTOCOL_VERSION, "op": op or error.op or "error",
              "id": request_id if request_id is not None else error.request_id, "ok": False,
              "error": {"code": error.code, "message": error.message}}
    return [_dump(header)]


def decode_reply(frames: Frames) -> Reply:
    """Parse a reply's header; raises :class:`ProtocolError` for a malformed reply."""
    if not frames:
        raise ProtocolError("missing_frames", "empty reply")
    header = _load(frames[0])
    _check_version(header)
    ok = header.pop("ok", None)
    if not isinstance(ok, bool):
        raise ProtocolError("bad_request", "reply without a boolean 'ok'")
    op, rid = header.pop("op", None), header.pop("id", None)
    header.pop("v")
    return Reply(op=str(op), id=rid, ok=ok, body=header, frames=[bytes(f) for f in frames[1:]])


# -- reconstruct results


@dataclass
class ViewPrediction:
    """What the model says about one input image."""

    class_index: int
    synset: str
    class_name: str
    azimuth: float  # degrees
    elevation: float  # degrees


@dataclass
class ReconstructOutput:
    """One mesh (and/or voxel grid): per image, or one for all images when fused."""

    mesh: bytes | None = None
    voxels: np.ndarray | None = None  # (D, D, D) float32 probabilities, [x, y, z], +Y up
    empty: bool = False  # no voxel reached the threshold (``mesh`` is then None)


@dataclass
class ReconstructResult:
    """The reply to a reconstruct request."""

    id: str
    format: str
    views: list[ViewPrediction]
    outputs: list[ReconstructOutput]
    fused: bool = False
    threshold: float = 0.5
    timings: dict[str, float] = field(default_factory=dict)
    # Per image: {"crop": [x, y, w, h], "source": "user|alpha|mask|none", "note": str}, the
    # square the network saw in the full-resolution upright image (empty from old servers).
    framing: list[dict] = field(default_factory=list)

    @property
    def mesh(self) -> bytes | None:
        """The first output's mesh."""
        return self.outputs[0].mesh if self.outputs else None

    @property
    def voxels(self) -> np.ndarray | None:
        """The first output's voxel grid."""
        return self.outputs[0].voxels if self.outputs else None


def encode_reconstruct_reply(result: ReconstructResult) -> list[bytes]:
    """Frames of a reconstruct reply: per output, its mesh frame then its voxel frame."""
    frames: list[bytes] = []
    outputs = []
    for out in result.outputs:
        entry: dict = {"empty": out.empty, "mesh": None, "voxels": None}
        if out.mesh is not None:
            entry["mesh"] = {"format": result.format, "bytes": len(out.mesh)}
            frames.append(out.mesh)
        if out.voxels is not None:
            desc, data = encode_array(out.voxels)
            entry["voxels"] = desc
            frames.append(data)
        outputs.append(entry)
    body = {"format": result.format, "fused": result.fused, "threshold": result.threshold,
            "views": [asdict(v) for v in result.views], "outputs": outputs,
            "timings": result.timings, "framing": result.framing}
    return encode_reply("reconstruct", result.id, body, frames)


def decode_reconstruct_reply(reply: Reply) -> ReconstructResult:
    """The :class:`ReconstructResult` in a successful reconstruct reply."""
    body = reply.body
    try:
        views = [ViewPrediction(**v) for v in body["views"]]
        frames = iter(reply.frames)
        outputs = []
        for entry in body["outputs"]:
            mesh = next(frames) if entry.get("mesh") else None
            voxels = decode_array(entry["voxels"], next(frames), "voxels") \
                if entry.get("voxels") else None
            outputs.append(ReconstructOutput(mesh, voxels, bool(entry.get("empty"))))
        if next(frames, None) is not None:
            raise ProtocolError("extra_frames", "reply has more frames than outputs")
        return ReconstructResult(id=str(reply.id), format=body["format"], views=views,
                                 outputs=outputs, fused=bool(body.get("fused")),
                                 threshold=float(body.get("threshold", 0.5)),
                                 timings=dict(body.get("timings", {})),
                                 framing=[dict(f) for f in body.get("framing", [])])
    except (KeyError, TypeError, StopIteration) as exc:
        raise ProtocolError("bad_request", f"malformed reconstruct reply: {exc!r}") from exc


# ------------------------------------------------------------------------------ JSON


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _load(frame) -> dict:
    try:
        header = json.loads(bytes(frame).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"the header frame is not valid UTF-8 JSON ({exc})") \
            from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_json", f"the header must be a JSON object, got "
                                        f"{type(header).__name__}")
    return header


def _dump(header: Mapping) -> bytes:
    try:
        text = json.dumps(header, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN/inf (e.g. a diverged run's stored metric): strict JSON says null
        text = json.dumps(_finite(header), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _finite(value):
    """``value`` with every non-finite float replaced by None (lists, tuples, dicts walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
