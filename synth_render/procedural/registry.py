"""Map each synset id to its generator function."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..shapenet import Part
from ..taxonomy import resolve_class
from . import electronics, furniture, lighting, rifle, storage, vehicles

ShapeGenerator = Callable[[np.random.Generator], list[Part]]

GENERATORS: dict[str, ShapeGenerator] = {
    "02691156": vehicles.airplane,
    "02828884": furniture.bench,
    "02933112": storage.cabinet,
    "02958343": vehicles.car,
    "03001627": furniture.chair,
    "03211117": electronics.display,
    "03636649": lighting.lamp,
    "03691459": electronics.loudspeaker,
    "04090263": rifle.rifle,
    "04256520": furniture.sofa,
    "04379243": furniture.table,
    "04401088": electronics.telephone,
    "04530566": vehicles.watercraft,
}


def generate_shape(synset: str, rng: np.random.Generator) -> list[Part]:
    """The parts of one random shape of ``synset`` (id or class name), canonical frame."""
    synset = resolve_class(synset)
    if synset not in GENERATORS:
        raise ValueError(f"no procedural generator for synset {synset}")
    return GENERATORS[synset](rng)
