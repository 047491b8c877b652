"""Helpers shared by the benchmark loaders (`image`, `text`, `video`; row plumbing in `tables`).

- `check_options`: an unknown option is an error, so a typo cannot silently do nothing.
- `dataset_revision`: what exactly was evaluated. The Hub commit when the files say so (HF cache
  `snapshots/<commit>/`, `huggingface-cli download --local-dir` metadata, a `.git` checkout, or the commit in a
  `datasets` cache path), else `fingerprint:<x>` of a `datasets.Dataset`, else `sha1:<12 hex>` of the table files.
- `size_warnings`: counts that differ from the paper's, logged and returned for `info`.
- `embedded_image` / `save_image_bytes`: image cells (bytes, `{bytes, path}` structs or paths); embedded bytes
  are written once, named by content.
- `check_media_files`: one error that lists the missing local media files.
- `describe_skips` / `log_skips`: the bookkeeping of rows left out.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mmreward.data.schema import MediaItem, Record
from mmreward.data.sources import BadRow

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}")
# PIL format -> file extension (MPO is the multi-picture JPEG some cameras write).
_IMAGE_EXT = {"JPEG": "jpg", "MPO": "jpg"}


# ---- options ----

def check_options(name: str, options: dict, known: Sequence[str]) -> None:
    """Raise ValueError for an option the loader does not know (a typo such as "check_medias").

    Args:
        name: registry name of the benchmark, for the message.
        options: the loader options.
        known: the option names the loader accepts.
    """
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")


# ---- revision: what exactly was evaluated ----

def dataset_revision(tables: Any, top: Path | None = None) -> str | None:
    """Return the dataset revision of the table files (or `datasets.Dataset`) a loader read.

    Args:
        tables: the table files, or a `datasets.Dataset` (hub id or `save_to_disk` folder).
        top: the path the user pointed at (for a file, its folder counts); `.git` checkouts are looked for
            from each file's folder up to it. None (a hub id): only in the file's own folder.

    Returns:
        The 40-hex commit when every file names the same one, `"fingerprint:<x>"` for a Dataset without a
        commit in its cache paths, `"sha1:<12 hex>"` of the table files' bytes, or None.
    """
    if not isinstance(tables, list):
        files = [Path(f["filename"]) for f in getattr(tables, "cache_files", None) or []]
        # The datasets cache keeps hub data under .../<config>/<version>/<commit>/.
        found = next((part for path in files for part in reversed(path.parts) if _SHA.fullmatch(part)), None)
        fingerprint = getattr(tables, "_fingerprint", None)
        return found or (f"fingerprint:{fingerprint}" if fingerprint else None)
    files = [Path(t).absolute() for t in tables]
    if top is not None:
        top = top.expanduser().absolute()
        top = top if top.is_dir() else top.parent
    commits = {_file_commit(path, top) for path in files}
    if len(commits) == 1 and None not in commits:
        return commits.pop()
    digest = hashlib.sha1()
    for path in files:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha1:{digest.hexdigest()[:12]}"


def _file_commit(path: Path, top: Path | None) -> str | None:
    """The commit one file was downloaded at: HF cache path, `--local-dir` metadata, or a `.git` checkout."""
    parts = path.parts  # absolute(), not resolve(): HF cache snapshot files are symlinks into blobs/
    if "snapshots" in parts[:-1]:  # HF cache: .../snapshots/<commit>/<file>
        candidate = parts[parts.index("snapshots") + 1]
        if _SHA.fullmatch(candidate):
            return candidate
    found = _local_dir_commit(path)
    folder = path.parent
    while not found:
        found = _git_head(folder / ".git")
        if top is None or folder == top or top not in folder.parents:
            break
        folder = folder.parent
    return found


def _local_dir_commit(path: Path) -> str | None:
    """The commit `huggingface-cli download --local-dir D` recorded for a file, if it is still that file.

    It writes `D/.cache/huggingface/download/<file>.metadata`: commit, etag, timestamp. A file modified after
    that timestamp is no longer the downloaded one (the rule huggingface_hub itself applies).
    """
    for parent in path.parents:
        meta = parent / ".cache" / "huggingface" / "download" / f"{path.relative_to(parent).as_posix()}.metadata"
        if meta.is_file():
            lines = meta.read_text(encoding="utf-8", errors="replace").splitlines()
            try:
                fresh = path.stat().st_mtime - 1 <= float(lines[2])
            except (IndexError, ValueError):
                return None
            commit = lines[0].strip()
            return commit if fresh and _SHA.fullmatch(commit) else None
    return None


def _git_head(git: Path) -> str | None:
    """The commit checked out in a `.git` folder, read from its files (HEAD, the ref, packed-refs)."""
    head = git / "HEAD"
    if not head.is_file():
        return None
    text = head.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("ref:"):
        return text if _SHA.fullmatch(text) else None
    ref = text.removeprefix("ref:").strip()
    ref_file = git / ref
    if ref_file.is_file():
        line = ref_file.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].strip()
        if _SHA.fullmatch(line):
            return line
    packed = git / "packed-refs"  # a fresh clone may keep the branch only there
    lines = packed.read_text(encoding="utf-8", errors="replace").splitlines() if packed.is_file() else []
    return next((ln[:40] for ln in lines if ln.endswith(f" {ref}") and _SHA.match(ln)), None)


# ---- sizes ----

def size_warnings(name: str, counts: dict[str, tuple[int, int | None, str]]) -> list[str]:
    """Log a warning for each count that differs from the paper's.

    Args:
        name: registry name of the benchmark.
        counts: what is counted ("items", "prompts", ...) -> (our count, the paper's or None, why they may
            differ, "" if unknown).

    Returns:
        The warnings, e.g. "vl_rewardbench: 1247 items, the paper used 1250. <why>", for `info["warnings"]`.
    """
    warnings = []
    for what, (ours, paper, why) in counts.items():
        if paper is not None and ours != paper:
            warnings.append(f"{name}: {ours} {what}, the paper used {paper}. {why}".strip())
            log.warning("%s", warnings[-1])
    return warnings


# ---- media ----

def embedded_image(value: Any, folder: Path, stem: str, resolve: Callable[[Any], MediaItem]) -> MediaItem:
    """Return a MediaItem for an image cell: raw bytes, a `{bytes, path}` struct, or a path.

    Args:
        value: the cell.
        folder: where embedded bytes are written (`save_image_bytes`).
        stem: file name prefix for embedded bytes ("" for the content hash alone).
        resolve: turns a path (or whatever else the cell holds, None included) into a MediaItem, raising
            BadRow when it cannot.
    """
    if isinstance(value, dict):
        value = value["bytes"] if value.get("bytes") is not None else value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return save_image_bytes(bytes(value), folder, stem)
    return resolve(value)


def save_image_bytes(data: bytes, folder: Path, stem: str = "") -> MediaItem:
    """Write embedded image bytes once to `folder/<stem>-<content hash>.<ext>` and refer to it.

    The hash keeps two images that share a stem apart and lets a repeated image (edit rows repeat their
    source image) or a rerun reuse the file. Without a stem the name is a longer hash. The extension comes
    from the image header.

    Args:
        data: the encoded image.
        folder: where the file goes (created when missing).
        stem: file name prefix; characters other than letters, digits, ".", "_" and "-" become "_".

    Returns:
        An image MediaItem relative to `folder`. Raises BadRow for missing or unreadable bytes.
    """
    from PIL import Image

    if not data:
        raise BadRow("image bytes missing")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "img"
            img.verify()  # checks the structure (PNG CRCs); a truncated JPEG body shows only when decoded
    except Exception as err:  # PIL raises many types for bad data; all mean the same here
        raise BadRow(f"unreadable image bytes ({type(err).__name__}: {err})") from err
    digest = hashlib.sha1(data).hexdigest()
    name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', stem)}-{digest[:10]}" if stem else digest[:20]
    dest = folder / f"{name}.{_IMAGE_EXT.get(fmt, fmt.lower())}"
    if not (dest.is_file() and dest.stat().st_size == len(data)):
        folder.mkdir(parents=True, exist_ok=True)
        # A per-process temporary name: under torchrun every rank loads the benchmark at the same time.
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    return MediaItem(type="image", path=dest.name, base_dir=folder)


def check_media_files(name: str, records: Iterable[Record], advice: str) -> None:
    """Raise FileNotFoundError naming the first missing local media files (URLs are not checked).

    Args:
        name: registry name of the benchmark.
        records: the loaded records.
        advice: how to fix it, put in the message.
    """
    seen: set[Path] = set()
    missing: list[Path] = []
    for record in records:
        for item in record.all_media():
            path = item.local_path()
            if path is None or path in seen:
                continue
            seen.add(path)
            if not path.is_file():
                missing.append(path)
    if missing:
        first = ", ".join(str(p) for p in missing[:5])
        raise FileNotFoundError(f"{name}: {len(missing)} of {len(seen)} media files are missing "
                                f"(first: {first}). {advice} Or pass options check_media=False to skip "
                                "this check.")


# ---- rows left out ----

def describe_skips(skips: Sequence[tuple[int | str, str]], limit: int = 3) -> list[str]:
    """Return "row <n>: <reason>" for the first `limit` skipped rows, given as (row, reason) pairs."""
    return [f"row {row}: {reason}" for row, reason in skips[:limit]]


def log_skips(name: str, skips: Sequence[tuple[int | str, str]]) -> None:
    """Log one warning for the rows left out, given as (row, reason) pairs; nothing when there are none."""
    if skips:
        log.warning("%s: skipped %d row(s) that cannot be used, e.g. %s; see info['skipped']", name, len(skips),
                    describe_skips(skips, 1)[0])
