"""Converters for response pairs (one shared image / video, or none, and two answers): registered in `SOURCES`.

    rlaif_v             openbmb/RLAIF-V-Dataset parquet, or its TRL form (trl-lib/rlaif-v)
    mm_rlhf             yifanzhang114/MM-RLHF dpo_pairs.jsonl (images, or videos as frame folders)
    vlfeedback          MMInstruction/VLFeedback vlfeedback_80k.jsonl (4 rated completions per prompt)
    povid               YiyangAiLab/POVID_preference_data_for_VLLMs JSON (LLaVA conversations)
    skywork_preference  Skywork/Skywork-Reward-Preference-80K (text only, chat message lists)
    jsonl               records already in mmreward format, or TRL chosen/rejected rows

Candidate A is always the preferred answer (label "A"), except MM-RLHF ties; recipes may swap sides.
Rules shared by all converters (ids, media roots, options, Skips) are in `mmreward.data.sources`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

from mmreward.data.schema import Candidate, MediaItem, PreferencePair, Record, parse_record
from mmreward.data.sources.base import (
    DOWNLOAD_HINT,
    BadRow,
    Skip,
    SourceSpec,
    check_options,
    convert_rows,
    dataset_root,
    frames_dir,
    image_item,
    media_path,
    pick,
    read_rows,
    record_id,
    require_text,
)

# ---- RLAIF-V and TRL rows ----

def rlaif_v(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """RLAIF-V pairs: the row's image is shared media, chosen is A.

    Reads the original columns (`image` {bytes, path}, `question`, `chosen`, `rejected`; `ds_name`,
    `origin_dataset`, `origin_split`, `idx`, `image_path` kept in meta, `idx` is the id) or the TRL
    form (`images`, conversational `prompt` / `chosen` / `rejected`). Image bytes are written to
    `media_dir/<name>/<row>.<ext>` (`<row>-<i>` when a row has several).
    """
    check_options(spec)
    hint = DOWNLOAD_HINT.format("openbmb/RLAIF-V-Dataset", " (or trl-lib/rlaif-v for the TRL form)")
    root = dataset_root(spec)
    return convert_rows(spec, read_rows(spec, hint=hint), partial(_rlaif_row, spec, media_dir, root))


def _rlaif_row(spec: SourceSpec, media_dir: Path, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    if "question" not in obj:
        return [trl_pair(spec, media_dir, root, row, obj)]
    image = image_item(obj.get("image"), spec=spec, media_dir=media_dir, root=root, stem=str(row))
    return [PreferencePair(
        id=record_id(obj.get("idx"), row), prompt=require_text(obj, "question"), media=[image],
        a=Candidate(text=require_text(obj, "chosen")), b=Candidate(text=require_text(obj, "rejected")),
        label="A", meta=pick(obj, ("ds_name", "origin_dataset", "origin_split", "idx", "image_path")),
    )]


def trl_pair(spec: SourceSpec, media_dir: Path, root: Path, row: int, obj: dict[str, Any]) -> PreferencePair:
    """Build a pair from a TRL row (`prompt`, `chosen`, `rejected`, optional `images` / `image`).

    Conversational fields are read as in `schema.parse_record`; other columns go to meta.

    Args:
        spec: the source (names the media sub-folder).
        media_dir: where image bytes are written, as `<spec.name>/<row>.<ext>` (`<row>-<i>` for several).
        root: folder that image paths are relative to.
        row: the row number (the id when the row has no `id`).
        obj: the row.

    Returns:
        The pair, chosen as A. Raises BadRow / RecordError for a row that is not a valid TRL pair.
    """
    images = obj.get("images")
    if images is None:
        images = [] if obj.get("image") is None else [obj["image"]]
    if not isinstance(images, list):
        raise BadRow(f"field 'images' must be a list, got {type(images).__name__}")
    stems = [str(row)] if len(images) == 1 else [f"{row}-{i}" for i in range(len(images))]
    media = [image_item(img, spec=spec, media_dir=media_dir, root=root, stem=stem)
             for img, stem in zip(images, stems)]
    record = parse_record({k: v for k, v in obj.items() if k not in ("images", "image")}, default_id=str(row))
    if not isinstance(record, PreferencePair):  # chosen/rejected rows always parse as pairs; this is for mypy
        raise BadRow("not a preference pair")
    record.media = media
    record.id = record_id(obj.get("id"), row)
    return record


def jsonl(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """Records already in mmreward format (pairs or pointwise), or TRL rows, from any table `read_rows` reads.

    Media paths are relative to the file's folder (as in `schema.iter_jsonl`); TRL image bytes are written
    like RLAIF-V's. A line that breaks the schema is a Skip with the validator's message. Ids are kept (TRL
    rows without an id get the row number).
    """
    check_options(spec)
    root = dataset_root(spec)
    return convert_rows(spec, read_rows(spec), partial(_jsonl_row, spec, media_dir, root))


def _jsonl_row(spec: SourceSpec, media_dir: Path, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    if "a" not in obj and "b" not in obj and ("chosen" in obj or "rejected" in obj):
        return [trl_pair(spec, media_dir, root, row, obj)]
    return [parse_record(obj, base_dir=root)]


# ---- MM-RLHF ----

def mm_rlhf(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """MM-RLHF `dpo_pairs.jsonl`: chosen is A, or a tie when `is_tie` is true.

    `image` is a file and `video` a folder of frames (media type "frames", files in natural order) or a video
    file, both relative to the dataset folder (where the media zips were unpacked). `chosen_reason`,
    `rejected_reason` and `ls_factor` go to meta.
    """
    check_options(spec)
    hint = DOWNLOAD_HINT.format("yifanzhang114/MM-RLHF", " and unzip the media zips (long, mcq, safety, short, video) in DIR")
    rows = read_rows(spec, files=("dpo_pairs.jsonl",), hint=hint)
    return convert_rows(spec, rows, partial(_mm_rlhf_row, spec, dataset_root(spec)))


def _mm_rlhf_row(spec: SourceSpec, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    if obj.get("video") is not None:
        video = obj["video"]
        is_file = isinstance(video, str) and (root / video).is_file()
        media = media_path("video", video, root) if is_file else frames_dir(video, root)
    elif obj.get("image") is not None:
        media = media_path("image", obj["image"], root)
    else:
        raise BadRow("missing field 'image' or 'video'")
    tie = _flag(obj.get("is_tie"), "is_tie")
    return [PreferencePair(
        id=record_id(obj.get("id"), row), prompt=require_text(obj, "prompt"), media=[media],
        a=Candidate(text=require_text(obj, "chosen")), b=Candidate(text=require_text(obj, "rejected")),
        label="tie" if tie else "A", meta=pick(obj, ("chosen_reason", "rejected_reason", "ls_factor")),
    )]


def _flag(value: Any, key: str) -> bool:
    if value in (None, False, 0, "", "false", "False", "0"):
        return False
    if value in (True, 1, "true", "True", "1"):
        return True
    raise BadRow(f"field {key!r} must be a boolean, got {value!r}")


# ---- VLFeedback ----

# Annotation aspect -> dimension name in the records.
VLFEEDBACK_DIMENSIONS = {"Helpfulness": "helpfulness", "Ethical Considerations": "ethics",
                         "Visual Faithfulness": "faithfulness"}


def vlfeedback(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """VLFeedback: pairs of completions ordered by their average rating over the three aspects.

    Ratings are the strings "1"-"5"; "N/A" means the aspect was not rated: it is left out of that
    completion's average and of that dimension's label. A completion with every aspect "N/A" is not paired;
    any other rating text skips the row. In each pair A has the higher average, `margin` is the difference of
    averages and `dimensions` holds helpfulness / ethics / faithfulness labels (A, B or tie).

    `options.pairs`: "best_worst" (default; one pair per prompt: first highest vs first lowest average) or
    "all" (every two completions whose averages differ). Ids are `<id>-<i>-<j>` (completion indices, A
    first). Meta: `model_a`, `model_b` and both completions' ratings.
    """
    check_options(spec, "pairs")
    mode = spec.options.get("pairs", "best_worst")
    if mode not in ("best_worst", "all"):
        raise ValueError(f'source {spec.name!r}: options.pairs must be "best_worst" or "all", got {mode!r}')
    hint = DOWNLOAD_HINT.format("MMInstruction/VLFeedback", " and unzip merged_images.zip in DIR")
    rows = read_rows(spec, files=("vlfeedback_80k.jsonl",), hint=hint)
    return convert_rows(spec, rows, partial(_vlfeedback_row, spec, dataset_root(spec), mode))


def _vlfeedback_row(spec: SourceSpec, root: Path, mode: str, row: int, obj: dict[str, Any]) -> list[Record]:
    prompt, image = require_text(obj, "prompt"), media_path("image", obj.get("img_path"), root)
    completions = obj.get("completions")
    if not isinstance(completions, list):
        raise BadRow("missing field 'completions'")
    rated = []  # (index, average, ratings, completion)
    for i, completion in enumerate(completions):
        if not isinstance(completion, dict):
            raise BadRow(f"completions[{i}] must be an object")
        if not isinstance(completion.get("response"), str) or not completion["response"].strip():
            raise BadRow(f"completions[{i}] has an empty or missing response")
        ratings = _ratings(completion, i)
        known = [v for v in ratings.values() if v is not None]
        if known:
            rated.append((i, sum(known) / len(known), ratings, completion))
    if mode == "all":
        pairs = [(x, y) if x[1] > y[1] else (y, x) for x, y in combinations(rated, 2) if x[1] != y[1]]
    else:
        best = max(rated, key=lambda r: r[1], default=None)
        worst = min(rated, key=lambda r: r[1], default=None)
        pairs = [(best, worst)] if best and worst and best[1] != worst[1] else []
    if not pairs:
        raise BadRow("no two completions with different average ratings")
    return [_vlfeedback_pair(spec, row, obj, prompt, image, hi, lo) for hi, lo in pairs]


def _ratings(completion: dict[str, Any], i: int) -> dict[str, float | None]:
    annotations = completion.get("annotations")
    if not isinstance(annotations, dict):
        raise BadRow(f"completions[{i}] has no annotations")
    ratings: dict[str, float | None] = {}
    for aspect, name in VLFEEDBACK_DIMENSIONS.items():
        rating = (annotations.get(aspect) or {}).get("Rating")
        text = str(rating).strip()
        if text.upper() == "N/A":
            ratings[name] = None
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if rating is None or isinstance(rating, bool) or not 1 <= value <= 5:
            raise BadRow(f"completions[{i}] {aspect} rating is not 1-5 or N/A: {rating!r}")
        ratings[name] = value
    return ratings


def _vlfeedback_pair(spec: SourceSpec, row: int, obj: dict[str, Any], prompt: str, image: MediaItem,
                     hi: tuple, lo: tuple) -> PreferencePair:
    (i, avg_a, ratings_a, comp_a), (j, avg_b, ratings_b, comp_b) = hi, lo
    dims = {}
    for name in VLFEEDBACK_DIMENSIONS.values():
        x, y = ratings_a[name], ratings_b[name]
        if x is not None and y is not None:
            dims[name] = "A" if x > y else "B" if x < y else "tie"
    return PreferencePair(
        id=f"{record_id(obj.get('id'), row)}-{i}-{j}", prompt=prompt, media=[image],
        a=Candidate(text=comp_a["response"]), b=Candidate(text=comp_b["response"]), label="A",
        dimensions=dims, margin=avg_a - avg_b,
        meta={"model_a": comp_a.get("model"), "model_b": comp_b.get("model"),
              "ratings_a": ratings_a, "ratings_b": ratings_b},
    )


# ---- POVID ----

def povid(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """POVID: `conversations` holds the chosen answer, `rejected_conversations` the rejected one.

    The prompt is the first human turn without its `<image>` tag; each answer is the last gpt turn. `image`
    (e.g. "./data/coco/COCO_train2014_....jpg") resolves against `options.image_root` (default: the JSON
    file's folder); when that file does not exist but one with the same name sits directly in image_root (a
    flat COCO train2014 folder), that one is used.
    """
    check_options(spec, "image_root")
    hint = DOWNLOAD_HINT.format("YiyangAiLab/POVID_preference_data_for_VLLMs",
                       "; the images are COCO train2014 (set options.image_root to their folder)")
    root = dataset_root(spec, "image_root")
    return convert_rows(spec, read_rows(spec, hint=hint), partial(_povid_row, spec, root))


def _povid_row(spec: SourceSpec, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    question, chosen = _llava_turns(obj, "conversations")
    question_r, rejected = _llava_turns(obj, "rejected_conversations")
    if question_r != question:
        raise BadRow("conversations and rejected_conversations ask different questions")
    prompt = question.replace("<image>", "").strip()
    if not prompt:
        raise BadRow("the human turn has no question")
    image = media_path("image", obj.get("image"), root)
    flat = os.path.basename(image.path or "")
    if not (root / image.path).is_file() and (root / flat).is_file():
        image.path = flat
    return [PreferencePair(
        id=record_id(obj.get("id"), row), prompt=prompt, media=[image],
        a=Candidate(text=chosen), b=Candidate(text=rejected), label="A",
    )]


def _llava_turns(obj: dict[str, Any], key: str) -> tuple[str, str]:
    """First human turn and last gpt turn of a LLaVA conversation."""
    turns = obj.get(key)
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise BadRow(f"missing field {key!r}")
    human = [t.get("value") for t in turns if t.get("from") == "human"]
    gpt = [t.get("value") for t in turns if t.get("from") == "gpt"]
    if not human or not gpt:
        raise BadRow(f"{key!r} needs a human and a gpt turn")
    if not isinstance(gpt[-1], str) or not gpt[-1].strip():
        raise BadRow(f"the answer in {key!r} is empty")
    return str(human[0]), gpt[-1]


# ---- Skywork-Reward-Preference ----

def skywork_preference(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """Skywork-Reward-Preference: text-only pairs from `chosen` / `rejected` message lists.

    Both lists must share every message before the last, which is the assistant answer. The prompt is the
    last user message before it; a leading system message becomes `system`; any earlier turns are kept as
    `meta["context"]` ([{role, content}], oldest first). `source` goes to meta.
    """
    check_options(spec)
    hint = DOWNLOAD_HINT.format("Skywork/Skywork-Reward-Preference-80K-v0.2", "")
    return convert_rows(spec, read_rows(spec, hint=hint), partial(_skywork_row, spec))


def _skywork_row(spec: SourceSpec, row: int, obj: dict[str, Any]) -> list[Record]:
    chosen, rejected = _messages(obj, "chosen"), _messages(obj, "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise BadRow("chosen and rejected differ before the last message")
    for key, messages in (("chosen", chosen), ("rejected", rejected)):
        if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            raise BadRow(f"the last message of {key!r} is not a non-empty assistant message")
    context = chosen[:-1]
    system = None
    if context and context[0]["role"] == "system":
        system, context = context[0]["content"], context[1:]
    if not context or context[-1]["role"] != "user":
        raise BadRow("no user message before the answer")
    meta = pick(obj, ("source",))
    if context[:-1]:
        meta["context"] = context[:-1]
    return [PreferencePair(
        id=record_id(obj.get("id"), row), prompt=context[-1]["content"], system=system,
        a=Candidate(text=chosen[-1]["content"]), b=Candidate(text=rejected[-1]["content"]), label="A",
        meta=meta,
    )]


def _messages(obj: dict[str, Any], key: str) -> list[dict[str, str]]:
    messages = obj.get(key)
    if not isinstance(messages, list) or not messages:
        raise BadRow(f"missing field {key!r}")
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) \
                or not isinstance(msg.get("content"), str):
            raise BadRow(f"{key}[{i}] must be a message with text role and content")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out
