"""Taxonomy, shards, ShapeNet v1/v2 trees and R2N2 render metadata: the pure layout code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth_render import r2n2, shapenet, shards, taxonomy
from synth_render.shapenet import Part


def _box_part(offset=(0.0, 0.0, 0.0), material="wood", color=(0.5, 0.3, 0.1)) -> Part:
    import trimesh

    box = trimesh.creation.box(extents=(1.0, 2.0, 0.5))
    return Part(np.asarray(box.vertices) + offset, np.asarray(box.faces), material, color)


def test_classes_resolve_by_name_and_synset():
    assert taxonomy.resolve_classes("chair, 04379243") == ["03001627", "04379243"]
    assert taxonomy.resolve_classes("all") == list(taxonomy.ALL_SYNSETS)
    assert len(taxonomy.ALL_SYNSETS) == 13
    with pytest.raises(ValueError, match="unknown class 'chiar'"):
        taxonomy.resolve_classes("chiar")


def test_shards_partition_and_are_stable():
    keys = [f"03001627/{i:032x}" for i in range(200)]
    parts = [shards.take_shard(keys, keys, (k, 3)) for k in range(3)]
    assert sorted(sum(parts, [])) == sorted(keys)
    assert all(parts)  # every shard gets work
    # Adding items never moves existing ones between shards.
    more = keys + [f"04379243/{i:032x}" for i in range(50)]
    assert set(parts[1]) <= set(shards.take_shard(more, more, (1, 3)))
    assert shards.parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError):
            shards.parse_shard(bad)


def test_asset_split_holds_out_about_a_fifth():
    ids = [f"{i:032x}" for i in range(2000)]
    test_share = sum(shards.asset_split(i) == "test" for i in ids) / len(ids)
    assert 0.17 < test_share < 0.23


def test_v2_write_is_normalized_and_found(tmp_path):
    parts = [_box_part(), _box_part(offset=(3.0, 0.0, 0.0), material="metal", color=(0.6,) * 3)]
    path = shapenet.write_v2_model(tmp_path, "03001627", "a" * 32, parts)
    shapenet.write_taxonomy(tmp_path, {"03001627": 1})
    assert path == tmp_path / "03001627" / ("a" * 32) / "models" / "model_normalized.obj"
    mesh = shapenet.load_mesh(path)
    lo, hi = mesh.bounds
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-5)
    mtl = path.with_suffix(".mtl").read_text()
    assert "newmtl wood" in mtl and "newmtl metal" in mtl
    assert shapenet.read_taxonomy(tmp_path) == {"03001627": "chair"}
    taxo = json.loads((tmp_path / "taxonomy.json").read_text())
    assert taxo[0]["synsetId"] == "03001627" and taxo[0]["numInstances"] == 1
    (ref,) = shapenet.find_models(tmp_path)
    assert (ref.synset, ref.model_id, ref.mesh_path) == ("03001627", "a" * 32, path)


def test_find_models_reads_v1_and_v2_trees(tmp_path):
    v1 = tmp_path / "04379243" / "t1" / "model.obj"
    shapenet.write_obj(v1, [_box_part()])
    shapenet.write_v2_model(tmp_path, "03001627", "c1", [_box_part()])
    (tmp_path / "03001627" / "empty_dir").mkdir()  # no mesh: ignored
    refs = shapenet.find_models(tmp_path)
    assert [r.key for r in refs] == ["03001627/c1", "04379243/t1"]
    assert [r.key for r in shapenet.find_models(tmp_path, ["04379243"])] == ["04379243/t1"]
    with pytest.raises(FileNotFoundError):
        shapenet.find_models(tmp_path / "missing")


def test_load_mesh_rejects_empty_and_garbage(tmp_path):
    empty = tmp_path / "empty.obj"
    empty.write_text("")
    garbage = tmp_path / "garbage.obj"
    garbage.write_bytes(b"\x00\xff binary junk\nf 1 2 3\n")
    for path in (empty, garbage):
        with pytest.raises(ValueError, match=str(path.name)):
            shapenet.load_mesh(path)


def test_r2n2_protocol_ranges_and_metadata_round_trip(tmp_path):
    views = r2n2.sample_views(np.random.default_rng(0), 24)
    assert len(views) == 24
    for v in views:
        assert 0 <= v.azimuth < 360 and 25 <= v.elevation < 30
        assert 0.65 <= v.distance_ratio < 0.95
        assert np.linalg.norm(v.location_blender()) == pytest.approx(v.distance)
    rdir = r2n2.rendering_dir(tmp_path, "03001627", "m")
    for i in range(len(views)):
        (rdir / r2n2.view_file_name(i)).parent.mkdir(parents=True, exist_ok=True)
        (rdir / r2n2.view_file_name(i)).write_bytes(b"png")
    assert not r2n2.is_complete(rdir)
    r2n2.write_index(rdir, views)
    assert r2n2.is_complete(rdir, 24) and not r2n2.is_complete(rdir, 8)
    assert r2n2.read_renderings(rdir)[:2] == ["00.png", "01.png"]
    back = r2n2.read_metadata(rdir)
    assert [round(v.azimuth, 4) for v in back] == [round(v.azimuth, 4) for v in views]
    first = (rdir / r2n2.METADATA_TXT).read_text().splitlines()[0].split()
    assert len(first) == 5 and first[2] == "0" and first[4] == "25"
    # On disk the azimuth is R2N2's: 90 minus the canonical one, mod 360.
    assert float(first[0]) == pytest.approx((90 - views[0].azimuth) % 360, abs=1e-5)
    (rdir / "03.png").unlink()  # a lost image makes the model incomplete again
    assert not r2n2.is_complete(rdir)


def test_reads_r2n2_metadata_as_published():
    """A line in the shape of 3D-R2N2's published metadata files: R2N2's azimuth ``a`` is the
    canonical viewpoint at ``90 - a`` (mod 360), elevation and distance unchanged."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        Path(d, r2n2.METADATA_TXT).write_text(
            "293.9497932920335 25.50279137737327 0 0.8231043877917051 25\n"
        )
        (v,) = r2n2.read_metadata(d)
    got = (v.azimuth, v.elevation, v.distance_ratio)
    assert got == pytest.approx((90 - 293.94979 + 360, 25.50279, 0.8231), abs=1e-4)


def test_frame_conversions_are_inverse():
    p = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(r2n2.shapenet_to_blender(r2n2.blender_to_shapenet(p)), p)
    # ShapeNet's +Y up is Blender's +Z up; ShapeNet's -Z front is Blender's +Y.
    np.testing.assert_allclose(r2n2.shapenet_to_blender([0, 1, 0]), [0, 0, 1])
    np.testing.assert_allclose(r2n2.shapenet_to_blender([0, 0, -1]), [0, 1, 0])


def test_select_models_applies_classes_list_and_shard(tmp_path):
    for synset in ("03001627", "04379243"):
        for i in range(4):
            shapenet.write_v2_model(tmp_path, synset, f"m{i}", [_box_part()])
    listing = tmp_path / "split.txt"
    listing.write_text("# target-train shapes\n03001627/m1\n03001627/m2\n04379243/m0\n")
    keys = [r.key for r in shapenet.select_models(tmp_path, model_list=listing)]
    assert keys == ["03001627/m1", "03001627/m2", "04379243/m0"]
    chairs = shapenet.select_models(tmp_path, ["03001627"], model_list=listing)
    assert [r.key for r in chairs] == ["03001627/m1", "03001627/m2"]
    halves = [shapenet.select_models(tmp_path, shard=(k, 2)) for k in range(2)]
    assert sorted(r.key for h in halves for r in h) == sorted(
        r.key for r in shapenet.find_models(tmp_path))
    listing.write_text("not-a-key\n")
    with pytest.raises(ValueError, match="expected"):
        shapenet.select_models(tmp_path, model_list=listing)


def test_an_empty_selection_is_an_error_and_unknown_keys_are_named(tmp_path, caplog):
    shapenet.write_v2_model(tmp_path, "03001627", "m0", [_box_part()])
    listing = tmp_path / "split.txt"
    listing.write_text("03001627/m0\n03001627/elsewhere\n")
    with caplog.at_level("WARNING", logger="synth_render.shapenet"):
        assert [r.key for r in shapenet.select_models(tmp_path, model_list=listing)] == [
            "03001627/m0"]
    assert "1 of the 2 models listed" in caplog.text and "03001627/elsewhere" in caplog.text
    listing.write_text("chair/abc\n")  # another tree's keys
    with pytest.raises(ValueError, match="no models selected .* from the list"):
        shapenet.select_models(tmp_path, model_list=listing)
    with pytest.raises(ValueError, match="no models selected .*classes 04379243"):
        shapenet.select_models(tmp_path, ["04379243"])
    with pytest.raises(ValueError, match="no models selected"):  # --shapes one level off
        shapenet.select_models(tmp_path / "03001627")


@pytest.mark.parametrize("argv", [["shapes", "--per-class", "-3"], ["render", "--views", "0"],
                                  ["render", "--size", "0"], ["voxelize", "--res", "x"],
                                  ["render", "--timeout", "nan"]])
def test_counts_and_sizes_below_one_are_refused_by_the_cli(tmp_path, argv, capsys):
    from synth_render.cli import main

    paths = ["--out", str(tmp_path / "out")] + ([] if argv[0] == "shapes" else
                                                 ["--shapes", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        main(argv + paths)
    assert exc.value.code == 2
    assert f"argument {argv[1]}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
