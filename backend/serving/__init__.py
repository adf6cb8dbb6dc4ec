"""The serving stage: request -> preprocessing -> batched forward pass -> meshes, the ZeroMQ
daemon with its job queue and worker processes, and ``backend reconstruct``."""
