"""Loader plumbing shared by every benchmark loader: open a published table, turn rows into records, finish.

Two row policies, both here so that loaders differ only in their rows:

- `open_source` + `convert` + `finish` (the image and text loaders): options `media_dir`, `media_root`,
  `split`, `on_error` ("raise" by default: a silently smaller benchmark gives numbers that look comparable
  but are not; "skip" lists bad rows in `info["skipped"]`); layout search through `data.sources.tables`.
- `convert_skipping` + `report_skips` + `finish_pairs` (the generation-benchmark loaders): bad rows are
  always skipped and counted (`info["skipped"]`, `info["skipped_examples"]`), and a file with no usable row
  is an error; media existence is checked separately (`common.check_media_files`).

Errors name the benchmark, and for a missing copy or an unknown layout say how to download it
(`spec.download_text`, the registry's text for the benchmark being loaded).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmreward.data.schema import MediaItem, Record, RecordError
from mmreward.data.sources import BadRow, Skip, SourceSpec, convert_rows, frames_dir, media_path
from mmreward.data.sources.tables import find_tables, iter_tables
from mmreward.evaluation.benchmarks.common import (
    check_options,
    dataset_revision,
    describe_skips,
    embedded_image,
    log_skips,
    size_warnings,
)
from mmreward.evaluation.benchmarks.spec import BenchmarkData, download_text

OPTIONS = ("media_dir", "media_root", "split", "on_error")
# Row errors that mean "this row is malformed" rather than a bug here: the rows are untrusted data.
_ROW_ERRORS = (BadRow, RecordError, KeyError, TypeError, ValueError, IndexError, AttributeError)


# ---- shared plumbing: open a source, convert rows, finish with size checks ----

@dataclass
class Source:
    """An opened benchmark source: its table(s), where its media live, and its revision."""

    name: str
    spec: SourceSpec
    # Table files in reading order, or a datasets.Dataset (hub id or save_to_disk folder).
    tables: Any
    # Folders that relative media paths are tried against, in order.
    roots: list[Path]
    media_dir: Path
    revision: str | None
    on_error: str
    skipped: dict[int, str] = field(default_factory=dict)


def open_source(name: str, source: Any, options: dict, *, split: str = "test", files: tuple[str, ...] = (),
                media_subdirs: tuple[str, ...] = ("",)) -> Source:
    """Find a benchmark's table in its published layout and work out its media folders and revision.

    Args:
        name: registry name (its `download` text goes into errors; media go under `<media_dir>/<name>`).
        options: loader options (module docstring); unknown keys are an error. `split` overrides `split`.
        files: glob patterns of the benchmark's table file(s) inside a folder, tried first.
        media_subdirs: sub-folders of the data folder that relative media paths may be relative to.

    Returns:
        The Source. Raises FileNotFoundError naming the expected layout and how to download it.
    """
    check_options(name, options, OPTIONS)
    on_error = options.get("on_error", "raise")
    if on_error not in ("raise", "skip"):
        raise ValueError(f'{name}: on_error must be "raise" or "skip", got {on_error!r}')
    hint = f"Expected the {name} layout ({', '.join(files) or 'parquet shards'}). {download_text()}"
    spec = SourceSpec(name=name, converter=name, path=str(source), split=options.get("split") or split)
    tables = find_tables(spec.path, spec.split, files, hint)
    local = Path(str(source)).expanduser().absolute()
    is_local = local.exists()
    folders = [local if local.is_dir() else local.parent] if is_local else []
    if isinstance(tables, list):
        folders.insert(0, tables[0].absolute().parent)
    if options.get("media_root"):
        roots = [Path(options["media_root"]).expanduser().absolute()]
    else:
        roots = list(dict.fromkeys(f / sub for f in folders for sub in media_subdirs))
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "mmreward" / "benchmark_media"
    media_dir = Path(options["media_dir"]).expanduser().absolute() if options.get("media_dir") else (
        folders[-1] / ".mmreward_media" if is_local else cache)
    return Source(name, spec, tables, roots, media_dir, dataset_revision(tables, local if is_local else None),
                  on_error)


def convert(src: Source, columns: tuple[str, ...], fn: Callable[[int, dict], Iterable[Any]]) -> list[Any]:
    """Convert every row with `fn(row, obj) -> records` (raising BadRow for a bad row), honouring `on_error`.

    Args:
        columns: columns the first row must have; otherwise the file is not this benchmark (ValueError).

    Returns:
        The records, in row order, with ids made unique.
    """
    records: list[Any] = []
    first = True
    for row, obj in enumerate(iter_tables(src.tables)):
        if obj is None:  # blank JSONL line
            continue
        if first and isinstance(obj, dict):
            missing = [c for c in columns if c not in obj]
            if missing:
                raise ValueError(f"{src.spec.path}: not the {src.name} layout: missing column(s) "
                                 f"{', '.join(missing)} (expected {', '.join(columns)}; got "
                                 f"{', '.join(obj)}). {download_text()}")
            first = False
        try:
            if isinstance(obj, str):
                raise BadRow(obj)
            records.extend(fn(row, obj))
        except _ROW_ERRORS as err:
            reason = str(err) if isinstance(err, (BadRow, RecordError)) else f"{type(err).__name__}: {err}"
            if src.on_error == "raise":
                raise ValueError(f"{src.name}: row {row} of {src.spec.path}: {reason} "
                                 '(options on_error="skip" leaves such rows out)') from err
            src.skipped[row] = reason
    if first:
        raise ValueError(f"{src.spec.path}: no rows found for {src.name}. {download_text()}")
    log_skips(src.name, list(src.skipped.items()))
    return unique_ids(records)


def unique_ids(records: list[Any]) -> list[Any]:
    """Give records that share an id the suffixes `#0`, `#1`, ... in order; ids used once stay as they are."""
    counts = Counter(r.id for r in records)
    seen: Counter = Counter()
    for r in records:
        if counts[r.id] > 1:
            seen[r.id] += 1
            r.id = f"{r.id}#{seen[r.id] - 1}"
    return records


def finish(src: Source, kind: str, records: list[Any], expected: dict[str, tuple[int, int | None, str]],
           expected_size: int | None = None) -> BenchmarkData:
    """Build the BenchmarkData ("pairs" or "listwise"), warning for each count that differs from the paper's.

    `expected` maps what is counted (items, prompts, images) to (our count, the paper's or None, why they may
    differ); `expected_size` is the paper's record count (the runner compares it with `len(records)`).
    `info` gets the split, per-category counts (per group for list-wise data), skipped rows and warnings.
    """
    warnings = size_warnings(src.name, expected)
    units = records if kind == "pairs" else {r.meta["group"]: r for r in records}.values()
    info = {"source": src.spec.path, "split": src.spec.split, "records": len(records),
            "categories": dict(Counter(r.meta.get("category") for r in units if r.meta.get("category"))),
            "skipped": dict(src.skipped), "warnings": warnings}
    return BenchmarkData(name=src.name, kind=kind, records=records, revision=src.revision,
                         expected_size=expected_size, info=info)


def local_media(kind: str, value: Any, src: Source) -> MediaItem:
    """Return a MediaItem for a relative path, from the first of `src.roots` where it exists.

    A folder becomes a "frames" item (its images in natural order). Raises BadRow when it is nowhere.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"{kind} path must be a non-empty string, got {value!r}")
    for root in src.roots:
        target = root / value
        if target.is_dir():
            return frames_dir(value, root)
        if target.is_file():
            return media_path(kind, value, root)
    raise BadRow(f"{kind} not found: {value} (looked in {', '.join(str(r) for r in src.roots)})")


def embedded_or_local_image(value: Any, src: Source, stem: str) -> MediaItem:
    """Return a MediaItem for an image stored as bytes, a `{bytes, path}` struct, or a relative path.

    Bytes are written to `<media_dir>/<name>/<stem>-<content hash>.<ext>` (`save_image_bytes`).
    """
    return embedded_image(value, src.media_dir / src.name, stem, lambda path: local_media("image", path, src))


def text_field(obj: dict, key: str) -> str:
    """Return `obj[key]` as text; empty text is kept (benchmarks are scored as published)."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise BadRow(f"field {key!r} must be text, got {type(value).__name__}")
    return value


def dense_ranks(ranks: list) -> list[int]:
    """Map published ranks (smaller = better, ties equal) to dense ranks 1, 2, ... (1 = best).

    >>> dense_ranks([1, 2, 5, 3])
    [1, 2, 4, 3]
    """
    if not ranks or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in ranks):
        raise BadRow(f"ranks must be a non-empty list of numbers, got {ranks!r}"[:200])
    order = {r: i + 1 for i, r in enumerate(sorted(set(ranks)))}
    return [order[r] for r in ranks]


# ---- the generation benchmarks' policy: skip bad rows, fail when none is usable ----

def convert_skipping(name: str, rows: Iterable[tuple[int, Any]],
             convert: Callable[[int, dict], list[Record]]) -> tuple[list[Record], list[Skip]]:
    """Run `convert` over the rows with the data-side checks; media existence is checked separately."""
    spec = SourceSpec(name=name, converter=name, options={"check_media": False})
    return split_skips(convert_rows(spec, rows, convert))


def split_skips(items: Iterable[Record | Skip]) -> tuple[list[Record], list[Skip]]:
    """Separate `convert_rows`' output into (records, skipped rows)."""
    records, skips = [], []
    for item in items:
        (skips if isinstance(item, Skip) else records).append(item)
    return records, skips


def report_skips(name: str, records: list[Record], skips: list[Skip], expected: str) -> dict[str, Any]:
    """Raise when no row was usable (a layout we do not know); otherwise log the skipped rows.

    Returns:
        The info entries that record the skips.
    """
    pairs = [(s.row, s.reason) for s in skips]
    examples = describe_skips(pairs)
    if not records:
        why = f" First problems: {'; '.join(examples)}." if examples else " The file has no rows."
        raise ValueError(f"{name}: no usable rows; expected {expected}.{why}")
    log_skips(name, pairs)
    return {"skipped": len(skips), "skipped_examples": examples} if skips else {}


def finish_pairs(name: str, records: list[Record], revision: str | None, expected: int | None,
                 info: dict[str, Any]) -> BenchmarkData:
    """Build pair BenchmarkData, warning when the item count differs from the paper's (`expected`)."""
    size_warnings(name, {"items": (len(records), expected, "Numbers are not strictly comparable.")})
    return BenchmarkData(name=name, kind="pairs", records=records, revision=revision, expected_size=expected,
                         info=info)


def local_path(name: str, source: Any, hint: str) -> Path:
    """The local copy `source` as a Path; FileNotFoundError with `hint` (how to get it) when missing."""
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name}: {path} does not exist. {hint}")
    return path
