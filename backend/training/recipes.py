"""Named training recipes (``backend train --config <name|file.toml>``): a run's settings and
its stages, so that a shipped model's training is code, not prose.

A recipe is a TOML file (``recipes/<name>.toml`` in this package, or any path):

- ``[train]`` (and ``[train.model]``): ``TrainConfig`` fields shared by every stage;
- ``[[stages]]``: each stage's ``steps`` (the schedule's length: a later stage resumes the
  run with a longer schedule, which restarts the cosine learning rate warm, as the shipped
  weights were trained) and optional ``snapshot_every`` / ``snapshot_from`` (copies of
  ``model.pt`` kept under ``<run>/snapshots/``);
- ``[average]`` ``from_step``: the final model is the mean of the snapshots from that step on
  (``backend average``), written to ``<run>/averaged.pt``;
- ``description`` and ``data`` (how to build its data set): for people and the log.

Every stage runs with ``--resume``, so ``backend train --config <name>`` continues where a
killed or finished stage left off, across sessions.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from backend.models import ModelConfig

from .config import TrainConfig

log = logging.getLogger(__name__)
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
# What a command line may change in a recipe: where and how it runs, never what it trains.
OVERRIDABLE = ("data", "target_images", "runs", "name", "device", "amp", "threads",
               "num_workers", "log_every", "eval_every", "checkpoint_every")


@dataclass(frozen=True)
class Stage:
    steps: int
    snapshot_every: int = 0
    snapshot_from: int = 0


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    data: str
    train: dict  # TrainConfig fields as TOML gives them (model: a partial ModelConfig)
    stages: tuple[Stage, ...]
    average_from: int | None = None

    def stage_configs(self, overrides: dict | None = None) -> list[TrainConfig]:
        """One ``TrainConfig`` per stage, as ``backend train`` runs them."""
        overrides = overrides or {}
        bad = sorted(set(overrides) - set(OVERRIDABLE))
        if bad:
            flags = ", ".join("--" + b.replace("_", "-") for b in bad)
            allowed = ", ".join("--" + o.replace("_", "-") for o in OVERRIDABLE)
            raise ValueError(f"{flags} would change what recipe {self.name!r} trains; with "
                             f"--config only {allowed} may be given")
        model = dataclasses.replace(ModelConfig(), **_tuples(self.train.get("model", {})))
        base = {k: v for k, v in self.train.items() if k != "model"}
        cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **base, "model": model.to_dict()})
        cfg = dataclasses.replace(cfg, **overrides, recipe=self.name, resume=True)
        return [dataclasses.replace(cfg, steps=s.steps, snapshot_every=s.snapshot_every,
                                    snapshot_from=s.snapshot_from) for s in self.stages]


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name, or a recipe file; ``ValueError`` naming what exists."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = RECIPES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise ValueError(f"no recipe {str(name_or_path)!r}; shipped recipes: "
                             f"{', '.join(available_recipes())} (or a path to a .toml file)")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    unknown = set(raw) - {"description", "data", "train", "stages", "average"}
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {sorted(unknown)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = set(raw.get("train", {})) - fields
    if bad:
        raise ValueError(f"{path}: [train] has no field(s) {sorted(bad)}")
    stages = tuple(Stage(**s) for s in raw.get("stages", []))
    if not stages or any(b.steps <= a.steps for a, b in zip(stages, stages[1:], strict=False)):
        raise ValueError(f"{path}: needs [[stages]] with increasing steps")
    average = raw.get("average", {}).get("from_step")
    return Recipe(path.stem, raw.get("description", ""), raw.get("data", "").strip(),
                  raw.get("train", {}), stages, average)


def run_recipe(recipe: Recipe, overrides: dict | None = None) -> dict:
    """Train every stage (each resumes the one before; finished stages return at once), then
    average the snapshots when the recipe says so. Returns the last stage's result, with
    ``averaged`` (the path) when averaged."""
    from .average import AverageConfig, run_average
    from .train import train

    configs = recipe.stage_configs(overrides)
    log.info("recipe %s: %s; %d stage(s) to %d steps in %s. Its data: %s", recipe.name,
             recipe.description, len(configs), configs[-1].steps, configs[-1].run_dir,
             recipe.data or "as given")
    result = {}
    for i, cfg in enumerate(configs, 1):
        log.info("recipe %s: stage %d/%d, to step %d", recipe.name, i, len(configs), cfg.steps)
        result = train(cfg)
    if recipe.average_from is not None:
        last = configs[-1]
        snapshots = sorted(p for p in (last.run_dir / "snapshots").glob("model-*.pt")
                           if int(p.stem.split("-")[1]) >= recipe.average_from)
        out = last.run_dir / "averaged.pt"
        run_average(AverageConfig(snapshots, out, last.data, last.val_views, last.device))
        result["averaged"] = str(out)
    return result
