"""Headless Blender rendering in 3D-R2N2's layout (no bpy here: Blender runs in workers).

``run_render(cfg)`` is ``python -m synth_render render``; ``run_jobs`` renders arbitrary job
lists (e.g. galleries) on the same crash-isolated worker pool.
"""

from .pool import Outcome, PoolOptions, build_job, model_views, run_jobs, run_render

__all__ = ["Outcome", "PoolOptions", "build_job", "model_views", "run_jobs", "run_render"]
