"""Inputs and outputs of `mmreward score`: records from loose files or folders, and results as JSONL or CSV.

    mmreward score --model DIR --input records.jsonl --output scores.jsonl [--on-error skip] [--resume]
    mmreward score --model DIR --prompt "a red circle" a.mp4 b.mp4        # one pair
    mmreward score --model DIR --prompt "a red circle" generated/          # every image/video, pointwise

JSONL results stream to the output as they are scored, one complete line at a time (`ResultFile`); `--resume`
skips the ids already there (`scored_ids`). Every record not scored — rejected while reading, failed while
scoring, or impossible to write — goes to one errors file per run (`ScoreRun`, `errors_path`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mmreward.data.schema import MediaItem, PointwiseRecord, PreferencePair, parse_record
from mmreward.errors import DataError, MMRewardError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}


def media_type(path: Path) -> str:
    """"image" or "video" from the file suffix; anything else is a `DataError` naming the file."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise DataError(f"{path}: not an image or video file (known suffixes: "
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
        raise DataError("no image or video files to score")

    def item(path: Path) -> dict:
        return {"type": media_type(path), "path": str(path.resolve())}

    if len(files) == 2 and all(Path(p).is_file() for p in paths):
        obj = {"id": f"{files[0].name}|{files[1].name}", "prompt": prompt, "a": {"media": [item(files[0])]},
               "b": {"media": [item(files[1])]}, "label": "tie"}
        return [parse_record(obj)]
    return [PointwiseRecord(id=str(f), prompt=prompt, media=[MediaItem(**item(f))]) for f in files]


def write_results(results, path: str | Path | None, stream=None) -> None:
    """Write `ScoreResult`s as JSONL (default) or CSV (`.csv` suffix); `path=None` writes JSONL to `stream`.

    The file is written to `<name>.tmp` and renamed, so a failure leaves no half file. `mmreward score` streams
    JSONL with `ResultFile` instead; this writes a finished list in one go.

    Args:
        results: successful results (failed ones go to the errors file).
        path: output file, or None.
        stream: text stream used when `path` is None.
    """
    rows = [r.to_dict() for r in results]
    if path is None:
        for row in rows:
            stream.write(result_line(row))
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            if path.suffix.lower() == ".csv":
                _write_csv(rows, f)
            else:
                f.writelines(result_line(row) for row in rows)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def result_line(row: dict) -> str:
    """One complete JSON line; raises ValueError (UnicodeEncodeError included) for what no UTF-8 file can hold.

    Non-finite numbers are refused (they are not JSON), and so are lone surrogates (a file name that is not valid
    UTF-8 becomes one): the record is reported as not scored instead of crashing the writer.
    """
    text = json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
    text.encode("utf-8")
    return text


def error_line(row: dict) -> str:
    """One JSON line of the errors file: readable text, or ASCII escapes when a string is not valid Unicode."""
    try:
        return result_line(row)
    except ValueError:
        return json.dumps(row, default=str) + "\n"


class OutputError(MMRewardError, RuntimeError):
    """The output (scores or errors file) could not be written; the message names the file and what was kept."""


def _write_fd(fd: int, data: bytes) -> int:
    """One `os.write` (a seam that tests replace to simulate a full disk)."""
    return os.write(fd, data)


class ResultFile:
    """JSON lines appended to a file or a text stream, one batch per write, flushed at once.

    Every line ends with a newline, and only whole lines are ever left in a file: if a write fails part-way
    (disk full), the file is cut back to its last complete line before the error is raised. A kill -9 can still
    leave a partial last line, but never one that ends with a newline, which is how `--resume` recognises it.

    Args:
        path: the file, or None to write to `stream`.
        append: keep what the file holds (for `--resume`) instead of truncating it.
        stream: text stream used when `path` is None (stdout).
    """

    def __init__(self, path: str | Path | None, *, append: bool = False, stream=None):
        self.path, self.stream, self.lines = None if path is None else Path(path), stream, 0
        self._fd = None
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
            self._fd = os.open(self.path, flags, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as err:
            raise OutputError(f"{self.path}: cannot open for writing ({err.strerror or err})") from None

    @property
    def name(self) -> str:
        return "stdout" if self.path is None else str(self.path)

    def write(self, lines: list[str]) -> None:
        """Append complete lines (each ending in a newline) in one write; raises OutputError naming the file."""
        if not lines:
            return
        try:
            if self._fd is None:
                self.stream.write("".join(lines))
                self.stream.flush()
            else:
                self._write_all("".join(lines).encode("utf-8"))
        except OSError as err:
            if self._fd is None:
                raise OutputError(f"{self.name}: write failed ({err.strerror or err}) after {self.lines} "
                                  "complete line(s)") from None
            raise OutputError(f"{self.name}: write failed ({err.strerror or err}); the {self.lines} complete "
                              "line(s) written before it are intact. Fix the cause (free disk space?) and run "
                              "again with --resume to continue") from None
        self.lines += len(lines)

    def _write_all(self, data: bytes) -> None:
        done = 0
        try:
            while done < len(data):
                done += _write_fd(self._fd, data[done:])
        except OSError:
            try:  # drop the partial batch so the file ends with a complete line
                os.ftruncate(self._fd, self._size)
            except OSError:
                logger.debug("%s: could not cut back a partial write", self.path)
            raise
        self._size += done

    def close(self) -> None:
        """Close the file (a stream is left open)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def scored_ids(path: str | Path) -> Counter:
    """Ids already in a scores JSONL (for `--resume`), counted; a truncated last line is cut off so it is redone.

    Args:
        path: the output of an earlier `mmreward score` run; a missing file counts as empty.

    Returns:
        How many lines each id has (a repeated id in the input is scored once per occurrence).
    """
    path = Path(path)
    done: Counter = Counter()
    if not path.exists():
        return done
    if path.suffix.lower() == ".csv":
        raise DataError(f"{path}: --resume needs a JSONL output; CSV is written once, at the end")
    good = 0  # byte offset just past the last complete line
    try:
        f = path.open("rb")
    except OSError as err:
        raise DataError(f"{path}: cannot read the output to resume ({err.strerror or err})") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                logger.warning("%s:%d: dropping a truncated last line (the run was interrupted while writing "
                               "it); that record is scored again", path.name, lineno)
                break
            try:
                row = json.loads(raw)
            except (ValueError, RecursionError):
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise DataError(f"{path}:{lineno}: not a line written by `mmreward score` (no id); resume only "
                                "into a scores file, or drop --resume to start over")
            done[row["id"]] += 1
            good += len(raw)
    if good < path.stat().st_size:
        os.truncate(path, good)
    return done


def take_done(done: Counter, record_id: str) -> bool:
    """Whether a record is already in the output being resumed (each output line accounts for one record).

    Args:
        done: ids already written (`scored_ids`), counted; an id taken here is counted down.
        record_id: the record's id.

    Returns:
        True when the record is skipped (already scored), False when it is still to be scored.
    """
    if done[record_id] > 0:
        done[record_id] -= 1
        return True
    return False


def read_score_inputs(args, run) -> tuple[list, list[str]]:
    """The records `mmreward score` scores and where each came from (`file:line`, or the media file).

    Args:
        args: the command's options: `files` + `prompt` (loose media), or `input` (a records JSONL) with
            `on_error` and `on_duplicate_id`.
        run: the run's `ScoreRun`; lines rejected while reading go to its errors file.

    Returns:
        The records and their locations, in input order.
    """
    from mmreward.data.schema import iter_jsonl_numbered

    if args.files:
        records = records_from_files(args.files, args.prompt)
        return records, [r.id for r in records]
    numbered = list(iter_jsonl_numbered(args.input, on_error=args.on_error, on_duplicate_id=args.on_duplicate_id,
                                        on_bad=run.read_error))
    return [r for _, r in numbered], [f"{args.input}:{line}" for line, _ in numbered]


def errors_path(output: str | Path | None, input_path: str | Path | None) -> Path:
    """Where `mmreward score` writes the records it did not score.

    `<output stem>.errors.jsonl` next to the output; printing to stdout, `<input stem>.score-errors.jsonl` next
    to the input (not `<stem>.errors.jsonl`, which `mmreward data validate` writes), or `score-errors.jsonl` in
    the working folder when scoring loose files.
    """
    if output:
        base = Path(output)
        return base.with_name(base.stem + ".errors.jsonl")
    if input_path:
        base = Path(input_path)
        return base.with_name(base.stem + ".score-errors.jsonl")
    return Path("score-errors.jsonl")


class ScoreRun:
    """One `mmreward score` run: scores stream to the output, every record not scored to one errors file.

    Errors-file lines are `{"id", "where", "stage", "error"}` (plus `"raw"` for lines rejected while reading):
    `where` is `file:line` (or the media file for loose files); `stage` is "read", "score" or "write". The file
    is created at the first error, and a stale one from an earlier run is removed at the start.

    Args:
        output: where scores go (a `ResultFile`), or None to collect results for a CSV written at the end.
        errors: the errors file.
    """

    def __init__(self, output: ResultFile | None, errors: Path):
        self.output, self.errors_path = output, Path(errors)
        self.errors_path.unlink(missing_ok=True)
        self._errors: ResultFile | None = None
        self.collected: list = []
        self.locations: list[str] = []
        self.n_scored = self.n_read_failed = self.n_score_failed = 0

    @property
    def n_failed(self) -> int:
        """Records not scored in this run, whatever the stage."""
        return self.n_read_failed + self.n_score_failed

    def read_error(self, err, raw: str) -> None:
        """`iter_jsonl`'s `on_bad` hook: a line rejected while reading (a `RecordError`)."""
        self.n_read_failed += 1
        where = f"{err.path}:{err.line}" if err.line is not None else str(err.path)
        message = str(err).removeprefix(f"{err.path.name}:{err.line}: ") if err.path else str(err)
        self._error({"id": _raw_id(raw), "where": where, "stage": "read", "error": message, "raw": raw})

    def add_results(self, results: list) -> None:
        """`stream_scores`' `on_results` hook: write the scored, report the failed; `locations` are in step."""
        lines = []
        for result in results:
            where = self.locations[self.n_scored + self.n_score_failed + len(lines)]
            if result.error is not None:
                self.n_score_failed += 1
                self._error({"id": result.id, "where": where, "stage": "score", "error": result.error})
                continue
            try:
                line = result_line(result.to_dict())
            except ValueError as err:
                self.n_score_failed += 1
                self._error({"id": result.id, "where": where, "stage": "write",
                             "error": f"result cannot be written as UTF-8 JSON ({err})"})
                continue
            lines.append(line)
            if self.output is None:
                self.collected.append(result)
        if self.output is not None:
            self.output.write(lines)
        self.n_scored += len(lines)

    def _error(self, row: dict) -> None:
        if self._errors is None:
            self._errors = ResultFile(self.errors_path)
        self._errors.write([error_line(row)])

    def close(self) -> None:
        """Close the output and errors files."""
        for sink in (self.output, self._errors):
            if sink is not None:
                sink.close()


_ID_PREFIX = re.compile(r'^\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')


def _raw_id(raw: str) -> str | None:
    """The id of a rejected line when it is readable, so the errors file can say which record it was.

    A line that is not valid JSON (cut short, say) still names its id when the id comes first.
    """
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        match = _ID_PREFIX.match(raw)
        obj = {"id": json.loads(match.group(1))} if match else None
    value = obj.get("id") if isinstance(obj, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
