"""Procedural stand-ins for ShapeNet's 13 3D-R2N2 classes, written in the v2 layout.

``generate_shape(synset, rng)`` returns the parts of one shape; ``run_shapes(cfg)`` writes a
whole library. Generators live in one module per family of classes (furniture, storage,
vehicles, electronics, lighting); ``parts`` holds the mesh primitives they share.
"""

from .library import model_id, run_shapes, shape_rng
from .registry import GENERATORS, generate_shape

__all__ = ["GENERATORS", "generate_shape", "model_id", "run_shapes", "shape_rng"]
