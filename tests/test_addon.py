"""The Blender add-on, headless, against a real daemon with the shipped weights."""

from __future__ import annotations

import math
import socket
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from backend.protocol import DaemonError, LocalDaemon, ReconClient
from backend.protocol import messages as m
from blender_addon.jobs import Connection, JobFailed, NetworkThread, ReconstructJob
from blender_addon.viewpoint import camera_offset, look_at_euler, sensor_width
from synth_render import r2n2

CAR = "02958343"


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


# ------------------------------------------------------------------------------ pure parts


def test_camera_offset_follows_the_r2n2_protocol():
    """The add-on's camera math is the renderer's: same azimuth/elevation convention."""
    for az, el, ratio in [(0, 25, 0.8), (135, 28, 0.65), (300, 29.9, 0.95)]:
        expected = r2n2.View(az, el, ratio).location_blender()  # unit-diagonal shapes
        np.testing.assert_allclose(camera_offset(az, el, 1.0, ratio), expected, atol=1e-9)
    # Twice the diagonal, twice the distance.
    np.testing.assert_allclose(camera_offset(40, 27, 2.0), 2 * np.array(camera_offset(40, 27, 1)))


def test_sensor_width_frames_the_padded_photo():
    # A square photo in a square render: R2N2's 32 mm sensor.
    assert sensor_width((137, 137), (512, 512)) == pytest.approx(32.0)
    # Blender's default 1920 x 1080: the photo fits the height, so 32 mm must span 1080 px.
    assert sensor_width((137, 137), (1920, 1080)) == pytest.approx(32 * 1920 / 1080)
    # A landscape photo (padded to a square by the model) in a portrait render.
    assert sensor_width((400, 200), (1080, 1920)) == pytest.approx(32.0)


@pytest.mark.blender
def test_look_at_points_the_camera_at_the_origin():
    pytest.importorskip("bpy")  # mathutils comes with it
    from mathutils import Euler, Vector

    for az, el in [(0, 25), (90, 30), (200, 10), (315, 45)]:
        offset = Vector(camera_offset(az, el, 1.0))
        forward = Euler(look_at_euler(tuple(offset))).to_matrix() @ Vector((0, 0, -1))
        assert forward.angle(-offset) < 1e-6
        up = Euler(look_at_euler(tuple(offset))).to_matrix() @ Vector((0, 1, 0))
        assert up.z > 0  # no roll: the camera's up is towards +Z


def test_local_daemon_refuses_bad_settings(tmp_path):
    with pytest.raises(DaemonError, match="loopback"):
        LocalDaemon(sys.executable, "tcp://10.1.2.3:5557")
    with pytest.raises(DaemonError, match="no Python executable"):
        LocalDaemon(str(tmp_path / "missing" / "python"), "tcp://127.0.0.1:5557")


def test_local_daemon_passes_the_weights_and_the_foreground_model_to_serve():
    plain = LocalDaemon(sys.executable, "tcp://127.0.0.1:5557").command
    assert plain == [sys.executable, "-m", "backend", "serve", "--bind", "tcp://127.0.0.1:5557"]
    framed = LocalDaemon(sys.executable, "tcp://127.0.0.1:5557", "w.pt", None, "shipped")
    assert framed.command[-4:] == ["--checkpoint", "w.pt", "--foreground", "shipped"]


class FakeServer:
    """A ROUTER speaking the real protocol with canned behaviour: ``busy`` (every request
    gets the ``busy`` error), ``empty`` (health answers, reconstructs find no object) or
    ``slow`` (health answers, reconstructs never do). Records the ops it receives."""

    def __init__(self, mode: str):
        self.mode, self.ops = mode, []
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _reply(self, request: m.Request) -> list[bytes] | None:
        if self.mode == "busy":
            return m.encode_error(m.ProtocolError("busy", "queue full"), request.op, request.id)
        if request.op == "health":
            return m.encode_reply("health", request.id, {"status": "ok"})
        if self.mode == "empty" and request.op == "reconstruct":
            view = m.ViewPrediction(0, CAR, "car", 30.0, 25.0)
            outputs = [m.ReconstructOutput(empty=True)]
            return m.encode_reconstruct_reply(
                m.ReconstructResult(request.id, "glb", [view], outputs, threshold=0.4))
        return None  # slow: never answers

    def _loop(self):
        while self.running:
            if not self.sock.poll(50):
                continue
            identity, _, *frames = self.sock.recv_multipart()
            request = m.decode_request(frames)
            self.ops.append(request.op)
            reply = self._reply(request)
            if reply is not None:
                self.sock.send_multipart([identity, b"", *reply])

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close(0)
        self.ctx.term()


def _events_until_done(thread: NetworkThread, timeout_s: float = 20.0) -> list:
    events, end = [], time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            event = thread.events.get(timeout=0.1)
        except Exception:
            continue
        events.append(event)
        if type(event).__name__ in ("JobFinished", "JobFailed"):
            return events
    raise AssertionError(f"no end event within {timeout_s} s: {events}")


def test_network_thread_turns_busy_and_silence_into_advice():
    busy = FakeServer("busy")
    thread = NetworkThread()
    thread.start()
    try:
        thread.submit(ReconstructJob(1, ("a",), (b"\x89PNG",), Connection(busy.endpoint, 5, 0)))
        failed = _events_until_done(thread)[-1]
        assert isinstance(failed, JobFailed) and "busy" in failed.message
        assert "again" in failed.hint
        silent = Connection(_free_endpoint(), timeout_s=0.3, retries=0)
        started = time.monotonic()
        thread.submit(ReconstructJob(2, ("b",), (b"\x89PNG",), silent))
        failed = _events_until_done(thread)[-1]
        assert isinstance(failed, JobFailed) and "No answer" in failed.message
        assert "Start it" in failed.hint and time.monotonic() - started < 5
    finally:
        thread.stop()
        busy.close()


# ------------------------------------------------------------------------------ Blender


@pytest.fixture(scope="module")
def daemon():
    """``python -m backend serve`` with the shipped weights, started the add-on's way."""
    endpoint = _free_endpoint()
    proc = LocalDaemon(sys.executable, endpoint)
    proc.start()
    try:
        proc.wait_ready(timeout_s=60)
        yield endpoint
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """One car the model never saw: two synthetic renders and its ground-truth voxels."""
    from synth_render.binvox import read_binvox
    from synth_render.demo import build_demo_data
    from synth_render.shapenet import find_models

    root = tmp_path_factory.mktemp("held_out")
    data = build_demo_data(root, [CAR], per_class=1, views=2, size=64, seed=4242, workers=1,
                           styles=("synthetic",))
    assert data.failures == 0
    ref = find_models(data.shapes)[0]
    render_dir = r2n2.rendering_dir(data.renders["synthetic"], ref.synset, ref.model_id)
    truth = read_binvox(r2n2.voxel_path(data.voxels, ref.synset, ref.model_id)).grid
    return [render_dir / r2n2.view_file_name(i) for i in range(2)], truth


@pytest.fixture
def addon(daemon):
    import bpy  # noqa: I001  (bpy first: it provides addon_utils)
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.endpoint, prefs.timeout_s, prefs.retries = daemon, 60.0, 0
    yield bpy
    addon_utils.disable("blender_addon", default_set=True)


def _wait(bpy, timeout_s: float = 90.0) -> None:
    """Drain on the main thread, as the add-on's timer does, until the job is over."""
    from blender_addon import runtime

    assert runtime.drain_until(lambda: not runtime.STATE.busy, timeout_s), \
        "the job never finished"


def _probe_and_wait(timeout_s: float = 10.0) -> None:
    """Ask for the server's status and drain until the answer is in, as the timer would."""
    from blender_addon import runtime
    from blender_addon.preferences import connection

    runtime.probe(connection())
    runtime.drain_until(lambda: not runtime.STATE.probe_pending, timeout_s)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def _voxelize_back(obj) -> np.ndarray:
    """The imported object, undone to the daemon's frame, as a 32³ grid of its unit cube:
    a voxel is occupied when its centre lies inside the mesh (the daemon's isosurface passes
    between voxel centres at the threshold, so this inverts the meshing)."""
    import trimesh

    mesh = obj.data
    local = np.array([v.co for v in mesh.vertices])  # object space: scale/location undone
    faces = np.array([p.vertices[:] for p in mesh.polygons])
    surface = trimesh.Trimesh(r2n2.blender_to_shapenet(local), faces, process=False)
    centres = (np.indices((32, 32, 32)).reshape(3, -1).T + 0.5) / 32 - 0.5
    return surface.contains(centres).reshape(32, 32, 32)


@pytest.mark.blender
def test_register_unregister_twice():
    import bpy  # noqa: I001  (bpy first: it provides addon_utils)
    import addon_utils

    for _ in range(2):
        addon_utils.enable("blender_addon", default_set=True)
        assert hasattr(bpy.types, "VIEW3D_PT_unsup3d_recon")
        assert hasattr(bpy.types.Scene, "unsup3d")
        addon_utils.disable("blender_addon", default_set=True)
        assert not hasattr(bpy.types, "VIEW3D_PT_unsup3d_recon")
        assert not hasattr(bpy.types.Scene, "unsup3d")
    from blender_addon import runtime

    assert runtime.STATE.thread is None  # the network thread went with it


@pytest.mark.blender
def test_reconstruct_imports_at_cursor_with_camera(addon, daemon, held_out):
    bpy = addon
    from blender_addon import runtime

    paths, truth = held_out
    settings = bpy.context.scene.unsup3d
    settings.references.add().image = bpy.data.images.load(str(paths[0]))
    settings.target_size = 2.0
    bpy.context.scene.cursor.location = (1.0, -2.0, 0.5)
    assert bpy.ops.unsup3d.reconstruct() == {"FINISHED"}
    assert runtime.STATE.busy
    _wait(bpy)
    assert runtime.STATE.error == "", runtime.STATE.error

    obj = bpy.data.objects[paths[0].stem]
    assert tuple(obj.location) == pytest.approx((1.0, -2.0, 0.5))
    assert max(obj.dimensions) == pytest.approx(2.0, rel=0.01)
    assert obj.users_collection[0].name == "Reconstructions"
    assert all(p.use_smooth for p in obj.data.polygons)

    # The mesh in the scene is the daemon's answer: voxelized back, it scores like the
    # daemon's own voxels against the ground truth.
    with ReconClient(daemon, timeout_s=60) as client:
        result = client.reconstruct([paths[0].read_bytes()], outputs=["voxels"])
    daemon_iou = _iou(result.voxels >= result.threshold, truth)
    scene_iou = _iou(_voxelize_back(obj), truth)
    assert abs(scene_iou - daemon_iou) <= 0.1, (scene_iou, daemon_iou)

    # The aligned camera looks at the object and shows the reference behind it.
    item = settings.history[-1]
    cam = item.camera
    assert item.object == obj and item.class_name and cam is not None
    forward = cam.matrix_world.to_3x3() @ __import__("mathutils").Vector((0, 0, -1))
    assert forward.angle(obj.location - cam.location) < 1e-3
    assert cam.data.sensor_fit == "HORIZONTAL"
    # The background is the square the daemon framed the cut-out render with (its alpha).
    assert item.framing_source == "alpha"
    left, top, right, bottom = item.framing
    side = round((right - left) * 64)
    assert (bottom - top) * 64 == pytest.approx(side, abs=0.01)
    assert 0.55 < 1 / (right - left) * 0.64 < 1.2  # the render's own framing, about
    assert cam.data.show_background_images
    background = cam.data.background_images[0].image
    assert tuple(background.size) == (side, side)
    render = bpy.context.scene.render
    assert cam.data.sensor_width == pytest.approx(
        sensor_width((side, side), (render.resolution_x, render.resolution_y)))
    azimuth = math.degrees(math.atan2(*(cam.location - obj.location).yx))
    assert (azimuth - item.azimuth + 180) % 360 - 180 == pytest.approx(0, abs=1e-3)


@pytest.mark.blender
def test_phone_photo_orientation_and_crop_reach_the_camera_background(addon, held_out, tmp_path):
    """A portrait JPEG stored sideways with EXIF orientation 6 (what phones write), cropped:
    the crop box marks the object, the daemon re-frames it, and the camera's background is
    the upright square the daemon reconstructed from (padded by its edge pixels where it
    reaches past the photo, as the daemon pads)."""
    bpy = addon
    from PIL import Image, ImageOps

    from blender_addon import runtime

    paths, _ = held_out
    render = Image.open(paths[0]).convert("RGBA")
    upright = Image.new("RGB", (64, 96), "white")
    upright.paste(render, (0, 16), render)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    phone = tmp_path / "phone.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(phone, quality=95, exif=exif.tobytes())

    settings = bpy.context.scene.unsup3d
    ref = settings.references.add()
    ref.image = bpy.data.images.load(str(phone))
    assert tuple(ref.image.size) == (96, 64)  # Blender shows it sideways
    edges = (0.0, 0.1, 1.0, 0.9)
    ref.use_crop, ref.crop = True, edges
    settings.align_camera = True
    assert bpy.ops.unsup3d.reconstruct() == {"FINISHED"}
    _wait(bpy)
    assert runtime.STATE.error == "", runtime.STATE.error

    # The crop box sent: x 0..64, y 10..86 of the upright 64 x 96 photo. Its longer side (76
    # px) spans 79 % of the photo's padded 96 px square, centred: a framing within the renders'
    # range, so the daemon keeps that square (x -16..80, y 0..96).
    item = settings.history[-1]
    assert item.framing_source == "user"
    want = (-16 / 64, 0.0, 80 / 64, 1.0)
    assert tuple(item.framing) == pytest.approx(want, abs=1.01 / 64)
    x0, y0 = round(item.framing[0] * 64), round(item.framing[1] * 96)
    n = round((item.framing[2] - item.framing[0]) * 64)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(phone)).convert("RGB"), dtype=float)
    expected = np.pad(upright, ((-y0, y0 + n - 96), (-x0, x0 + n - 64), (0, 0)), mode="edge")
    cam = item.camera
    background = cam.data.background_images[0].image
    assert tuple(background.size) == (n, n)
    assert background.packed_file is not None  # kept with the .blend file
    w, h = background.size
    pixels = np.empty(w * h * 4, np.float32)
    background.pixels.foreach_get(pixels)
    shown = pixels.reshape(h, w, 4)[::-1, :, :3] * 255.0
    assert np.abs(shown - expected).mean() < 4.0  # two JPEG decoders, same picture
    scene_render = bpy.context.scene.render
    assert cam.data.sensor_width == pytest.approx(
        sensor_width((w, h), (scene_render.resolution_x, scene_render.resolution_y)))
    # "Use Framing as Crop": the square becomes the crop box to adjust (its image part)
    assert bpy.ops.unsup3d.history_use_framing() == {"FINISHED"}
    clamped = tuple(min(max(v, 0.0), 1.0) for v in item.framing)
    assert tuple(ref.crop) == pytest.approx(clamped) and ref.use_crop


@pytest.mark.blender
def test_fused_mode_makes_one_object(addon, held_out):
    bpy = addon

    paths, _ = held_out
    settings = bpy.context.scene.unsup3d
    for path in paths:
        settings.references.add().image = bpy.data.images.load(str(path))
    settings.fuse, settings.mesh_format, settings.align_camera = True, "obj", False
    before = set(bpy.data.objects)
    bpy.ops.unsup3d.reconstruct()
    _wait(bpy)
    new = [o for o in bpy.data.objects if o not in before]
    assert [o.name for o in new] == [f"{paths[0].stem} (fused)"]
    assert max(new[0].dimensions) == pytest.approx(settings.target_size, rel=0.01)


@pytest.mark.blender
def test_daemon_down_bad_image_and_cancel(addon, held_out, tmp_path):
    bpy = addon
    from blender_addon import runtime

    paths, _ = held_out
    settings = bpy.context.scene.unsup3d
    settings.references.add().image = bpy.data.images.load(str(paths[0]))
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    endpoint = prefs.endpoint

    # Daemon down: a clear error within the timeout, no object, the panel reset.
    prefs.endpoint, prefs.timeout_s = _free_endpoint(), 1.0
    before = len(bpy.data.objects)
    started = time.monotonic()
    bpy.ops.unsup3d.reconstruct()
    _wait(bpy, timeout_s=10)
    assert time.monotonic() - started < 5
    assert "No answer" in runtime.STATE.error and "Start it" in runtime.STATE.hint
    assert len(bpy.data.objects) == before and not runtime.STATE.busy

    # A file that is not an image: the daemon's error, in words.
    prefs.endpoint, prefs.timeout_s = endpoint, 60.0
    junk = tmp_path / "junk.png"
    junk.write_bytes(paths[0].read_bytes())
    image = bpy.data.images.load(str(junk))
    settings.references.clear()
    settings.references.add().image = image
    junk.write_bytes(b"this is not a picture")
    bpy.ops.unsup3d.reconstruct()
    _wait(bpy)
    assert "could not use the image" in runtime.STATE.error, runtime.STATE.error
    assert len(bpy.data.objects) == before

    # Cancel while the daemon works on it: the daemon is told, nothing is imported.
    slow = FakeServer("slow")
    try:
        prefs.endpoint = slow.endpoint
        settings.references.clear()
        settings.references.add().image = bpy.data.images.load(str(paths[1]))
        bpy.ops.unsup3d.reconstruct()
        end = time.monotonic() + 10
        while "reconstruct" not in slow.ops and time.monotonic() < end:
            time.sleep(0.05)
        assert bpy.ops.unsup3d.cancel() == {"FINISHED"}
        assert not runtime.STATE.busy and "cancelled" in runtime.STATE.message
        while "cancel" not in slow.ops and time.monotonic() < end:
            time.sleep(0.05)
        assert "cancel" in slow.ops
        runtime.drain()
        assert len(bpy.data.objects) == before
    finally:
        slow.close()


@pytest.mark.blender
def test_empty_result_and_bad_address_are_explained(addon):
    bpy = addon
    from blender_addon import runtime

    empty = FakeServer("empty")
    try:
        prefs = bpy.context.preferences.addons["blender_addon"].preferences
        prefs.endpoint = empty.endpoint
        settings = bpy.context.scene.unsup3d
        for name in ("a", "b"):
            settings.references.add().image = bpy.data.images.new(name, 8, 8)
        bpy.ops.unsup3d.reconstruct()
        _wait(bpy, timeout_s=10)
        assert "No object found in a, b" in runtime.STATE.error
        assert "threshold" in runtime.STATE.hint and not runtime.STATE.busy
        assert empty.ops.count("reconstruct") == 2  # one empty image does not stop the rest
    finally:
        empty.close()

    # A malformed address: the status light says what is wrong instead of "checking".
    prefs.endpoint = "tcp://127.0.0.1:5557/"
    _probe_and_wait()
    assert runtime.STATE.server is not None and not runtime.STATE.server.ok
    assert runtime.STATE.server.message


@pytest.mark.blender
def test_busy_daemon_is_reported(addon):
    bpy = addon
    from blender_addon import runtime

    busy = FakeServer("busy")
    try:
        prefs = bpy.context.preferences.addons["blender_addon"].preferences
        prefs.endpoint = busy.endpoint
        image = bpy.data.images.new("probe", 8, 8)
        bpy.context.scene.unsup3d.references.add().image = image
        bpy.ops.unsup3d.reconstruct()
        _wait(bpy, timeout_s=10)
        assert "busy" in runtime.STATE.error and "again" in runtime.STATE.hint
    finally:
        busy.close()


@pytest.mark.blender
def test_status_light_history_in_blend_and_online_access(addon, held_out, tmp_path):
    bpy = addon
    from blender_addon import runtime
    from blender_addon.preferences import connection

    _probe_and_wait()
    status = runtime.STATE.server
    assert status is not None and status.ok and "step" in status.model and status.device == "cpu"

    paths, _ = held_out
    settings = bpy.context.scene.unsup3d
    settings.references.add().image = bpy.data.images.load(str(paths[1]))
    settings.mesh_format = "ply"
    bpy.ops.unsup3d.reconstruct()
    _wait(bpy)
    label, class_name = settings.history[-1].label, settings.history[-1].class_name
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))  # a fresh bpy.data from the file
    item = bpy.context.scene.unsup3d.history[-1]
    assert (item.label, item.class_name) == (label, class_name)
    assert item.object is not None and item.object.name == label
    assert bpy.ops.unsup3d.history_reimport() == {"FINISHED"}

    # A daemon on another machine needs Blender's online access (off in the bpy module).
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.endpoint = "tcp://192.0.2.1:5557"
    assert not bpy.app.online_access
    with pytest.raises(RuntimeError, match="Online access is off"):  # an ERROR report
        bpy.ops.unsup3d.reconstruct()
    assert "Online access" in runtime.STATE.error and not runtime.STATE.busy
    runtime.probe(connection())  # the status light does not reach out either
    assert not runtime.STATE.probe_pending
    assert runtime.STATE.server.message == "online access is off"


@pytest.mark.blender
def test_start_and_stop_a_local_daemon_from_the_preferences(addon):
    bpy = addon
    from blender_addon import runtime

    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.endpoint, prefs.daemon_python = _free_endpoint(), sys.executable
    assert bpy.ops.unsup3d.daemon_start() == {"FINISHED"}
    daemon = runtime.STATE.daemon
    try:
        with ReconClient(prefs.endpoint, timeout_s=60, retries=0) as client:
            assert client.health()["status"] == "ok"
    finally:
        t0 = time.monotonic()
        assert bpy.ops.unsup3d.daemon_stop() == {"FINISHED"}
        assert time.monotonic() - t0 < 0.5  # returns at once; the daemon drains on a thread
    assert runtime.STATE.daemon is None
    deadline = time.monotonic() + 15
    while daemon.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not daemon.running


@pytest.mark.blender
def test_reference_images_from_files_and_scene_with_crop(addon, held_out):
    bpy = addon
    from blender_addon import runtime

    paths, _ = held_out
    settings = bpy.context.scene.unsup3d
    folder = paths[0].parent
    files = [{"name": p.name} for p in paths]
    assert bpy.ops.unsup3d.add_images(directory=str(folder), files=files) == {"FINISHED"}
    assert [ref.image.name for ref in settings.references] == [p.name for p in paths]
    assert bpy.ops.unsup3d.add_images(directory=str(folder), files=files) == {"CANCELLED"}

    # A reference-image empty (what Add > Image > Reference makes), selected.
    empty = bpy.data.objects.new("ref", None)
    empty.empty_display_type = "IMAGE"
    empty.data = bpy.data.images.new("painted", 32, 32)
    bpy.context.scene.collection.objects.link(empty)
    empty.select_set(True)
    assert bpy.ops.unsup3d.add_scene_images() == {"FINISHED"}
    assert settings.references[-1].image.name == "painted"
    assert bpy.ops.unsup3d.remove_image() == {"FINISHED"} and len(settings.references) == 2

    # Cropping to the object's box still reconstructs (the daemon applies the crop).
    settings.references.remove(1)
    ref = settings.references[0]
    ref.use_crop, ref.crop = True, (0.1, 0.1, 0.9, 0.9)
    settings.align_camera = False
    bpy.ops.unsup3d.reconstruct()
    _wait(bpy)
    assert runtime.STATE.error == "" and len(settings.history) == 1
    assert bpy.ops.unsup3d.clear_images() == {"FINISHED"} and len(settings.references) == 0


class RecordingLayout:
    """Stands in for ``UILayout`` (no UI in background mode) and checks what a panel asks
    for: properties that exist, operators that are registered, lists that are registered."""

    def __init__(self, bpy, log: list):
        self._bpy, self._log = bpy, log

    def __getattr__(self, name):  # scale_y, enabled, use_property_split, ...
        return None

    def _child(self, *args, **kwargs):
        return RecordingLayout(self._bpy, self._log)

    row = column = box = split = _child

    def _check_icon(self, kwargs):
        icon = kwargs.get("icon")
        if icon is None:
            return
        # Renamed in Blender 4.4 (SEQUENCE_COLOR_* -> STRIP_COLOR_*): the add-on supports 4.2.
        assert not icon.startswith(("STRIP_COLOR", "SEQUENCE_COLOR")), icon
        known = self._bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"]
        assert icon in known.enum_items.keys(), icon

    def label(self, text="", **kwargs):
        self._check_icon(kwargs)
        self._log.append(("label", text))

    def prop(self, data, name, **kwargs):
        self._check_icon(kwargs)
        assert name in data.bl_rna.properties, f"no property {name!r} on {data}"
        self._log.append(("prop", name))

    def operator(self, idname, **kwargs):
        self._check_icon(kwargs)
        module, op = idname.split(".")
        assert getattr(getattr(self._bpy.ops, module), op).poll is not None
        assert hasattr(self._bpy.types, f"{module.upper()}_OT_{op}"), idname
        self._log.append(("operator", idname))

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kw):
        assert hasattr(self._bpy.types, list_type), list_type
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self._log.append(("list", list_type))

    def progress(self, factor=0.0, text="", **kwargs):
        assert 0.0 <= factor <= 1.0
        self._log.append(("progress", text))

    def template_icon(self, **kwargs):
        self._log.append(("icon", kwargs.get("icon_value")))

    def icon(self, data):
        return 0


@pytest.mark.blender
def test_panels_draw_what_exists(addon, held_out):
    bpy = addon
    from blender_addon import panel, runtime

    paths, _ = held_out
    settings = bpy.context.scene.unsup3d
    settings.references.add().image = bpy.data.images.load(str(paths[0]))
    settings.references[0].use_crop = True
    runtime.fail("The daemon is busy.", "Wait a moment.")

    def draw(log: list) -> list:
        for cls in panel.CLASSES:
            if issubclass(cls, bpy.types.Panel):
                fake = type("P", (), {"layout": RecordingLayout(bpy, log)})()
                cls.draw(fake, bpy.context)
        return log

    from blender_addon.jobs import ServerStatus
    from blender_addon.preferences import connection

    endpoint = connection().endpoint
    for status, expected in ((ServerStatus(endpoint, True, "ready", "unsupervised", "cpu"),
                              "unsupervised on cpu"),
                             (ServerStatus(endpoint, False, "no reply"), "no reply")):
        runtime.STATE.server = status
        assert any(kind == "label" and expected in text for kind, text in draw([]))
    idle = draw([])
    rows: list = []
    panel.UNSUP3D_UL_references.draw_item(None, bpy.context, RecordingLayout(bpy, rows),
                                          settings, settings.references[0], 0, settings,
                                          "active_reference")
    assert ("label", paths[0].name) in rows and ("prop", "use_crop") in rows
    assert ("operator", "unsup3d.reconstruct") in idle and ("prop", "crop") in idle
    assert ("label", "The daemon is busy.") in idle
    assert ("list", "UNSUP3D_UL_references") in idle and ("list", "UNSUP3D_UL_history") in idle
    bpy.ops.unsup3d.reconstruct()
    try:
        busy = draw([])
        assert ("operator", "unsup3d.cancel") in busy
        assert any(kind == "progress" for kind, _ in busy)
    finally:
        runtime.cancel()
