"""The 13 ShapeNet classes used by 3D-R2N2, with their real WordNet synset ids."""

from __future__ import annotations

# (synset id, short name, ShapeNet taxonomy label)
CLASSES: tuple[tuple[str, str, str], ...] = (
    ("02691156", "airplane", "airplane,aeroplane,plane"),
    ("02828884", "bench", "bench"),
    ("02933112", "cabinet", "cabinet"),
    ("02958343", "car", "car,auto,automobile,machine,motorcar"),
    ("03001627", "chair", "chair"),
    ("03211117", "display", "display,video display"),
    ("03636649", "lamp", "lamp"),
    ("03691459", "loudspeaker",
     "loudspeaker,speaker,speaker unit,loudspeaker system,speaker system"),
    ("04090263", "rifle", "rifle"),
    ("04256520", "sofa", "sofa,couch,lounge"),
    ("04379243", "table", "table"),
    ("04401088", "telephone", "telephone,phone,telephone set"),
    ("04530566", "watercraft", "vessel,watercraft"),
)

SYNSET_TO_NAME = {synset: name for synset, name, _ in CLASSES}
NAME_TO_SYNSET = {name: synset for synset, name, _ in CLASSES}
SYNSET_TO_LABEL = {synset: label for synset, _, label in CLASSES}
ALL_SYNSETS = tuple(synset for synset, _, _ in CLASSES)


def resolve_class(token: str) -> str:
    """Map a class name (``chair``) or synset id (``03001627``) to its synset id."""
    token = token.strip().lower()
    if token in SYNSET_TO_NAME:
        return token
    if token in NAME_TO_SYNSET:
        return NAME_TO_SYNSET[token]
    known = ", ".join(name for _, name, _ in CLASSES)
    raise ValueError(f"unknown class {token!r}; expected a synset id or one of: {known}")


def resolve_classes(spec: str | None) -> list[str]:
    """Parse a comma-separated class list (names or synset ids); ``None``/``all`` means all 13."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return list(ALL_SYNSETS)
    synsets = [resolve_class(tok) for tok in spec.split(",") if tok.strip()]
    return list(dict.fromkeys(synsets))  # de-duplicate, keep order


def class_name(synset: str) -> str:
    """Short class name for a synset id, or the id itself for classes outside the 13."""
    return SYNSET_TO_NAME.get(synset, synset)
