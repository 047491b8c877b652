"""A benchmark is one registry entry: a toy entry reaches the CLI, the runner and the metrics; old paths import."""

import importlib
import json
from types import SimpleNamespace

import pytest

import mmreward.scoring
from mmreward.cli import main
from mmreward.data.schema import PointwiseRecord
from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData, BenchmarkSpec, load_benchmark
from mmreward.evaluation.metrics.glue import METRICS


class LengthScorer:
    """Scores a response by its length: "xx" -> 2.0."""

    kind = "head"

    def score(self, records, **kwargs):
        return [SimpleNamespace(score=float(len(r.response)), error=None) for r in records]


def test_a_toy_benchmark_registered_once_is_evaluated_by_the_cli(monkeypatch, tmp_path):
    # Gold scores 1, 2, 5 against response lengths 1, 2, 3: the toy metric counts 2 hits.
    records = [PointwiseRecord(id=f"g/{i}", prompt="p", response="x" * n,
                               meta={"group": "g", "gold": gold, "private": "not for the metric"})
               for i, (n, gold) in enumerate([(1, 1), (2, 2), (3, 5)])]
    seen = {}

    def load_toy(source, options):
        seen.update(source=source, options=options)
        return BenchmarkData(name="toy", kind="listwise", records=records)

    def toy_metric(rows, scorer):
        return {"hits": sum(r["gold"] == r["score"] for r in rows), "scorer": scorer}

    monkeypatch.setitem(BENCHMARKS, "toy", BenchmarkSpec(loader=load_toy, description="toy", metrics=("toy",),
                                                         download="nowhere", row_fields=("gold",)))
    monkeypatch.setitem(METRICS, "toy", toy_metric)
    monkeypatch.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: LengthScorer())
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "toy", "--data", "DATA", "--model", "m", "--out", str(out),
                 "--no-progress"]) == 0
    assert seen == {"source": "DATA", "options": {}}
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["toy"] == {"hits": 2, "scorer": "head"}
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(r["gold"], r["score"]) for r in rows] == [(1, 1.0), (2, 2.0), (5, 3.0)]
    assert all("private" not in r for r in rows)  # only the declared row fields are copied


def test_loader_errors_say_how_to_obtain_the_benchmark(monkeypatch, tmp_path):
    from mmreward.evaluation.benchmarks.spec import download_text

    def load_toy(source, options):
        raise FileNotFoundError(f"toy: {source} is missing. {download_text()}")

    monkeypatch.setitem(BENCHMARKS, "toy", BenchmarkSpec(loader=load_toy, description="toy", metrics=(),
                                                         download="git clone TOY DIR"))
    with pytest.raises(FileNotFoundError, match=r"toy: here is missing\. To obtain it: git clone TOY DIR$"):
        load_benchmark("toy", "here")
    assert download_text() == ""  # only while the registry is loading a benchmark


@pytest.mark.parametrize("old, new", [
    ("mmreward.evaluation.metric_glue", "mmreward.evaluation.metrics.glue"),
    ("mmreward.evaluation.benchmarks_image", "mmreward.evaluation.benchmarks.image"),
    ("mmreward.evaluation.benchmarks_video", "mmreward.evaluation.benchmarks.video"),
    ("mmreward.evaluation.benchmarks_text", "mmreward.evaluation.benchmarks.text"),
])
def test_old_module_paths_are_the_new_modules(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_names_keep_importing():
    from mmreward.evaluation.benchmarks import get_benchmark
    from mmreward.evaluation.metric_glue import METRICS as old_metrics
    from mmreward.evaluation.metrics import accuracy_without_ties, mmrb_bucket, rb2_scores

    assert old_metrics is METRICS and get_benchmark("vl_rewardbench") is BENCHMARKS["vl_rewardbench"]
    assert accuracy_without_ties([1, -1], [0.5, 0.5]) == 0.5
    assert mmrb_bucket("safety", "x") == "safety/toxicity" and callable(rb2_scores)
