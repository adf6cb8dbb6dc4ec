"""The procedural shape library: closed parts, determinism, v2 layout, CLI, variety."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from synth_render import cli, shapenet
from synth_render.config import ShapesConfig
from synth_render.procedural import GENERATORS, generate_shape, model_id, run_shapes, shape_rng
from synth_render.taxonomy import ALL_SYNSETS, NAME_TO_SYNSET, class_name


def _tree_bytes(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_class_has_a_generator():
    assert set(GENERATORS) == set(ALL_SYNSETS)


@pytest.mark.parametrize("synset", ALL_SYNSETS, ids=class_name)
def test_parts_are_closed_meshes(synset):
    for i in range(4):
        parts = generate_shape(synset, shape_rng(0, synset, i))
        assert parts, class_name(synset)
        total = 0
        for part in parts:
            mesh = trimesh.Trimesh(part.vertices, part.faces, process=False)
            assert mesh.is_watertight, (class_name(synset), i, part.material)
            assert mesh.is_winding_consistent and mesh.volume > 0, (class_name(synset), i)
            assert all(0.0 <= c <= 1.0 for c in part.color)
            total += len(part.faces)
        assert 20 <= total <= 20_000


def test_generate_shape_accepts_class_names():
    a = generate_shape("chair", shape_rng(0, NAME_TO_SYNSET["chair"], 0))
    b = generate_shape(NAME_TO_SYNSET["chair"], shape_rng(0, NAME_TO_SYNSET["chair"], 0))
    assert all(np.array_equal(p.vertices, q.vertices) for p, q in zip(a, b, strict=True))
    with pytest.raises(ValueError):
        generate_shape("spaceship", np.random.default_rng(0))


def test_model_ids_are_shapenet_like_and_distinct():
    ids = {model_id(0, s, i) for s in ALL_SYNSETS for i in range(20)}
    assert len(ids) == 13 * 20
    assert all(len(m) == 32 and int(m, 16) >= 0 for m in ids)
    assert model_id(0, ALL_SYNSETS[0], 0) != model_id(1, ALL_SYNSETS[0], 0)


def test_v2_layout_taxonomy_and_normalization(tmp_path):
    synsets = [NAME_TO_SYNSET["table"], NAME_TO_SYNSET["car"]]
    assert run_shapes(ShapesConfig(tmp_path, synsets, per_class=2, seed=3)) == 0
    refs = shapenet.find_models(tmp_path)
    assert len(refs) == 4
    for ref in refs:
        assert ref.mesh_path == tmp_path / ref.synset / ref.model_id / shapenet.V2_MESH
        assert ref.mesh_path.with_suffix(".mtl").is_file()
        text = ref.mesh_path.read_text()
        assert text.startswith("mtllib model_normalized.mtl") and "usemtl " in text
        verts = np.array(
            [
                list(map(float, line.split()[1:]))
                for line in text.splitlines()
                if line.startswith("v ")
            ]
        )
        lo, hi = verts.min(0), verts.max(0)
        assert np.linalg.norm(hi - lo) == pytest.approx(1.0, abs=1e-4)
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-5)
        mtl = ref.mesh_path.with_suffix(".mtl").read_text()
        assert mtl.count("newmtl") >= 2 and "Kd " in mtl
    taxonomy = json.loads((tmp_path / "taxonomy.json").read_text())
    assert {e["synsetId"]: e["numInstances"] for e in taxonomy} == {s: 2 for s in synsets}
    assert shapenet.read_taxonomy(tmp_path)[NAME_TO_SYNSET["table"]] == "table"


def test_same_seed_same_bytes_and_prefix_property(tmp_path):
    synsets = [NAME_TO_SYNSET["lamp"], NAME_TO_SYNSET["watercraft"]]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_shapes(ShapesConfig(a, synsets, per_class=2, seed=7))
    run_shapes(ShapesConfig(b, synsets, per_class=2, seed=7))
    assert _tree_bytes(a) == _tree_bytes(b)
    run_shapes(ShapesConfig(c, synsets, per_class=3, seed=7))
    big = _tree_bytes(c)
    for key, data in _tree_bytes(a).items():
        if key != "taxonomy.json":
            assert big[key] == data, key
    assert len(shapenet.find_models(c)) == 6
    other = tmp_path / "other"
    run_shapes(ShapesConfig(other, synsets, per_class=1, seed=8))
    tree_files = {"taxonomy.json", "procedural.json"}
    assert not set(_tree_bytes(other)) - tree_files & set(_tree_bytes(a))
    # Another seed into the same tree would make one data set of two: refused.
    with pytest.raises(ValueError, match="holds shapes of --seed 8, not 7"):
        run_shapes(ShapesConfig(other, synsets, per_class=1, seed=7))
    assert len(shapenet.find_models(other)) == 2


def test_rerun_skips_existing_models_and_counts_the_whole_tree(tmp_path):
    chair, sofa = NAME_TO_SYNSET["chair"], NAME_TO_SYNSET["sofa"]
    run_shapes(ShapesConfig(tmp_path, [chair], per_class=2, seed=0))
    mesh = shapenet.find_models(tmp_path)[0].mesh_path
    stamp = mesh.stat().st_mtime_ns
    run_shapes(ShapesConfig(tmp_path, [chair, sofa], per_class=2, seed=0))
    assert mesh.stat().st_mtime_ns == stamp  # not rewritten
    counts = {
        e["synsetId"]: e["numInstances"]
        for e in json.loads((tmp_path / "taxonomy.json").read_text())
    }
    assert counts == {chair: 2, sofa: 2}


def test_cli_accepts_names_and_synset_ids(tmp_path):
    out = tmp_path / "lib"
    rc = cli.main(
        [
            "shapes",
            "--out",
            str(out),
            "--classes",
            "rifle,04401088",
            "--per-class",
            "1",
            "--seed",
            "2",
        ]
    )
    assert rc in (0, None)
    found = {ref.synset for ref in shapenet.find_models(out)}
    assert found == {NAME_TO_SYNSET["rifle"], "04401088"}


def test_chairs_vary():
    """Eight chairs: different part counts, materials and proportions, not one template."""
    synset = NAME_TO_SYNSET["chair"]
    shapes = [generate_shape(synset, shape_rng(0, synset, i)) for i in range(8)]
    assert len({len(parts) for parts in shapes}) >= 4
    extents = []
    for parts in shapes:
        v = shapenet.normalize_v2(np.concatenate([p.vertices for p in parts]))
        extents.append(np.round(v.max(0) - v.min(0), 2))
    assert len({tuple(e) for e in extents}) == 8
    materials = {frozenset(p.material for p in parts) for parts in shapes}
    assert len(materials) >= 4


def test_canonical_frame_front_is_minus_z():
    """A car's headlights sit at its front, a chair's seat front edge faces -Z."""
    car = NAME_TO_SYNSET["car"]
    for i in range(3):
        parts = generate_shape(car, shape_rng(0, car, i))
        allv = np.concatenate([p.vertices for p in parts])
        lights = np.concatenate([p.vertices for p in parts if p.material.startswith("headlights")])
        assert lights[:, 2].mean() < allv[:, 2].mean()
        assert np.ptp(allv[:, 2]) > np.ptp(allv[:, 0])  # long along Z, +Y up
        assert np.ptp(allv[:, 2]) > np.ptp(allv[:, 1])


def test_variety_benchmark_passes():
    """The acceptance figures of benchmarks/shape_variety.py at seed 0 (about 5 s)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "shape_variety.py"
    spec = importlib.util.spec_from_file_location("shape_variety", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for synset in ALL_SYNSETS:
        assert mod.class_variety(synset, 30, 0, 32)["pass"], class_name(synset)


def test_near_duplicates_are_redrawn_whatever_the_seed():
    """Seed 1 used to draw a phone slab twice (IoU 0.98); the library redraws such candidates."""
    from synth_render.procedural.library import DUPLICATE_IOU, class_shapes

    synset = NAME_TO_SYNSET["telephone"]
    grids = np.stack([g for _, _, g in class_shapes(1, synset, 30)]).reshape(30, -1)
    inter = grids.astype(np.float32) @ grids.T.astype(np.float32)
    size = grids.sum(1)
    iou = inter / (size[:, None] + size[None, :] - inter)
    np.fill_diagonal(iou, 0)
    assert iou.max() < DUPLICATE_IOU
