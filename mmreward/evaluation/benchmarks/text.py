"""Loader for RewardBench 2 (text-only, list-wise), registered in `BENCHMARKS` as "rewardbench2".

    data = load_benchmark("rewardbench2", "/data/reward-bench-2")   # HF folder, parquet file or hub id

It shares the plumbing of the image loaders: `tables.py` (layout search, row conversion) and `common.py`
(options, size warnings, revision).
"""

from __future__ import annotations

from typing import Any

from mmreward.data.schema import PointwiseRecord
from mmreward.data.sources import BadRow, json_safe
from mmreward.evaluation.benchmarks.spec import BenchmarkData
from mmreward.evaluation.benchmarks.tables import Source, convert, finish, open_source, text_field


def load_rewardbench2(source: Any, options: dict) -> BenchmarkData:
    """RewardBench 2 (split `test`): one PointwiseRecord per completion, chosen ones first.

    `meta`: `group` (the prompt id), `index` (position in chosen + rejected), `correct` (True for the first
    `num_correct` completions, which is how `run_v2.py` splits them; `len(chosen)` when `num_correct` is
    missing), `category` (`subset`), `num_correct`, and `model` when `models` lines up with the completions.
    Ties ids are `ref:<pid>` / `tied:<pid>`. The paper has 1,865 prompts.
    """
    src = open_source("rewardbench2", source, options, split="test")
    records = convert(src, ("id", "prompt", "chosen", "rejected", "subset"),
                      lambda row, obj: _rb2_rows(src, obj))
    groups = len({r.meta["group"] for r in records})
    return finish(src, "listwise", records, {"prompts": (groups, 1865, "")})


def _rb2_rows(src: Source, obj: dict) -> list[PointwiseRecord]:
    chosen, rejected = obj["chosen"], obj["rejected"]
    if not isinstance(chosen, list) or not isinstance(rejected, list) or not chosen:
        raise BadRow("chosen and rejected must be lists of texts (chosen non-empty)")
    texts = chosen + rejected
    if not all(isinstance(t, str) for t in texts):
        raise BadRow("every completion must be text")
    n_correct = obj.get("num_correct")
    n_correct = n_correct if isinstance(n_correct, int) and not isinstance(n_correct, bool) else len(chosen)
    models = obj.get("models")
    models = models if isinstance(models, list) and len(models) == len(texts) else None
    group, prompt, subset = str(obj["id"]), text_field(obj, "prompt"), text_field(obj, "subset")
    records = []
    for k, text in enumerate(texts):
        meta = {"group": group, "index": k, "correct": k < n_correct, "category": subset,
                "num_correct": n_correct}
        if models is not None:
            meta["model"] = models[k]
        records.append(PointwiseRecord(id=f"{group}/{k}", prompt=prompt, response=text, meta=json_safe(meta)))
    return records
