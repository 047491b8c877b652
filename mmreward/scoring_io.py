"""Inputs and outputs of `mmreward score`: records from loose files or folders, and results as JSONL or CSV.

    mmreward score --model DIR --input records.jsonl --output scores.jsonl [--on-error skip]
    mmreward score --model DIR --prompt "a red circle" a.mp4 b.mp4        # one pair
    mmreward score --model DIR --prompt "a red circle" generated/          # every image/video, pointwise
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from mmreward.data.schema import MediaItem, PointwiseRecord, PreferencePair, parse_record

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}


def media_type(path: Path) -> str:
    """"image" or "video" from the file suffix; anything else is a `ValueError` naming the file."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise ValueError(f"{path}: not an image or video file (known suffixes: "
                     f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")


def expand_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their image/video files (sorted, non-recursive)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def records_from_files(paths: Iterable[str | Path], prompt: str) -> list[PreferencePair | PointwiseRecord]:
    """Records for loose media: exactly two files give one pair (A = first); otherwise one pointwise record each.

    Args:
        paths: image/video files or folders of them.
        prompt: the generation prompt shared by all files.

    Returns:
        The records, ids being the file paths.
    """
    files = expand_files(paths)
    if not files:
        raise ValueError("no image or video files to score")

    def item(path: Path) -> dict:
        return {"type": media_type(path), "path": str(path.resolve())}

    if len(files) == 2 and all(Path(p).is_file() for p in paths):
        obj = {"id": f"{files[0].name}|{files[1].name}", "prompt": prompt, "a": {"media": [item(files[0])]},
               "b": {"media": [item(files[1])]}, "label": "tie"}
        return [parse_record(obj)]
    return [PointwiseRecord(id=str(f), prompt=prompt, media=[MediaItem(**item(f))]) for f in files]


def write_results(results, path: str | Path | None, stream=None) -> None:
    """Write `ScoreResult`s as JSONL (default) or CSV (`.csv` suffix); `path=None` writes JSONL to `stream`.

    Args:
        results: successful results (failed ones go to `write_errors`).
        path: output file, or None.
        stream: text stream used when `path` is None.
    """
    rows = [r.to_dict() for r in results]
    if path is not None and Path(path).suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            _write_csv(rows, f)
        return
    if path is None:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(rows: list[dict], f) -> None:
    """Flat columns: id, score / score_a, score_b, preferred, then one column per dimension (and side)."""
    columns: list[str] = []
    flat_rows = []
    for row in rows:
        flat = {k: v for k, v in row.items() if k != "scores"}
        for dim, value in row.get("scores", {}).items():
            if isinstance(value, list):
                flat[f"{dim}_a"], flat[f"{dim}_b"] = value
            else:
                flat[dim] = value
        flat_rows.append(flat)
        columns += [k for k in flat if k not in columns]
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat_rows)


def write_errors(failed, path: str | Path) -> None:
    """One JSON line per failed record: {"id", "error"}."""
    with open(path, "w", encoding="utf-8") as f:
        for result in failed:
            f.write(json.dumps({"id": result.id, "error": result.error}, ensure_ascii=False) + "\n")


def errors_path(output: str | Path | None, fallback: str | Path) -> Path:
    """`<output stem>.errors.jsonl` next to the output (or next to `fallback` when printing to stdout)."""
    base = Path(output) if output else Path(fallback)
    return base.with_name(base.stem + ".errors.jsonl")
