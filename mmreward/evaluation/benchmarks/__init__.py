"""Vision reward benchmarks: loaders from each benchmark's published layout to mmreward records (`BENCHMARKS`).

A loader is `fn(source: str | Path, options: dict) -> BenchmarkData`. `source` is a local copy in the
published layout (HF dataset folder / parquet / the official CSV or JSON plus media files), or a hub id when the
network allows. Records follow these conventions, which the metrics and the runner rely on:

- pairs: `PreferencePair` with `label` A / B / tie (per-dimension labels in `dimensions`, e.g. VQ/MQ/TA), and
  `meta["category"]`, `meta["subcategory"]`, `meta["group"]` (e.g. MM-RLHF prompt id for Acc+);
- list-wise benchmarks (RewardBench 2, ImageReward, HPDv2): one `PointwiseRecord` per candidate, with
  `meta["group"]` (the prompt / item id), `meta["rank"]` (1 = best; ties share a rank) or `meta["correct"]`
  (RewardBench 2), and `meta["category"]`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BenchmarkData:
    """What a loader returns."""

    # Registry name, e.g. "vl_rewardbench".
    name: str
    # "pairs" or "listwise".
    kind: str
    records: list
    # Dataset revision / file identity (commit hash, file sha, or None when unknown), recorded in results.
    revision: str | None = None
    # Item count of the version the paper used, to warn when ours differs.
    expected_size: int | None = None
    # Anything else worth recording (split, config, counts per category, warnings).
    info: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[Any, dict], BenchmarkData]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registry entry: where the loader lives, what the data is, and which metrics apply."""

    # "module:function" under mmreward.evaluation, imported on first use (loaders pull in pandas/pyarrow).
    loader: str
    description: str
    # Metric names the runner computes for this benchmark (keys of `mmreward.evaluation.metric_glue.METRICS`).
    metrics: tuple[str, ...]
    # How to obtain a local copy.
    download: str
    # The official rule for a failed judge sample when a record has several (`JudgeProtocol.unparsed`):
    # "exclude" (left out of the vote) or "vote" (a vote class, as VL-RewardBench's cal.py counts it).
    unparsed: str = "exclude"

    def load(self, source, options: dict | None = None) -> BenchmarkData:
        module_name, func = self.loader.split(":")
        module = importlib.import_module(f"mmreward.evaluation.{module_name}")
        return getattr(module, func)(source, dict(options or {}))


BENCHMARKS: dict[str, BenchmarkSpec] = {
    # ---- image and text benchmarks (loaders in benchmarks_image.py / benchmarks_text.py) ----
    "vl_rewardbench": BenchmarkSpec(
        loader="benchmarks_image:load_vl_rewardbench",
        description="VL-RewardBench (CVPR 2025): 1,250 image-question response pairs (HF test split now "
                    "1,247); general / hallucination / reasoning by the official id-prefix rule",
        metrics=("vlrb",),
        download="huggingface-cli download --repo-type dataset MMInstruction/VL-RewardBench --local-dir DIR "
                 "(parquet in data/, images embedded)",
        unparsed="vote",
    ),
    "multimodal_rewardbench": BenchmarkSpec(
        loader="benchmarks_image:load_multimodal_rewardbench",
        description="Multimodal RewardBench (Meta FAIR): 4,711 released response pairs (paper 5,211), "
                    "six categories",
        metrics=("mmrb",),
        download="git clone https://github.com/facebookresearch/multimodal_rewardbench DIR, then in DIR run "
                 "python scripts/0_download_data.py (writes data/all_data.json and data/images/; CC-BY-NC)",
    ),
    "mm_rlhf_rewardbench": BenchmarkSpec(
        loader="benchmarks_image:load_mm_rlhf_rewardbench",
        description="MM-RLHF-RewardBench: 170 chosen/rejected pairs over 46 prompts (images, frame folders)",
        metrics=("mmrlhf",),
        download="huggingface-cli download --repo-type dataset yifanzhang114/MM-RLHF-RewardBench "
                 "--local-dir DIR (mm_reward_bench.jsonl and images/; unpack any media archives in DIR)",
    ),
    "imagereward_test": BenchmarkSpec(
        loader="benchmarks_image:load_imagereward_test",
        description="ImageReward test set: 466 prompts, 2,720 ranked images (list-wise)",
        metrics=("imagereward",),
        download="git clone https://github.com/THUDM/ImageReward DIR (data/test.json), then unzip "
                 "test_images.zip (HF THUDM/ImageReward) into DIR/data/test_images/",
    ),
    "hpdv2_test": BenchmarkSpec(
        loader="benchmarks_image:load_hpdv2_test",
        description="HPDv2 test set: prompts with human-ranked images (list-wise, inversion score)",
        metrics=("hpd_inversion",),
        download="huggingface-cli download --repo-type dataset ymhao/HPDv2 --include test.json test.tar.gz "
                 "--local-dir DIR, then tar -xzf DIR/test.tar.gz -C DIR",
    ),
    "pickapic_v2_test": BenchmarkSpec(
        loader="benchmarks_image:load_pickapic_v2_test",
        description="Pick-a-Pic v2 test_unique (500 image pairs, ties 0.5/0.5); options "
                    "split=validation_unique for the tie-threshold split",
        metrics=("pickapic", "accuracy_without_ties"),
        download="huggingface-cli download --repo-type dataset yuvalkirstain/pickapic_v2 --include "
                 "'data/test_unique-*' 'data/validation_unique-*' --local-dir DIR",
    ),
    "rewardbench2": BenchmarkSpec(
        loader="benchmarks_text:load_rewardbench2",
        description="RewardBench 2 (text): 1,865 prompts, best-of-4 (Ties: several correct answers)",
        metrics=("rb2",),
        download="huggingface-cli download --repo-type dataset allenai/reward-bench-2 --local-dir DIR",
    ),
    # ---- generation benchmarks: videos, and GenAI-Bench images (loaders in benchmarks_video.py) ----
    "videogen_rewardbench": BenchmarkSpec(
        loader="benchmarks_video:load_videogen_rewardbench",
        description="VideoGen-RewardBench (VideoAlign): ~26.5k text-to-video pairs; Overall, VQ, MQ, TA",
        metrics=("videogen",),
        download="huggingface-cli download --repo-type dataset KwaiVGI/VideoGen-RewardBench --local-dir DIR, "
                 "then unzip DIR/videos.zip in DIR (videogen-rewardbench.csv + videos/<model>/*.mp4)",
    ),
    "genai_bench_image": BenchmarkSpec(
        loader="benchmarks_video:load_genai_bench_image",
        description="GenAI-Bench image_generation: 1,735 image pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR "
                 "(parquet in DIR/image_generation/, images embedded)",
    ),
    "genai_bench_edit": BenchmarkSpec(
        loader="benchmarks_video:load_genai_bench_edit",
        description="GenAI-Bench image_edition: 919 edited-image pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR "
                 "(parquet in DIR/image_edition/, images embedded)",
    ),
    "genai_bench_video": BenchmarkSpec(
        loader="benchmarks_video:load_genai_bench_video",
        description="GenAI-Bench video_generation: 1,069 video pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR, then "
                 "fetch the left_video / right_video URLs into DIR/videos/ (or pass options video_urls=true)",
    ),
    "mjbench_video": BenchmarkSpec(
        loader="benchmarks_video:load_mjbench_video",
        description="MJ-Bench-Video test: 1,085 video pairs, 118 with a strict overall preference",
        metrics=("mjbench_video",),
        download="huggingface-cli download --repo-type dataset MJ-Bench/MJ-BENCH-VIDEO --local-dir DIR "
                 "(test.json + videos/test/*.mp4)",
    ),
}


def get_benchmark(name: str) -> BenchmarkSpec:
    """The registry entry, or a KeyError listing the known benchmarks."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


def load_benchmark(name: str, source: str | Path, options: dict | None = None) -> BenchmarkData:
    """Load a benchmark by registry name from a local copy (or hub id)."""
    return get_benchmark(name).load(source, options)
