"""``python -m synth_render convert-r2n2``: trees from before the R2N2 conventions, converted.

Earlier versions wrote R2N2-layout trees in the project's own conventions: voxel grids in the
canonical (ShapeNet v2) frame and metadata azimuths in the canonical viewpoint convention. The
conversion rewrites, in place, each model's ``rendering_metadata.txt`` (azimuth ``a`` becomes
``90 - a``) or ``model.binvox`` (turned into ShapeNet v1's frame), then writes the tree's
:data:`~synth_render.r2n2.CONVENTIONS_FILE`. Pixels are never touched, so it is cheap.

Resumable after a kill: each model's new file is first written beside the old one
(``<name>.r2n2-new``), then its key is appended to the journal ``.r2n2-conversion.log``, then
the new file replaces the old. A rerun finishes journaled models whose new file is still
waiting and converts the others, so no model is converted twice or left half done. Until the
marker is written the tree counts as old, and readers refuse it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tqdm import tqdm

from . import binvox, r2n2
from .atomic import atomic_write_bytes

log = logging.getLogger(__name__)

JOURNAL = r2n2.CONVERSION_JOURNAL
NEW_SUFFIX = ".r2n2-new"


def expand_trees(paths: list[Path]) -> list[tuple[Path, str]]:
    """``(root, kind)`` of every tree named; a data set root stands for its tree folders."""
    trees = []
    for path in paths:
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a folder")
        kind = r2n2.tree_kind(path)
        if kind is not None:
            trees.append((path, kind))
            continue
        inner = [(p, r2n2.tree_kind(p)) for p in sorted(path.iterdir()) if p.is_dir()]
        inner = [(p, k) for p, k in inner if k is not None]
        if not inner:
            raise ValueError(f"{path}: neither a render or voxel tree nor a folder of them")
        trees += inner
    return trees


def _model_files(root: Path, kind: str) -> list[tuple[str, Path]]:
    """``(key, file)`` of every model: its metadata file or its grid."""
    name = r2n2.METADATA_TXT if kind == r2n2.RENDERS else r2n2.VOXEL_FILE
    sub = Path("rendering") / name if kind == r2n2.RENDERS else Path(name)
    files = []
    for synset_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for model_dir in sorted(p for p in synset_dir.iterdir() if p.is_dir()):
            path = model_dir / sub
            if path.is_file() or path.with_name(path.name + NEW_SUFFIX).is_file():
                files.append((f"{synset_dir.name}/{model_dir.name}", path))
    return files


def converted_metadata(text: str, where: str) -> str:
    """Metadata lines in the old convention (canonical azimuths) in R2N2's."""
    views = r2n2.parse_metadata(text, where)
    return "\n".join(r2n2.format_metadata_line(v) for v in views) + "\n"


def converted_grid(path: Path) -> bytes:
    """An old binvox file's bytes in R2N2's frame (its grid was in the canonical frame)."""
    return r2n2.encode_voxels(binvox.read_binvox(path))


def _read_journal(root: Path) -> set[str]:
    path = root / JOURNAL
    return set(path.read_text().split()) if path.is_file() else set()


def _append_journal(handle, key: str) -> None:
    # A leading newline: a line torn by an earlier crash cannot swallow this key.
    handle.write("\n" + key + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _converted_bytes(path: Path, kind: str) -> bytes:
    if kind == r2n2.RENDERS:
        return converted_metadata(path.read_text(), str(path)).encode()
    return converted_grid(path)


def _check_is_old(root: Path, kind: str) -> None:
    """Refuse a tree that looks like real 3D-R2N2 data (no file only this project writes)."""
    try:
        r2n2.tree_conventions(root, kind)
    except r2n2.TreeConventionError:
        return  # an old tree: convert it
    raise ValueError(f"{root} has no file that only this project writes, so it looks like a "
                     "real 3D-R2N2 tree, already in R2N2's conventions; pass --assume-old if "
                     "an earlier version of this project wrote it, or --mark-real to mark it "
                     "as real data")


def mark_real(root: Path, kind: str) -> None:
    """Mark a real 3D-R2N2 tree as such (no file changes), e.g. one beside a ``splits.json``."""
    marker = {**r2n2.real_tree_conventions(kind), "source": "3D-R2N2 (marked by hand)"}
    r2n2.write_marker(root, marker)
    log.info("%s: marked as a real 3D-R2N2 %s tree", root, kind)


def convert_tree(root: Path, kind: str, old_fill: str = "flood",
                 assume_old: bool = False) -> tuple[int, int]:
    """Convert one old tree in place; returns ``(converted, unreadable)`` model counts of
    this call (unreadable files are left as they are and logged; readers skip them too).

    A tree with no file that only this project writes looks like a real 3D-R2N2 tree, which
    is already in R2N2's conventions: it is refused unless ``assume_old`` (an old
    ``synth_render voxelize --out`` tree has no such file)."""
    if r2n2.read_marker(root) is not None:
        log.info("%s: already in R2N2's conventions (%s); nothing to do", root,
                 r2n2.CONVENTIONS_FILE)
        return 0, 0
    if not assume_old:
        _check_is_old(root, kind)
    done = _read_journal(root)
    files = _model_files(root, kind)
    converted, unreadable = 0, []
    with open(root / JOURNAL, "a") as journal, \
            tqdm(total=len(files), unit="model", desc=f"convert {root.name}") as bar:
        for key, path in files:
            new = path.with_name(path.name + NEW_SUFFIX)
            if key not in done:
                try:
                    data = _converted_bytes(path, kind)
                except (OSError, ValueError) as exc:
                    log.error("%s: unreadable, left as it is (%s)", path, exc)
                    unreadable.append(key)
                    bar.update()
                    continue
                atomic_write_bytes(new, data)
                _append_journal(journal, key)
                converted += 1
            if new.is_file():
                os.replace(new, path)
            bar.update()
    fields = {"fill": old_fill, "placement": "centred"} if kind == r2n2.VOXELS else {}
    marker = {"convention": r2n2.CONVENTION, "kind": kind, **fields,
              "converted_from": "project conventions before 2026-12"}
    if kind == r2n2.VOXELS:
        marker["frame"] = r2n2.VOXEL_FRAME
    r2n2.write_marker(root, marker)
    (root / JOURNAL).unlink(missing_ok=True)
    log.info("%s: %d %s models converted (%d were done before a restart, %d unreadable)",
             root, converted, kind, len(files) - converted - len(unreadable), len(unreadable))
    return converted, len(unreadable)


def run_convert(paths: list[Path], old_fill: str = "flood", assume_old: bool = False,
                real: bool = False) -> int:
    """The command: convert (or, with ``real``, mark) every tree named; 0 on success, 1 when
    some files were unreadable."""
    unreadable = 0
    for root, kind in expand_trees([Path(p) for p in paths]):
        if real:
            mark_real(root, kind)
        else:
            unreadable += convert_tree(root, kind, old_fill, assume_old)[1]
    return 1 if unreadable else 0
