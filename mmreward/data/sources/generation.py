"""Converters for generated images and videos: registered in `SOURCES`.

    pickapic_v2     yuvalkirstain/pickapic_v2 parquet (two JPEGs per row, 0/1 or 0.5/0.5 labels)
    hpdv2           zhwang/HPDv2 train.json (two image paths, human_preference marks the preferred one)
    videoalign_csv  the VideoAlign training CSV (two videos, A/B/same per VQ, MQ, TA)
    videofeedback   TIGER-Lab/VideoFeedback `annotated` config: one video, 5 scores -> PointwiseRecord

In the pairs, candidate A is the first image / video of the row (not necessarily the preferred one) and the
prompt is the generation prompt. Rules shared by all converters are in `mmreward.data.sources`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mmreward.data.schema import Candidate, MediaItem, PointwiseRecord, PreferencePair, Record
from mmreward.data.sources.base import (
    DOWNLOAD_HINT,
    BadRow,
    Skip,
    SourceSpec,
    check_options,
    convert_rows,
    dataset_root,
    image_item,
    media_path,
    pick,
    read_rows,
    record_id,
    require_text,
    save_image,
)

# ---- Pick-a-Pic v2 ----

def pickapic_v2(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """Pick-a-Pic v2: a = image 0, b = image 1, label from `label_0` / `label_1` (0.5 / 0.5 is a tie).

    `jpg_0` / `jpg_1` bytes are written to `media_dir/<name>/<image uid>.<ext>` and reused on a rerun; rows
    of the `_no_images` variant refer to `image_<i>_url` instead. Rows with `has_label` false or no labels
    and rows with `are_different` false are skipped (PickScore trains on neither). Ids are row numbers;
    meta keeps ranking, user, models, uids and creation time.
    """
    check_options(spec)
    rows = read_rows(spec, hint=DOWNLOAD_HINT.format("yuvalkirstain/pickapic_v2", " (about 335 GB with images)"))
    return convert_rows(spec, rows, partial(_pickapic_row, spec, media_dir))


def _pickapic_row(spec: SourceSpec, media_dir: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    if obj.get("has_label") is False or obj.get("label_0") is None or obj.get("label_1") is None:
        raise BadRow("no preference label (has_label is false or label_0 / label_1 missing)")
    if obj.get("are_different") is False:
        raise BadRow("are_different is false: the two images are the same")
    labels = (float(obj["label_0"]), float(obj["label_1"]))
    label = {(1.0, 0.0): "A", (0.0, 1.0): "B", (0.5, 0.5): "tie"}.get(labels)
    if label is None:
        raise BadRow(f"label_0 / label_1 must be 1/0, 0/1 or 0.5/0.5, got {labels[0]:g}/{labels[1]:g}")
    a, b = (_pickapic_image(spec, media_dir, row, obj, i) for i in (0, 1))
    meta = pick(obj, ("ranking_id", "user_id", "model_0", "model_1", "image_0_uid", "image_1_uid",
                      "best_image_uid", "created_at"))
    return [PreferencePair(id=record_id(None, row), prompt=require_text(obj, "caption"),
                           a=Candidate(media=[a]), b=Candidate(media=[b]), label=label, meta=meta)]


def _pickapic_image(spec: SourceSpec, media_dir: Path, row: int, obj: dict[str, Any], i: int) -> MediaItem:
    data, uid, url = obj.get(f"jpg_{i}"), obj.get(f"image_{i}_uid"), obj.get(f"image_{i}_url")
    if data is None and isinstance(url, str) and url:
        return MediaItem(type="image", url=url)
    if data is None:
        raise BadRow(f"missing field 'jpg_{i}'")
    # A uid names the image itself (images recur across rows), so the file can be shared and reused.
    return save_image(data, spec=spec, media_dir=media_dir, stem=str(uid or f"{row}-{i}"), reuse=bool(uid))


# ---- HPDv2 ----

def hpdv2(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """HPDv2 `train.json`: a = first image, b = second; `human_preference` [1, 0] -> A, [0, 1] -> B.

    Images are `file_path` entries relative to the dataset folder (or `options.media_root`); when a path is
    missing there but present under `<folder>/<split>/`, that one is used. Rows whose images are stored in
    the table (`image` / `images`: bytes or {bytes, path}) are written like Pick-a-Pic's. Rows without
    `human_preference` (test.json holds rankings, not pairs) are skipped. Ids are row numbers.
    """
    check_options(spec)
    rows = read_rows(spec, hint=DOWNLOAD_HINT.format("zhwang/HPDv2", " and unpack the image archives of the split in DIR"))
    return convert_rows(spec, rows, partial(_hpdv2_row, spec, media_dir, dataset_root(spec)))


def _hpdv2_row(spec: SourceSpec, media_dir: Path, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    preference = obj.get("human_preference")
    if preference is None:
        raise BadRow("missing field 'human_preference' (HPDv2 test rows hold rankings, not pairs)")
    label = {(1, 0): "A", (0, 1): "B"}.get(tuple(preference) if isinstance(preference, list) else None)
    if label is None:
        raise BadRow(f"human_preference must be [1, 0] or [0, 1], got {preference!r}")
    images = next((obj[k] for k in ("file_path", "image", "images") if obj.get(k) is not None), None)
    if not isinstance(images, list) or len(images) != 2:
        raise BadRow(f"expected two images in 'file_path', got {images!r}"[:200])
    a, b = (_hpdv2_image(spec, media_dir, root, row, i, image) for i, image in enumerate(images))
    return [PreferencePair(id=record_id(None, row), prompt=require_text(obj, "prompt"),
                           a=Candidate(media=[a]), b=Candidate(media=[b]), label=label,
                           meta=pick(obj, ("user_hash",)))]


def _hpdv2_image(spec: SourceSpec, media_dir: Path, root: Path, row: int, i: int, value: Any) -> MediaItem:
    item = image_item(value, spec=spec, media_dir=media_dir, root=root, stem=f"{row}-{i}")
    if isinstance(value, str) and not (root / item.path).is_file() and (root / spec.split / item.path).is_file():
        item.path = str(Path(spec.split) / item.path)
    return item


# ---- VideoAlign CSV ----

VIDEOALIGN_DIMENSIONS = ("VQ", "MQ", "TA")
_VIDEOALIGN_LABELS = {"a": "A", "b": "B", "same": "tie", "tie": "tie"}


def videoalign_csv(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """VideoAlign training CSV: a = `path_A`, b = `path_B`, dimensions VQ / MQ / TA (A, B, same -> tie).

    The overall label is the `Overall` column when the CSV has one (the eval CSV does); otherwise the label
    that at least two of the three dimensions agree on, and a tie when all three differ. So B,B,A -> B and
    same,same,A -> tie; meta["overall_from"] says which rule gave it. Video paths are relative to the CSV's
    folder ("./videos/x.mp4" is stored as "videos/x.mp4"); `fps_*` and `num_frames_*` go to each video's
    meta, `A_model` / `B_model` to the record's. Ids are row numbers.
    """
    check_options(spec)
    hint = "The VideoAlign repo ships datasets/train/example.csv; the 182k-pair training set is not public."
    return convert_rows(spec, read_rows(spec, hint=hint), partial(_videoalign_row, spec, dataset_root(spec)))


def _videoalign_row(spec: SourceSpec, root: Path, row: int, obj: dict[str, Any]) -> list[Record]:
    dims = {d: _videoalign_label(obj, d) for d in VIDEOALIGN_DIMENSIONS}
    if obj.get("Overall") not in (None, ""):
        label, rule = _videoalign_label(obj, "Overall"), "Overall"
    else:
        top, count = Counter(dims.values()).most_common(1)[0]
        label, rule = (top if count >= 2 else "tie"), "majority"
    a, b = (videoalign_video(obj, side, root) for side in ("A", "B"))
    meta = {**pick(obj, ("A_model", "B_model")), "overall_from": rule}
    return [PreferencePair(id=record_id(None, row), prompt=require_text(obj, "prompt"),
                           a=Candidate(media=[a]), b=Candidate(media=[b]), label=label, dimensions=dims,
                           meta=meta)]


def _videoalign_label(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    label = _VIDEOALIGN_LABELS.get(str(value).strip().lower()) if value is not None else None
    if label is None:
        raise BadRow(f"{key} must be A, B or same, got {value!r}")
    return label


def videoalign_video(obj: dict[str, Any], side: str, root: Path) -> MediaItem:
    """Side "A" or "B" of a VideoAlign-layout row (`path_A`, `fps_A`, `num_frames_A`; VideoGen-RewardBench too)."""
    meta = {}
    for key, kind in ((f"fps_{side}", float), (f"num_frames_{side}", int)):
        if obj.get(key) not in (None, ""):
            try:
                meta[key.rsplit("_", 1)[0]] = kind(float(obj[key]))  # "126.0" -> 126
            except ValueError:
                raise BadRow(f"{key} must be a number, got {obj[key]!r}") from None
    return media_path("video", obj.get(f"path_{side}"), root, meta=meta)


# ---- VideoFeedback ----

# Score column -> score name in the records (VideoScore rates each 1-4).
VIDEOFEEDBACK_SCORES = {
    "visual quality": "visual_quality", "temporal consistency": "temporal_consistency",
    "dynamic degree": "dynamic_degree", "text-to-video alignment": "text_to_video_alignment",
    "factual consistency": "factual_consistency",
}


def videofeedback(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]:
    """VideoFeedback: one PointwiseRecord per video with its five scores (the recipe may pair them later).

    Media is a "frames" item of `images` (frame paths relative to the dataset folder or
    `options.media_root`); with `options.use_video_link` it is the `"video link"` instead (a URL, or a path
    relative to the same folder). A score column that is absent or null is left out of `scores`; a row with
    none is skipped. Point the path at the repo folder, a config folder (`annotated/`) or a parquet file.
    Ids are the `id` column; meta keeps the video link.
    """
    check_options(spec, "use_video_link")
    hint = DOWNLOAD_HINT.format("TIGER-Lab/VideoFeedback", " and unzip the frame / video archives in DIR")
    rows = read_rows(spec, files=("annotated/{split}-*.parquet",), hint=hint)
    convert = partial(_videofeedback_row, spec, dataset_root(spec), bool(spec.options.get("use_video_link")))
    return convert_rows(spec, rows, convert)


def _videofeedback_row(spec: SourceSpec, root: Path, use_link: bool, row: int,
                       obj: dict[str, Any]) -> list[Record]:
    scores = {}
    for key, name in VIDEOFEEDBACK_SCORES.items():
        value = obj.get(key)
        if value is None:
            continue
        try:
            scores[name] = float(value)
        except (TypeError, ValueError):
            raise BadRow(f"score {key!r} must be a number, got {value!r}") from None
    if not scores:
        raise BadRow(f"no scores (expected columns {', '.join(VIDEOFEEDBACK_SCORES)})")
    prompt = obj.get("text prompt")
    if not isinstance(prompt, str):
        raise BadRow("missing field 'text prompt'")
    if use_link:
        link = require_text(obj, "video link")
        media = MediaItem(type="video", url=link) if "://" in link else media_path("video", link, root)
    else:
        frames = obj.get("images")
        if not isinstance(frames, list) or not frames:
            raise BadRow("missing field 'images' (the frame paths)")
        media = MediaItem(type="frames", frames=[media_path("image", p, root).path for p in frames], base_dir=root)
    return [PointwiseRecord(id=record_id(obj.get("id"), row), prompt=prompt, media=[media], scores=scores,
                            meta=pick(obj, ("video link",)))]
