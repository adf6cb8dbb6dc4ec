"""Trains, evaluates and serves the image-to-voxel network (see issues 4 and 5)."""
