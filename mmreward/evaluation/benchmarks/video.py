"""Loaders of the generation-preference benchmarks (videos, and GenAI-Bench's images) for `BENCHMARKS`.

    videogen_rewardbench   KwaiVGI/VideoGen-RewardBench: videogen-rewardbench.csv + videos/
    genai_bench_image      TIGER-Lab/GenAI-Bench image_generation   (split test_v1 by default, or test)
    genai_bench_edit       TIGER-Lab/GenAI-Bench image_edition
    genai_bench_video      TIGER-Lab/GenAI-Bench video_generation   (videos are URLs in the data)
    mjbench_video          MJ-Bench/MJ-BENCH-VIDEO: test.json + videos/

    data = load_benchmark("genai_bench_video", "/data/GenAI-Bench", {"split": "test", "video_urls": True})

Every loader returns generation pairs: candidate A is the row's first item (left / `video_0` / `path_A`), not
necessarily the preferred one, and the prompt is the generation prompt (the instruction, for edits, with the
source image as the pair's shared media). Rows stay in file order, because the VideoAlign tie-aware metric
depends on row order; ids are the row numbers (or the file's own `id` column). Human ties stay in as
`label="tie"`; what each metric does with them is the metric's business, so the loaders keep what it needs
in `meta` (`vote_type`, `hard`).

`revision` is the Hub commit when the files came from `huggingface-cli download`, the HF cache or a git clone,
else `sha1:<12 hex>` of the table files (for a `datasets` folder or a hub load, the commit in its cache paths or
`fingerprint:<...>`); see `common.dataset_revision`. A count that differs from the paper's is logged
as a warning. Referenced media files must exist unless `options["check_media"]` is false; the error lists the
first missing ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmreward.data.schema import Candidate, MediaItem, PreferencePair, Record
from mmreward.data.sources import (
    DOWNLOAD_HINT,
    BadRow,
    Skip,
    SourceSpec,
    media_path,
    pick,
    read_rows,
    record_id,
    require_text,
)
from mmreward.data.sources.generation import videoalign_video
from mmreward.data.sources.tables import find_tables, iter_tables
from mmreward.evaluation.benchmarks.common import (
    check_media_files,
    check_options,
    dataset_revision,
    embedded_image,
    size_warnings,
)
from mmreward.evaluation.benchmarks.spec import BenchmarkData
from mmreward.evaluation.benchmarks.tables import convert_skipping, finish_pairs, local_path, report_skips

# ---- VideoGen-RewardBench ----

VIDEOGEN_CSV = "videogen-rewardbench.csv"
_VIDEOGEN_COLUMNS = ("path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall")
_VIDEOGEN_HINT = (DOWNLOAD_HINT.format("KwaiVGI/VideoGen-RewardBench", "")
                  + f" and unzip videos.zip there, so that DIR/{VIDEOGEN_CSV} and DIR/videos/<model>/*.mp4 "
                  "exist.")
# The paper and the card give "26.5k" pairs, not an exact count, so the size check is against the rounding.
VIDEOGEN_APPROX_SIZE = 26_500


def load_videogen_rewardbench(source: str | Path, options: dict) -> BenchmarkData:
    """VideoGen-RewardBench: one pair per CSV row, `label` from `Overall`, `dimensions` VQ / MQ / TA.

    "A" / "B" / "same" become A / B / tie. An empty label cell keeps its row, as the official evaluation does
    (pandas reads it as NaN, which `calc_accuracy.py` counts as a decided pair the model never gets right):
    `meta["human"]` holds the four cells with None for an empty one, `dimensions` only the filled ones, and
    an empty `Overall` stores `label="tie"` as a placeholder (the metrics read `meta["human"]`). Video paths
    are relative to the CSV's folder (or `options["media_root"]`); `fps` and `num_frames` of each side go to
    the video's meta, the generating models to `meta["model_a"]` / `meta["model_b"]`. No category.

    Args:
        source: the dataset folder (holding `videogen-rewardbench.csv` and `videos/`) or the CSV itself.
        options: `check_media` (default True), `media_root`.

    Returns:
        The pairs in CSV order (the tie-aware metric depends on it), ids = row numbers.
    """
    name = "videogen_rewardbench"
    check_options(name, options, ("check_media", "media_root"))
    path = local_path(name, source, _VIDEOGEN_HINT)
    csv_path = path / VIDEOGEN_CSV if path.is_dir() else path
    if not csv_path.is_file():
        raise FileNotFoundError(f"{name}: {path} has no {VIDEOGEN_CSV}. {_VIDEOGEN_HINT}")
    _check_header(name, csv_path)
    root = Path(options.get("media_root") or csv_path.parent).expanduser().absolute()
    spec = SourceSpec(name=name, converter=name, path=str(csv_path))
    records, skips = convert_skipping(name, read_rows(spec, hint=_VIDEOGEN_HINT), partial(_videogen_row, root))
    info = {"file": csv_path.name,
            **report_skips(name, records, skips, f"the columns {', '.join(_VIDEOGEN_COLUMNS)}")}
    if options.get("check_media", True):
        check_media_files(name, records, f"Unzip videos.zip next to {VIDEOGEN_CSV} (or set options media_root).")
    info["labels"] = dict(Counter(r.meta["human"]["Overall"] or "empty" for r in records))
    empty = {d: n for d in ("Overall", *VIDEOGEN_DIMENSIONS)
             if (n := sum(r.meta["human"][d] is None for r in records))}
    if empty:
        info["empty_label_cells"] = empty
    if round(len(records), -2) != VIDEOGEN_APPROX_SIZE:
        size_warnings(name, {"items": (len(records), VIDEOGEN_APPROX_SIZE, "The paper and the card give only "
                                       "about 26.5k, a rounded count; numbers are not strictly comparable.")})
    return finish_pairs(name, records, dataset_revision([csv_path], path), None, info)


VIDEOGEN_DIMENSIONS = ("VQ", "MQ", "TA")
_VIDEOGEN_LABELS = {"a": "A", "b": "B", "same": "tie"}


def _videogen_label(obj: dict, key: str) -> str | None:
    """A label cell: "A" / "B" / "tie", None when empty; any other value is a bad row."""
    value = obj.get(key)
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return None
    label = _VIDEOGEN_LABELS.get(str(value).strip().lower())
    if label is None:
        raise BadRow(f"{key} must be A, B, same or empty, got {value!r}")
    return label


def _videogen_row(root: Path, row: int, obj: dict) -> list[Record]:
    human = {key: _videogen_label(obj, key) for key in ("Overall", *VIDEOGEN_DIMENSIONS)}
    a, b = (videoalign_video(obj, side, root) for side in ("A", "B"))
    meta = {"model_a": obj.get("A_model"), "model_b": obj.get("B_model"), "human": human}
    dims = {d: human[d] for d in VIDEOGEN_DIMENSIONS if human[d] is not None}
    return [PreferencePair(id=record_id(None, row), prompt=require_text(obj, "prompt"), a=Candidate(media=[a]),
                           b=Candidate(media=[b]), label=human["Overall"] or "tie", dimensions=dims, meta=meta)]


def _check_header(name: str, csv_path: Path) -> None:
    import csv

    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), [])
    missing = [c for c in _VIDEOGEN_COLUMNS if c not in header]
    if missing:
        training = " (this looks like the VideoAlign training CSV)" if "VQ" in header else ""
        raise ValueError(f"{name}: {csv_path} lacks the column(s) {', '.join(missing)}{training}; expected "
                         f"the benchmark CSV with {', '.join(_VIDEOGEN_COLUMNS)}. {_VIDEOGEN_HINT}")


# ---- GenAI-Bench ----

GENAI_VOTES = {"leftvote": "A", "rightvote": "B", "tievote": "tie", "bothbad_vote": "tie"}
GENAI_SPLITS = ("test_v1", "test")
_GENAI_CONFIGS = ("image_generation", "image_edition", "video_generation")
# Item counts of the published splits (BENCHMARKS.md §2.5.1); the other `test` sizes are only known roughly.
GENAI_SIZES = {("image_generation", "test_v1"): 1735, ("image_edition", "test_v1"): 919,
               ("video_generation", "test_v1"): 1069, ("image_edition", "test"): 983}
_GENAI_HINT = DOWNLOAD_HINT.format("TIGER-Lab/GenAI-Bench", "") + (
    " (parquet shards in DIR/<config>/<split>-*.parquet; configs image_generation, image_edition, "
    "video_generation).")


def load_genai_bench_image(source: str | Path, options: dict) -> BenchmarkData:
    """GenAI-Bench `image_generation`: two generated images per prompt; see `load_genai_bench_video`."""
    return _load_genai(source, options, "image_generation")


def load_genai_bench_edit(source: str | Path, options: dict) -> BenchmarkData:
    """GenAI-Bench `image_edition`: prompt = `instruct_prompt`, shared media = `source_image`, candidates =
    the two edited images; `source_prompt` / `target_prompt` go to meta. See `load_genai_bench_video`."""
    return _load_genai(source, options, "image_edition")


def load_genai_bench_video(source: str | Path, options: dict) -> BenchmarkData:
    """GenAI-Bench `video_generation`: a = `left_video`, b = `right_video`; leftvote -> A, rightvote -> B,
    tievote and bothbad_vote -> tie, with `meta["vote_type"]` kept for the 4-way judge metric.

    The data holds video URLs. By default a video is the file of the same name in `options["video_dir"]`
    (default `<repo folder>/videos`); with `options["video_urls"]` the URL itself is the media (Hub `/blob/`
    links rewritten to `/resolve/`, the raw file). Rows with `video_left` / `video_right` (UnifiedReward's
    local copy) are read the same way. Image configs write embedded images once, named by content hash, to
    `options["media_dir"]` (default `<repo folder>/mmreward_media/<config>-<split>`). The repo folder is the
    source folder, or its parent when that is a config folder (the working directory for a hub id).

    Args:
        source: the repo folder (with `<config>/` sub-folders), a config folder, a parquet / JSON file, a
            `save_to_disk` folder, or the hub id (needs the network).
        options: `split` ("test_v1" default, or "test"), `check_media` (default True), and `video_dir`,
            `video_urls` (video) or `media_dir` (images).

    Returns:
        The pairs in file order; `meta` has `vote_type`, `model_a`, `model_b`.
    """
    return _load_genai(source, options, "video_generation")


def _load_genai(source: Any, options: dict, config: str) -> BenchmarkData:
    name = {"image_generation": "genai_bench_image", "image_edition": "genai_bench_edit",
            "video_generation": "genai_bench_video"}[config]
    video = config == "video_generation"
    check_options(name, options, ("split", "check_media", *(("video_dir", "video_urls") if video
                                                              else ("media_dir",))))
    split = options.get("split", "test_v1")
    if split not in GENAI_SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(GENAI_SPLITS)}, got {split!r}")
    tables, base = _genai_tables(name, source, config, split)
    if video:
        video_dir = Path(options.get("video_dir") or base / "videos").expanduser().absolute()
        media = partial(_genai_video, video_dir, bool(options.get("video_urls")))
    else:
        media_dir = Path(options.get("media_dir") or base / "mmreward_media" / f"{config}-{split}")
        media = partial(_genai_image, base, media_dir.expanduser().absolute())
    records, skips = convert_skipping(name, _numbered(iter_tables(tables)), partial(_genai_row, config, media))
    info = {"config": config, "split": split,
            **report_skips(name, records, skips, "columns prompt, left_*, right_*, vote_type")}
    if options.get("check_media", True):
        check_media_files(name, records, "Download the videos (the left_video / right_video URLs) into the video "
                     "folder under their file names, set options video_dir, or pass video_urls=True."
                     if video else "Check the image paths of the rows.")
    info["vote_counts"] = dict(Counter(r.meta["vote_type"] for r in records))
    revision = dataset_revision(tables, Path(source) if isinstance(tables, list) else None)
    return finish_pairs(name, records, revision, GENAI_SIZES.get((config, split)), info)


def _genai_tables(name: str, source: Any, config: str, split: str) -> tuple[Any, Path]:
    """(table files or a Dataset, folder that relative media and the default media folders sit in)."""
    path = Path(source).expanduser()
    if not path.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", str(source)):
        return _genai_hub(name, str(source), config, split), Path.cwd()
    path = local_path(name, source, _GENAI_HINT)
    base = (path if path.is_dir() else path.parent).absolute()
    if base.name in _GENAI_CONFIGS:  # a config folder (or a shard in it): media sit at the repo root
        base = base.parent
    if path.is_dir() and (path / config).is_dir():
        path = path / config
    elif path.is_dir() and any((path / c).is_dir() for c in _GENAI_CONFIGS):
        raise FileNotFoundError(f"{name}: {path} has no {config}/ folder. {_GENAI_HINT}")
    return find_tables(str(path), split, (), _GENAI_HINT), base


def _genai_hub(name: str, repo: str, config: str, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(repo, config, split=split)
    # Whatever the hub or the network raised, the fix is the same: download the data and point at it.
    except Exception as err:
        raise RuntimeError(f"{name}: loading {repo!r} ({config}, {split}) from the hub failed: {err}. "
                           f"{_GENAI_HINT}") from err


def _numbered(values: Iterable[Any]) -> Iterable[tuple[int, Any]]:
    for row, value in enumerate(values):
        if value is not None:  # a blank JSONL line
            yield row, (Skip(row, value) if isinstance(value, str) else value)


_GENAI_SIDES = {"image_generation": ("left_image", "right_image"),
                "image_edition": ("left_output_image", "right_output_image"),
                "video_generation": ("left_video", "right_video")}


def _genai_row(config: str, media: Callable[[Any, str], MediaItem], row: int, obj: dict) -> list[Record]:
    vote = obj.get("vote_type")
    if vote not in GENAI_VOTES:
        raise BadRow(f"vote_type must be one of {', '.join(GENAI_VOTES)}, got {vote!r}")
    keys = _GENAI_SIDES[config]
    values = [obj.get(key) for key in keys]
    if config == "video_generation" and values == [None, None]:
        values = [obj.get("video_left"), obj.get("video_right")]  # UnifiedReward's flattened local copy
    a, b = (media(value, key) for value, key in zip(values, keys))
    meta = {"vote_type": vote, "model_a": obj.get("left_model"), "model_b": obj.get("right_model")}
    shared: list[MediaItem] = []
    if config == "image_edition":
        prompt = require_text(obj, "instruct_prompt")
        shared = [media(obj.get("source_image"), "source_image")]
        meta.update(pick(obj, ("source_prompt", "target_prompt")))
    else:
        prompt = require_text(obj, "prompt")
    return [PreferencePair(id=record_id(obj.get("id"), row), prompt=prompt, media=shared,
                           a=Candidate(media=[a]), b=Candidate(media=[b]), label=GENAI_VOTES[vote],
                           meta=meta)]


_HUB_BLOB = re.compile(r"^(https?://huggingface\.co/.+?)/blob/")


def _genai_video(video_dir: Path, use_url: bool, value: Any, key: str) -> MediaItem:
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"{key} must be a video URL or file name, got {value!r}")
    if "://" not in value:
        return media_path("video", value, video_dir)
    if use_url:
        # A Hub "/blob/" link is the web page that shows the file; "/resolve/" serves the file itself.
        return MediaItem(type="video", url=_HUB_BLOB.sub(r"\1/resolve/", value))
    file_name = Path(urlparse(value).path).name
    if not file_name:
        raise BadRow(f"{key}: no file name in the URL {value!r}")
    return MediaItem(type="video", path=file_name, base_dir=video_dir, meta={"url": value})


def _genai_image(root: Path, media_dir: Path, value: Any, key: str) -> MediaItem:
    def local(path: Any) -> MediaItem:
        if not isinstance(path, str) or not path:
            raise BadRow(f"{key}: missing image")
        return media_path("image", path, root)

    # Written once, named by content (edit rows repeat their source image).
    return embedded_image(value, media_dir, "", local)


# ---- MJ-Bench-Video ----

MJBENCH_PREFERENCES = {"Video 1 better": "A", "Video 2 better": "B", "Same": "tie", "Hard to judge": "tie"}
_MJBENCH_CANONICAL = {k.lower(): k for k in MJBENCH_PREFERENCES}
_MJBENCH_KEEP = ("video_0_overall_score", "video_1_overall_score", "video_0_total_score",
                 "video_1_total_score", "video_0_label", "video_1_label", "discard")
MJBENCH_SIZE = 1085
_MJBENCH_HINT = DOWNLOAD_HINT.format("MJ-Bench/MJ-BENCH-VIDEO", "") + (
    " (test.json and videos/test/*.mp4; GitHub aiming-lab/MJ-Video has the same file as datas/test.json).")


def load_mjbench_video(source: str | Path, options: dict) -> BenchmarkData:
    """MJ-Bench-Video test set: a = `video_0`, b = `video_1`, label from `overall_preference`.

    "Video 1 better" -> A, "Video 2 better" -> B (any casing), "Same" -> tie, and "Hard to judge" -> tie with
    `meta["hard"] = True` (False otherwise): the official metric scores only the strict pairs, so the loader
    keeps every row and the metric filters. `meta` also keeps `overall_preference`, `category_preference`
    (values case-normalised) and the per-video aspect scores, defect counts and totals under their own keys
    (lower aspect scores are better). Video paths are relative to `<json folder>/videos` (the official layout)
    or `options["media_root"]`.

    Args:
        source: the dataset folder (holding `test.json`, or `datas/test.json`) or the JSON file.
        options: `check_media` (default True), `media_root`.

    Returns:
        The pairs in file order, ids = row numbers.
    """
    name = "mjbench_video"
    check_options(name, options, ("check_media", "media_root"))
    path = local_path(name, source, _MJBENCH_HINT)
    if path.is_dir():
        found = [p for p in (path / "test.json", path / "datas" / "test.json") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{name}: {path} has no test.json. {_MJBENCH_HINT}")
        path = found[0]
    root = Path(options.get("media_root") or path.parent / "videos").expanduser().absolute()
    spec = SourceSpec(name=name, converter=name, path=str(path), split="test")
    records, skips = convert_skipping(name, read_rows(spec, hint=_MJBENCH_HINT), partial(_mjbench_row, root))
    info = {"file": path.name,
            **report_skips(name, records, skips, "rows with caption, video_0_path, video_1_path, "
                            "overall_preference")}
    if options.get("check_media", True):
        check_media_files(name, records, f"Put the videos under {root} (videos/test/*.mp4 of the dataset), or set "
                     "options media_root.")
    info["preferences"] = dict(Counter(r.meta["overall_preference"] for r in records))
    info["strict_pairs"] = sum(r.label != "tie" for r in records)
    return finish_pairs(name, records, dataset_revision([path], Path(source)), MJBENCH_SIZE, info)


def _mjbench_row(root: Path, row: int, obj: dict) -> list[Record]:
    overall = _MJBENCH_CANONICAL.get(str(obj.get("overall_preference")).strip().lower())
    if overall is None:
        raise BadRow(f"overall_preference must be one of {', '.join(MJBENCH_PREFERENCES)}, "
                     f"got {obj.get('overall_preference')!r}")
    categories = obj.get("category_preference")
    if isinstance(categories, dict):
        # An unexpected aspect value is kept as written: it is informative, and no metric depends on it.
        categories = {k: _MJBENCH_CANONICAL.get(str(v).strip().lower(), v) for k, v in categories.items()}
    meta = {"overall_preference": overall, "hard": overall == "Hard to judge",
            "category_preference": categories, **pick(obj, _MJBENCH_KEEP)}
    a, b = (media_path("video", obj.get(f"video_{i}_path"), root) for i in (0, 1))
    return [PreferencePair(id=record_id(None, row), prompt=require_text(obj, "caption"),
                           a=Candidate(media=[a]), b=Candidate(media=[b]), label=MJBENCH_PREFERENCES[overall],
                           meta=meta)]
