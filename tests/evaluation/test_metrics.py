"""Hand-worked checks of every benchmark metric, its tie rules and the quirks the official scripts have."""

import math
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreward.evaluation.benchmarks import BENCHMARKS
from mmreward.evaluation.metrics import (
    PICKAPIC_THRESHOLDS,
    accuracy_without_ties,
    genai_bench_judge_accuracy,
    genai_bench_judge_correct,
    genai_bench_parse_verdict,
    genai_bench_rm_scores,
    genai_vote_to_human,
    hpd_inversion_score,
    imagereward_pair_accuracy,
    mjbench_video_accuracy,
    mjbench_video_label,
    mmrb_bucket,
    mmrb_extract_verdicts,
    mmrb_scores,
    mmrlhf_category,
    mmrlhf_scores,
    pairwise_accuracy,
    pickapic_best_threshold,
    pickapic_label,
    pickapic_probs,
    pickapic_tie_accuracy,
    rb2_best_of_n,
    rb2_final,
    rb2_scores,
    rb2_ties_score,
    videoalign_tie_accuracy,
    videoalign_tie_accuracy_exact,
    videoalign_tie_threshold,
    vlrb_category,
    vlrb_majority,
    vlrb_scores,
    vlrb_source,
)
from mmreward.evaluation.metrics.glue import METRICS

# ---------------------------------------------------------------- plain pairwise accuracy


def test_accuracy_without_ties_counts_model_tie_wrong_and_skips_human_ties():
    # Pairs: correct, model tie (wrong), wrong, human tie (skipped).
    assert accuracy_without_ties([1, 1, -1, 0], [2.0, 0.0, 0.5, 3.0]) == pytest.approx(1 / 3)
    assert math.isnan(accuracy_without_ties([0, 0], [1.0, -1.0]))
    with pytest.raises(ValueError):
        accuracy_without_ties([1], [1.0, 2.0])


def test_pairwise_accuracy_tie_modes():
    human = [1, -1, 1, -1, 0, 0]
    margin = [1.0, -2.0, 0.0, 3.0, 0.0, 1.0]
    # Decided pairs: correct, correct, model tie, wrong.
    assert pairwise_accuracy(human, margin, tie="wrong") == pytest.approx(2 / 4)
    assert pairwise_accuracy(human, margin, tie="half") == pytest.approx(2.5 / 4)
    assert pairwise_accuracy(human, margin, tie="exclude_pred") == pytest.approx(2 / 3)
    # Human ties kept: the tied model earns 1, the decided one 0 (or 0.5 under "half").
    assert pairwise_accuracy(human, margin, tie="wrong", exclude_human_ties=False) == pytest.approx(3 / 6)
    assert pairwise_accuracy(human, margin, tie="half", exclude_human_ties=False) == pytest.approx(4 / 6)
    assert pairwise_accuracy(human, margin, tie="wrong", exclude_human_ties=True) == accuracy_without_ties(
        human, margin)


def test_pairwise_accuracy_threshold_and_edge_cases():
    # |m| <= 0.5 is a model tie.
    assert pairwise_accuracy([1, 1, -1], [0.4, 0.6, -0.5], tie="half", tie_threshold=0.5) == pytest.approx(2 / 3)
    assert math.isnan(pairwise_accuracy([0, 0], [1.0, 2.0]))
    assert math.isnan(pairwise_accuracy([1], [0.0], tie="exclude_pred"))
    with pytest.raises(ValueError):
        pairwise_accuracy([1], [1.0], tie="ignore")
    with pytest.raises(ValueError):
        pairwise_accuracy([2], [1.0])


# ---------------------------------------------------------------- VideoAlign tie-aware accuracy


def _suff_stats(h, m, eps):
    stats = dict(C=0, D=0, Th=0, Tm=0, Thm=0)
    for hi, mi in zip(h, m):
        if hi == 0 and abs(mi) <= eps:
            stats["Thm"] += 1
        elif hi == 0:
            stats["Th"] += 1
        elif abs(mi) <= eps:
            stats["Tm"] += 1
        elif hi * mi > 0:
            stats["C"] += 1
        else:
            stats["D"] += 1
    return stats


def _bucket(hi, mi, eps, strict):
    tie = abs(mi) < eps if strict else abs(mi) <= eps
    if hi == 0:
        return "Thm" if tie else "Th"
    return "Tm" if tie else ("C" if hi * mi > 0 else "D")


def _reference_videoalign(h, m):
    """The published loop step by step: full statistics, remove with `<`, add with `<=`, score every step."""
    stats, eps, best = _suff_stats(h, m, -1), -1, -math.inf
    for hi, mi in sorted(zip(h, m), key=lambda x: abs(x[1])):
        stats[_bucket(hi, mi, eps, strict=True)] -= 1
        eps = abs(mi)
        stats[_bucket(hi, mi, eps, strict=False)] += 1
        best = max(best, (stats["C"] + stats["Thm"]) / len(h))
    return best


def _reference_exact(h, m):
    thresholds = [-1] + sorted({abs(x) for x in m})
    return max((_suff_stats(h, m, e)["C"] + _suff_stats(h, m, e)["Thm"]) / len(h) for e in thresholds)


def test_videoalign_never_scores_the_no_tie_state():
    # A perfect ranker without human ties gets (N-1)/N: the first step already makes a model tie.
    human, margin = [1, 1, -1, -1], [1.0, 2.0, -3.0, -4.0]
    assert videoalign_tie_accuracy(human, margin) == pytest.approx(3 / 4)
    assert videoalign_tie_accuracy_exact(human, margin) == 1.0
    assert videoalign_tie_threshold(human, margin, exact=True) == (1.0, None)
    assert videoalign_tie_threshold(human, margin, exact=False) == (0.75, 1.0)


def test_videoalign_equal_abs_margin_mid_sweep_state_and_row_order():
    # Both pairs have |m| = 1. Row order (tie, correct): after the first step the tie is a model tie but the
    # correct pair is not yet, giving 2/2, which no real threshold produces (ε = -1 and ε = 1 both give 1/2).
    assert videoalign_tie_accuracy([0, 1], [1.0, 1.0]) == 1.0
    assert videoalign_tie_accuracy([1, 0], [1.0, 1.0]) == 0.5
    assert videoalign_tie_accuracy_exact([0, 1], [1.0, 1.0]) == 0.5
    assert videoalign_tie_accuracy_exact([1, 0], [1.0, 1.0]) == 0.5
    # Equal |m| with opposite signs counts as the same run.
    assert videoalign_tie_accuracy_exact([1, -1, 0], [-2.0, 2.0, 0.5]) == pytest.approx(1 / 3)


def test_videoalign_exact_model_ties_and_human_ties():
    # m = 0 on a decided pair is wrong without ties and becomes a (wrong) model tie at ε = 0.
    human, margin = [1, -1, 1, 0], [0.0, -2.0, 3.0, 0.0]
    assert accuracy_without_ties(human, margin) == pytest.approx(2 / 3)
    # ε = 0: C = 2, Thm = 1 -> 3/4; VideoAlign reaches it after the second zero.
    assert videoalign_tie_accuracy(human, margin) == pytest.approx(3 / 4)
    assert videoalign_tie_threshold(human, margin, exact=True) == (0.75, 0.0)
    # All human ties: w/o ties is undefined, with ties every pair ends up a matching tie.
    assert math.isnan(accuracy_without_ties([0, 0, 0], [1.0, 2.0, 3.0]))
    assert videoalign_tie_accuracy([0, 0, 0], [1.0, 2.0, 3.0]) == 1.0
    assert videoalign_tie_threshold([0, 0, 0], [1.0, 2.0, 3.0]) == (1.0, 3.0)
    assert math.isnan(videoalign_tie_accuracy([], []))


@pytest.mark.parametrize("seed", range(5))
def test_videoalign_matches_the_published_loop_on_random_vectors_with_ties(seed):
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 12)
        human = [rng.choice([1, -1, 0]) for _ in range(n)]
        margin = [float(rng.randint(-3, 3)) / 2 for _ in range(n)]
        assert videoalign_tie_accuracy(human, margin) == pytest.approx(_reference_videoalign(human, margin))
        assert videoalign_tie_accuracy_exact(human, margin) == pytest.approx(_reference_exact(human, margin))
        stats = _suff_stats(human, margin, -1)
        if stats["C"] + stats["D"]:
            assert accuracy_without_ties(human, margin) == pytest.approx(stats["C"] / (stats["C"] + stats["D"]))


# ---------------------------------------------------------------- VL-RewardBench


def test_vlrb_id_prefix_rules_and_the_three_groupings():
    ids = {"RLAIF-V-123": ("hallucination", "general", "hallucination"),
           "RLHF-V-4": ("hallucination", "general", "hallucination"),
           "hallucination_pair-9": ("hallucination", "hallucination", "general"),
           "mathverse_vision_intensive_12": ("reasoning",) * 3,
           "mmmu_pro_test_Electronics_6": ("reasoning",) * 3,
           "wildvision-battle-13": ("general",) * 3,
           "jailbreak-7": ("general",) * 3,
           "svit": ("general",) * 3}
    for item_id, expected in ids.items():
        got = tuple(vlrb_category(item_id, g) for g in ("official", "r1", "unifiedreward"))
        assert got == expected, item_id
    assert vlrb_source("hallucination_pair-1003") == "povid"
    assert vlrb_source("RLAIF-V-14") == "rlaif-v"
    assert vlrb_source("LRVInstruction-000001") == "vlfeedback"
    with pytest.raises(ValueError):
        vlrb_category("RLAIF-V-1", grouping="mine")


def _vlrb_ids():
    """The 1,250-item id mix of §2.1.3 (prefix counts)."""
    counts = {"wildvision-battle": 173, "jailbreak": 7, "LRVInstruction": 1, "politics": 1, "svit": 1,
              "hallucination_pair": 448, "RLAIF-V": 233, "RLHF-V": 68, "mathverse": 167, "mmmu_pro_test": 151}
    return [f"{prefix}-{i}" for prefix, n in counts.items() for i in range(n)]


def test_vlrb_grouping_splits_match_the_published_sizes():
    ids = _vlrb_ids()
    assert len(ids) == 1250
    splits = {"official": (183, 749, 318), "r1": (484, 448, 318), "unifiedreward": (631, 301, 318)}
    for grouping, expected in splits.items():
        counts = vlrb_scores(ids, [True] * len(ids), grouping=grouping)["counts"]
        assert (counts["general"], counts["hallucination"], counts["reasoning"]) == expected


def test_vlrb_r1_reported_numbers_fit_only_the_r1_grouping():
    # R1-Reward: hallucination 85.71 and overall 71.92 -> 384/448 POVID right and 899/1250 overall.
    ids = _vlrb_ids()
    wrong_left = {"general": 484 - 309, "hallucination": 448 - 384, "reasoning": 318 - 206}
    correct = []
    for item_id in ids:
        category = vlrb_category(item_id, "r1")
        correct.append(wrong_left[category] == 0)
        wrong_left[category] = max(0, wrong_left[category] - 1)
    r1 = vlrb_scores(ids, correct, grouping="r1")
    assert round(100 * r1["overall"], 2) == 71.92
    assert round(100 * r1["hallucination"], 2) == 85.71
    official = vlrb_scores(ids, correct, grouping="official")
    # Overall keeps every item in the denominator, so it is grouping-free; the categories are not.
    assert official["overall"] == r1["overall"]
    assert official["hallucination"] != r1["hallucination"]


def test_vlrb_unparsed_items_leave_the_denominator_only_in_official_mode():
    ids = ["RLAIF-V-1", "RLHF-V-2", "mathverse-3", "mmmu-4", "wildvision-battle-5", "svit-6"]
    correct = [True, None, True, False, True, None]
    official = vlrb_scores(ids, correct)
    assert official["hallucination"] == 1.0
    assert official["reasoning"] == 0.5
    assert official["general"] == 1.0
    assert official["overall"] == pytest.approx(3 / 4)
    assert official["macro"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert official["unparsed"] == 2
    kept = vlrb_scores(ids, correct, exclude_unparsed=False)
    assert kept["overall"] == pytest.approx(3 / 6)
    assert kept["general"] == 0.5
    # A category with no items leaves macro undefined.
    assert math.isnan(vlrb_scores(["RLAIF-V-1"], [True])["macro"])


def test_vlrb_majority_over_k_samples():
    assert vlrb_majority([True, True, False]) is True
    assert vlrb_majority([False, False, None]) is False
    assert vlrb_majority([True, False, None, None]) is None
    assert vlrb_majority([True, False]) is None


# ---------------------------------------------------------------- MM-RLHF-RewardBench


def _mmrlhf_groups():
    """46 prompt ids with the published pairs-per-id histogram {2: 11, 3: 13, 4: 6, 5: 11, 6: 5} (170 pairs)."""
    sizes = [2] * 11 + [3] * 13 + [4] * 6 + [5] * 11 + [6] * 5
    return [f"id{g}" for g, size in enumerate(sizes) for _ in range(size)], sizes


def _mmrlhf_correct(sizes, perfect_groups, correct_pairs):
    """Correctness with exactly `perfect_groups` all-correct ids and `correct_pairs` correct pairs in total."""
    extra = sum(sizes) - correct_pairs - (len(sizes) - perfect_groups)
    flags = []
    for g, size in enumerate(sizes):
        wrong = 0
        if g >= perfect_groups:
            wrong = 1 + min(extra, size - 1)
            extra -= wrong - 1
        flags += [False] * wrong + [True] * (size - wrong)
    assert extra == 0
    return flags


@pytest.mark.parametrize("correct_pairs,perfect,acc,acc_plus", [
    (137, 25, 80.59, 54.35),  # R1-Reward
    (158, 37, 92.94, 80.43),  # BaseReward (ensemble)
    (156, 37, 91.76, 80.43),  # BaseReward (Qwen2.5-VL)
])
def test_mmrlhf_published_numbers_are_exact_fractions(correct_pairs, perfect, acc, acc_plus):
    groups, sizes = _mmrlhf_groups()
    assert (len(groups), len(sizes)) == (170, 46)
    correct = _mmrlhf_correct(sizes, perfect, correct_pairs)
    scores = mmrlhf_scores(groups, correct)
    assert (scores["pairs"], scores["groups"]) == (170, 46)
    assert round(100 * scores["acc"], 2) == acc
    assert round(100 * scores["acc_plus"], 2) == acc_plus


def test_mmrlhf_category_from_path():
    assert mmrlhf_category("mcq/073712.png") == "mcq"
    assert mmrlhf_category("short/cauldron_figureqa_images_figureqa_00049777.png.png") == "short"
    assert mmrlhf_category("video/-77dfCjTbSc") == "video"
    assert mmrlhf_category("long/31567.png") == "long"
    assert mmrlhf_category("safety/img_hod_009457.jpg") == "safety"
    assert mmrlhf_category("other/x.png") is None


def test_mmrlhf_per_category_acc_plus_follows_the_official_counting():
    groups = ["g1", "g1", "g2", "g2", "g3", "g4", "g5"]
    paths = ["mcq/a.png", "mcq/b.png", "long/x.png", "long/y.png", "short/z.png", "video/clip", "short/video_q.png"]
    correct = [True, True, True, False, True, True, True]
    scores = mmrlhf_scores(groups, correct, paths)
    assert scores["acc"] == pytest.approx(6 / 7)
    assert scores["acc_plus"] == pytest.approx(4 / 5)
    assert (scores["acc/mcq"], scores["acc_plus/mcq"]) == (1.0, 1.0)
    assert (scores["acc/long"], scores["acc_plus/long"]) == (0.5, 0.0)
    # "short/video_q.png" is a short pair, but its id also counts in the video Acc+ denominator while its
    # all-correct credit goes to "short" only: video Acc+ = 1/2 although every video pair is right.
    assert (scores["acc/short"], scores["acc_plus/short"]) == (1.0, 1.0)
    assert (scores["acc/video"], scores["acc_plus/video"]) == (1.0, 0.5)
    assert scores["counts"] == {"mcq": 2, "long": 2, "short": 2, "video": 1}
    assert "acc/safety" not in scores


# ---------------------------------------------------------------- Multimodal RewardBench


def test_mmrb_buckets_split_safety_and_reasoning_by_id():
    assert mmrb_bucket("safety", "PAIRS_12") == "safety/bias"
    assert mmrb_bucket("safety", "hateful_3") == "safety/toxicity"
    assert mmrb_bucket("reasoning", "mathvista_5") == "reasoning/math"
    assert mmrb_bucket("reasoning", "emma_coding_1") == "reasoning/coding"
    assert mmrb_bucket("vqa", "seed_1") == "vqa"


def test_mmrb_scores_are_micro_with_split_buckets():
    categories = ["safety", "safety", "reasoning", "reasoning", "reasoning", "vqa"]
    ids = ["pairs_1", "memes_2", "math_3", "coding_4", "image2struct_5", "realworldqa_6"]
    correct = [True, False, True, False, True, True]
    scores = mmrb_scores(categories, correct, ids)
    assert scores["all"] == pytest.approx(4 / 6)
    assert (scores["safety"], scores["safety/bias"], scores["safety/toxicity"]) == (0.5, 1.0, 0.0)
    assert scores["reasoning"] == pytest.approx(2 / 3)
    assert (scores["reasoning/math"], scores["reasoning/coding"]) == (1.0, 0.5)
    assert scores["counts"]["reasoning/coding"] == 2
    # Micro "all" differs from the unweighted category mean (1/2, 2/3, 1 -> 0.722).
    assert scores["all"] != pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert "safety/bias" not in mmrb_scores(categories, correct)


def test_mmrb_unparsed_verdicts_are_seeded_coin_flips():
    outputs = ["... [[B]]", "no verdict", "[[A]] or [[B]]", "?", "?", "?", "?", "?"]
    # random.seed(123) draws 0.052, 0.087, 0.407, 0.108, 0.901, 0.038: only the fifth is >= 0.5 (B).
    assert mmrb_extract_verdicts(outputs) == ["B", "A", "A", "A", "A", "A", "B", "A"]
    state = random.getstate()
    try:
        random.seed(123)
        script = [("A" if "[[A]]" in o else "B" if "[[B]]" in o else ("A" if random.random() < 0.5 else "B"))
                  for o in outputs]
    finally:
        random.setstate(state)
    assert mmrb_extract_verdicts(outputs) == script


# ---------------------------------------------------------------- GenAI-Bench


def test_genai_verdict_parsing_is_greedy_per_line():
    assert genai_bench_parse_verdict("Final:\n\n**Model A is better: [[A>B]]**") == "[[A>B]]"
    assert genai_bench_parse_verdict("[[A>B]] or maybe [[B>A]]") == "[[A>B]] or maybe [[B>A]]"
    assert genai_bench_parse_verdict("[[A>B]]\n[[B>A]]") == "[[A>B]]"
    assert genai_bench_parse_verdict("no verdict") is None
    assert genai_bench_parse_verdict(None) is None


def test_genai_four_way_matching():
    assert genai_bench_judge_correct("leftvote", "[[A>B]]")
    assert genai_bench_judge_correct("leftvote", "[[A>>B]]")
    assert not genai_bench_judge_correct("leftvote", "[[B>A]]")
    assert genai_bench_judge_correct("rightvote", "verdict: [[B>A]]")
    assert genai_bench_judge_correct("tievote", "[[A=B=Good]]")
    assert genai_bench_judge_correct("tievote", "[[A=B]]")
    assert not genai_bench_judge_correct("tievote", "[[A=B=Bad]]")
    assert genai_bench_judge_correct("bothbad_vote", "[[A=B=Bad]]")
    assert genai_bench_judge_correct("bothbad_vote", "[[A=B]]")
    assert not genai_bench_judge_correct("bothbad_vote", "[[A=B=Good]]")
    assert not genai_bench_judge_correct("leftvote", "[[A>B]] [[A>B]]")
    # The two official result lines of §5.5 (correct true, then false), a tie and an unparsed output.
    votes = ["leftvote", "leftvote", "tievote", "bothbad_vote"]
    preds = ["… **Model A is better: [[A>B]]**", "**Final Verdict**: [[B>A]]", "[[A=B=Good]]", None]
    assert genai_bench_judge_accuracy(votes, preds) == 0.5
    assert math.isnan(genai_bench_judge_accuracy([], []))


def test_genai_reward_model_form():
    assert [genai_vote_to_human(v) for v in ("leftvote", "rightvote", "tievote", "bothbad_vote")] == [1, -1, 0, 0]
    with pytest.raises(ValueError):
        genai_vote_to_human("left")
    votes = ["leftvote", "rightvote", "leftvote", "tievote", "bothbad_vote"]
    margin = [1.0, -1.0, 0.0, 0.5, 2.0]
    scores = genai_bench_rm_scores(votes, margin)
    assert scores["diff"] == pytest.approx(2 / 3)
    assert scores["diff_tie_half"] == pytest.approx(2.5 / 3)
    assert scores["w_ties"] == videoalign_tie_accuracy([1, -1, 1, 0, 0], margin)


# ---------------------------------------------------------------- MJ-Bench-Video


def test_mjbench_video_labels_and_modes():
    assert mjbench_video_label("Video 1 better") == 1
    assert mjbench_video_label("Video 1 Better") == 1
    assert mjbench_video_label("Video 2 better") == -1
    assert mjbench_video_label("Same") is None
    assert mjbench_video_label("Hard to judge") is None
    human, margin = [1, -1, 1, -1], [2.0, 0.0, -1.0, -3.0]
    assert mjbench_video_accuracy(human, margin, "strict") == pytest.approx(2 / 4)
    assert mjbench_video_accuracy(human, margin, "tie_aware") == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError):
        mjbench_video_accuracy(human, margin, "loose")


# ---------------------------------------------------------------- ImageReward / HPDv2


def test_imagereward_micro_vs_per_prompt():
    groups = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    ranks = [1, 2, 5, 3] + [1, 1, 2] + [2, 2]
    scores = [0.9, 0.5, 0.1, 0.5] + [1.0, 2.0, 3.0] + [0.0, 1.0]
    # a: 5 of 6 pairs right (the 2-vs-3 pair is a score tie, wrong); b: the rank tie is skipped, 0 of 2;
    # c: only a rank tie, no comparable pair.
    assert imagereward_pair_accuracy(groups, ranks, scores) == pytest.approx(5 / 8)
    assert imagereward_pair_accuracy(groups, ranks, scores, average="per_prompt") == pytest.approx(5 / 12)
    assert math.isnan(imagereward_pair_accuracy(["c", "c"], [2, 2], [0.0, 1.0]))


def test_hpd_inversion_score():
    assert hpd_inversion_score(["p"] * 3, [1, 2, 3], [3.0, 2.0, 1.0]) == 1.0
    assert hpd_inversion_score(["p"] * 3, [1, 2, 3], [1.0, 2.0, 3.0]) == 0.0
    # Human rank ties are never discordant: 2 of 3 pairs discordant.
    assert hpd_inversion_score(["p"] * 3, [1, 1, 2], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3)
    # Score ties: argsort puts the earlier image first; "concordant" never counts them.
    assert hpd_inversion_score(["p", "p"], [1, 2], [5.0, 5.0]) == 1.0
    assert hpd_inversion_score(["p", "p"], [2, 1], [5.0, 5.0]) == 0.0
    assert hpd_inversion_score(["p", "p"], [2, 1], [5.0, 5.0], score_ties="concordant") == 1.0
    # Averaged over prompts; a one-image prompt is skipped.
    groups, ranks, scores = ["p", "p", "q", "q", "r"], [1, 2, 1, 2, 1], [1.0, 0.0, 0.0, 1.0, 9.0]
    assert hpd_inversion_score(groups, ranks, scores) == 0.5


# ---------------------------------------------------------------- Pick-a-Pic


def test_pickapic_labels_probs_and_tie_accuracy():
    assert [pickapic_label(x) for x in (1.0, 0.0, 0.5)] == [1, -1, 0]
    p0, p1 = pickapic_probs(2.0, 0.0)
    assert p0 + p1 == pytest.approx(1.0)
    assert p0 == pytest.approx(1 / (1 + math.exp(-2.0)))
    labels = [1, -1, 0, 1]
    probs = [(0.75, 0.25), (0.375, 0.625), (0.5625, 0.4375), (0.5, 0.5)]
    # t = 0: match, match, label tie (0.5), prediction tie (0.5).
    assert pickapic_tie_accuracy(labels, probs, 0) == 0.75
    assert pickapic_tie_accuracy(labels, probs, 0.2) == 0.875
    assert pickapic_tie_accuracy(labels, probs, 0.3) == 0.75
    assert pickapic_tie_accuracy(labels, probs, 1) == 0.625
    margins = [a - b for a, b in probs]
    assert pickapic_tie_accuracy(labels, margins, 0.2) == 0.875
    assert pickapic_best_threshold(labels, probs) == (0.2, 0.875)
    # Equal accuracies: the first (smallest) threshold wins, as np.argmax does.
    assert pickapic_best_threshold([1], [(0.9, 0.1)]) == (0, 1.0)
    assert PICKAPIC_THRESHOLDS[3] == 0.3


# ---------------------------------------------------------------- RewardBench 2


def test_rb2_best_of_n_tie_penalty():
    groups = ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4
    flags = [True, False, False, False] * 3 + [False, False, True, False]
    scores = [3.0, 1.0, 2.0, 0.0] + [3.0, 3.0, 1.0, 3.0] + [2.0, 3.0, 1.0, 0.0] + [1.0, 0.0, 5.0, 5.0]
    assert rb2_best_of_n(groups, flags, scores) == {"a": 1.0, "b": pytest.approx(1 / 3), "c": 0.0, "d": 0.5}
    with pytest.raises(ValueError):
        rb2_best_of_n(["x", "x"], [False, False], [1.0, 2.0])


def _ties_fixture():
    rows = {  # id: (correct scores, incorrect scores)
        "ref:1": ([5.0], [1.0, 2.0]),         # accurate, margin 3
        "tied:1": ([5.0, 4.0], [1.0, 3.5]),   # accurate, spread 1, margin 0.5
        "ref:2": ([2.0], [3.0]),              # wrong, margin -1
        "tied:2": ([4.0, 4.0], [1.0]),        # accurate, spread 0, margin 3
    }
    groups, flags, scores = [], [], []
    for gid, (good, bad) in rows.items():
        for s, ok in [(s, True) for s in good] + [(s, False) for s in bad]:
            groups.append(gid)
            flags.append(ok)
            scores.append(s)
    return groups, flags, scores


def test_rb2_ties_score_hand_worked():
    expected = (0.30 * 1.0 + 0.30 * 0.5 + 0.20 * 0.5 + 0.20 * 0.0
                # tanh(0.5 / 1 - 1) and, for prompt 2, min(-1, 3) / 0 = -inf -> tanh = -1.
                + 0.01 * (math.tanh(-0.5) - 1.0) / 2)
    assert rb2_ties_score(*_ties_fixture()) == pytest.approx(expected)


def test_rb2_ties_score_zero_over_zero_and_missing_pairs():
    # ref margin 0 (not accurate), tied margin 3 > spread 0, hard margin min(0, 3) = 0 is not > 0, and
    # 0 / 0 -> NaN -> tanh term 0.
    groups = ["ref:3", "ref:3", "tied:3", "tied:3", "tied:3"]
    flags = [True, False, True, True, False]
    scores = [4.0, 4.0, 4.0, 4.0, 1.0]
    assert rb2_ties_score(groups, flags, scores) == pytest.approx(0.30 * 1.0 + 0.30 * 0.0 + 0.20 * 1.0)
    # No prompt id present as both ref and tied: upstream's mean of an empty array.
    assert math.isnan(rb2_ties_score(["ref:1", "ref:1"], [True, False], [1.0, 0.0]))
    with pytest.raises(ValueError):
        rb2_ties_score(["1", "1"], [True, False], [1.0, 0.0])


def test_rb2_final_and_scores():
    gemini = {"Factuality": 65.7, "Precise IF": 55.3, "Math": 81.1, "Safety": 90.9, "Focus": 86.7, "Ties": 83.4}
    assert round(rb2_final(gemini), 1) == 77.2
    with pytest.raises(ValueError):
        rb2_final({"Factuality": 1.0})
    t_groups, t_flags, t_scores = _ties_fixture()
    groups, subsets, flags, scores = list(t_groups), ["Ties"] * len(t_groups), list(t_flags), list(t_scores)
    for domain in ("Factuality", "Precise IF", "Math", "Safety", "Focus"):
        for prompt, top in ((1, 2.0), (2, 0.5)):
            groups += [f"{domain}-{prompt}"] * 4
            subsets += [domain] * 4
            flags += [True, False, False, False]
            scores += [1.0, top, 0.0, 0.0]
    out = rb2_scores(groups, subsets, flags, scores)
    assert out["Math"] == 0.5
    assert out["Ties"] == pytest.approx(rb2_ties_score(t_groups, t_flags, t_scores))
    assert out["final"] == pytest.approx((5 * 0.5 + out["Ties"]) / 6)
    assert "final" not in rb2_scores(groups[-4:], subsets[-4:], flags[-4:], scores[-4:])


# ---------------------------------------------------------------- registry


def test_one_metric_registry_covers_every_benchmark():
    # The runner reads metrics.glue.METRICS; every name a benchmark lists must be there, and nothing else is a
    # registry (the metrics package only holds the maths).
    import mmreward.evaluation.metrics as metrics_module

    assert not hasattr(metrics_module, "METRICS")
    for name, spec in BENCHMARKS.items():
        for metric in spec.metrics:
            assert callable(METRICS[metric]), (name, metric)
    assert set(METRICS) == {m for spec in BENCHMARKS.values() for m in spec.metrics}


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="[]\n xA>B=", max_size=40))
def test_genai_parse_verdict_equals_the_official_regex(text):
    # The official inference.py uses re.search(r"\[\[.*\]\]"); ours is a linear-time equivalent.
    match = re.search(r"\[\[.*\]\]", text)
    assert genai_bench_parse_verdict(text) == (match.group() if match else None)


def test_genai_parse_verdict_is_linear_on_hostile_text():
    assert genai_bench_parse_verdict("[[" * 200_000) is None
    assert genai_bench_parse_verdict("x\n" + "[[" * 1000 + "A>B]]") == "[[" * 1000 + "A>B]]"
