"""The wire format on its own (no sockets, no torch): round trips and error codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.protocol import client as client_mod
from backend.protocol import messages as m

pytestmark = pytest.mark.timeout(30)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _header(frames) -> dict:
    return json.loads(frames[0])


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("op", ["health", "info", "stats"])
def test_simple_requests_round_trip(op):
    req = m.decode_request(m.encode_request(op, "r1"))
    assert (req.op, req.id, req.images, req.options) == (op, "r1", [], None)


def test_cancel_round_trip():
    req = m.decode_request(m.encode_request("cancel", "c1", target="r7"))
    assert (req.op, req.target) == ("cancel", "r7")


def test_reconstruct_round_trip_with_every_option():
    arr = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    options = {"threshold": 0.3, "resolution": 64, "format": "PLY", "outputs": ["voxels", "mesh"],
               "smooth": True, "fuse": True, "crop": [[1, 2, 30, 40], None],
               "deadline_ms": 250}
    frames = m.encode_request("reconstruct", "r2", [PNG_MAGIC + b"data", arr], options)
    assert _header(frames)["images"][1] == {"type": "array", "dtype": "uint8", "shape": [4, 5, 3]}
    req = m.decode_request(frames)
    assert req.images[0] == PNG_MAGIC + b"data"
    np.testing.assert_array_equal(req.images[1], arr)
    o = req.options
    assert (o.threshold, o.resolution, o.format, o.outputs, o.smooth, o.fuse, o.deadline_ms) == \
        (0.3, 64, "ply", ("mesh", "voxels"), True, True, 250.0)
    assert o.crop == ((1.0, 2.0, 30.0, 40.0), None)


def test_one_crop_box_applies_to_every_image():
    req = m.decode_request(m.encode_request("reconstruct", "r", [b"a", b"b"],
                                            {"crop": [0, 0, 10, 10]}))
    assert req.options.crop == ((0.0, 0.0, 10.0, 10.0),) * 2


def test_reconstruct_reply_round_trip():
    voxels = np.random.default_rng(0).random((8, 8, 8), dtype=np.float32)
    result = m.ReconstructResult(
        id="r3", format="glb",
        views=[m.ViewPrediction(4, "03001627", "chair", 30.0, 20.0),
               m.ViewPrediction(1, "02828884", "bench", 90.0, 10.0)],
        outputs=[m.ReconstructOutput(mesh=b"glTF...", voxels=voxels),
                 m.ReconstructOutput(mesh=None, voxels=None, empty=True)],
        threshold=0.4, timings={"model_ms": 3.0})
    frames = m.encode_reconstruct_reply(result)
    assert len(frames) == 3  # header, mesh, voxels
    back = m.decode_reconstruct_reply(m.decode_reply(frames))
    assert back.views == result.views and back.timings == result.timings
    assert back.mesh == b"glTF..." and back.outputs[1].empty and back.outputs[1].mesh is None
    np.testing.assert_array_equal(back.voxels, voxels)
    assert back.threshold == 0.4


@pytest.mark.parametrize("op", ["health", "info", "stats", "cancel"])
def test_simple_replies_round_trip(op):
    reply = m.decode_reply(m.encode_reply(op, "x", {"status": "ok", "n": 3}))
    assert (reply.op, reply.id, reply.ok, reply.body) == (op, "x", True, {"status": "ok", "n": 3})


def test_non_finite_numbers_go_out_as_null():
    """A diverged run's NaN metric must not make every ``info`` reply fail."""
    body = {"model": {"metrics": {"iou": float("nan"), "ap": [0.5, float("inf")]}}, "n": 3}
    reply = m.decode_reply(m.encode_reply("info", "x", body))
    assert reply.ok and reply.body == {"model": {"metrics": {"iou": None, "ap": [0.5, None]}},
                                       "n": 3}


def test_error_reply_round_trip():
    err = m.ProtocolError("busy", request_id="r9", op="reconstruct")
    reply = m.decode_reply(m.encode_error(err))
    assert not reply.ok and reply.id == "r9" and reply.error == ("busy", m.ERROR_CODES["busy"])


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32"])
def test_arrays_round_trip_without_pickle(dtype):
    arr = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    desc, data = m.encode_array(arr)
    assert desc == {"dtype": dtype, "shape": [2, 3, 4]} and len(data) == arr.nbytes
    np.testing.assert_array_equal(m.decode_array(desc, data), arr)


def test_object_arrays_cannot_be_sent():
    with pytest.raises(m.ProtocolError) as e:
        m.encode_array(np.array([object()]))
    assert e.value.code == "bad_array"


# ------------------------------------------------------------------------------ error codes

GOOD = m.encode_request("reconstruct", "g", [b"img"])
GOOD_HEADER = _header(GOOD)


def _with(**changes) -> bytes:
    header = {**GOOD_HEADER, **changes}
    return json.dumps({k: v for k, v in header.items() if v is not None}).encode()


def _opts(**options) -> list[bytes]:
    return [_with(options=options), b"img"]


MALFORMED = {
    "bad_json": [[b"{not json"], [b"\xff\xfe"], [b"[1, 2]"], [b'{"v": NaN}'], [b""]],
    "bad_version": [[_with(v=2), b"img"], [_with(v=None), b"img"], [_with(v=True), b"img"]],
    "unknown_op": [[_with(op="explode"), b"img"], [_with(op=None), b"img"], [_with(op=3)]],
    "bad_request": [[_with(id=None), b"img"], [_with(id=""), b"img"], [_with(id="x" * 500)],
                    [_with(images=None)], [_with(images=[])], [_with(images=["png"]), b"img"],
                    [_with(options="fast"), b"img"],
                    [json.dumps({"v": 1, "op": "cancel", "id": "c"}).encode()]],
    "missing_frames": [[], [_with()], [_with(images=[{"type": "encoded"}] * 2), b"img"]],
    "extra_frames": [[_with(), b"img", b"more"], [json.dumps({"v": 1, "op": "health",
                                                             "id": "h"}).encode(), b"x"],
                     [_with()] + [b"i"] * 40],
    "too_large": [[b" " * (m.Limits().max_header_bytes + 1)]],
    "bad_image": [[_with(), b""]],
    "image_too_large": [[_with(images=[{"type": "array", "dtype": "uint8",
                                        "shape": [1, m.MAX_IMAGE_SIDE + 1]}]),
                         bytes(m.MAX_IMAGE_SIDE + 1)]],
    "bad_array": [[_with(images=[{"type": "array", "dtype": "float64", "shape": [2, 2]}]),
                   bytes(32)],
                  [_with(images=[{"type": "array", "dtype": "uint8", "shape": [2, 2]}]),
                   bytes(5)],
                  [_with(images=[{"type": "array", "dtype": "uint8", "shape": [2, -2]}]),
                   bytes(4)],
                  [_with(images=[{"type": "array", "dtype": "float32", "shape": [2, 2]}]),
                   bytes(16)],
                  [_with(images=[{"type": "array", "dtype": "uint8", "shape": [2, 2, 7]}]),
                   bytes(28)],
                  [_with(images=[{"type": "array", "dtype": "|O", "shape": [1]}]), bytes(8)]],
    "bad_option": [_opts(threshold=0), _opts(threshold=1.5), _opts(threshold="high"),
                   _opts(threshold=True), _opts(resolution=33), _opts(resolution=1 << 20),
                   _opts(format="stl"), _opts(outputs=[]), _opts(outputs=["pointcloud"]),
                   _opts(smooth="yes"), _opts(fuse=1), _opts(crop=[0, 0, 0, 10]),
                   _opts(crop=[0, 0, 10]), _opts(crop=[[0, 0, 5, 5], [0, 0, 5, 5]]),
                   _opts(crop=[0, 0, 1e300, 5]), _opts(deadline_ms=-1),
                   _opts(deadline_ms=1e12), _opts(colour="red")],
}


@pytest.mark.parametrize("code,frames", [(c, f) for c, cases in MALFORMED.items()
                                         for f in cases])
def test_malformed_requests_get_their_code(code, frames):
    with pytest.raises(m.ProtocolError) as e:
        m.decode_request(frames)
    assert e.value.code == code, e.value.message
    assert e.value.message  # a sentence for a person


def test_frame_and_request_size_limits():
    limits = m.Limits(max_frame_bytes=100, max_request_bytes=150)
    for frames in ([_with(), bytes(101)], [_with(images=[{"type": "encoded"}] * 2), bytes(80),
                                           bytes(80)]):
        with pytest.raises(m.ProtocolError) as e:
            m.decode_request(frames, limits)
        assert e.value.code == "too_large"


def test_errors_echo_the_request_id_and_op_when_known():
    with pytest.raises(m.ProtocolError) as e:
        m.decode_request(_opts(threshold=7))
    assert (e.value.request_id, e.value.op) == ("g", "reconstruct")
    reply = m.decode_reply(m.encode_error(e.value))
    assert reply.id == "g" and reply.op == "reconstruct" and reply.error[0] == "bad_option"


def test_the_client_validates_options_before_sending():
    with pytest.raises(m.ProtocolError) as e:
        m.encode_request("reconstruct", "r", [b"x"], {"format": "fbx"})
    assert e.value.code == "bad_option"


def test_every_error_code_has_a_message_and_unknown_codes_become_internal():
    assert all(m.ERROR_CODES.values())
    assert m.ProtocolError("no_such_code").code == "internal"


# ------------------------------------------------------------------------------ endpoints


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5557", "tcp://localhost:5557",
                                      "tcp://[::1]:5557", "ipc:///tmp/x.sock"])
def test_good_endpoints_pass(endpoint):
    client_mod.check_endpoint(endpoint)


@pytest.mark.parametrize("endpoint", ["tcp://no-such-host.invalid:5557", "tcp://127.0.0.1",
                                      "http://127.0.0.1:80", "127.0.0.1:5557",
                                      "tcp://127.0.0.1:notaport"])
def test_bad_or_unresolvable_endpoints_fail_at_once(endpoint):
    with pytest.raises(client_mod.ServerUnavailable):
        client_mod.ReconClient(endpoint)
