"""Converters from public preference datasets (in their published formats) to mmreward records: `SOURCES`.

    spec = SourceSpec(name="rlaif", converter="rlaif_v", path="/data/RLAIF-V-Dataset")
    for item in SOURCES[spec.converter](spec, Path("out/media")):
        ...  # PreferencePair / PointwiseRecord, or Skip(row, reason)

A converter is `fn(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]`. Adding one is a function in
`response.py` (response pairs) or `generation.py` (generated images / videos) plus one line in `SOURCES`. The
contract and the shared plumbing (row reading, ids, media paths, option checks) are in `base.py`; finding a
table in its published layout in `tables.py`. Heavy readers (datasets, pyarrow, PIL) load inside the calls.
"""

from __future__ import annotations

from mmreward.data.sources import generation, response
from mmreward.data.sources.base import (
    COMMON_OPTIONS,
    DOWNLOAD_HINT,
    BadRow,
    Converter,
    Skip,
    SourceSpec,
    check_options,
    convert_rows,
    dataset_root,
    frames_dir,
    image_item,
    json_safe,
    media_path,
    pick,
    read_rows,
    record_id,
    require_text,
    save_image,
)
from mmreward.data.synthetic.prefs import synthetic_pairs
from mmreward.data.synthetic.tool_task import tool_task_pairs

__all__ = [
    "COMMON_OPTIONS", "DOWNLOAD_HINT", "SOURCES", "BadRow", "Converter", "Skip", "SourceSpec", "check_options",
    "convert_rows", "dataset_root", "frames_dir", "image_item", "json_safe", "media_path", "pick", "read_rows",
    "record_id", "require_text", "save_image",
]

SOURCES: dict[str, Converter] = {
    # The synthetic shapes / motions set whose right answers are known from the pixels (demo and tests).
    "synthetic_shapes": synthetic_pairs,
    # Pairs decided only by a content-dependent tool call (the judge demo: `mmreward demo judge`).
    "synthetic_tool_task": tool_task_pairs,
    # Response pairs: one shared image / video (or none), two answers.
    "rlaif_v": response.rlaif_v,
    "mm_rlhf": response.mm_rlhf,
    "vlfeedback": response.vlfeedback,
    "povid": response.povid,
    "skywork_preference": response.skywork_preference,
    "jsonl": response.jsonl,
    # Generation pairs (two images / videos for one prompt) and pointwise video scores.
    "pickapic_v2": generation.pickapic_v2,
    "hpdv2": generation.hpdv2,
    "videofeedback": generation.videofeedback,
    "videoalign_csv": generation.videoalign_csv,
}
