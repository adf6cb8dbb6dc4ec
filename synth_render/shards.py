"""Deterministic work splitting (``--shard k/n``) for cluster array jobs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def parse_shard(spec: str | None) -> tuple[int, int]:
    """Parse ``k/n`` (0 <= k < n) into ``(k, n)``; ``None`` means the whole job ``(0, 1)``."""
    if not spec:
        return 0, 1
    try:
        k_str, n_str = spec.split("/")
        k, n = int(k_str), int(n_str)
    except ValueError as exc:
        raise ValueError(f"--shard must look like k/n, got {spec!r}") from exc
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec!r}: need 0 <= k < n")
    return k, n


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and on every machine (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def take_shard(items: Sequence[T], keys: Sequence[str], shard: tuple[int, int]) -> list[T]:
    """Items whose key hashes into shard ``k`` of ``n``: stable when the item list grows."""
    k, n = shard
    return [item for item, key in zip(items, keys, strict=True) if stable_hash(key) % n == k]


def asset_split(model_id: str) -> str:
    """``"test"`` for a fixed 20 % of shape ids, else ``"train"``.

    Photo-style assets (backgrounds, HDRIs, textures) come from disjoint pools for the two
    groups, so test images never share a background with training images. The backend's split
    file puts target-test shapes in the ``"test"`` group by the same rule.
    """
    return "test" if stable_hash("asset-split:" + model_id) % 5 == 0 else "train"
