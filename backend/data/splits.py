"""The split file (its one owner): which shapes are source training, source validation,
target training and test.

Shape ids of the three groups are disjoint. ``test`` is exactly the shapes that
:func:`synth_render.shards.asset_split` puts in the ``"test"`` asset pool (20 %), so test
images never share a background or HDRI with training images. The rest is split by a stable
hash into source (5/8, i.e. 50 % of all shapes; a tenth of it is held out as ``source_val``)
and target (3/8, i.e. 30 %). The assignment depends only on the shape id, so adding shapes
never moves existing ones between splits.

File format (JSON)::

    {"version": 1, "source_train": [...], "source_val": [...], "target_train": [...],
     "test": [...]}

each a sorted list of ``"<synset>/<model_id>"`` keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synth_render.atomic import atomic_write_text
from synth_render.shards import asset_split, stable_hash

VERSION = 1
SUBSETS = ("source_train", "source_val", "target_train", "test")


@dataclass
class Splits:
    source_train: list[str] = field(default_factory=list)
    source_val: list[str] = field(default_factory=list)
    target_train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)

    def subset(self, name: str) -> list[str]:
        if name not in SUBSETS:
            raise ValueError(f"unknown subset {name!r}; expected one of {SUBSETS}")
        return getattr(self, name)


def assign(key: str) -> str:
    """The subset of one ``<synset>/<model_id>`` key."""
    model_id = key.split("/", 1)[1]
    if asset_split(model_id) == "test":
        return "test"
    h = stable_hash("domain-split:" + model_id) % 80
    if h < 50:
        return "source_val" if h < 5 else "source_train"
    return "target_train"


def make_splits(keys: Iterable[str]) -> Splits:
    """Assign every key to its subset."""
    splits = Splits()
    for key in sorted(set(keys)):
        splits.subset(assign(key)).append(key)
    return splits


def save_splits(splits: Splits, path: str | os.PathLike) -> None:
    """Write the split file atomically."""
    atomic_write_text(path, json.dumps({"version": VERSION, **asdict(splits)}, indent=1))


def load_splits(path: str | os.PathLike) -> Splits:
    """Read a split file; clear error on a wrong version or overlapping subsets."""
    data = json.loads(Path(path).read_text())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: split file version {data.get('version')!r}, expected {VERSION}")
    splits = Splits(**{name: list(data.get(name, [])) for name in SUBSETS})
    seen: dict[str, str] = {}
    for name in SUBSETS:
        for key in splits.subset(name):
            if key in seen:
                raise ValueError(f"{path}: {key} is in both {seen[key]} and {name}")
            seen[key] = name
    return splits


def write_model_lists(splits: Splits, directory: str | os.PathLike) -> dict[str, Path]:
    """One ``<subset>.txt`` per subset, for ``python -m synth_render render --models``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in SUBSETS:
        paths[name] = directory / f"{name}.txt"
        paths[name].write_text("".join(f"{k}\n" for k in splits.subset(name)))
    return paths
