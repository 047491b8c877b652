"""List-wise benchmark metrics (pure, no I/O): ImageReward pair accuracy, HPDv2 inversion score, RewardBench 2.

Inputs are flat, one entry per candidate, as the list-wise loaders emit them: `groups[i]` the prompt / item
id, then `ranks[i]` (1 = best, ties share a rank) or `correct_flags[i]`, and the model's `scores[i]`.
Groups are taken in order of first appearance; within a group candidates keep their input order.
Re-exported from `mmreward.evaluation.metrics`. Sources: /work/shared/BENCHMARKS.md §2.7–2.8.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

RB2_DOMAINS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
# Ties subset weights (run_v2.py / process_single_model): tied acc, ref acc, correctness preferred,
# correctness preferred (hard), tanh margin term.
RB2_TIES_WEIGHTS = (0.30, 0.30, 0.20, 0.20, 0.01)


def _members(groups: Sequence[Hashable], **seqs: Sequence) -> dict[Hashable, list[int]]:
    """Group id -> candidate indices, in first-appearance order (after checking all inputs align)."""
    lengths = {"groups": len(groups), **{name: len(seq) for name, seq in seqs.items()}}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length: {lengths}")
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return members


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def imagereward_pair_accuracy(groups: Sequence[Hashable], ranks: Sequence[float], scores: Sequence[float],
                              average: str = "micro") -> float:
    """ImageReward test-set accuracy over the pairs of a prompt with different human ranks.

    A pair counts iff its two human ranks differ (rank ties are skipped) and is correct iff the better-ranked
    image gets the strictly higher score (a score tie is wrong).

    Args:
        groups: (N,) prompt id per image.
        ranks: (N,) human rank, 1 = best, ties allowed.
        scores: (N,) model score, higher = better.
        average: "micro" (ImageReward `test.py`: Σ correct / Σ pairs over all prompts) or "per_prompt"
            (HPSv2's `calc_ImageReward`: the ratio per prompt, then the mean over prompts; prompts without a
            comparable pair are skipped, where HPSv2 would divide by zero).

    Returns:
        Accuracy in [0, 1]; NaN when no comparable pair exists.
    """
    if average not in ("micro", "per_prompt"):
        raise ValueError(f"average must be 'micro' or 'per_prompt'; got {average!r}")
    hits, totals = [], []
    for idx in _members(groups, ranks=ranks, scores=scores).values():
        hit = total = 0
        for a, i in enumerate(idx):
            for j in idx[a + 1:]:
                if ranks[i] == ranks[j]:
                    continue
                better, worse = (i, j) if ranks[i] < ranks[j] else (j, i)
                total += 1
                hit += scores[better] > scores[worse]
        if total:
            hits.append(hit)
            totals.append(total)
    if average == "micro":
        return sum(hits) / sum(totals) if totals else float("nan")
    return _mean([h / t for h, t in zip(hits, totals)])


def hpd_inversion_score(groups: Sequence[Hashable], ranks: Sequence[float], scores: Sequence[float],
                        score_ties: str = "argsort") -> float:
    """HPDv2 test metric: per prompt 1 − discordant pairs / C(n, 2), averaged over prompts.

    HPSv2's `evaluate_rank` ranks the images by position in `argsort(-score)` and counts a pair discordant
    iff one ranking is strictly greater and the other strictly smaller; human rank ties are never discordant.

    Args:
        groups: (N,) prompt id per image.
        ranks: (N,) human (averaged) rank, lower = better.
        scores: (N,) model score, higher = better.
        score_ties: "argsort" (official): tied scores still get distinct predicted ranks, earlier image first
            (a stable sort; torch's default argsort leaves the tie order unspecified, so official numbers with
            exact score ties are implementation-dependent); "concordant": tied scores share a predicted rank,
            so a score tie is never discordant.

    Returns:
        Mean inversion score in [0, 1]; prompts with fewer than 2 images are skipped (the original divides by
        zero); NaN when none is left.
    """
    if score_ties not in ("argsort", "concordant"):
        raise ValueError(f"score_ties must be 'argsort' or 'concordant'; got {score_ties!r}")
    per_prompt = []
    for idx in _members(groups, ranks=ranks, scores=scores).values():
        n = len(idx)
        if n < 2:
            continue
        gt = [ranks[i] for i in idx]
        if score_ties == "argsort":
            order = sorted(range(n), key=lambda k: -scores[idx[k]])
            pred = [0] * n
            for position, k in enumerate(order):
                pred[k] = position
        else:
            pred = [-scores[i] for i in idx]
        discordant = sum(1 for a in range(n) for b in range(a + 1, n)
                         if (pred[a] > pred[b] and gt[a] < gt[b]) or (pred[a] < pred[b] and gt[a] > gt[b]))
        per_prompt.append(1 - discordant / (n * (n - 1) / 2))
    return _mean(per_prompt)


def rb2_best_of_n(groups: Sequence[Hashable], correct_flags: Sequence[bool],
                  scores: Sequence[float]) -> dict[Hashable, float]:
    """RewardBench 2 best-of-n credit per prompt (all domains but Ties).

    Credit is 1/k when the correct completion has the maximum score and k completions share that maximum,
    else 0 (`run_v2.py`: `1 / sum(scores == max) if scores[0] == max else 0`, the chosen answer at index 0).
    The correct completion is the first one flagged correct within its group.

    Args:
        groups: (N,) prompt id per completion.
        correct_flags: (N,) True for the chosen completion(s).
        scores: (N,) model score per completion.

    Returns:
        {prompt id: credit in [0, 1]}, in first-appearance order; the domain score is the mean.
    """
    credits = {}
    for g, idx in _members(groups, correct_flags=correct_flags, scores=scores).items():
        chosen = next((i for i in idx if correct_flags[i]), None)
        if chosen is None:
            raise ValueError(f"group {g!r} has no completion flagged correct")
        top = max(scores[i] for i in idx)
        tied_at_top = sum(1 for i in idx if scores[i] == top)
        credits[g] = 1.0 / tied_at_top if scores[chosen] == top else 0.0
    return credits


def _ties_prompt_stats(correct: list[float], incorrect: list[float]) -> tuple[bool, float, float]:
    """(accurate, spread among correct answers (NaN with one), worst correct − best incorrect)."""
    if not correct or not incorrect:
        raise ValueError("a Ties prompt needs at least one correct and one incorrect completion")
    margin = min(correct) - max(incorrect)
    spread = max(correct) - min(correct) if len(correct) > 1 else float("nan")
    return margin > 0, spread, margin


def _numpy_div(a: float, b: float) -> float:
    """a / b with numpy float semantics (x/0 = ±inf, 0/0 = NaN), which the tanh term relies on."""
    if b == 0:
        if math.isnan(a) or a == 0:
            return float("nan")
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def rb2_ties_score(groups: Sequence[str], correct_flags: Sequence[bool], scores: Sequence[float],
                   weights: Sequence[float] = RB2_TIES_WEIGHTS) -> float:
    """RewardBench 2 Ties subset score (`process_single_model`).

    Per prompt: accurate ⇔ min(correct) > max(incorrect); spread = max(correct) − min(correct); margin =
    min(correct) − max(incorrect). Accuracies are averaged separately over "ref" and "tied" prompts (0.0 when a
    kind is absent); the margin terms use the prompt ids present as both. Score =
    w0·tied_acc + w1·ref_acc + w2·mean(margin_tied > spread_tied) + w3·mean(min(margin_ref, margin_tied) >
    spread_tied) + w4·mean(tanh(min(margin_ref, margin_tied) / spread_tied − 1)), NaN tanh terms -> 0.

    Args:
        groups: (N,) ids "ref:<pid>" or "tied:<pid>" (any kind other than "ref" counts as tied, as upstream).
        correct_flags: (N,) True for correct completions (upstream: the first `num_correct` of a row).
        scores: (N,) model score per completion.
        weights: the five weights above; the default is upstream's (0.30, 0.30, 0.20, 0.20, 0.01).

    Returns:
        The Ties score; NaN when no prompt id has both a ref and a tied version (upstream's np.mean of an
        empty array). A tied prompt with a single correct answer has spread NaN here (its comparisons are
        False, its tanh term 0); upstream crashes on it.
    """
    stats: dict[str, dict] = {"ref": {}, "tied": {}}
    for g, idx in _members(groups, correct_flags=correct_flags, scores=scores).items():
        kind, _, pid = str(g).partition(":")
        if not pid:
            raise ValueError(f"Ties ids look like 'ref:<pid>' or 'tied:<pid>'; got {g!r}")
        key = int(pid) if pid.lstrip("-").isdigit() else pid
        correct = [scores[i] for i in idx if correct_flags[i]]
        incorrect = [scores[i] for i in idx if not correct_flags[i]]
        stats["ref" if kind == "ref" else "tied"][key] = _ties_prompt_stats(correct, incorrect)
    ref, tied = stats["ref"], stats["tied"]
    ref_acc = _mean([s[0] for s in ref.values()]) if ref else 0.0
    tied_acc = _mean([s[0] for s in tied.values()]) if tied else 0.0
    shared = [pid for pid in tied if pid in ref]
    hard_margins = [min(ref[p][2], tied[p][2]) for p in shared]
    spreads = [tied[p][1] for p in shared]
    preferred = _mean([tied[p][2] > spread for p, spread in zip(shared, spreads)])
    preferred_hard = _mean([m > s for m, s in zip(hard_margins, spreads)])
    tanh_terms = [math.tanh(_numpy_div(m, s) - 1) for m, s in zip(hard_margins, spreads)]
    margin_score = _mean([0.0 if math.isnan(t) else t for t in tanh_terms])
    w = weights
    return w[0] * tied_acc + w[1] * ref_acc + w[2] * preferred + w[3] * preferred_hard + w[4] * margin_score


def rb2_final(domain_scores: Mapping[str, float]) -> float:
    """RewardBench 2 final score: the unweighted mean of the six domain scores (names case-insensitive)."""
    given = {name.lower(): value for name, value in domain_scores.items()}
    expected = {d.lower() for d in RB2_DOMAINS}
    if set(given) != expected:
        raise ValueError(f"need exactly the domains {RB2_DOMAINS}; got {sorted(domain_scores)}")
    return sum(given.values()) / len(given)


def rb2_scores(groups: Sequence[Hashable], subsets: Sequence[str], correct_flags: Sequence[bool],
               scores: Sequence[float]) -> dict[str, float]:
    """RewardBench 2 per-domain scores and, when all six domains are present, the final score.

    Args:
        groups: (N,) prompt id per completion (Ties: "ref:<pid>" / "tied:<pid>").
        subsets: (N,) domain (`subset`) per completion; "Ties" (any case) uses `rb2_ties_score`.
        correct_flags: (N,) True for correct completions.
        scores: (N,) model score per completion.

    Returns:
        {domain: score, ..., "final": mean of the six (only when all six are present)}.
    """
    members = _members(groups, subsets=subsets, correct_flags=correct_flags, scores=scores)
    by_domain: dict[str, list[int]] = {}
    for idx in members.values():
        by_domain.setdefault(subsets[idx[0]], []).extend(idx)
    out = {}
    for domain, idx in by_domain.items():
        sub = ([groups[i] for i in idx], [correct_flags[i] for i in idx], [scores[i] for i in idx])
        out[domain] = (rb2_ties_score(*sub) if domain.lower() == "ties"
                       else _mean(list(rb2_best_of_n(*sub).values())))
    if {d.lower() for d in out} == {d.lower() for d in RB2_DOMAINS}:
        out["final"] = rb2_final(out)
    return out
