"""From the runner's per-sample rows to each benchmark's official numbers: the one metric registry (`METRICS`).

`pairwise.py`, `grouped.py` and `listwise.py` hold the maths as pure functions; this module
decides, per benchmark and as its official script does, which rows enter which denominator and how a record's
verdict is read. Rows are the dicts the runner writes to `samples.jsonl`:

- pairs: `label` (A / B / tie; None when the benchmark's own label cell was empty), `margin` (mean
  score_A − score_B over parsed samples, None when unparsed), `preferred` (the judge protocol's majority:
  A / B / tie, None when unparsed), `samples` (every repeat and order), per-dimension `scores` and human
  `dimensions` / `human`, `category`, `group`, `media_path`, `vote_type`, `hard`, and `failure`: None,
  "unparsed" (no verdict could be read) or "media" (the media failed to load or the record did not fit);
- list-wise: `group`, `score`, `rank` or `correct`, `category`, `failure`.

The same rules hold everywhere: a media failure is left out of every denominator and counted (`failed`), never
silently; an unparsed verdict follows the benchmark's official rule (VL-RewardBench leaves it out,
Multimodal RewardBench guesses with the official seed, GenAI-Bench and MM-RLHF count it wrong). What each
official script does is in eval/README.md and /work/shared/BENCHMARKS.md §2.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from mmreward.data.records import LABEL_SIGN
from mmreward.evaluation import metrics as M

# A human label as the metrics take it (A = 1, B = -1, tie = 0).
HUMAN = LABEL_SIGN
# Scorers that emit verdicts (a judge's text, a yes/no answer) rather than calibrated rewards: their ties are a
# verdict ("no preference") and the generative-judge forms of the official metrics apply to them.
GENERATIVE = ("judge", "yes_token")
# A protocol verdict as the GenAI-Bench judge writes it; `[[A=B]]` is the tie `parse_response` accepts for
# both tievote and bothbad_vote.
GENAI_VERDICTS = {"A": "[[A>B]]", "B": "[[B>A]]", "tie": "[[A=B]]"}
# Multimodal RewardBench `2_get_accuracy.py` seeds Python's `random` once with 123 before reading the answers.
MMRB_SEED = 123
VIDEOGEN_DIMENSIONS = ("VQ", "MQ", "TA")


def failed(row: dict) -> bool:
    """Whether the row's media failed (left out of every denominator, counted in `failed`)."""
    return row.get("failure") == "media"


def _usable(rows):
    return [r for r in rows if not failed(r)]


def _pairs(rows):
    """Rows with a margin (scored and parsed)."""
    return [r for r in rows if r.get("margin") is not None and not failed(r)]


def _accuracy_without_ties(rows, scorer: str) -> dict:
    pairs = _pairs(rows)
    out = {"overall": M.accuracy_without_ties([HUMAN[r["label"]] for r in pairs], [r["margin"] for r in pairs])}
    for dim, (human, margin) in _per_dimension(pairs, lambda r, d: (r.get("dimensions") or {}).get(d)).items():
        out[dim] = M.accuracy_without_ties(human, margin)
    return out


def _per_dimension(pairs, label_of: Callable[[dict, str], str | None], dims=None) -> dict:
    """(human, margin) per dimension the scorer scores; `label_of(row, dim)` may be None (an empty cell)."""
    out: dict[str, tuple[list, list[float]]] = {}
    for row in pairs:
        for dim, side in (row.get("scores") or {}).items():
            if dim == "overall" or (dims is not None and dim not in dims) or not isinstance(side, list):
                continue
            label = label_of(row, dim)
            if label is None and dims is None:
                continue
            human, margin = out.setdefault(dim, ([], []))
            human.append(None if label is None else HUMAN[label])
            margin.append(side[0] - side[1])
    return out


def _videogen(rows, scorer: str) -> dict:
    """VideoGen-RewardBench as `eval_videogen_rewardbench.py` + `calc_accuracy.py` compute it, per dimension.

    Every scored row counts, an empty label cell included (NaN upstream: a decided pair never correct);
    "Overall" is the record's margin (VideoAlign's reward_ALL), VQ / MQ / TA the per-dimension head margins.
    """
    pairs = _pairs(rows)
    human = [HUMAN.get(_human_cell(r, "Overall")) for r in pairs]
    margin = [r["margin"] for r in pairs]
    out = {"without_ties": {"Overall": M.accuracy_without_ties(human, margin)},
           "with_ties": {"Overall": M.videoalign_tie_accuracy(human, margin)},
           "with_ties_exact": {"Overall": M.videoalign_tie_accuracy_exact(human, margin)}}
    dims = _per_dimension(pairs, _human_cell, VIDEOGEN_DIMENSIONS)
    for dim, (h, m) in dims.items():
        out["without_ties"][dim] = M.accuracy_without_ties(h, m)
        out["with_ties"][dim] = M.videoalign_tie_accuracy(h, m)
        out["with_ties_exact"][dim] = M.videoalign_tie_accuracy_exact(h, m)
    out["empty_label_cells"] = {d: sum(1 for r in pairs if _human_cell(r, d) is None)
                                for d in ("Overall", *dims)}
    return out


def _human_cell(row: dict, dim: str) -> str | None:
    """A VideoGen label cell ("A" / "B" / "tie", None when empty) from the row's raw `human` labels."""
    human = row.get("human")
    if human is None:  # rows of other loaders: the record's own labels
        return row["label"] if dim == "Overall" else (row.get("dimensions") or {}).get(dim)
    return human.get(dim)


def _verdict_correct(row: dict, scorer: str) -> bool | None:
    """Correctness from the protocol's majority verdict; None when the record is left out (VL-RewardBench).

    An unparsed record is left out. A tie is `cal.py`'s "other" (no strict majority) for a judge, also left out;
    for a reward model it is wrong (`r_chosen > r_rejected` is strict).
    """
    preferred = row.get("preferred")
    if preferred is None or (preferred == "tie" and scorer in GENERATIVE):
        return None
    return preferred == row["label"]


def _vlrb(rows, scorer: str) -> dict:
    usable = _usable(rows)
    ids = [str(r.get("source_id") or r["id"]) for r in usable]
    correct = [_verdict_correct(r, scorer) for r in usable]
    out = M.vlrb_scores(ids, correct, grouping="official", exclude_unparsed=True)
    out["excluded"] = out.pop("unparsed")
    # Papers use other groupings; overall is comparable, per-category and macro are not (BENCHMARKS.md §0.1).
    for grouping in ("r1", "unifiedreward"):
        out[f"macro_{grouping}_grouping"] = M.vlrb_scores(ids, correct, grouping=grouping)["macro"]
    return out


def _mmrlhf(rows, scorer: str) -> dict:
    """Acc / Acc+ over every pair; an unparsed verdict is not `rewards[0] > rewards[1]`, so it is wrong."""
    usable = _usable(rows)
    paths = [str(r.get("media_path") or "") for r in usable]
    return M.mmrlhf_scores([str(r.get("group")) for r in usable], [r.get("preferred") == "A" for r in usable],
                           paths)


def mmrb_predictions(rows: list[dict], scorer: str, seed: int = MMRB_SEED) -> tuple[list[str], int]:
    """Multimodal RewardBench predictions as `2_get_accuracy.py` reads them, in row (file) order.

    A verdict with neither side preferred (unparsed, or a judge's tie: the output holds neither "[[A]]" nor
    "[[B]]") is a coin flip `random.random() < 0.5 -> A` from one generator seeded once with `seed` and drawn
    only for those rows. A reward model's tie is a prediction of neither side (wrong), as `rewards[0] >
    rewards[1]` is strict. Media failures must be removed before.

    Returns:
        ((N,) "A" / "B" / "tie", number of guessed rows).
    """
    rng = random.Random(seed)
    predictions, guessed = [], 0
    for row in rows:
        preferred = row.get("preferred")
        if preferred is None or (preferred == "tie" and scorer in GENERATIVE):
            predictions.append("A" if rng.random() < 0.5 else "B")
            guessed += 1
        else:
            predictions.append(preferred)
    return predictions, guessed


def _mmrb(rows, scorer: str) -> dict:
    usable = _usable(rows)
    predictions, guessed = mmrb_predictions(usable, scorer)
    out = M.mmrb_scores([str(r.get("category")) for r in usable],
                        [p == r["label"] for p, r in zip(predictions, usable)],
                        [str(r.get("source_id") or r["id"]) for r in usable])
    out["guessed"] = guessed
    return out


def _genai_rm(rows, scorer: str) -> dict:
    """The reward-model forms video RM papers report (non-tie "diff", tie = 0.5, VideoAlign sweep)."""
    scored = [r for r in _pairs(rows) if r.get("vote_type")]
    return M.genai_bench_rm_scores([r["vote_type"] for r in scored], [r["margin"] for r in scored])


def _genai_judge(rows, scorer: str) -> dict | None:
    """GenAI-Bench's official 4-way judge accuracy (`inference.py` + `parse_response`), judges only.

    The protocol's verdict becomes the judge string (`GENAI_VERDICTS`); an unparsed record has no `[[...]]`
    and is wrong, as upstream. None for reward models: their number is `genai_rm`.
    """
    if scorer not in GENERATIVE:
        return None
    usable = [r for r in _usable(rows) if r.get("vote_type")]
    verdicts = [GENAI_VERDICTS.get(r.get("preferred")) for r in usable]
    return {"accuracy": M.genai_bench_judge_accuracy([r["vote_type"] for r in usable], verdicts),
            "items": len(usable), "no_verdict": sum(v is None for v in verdicts)}


def _mjbench(rows, scorer: str) -> dict:
    scored = [r for r in _pairs(rows) if r["label"] in ("A", "B") and not r.get("hard")]
    human, margin = [HUMAN[r["label"]] for r in scored], [r["margin"] for r in scored]
    return {"strict": M.mjbench_video_accuracy(human, margin, mode="strict"),
            "tie_aware": M.mjbench_video_accuracy(human, margin, mode="tie_aware"), "pairs": len(scored)}


def _pickapic(rows, scorer: str) -> dict:
    scored = _pairs(rows)
    labels, margins = [HUMAN[r["label"]] for r in scored], [r["margin"] for r in scored]
    # The official threshold is chosen on validation_unique; with test only, report no-tie prediction and
    # the best threshold on these rows (optimistic, labelled as such).
    best_t, best = M.pickapic_best_threshold(labels, margins)
    return {"tie_accuracy_threshold_0": M.pickapic_tie_accuracy(labels, margins, 0.0),
            "tie_accuracy_oracle_threshold": best, "oracle_threshold": best_t}


def _listwise(rows):
    scored = [r for r in rows if r.get("score") is not None]
    return scored, [r["group"] for r in scored], [r["score"] for r in scored]


def _imagereward(rows, scorer: str) -> dict:
    scored, groups, scores = _listwise(rows)
    ranks = [r["rank"] for r in scored]
    return {"micro": M.imagereward_pair_accuracy(groups, ranks, scores, average="micro"),
            "per_prompt": M.imagereward_pair_accuracy(groups, ranks, scores, average="per_prompt")}


def _hpd(rows, scorer: str) -> dict:
    scored, groups, scores = _listwise(rows)
    return {"inversion_score": M.hpd_inversion_score(groups, [r["rank"] for r in scored], scores)}


def _rb2(rows, scorer: str) -> dict:
    scored, groups, scores = _listwise(rows)
    return M.rb2_scores(groups, [str(r.get("category")) for r in scored], [bool(r["correct"]) for r in scored],
                        scores)


# The one registry: metric name (as benchmarks list them in `BenchmarkSpec.metrics`) -> fn(rows, scorer kind).
# A function returning None does not apply to the scorer (listed under "not_applicable").
METRICS: dict[str, Callable[[list[dict], str], dict | None]] = {
    "accuracy_without_ties": _accuracy_without_ties, "videogen": _videogen, "vlrb": _vlrb, "mmrlhf": _mmrlhf, "mmrb": _mmrb, "genai_rm": _genai_rm,
    "genai_judge": _genai_judge, "mjbench_video": _mjbench, "pickapic": _pickapic,
    "imagereward": _imagereward, "hpd_inversion": _hpd, "rb2": _rb2,
}


def clean(value):
    """NaN and ±inf become None (JSON null), recursively: "no data" must not look like a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _undefined(value, prefix: str = "") -> list[str]:
    """Names of the values that have no data (NaN / inf), for the notes."""
    if isinstance(value, float) and not math.isfinite(value):
        return [prefix]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _undefined(v, f"{prefix}.{k}" if prefix else str(k))]
    return []


def compute_metrics(names, kind: str, rows: list[dict], scorer: str = "head") -> dict:
    """Every metric the benchmark names, from the per-sample rows.

    Args:
        names: metric names from the benchmark's registry entry (keys of `METRICS`).
        kind: "pairs" or "listwise".
        rows: per-sample rows, in benchmark order.
        scorer: the scorer kind ("head", "clip", "yes_token", "judge"): judges get the judge forms.

    Returns:
        {metric name: dict of values} with NaN written as None, plus "scored", "unparsed" and "failed"
        counts, "not_applicable" (metrics that do not apply to this scorer) and "notes" (values without data
        and why).
    """
    out: dict = {}
    skipped, notes = [], []
    for name in names:
        if name not in METRICS:
            raise KeyError(f"no metric {name!r}; known: {', '.join(METRICS)}")
        value = METRICS[name](rows, scorer)
        if value is None:
            skipped.append(name)
            continue
        notes += [f"{n}: no rows in its denominator" for n in _undefined(value, name)]
        out[name] = clean(value)
    out["failed"] = sum(1 for r in rows if failed(r))
    if kind == "pairs":
        out["scored"] = len(_pairs(rows))
        out["unparsed"] = sum(1 for r in rows if r.get("failure") == "unparsed")
    if skipped:
        out["not_applicable"] = {n: f"a {scorer} scorer has no judge verdicts" for n in skipped}
    if notes:
        out["notes"] = notes
    return out
