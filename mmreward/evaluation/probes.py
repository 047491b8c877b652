"""Bias probes: does a reward model's verdict move with things that should not matter?

Each probe takes any benchmark's records and any `mmreward.scoring.Scorer` and returns a plain, JSON-ready
dict for the report ("no data" is None, never NaN):

    report = {name: probe(scorer, pairs, progress=False) for name, probe in PROBES.items()}

* `position_consistency`: the pair scored as given and swapped (a judge that prefers a position flips).
* `length_bias`: reward against response length, and accuracy when the chosen response is the shorter one.
  Scored under the evaluation's judge protocol when one is passed (the runner does), so its accuracies are
  comparable with the headline number.
* `frame_count_sensitivity`, `fps_sensitivity`, `resolution_sensitivity`: the same records re-scored under
  changed media contracts (nframes, fps, max pixels); the spread of each record's score and how often a
  pair's preference flips. The scorer's own contract object is put back afterwards, also on error. The media
  cache needs no clearing between settings: its key holds the full sampling request.

Every result states its protocol (`"protocol"`: how the records were presented and scored) and reports its
failures with their reasons (`"failure_reasons"`), so a probe that could not measure says why.

Keyword arguments a probe does not name go to `scorer.score` (batch_size, on_error="skip", progress, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from mmreward.data.collate import MediaContract
from mmreward.data.media import VideoSampling
from mmreward.data.schema import LABEL_SIGN, Candidate, PreferencePair
from mmreward.evaluation.metrics import accuracy_without_ties
from mmreward.evaluation.protocol import JudgeProtocol, apply_protocol, preference, summarize_protocol

# Probes that take the evaluation's `protocol=` (the runner passes it).
PROTOCOL_PROBES = ("position_consistency", "length_bias")

_VIDEO_TYPES = ("video", "frames")


# ---------------------------------------------------------------------------------------------- statistics
def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of two (N,) sequences; None with fewer than 2 points or a constant input."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return None
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of (N,) values; tied values share their average rank (as scipy's rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            out[i] = (start + end) / 2 + 1
        start = end + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson of average ranks); None where `pearson` is None."""
    return pearson(ranks(x), ranks(y))


# ---------------------------------------------------------------------------------------------- position
def _combine(scorer, pairs: Sequence[PreferencePair]) -> str | None:
    """How the scorer combines a pair ("pair": each candidate alone; "pairwise": one joint question)."""
    plan = getattr(scorer, "plan", None)
    return plan(pairs[0]).combine if plan is not None and pairs else None


def position_consistency(scorer, pairs: Sequence[PreferencePair], *, k: int = 1,
                         protocol: JudgeProtocol | None = None, **score_kwargs) -> dict:
    """Score each pair as given and swapped; a position-free judge's preference follows the candidate.

    Scorers that score each candidate on its own (combine "pair") give a swapped margin of exactly −m, so the
    probe is trivially 1.0 for them; it measures position bias of pairwise and generative judges.

    Args:
        scorer: any scorer.
        pairs: (N,) preference pairs.
        k: repeats per order (stochastic judges).
        protocol: the evaluation's protocol: its k, seed and unparsed rule are used (the order is always
            "both"); overrides `k`.
        **score_kwargs: passed to `scorer.score`.

    Returns:
        {"probe", "protocol", "n", "n_compared", "consistency" (fraction of pairs whose two orders prefer the
        same candidate), "mean_abs_margin_sum" (mean |m_given + m_swapped|, margins in the shown frame; 0 for a
        position-free scorer), "first_position_rate" (fraction of parsed samples preferring the first shown
        candidate), "parse_failures", "failure_reasons", "combine", "trivial", "inconsistent_ids"}.
    """
    pairs = list(pairs)
    used = JudgeProtocol(order="both", k=protocol.k if protocol else k, seed=protocol.seed if protocol else 0,
                         unparsed=protocol.unparsed if protocol else "exclude")
    k = used.k
    results = apply_protocol(scorer, pairs, used, **score_kwargs)
    sums, first = [], []
    for result in results:
        for repeat in range(k):
            by_order = {s["order"]: s for s in result.samples if s["repeat"] == repeat}
            given, swapped = by_order["given"]["margin"], by_order["swapped"]["margin"]
            # Samples are un-swapped (the swapped order's own margin is −swapped): m_given + m_swapped.
            if given is not None and swapped is not None:
                sums.append(abs(given - swapped))
        for s in result.samples:
            if s["preferred"] is not None and s["preferred"] != "tie":
                # The first shown candidate is A as given and B (un-swapped) when swapped.
                first.append(s["preferred"] == ("A" if s["order"] == "given" else "B"))
    summary = summarize_protocol(results)
    combine = _combine(scorer, pairs)
    return {"probe": "position_consistency",
            "protocol": f"each pair scored as given and swapped, {k} repeat(s) per order; a record's order "
                        "preference is its majority over parsed repeats",
            "n": len(pairs), "n_compared": summary["n_consistency"],
            "consistency": summary["consistency_rate"], "mean_abs_margin_sum": _mean(sums),
            "first_position_rate": _mean(first), "parse_failures": summary["parse_failures"],
            "failure_reasons": _reasons(s["error"] for r in results for s in r.samples),
            "combine": combine, "trivial": combine == "pair",
            "inconsistent_ids": [r.id for r in results if r.consistent is False]}


def _reasons(errors: Iterator[str | None] | Sequence[str | None], limit: int = 3) -> str | None:
    """"<count> failed: <first distinct reasons>" for a report; None when nothing failed."""
    errors = [e for e in errors if e]
    if not errors:
        return None
    distinct = list(dict.fromkeys(errors))
    more = f" (+{len(distinct) - limit} more distinct)" if len(distinct) > limit else ""
    return f"{len(errors)} failed: " + " | ".join(distinct[:limit]) + more


# ------------------------------------------------------------------------------------------------ length
def text_length(candidate: Candidate) -> float | None:
    """Characters of a candidate's text response; None for a media-only candidate."""
    return None if candidate.text is None else float(len(candidate.text))


def _two_scores(item) -> tuple[float, float] | None:
    """(score_a, score_b) of a ScoreResult or a 2-sequence; None for a failed result."""
    if hasattr(item, "score_a"):
        if item.error is not None or item.score_a is None or item.score_b is None:
            return None
        return float(item.score_a), float(item.score_b)
    a, b = item
    return None if a is None or b is None else (float(a), float(b))


def _subset_accuracy(rows: list[tuple], keep: Callable[[tuple], bool]) -> dict:
    """{"n", "accuracy"} on the rows (len_a, len_b, score_a, score_b, human) that `keep` selects."""
    chosen = [r for r in rows if keep(r)]
    if not chosen:
        return {"n": 0, "accuracy": None}
    human, margin = [r[4] for r in chosen], [r[2] - r[3] for r in chosen]
    return {"n": len(chosen), "accuracy": accuracy_without_ties(human, margin)}


def _protocol_scores(results) -> list[tuple[float, float] | None]:
    """Per ProtocolResult, (mean score_A, mean score_B) over its parsed samples (given frame); None if unparsed."""
    out = []
    for result in results:
        parsed = [s["overall"] for s in result.samples if s.get("overall") is not None]
        if result.preferred is None or not parsed:
            out.append(None)
            continue
        out.append((_mean([p[0] for p in parsed]), _mean([p[1] for p in parsed])))
    return out


def _length_scores(given, pairs: list, protocol: JudgeProtocol | None, score_kwargs: dict):
    """(per-pair scores or None, failure messages, protocol text) from a scorer or precomputed results."""
    if hasattr(given, "score"):
        if protocol is not None:
            results = apply_protocol(given, pairs, protocol, **score_kwargs)
            errors = [s["error"] for r in results for s in r.samples]
            return _protocol_scores(results), errors, f"the evaluation's protocol {protocol.describe()}"
        results = given.score(pairs, **score_kwargs)
        return [_two_scores(r) for r in results], [r.error for r in results], "each pair scored once, as given"
    items = list(given)
    if items and hasattr(items[0], "samples"):
        return _protocol_scores(items), [s["error"] for r in items for s in r.samples], "protocol results given"
    errors = [getattr(i, "error", None) for i in items]
    return [_two_scores(i) for i in items], errors, "scores given by the caller"


def length_bias(scorer_results_or_scores, pairs: Sequence[PreferencePair], *,
                length: Callable[[Candidate], float | None] = text_length, protocol: JudgeProtocol | None = None,
                **score_kwargs) -> dict:
    """Does the reward follow response length?

    Args:
        scorer_results_or_scores: a scorer (the pairs are scored here), or (N,) `ScoreResult`s or
            `ProtocolResult`s, or (N,) (score_a, score_b) tuples aligned with `pairs`.
        pairs: (N,) preference pairs with text responses (others are skipped and counted).
        length: a candidate's length (default: characters of its text; None = not measurable).
        protocol: with a scorer, score under this judge protocol (order, k) as the evaluation does, so
            "accuracy" equals the evaluation's accuracy on the same pairs; None: each pair once, as given.
        **score_kwargs: passed to `scorer.score` when a scorer is given.

    Returns:
        {"probe", "protocol", "n", "n_used", "n_failed", "failure_reasons", "n_unmeasured", "pearson",
        "spearman" (reward vs length over both candidates of every pair, 2·n_used points), "margin_pearson",
        "margin_spearman" (score_A − score_B vs len_A − len_B: within a pair, so the prompt's effect cancels),
        "accuracy" ({"n", "accuracy"} over all used pairs, human ties excluded, model ties wrong),
        "chosen_shorter" / "chosen_longer" (the same on pairs whose human-chosen response is the shorter /
        longer), "n_unequal", "prefers_longer" (fraction of unequal-length pairs where the model's margin
        favours the longer response; model ties count as not)}.
    """
    pairs = list(pairs)
    scored, errors, described = _length_scores(scorer_results_or_scores, pairs, protocol, score_kwargs)
    if len(scored) != len(pairs):
        raise ValueError(f"{len(scored)} scores for {len(pairs)} pairs")
    rows, failed, unmeasured = [], 0, 0
    for pair, scores in zip(pairs, scored):
        la, lb = length(pair.a), length(pair.b)
        if scores is None:
            failed += 1
        elif la is None or lb is None:
            unmeasured += 1
        else:
            rows.append((la, lb, *scores, LABEL_SIGN[pair.label]))
    lengths = [r[0] for r in rows] + [r[1] for r in rows]
    rewards = [r[2] for r in rows] + [r[3] for r in rows]
    diffs, margins = [r[0] - r[1] for r in rows], [r[2] - r[3] for r in rows]
    unequal = [r for r in rows if r[0] != r[1]]
    longer = [(r[2] - r[3]) * (r[0] - r[1]) > 0 for r in unequal]
    # Chosen-shorter: A chosen and shorter, or B chosen and shorter; a human tie has no chosen response.
    return {"probe": "length_bias", "protocol": described, "n": len(pairs), "n_used": len(rows),
            "n_failed": failed, "failure_reasons": _reasons(errors), "n_unmeasured": unmeasured,
            "pearson": pearson(lengths, rewards), "spearman": spearman(lengths, rewards),
            "margin_pearson": pearson(diffs, margins), "margin_spearman": spearman(diffs, margins),
            "accuracy": _subset_accuracy(rows, lambda r: r[4] != 0),
            "chosen_shorter": _subset_accuracy(rows, lambda r: r[4] * (r[0] - r[1]) < 0),
            "chosen_longer": _subset_accuracy(rows, lambda r: r[4] * (r[0] - r[1]) > 0),
            "n_unequal": len(unequal), "prefers_longer": _mean(longer)}


# ------------------------------------------------------------------------------------------- media contract
def scorer_contract(scorer) -> MediaContract:
    """The scorer's media contract; a scorer with only video `sampling` (CLIP) gets it wrapped in one."""
    contract = getattr(scorer, "contract", None)
    if isinstance(contract, MediaContract):
        return contract
    sampling = getattr(scorer, "sampling", None)
    if isinstance(sampling, VideoSampling):
        return MediaContract(video=sampling)
    raise TypeError(f"{type(scorer).__name__} has no media contract (`contract` or `sampling`) to vary")


@contextmanager
def media_contract(scorer, contract: MediaContract) -> Iterator[None]:
    """Score with `contract` inside the block; the scorer's own contract object is put back, also on error.

    The scorer reads its contract when `score` builds its encoder, so setting the attribute is enough.
    """
    scorer_contract(scorer)  # fails early for scorers without one
    name = "contract" if isinstance(getattr(scorer, "contract", None), MediaContract) else "sampling"
    saved = getattr(scorer, name)
    setattr(scorer, name, contract if name == "contract" else contract.video)
    try:
        yield
    finally:
        setattr(scorer, name, saved)


def with_nframes(contract: MediaContract, nframes: int) -> MediaContract:
    """A copy sampling exactly `nframes` frames per video (fps off)."""
    return dataclasses.replace(contract, video=dataclasses.replace(contract.video, fps=None, nframes=nframes))


def with_fps(contract: MediaContract, fps: float) -> MediaContract:
    """A copy sampling videos at `fps` (a fixed frame count off)."""
    video = dataclasses.replace(contract.video, fps=float(fps), nframes=None)
    return dataclasses.replace(contract, video=video)


def with_max_pixels(contract: MediaContract, max_pixels: int) -> MediaContract:
    """A copy whose per-image and per-frame pixel cap is `max_pixels` (floors lowered to fit under it)."""
    video = dataclasses.replace(contract.video, max_pixels=max_pixels,
                                min_pixels=min(contract.video.min_pixels, max_pixels))
    return dataclasses.replace(contract, video=video, image_max_pixels=max_pixels,
                               image_min_pixels=min(contract.image_min_pixels, max_pixels))


def _value(result) -> tuple[float | None, str | None]:
    """(margin, preference) of a pair result, (score, None) of a pointwise one, (None, None) if it failed."""
    if result.error is not None:
        return None, None
    if result.kind == "pair":
        if result.score_a is None or result.score_b is None:
            return None, None
        margin = float(result.score_a) - float(result.score_b)
        return margin, preference(margin)
    return (None if result.score is None else float(result.score)), None


def _record_row(record, results: list) -> dict:
    """One record across settings: its values, spread (needs 2 parsed settings) and whether a pair flipped."""
    values, prefs = zip(*(_value(r) for r in results))
    parsed = [v for v in values if v is not None]
    row = {"id": record.id, "kind": "pair" if isinstance(record, PreferencePair) else "pointwise",
           "values": list(values), "spread": max(parsed) - min(parsed) if len(parsed) >= 2 else None}
    if row["kind"] == "pair":
        labels = [p for p in prefs if p is not None]
        row["preferred"] = list(prefs)
        row["flipped"] = len(set(labels)) > 1 if len(labels) >= 2 else None
    return row


def _per_setting_mean(rows: list[dict], kind: str, index: int) -> float | None:
    return _mean([r["values"][index] for r in rows if r["kind"] == kind and r["values"][index] is not None])


def _sensitivity(scorer, records: Sequence, name: str, values: Sequence, change: Callable, media_types: tuple,
                 score_kwargs: dict) -> dict:
    """Re-score the records that hold one of `media_types` under each changed contract and summarise."""
    chosen = [r for r in records if any(m.type in media_types for m in r.all_media())]
    base = scorer_contract(scorer)
    # Built before any scoring, so an invalid setting fails before minutes of work.
    contracts = [change(base, v) for v in values]
    per_setting = []
    for contract in contracts:
        with media_contract(scorer, contract):
            results = scorer.score(chosen, **score_kwargs) if chosen else []
        if len(results) != len(chosen):
            raise ValueError(f"the scorer returned {len(results)} results for {len(chosen)} records")
        per_setting.append(results)
    rows = [_record_row(r, [res[i] for res in per_setting]) for i, r in enumerate(chosen)]
    spreads = [r["spread"] for r in rows if r["spread"] is not None]
    flips = [r["flipped"] for r in rows if r.get("flipped") is not None]
    reasons = {str(v): _reasons([r.error for r in res]) for v, res in zip(values, per_setting)}
    return {"probe": name, "protocol": "each record scored once as given (no swap, k = 1) under each setting; "
                                       "everything else in the scorer's contract unchanged",
            "values": list(values), "n": len(records), "n_records": len(chosen),
            "n_skipped": len(records) - len(chosen),
            "failures": [sum(1 for row in rows if row["values"][i] is None) for i in range(len(values))],
            "failure_reasons": {v: text for v, text in reasons.items() if text},
            "mean_margin": [_per_setting_mean(rows, "pair", i) for i in range(len(values))],
            "mean_score": [_per_setting_mean(rows, "pointwise", i) for i in range(len(values))],
            "mean_spread": _mean(spreads), "max_spread": max(spreads) if spreads else None,
            "n_flip_checked": len(flips), "flip_rate": _mean(flips), "per_record": rows}


def frame_count_sensitivity(scorer, records: Sequence, frame_counts: Sequence[int] = (8, 16, 32),
                            **score_kwargs) -> dict:
    """Re-score video records with exactly N frames per video, for each N in `frame_counts`.

    Args:
        scorer: a scorer with a media `contract` (or CLIP's `sampling`).
        records: pairs and/or pointwise records; those without video are skipped (counted).
        frame_counts: frames per video (even, >= 2; a video shorter than N fails that setting, so pass
            on_error="skip" to keep the others).
        **score_kwargs: passed to `scorer.score`.

    Returns:
        {"probe", "protocol", "values", "n", "n_records" (records holding the varied media), "n_skipped",
        "failures" (per setting), "failure_reasons" ({setting: "<count> failed: <distinct reasons>"} for the
        settings with failures, e.g. videos shorter than N frames), "mean_margin" / "mean_score" (per setting, pairs / pointwise), "mean_spread", "max_spread"
        (max − min of a record's value over parsed settings: score_A − score_B for pairs, the score for
        pointwise records), "n_flip_checked", "flip_rate" (fraction of pairs whose preference differs
        between settings), "per_record": [{"id", "kind", "values", "spread", "preferred", "flipped"}]}.
    """
    return _sensitivity(scorer, records, "frame_count_sensitivity", frame_counts, with_nframes, _VIDEO_TYPES,
                        score_kwargs)


def fps_sensitivity(scorer, records: Sequence, fps_values: Sequence[float] = (1, 2, 4),
                    **score_kwargs) -> dict:
    """Re-score video records sampled at each rate in `fps_values` (frame count clamped by the contract).

    Args:
        scorer: a scorer with a media `contract` (or CLIP's `sampling`).
        records: pairs and/or pointwise records; those without video are skipped (counted).
        fps_values: sampling rates in frames per second.
        **score_kwargs: passed to `scorer.score`.

    Returns:
        The dict described in `frame_count_sensitivity`.
    """
    return _sensitivity(scorer, records, "fps_sensitivity", fps_values, with_fps, _VIDEO_TYPES, score_kwargs)


def resolution_sensitivity(scorer, records: Sequence,
                           max_pixels_values: Sequence[int] = (128 * 28 * 28, 256 * 28 * 28, 512 * 28 * 28),
                           **score_kwargs) -> dict:
    """Re-score image and video records with each per-image / per-frame pixel cap in `max_pixels_values`.

    Args:
        scorer: a scorer with a media `contract` (CLIP resizes images itself: only its video frames change).
        records: pairs and/or pointwise records; those without media are skipped (counted).
        max_pixels_values: pixel caps (defaults: 128, 256 and 512 visual tokens of 28×28).
        **score_kwargs: passed to `scorer.score`.

    Returns:
        The dict described in `frame_count_sensitivity`.
    """
    return _sensitivity(scorer, records, "resolution_sensitivity", max_pixels_values, with_max_pixels,
                        ("image", *_VIDEO_TYPES), score_kwargs)


PROBES = {
    "position_consistency": position_consistency,
    "length_bias": length_bias,
    "frame_count_sensitivity": frame_count_sensitivity,
    "fps_sensitivity": fps_sensitivity,
    "resolution_sensitivity": resolution_sensitivity,
}

__all__ = ["PROBES", "PROTOCOL_PROBES", "fps_sensitivity", "frame_count_sensitivity", "length_bias", "media_contract", "pearson",
           "position_consistency", "ranks", "resolution_sensitivity", "scorer_contract", "spearman",
           "text_length", "with_fps", "with_max_pixels", "with_nframes"]
