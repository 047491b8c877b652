"""Streaming results out of the engine, the per-record catch (data errors only), and the files `score` writes."""

import errno
import json
import os

import pytest

from mmreward.data.media import MediaError
from mmreward.data.schema import parse_record
from mmreward.errors import DataError
from mmreward.models.reward_model import RewardModel
from mmreward.scoring import ScoreResult, score_records, stream_scores
from mmreward.scoring_io import OutputError, ResultFile, ScoreRun, result_line, scored_ids


@pytest.fixture(scope="module")
def text_model(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()


def _texts(n, repeat=None):
    # Text-only pointwise records: no media decoding, so these tests stay fast and independent of media.py.
    rows = [{"id": f"r{i}", "prompt": f"question {i}", "response": "answer " * (i % 5 + 1)} for i in range(n)]
    if repeat is not None:
        rows.append({**rows[repeat], "id": "again"})  # same unit as rows[repeat]: encoded and scored once
    return [parse_record(r) for r in rows]


class Wrapped:
    """An encoder that raises `error` for one record's units and encodes the rest normally."""

    def __init__(self, inner, record_id, error):
        self.inner, self.record_id, self.error = inner, record_id, error

    def __call__(self, unit):
        if unit.record_id == self.record_id:
            raise self.error
        return self.inner(unit)


def test_on_results_streams_every_record_once_in_input_order(text_model):
    records = _texts(9, repeat=2)
    calls = []
    results = score_records(text_model, records, batch_size=2, progress=False, on_results=calls.append)
    streamed = [r for call in calls for r in call]
    assert [r.id for r in streamed] == [r.id for r in records] == [r.id for r in results]
    assert streamed == results
    # Handed out batch by batch while scoring, not once at the end: 9 units in batches of 2 give >= 4 calls.
    assert len(calls) >= 4
    assert results[-1].score == results[2].score  # the repeated unit's score is shared


def test_an_encoder_bug_propagates_and_a_media_error_is_skipped(text_model, monkeypatch):
    records = _texts(4)
    inner = text_model.encoder()
    monkeypatch.setattr(text_model, "encoder", lambda: Wrapped(inner, "r1", KeyError("pixel_values")))
    with pytest.raises(KeyError, match="pixel_values"):  # a bug is not a bad record, even with skip
        score_records(text_model, records, on_error="skip", progress=False)
    monkeypatch.setattr(text_model, "encoder", lambda: Wrapped(inner, "r1", MediaError("x.mp4: corrupt")))
    results = score_records(text_model, records, on_error="skip", progress=False)
    assert [r.error for r in results] == [None, "r1: x.mp4: corrupt", None, None]


def test_stream_scores_chunks_a_scorer_that_cannot_stream():
    class Judge:  # like JudgeScorer: explicit keywords, no on_results
        kind, dimensions = "judge", ["overall"]

        def __init__(self):
            self.calls = []

        def score(self, records, *, batch_size=4, progress=True, on_error="skip", num_workers=0):
            self.calls.append([r.id for r in records])
            return [ScoreResult(id=r.id, kind="pointwise", score=1.0) for r in records]

    judge, got = Judge(), []
    stream_scores(judge, _texts(5), got.append, batch_size=2, progress=False, on_error="skip")
    assert judge.calls == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert [[r.id for r in g] for g in got] == judge.calls

    class Silent:  # takes **kwargs but never calls back: everything arrives once, at the end
        kind, dimensions = "x", ["overall"]

        def score(self, records, **kwargs):
            return [ScoreResult(id=r.id, kind="pointwise", score=0.0) for r in records]

    got = []
    stream_scores(Silent(), _texts(3), got.append, progress=False)
    assert [[r.id for r in g] for g in got] == [["r0", "r1", "r2"]]


def _line(i):
    return result_line({"id": f"r{i}", "score": i / 10, "scores": {"overall": i / 10}})


def test_a_full_disk_leaves_only_complete_lines_and_names_the_file(tmp_path, monkeypatch):
    out = tmp_path / "scores.jsonl"
    sink = ResultFile(out)
    sink.write([_line(0), _line(1)])
    real = os.write

    def disk_full(fd, data):  # room for a few more bytes, then ENOSPC: a partial line reaches the disk first
        real(fd, data[:7])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mmreward.scoring_io._write_fd", disk_full)
    with pytest.raises(OutputError) as err:
        sink.write([_line(2), _line(3)])
    assert str(err.value).startswith(f"{out}: write failed (No space left on device); the 2 complete line(s) "
                                     "written before it are intact")
    assert "--resume" in str(err.value)
    sink.close()
    assert out.read_text() == _line(0) + _line(1)  # the partial batch was cut off again


def test_dev_full_is_a_clear_write_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    sink = ResultFile("/dev/full")
    with pytest.raises(OutputError, match=r"^/dev/full: write failed \(No space left on device\)"):
        sink.write([_line(0)])
    sink.close()


def test_an_unopenable_output_names_the_file(tmp_path):
    with pytest.raises(OutputError, match=f"^{tmp_path}: cannot open for writing"):
        ResultFile(tmp_path)


def test_scored_ids_cuts_a_truncated_last_line_and_counts_repeats(tmp_path):
    out = tmp_path / "scores.jsonl"
    out.write_text(_line(0) + _line(1) + _line(0) + _line(2)[:-9])  # killed while writing r2
    assert scored_ids(out) == {"r0": 2, "r1": 1}
    assert out.read_text() == _line(0) + _line(1) + _line(0)  # ready to append to
    assert scored_ids(tmp_path / "none.jsonl") == {}
    out.write_text(_line(0) + "not json\n" + _line(1))
    with pytest.raises(DataError, match=r"scores\.jsonl:2: not a line written by `mmreward score`"):
        scored_ids(out)


def test_results_that_cannot_be_written_are_reported_not_fatal(tmp_path):
    run = ScoreRun(ResultFile(tmp_path / "s.jsonl"), tmp_path / "s.errors.jsonl")
    run.locations = ["in.jsonl:1", "in.jsonl:2", "in.jsonl:3", "in.jsonl:4"]
    run.add_results([ScoreResult(id="ok", kind="pointwise", score=1.0),
                     ScoreResult(id="bad\udcff", kind="pointwise", score=2.0),  # a non-UTF-8 file name
                     ScoreResult(id="nan", kind="pointwise", score=float("nan")),
                     ScoreResult(id="failed", kind="pointwise", error="failed: x.mp4 corrupt")])
    run.close()
    assert [json.loads(x)["id"] for x in (tmp_path / "s.jsonl").read_text().splitlines()] == ["ok"]
    errors = [json.loads(x) for x in (tmp_path / "s.errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["where"], e["stage"]) for e in errors] == [
        ("bad\udcff", "in.jsonl:2", "write"), ("nan", "in.jsonl:3", "write"), ("failed", "in.jsonl:4", "score")]
    assert (run.n_scored, run.n_score_failed, run.n_read_failed) == (1, 3, 0)
