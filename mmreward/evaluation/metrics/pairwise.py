"""Pairwise metrics as pure functions (no I/O), with each benchmark's exact conventions.

Convention: `human[i]` is 1 (A preferred), -1 (B preferred) or 0 (tie); `margin[i] = score_A - score_B`.
VideoAlign's metrics also take None for an empty label cell: its `eval_videogen_rewardbench.py` maps an empty
cell to NaN and `calc_accuracy.py` then counts the pair as decided and never correct (`D`, or `Tm` once its |m|
is under the threshold); `accuracy_without_ties` and the sweeps reproduce that.

This file holds plain / tie-aware accuracy, the VideoAlign threshold sweep, GenAI-Bench, MJ-Bench-Video and
Pick-a-Pic. Everything is re-exported from `mmreward.evaluation.metrics`. Conventions and their sources:
/work/shared/BENCHMARKS.md §2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_TIE_MODES = ("wrong", "half", "exclude_pred")


def _check_pairs(human: Sequence[int | None], margin: Sequence[float], missing: bool = False) -> None:
    if len(human) != len(margin):
        raise ValueError(f"human and margin differ in length ({len(human)} vs {len(margin)})")
    bad = {h for h in human if h not in (1, -1, 0) and not (missing and h is None)}
    if bad:
        raise ValueError(f"human labels must be 1, -1 or 0; got {sorted(bad)}")


def accuracy_without_ties(human: Sequence[int | None], margin: Sequence[float]) -> float:
    """Pairwise accuracy over the pairs humans did not tie; a model tie (margin exactly 0) counts as wrong.

    This is VideoAlign's "w/o ties" (`C / (C + D)` at ε = −1) and the usual "diff" column.

    Args:
        human: (N,) labels in {1, -1, 0}, or None for an empty label cell (in the denominator, never correct,
            as VideoAlign's NaN label).
        margin: (N,) score_A - score_B.

    Returns:
        Accuracy in [0, 1]; NaN when every pair is a human tie.
    """
    _check_pairs(human, margin, missing=True)
    decided = [(h, m) for h, m in zip(human, margin) if h != 0]
    if not decided:
        return float("nan")
    correct = sum(1 for h, m in decided if (m > 0 and h == 1) or (m < 0 and h == -1))
    return correct / len(decided)


def pairwise_accuracy(human: Sequence[int], margin: Sequence[float], tie: str = "wrong",
                      exclude_human_ties: bool = True, tie_threshold: float = 0.0) -> float:
    """Pairwise accuracy with an explicit rule for model ties and human ties.

    A model tie is `|margin| <= tie_threshold` (with the default 0: an exact tie). Per pair:

    - human decided, model decided: 1 if the signs agree else 0;
    - human decided, model tie: 0 (`tie="wrong"`), 0.5 (`"half"`), or dropped (`"exclude_pred"`);
    - human tie (only when `exclude_human_ties=False`): 1 if the model also ties; otherwise 0.5 under
      `"half"` (Pick-a-Pic: "0.5 if either is a tie") and 0 under the other modes.

    Args:
        human: (N,) labels in {1, -1, 0}.
        margin: (N,) score_A - score_B.
        tie: "wrong" (MJ-Bench-Video strict), "half" (tie-aware), "exclude_pred" (MJ-Bench "w/o tie").
        exclude_human_ties: drop human-tie pairs (the "diff" setting).
        tie_threshold: largest |margin| that counts as a model tie.

    Returns:
        Mean credit in [0, 1]; NaN when no pair is left.
    """
    _check_pairs(human, margin)
    if tie not in _TIE_MODES:
        raise ValueError(f"tie must be one of {_TIE_MODES}; got {tie!r}")
    credits = []
    for h, m in zip(human, margin):
        model_tie = abs(m) <= tie_threshold
        if (h == 0 and exclude_human_ties) or (model_tie and tie == "exclude_pred" and h != 0):
            continue
        if h == 0:
            credits.append(1.0 if model_tie else (0.5 if tie == "half" else 0.0))
        elif model_tie:
            credits.append(0.5 if tie == "half" else 0.0)
        else:
            credits.append(1.0 if (m > 0) == (h > 0) else 0.0)
    return sum(credits) / len(credits) if credits else float("nan")


def _sweep(human: Sequence[int], margin: Sequence[float], exact: bool) -> tuple[float, float | None]:
    """Threshold sweep of the tie-aware accuracy `(C + Thm) / N`; returns (best accuracy, its ε).

    Starts from ε = −1 (no model ties): C = pairs with h·m > 0, Thm = 0. Walking the pairs in stable |m| order,
    ε = |m_i| turns pair i into a model tie: a human tie moves Th -> Thm (+1), a correct pair C -> Tm (−1), a
    wrong pair D -> Tm (no change). VideoAlign scores after every single pair, so pairs sharing |m| give
    mid-sweep states no threshold produces, and it never scores ε = −1; `exact` scores ε = −1 and then only
    after the last pair of each equal-|m| run.
    """
    _check_pairs(human, margin, missing=True)
    n = len(human)
    if n == 0:
        return float("nan"), None
    # An empty label (None) is never C, Th or Thm: at any ε it sits in D or Tm, as NaN does upstream.
    correct = sum(1 for h, m in zip(human, margin) if h is not None and h != 0 and h * m > 0)
    thm = 0
    best, best_eps = (correct / n, None) if exact else (-math.inf, None)
    order = sorted(range(n), key=lambda i: abs(margin[i]))
    for pos, i in enumerate(order):
        h, m = human[i], margin[i]
        if h == 0:
            thm += 1
        elif h is not None and h * m > 0:
            correct -= 1
        run_continues = pos + 1 < n and abs(margin[order[pos + 1]]) == abs(m)
        if exact and run_continues:
            continue
        acc = (correct + thm) / n
        # Strict `>` keeps the first (smallest) ε reaching the maximum, as VideoAlign's epsilon_star does.
        if acc > best:
            best, best_eps = acc, float(abs(m))
    return best, best_eps


def videoalign_tie_accuracy(human: Sequence[int], margin: Sequence[float]) -> float:
    """VideoAlign's "w/ ties" accuracy, reproducing `calc_accuracy.py` exactly, quirks included.

    The "Ties Matter" threshold sweep as VideoAlign codes it: stable sort by |m| (equal |m| keep input row
    order, so the result depends on row order), one pair moved into the tie bucket per step, `(C + Thm) / N`
    scored after every step, the maximum returned. The ε = −1 ("no model ties") state is never scored, so a
    perfect ranker without human ties gets (N−1)/N. Use `videoalign_tie_accuracy_exact` for the true maximum.

    Args:
        human: (N,) labels in {1, -1, 0} (None: an empty label cell), in the benchmark's row order.
        margin: (N,) score_A - score_B.

    Returns:
        Accuracy in [0, 1]; NaN for empty input (the original returns -inf there).
    """
    return _sweep(human, margin, exact=False)[0]


def videoalign_tie_accuracy_exact(human: Sequence[int], margin: Sequence[float]) -> float:
    """Tie-aware accuracy maximised over the thresholds that actually exist: ε = −1 and each distinct |m|.

    Every scored state is one a real threshold produces (all pairs with |m| ≤ ε are ties), so the value is
    independent of row order and a perfect ranker without human ties scores 1.0.

    Args:
        human: (N,) labels in {1, -1, 0} (None: an empty label cell).
        margin: (N,) score_A - score_B.

    Returns:
        Accuracy in [0, 1]; NaN for empty input.
    """
    return _sweep(human, margin, exact=True)[0]


def videoalign_tie_threshold(human: Sequence[int], margin: Sequence[float],
                             exact: bool = True) -> tuple[float, float | None]:
    """The tie-aware accuracy together with the threshold ε* that reaches it.

    Args:
        human: (N,) labels in {1, -1, 0}.
        margin: (N,) score_A - score_B.
        exact: True for the consistent-states maximum, False for VideoAlign's sweep.

    Returns:
        (accuracy, ε*), ε* the smallest threshold reaching the maximum; predict a tie when |m| ≤ ε*.
        ε* is None when "no model ties" (ε = −1) is best (exact mode) or the input is empty.
    """
    return _sweep(human, margin, exact=exact)


def mjbench_video_label(overall_preference: str) -> int | None:
    """MJ-Bench-Video `overall_preference` -> human label ("Video 1" = `video_0` = A); None for Same / Hard.

    Case is normalised ("Video 1 Better" occurs six times in test.json).
    """
    value = overall_preference.strip().lower()
    labels = {"video 1 better": 1, "video 2 better": -1, "same": None, "hard to judge": None}
    if value not in labels:
        raise ValueError(f"unknown MJ-Bench-Video overall_preference {overall_preference!r}")
    return labels[value]


def mjbench_video_accuracy(human: Sequence[int], margin: Sequence[float], mode: str = "strict") -> float:
    """MJ-Bench-Video overall accuracy over strict-preference pairs (callers drop Same / Hard to judge).

    Args:
        human: (N,) labels in {1, -1}; any 0 left in is ignored.
        margin: (N,) score(video_0) - score(video_1).
        mode: "strict" (a score tie is wrong) or "tie_aware" (a score tie earns 0.5).

    Returns:
        Accuracy in [0, 1]; NaN when no pair is left.
    """
    if mode not in ("strict", "tie_aware"):
        raise ValueError(f"mode must be 'strict' or 'tie_aware'; got {mode!r}")
    return pairwise_accuracy(human, margin, tie="wrong" if mode == "strict" else "half")


_GENAI_VOTES = {"leftvote": 1, "rightvote": -1, "tievote": 0, "bothbad_vote": 0}
# Verdicts GenAI-Bench's parse_response accepts for each human vote (exact string match).
_GENAI_ACCEPTED = {
    "leftvote": ("[[A>>B]]", "[[A>B]]"),
    "rightvote": ("[[B>>A]]", "[[B>A]]"),
    "tievote": ("[[A=B]]", "[[A=B=Good]]"),
    "bothbad_vote": ("[[A=B]]", "[[A=B=Bad]]"),
}


def genai_vote_to_human(vote: str) -> int:
    """GenAI-Bench `vote_type` -> human label: leftvote 1, rightvote -1, tievote and bothbad_vote 0."""
    if vote not in _GENAI_VOTES:
        raise ValueError(f"unknown GenAI-Bench vote_type {vote!r}; expected one of {sorted(_GENAI_VOTES)}")
    return _GENAI_VOTES[vote]


def genai_bench_parse_verdict(response: str | None) -> str | None:
    """The judge's verdict as GenAI-Bench extracts it: the greedy `\\[\\[.*\\]\\]` match, or None.

    `.` does not cross newlines, so the match runs from the first `[[` to the last `]]` on the first line that
    has both; two verdicts on one line therefore match as one unrecognised string.
    """
    if response is None:
        return None
    # Same result as re.search(r"\[\[.*\]\]", response) in linear time: the regex backtracks quadratically on
    # hostile text such as "[[" * 20000 (over a second), and model output is hostile input.
    for line in response.split("\n"):
        start = line.find("[[")
        if start >= 0:
            end = line.rfind("]]")
            if end >= start + 2:
                return line[start:end + 2]
    return None


def genai_bench_judge_correct(vote: str, response: str | None) -> bool:
    """Whether one judge output is correct for a human vote (4-way; unparsed counts as wrong)."""
    if vote not in _GENAI_ACCEPTED:
        raise ValueError(f"unknown GenAI-Bench vote_type {vote!r}")
    verdict = genai_bench_parse_verdict(response)
    return verdict is not None and verdict in _GENAI_ACCEPTED[vote]


def genai_bench_judge_accuracy(votes: Sequence[str], predictions: Sequence[str | None]) -> float:
    """GenAI-Bench's official 4-way generative-judge accuracy (random ≈ 25%).

    Args:
        votes: (N,) human `vote_type` values.
        predictions: (N,) raw judge outputs or bare verdicts (`[[A>B]]`, `[[B>A]]`, `[[A=B=Good]]`,
            `[[A=B=Bad]]`; `[[A>>B]]`, `[[B>>A]]`, `[[A=B]]` are accepted too); None = no output (wrong).

    Returns:
        Accuracy in [0, 1] over all items; NaN for empty input.
    """
    if len(votes) != len(predictions):
        raise ValueError(f"votes and predictions differ in length ({len(votes)} vs {len(predictions)})")
    if not votes:
        return float("nan")
    return sum(genai_bench_judge_correct(v, p) for v, p in zip(votes, predictions)) / len(votes)


def genai_bench_rm_scores(votes: Sequence[str], margin: Sequence[float]) -> dict[str, float]:
    """GenAI-Bench as video reward-model papers score it (margin = score_left - score_right).

    Returns:
        {"diff": non-tie accuracy, model tie wrong (MJ-Video "Strict"); "diff_tie_half": same pairs, model
        tie = 0.5 (MJ-Video "Tie-aware"); "w_ties": VideoAlign sweep with tievote / bothbad_vote as h = 0}.
    """
    human = [genai_vote_to_human(v) for v in votes]
    return {
        "diff": accuracy_without_ties(human, margin),
        "diff_tie_half": pairwise_accuracy(human, margin, tie="half"),
        "w_ties": videoalign_tie_accuracy(human, margin),
    }


# The literal list from PickScore's eval script (literals, so 0.3 is 0.3 and not 3 * 0.1).
PICKAPIC_THRESHOLDS = (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1)


def pickapic_label(label_0: float) -> int:
    """Pick-a-Pic `label_0` -> human label: 0.5 tie (0), 1 image 0 preferred (1), else image 1 (-1)."""
    if label_0 == 0.5:
        return 0
    return 1 if label_0 == 1 else -1


def pickapic_probs(score_0: float, score_1: float) -> tuple[float, float]:
    """Two-way softmax of the two image scores, as PickScore's evaluation compares probabilities."""
    top = max(score_0, score_1)
    e0, e1 = math.exp(score_0 - top), math.exp(score_1 - top)
    return e0 / (e0 + e1), e1 / (e0 + e1)


def pickapic_tie_accuracy(labels: Sequence[int], probs: Sequence, threshold: float) -> float:
    """Pick-a-Pic tie-aware accuracy: 1 on an exact match, 0.5 when the label or the prediction is a tie.

    Args:
        labels: (N,) human labels in {1, -1, 0} (see `pickapic_label`).
        probs: (N,) pairs (p0, p1) (see `pickapic_probs`) or floats p0 - p1.
        threshold: predict a tie when |p1 - p0| ≤ threshold.

    Returns:
        Mean credit in [0, 1]; NaN for empty input.
    """
    if len(labels) != len(probs):
        raise ValueError(f"labels and probs differ in length ({len(labels)} vs {len(probs)})")
    if not labels:
        return float("nan")
    total = 0.0
    for label, p in zip(labels, probs):
        diff = p[1] - p[0] if isinstance(p, (tuple, list)) else -p
        pred = 0 if abs(diff) <= threshold else (1 if diff < 0 else -1)
        total += 1.0 if pred == label else (0.5 if 0 in (pred, label) else 0.0)
    return total / len(labels)


def pickapic_best_threshold(labels: Sequence[int], probs: Sequence,
                            thresholds: Sequence[float] = PICKAPIC_THRESHOLDS) -> tuple[float, float]:
    """The threshold with the best tie-aware accuracy on validation (`validation_unique`).

    Ties go to the first (smallest) threshold, as `np.argmax` does in PickScore's script.

    Returns:
        (threshold, validation accuracy); apply the threshold to `test_unique` with `pickapic_tie_accuracy`.
    """
    accs = [pickapic_tie_accuracy(labels, probs, t) for t in thresholds]
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))
    return thresholds[best], accs[best]
