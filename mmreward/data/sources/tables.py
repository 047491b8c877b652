"""Finding and reading a source's table in its published layout (used by `sources.read_rows`).

`find_tables` resolves a path to the files to read (or a `datasets.Dataset`), raising an error that says which
layouts were looked for; `iter_tables` streams their rows as plain dicts, reading parquet in small batches so
that image bytes never sit in memory for a whole shard. A JSONL line that is not a JSON object comes out as
the reason text (the caller makes it a Skip), and a blank line as None, so that row numbers match lines.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
# HF shard names: "<split>-00000-of-00004[-<hash>].parquet".
_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+?)-\d+-of-\d+")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
# JSON files in dataset folders that are metadata, not rows.
_NOT_ROWS = {"dataset_info.json", "dataset_dict.json", "state.json", "config.json"}
# Parquet rows per batch: Pick-a-Pic rows carry two ~0.5 MB JPEGs each.
_BATCH = 64


def find_tables(path: str, split: str, files: tuple[str, ...], hint: str) -> list[Path] | Any:
    """Return the table files to read (in order) for `path`, or a loaded `datasets.Dataset`.

    Args:
        path: a file, a folder, or a hub dataset id.
        split: the split to read from folders with several splits.
        files: glob patterns to try first inside a folder; `{split}` is replaced by the split.
        hint: how to obtain the data, appended to errors.

    Returns:
        A list of `.parquet` / `.jsonl` / `.json` / `.csv` paths, or a Dataset (save_to_disk folder or hub).
    """
    local = Path(path).expanduser()
    if local.is_file():
        if local.suffix.lower() not in _SUFFIXES:
            raise ValueError(f"{local}: unsupported file type {local.suffix!r}; expected one of "
                             f"{', '.join(_SUFFIXES)}. {hint}".strip())
        return [local]
    if local.is_dir():
        return _find_in_folder(local, split, files, hint)
    if _HUB_ID.fullmatch(path) and local.suffix.lower() not in _SUFFIXES:
        return _load_hub(path, split, hint)
    raise FileNotFoundError(f"{path} does not exist. {hint}".strip())


def _find_in_folder(folder: Path, split: str, files: tuple[str, ...], hint: str) -> list[Path] | Any:
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return _load_saved(folder, split)
    patterns = (*(f.format(split=split) for f in files), *(f"{split}{suffix}" for suffix in _SUFFIXES))
    for pattern in patterns:
        matches = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(matches) > 1 and not all(p.suffix == ".parquet" for p in matches):
            raise ValueError(f"{folder}: several files match {pattern!r} ({', '.join(p.name for p in matches)}); "
                             "point the source path at one of them")
        if matches:
            return matches
    shards = _find_shards(folder, split)
    if shards:
        return shards
    tables = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in _SUFFIXES and p.name not in _NOT_ROWS)
    if len(tables) == 1:
        return tables
    found = f" Found several table files ({', '.join(p.name for p in tables)}): point the path at one." \
        if tables else ""
    looked = ", ".join(patterns)
    raise FileNotFoundError(
        f"{folder}: no dataset found. Expected a file matching {looked}, a datasets.save_to_disk folder, or "
        f"parquet shards in the folder, data/ or {split}/.{found} {hint}".strip())


def _find_shards(folder: Path, split: str) -> list[Path]:
    """Parquet shards of `split`: `<split>/`, `data/<split>/`, then split-named or all shards of `data/`, `.`."""
    for sub in (folder / split, folder / "data" / split):
        shards = sorted(sub.glob("*.parquet"))
        if shards:
            return shards
    for sub in (folder / "data", folder):
        shards = sorted(sub.glob("*.parquet"))
        named = {p: m.group("split") for p in shards if (m := _SHARD.match(p.name))}
        if not named:
            if shards:
                return shards
            continue
        chosen = [p for p in shards if named.get(p) == split]
        if not chosen:
            raise FileNotFoundError(f"{sub}: no parquet shards for split {split!r}; "
                                    f"found splits {', '.join(sorted(set(named.values())))}")
        return chosen
    return []


def _load_saved(folder: Path, split: str) -> Any:
    import datasets

    ds = datasets.load_from_disk(str(folder))
    return _pick_split(ds, split, str(folder))


def _load_hub(name: str, split: str, hint: str) -> Any:
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split)
    # Whatever the hub or the network raised, the fix is the same: download the data and point at it.
    except Exception as err:
        raise RuntimeError(f"{name!r} is not a local path, and loading it (split {split!r}) from the hub failed: "
                           f"{err}. Download it and set the source path to the local copy. {hint}".strip()) from err
    return _pick_split(ds, split, name)


def _pick_split(ds: Any, split: str, where: str) -> Any:
    if not hasattr(ds, "keys"):  # a Dataset, not a DatasetDict
        return ds
    if split not in ds:
        raise KeyError(f"{where}: no split {split!r}; it has {', '.join(ds.keys())}")
    return ds[split]


def iter_tables(source: list[Path] | Any) -> Iterator[dict[str, Any] | str | None]:
    """Stream the rows of `find_tables`'s result.

    Args:
        source: table files or a Dataset.

    Returns:
        An iterator of row dicts; for JSON text rows, the reason string for a row that is not a JSON object
        and None for a blank JSONL line.
    """
    if not isinstance(source, list):
        # Arrow format keeps Image columns as their stored {bytes, path} structs instead of decoding them.
        for table in source.with_format("arrow").iter(batch_size=_BATCH):
            yield from table.to_pylist()
        return
    readers = {".parquet": _parquet_rows, ".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows}
    for path in source:
        yield from readers[path.suffix.lower()](path)


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH):
        yield from batch.to_pylist()


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any] | str | None]:
    # newline="\n": a stray "\r" inside a string must not split a line (as in schema.iter_jsonl).
    with path.open(encoding="utf-8-sig", newline="\n") as f:
        for line in f:
            yield _parse_line(line)


def _parse_line(line: str) -> dict[str, Any] | str | None:
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        return f"invalid JSON ({err.msg}: column {err.colno})"
    return value if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"


def _json_rows(path: Path) -> Iterator[dict[str, Any] | str | None]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("{"):  # JSON lines saved as .json, common on the hub
            yield from (_parse_line(line) for line in text.split("\n"))
            return
        raise ValueError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of row objects, got {type(data).__name__}")
    for value in data:
        yield value if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"


def _csv_rows(path: Path) -> Iterator[dict[str, Any] | str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            # DictReader files surplus fields under the key None.
            yield "the row has more fields than the header" if None in row else row
