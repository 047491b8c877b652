"""Per-record steps of a recipe build (``mmreward.data.recipe``): media anchoring, filters, split and weight.

Each function looks at one record, so the build loop in ``build.py`` reads as a list of steps. Every random
choice is a hash of (purpose, seed, key) rather than an RNG stream, so it does not depend on which other
records a build contains or in which order they come: rebuilding gives identical shards, and a prompt keeps
its split when sources are added.

    from mmreward.data.recipe.ops import split_of
    split_of("a red circle on the left", seed=0, splits={"train": 0.8, "test": 0.2})   # -> "train" or "test"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmreward.data.schema import MediaItem, PreferencePair, Record

if TYPE_CHECKING:  # recipe.py imports this module
    from mmreward.data.recipe.build import Filters


def anchor_media(media: MediaItem, out_dir: Path, embed_dir: Path) -> None:
    """Write inline bytes to ``embed_dir``; make paths under ``out_dir`` relative to it and others absolute."""
    if media.bytes is not None:
        data = media.data() or b""
        path = embed_dir / "_embedded" / (hashlib.sha1(data).hexdigest()[:20] + _extension(data))
        if not path.exists():  # content-addressed: identical bytes are stored once
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        media.bytes, media.path, media.base_dir = None, str(path), None
    if media.path is not None:
        media.path = _portable(media.local_path(), out_dir)
    if media.frames is not None:
        media.frames = [_portable(p, out_dir) for p in media.frame_paths()]
    media.base_dir = out_dir


def _portable(path: Path, out_dir: Path) -> str:
    try:
        return path.relative_to(out_dir).as_posix()
    except ValueError:
        return str(path)  # outside the output folder: absolute, so moving the output folder keeps it valid


def _extension(data: bytes) -> str:
    """A file suffix from magic bytes; decoders read content, so an unknown type just gets ".bin"."""
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data.startswith(b"GIF8"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[4:8] == b"ftyp":
        return ".mp4"
    if data.startswith(b"\x1aE\xdf\xa3"):
        return ".mkv"
    return ".bin"


def filter_reason(record: Record, f: Filters) -> str | None:
    """Name of the first filter that rejects the record, or None if it is kept."""
    label = getattr(record, "label", None)  # pointwise records have no label
    if f.drop_ties and label == "tie":
        return "drop_ties"
    if label is not None and label not in f.labels:
        return "labels"
    if len(record.prompt) < f.min_prompt_chars:
        return "min_prompt_chars"
    if f.max_prompt_chars is not None and len(record.prompt) > f.max_prompt_chars:
        return "max_prompt_chars"
    media = list(record.all_media())
    if f.media_types is not None and any(m.type not in f.media_types for m in media):
        return "media_types"
    # Last: the only filter that touches the disk.
    if f.require_media and any(not p.is_file() for m in media
                               for p in ([m.local_path()] if m.path else m.frame_paths())):
        return "require_media"
    return None


def group_key(record: Record, group_by: str, out_dir: Path) -> str:
    """The key whose records share a split.

    "prompt" includes the shared context media, so one generic question ("Describe the image.") asked about
    many images does not pull all of them into one split. Media are keyed by their portable form, so the key
    does not depend on where the output folder is.

    Args:
        record: a record as written (media anchored by ``anchor_media``).
        group_by: "prompt", "id" or "meta.<key>" (records without that key are their own group).
        out_dir: the output folder.

    Returns:
        The key as text.
    """
    if group_by == "id":
        return record.id
    if group_by.startswith("meta."):
        value = record.meta.get(group_by[5:])
        return record.id if value is None else json.dumps(value, sort_keys=True)
    context = [_context_key(m, out_dir) for m in record.media]
    return json.dumps([record.prompt, context], sort_keys=True, ensure_ascii=False)


def _context_key(media: MediaItem, out_dir: Path) -> dict[str, Any]:
    d = media.to_dict(relative_to=out_dir)
    path = media.local_path()
    # A file inside the output was written by this build from embedded bytes, named per row: the same image
    # in two rows gets two names, so it is keyed by content to keep that image's question in one split.
    if path is not None and not Path(d["path"]).is_absolute() and path.is_file():
        d["path"] = "sha1:" + hashlib.sha1(path.read_bytes()).hexdigest()
    return d


def unit_hash(*parts: Any) -> float:
    """A uniform number in [0, 1) from a hash of ``parts``: the same on every machine and run."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, seed: int, splits: dict[str, float]) -> str:
    """The split of a group key: its hash falls in one of the consecutive intervals sized by the fractions.

    Args:
        key: group key (``group_key``).
        seed: recipe seed; another seed gives another assignment.
        splits: split name -> fraction, in order, summing to 1.

    Returns:
        The split name. The fractions hold over groups, not records: few, large groups make them approximate.
    """
    u, edge = unit_hash("split", seed, key), 0.0
    for split, frac in splits.items():
        edge += frac
        if u < edge:
            return split
    return [s for s, frac in splits.items() if frac > 0][-1]  # u just below 1 and rounding in the sum


def swap_sides(record: Record, seed: int) -> bool:
    """Whether ``balance_sides`` swaps this pair: a seeded coin per record id (pointwise records never)."""
    return isinstance(record, PreferencePair) and unit_hash("sides", seed, record.id) < 0.5


def copies(record: Record, weight: float, seed: int) -> Iterator[Record]:
    """``floor(weight)`` copies, plus one more with probability ``frac(weight)`` (seeded by the record id)."""
    n = int(weight)
    if weight - n > 0 and unit_hash("weight", seed, record.id) < weight - n:
        n += 1
    for k in range(n):
        yield record if k == 0 else dataclasses.replace(record, id=f"{record.id}#{k + 1}")
