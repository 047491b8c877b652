"""Official reward-benchmark metrics as pure functions (no I/O), with each benchmark's exact conventions.

The maths lives in three modules, all re-exported here:

- `pairwise`: plain / tie-aware accuracy, the VideoAlign threshold sweep, GenAI-Bench, MJ-Bench-Video,
  Pick-a-Pic;
- `grouped`: category-bucketed scores (VL-RewardBench, MM-RLHF-RewardBench, Multimodal RewardBench);
- `listwise`: ImageReward pair accuracy, HPDv2 inversion score, RewardBench 2.

`glue` turns the runner's per-sample rows into each benchmark's official numbers and holds the one metric
registry, `METRICS` (not imported here: this package stays pure maths). Conventions and their sources:
/work/shared/BENCHMARKS.md §2.
"""

from __future__ import annotations

from mmreward.evaluation.metrics.grouped import (
    mmrb_bucket,
    mmrb_extract_verdicts,
    mmrb_scores,
    mmrlhf_category,
    mmrlhf_scores,
    vlrb_category,
    vlrb_majority,
    vlrb_scores,
    vlrb_source,
)
from mmreward.evaluation.metrics.listwise import (
    hpd_inversion_score,
    imagereward_pair_accuracy,
    rb2_best_of_n,
    rb2_final,
    rb2_scores,
    rb2_ties_score,
)
from mmreward.evaluation.metrics.pairwise import (
    PICKAPIC_THRESHOLDS,
    accuracy_without_ties,
    genai_bench_judge_accuracy,
    genai_bench_judge_correct,
    genai_bench_parse_verdict,
    genai_bench_rm_scores,
    genai_vote_to_human,
    mjbench_video_accuracy,
    mjbench_video_label,
    pairwise_accuracy,
    pickapic_best_threshold,
    pickapic_label,
    pickapic_probs,
    pickapic_tie_accuracy,
    videoalign_tie_accuracy,
    videoalign_tie_accuracy_exact,
    videoalign_tie_threshold,
)

__all__ = [
    "PICKAPIC_THRESHOLDS", "accuracy_without_ties", "genai_bench_judge_accuracy",
    "genai_bench_judge_correct", "genai_bench_parse_verdict", "genai_bench_rm_scores", "genai_vote_to_human",
    "hpd_inversion_score", "imagereward_pair_accuracy", "mjbench_video_accuracy", "mjbench_video_label",
    "mmrb_bucket", "mmrb_extract_verdicts", "mmrb_scores", "mmrlhf_category", "mmrlhf_scores",
    "pairwise_accuracy", "pickapic_best_threshold", "pickapic_label", "pickapic_probs", "pickapic_tie_accuracy",
    "rb2_best_of_n", "rb2_final", "rb2_scores", "rb2_ties_score", "videoalign_tie_accuracy",
    "videoalign_tie_accuracy_exact", "videoalign_tie_threshold", "vlrb_category", "vlrb_majority",
    "vlrb_scores", "vlrb_source",
]
