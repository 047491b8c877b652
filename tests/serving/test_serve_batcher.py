"""The dynamic batcher: requests merge into one engine batch, units dedupe across requests, bugs fail one batch."""

import pytest
import torch

from mmreward.data.collate import build_unit
from mmreward.data.schema import parse_record
from mmreward.scoring import Plan
from mmreward.serving.batcher import Batcher
from mmreward.serving.inputs import RequestError


class FakeScorer:
    """Pointwise records score len(response); `fail_next` makes the next forward pass raise a bug."""

    kind, dimensions = "head", ["overall"]

    def __init__(self):
        self.forward_calls, self.encoded, self.fail_next = [], [], False

    def plan(self, record):
        return Plan([build_unit(record.id, user_text=record.prompt, media=[], response=record.response)],
                    "pointwise")

    def encoder(self):
        def encode(unit):
            self.encoded.append(unit.key)
            return {"value": float(len(unit.messages[-1]["content"]))}
        return encode

    def forward_batch(self, encodings):
        self.forward_calls.append(len(encodings))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("boom")
        return torch.tensor([[e["value"]] for e in encodings])


def _records(*responses):
    return [parse_record({"id": f"r{i}", "prompt": "p", "response": r}) for i, r in enumerate(responses)]


def test_queued_requests_merge_into_one_engine_batch_and_dedupe_units():
    scorer = FakeScorer()
    batcher = Batcher(scorer, max_batch_size=64, max_wait_ms=0)
    futures = [batcher.submit(_records("a" * n, "same")) for n in (1, 2, 3)]  # queued before the engine starts
    batcher.start()
    try:
        results = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert [[r.score for r in rs] for rs in results] == [[1.0, 4.0], [2.0, 4.0], [3.0, 4.0]]
    assert scorer.forward_calls == [4]  # 6 records, 4 unique units, one forward pass
    assert len(scorer.encoded) == 4
    assert batcher.metrics.batch.total == 1 and batcher.metrics.batch.sum == 6
    assert batcher.metrics.queue_records == 0


def test_a_bug_fails_its_batch_and_the_engine_goes_on():
    scorer = FakeScorer()
    batcher = Batcher(scorer, max_batch_size=8, max_wait_ms=0).start()
    try:
        scorer.fail_next = True
        with pytest.raises(RuntimeError, match="boom"):
            batcher.submit(_records("xx")).result(timeout=60)
        assert [r.score for r in batcher.submit(_records("xyz")).result(timeout=60)] == [3.0]
    finally:
        batcher.close()


def test_close_scores_everything_queued_then_refuses_new_work():
    scorer = FakeScorer()
    batcher = Batcher(scorer, max_batch_size=1, max_wait_ms=0)
    futures = [batcher.submit(_records("a" * n)) for n in range(1, 5)]
    batcher.start()
    batcher.close()
    assert [f.result(timeout=0)[0].score for f in futures] == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(RequestError) as info:
        batcher.submit(_records("late"))
    assert info.value.status == 503


def test_a_full_queue_is_429():
    batcher = Batcher(FakeScorer(), max_queue_records=3)  # not started: nothing leaves the queue
    batcher.submit(_records("a", "b"))
    with pytest.raises(RequestError) as info:
        batcher.submit(_records("c", "d"))
    assert info.value.status == 429 and "2 records are already waiting" in str(info.value)
