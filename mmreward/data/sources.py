"""Converters from public preference datasets (in their published formats) to mmreward records: `SOURCES`.

A converter is `fn(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]`: it reads the dataset named by
`spec.path` (a local copy — HF dataset folder, parquet, JSON/JSONL, CSV — or a hub id when the network allows),
writes any embedded media (image bytes) under `media_dir`, and yields one record per preference pair, or a `Skip`
with the reason for a row it cannot use. Recipes (`mmreward.data.recipe`) call converters by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mmreward.data.schema import Record


@dataclass
class SourceSpec:
    """One source of a recipe."""

    # Name used in the manifest and in record ids.
    name: str
    # Key of SOURCES.
    converter: str
    # Local path (file or folder) or hub dataset id; None for generated sources.
    path: str | None = None
    # Dataset split to read.
    split: str = "train"
    # Converter-specific options (e.g. which rating decides VLFeedback pairs).
    options: dict = field(default_factory=dict)


@dataclass
class Skip:
    """A source row that produced no record, and why (reported in the manifest)."""

    row: int | str
    reason: str


Converter = Callable[[SourceSpec, Path], Iterator["Record | Skip"]]


def _synthetic(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    # Imported lazily: the generator pulls in drawing and video-writing code only when used.
    from mmreward.data.synthetic_prefs import synthetic_pairs

    return synthetic_pairs(spec, media_dir)


SOURCES: dict[str, Converter] = {
    "synthetic_shapes": _synthetic,
}
