"""Vision reward benchmarks: the `BENCHMARKS` registry, one `BenchmarkSpec` per benchmark.

    data = load_benchmark("vl_rewardbench", "/data/VL-RewardBench")   # HF folder, parquet file or hub id

A benchmark is one entry here: its loader (in `image.py`, `video.py` or `text.py`), its metrics (names in
`mmreward.evaluation.metrics.glue.METRICS`), the record fields those metrics read, and how to download it. The
record conventions loaders follow are in `spec.py`; the shared loader plumbing in `tables.py` (open a table,
convert rows, finish) and `common.py` (options, revision, size warnings, media).
"""

from __future__ import annotations

from pathlib import Path

from mmreward.evaluation.benchmarks import image, text, video
from mmreward.evaluation.benchmarks.spec import BenchmarkData, BenchmarkSpec, Loader

__all__ = ["BENCHMARKS", "BenchmarkData", "BenchmarkSpec", "Loader", "get_benchmark", "load_benchmark"]

BENCHMARKS: dict[str, BenchmarkSpec] = {
    # ---- image and text benchmarks (loaders in image.py / text.py) ----
    "vl_rewardbench": BenchmarkSpec(
        loader=image.load_vl_rewardbench,
        description="VL-RewardBench (CVPR 2025): 1,250 image-question response pairs (HF test split now "
                    "1,247); general / hallucination / reasoning by the official id-prefix rule",
        metrics=("vlrb",),
        row_fields=("source_id",),
        download="huggingface-cli download --repo-type dataset MMInstruction/VL-RewardBench --local-dir DIR "
                 "(parquet in data/, images embedded)",
        unparsed="vote",
    ),
    "multimodal_rewardbench": BenchmarkSpec(
        loader=image.load_multimodal_rewardbench,
        description="Multimodal RewardBench (Meta FAIR): 4,711 released response pairs (paper 5,211), "
                    "six categories",
        metrics=("mmrb",),
        row_fields=("source_id",),
        download="git clone https://github.com/facebookresearch/multimodal_rewardbench DIR, then in DIR run "
                 "python scripts/0_download_data.py (writes data/all_data.json and data/images/; CC-BY-NC)",
    ),
    "mm_rlhf_rewardbench": BenchmarkSpec(
        loader=image.load_mm_rlhf_rewardbench,
        description="MM-RLHF-RewardBench: 170 chosen/rejected pairs over 46 prompts (images, frame folders)",
        metrics=("mmrlhf",),
        download="huggingface-cli download --repo-type dataset yifanzhang114/MM-RLHF-RewardBench "
                 "--local-dir DIR (mm_reward_bench.jsonl and images/; unpack any media archives in DIR)",
    ),
    "imagereward_test": BenchmarkSpec(
        loader=image.load_imagereward_test,
        description="ImageReward test set: 466 prompts, 2,720 ranked images (list-wise)",
        metrics=("imagereward",),
        download="git clone https://github.com/THUDM/ImageReward DIR (data/test.json), then unzip "
                 "test_images.zip (HF THUDM/ImageReward) into DIR/data/test_images/",
    ),
    "hpdv2_test": BenchmarkSpec(
        loader=image.load_hpdv2_test,
        description="HPDv2 test set: prompts with human-ranked images (list-wise, inversion score)",
        metrics=("hpd_inversion",),
        download="huggingface-cli download --repo-type dataset ymhao/HPDv2 --include test.json test.tar.gz "
                 "--local-dir DIR, then tar -xzf DIR/test.tar.gz -C DIR",
    ),
    "pickapic_v2_test": BenchmarkSpec(
        loader=image.load_pickapic_v2_test,
        description="Pick-a-Pic v2 test_unique (500 image pairs, ties 0.5/0.5); options "
                    "split=validation_unique for the tie-threshold split",
        metrics=("pickapic", "accuracy_without_ties"),
        download="huggingface-cli download --repo-type dataset yuvalkirstain/pickapic_v2 --include "
                 "'data/test_unique-*' 'data/validation_unique-*' --local-dir DIR",
    ),
    "rewardbench2": BenchmarkSpec(
        loader=text.load_rewardbench2,
        description="RewardBench 2 (text): 1,865 prompts, best-of-4 (Ties: several correct answers)",
        metrics=("rb2",),
        download="huggingface-cli download --repo-type dataset allenai/reward-bench-2 --local-dir DIR",
    ),
    # ---- generation benchmarks: videos, and GenAI-Bench images (loaders in video.py) ----
    "videogen_rewardbench": BenchmarkSpec(
        loader=video.load_videogen_rewardbench,
        description="VideoGen-RewardBench (VideoAlign): ~26.5k text-to-video pairs; Overall, VQ, MQ, TA",
        metrics=("videogen",),
        row_fields=("human",),
        download="huggingface-cli download --repo-type dataset KwaiVGI/VideoGen-RewardBench --local-dir DIR, "
                 "then unzip DIR/videos.zip in DIR (videogen-rewardbench.csv + videos/<model>/*.mp4)",
    ),
    "genai_bench_image": BenchmarkSpec(
        loader=video.load_genai_bench_image,
        description="GenAI-Bench image_generation: 1,735 image pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        row_fields=("vote_type",),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR "
                 "(parquet in DIR/image_generation/, images embedded)",
    ),
    "genai_bench_edit": BenchmarkSpec(
        loader=video.load_genai_bench_edit,
        description="GenAI-Bench image_edition: 919 edited-image pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        row_fields=("vote_type",),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR "
                 "(parquet in DIR/image_edition/, images embedded)",
    ),
    "genai_bench_video": BenchmarkSpec(
        loader=video.load_genai_bench_video,
        description="GenAI-Bench video_generation: 1,069 video pairs (test_v1; options split=test)",
        metrics=("genai_rm", "genai_judge"),
        row_fields=("vote_type",),
        download="huggingface-cli download --repo-type dataset TIGER-Lab/GenAI-Bench --local-dir DIR, then "
                 "fetch the left_video / right_video URLs into DIR/videos/ (or pass options video_urls=true)",
    ),
    "mjbench_video": BenchmarkSpec(
        loader=video.load_mjbench_video,
        description="MJ-Bench-Video test: 1,085 video pairs, 118 with a strict overall preference",
        metrics=("mjbench_video",),
        row_fields=("hard",),
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
