"""Data recipes: a YAML list of sources (converter, filters, weight) built into JSONL shards and a manifest.

    mmreward data build data_recipes/demo.yaml --out /tmp/mmreward-demo-data

    manifest = build_recipe("data_recipes/demo.yaml", "/tmp/demo", overrides={"sources.shapes_images.options.n": 40})
    train = load_split("/tmp/demo", "train")

Each source is read by a converter from ``mmreward.data.sources.SOURCES``, then filtered, capped (``max_items``),
weighted (``weight`` < 1 subsamples, > 1 repeats) and sent to a split chosen by a seeded hash of its group key,
so a rebuild gives byte-identical shards and a prompt never lands in two splits. Output in ``--out DIR``:
``<split>-00000.jsonl`` shards (every split has at least one), generated and embedded media under ``media/``,
and ``manifest.json`` with per-source counts and skipped rows. Media under DIR are written relative to DIR;
media elsewhere (a local dataset copy) are written as absolute paths. The format is documented in
``data_recipes/README.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmreward.data.recipe.ops import anchor_media, copies, filter_reason, group_key, split_of, swap_sides
from mmreward.data.schema import (
    LABELS,
    MEDIA_TYPES,
    PointwiseRecord,
    PreferencePair,
    Record,
    RecordError,
    parse_record,
    read_jsonl,
    write_jsonl,
)
from mmreward.data.sources import SOURCES, Skip, SourceSpec
from mmreward.errors import ConfigError

__all__ = ["Filters", "Recipe", "RecipeError", "RecipeSource", "build_recipe", "load_recipe", "load_split"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MAX_SKIPPED_ROWS = 100  # skipped rows listed per source in the manifest (all are counted)
MAX_REASONS = 100  # distinct skip reasons counted per source; the rest go under _OTHER
_OTHER = "(other reasons)"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SHARD = re.compile(r"^[A-Za-z0-9_]+-\d{5}\.jsonl$")


class RecipeError(ConfigError):
    """A recipe that cannot be built: unknown key, unknown converter, invalid value."""


# ------------------------------------------------------------------------------------------- recipe types

@dataclass
class Filters:
    """Which converted records a source keeps; a dropped record counts under the first filter that fails."""

    # Drop pairs labelled "tie".
    drop_ties: bool = False
    # Drop records whose local media files (``path`` / ``frames``) do not exist.
    require_media: bool = True
    # Keep only pairs with one of these labels (pointwise records pass).
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    # Keep only records whose prompt has at least this many characters.
    min_prompt_chars: int = 0
    # Keep only records whose prompt has at most this many characters (None: no limit).
    max_prompt_chars: int | None = None
    # Keep only records whose media all have one of these types (None: any; text-only records always pass).
    media_types: list[str] | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.drop_ties, bool) and isinstance(self.require_media, bool),
               "filters.drop_ties and filters.require_media must be true or false")
        _check(isinstance(self.labels, list) and set(self.labels) <= set(LABELS),
               f"filters.labels must be a list, a subset of {list(LABELS)}")
        _check(self.media_types is None or (isinstance(self.media_types, list)
                                            and set(self.media_types) <= set(MEDIA_TYPES)),
               f"filters.media_types must be null or a subset of {list(MEDIA_TYPES)}")
        _check(_is_int(self.min_prompt_chars) and self.min_prompt_chars >= 0,
               "filters.min_prompt_chars must be an integer >= 0")
        _check(self.max_prompt_chars is None or _is_int(self.max_prompt_chars),
               "filters.max_prompt_chars must be null or an integer")


@dataclass
class RecipeSource:
    """One source: which converter reads what, and how its records are filtered, capped and weighted."""

    # Name in the manifest, in record ids (``<name>/<id>``) and of its media folder (``media/<name>/``).
    name: str
    # Key of ``mmreward.data.sources.SOURCES``.
    converter: str
    # Local copy (file or folder) or hub dataset id; None for generated sources.
    path: str | None = None
    # Split of the dataset to read (not the output split).
    split: str = "train"
    # Converter-specific options.
    options: dict[str, Any] = field(default_factory=dict)
    # < 1 keeps that fraction (seeded per record), > 1 repeats records (copies get ids "<id>#2", "#3", ...).
    weight: float = 1.0
    # Keep at most this many records: the first ones that pass the filters, before weighting (None: all).
    max_items: int | None = None
    # Swap A and B (labels and dimensions flipped) in a seeded half of the pairs: most converters put the
    # preferred answer in A, which a pairwise judge would learn as a position bias.
    balance_sides: bool = False
    # Record filters; a mapping in YAML.
    filters: Filters = field(default_factory=Filters)

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(_SOURCE_NAME.match(self.name)),
               f"source name must be letters, digits, '_', '.', '-', got {self.name!r}")
        where = f"source {self.name!r}"
        _check(self.converter in SOURCES, f"{where}: unknown converter {self.converter!r}; "
               f"valid converters: {', '.join(sorted(SOURCES))}")
        _check(isinstance(self.options, dict), f"{where}: options must be a mapping")
        _check(self.path is None or isinstance(self.path, str), f"{where}: path must be a string or null")
        _check(isinstance(self.weight, (int, float)) and not isinstance(self.weight, bool) and self.weight >= 0,
               f"{where}: weight must be a number >= 0, got {self.weight!r}")
        _check(self.max_items is None or (_is_int(self.max_items) and self.max_items >= 0),
               f"{where}: max_items must be null or an integer >= 0, got {self.max_items!r}")
        _check(isinstance(self.balance_sides, bool), f"{where}: balance_sides must be true or false")
        if isinstance(self.filters, Mapping):
            try:
                self.filters = _from_dict(Filters, self.filters, "filters")
            except RecipeError as err:
                raise RecipeError(f"{where}: {err}") from None


@dataclass
class Recipe:
    """A data set: its sources, how records are split, and how shards are cut."""

    # Name of the data set (in the manifest).
    name: str
    # RecipeSource entries (mappings in YAML), read in order.
    sources: list[RecipeSource]
    # Seeds the split hash and the weight subsampling.
    seed: int = 0
    # Output split -> fraction of groups; fractions sum to 1.
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.9, "test": 0.1})
    # Records sharing this key share a split: "prompt" (prompt + shared media), "id", or "meta.<key>".
    group_by: str = "prompt"
    # Records per JSONL shard.
    shard_size: int = 5000

    def __post_init__(self) -> None:
        _check(isinstance(self.sources, list) and bool(self.sources), "sources must be a non-empty list")
        self.sources = [s if isinstance(s, RecipeSource) else _from_dict(RecipeSource, s, f"sources[{i}]")
                        for i, s in enumerate(self.sources)]
        names = [s.name for s in self.sources]
        _check(len(set(names)) == len(names), f"source names must be unique, got {names}")
        _check(_is_int(self.seed), f"seed must be an integer, got {self.seed!r}")
        _check(isinstance(self.splits, dict) and bool(self.splits), "splits must be a non-empty mapping")
        for split, frac in self.splits.items():
            _check(bool(_SPLIT_NAME.match(str(split))), f"split names must be letters, digits, '_', got {split!r}")
            _check(isinstance(frac, (int, float)) and frac >= 0, f"splits.{split} must be a fraction >= 0")
        _check(abs(sum(self.splits.values()) - 1) < 1e-6, f"split fractions must sum to 1, got {self.splits}")
        _check(self.group_by in ("prompt", "id") or self.group_by.startswith("meta."),
               f'group_by must be "prompt", "id" or "meta.<key>", got {self.group_by!r}')
        _check(_is_int(self.shard_size) and self.shard_size >= 1, "shard_size must be an integer >= 1")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RecipeError(message)


def _from_dict(cls: type, obj: Any, where: str) -> Any:
    """Build a recipe dataclass from a mapping; unknown keys are an error naming the valid ones."""
    if not isinstance(obj, Mapping):
        raise RecipeError(f"{where}: must be a mapping, got {type(obj).__name__}")
    fields = dataclasses.fields(cls)
    valid = [f.name for f in fields]
    unknown = [k for k in obj if k not in valid]
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    required = [f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in obj]
    if required:
        raise RecipeError(f"{where}: missing required key(s) {', '.join(required)}")
    return cls(**obj)


def _apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw[a][b]...= value``; a part after ``sources`` picks the source of that name."""
    node: Any = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            match = [s for s in node if isinstance(s, dict) and s.get("name") == part]
            names = ", ".join(str(s.get("name")) for s in node if isinstance(s, dict))
            if not match:
                raise RecipeError(f"override {dotted!r}: no source named {part!r} (sources: {names})")
            if last:
                raise RecipeError(f"override {dotted!r}: name a field of the source, e.g. {dotted}.weight")
            node = match[0]
        elif last:
            node[part] = value
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}  # a missing or null mapping (options, filters) starts empty
            node = node[part]


def _override_items(overrides: Mapping[str, Any] | Iterable[str] | None) -> Iterator[tuple[str, Any]]:
    import yaml

    if overrides is None:
        return
    if isinstance(overrides, Mapping):
        yield from overrides.items()
        return
    for item in overrides:
        key, sep, text = str(item).partition("=")
        if not sep:
            raise RecipeError(f"override {item!r} must look like key=value (e.g. seed=1)")
        yield key.strip(), yaml.safe_load(text)


def load_recipe(recipe: str | Path | Recipe,
                overrides: Mapping[str, Any] | Iterable[str] | None = None) -> Recipe:
    """Read a recipe YAML (or copy a Recipe) and apply overrides.

    Args:
        recipe: path of a YAML file, or a Recipe.
        overrides: ``{"dotted.key": value}`` or ``["dotted.key=yaml value", ...]``; ``sources.<name>.<field>``
            addresses a source by name, e.g. ``sources.shapes_images.options.n=40``.

    Returns:
        The validated Recipe. Raises RecipeError for unknown keys, unknown converters or invalid values.
    """
    import yaml

    if isinstance(recipe, Recipe):
        raw, where = dataclasses.asdict(recipe), f"recipe {recipe.name!r}"
    else:
        raw, where = yaml.safe_load(Path(recipe).read_text(encoding="utf-8")), str(recipe)
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a recipe must be a YAML mapping")
    for key, value in _override_items(overrides):
        _apply_override(raw, key, value)
    try:
        return _from_dict(Recipe, raw, where)
    except RecipeError as err:  # nested errors name the source or field; add which recipe
        message = str(err)
        raise RecipeError(message if message.startswith(where) else f"{where}: {message}") from None


# ------------------------------------------------------------------------------------------- building

@dataclass
class _SourceStats:
    """Counts for one source, as written to the manifest."""

    converter: str
    splits: dict[str, int]
    read: int = 0
    kept: int = 0
    swapped: int = 0
    after_weight: int = 0
    capped: bool = False
    filtered: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, source: str, row: int | str, reason: str) -> None:
        if len(self.rows) < MAX_SKIPPED_ROWS:
            self.rows.append({"source": source, "row": row, "reason": reason})
        # Free-text reasons (one per bad line) must not grow the manifest without bound.
        known = reason in self.by_reason or len(self.by_reason) < MAX_REASONS
        self.by_reason[reason if known else _OTHER] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"converter": self.converter, "read": self.read, "kept": self.kept, "swapped": self.swapped,
                "skipped": sum(self.by_reason.values()), "filtered": dict(self.filtered),
                "after_weight": self.after_weight, "capped": self.capped, "splits": dict(self.splits),
                "skipped_by_reason": dict(self.by_reason), "skipped_rows": self.rows}


class _ShardWriter:
    """Buffers one split's records and writes ``<split>-NNNNN.jsonl`` every ``shard_size`` records."""

    def __init__(self, out_dir: Path, split: str, shard_size: int) -> None:
        self.out_dir, self.split, self.shard_size = out_dir, split, shard_size
        self.buffer: list[Record] = []
        self.shards: list[str] = []
        self.count = 0

    def add(self, record: Record) -> None:
        self.buffer.append(record)
        self.count += 1
        if len(self.buffer) >= self.shard_size:
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        # The final flush writes an empty shard for an empty split, so every split has a file to point at.
        if self.buffer or (final and not self.shards):
            name = f"{self.split}-{len(self.shards):05d}.jsonl"
            write_jsonl(self.out_dir / name, self.buffer)
            self.shards.append(name)
            self.buffer = []


def build_recipe(recipe: str | Path | Recipe, out_dir: str | Path, *,
                 overrides: Mapping[str, Any] | Iterable[str] | None = None) -> dict[str, Any]:
    """Build a recipe into ``out_dir``: JSONL shards per split, media under ``media/``, ``manifest.json``.

    Args:
        recipe: recipe YAML path or a Recipe.
        out_dir: output folder (created). Shards and per-source media folders of an earlier build there
            (found through its manifest) are replaced.
        overrides: see :func:`load_recipe`.

    Returns:
        The manifest dict (also written to ``out_dir/manifest.json``): ``recipe``, ``sources`` (counts per
        source: read, kept, skipped, filtered, after_weight, splits, skipped_by_reason, skipped_rows),
        ``splits`` ({split: {records, shards}}), ``total``, ``seed``, ``mmreward_version``, ``created``.
    """
    from mmreward import __version__

    recipe_path = None if isinstance(recipe, Recipe) else str(recipe)
    recipe = load_recipe(recipe, overrides)
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir, recipe)
    writers = {split: _ShardWriter(out_dir, split, recipe.shard_size) for split in recipe.splits}
    stats = {s.name: _build_source(s, recipe, out_dir, writers) for s in recipe.sources}
    for writer in writers.values():
        writer.flush(final=True)
    manifest = {
        "name": recipe.name, "recipe": dataclasses.asdict(recipe), "recipe_path": recipe_path,
        "seed": recipe.seed, "mmreward_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": {name: s.to_dict() for name, s in stats.items()},
        "splits": {split: {"records": w.count, "shards": w.shards} for split, w in writers.items()},
        "total": sum(w.count for w in writers.values()),
    }
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)  # written last: a manifest only ever describes a finished build
    log.info("%s: %d records in %s", recipe.name, manifest["total"], out_dir)
    return manifest


def _clear_previous(out_dir: Path, recipe: Recipe) -> None:
    """Remove an earlier build's manifest, shards and source media, so nothing stale survives a rebuild."""
    old = out_dir / MANIFEST
    stale: set[str] = set()
    media = {s.name for s in recipe.sources}
    if old.is_file():
        try:
            manifest = json.loads(old.read_text(encoding="utf-8"))
            stale.update(n for info in manifest.get("splits", {}).values() for n in info.get("shards", []))
            media.update(manifest.get("sources", {}))
        except (ValueError, AttributeError):
            log.warning("%s is unreadable; replacing it", old)
        # Media folders are removed only in a folder an earlier build owns (it has a manifest).
        for name in media:
            if _SOURCE_NAME.match(str(name)):  # a hand-edited manifest must not reach outside media/
                shutil.rmtree(out_dir / "media" / name, ignore_errors=True)
        old.unlink()
    for split in recipe.splits:
        stale.update(p.name for p in out_dir.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].jsonl"))
    for name in stale:
        if _SHARD.match(name):  # never follow a manifest entry outside our naming scheme
            (out_dir / name).unlink(missing_ok=True)


def _build_source(source: RecipeSource, recipe: Recipe, out_dir: Path,
                  writers: dict[str, _ShardWriter]) -> _SourceStats:
    """Convert, filter, cap, weight and split one source into the shard writers."""
    from tqdm import tqdm

    spec = SourceSpec(name=source.name, converter=source.converter, path=source.path, split=source.split,
                      options=dict(source.options))
    stats = _SourceStats(source.converter, {split: 0 for split in recipe.splits})
    seen: set[str] = set()
    if source.max_items == 0:
        return stats
    items = SOURCES[source.converter](spec, out_dir / "media")
    with tqdm(items, desc=source.name, unit="row", disable=None) as bar:  # disable=None: off when not a TTY
        for item in bar:
            stats.read += 1
            record = _accept(item, source, stats, out_dir)
            if record is None:
                continue
            stats.kept += 1
            if source.balance_sides and swap_sides(record, recipe.seed):
                record = dataclasses.replace(record.swapped(), meta={**record.meta, "sides_swapped": True})
                stats.swapped += 1
            split = split_of(group_key(record, recipe.group_by, out_dir), recipe.seed, recipe.splits)
            for copy in copies(record, source.weight, recipe.seed):
                if copy.id in seen:
                    stats.skip(source.name, copy.id, "duplicate id")
                    continue
                seen.add(copy.id)
                writers[split].add(copy)
                stats.after_weight += 1
                stats.splits[split] += 1
            if source.max_items is not None and stats.kept >= source.max_items:
                stats.capped = True
                break
    if hasattr(items, "close"):
        items.close()  # let a generator converter release its files now, not at garbage collection
    log.info("%s: read %d, skipped %d, filtered %d, kept %d, written %d %s", source.name, stats.read,
             sum(stats.by_reason.values()), sum(stats.filtered.values()), stats.kept, stats.after_weight,
             dict(stats.splits))
    return stats


def _accept(item: Any, source: RecipeSource, stats: _SourceStats, out_dir: Path) -> Record | None:
    """The validated, re-anchored record for one converter item, or None (counted) if skipped or filtered."""
    if isinstance(item, Skip):
        stats.skip(source.name, item.row, item.reason)
        return None
    if not isinstance(item, (PreferencePair, PointwiseRecord)):
        raise TypeError(f"converter {source.converter!r} yielded a {type(item).__name__}; "
                        "converters yield records or Skip")
    row = item.id if isinstance(item.id, (str, int)) else stats.read - 1
    try:
        for media in item.all_media():
            anchor_media(media, out_dir, out_dir / "media" / source.name)
        d = item.to_dict(relative_to=out_dir)
        d["id"] = f"{source.name}/{d['id']}"  # ids stay unique when several sources share a converter
        record = parse_record(d, base_dir=out_dir)
    except (RecordError, TypeError) as err:
        stats.skip(source.name, row, f"invalid record: {err}")
        return None
    reason = filter_reason(record, source.filters)
    if reason is not None:
        stats.filtered[reason] += 1
        return None
    return record


# ------------------------------------------------------------------------------------------- reading

def load_split(out_dir: str | Path, split: str) -> list[Record]:
    """Read every shard of one split of a built recipe, in order.

    Args:
        out_dir: the folder ``build_recipe`` wrote.
        split: split name, e.g. "train".

    Returns:
        The split's records (media paths resolve against ``out_dir``).
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} not found: build the recipe first (mmreward data build)")
    splits = json.loads(manifest_path.read_text(encoding="utf-8"))["splits"]
    if split not in splits:
        raise KeyError(f"split {split!r} not in {manifest_path} (splits: {', '.join(splits)})")
    return [record for name in splits[split]["shards"] for record in read_jsonl(out_dir / name)]
