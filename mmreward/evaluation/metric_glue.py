"""From the runner's per-sample rows to each benchmark's official metrics (`metrics.py` holds the maths).

Rows are the dicts the runner writes to `samples.jsonl`: pairs carry `label` (A / B / tie), `margin`
(score_A − score_B, None when unparsed), per-dimension `scores` and human `dimensions`, `category`, `group`,
`paths`, `vote_type`, `hard`; list-wise rows carry `group`, `score`, `rank` or `correct`, `category`.
"""

from __future__ import annotations

from mmreward.evaluation import metrics as M

HUMAN = {"A": 1, "B": -1, "tie": 0}


def _pairs(rows):
    """Rows that were scored (margin present)."""
    return [r for r in rows if r.get("margin") is not None]


def _correct(row) -> bool | None:
    """Did the model prefer the human-preferred side? None when unparsed; a model tie is wrong."""
    if row.get("margin") is None:
        return None
    return (row["margin"] > 0 and row["label"] == "A") or (row["margin"] < 0 and row["label"] == "B")


def _per_dimension(rows) -> dict[str, tuple[list[int], list[float]]]:
    """(human, margin) per human-labelled dimension that the scorer also scores."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in _pairs(rows):
        for dim, label in (row.get("dimensions") or {}).items():
            side = (row.get("scores") or {}).get(dim)
            if isinstance(side, list) and label in HUMAN:
                human, margin = out.setdefault(dim, ([], []))
                human.append(HUMAN[label])
                margin.append(side[0] - side[1])
    return out


def _accuracy_without_ties(rows) -> dict:
    pairs = _pairs(rows)
    out = {"overall": M.accuracy_without_ties([HUMAN[r["label"]] for r in pairs], [r["margin"] for r in pairs])}
    for dim, (human, margin) in _per_dimension(rows).items():
        out[dim] = M.accuracy_without_ties(human, margin)
    return out


def _videoalign(rows) -> dict:
    pairs = _pairs(rows)
    human, margin = [HUMAN[r["label"]] for r in pairs], [r["margin"] for r in pairs]
    out = {"overall": M.videoalign_tie_accuracy(human, margin),
           "overall_exact": M.videoalign_tie_accuracy_exact(human, margin)}
    for dim, (h, m) in _per_dimension(rows).items():
        out[dim] = M.videoalign_tie_accuracy(h, m)
    return out


def _vlrb(rows) -> dict:
    ids, correct = [r["id"].split("/", 1)[-1] for r in rows], [_correct(r) for r in rows]
    out = M.vlrb_scores(ids, correct, grouping="official", exclude_unparsed=False)
    # Papers use other groupings; overall is comparable, per-category and macro are not (BENCHMARKS.md §0.1).
    for grouping in ("r1", "unifiedreward"):
        other = M.vlrb_scores(ids, correct, grouping=grouping, exclude_unparsed=False)
        out[f"macro_{grouping}_grouping"] = other["macro"]
    return out


def _mmrlhf(rows) -> dict:
    scored = _pairs(rows)
    paths = [" ".join(r.get("paths") or []) for r in scored]
    return M.mmrlhf_scores([str(r.get("group")) for r in scored], [bool(_correct(r)) for r in scored], paths)


def _mmrb(rows) -> dict:
    scored = _pairs(rows)
    return M.mmrb_scores([str(r.get("category")) for r in scored], [bool(_correct(r)) for r in scored],
                         [r["id"].split("/", 1)[-1] for r in scored])


def _genai(rows) -> dict:
    scored = [r for r in _pairs(rows) if r.get("vote_type")]
    return M.genai_bench_rm_scores([r["vote_type"] for r in scored], [r["margin"] for r in scored])


def _mjbench(rows) -> dict:
    scored = [r for r in _pairs(rows) if r["label"] in ("A", "B") and not r.get("hard")]
    human, margin = [HUMAN[r["label"]] for r in scored], [r["margin"] for r in scored]
    return {"strict": M.mjbench_video_accuracy(human, margin, mode="strict"),
            "tie_aware": M.mjbench_video_accuracy(human, margin, mode="tie_aware"), "pairs": len(scored)}


def _pickapic(rows) -> dict:
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


def _imagereward(rows) -> dict:
    scored, groups, scores = _listwise(rows)
    ranks = [r["rank"] for r in scored]
    return {"micro": M.imagereward_pair_accuracy(groups, ranks, scores, average="micro"),
            "per_prompt": M.imagereward_pair_accuracy(groups, ranks, scores, average="per_prompt")}


def _hpd(rows) -> dict:
    scored, groups, scores = _listwise(rows)
    return {"inversion_score": M.hpd_inversion_score(groups, [r["rank"] for r in scored], scores)}


def _rb2(rows) -> dict:
    scored, groups, scores = _listwise(rows)
    return M.rb2_scores(groups, [str(r.get("category")) for r in scored], [bool(r["correct"]) for r in scored],
                        scores)


GLUE = {
    "accuracy_without_ties": _accuracy_without_ties, "videoalign_tie_accuracy": _videoalign, "vlrb": _vlrb,
    "mmrlhf": _mmrlhf, "mmrb": _mmrb, "genai_judge": _genai, "mjbench_video": _mjbench, "pickapic": _pickapic,
    "imagereward": _imagereward, "hpd_inversion": _hpd, "rb2": _rb2,
}


def compute_metrics(names, kind: str, rows: list[dict]) -> dict:
    """Every metric the benchmark names, from the per-sample rows.

    Args:
        names: metric names from the benchmark's registry entry.
        kind: "pairs" or "listwise".
        rows: per-sample rows, in benchmark order.

    Returns:
        {metric name: value or dict of values}, plus "scored" / "unparsed" counts.
    """
    out: dict = {}
    for name in names:
        if name not in GLUE:
            raise KeyError(f"no runner glue for metric {name!r}; known: {', '.join(GLUE)}")
        out[name] = GLUE[name](rows)
    if kind == "pairs":
        out["scored"] = len(_pairs(rows))
        out["unparsed"] = len(rows) - out["scored"]
    return out
