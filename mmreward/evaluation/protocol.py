"""The judge protocol: which presentation order a pair is scored in, how often, and how the samples combine.

Generative judges prefer positions (VL-RewardBench ships the chosen answer first in 1,245 of 1,250 items), so
a pair is scored as given, in both orders, or in a seeded random order, K times, with a majority vote:

    protocol = JudgeProtocol(order="both", k=3)
    results = apply_protocol(scorer, pairs, protocol, batch_size=8, on_error="skip", progress=False)
    report = {"protocol": protocol.describe(), **summarize_protocol(results)}

Works with any `mmreward.scoring.Scorer`. A sample that failed (its `ScoreResult.error` is set, e.g. an
unparsed verdict, or its scores are None) is counted in `parse_failures`, kept in `samples`, and left out of
the vote; it is never dropped silently. Margins are always in the frame of the given pair (score_A − score_B).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmreward.data.schema import PreferencePair

ORDERS = ("given", "both", "random")
UNPARSED_RULES = ("exclude", "vote")


@dataclass
class JudgeProtocol:
    """How pairs are presented to a scorer and how repeated samples combine; recorded next to every number."""

    # "given": as stored; "both": as stored and swapped, margins averaged; "random": a seeded random half of
    # the pairs swapped (a fresh half per repeat, as VL-RewardBench draws an order per run).
    order: str = "given"
    # Repeats per pair (for stochastic judges); the preference is the majority over the repeats.
    k: int = 1
    # Seed of the "random" order.
    seed: int = 0
    # "exclude": failed repeats leave the vote (the majority is over parsed repeats); "vote": they are a vote
    # class as in VL-RewardBench's cal.py (failures holding the majority leave the record unparsed).
    unparsed: str = "exclude"

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.unparsed not in UNPARSED_RULES:
            raise ValueError(f"unparsed must be one of {', '.join(UNPARSED_RULES)}, got {self.unparsed!r}")

    def describe(self) -> dict:
        """The protocol as a plain dict, to write next to every number it produced."""
        return {"order": self.order, "k": self.k, "seed": self.seed, "unparsed": self.unparsed,
                "vote": "majority over repeats (> half), otherwise tie; margin = mean over parsed samples"}


@dataclass
class ProtocolResult:
    """The protocol's verdict on one pair.

    Attributes:
        id: the pair id.
        margin: mean score_A − score_B over parsed samples, in the given pair's frame; None when unparsed.
        preferred: "A", "B" or "tie" by majority vote; None when the record counts as unparsed.
        consistent: order "both" only: whether the given and the swapped order prefer the same candidate
            (tie = tie counts as consistent); None otherwise or when either order has no parsed sample.
        parse_failures: failed samples (error set or scores None) of this pair.
        samples: every sample as a dict {"repeat", "order" ("given"/"swapped"), "margin", "preferred",
            "scores", "overall" ([score_A, score_B]), "error"}; margin, preferred, scores and overall are
            un-swapped (given frame), None for failed samples.
        scores: per dimension [score_A, score_B], the mean over the parsed samples (what the report plots);
            empty when unparsed.
        error: the failed samples' distinct messages when the record is unparsed, else None.
    """

    id: str
    margin: float | None
    preferred: str | None
    consistent: bool | None
    parse_failures: int
    samples: list[dict]
    scores: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        out = {"id": self.id, "margin": self.margin, "preferred": self.preferred,
               "consistent": self.consistent, "parse_failures": self.parse_failures, "scores": self.scores,
               "samples": self.samples}
        return {**out, "error": self.error} if self.error else out


def preference(margin: float) -> str:
    """"A" / "B" / "tie" from score_A − score_B (strict: an exact 0 is a tie)."""
    return "A" if margin > 0 else "B" if margin < 0 else "tie"


def _sample(result, repeat: int, swapped: bool) -> dict:
    """One sample in the given pair's frame: a swapped result's margin is negated, its preference flipped.

    A judge's episode (`result.trace`, when kept) rides along as "trace", in the frame it was shown.
    """
    sample = _sample_scores(result, repeat, swapped)
    if getattr(result, "trace", None) is not None:
        sample["trace"] = result.trace
    return sample


def _sample_scores(result, repeat: int, swapped: bool) -> dict:
    failed = result.error is not None or result.score_a is None or result.score_b is None
    if failed:
        error = result.error or "parse failure: the scorer returned no scores"
        return {"repeat": repeat, "order": "swapped" if swapped else "given", "margin": None,
                "preferred": None, "scores": None, "overall": None, "error": error}
    shown = [float(result.score_a), float(result.score_b)]
    overall = shown[::-1] if swapped else shown
    margin = overall[0] - overall[1]
    # Per-dimension [score_A, score_B] of pair results; other shapes (none known) are left out.
    scores = {d: [float(v[1]), float(v[0])] if swapped else [float(v[0]), float(v[1])]
              for d, v in (result.scores or {}).items() if isinstance(v, (list, tuple)) and len(v) == 2}
    return {"repeat": repeat, "order": "swapped" if swapped else "given", "margin": margin,
            "preferred": preference(margin), "scores": scores, "overall": overall, "error": None}


def _presentations(n: int, protocol: JudgeProtocol, rng: random.Random) -> list[list[bool]]:
    """Per presentation slot, which of the n pairs are swapped: one slot ("given", "random"), two ("both")."""
    if protocol.order == "given":
        return [[False] * n]
    if protocol.order == "both":
        return [[False] * n, [True] * n]
    # Exactly half (rounded down) swapped, so each stored side is shown first equally often (VL-RewardBench
    # stores the chosen answer first in almost every item).
    chosen = set(rng.sample(range(n), n // 2))
    return [[i in chosen for i in range(n)]]


def _score_repeat(scorer, pairs: Sequence[PreferencePair], protocol: JudgeProtocol, rng: random.Random,
                  repeat: int, score_kwargs: dict) -> list[list[dict]]:
    """Score every presentation of one repeat in a single call; returns per pair its samples of this repeat.

    One call (not one per order) lets the scoring engine share units between orders: a pointwise scorer reads
    each candidate once, and its swapped margin is exactly the negated given margin.
    """
    slots = _presentations(len(pairs), protocol, rng)
    shown = [p.swapped() if flip else p for flips in slots for p, flip in zip(pairs, flips)]
    results = scorer.score(shown, **score_kwargs)
    if len(results) != len(shown):
        raise ValueError(f"the scorer returned {len(results)} results for {len(shown)} records")
    samples: list[list[dict]] = [[] for _ in pairs]
    for s, flips in enumerate(slots):
        for i, flip in enumerate(flips):
            samples[i].append(_sample(results[s * len(pairs) + i], repeat, flip))
    return samples


def _majority(votes: list[str | None], unparsed: str) -> str | None:
    """Majority label of the repeats' votes (None = failed repeat); no strict majority is a tie."""
    parsed = [v for v in votes if v is not None]
    if unparsed == "exclude":
        votes = parsed
    if not parsed or (unparsed == "vote" and len(parsed) * 2 < len(votes)):
        return None
    label, count = Counter(votes).most_common(1)[0]
    return label if label is not None and count * 2 > len(votes) else "tie"


def _order_preference(samples: list[dict], order: str) -> str | None:
    votes = [s["preferred"] for s in samples if s["order"] == order and s["preferred"] is not None]
    return _majority(votes, "exclude") if votes else None


def _mean_scores(per_sample: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Element-wise mean of per-dimension [score_A, score_B] over the samples that have the dimension."""
    out = {}
    for dim in dict.fromkeys(d for scores in per_sample for d in scores):
        values = [scores[dim] for scores in per_sample if dim in scores]
        out[dim] = [sum(v[0] for v in values) / len(values), sum(v[1] for v in values) / len(values)]
    return out


def combine_samples(record_id: str, samples: list[dict], protocol: JudgeProtocol) -> ProtocolResult:
    """Combine one pair's samples: per repeat the parsed margins are averaged (the two orders of "both"),
    the repeat votes with the sign of that mean, and the pair takes the majority of its repeats.

    Args:
        record_id: the pair id.
        samples: the pair's samples from every repeat (see `ProtocolResult.samples`).
        protocol: the protocol that produced them.

    Returns:
        The `ProtocolResult`.
    """
    votes, margins = [], []
    for repeat in range(protocol.k):
        parsed = [s["margin"] for s in samples if s["repeat"] == repeat and s["margin"] is not None]
        margins.extend(parsed)
        votes.append(preference(sum(parsed) / len(parsed)) if parsed else None)
    preferred = _majority(votes, protocol.unparsed)
    consistent = None
    if protocol.order == "both":
        given, swapped = _order_preference(samples, "given"), _order_preference(samples, "swapped")
        consistent = None if given is None or swapped is None else given == swapped
    margin = sum(margins) / len(margins) if margins and preferred is not None else None
    errors = [s["error"] for s in samples if s["error"] is not None]
    error = "; ".join(dict.fromkeys(errors)) if preferred is None else None
    scores = _mean_scores([s["scores"] for s in samples if s["scores"]]) if preferred is not None else {}
    return ProtocolResult(record_id, margin, preferred, consistent, len(errors), samples, scores, error)


def apply_protocol(scorer, records: Sequence[PreferencePair], protocol: JudgeProtocol,
                   **score_kwargs) -> list[ProtocolResult]:
    """Score pairs under a judge protocol.

    Args:
        scorer: anything with `score(records, **kwargs) -> list[ScoreResult]` (pair results: score_a/score_b).
        records: (N,) preference pairs.
        protocol: order, repeats and seed.
        **score_kwargs: passed to `scorer.score` (batch_size, on_error="skip" to keep going past bad records,
            progress, ...).

    Returns:
        (N,) `ProtocolResult`s in input order.
    """
    pairs = list(records)
    for record in pairs:
        if not isinstance(record, PreferencePair):
            raise TypeError(f"{record.id}: the judge protocol applies to preference pairs, "
                            f"got {type(record).__name__}")
    if not pairs:
        return []
    rng = random.Random(protocol.seed)
    samples: list[list[dict]] = [[] for _ in pairs]
    for repeat in range(protocol.k):
        for i, new in enumerate(_score_repeat(scorer, pairs, protocol, rng, repeat, score_kwargs)):
            samples[i].extend(new)
    return [combine_samples(p.id, s, protocol) for p, s in zip(pairs, samples)]


def summarize_protocol(results: Sequence[ProtocolResult]) -> dict:
    """Counts for a report: verdicts, unparsed records, failed samples and the position-consistency rate.

    Args:
        results: (N,) protocol results.

    Returns:
        {"n", "n_unparsed", "preferred": {"A", "B", "tie"}, "parse_failures", "samples",
        "records_with_failures", "n_consistency", "consistency_rate" (None without order "both")}.
    """
    checked = [r.consistent for r in results if r.consistent is not None]
    counts = Counter(r.preferred for r in results if r.preferred is not None)
    return {
        "n": len(results),
        "n_unparsed": sum(1 for r in results if r.preferred is None),
        "preferred": {label: counts.get(label, 0) for label in ("A", "B", "tie")},
        "parse_failures": sum(r.parse_failures for r in results),
        "samples": sum(len(r.samples) for r in results),
        "records_with_failures": sum(1 for r in results if r.parse_failures),
        "n_consistency": len(checked),
        "consistency_rate": sum(checked) / len(checked) if checked else None,
    }


__all__ = ["ORDERS", "JudgeProtocol", "ProtocolResult", "apply_protocol", "combine_samples", "preference",
           "summarize_protocol"]
