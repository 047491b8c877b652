"""Loaders for the image reward benchmarks, from each benchmark's published layout to mmreward records.

    data = load_benchmark("vl_rewardbench", "/data/VL-RewardBench")   # HF folder, parquet file or hub id

Pairs (`PreferencePair`): VL-RewardBench, Multimodal RewardBench, MM-RLHF-RewardBench, Pick-a-Pic v2.
List-wise (one `PointwiseRecord` per image, `meta["group"]`, `meta["rank"]`): ImageReward test, HPDv2 test.
RewardBench 2 (text) is in `benchmarks_text` and shares the plumbing here, which builds on
`benchmarks_common` (options, revision, size warnings, embedded images). `BENCHMARKS[name].download` says how to
get each one.

Options of every loader: `media_dir` (where embedded image bytes are written; default
`<data folder>/.mmreward_media`, or `~/.cache/mmreward/benchmark_media` for hub ids), `media_root` (the folder
relative media paths resolve against), `split`, and `on_error`: "raise" (default: a silently smaller benchmark
gives numbers that look comparable but are not) or "skip" (bad rows left out, listed in `info["skipped"]`).
Sizes other than the paper's are logged as warnings and kept in `info["warnings"]`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmreward.data.schema import Candidate, MediaItem, PointwiseRecord, PreferencePair, RecordError
from mmreward.data.sources import BadRow, SourceSpec, frames_dir, json_safe, media_path, save_image
from mmreward.data.sources_io import find_tables, iter_tables
from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData
from mmreward.evaluation.benchmarks_common import (
    check_options,
    dataset_revision,
    embedded_image,
    log_skips,
    size_warnings,
)
from mmreward.evaluation.metrics_grouped import mmrb_bucket

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
    hint = f"Expected the {name} layout ({', '.join(files) or 'parquet shards'}). {download_text(name)}"
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


def download_text(name: str) -> str:
    """Return the registry's "how to obtain" text for a benchmark ("" when it is not registered)."""
    spec = BENCHMARKS.get(name)
    return f"To obtain it: {spec.download}" if spec else ""


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
                                 f"{', '.join(obj)}). {download_text(src.name)}")
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
        raise ValueError(f"{src.spec.path}: no rows found for {src.name}. {download_text(src.name)}")
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


# ---- VL-RewardBench ----

# Official grouping (`cal.py`; its POVID branch has a typo, this is the intended rule, which gives the paper's
# 183 / 749 / 318): the id cut at its first "_" or "-" names the source ...
VLRB_SOURCES = {"RLAIF": "rlaif-v", "RLHF": "rlhf-v", "mathverse": "reasoning_tasks",
                "mmmu": "reasoning_tasks", "wildvision": "wildvision-battle", "hallucination": "povid"}
# ... and sources map to the three reported categories (anything else is VLFeedback, i.e. general).
VLRB_CATEGORIES = {"vlfeedback": "general", "wildvision-battle": "general", "povid": "hallucination",
                   "rlaif-v": "hallucination", "rlhf-v": "hallucination", "reasoning_tasks": "reasoning"}


def vlrb_category(item_id: str) -> tuple[str, str]:
    """Return (category, source group) of a VL-RewardBench id under the official rule.

    >>> vlrb_category("RLAIF-V-14"), vlrb_category("hallucination_pair-1003")
    (('hallucination', 'rlaif-v'), ('hallucination', 'povid'))
    """
    group = VLRB_SOURCES.get(re.split(r"[_-]", item_id, maxsplit=1)[0], "vlfeedback")
    return VLRB_CATEGORIES[group], group


def load_vl_rewardbench(source: Any, options: dict) -> BenchmarkData:
    """VL-RewardBench (split `test`): a = response[0], b = response[1], label from `human_ranking` (0 = best).

    The image (parquet `{bytes, path}`, or a relative path in JSON mirrors) is the shared media. `meta`:
    category and subcategory (official id-prefix rule, `vlrb_category`), the raw `source_id`, `query_source`,
    `models`, `judge`, `ground_truth`, `human_ranking`. "<image>\\n" is removed from the query, as the official
    inference does. The paper has 1,250 items, the HF revision now 1,247.
    """
    src = open_source("vl_rewardbench", source, options, split="test", media_subdirs=("",))
    records = convert(src, ("id", "query", "response", "image", "human_ranking"),
                      lambda row, obj: [_vlrb_row(src, obj)])
    why = "The current HF revision has 1,247 items (a 'clean povid queries' commit); see `revision`."
    return finish(src, "pairs", records, {"items": (len(records), 1250, why)}, expected_size=1250)


def _vlrb_row(src: Source, obj: dict) -> PreferencePair:
    item_id = str(obj["id"])
    response, ranking = obj["response"], obj["human_ranking"]
    if not (isinstance(response, list) and len(response) == 2 and all(isinstance(r, str) for r in response)):
        raise BadRow(f"response must be a list of two texts, got {response!r}"[:200])
    if not (isinstance(ranking, list) and len(ranking) == 2):
        raise BadRow(f"human_ranking must have two entries, got {ranking!r}")
    label = "A" if ranking[0] < ranking[1] else "B" if ranking[0] > ranking[1] else "tie"
    image = embedded_or_local_image(obj["image"], src, item_id)
    category, group = vlrb_category(item_id)
    extra = {k: obj[k] for k in ("query_source", "models", "judge", "ground_truth") if obj.get(k) is not None}
    meta = {"category": category, "subcategory": group, "source_id": item_id, **extra,
            "human_ranking": list(ranking)}
    # The official inference drops the "<image>\n" placeholder: the image is passed as media instead.
    prompt = text_field(obj, "query").replace("<image>\n", "")
    return PreferencePair(id=item_id, prompt=prompt, media=[image],
                          a=Candidate(text=response[0]), b=Candidate(text=response[1]), label=label,
                          meta=json_safe(meta))


# ---- Multimodal RewardBench ----

def load_multimodal_rewardbench(source: Any, options: dict) -> BenchmarkData:
    """Multimodal RewardBench: a = Output1, b = Output2, label from `Better`; `Image` is relative to `data/`.

    Reads `data/all_data.json` (prompts filled in by the repo's `scripts/0_download_data.py`), else
    `all_data_release.json`, whose rows lack `Text` until that script has run (such rows are errors).
    `meta`: category (`Category` verbatim) and subcategory (the official bucket, `metrics_grouped.mmrb_bucket`:
    safety/bias, safety/toxicity, reasoning/math, reasoning/coding, or the category). The paper has 5,211
    items; the release 4,711.
    """
    files = ("all_data.json", "data/all_data.json", "all_data_release.json", "data/all_data_release.json")
    src = open_source("multimodal_rewardbench", source, options, split="test", files=files)
    records = convert(src, ("ID", "Image", "Output1", "Output2", "Better", "Category"),
                      lambda row, obj: [_mmrb_row(src, row, obj)])
    why = "The public release lacks the 500 Hateful-Memes safety items; compare with the paper with care."
    return finish(src, "pairs", records, {"items": (len(records), 5211, why)}, expected_size=5211)


def _mmrb_row(src: Source, row: int, obj: dict) -> PreferencePair:
    item_id = str(obj.get("ID") or row)
    label = {"Output1": "A", "Output2": "B"}.get(obj.get("Better"))
    if label is None:
        raise BadRow(f"Better must be 'Output1' or 'Output2', got {obj.get('Better')!r}")
    if not isinstance(obj.get("Text"), str) or not obj["Text"].strip():
        raise BadRow("no 'Text' (prompt): run the repo's scripts/0_download_data.py (writes all_data.json)")
    category = text_field(obj, "Category")
    meta = {"category": category, "subcategory": mmrb_bucket(category, item_id), "source_id": item_id}
    return PreferencePair(id=item_id, prompt=obj["Text"], media=[local_media("image", obj["Image"], src)],
                          a=Candidate(text=text_field(obj, "Output1")),
                          b=Candidate(text=text_field(obj, "Output2")), label=label, meta=meta)


# ---- MM-RLHF-RewardBench ----

# Category = the first of these found in the media path (the official eval script's order).
MMRLHF_CATEGORIES = ("mcq", "long", "short", "safety", "video")


def load_mm_rlhf_rewardbench(source: Any, options: dict) -> BenchmarkData:
    """MM-RLHF-RewardBench `mm_reward_bench.jsonl`: a = chosen, b = rejected, label "A".

    `image` is a file and `video` a folder of frames (media type "frames"), relative to the dataset folder or
    its `images/`. Both published layouts load: `images/video/<clip>/` (as the path says) and the HF layout
    with the clip folders directly under `images/` (`images/<clip>/`, no `video/` level). Ids repeat (170
    pairs, 46 prompts): `meta["group"]` is the id (for Acc+), record ids get `#k`. `meta["media_path"]` is the
    path as written in the file and `meta["category"]` the first of mcq / long / short / safety / video in it
    (the official script's rule, independent of where the files sit).
    """
    src = open_source("mm_rlhf_rewardbench", source, options, split="test", files=("mm_reward_bench.jsonl",),
                      media_subdirs=("images", ""))
    records = convert(src, ("id", "prompt", "chosen", "rejected"), lambda row, obj: [_mmrlhf_row(src, obj)])
    groups = len({r.meta["group"] for r in records})
    return finish(src, "pairs", records, {"pairs": (len(records), 170, ""), "prompt ids": (groups, 46, "")},
                  expected_size=170)


def _mmrlhf_row(src: Source, obj: dict) -> PreferencePair:
    path = obj.get("video") if obj.get("video") is not None else obj.get("image")
    if path is None:
        raise BadRow("missing field 'image' or 'video'")
    media = _mmrlhf_media("video" if obj.get("video") is not None else "image", path, src)
    group = str(obj["id"])
    category = next((k for k in MMRLHF_CATEGORIES if k in path), "other")
    meta = {"category": category, "group": group, "media_path": path,
            **{k: obj[k] for k in ("chosen_reason", "rejected_reason") if obj.get(k) is not None}}
    return PreferencePair(id=group, prompt=text_field(obj, "prompt"), media=[media],
                          a=Candidate(text=text_field(obj, "chosen")),
                          b=Candidate(text=text_field(obj, "rejected")), label="A", meta=meta)


def _mmrlhf_media(kind: str, path: Any, src: Source) -> MediaItem:
    """The media at `path`, or for `video/<clip>` at `<clip>` (the HF layout keeps clips directly in images/)."""
    try:
        return local_media(kind, path, src)
    except BadRow:
        if not (isinstance(path, str) and path.startswith("video/")):
            raise
        try:
            return local_media(kind, path.removeprefix("video/"), src)
        except BadRow:
            raise BadRow(f"{kind} not found: {path} (nor {path.removeprefix('video/')}; looked in "
                         f"{', '.join(str(r) for r in src.roots)})") from None


# ---- list-wise image sets: ImageReward test, HPDv2 test ----

def load_imagereward_test(source: Any, options: dict) -> BenchmarkData:
    """ImageReward `data/test.json`: one PointwiseRecord per generation, images under `data/test_images/`.

    `ranking[i]` is image i's human rank (1 = best, ties allowed): `meta["rank"]` is its dense form
    (1, 2, ...), `meta["raw_rank"]` the published value, `meta["group"]` the prompt id. 466 prompts, 2,720
    images.
    """
    src = open_source("imagereward_test", source, options, files=("test.json", "data/test.json"),
                      media_subdirs=("test_images", ""))
    records = convert(src, ("id", "prompt", "generations", "ranking"),
                      lambda row, obj: _listwise_rows(src, str(obj["id"]), obj, "generations", "ranking"))
    groups = len({r.meta["group"] for r in records})
    counts = {"prompts": (groups, 466, ""), "images": (len(records), 2720, "")}
    return finish(src, "listwise", records, counts, expected_size=2720)


def load_hpdv2_test(source: Any, options: dict) -> BenchmarkData:
    """HPDv2 `test.json`: one PointwiseRecord per image of each prompt, images in the folder or its `test/`.

    `rank[i]` is image i's averaged human rank, smaller = better (HPSv2 compares it with the position in
    `argsort(-score)`): `meta["rank"]` is its dense form (1 = best), `meta["raw_rank"]` the published value,
    `meta["group"]` the row number (test.json has no id).
    """
    src = open_source("hpdv2_test", source, options, files=("test.json",), media_subdirs=("", "test"))
    records = convert(src, ("prompt", "image_path", "rank"),
                      lambda row, obj: _listwise_rows(src, str(row), obj, "image_path", "rank"))
    return finish(src, "listwise", records, {})


def _listwise_rows(src: Source, group: str, obj: dict, images_key: str,
                   rank_key: str) -> list[PointwiseRecord]:
    images, ranks = obj[images_key], obj[rank_key]
    if not (isinstance(images, list) and isinstance(ranks, list) and len(images) == len(ranks) >= 2):
        raise BadRow(f"{images_key} and {rank_key} must be lists of the same length >= 2")
    prompt = text_field(obj, "prompt")
    return [PointwiseRecord(id=f"{group}/{i}", prompt=prompt, media=[local_media("image", path, src)],
                            meta={"group": group, "rank": rank, "raw_rank": raw, "index": i})
            for i, (path, raw, rank) in enumerate(zip(images, ranks, dense_ranks(ranks)))]


# ---- Pick-a-Pic v2 ----

_PICKAPIC_LABELS = {(1.0, 0.0): "A", (0.0, 1.0): "B", (0.5, 0.5): "tie"}


def load_pickapic_v2_test(source: Any, options: dict) -> BenchmarkData:
    """Pick-a-Pic v2 `test_unique` (or `validation_unique`, `options["split"]`): a = jpg_0, b = jpg_1.

    Labels: 1/0 -> A, 0/1 -> B, 0.5/0.5 -> tie. No row is filtered out (training filters such as
    `are_different` do not apply to evaluation). Ids are `ranking_id` (else the row number).
    """
    if not Path(str(source)).expanduser().exists():
        # From a hub id, `datasets` would fetch all of Pick-a-Pic v2 (about 335 GB) to build one 500-row split.
        raise FileNotFoundError(f"{source}: no local copy of Pick-a-Pic v2. {download_text('pickapic_v2_test')}")
    src = open_source("pickapic_v2_test", source, options, split="test_unique")
    records = convert(src, ("caption", "jpg_0", "jpg_1", "label_0", "label_1"),
                      lambda row, obj: [_pickapic_row(src, row, obj)])
    paper = 500 if src.spec.split.endswith("_unique") else None
    return finish(src, "pairs", records, {"items": (len(records), paper, "")}, expected_size=paper)


def _pickapic_row(src: Source, row: int, obj: dict) -> PreferencePair:
    labels = (float(obj["label_0"]), float(obj["label_1"]))
    label = _PICKAPIC_LABELS.get(labels)
    if label is None:
        raise BadRow(f"label_0 / label_1 must be 1/0, 0/1 or 0.5/0.5, got {labels[0]:g}/{labels[1]:g}")
    sides = []
    for i in (0, 1):
        uid = obj.get(f"image_{i}_uid")
        # A uid names the image itself, so a rerun reuses the file instead of rewriting it.
        sides.append(save_image(obj[f"jpg_{i}"], spec=src.spec, media_dir=src.media_dir,
                                stem=str(uid or f"{row}-{i}"), reuse=bool(uid)))
    keys = ("ranking_id", "user_id", "model_0", "model_1", "image_0_uid", "image_1_uid", "best_image_uid",
            "are_different", "has_label", "num_example_per_prompt", "created_at")
    item_id = obj["ranking_id"] if obj.get("ranking_id") is not None else row
    return PreferencePair(id=str(item_id), prompt=text_field(obj, "caption"),
                          a=Candidate(media=[sides[0]]), b=Candidate(media=[sides[1]]), label=label,
                          meta=json_safe({k: obj[k] for k in keys if obj.get(k) is not None}))
