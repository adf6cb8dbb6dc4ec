"""Named recipes: the shipped one resolves to how the shipped weights were trained, and a
recipe trains its stages (each resuming the last), keeps snapshots and averages them."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import torch
from test_train import make_tiny_dataset

from backend.cli import main as backend_main
from backend.core.checkpoint import DEFAULT_WEIGHTS, load_model
from backend.models import ModelConfig
from backend.training.recipes import available_recipes, load_recipe
from synth_render.taxonomy import ALL_SYNSETS


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_data")
    make_tiny_dataset(root)
    return root


def test_the_shipped_recipe_resolves_to_the_shipped_weights_training():
    """Stage by stage, what backend/weights/default.pt and its model card record: mode,
    network, input size, 7 500 -> 15 000 -> 30 000 steps (each resuming the last), snapshots
    every 500 steps whose mean is the file (its ``averaged_steps``), the 10x data set."""
    shipped = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    info = shipped["info"]
    recipe = load_recipe("shipped")
    stages = recipe.stage_configs()
    assert [c.steps for c in stages] == [7500, 15000, info["step"]]
    for cfg in stages:
        model = ModelConfig.from_dict({**cfg.model.to_dict(), "image_size": cfg.image_size,
                                       "num_classes": len(ALL_SYNSETS)})
        assert model.to_dict() == shipped["config"]
        assert (cfg.mode, cfg.image_size) == (info["mode"], info["image_size"])
        assert cfg.resume and cfg.recipe == "shipped"
        assert cfg.data == Path("data/procedural-x10") and cfg.seed == 0
        assert len({c.run_dir for c in stages}) == 1  # one run, resumed
    last = stages[-1]
    snapshots = [s for s in range(last.snapshot_from, last.steps + 1, last.snapshot_every)
                 if s >= recipe.average_from]
    assert snapshots == info["metrics"]["averaged_steps"]
    # The file names its recipe and carries the last stage's full config.
    assert info["training"]["recipe"] == "shipped"
    assert info["training"]["config"] == last.to_dict()


def test_every_shipped_recipe_loads():
    assert {"shipped", "standard", "quick"} <= set(available_recipes())
    for name in available_recipes():
        assert load_recipe(name).stage_configs()


def test_unknown_recipes_and_fields_are_refused(tmp_path):
    with pytest.raises(ValueError, match="shipped recipes: .*shipped"):
        load_recipe("no-such-recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlearning_rate = 1\n[[stages]]\nsteps = 2\n')
    with pytest.raises(ValueError, match="learning_rate"):
        load_recipe(bad)
    bad.write_text('[[stages]]\nsteps = 4\n[[stages]]\nsteps = 2\n')
    with pytest.raises(ValueError, match="increasing steps"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="--steps would change .* only --data, .* may be given"):
        load_recipe("quick").stage_configs({"steps": 5})


def test_a_recipe_trains_its_stages_snapshots_and_averages(tiny_data, tmp_path):
    recipe = tmp_path / "two-stage.toml"
    recipe.write_text(textwrap.dedent(f"""
        description = "two stages on the tiny set"
        [train]
        data = "{tiny_data}"
        mode = "source-only"
        batch_size = 4
        threads = 1
        num_workers = 0
        augment = false
        log_every = 1
        eval_every = 1000
        checkpoint_every = 1000
        [train.model]
        enc_channels = [8, 8, 16, 16, 16]
        vox_channels = [16, 8, 8]
        latent_dim = 16
        [[stages]]
        steps = 2
        [[stages]]
        steps = 4
        snapshot_every = 1
        snapshot_from = 3
        [average]
        from_step = 3
        """))
    runs = tmp_path / "runs"
    argv = ["train", "--config", str(recipe), "--runs", str(runs), "--name", "r"]
    assert backend_main(argv) == 0
    run = runs / "r"
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["model-000003.pt",
                                                                     "model-000004.pt"]
    _, info = load_model(run / "model.pt", "cpu")
    assert info.step == 4
    assert info.training["recipe"] == "two-stage"
    assert info.training["config"]["steps"] == 4 and info.training["config"]["runs"] == str(runs)
    _, averaged = load_model(run / "averaged.pt", "cpu")
    assert averaged.metrics["averaged_steps"] == [3, 4]
    # Run again: every stage is finished, nothing is retrained, the snapshots stay.
    before = (run / "model.pt").stat().st_mtime_ns
    assert backend_main(argv) == 0
    assert (run / "model.pt").stat().st_mtime_ns == before


def test_recipe_refuses_flags_that_change_what_it_trains(tmp_path, caplog):
    argv = ["train", "--config", "quick", "--runs", str(tmp_path)]
    assert backend_main([*argv, "--steps", "5"]) == 2
    assert backend_main([*argv, "--model-latent-dim", "8"]) == 2
    assert "--steps would change what recipe 'quick' trains" in caplog.text
    assert "--model would change" in caplog.text
    assert not any(tmp_path.iterdir())


def test_a_bare_train_says_what_it_trains_instead(tiny_data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="backend.training.cli"):
        assert backend_main(["train", "--data", str(tiny_data), "--runs", str(tmp_path),
                             "--mode", "source-only", "--steps", "1", "--batch-size", "2",
                             "--model-enc-channels", "8", "8", "16", "16", "16",
                             "--model-vox-channels", "16", "8", "8", "--model-latent-dim",
                             "16", "--threads", "1", "--loader-workers", "0"]) == 0
    assert "not a recipe" in caplog.text and "--config shipped" in caplog.text
