"""The scoring engine: one unit per unique sequence, error handling, workers, loading scorers, output files."""

import csv
import json

import pytest
from testkit import make_pair

from mmreward.data.schema import parse_record
from mmreward.errors import CheckpointError
from mmreward.models.reward_model import RewardModel
from mmreward.models.yes_token import YesTokenScorer
from mmreward.scoring import Scorer, ScoringError, load_scorer, score_records
from mmreward.scoring_io import records_from_files, write_results


@pytest.fixture(scope="module")
def head_model(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dimensions=["VQ", "MQ"]).eval()


def _pairs(root, rows):
    return [parse_record(r, base_dir=root) for r in rows]


class CountingEncoder:
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __call__(self, unit):
        self.calls.append(unit.key)
        return self.inner(unit)


def test_each_unique_unit_is_encoded_once(head_model, scoring_media, monkeypatch):
    # Every video appears in several pairs with the same prompt: 6 pairs, 3 distinct (prompt, video) units.
    rows = [make_pair(f"p{i}", a, b) for i, (a, b) in enumerate(
        [("v0.mp4", "v1.mp4"), ("v1.mp4", "v2.mp4"), ("v0.mp4", "v2.mp4"),
         ("v1.mp4", "v0.mp4"), ("v2.mp4", "v1.mp4"), ("v2.mp4", "v0.mp4")])]
    counting = CountingEncoder(head_model.encoder())
    monkeypatch.setattr(head_model, "encoder", lambda: counting)
    results = score_records(head_model, _pairs(scoring_media, rows), batch_size=4, progress=False)
    assert len(counting.calls) == 3 and len(set(counting.calls)) == 3
    by_id = {r.id: r for r in results}
    # The same (prompt, video) unit gets the same score in every pair it appears in.
    assert by_id["p0"].score_a == by_id["p2"].score_a == by_id["p3"].score_b
    assert by_id["p0"].scores["VQ"][1] == by_id["p1"].scores["VQ"][0]
    assert by_id["p0"].score_a == pytest.approx(sum(v[0] for v in by_id["p0"].scores.values()))
    assert by_id["p3"].preferred == {1: "A", -1: "B", 0: "tie"}[
        (by_id["p3"].score_a > by_id["p3"].score_b) - (by_id["p3"].score_a < by_id["p3"].score_b)]


def test_bad_media_raises_naming_the_record_or_is_skipped(head_model, scoring_media):
    rows = [make_pair("good", "v0.mp4", "i0.png"), make_pair("bad", "corrupt.mp4", "v1.mp4"),
            make_pair("missing", "nope.mp4", "v1.mp4")]
    records = _pairs(scoring_media, rows)
    with pytest.raises(ScoringError, match=r"bad: .*corrupt\.mp4.*use --on-error skip"):
        score_records(head_model, records, progress=False)
    results = score_records(head_model, records, on_error="skip", progress=False)
    assert [r.id for r in results] == ["good", "bad", "missing"]
    assert results[0].error is None and results[0].preferred in ("A", "B", "tie")
    assert "corrupt.mp4" in results[1].error and results[1].score_a is None
    assert "nope.mp4" in results[2].error
    assert "error" in results[1].to_dict()


def test_worker_processes_give_the_same_scores(head_model, scoring_media):
    rows = [make_pair("a", "v0.mp4", "v1.mp4"), make_pair("b", "i0.png", "i1.png"),
            make_pair("c", {"text": "a cat"}, {"text": "a dog"}, shared="i2.png")]
    records = _pairs(scoring_media, rows)
    inline = score_records(head_model, records, progress=False)
    workers = score_records(head_model, records, num_workers=2, progress=False)
    for x, y in zip(inline, workers):
        assert x.score_a == pytest.approx(y.score_a, abs=1e-5) and x.score_b == pytest.approx(y.score_b, abs=1e-5)


def test_load_scorer_reads_the_kind_from_the_checkpoint(head_model, tiny_checkpoint, tmp_path):
    head_model.save_pretrained(tmp_path / "head")
    assert isinstance(load_scorer(tmp_path / "head"), RewardModel)
    plain = load_scorer(tiny_checkpoint("qwen2_vl"))
    assert isinstance(plain, YesTokenScorer) and plain.config.mode == "pointwise"
    assert load_scorer(tiny_checkpoint("qwen2_vl"), mode="pairwise").config.mode == "pairwise"
    for scorer in (head_model, plain):
        assert isinstance(scorer, Scorer)
    with pytest.raises(ValueError, match="is a 'head' checkpoint, cannot load it as 'yes_token'"):
        load_scorer(tmp_path / "head", kind="yes_token")
    with pytest.raises(CheckpointError, match="a transformers model, not a mmreward checkpoint"):
        load_scorer(tiny_checkpoint("qwen2_vl"), kind="head")


def test_records_from_files_and_output_formats(head_model, scoring_media, tmp_path):
    pair = records_from_files([scoring_media / "v0.mp4", scoring_media / "i1.png"], "a prompt")
    assert len(pair) == 1 and pair[0].a.media[0].type == "video" and pair[0].b.media[0].type == "image"
    folder = records_from_files([scoring_media], "a prompt")
    assert sorted(r.id.rsplit("/", 1)[-1] for r in folder) == ["corrupt.mp4", "i0.png", "i1.png", "i2.png",
                                                               "v0.mp4", "v1.mp4", "v2.mp4"]
    with pytest.raises(FileNotFoundError, match="nothing.mp4: no such file"):
        records_from_files([tmp_path / "nothing.mp4"], "x")
    results = head_model.score(pair + folder[1:3], progress=False)
    write_results(results, tmp_path / "s.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert set(lines[0]) == {"id", "score_a", "score_b", "preferred", "scores"}
    assert set(lines[1]) == {"id", "score", "scores"} and set(lines[1]["scores"]) == {"VQ", "MQ"}
    write_results(results, tmp_path / "s.csv")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert {"id", "score_a", "score_b", "preferred", "VQ_a", "VQ_b", "score", "VQ"} <= set(rows[0])
    assert float(rows[0]["VQ_a"]) == pytest.approx(lines[0]["scores"]["VQ"][0])


def test_encodings_cross_from_workers_as_numpy_and_come_back_as_the_same_tensors():
    import numpy as np
    import torch

    from mmreward.scoring_engine import from_numpy, to_numpy

    encoded = {"input_ids": torch.tensor([[3, 1, 4]]), "pixel_values": torch.rand(4, 6),
               "response_mask": torch.tensor([[False, True, True]]), "half": torch.ones(2, dtype=torch.bfloat16),
               "note": "kept"}
    host = to_numpy(encoded)
    assert isinstance(host["input_ids"], np.ndarray) and isinstance(host["pixel_values"], np.ndarray)
    assert isinstance(host["half"], torch.Tensor) and host["note"] == "kept"  # numpy has no bfloat16
    back = from_numpy(host)
    assert set(back) == set(encoded)
    for key in ("input_ids", "pixel_values", "response_mask", "half"):
        assert back[key].dtype == encoded[key].dtype and torch.equal(back[key], encoded[key])
    # Only what to_numpy made is turned back: an encoder's own numpy output is left alone.
    own = {"array": np.zeros(3)}
    assert from_numpy(own) is own and to_numpy(None) is None
