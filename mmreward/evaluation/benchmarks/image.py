"""Loaders for the image reward benchmarks, from each benchmark's published layout to mmreward records.

    data = load_benchmark("vl_rewardbench", "/data/VL-RewardBench")   # HF folder, parquet file or hub id

Pairs (`PreferencePair`): VL-RewardBench, Multimodal RewardBench, MM-RLHF-RewardBench, Pick-a-Pic v2.
List-wise (one `PointwiseRecord` per image, `meta["group"]`, `meta["rank"]`): ImageReward test, HPDv2 test.
RewardBench 2 (text) is in `text.py`. Both use the plumbing of `tables.py` (layout search, row conversion,
size checks) and `common.py` (options, revision, embedded images). `BENCHMARKS[name].download` says how to
get each one.

Options of every loader: `media_dir` (where embedded image bytes are written; default
`<data folder>/.mmreward_media`, or `~/.cache/mmreward/benchmark_media` for hub ids), `media_root` (the folder
relative media paths resolve against), `split`, and `on_error`: "raise" (default: a silently smaller benchmark
gives numbers that look comparable but are not) or "skip" (bad rows left out, listed in `info["skipped"]`).
Sizes other than the paper's are logged as warnings and kept in `info["warnings"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmreward.data.schema import Candidate, MediaItem, PointwiseRecord, PreferencePair
from mmreward.data.sources import BadRow, json_safe, save_image
from mmreward.evaluation.benchmarks.spec import BenchmarkData, download_text
from mmreward.evaluation.benchmarks.tables import (
    Source,
    convert,
    dense_ranks,
    embedded_or_local_image,
    finish,
    local_media,
    open_source,
    text_field,
)
from mmreward.evaluation.metrics import grouped
from mmreward.evaluation.metrics.grouped import MMRLHF_CATEGORIES, mmrb_bucket

# ---- VL-RewardBench ----

def vlrb_category(item_id: str) -> tuple[str, str]:
    """Return (category, source group) of a VL-RewardBench id under the official rule.

    >>> vlrb_category("RLAIF-V-14"), vlrb_category("hallucination_pair-1003")
    (('hallucination', 'rlaif-v'), ('hallucination', 'povid'))
    """
    # `cal.py`'s rule (its POVID branch has a typo; this is the intended rule, which gives the paper's 183 /
    # 749 / 318), kept once in `metrics.grouped`.
    return grouped.vlrb_category(item_id), grouped.vlrb_source(item_id)


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
    `meta`: category (`Category` verbatim) and subcategory (the official bucket, `metrics.grouped.mmrb_bucket`:
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
        raise FileNotFoundError(f"{source}: no local copy of Pick-a-Pic v2. {download_text()}")
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
