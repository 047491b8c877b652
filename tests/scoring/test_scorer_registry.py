"""A scorer kind is one registry entry: a toy kind in `SCORERS` reaches load_scorer, the CLI, the eval runner and
the BT trainer, with no other file changed."""

import json
import re

import pytest
import torch

import mmreward.scoring
from mmreward.cli import build_parser, main
from mmreward.data.collate import build_unit
from mmreward.data.schema import Candidate, PointwiseRecord, PreferencePair, write_jsonl
from mmreward.errors import CheckpointError, ConfigError
from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData, BenchmarkSpec
from mmreward.evaluation.metrics.glue import METRICS
from mmreward.scoring import SCORERS, EngineScorer, Plan, load_scorer, trainable_kinds


class LetterScorer:
    """A toy engine scorer: a response's reward is its number of letters ("ab c" -> 3.0)."""

    kind = "letters"
    dimensions = ["overall"]

    def __init__(self, source: str, **settings):
        self.source, self.settings = source, settings

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        return cls(f"checkpoint:{path}", **kwargs)

    @classmethod
    def from_source(cls, path_or_id, *, mode=None, **kwargs):
        return cls(f"source:{path_or_id}", mode=mode, **kwargs)

    @classmethod
    def from_bt_config(cls, cfg):
        return cls(f"bt:{cfg.model}", pooling=cfg.pooling)

    def plan(self, record):
        texts = [record.a.text, record.b.text] if isinstance(record, PreferencePair) else [record.response]
        units = [build_unit(record.id, user_text=t, media=[], extra_key="letters") for t in texts]
        return Plan(units, "pair" if len(units) == 2 else "pointwise")

    def encoder(self):
        return _count_letters

    def forward_batch(self, encodings):
        return torch.tensor([[float(n)] for n in encodings])

    def score(self, records, **kwargs):
        return mmreward.scoring.score_records(self, records, **kwargs)


def _count_letters(unit) -> int:
    return sum(ch.isalpha() for ch in unit.messages[-1]["content"][-1]["text"])


@pytest.fixture
def letters(monkeypatch):
    monkeypatch.setitem(SCORERS, "letters", LetterScorer)
    return LetterScorer


def _pair(i, a, b, label="A"):
    return PreferencePair(id=f"p{i}", prompt="say it", a=Candidate(text=a), b=Candidate(text=b), label=label)


def test_the_toy_honours_the_engine_contract():
    assert isinstance(LetterScorer("x"), EngineScorer)


def test_load_scorer_dispatches_on_the_registry(letters, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "mmreward_config.json").write_text(json.dumps({"scorer": "letters"}))
    loaded = load_scorer(ckpt, dtype="fp32")
    assert isinstance(loaded, LetterScorer) and loaded.source == f"checkpoint:{ckpt}"
    assert loaded.settings == {"dtype": "fp32"}
    plain = load_scorer("some/model", kind="letters", mode="pairwise")
    assert plain.source == "source:some/model" and plain.settings == {"mode": "pairwise"}
    with pytest.raises(ConfigError, match=r"cannot load it as 'head'; drop --scorer"):
        load_scorer(ckpt, kind="head")
    kinds = ", ".join(SCORERS)
    assert kinds.startswith("head, yes_token, clip, judge, ") and kinds.endswith(", letters")
    with pytest.raises(ConfigError, match=re.escape(f"kind 'nope' unknown; choose one of {kinds}") + "$"):
        load_scorer(ckpt, kind="nope")


def test_a_checkpoint_of_an_unregistered_kind_is_refused(tmp_path):
    (tmp_path / "mmreward_config.json").write_text(json.dumps({"scorer": "letters"}))
    assert "letters" not in SCORERS
    with pytest.raises(CheckpointError, match=re.escape(f"'scorer' must be one of {', '.join(SCORERS)}, got 'letters'")):
        load_scorer(tmp_path)


def test_every_cli_command_with_a_scorer_flag_offers_the_new_kind(letters):
    parser = build_parser()
    for argv in (["score", "--model", "m", "--scorer", "letters"], ["serve", "--model", "m", "--scorer", "letters"],
                 ["eval", "--scorer", "letters"]):
        assert parser.parse_args(argv).scorer == "letters"


def test_mmreward_score_scores_with_the_new_kind(letters, tmp_path, capsys):
    records = tmp_path / "in.jsonl"
    write_jsonl(records, [_pair(0, "abc", "a b"),
                          PointwiseRecord(id="q", prompt="say it", response="hello!")])
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--model", "M", "--scorer", "letters", "--input", str(records), "--output", str(out),
                 "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # "abc" has 3 letters, "a b" 2, "hello!" 5.
    assert rows == [{"id": "p0", "score_a": 3.0, "score_b": 2.0, "preferred": "A", "scores": {"overall": [3.0, 2.0]}},
                    {"id": "q", "score": 5.0, "scores": {"overall": 5.0}}]


def test_the_eval_runner_scores_a_benchmark_with_the_new_kind(letters, monkeypatch, tmp_path):
    pairs = [_pair(0, "long answer", "short", "A"), _pair(1, "tiny", "much longer", "A"),
             _pair(2, "xy", "xyz", "B")]

    def load_toy(source, options):
        return BenchmarkData(name="toy", kind="pairs", records=pairs)

    def hits(rows, scorer):
        return {"hits": sum(r["preferred"] == r["label"] for r in rows), "margins": [r["margin"] for r in rows],
                "scorer": scorer}

    monkeypatch.setitem(BENCHMARKS, "toy", BenchmarkSpec(loader=load_toy, description="toy", metrics=("hits",),
                                                         download="nowhere"))
    monkeypatch.setitem(METRICS, "hits", hits)
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "toy", "--data", "D", "--model", "M", "--scorer", "letters", "--out",
                 str(out), "--no-progress", "--no-report"]) == 0
    results = json.loads((out / "results.json").read_text())
    # Letters 10 vs 5 (A, right), 4 vs 10 (B, wrong), 2 vs 3 (B, right).
    assert results["scorer"] == "letters"
    assert results["metrics"]["hits"] == {"hits": 2, "margins": [5.0, -6.0, -1.0], "scorer": "letters"}


def test_the_bt_trainer_builds_any_kind_that_can_be_trained(letters, tmp_path):
    from mmreward.config import load_config
    from mmreward.train.bt import BTConfig
    from mmreward.train.bt_setup import build_scorer

    assert trainable_kinds()[:2] == ["head", "yes_token"] and trainable_kinds()[-1] == "letters"
    assert "clip" not in trainable_kinds() and "judge" not in trainable_kinds()
    flags = ["--model", "M", "--train_data", "t.jsonl", "--output_dir", str(tmp_path), "--pooling", "mean"]
    cfg = load_config(BTConfig, None, [*flags, "--scorer", "letters"])
    built = build_scorer(cfg)
    assert isinstance(built, LetterScorer) and built.source == "bt:M" and built.settings == {"pooling": "mean"}
    with pytest.raises(ConfigError, match=re.escape(f"scorer must be one of {', '.join(trainable_kinds())}, got 'clip'")):
        load_config(BTConfig, None, [*flags, "--scorer", "clip"])
