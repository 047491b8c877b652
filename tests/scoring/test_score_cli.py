"""`mmreward score` as a user and a failing machine see it: stdout, the errors file, exit codes, kill -9 and resume."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mmreward.cli import main
from mmreward.models.reward_model import RewardModel


@pytest.fixture(scope="module")
def rm_dir(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("score_cli") / "rm"
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(out)
    return out


def _row(i):
    # Text-only pointwise records score fast and need no media decoding.
    return {"id": f"r{i}", "prompt": f"question {i}", "response": "answer " * (i % 5 + 1)}


def _write(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def _records(path, n):
    return _write(path, [json.dumps(_row(i)) for i in range(n)])


def _read(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _score(rm_dir, src, *extra):
    return ["score", "--model", str(rm_dir), "--input", str(src), "--no-progress", "--batch-size", "4", *extra]


def test_stdout_carries_only_jsonl_while_logging_at_debug(rm_dir, tmp_path, capsys):
    src = _records(tmp_path / "recs.jsonl", 6)
    assert main(["-v", *_score(rm_dir, src)[:-3]]) == 0  # -v (DEBUG) and the progress bar on
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]  # every stdout line is a JSON object
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(6)]
    assert "scored 6 record(s) into stdout" in captured.err


def test_every_record_not_scored_is_in_one_errors_file_and_exits_3(rm_dir, tmp_path, capsys):
    bad_label = json.dumps({"id": "r1", "prompt": "p", "a": {"text": "x"}, "b": {"text": "y"}, "label": "C"})
    lines = [json.dumps(_row(0)), bad_label,
             json.dumps(_row(2)).encode()[:-1] + b', "meta": {"k": "\xff"}}',  # invalid UTF-8
             json.dumps({**_row(3), "id": "r3\ud800"}),  # a lone surrogate: used to crash the writer
             json.dumps({**_row(4), "media": [{"type": "image", "path": "missing.png"}]}),  # fails while scoring
             json.dumps(_row(5)), json.dumps(_row(0))]  # a repeated id, refused with --on-duplicate-id error
    src = _write(tmp_path / "recs.jsonl", lines)
    out = tmp_path / "scores.jsonl"
    args = _score(rm_dir, src, "--output", str(out), "--on-error", "skip", "--on-duplicate-id", "error")
    assert main(args) == 3
    assert [r["id"] for r in _read(out)] == ["r0", "r5"]
    errors = _read(tmp_path / "scores.errors.jsonl")
    assert [(e["id"], e["where"], e["stage"]) for e in errors] == [
        ("r1", f"{src}:2", "read"), ("r2", f"{src}:3", "read"), ("r3\ud800", f"{src}:4", "read"),
        ("r0", f"{src}:7", "read"), ("r4", f"{src}:5", "score")]
    assert errors[0]["error"] == 'label must be "A", "B" or "tie", got "C"'
    assert errors[1]["error"].startswith("invalid UTF-8 (byte 0xff")
    assert errors[2]["error"] == "id must be valid Unicode text, got a lone surrogate U+D800 at character 2"
    assert errors[3]["error"].startswith('id "r0" is already used on line 1')
    assert "missing.png" in errors[4]["error"]
    log = capsys.readouterr().err  # the CLI configures logging itself, onto stderr
    assert "scored 2 of 7 record(s) into" in log
    assert "5 not scored (4 rejected while reading, 1 failed while scoring)" in log


def test_read_errors_alone_exit_3_and_stdout_runs_do_not_clobber_validate_errors(rm_dir, tmp_path):
    src = _write(tmp_path / "recs.jsonl", [json.dumps(_row(0)), '{"id": "broken",'])
    validate_errors = tmp_path / "recs.errors.jsonl"  # what `data validate --on-error skip` writes
    validate_errors.write_text('{"line": 2, "error": "from validate"}\n')
    assert main(_score(rm_dir, src, "--on-error", "skip")) == 3
    assert validate_errors.read_text() == '{"line": 2, "error": "from validate"}\n'
    [error] = _read(tmp_path / "recs.score-errors.jsonl")
    assert (error["id"], error["where"], error["stage"]) == ("broken", f"{src}:2", "read")
    assert main(_score(rm_dir, src)) == 1  # --on-error raise: the bad line stops the run


def test_resume_redoes_a_truncated_last_line_and_skips_the_rest(rm_dir, tmp_path):
    src = _records(tmp_path / "recs.jsonl", 12)
    ref, out = tmp_path / "ref.jsonl", tmp_path / "scores.jsonl"
    assert main(_score(rm_dir, src, "--output", str(ref))) == 0
    text = ref.read_text()
    cut = text.index("\n", len(text) // 2) + 20  # half the records, then 20 bytes of the next line
    out.write_text(text[:cut])
    assert main(_score(rm_dir, src, "--output", str(out), "--resume")) == 0
    assert [r["id"] for r in _read(out)] == [f"r{i}" for i in range(12)]
    _same_scores(_read(out), _read(ref))
    assert main(_score(rm_dir, src, "--output", str(out), "--resume")) == 0  # nothing left: unchanged
    assert len(_read(out)) == 12


def _same_scores(got, want):
    # Resumed records are batched with different neighbours; padding changes the float sums by ~1e-7.
    assert [g["id"] for g in got] == [w["id"] for w in want]
    for g, w in zip(got, want):
        assert g["score"] == pytest.approx(w["score"], rel=1e-5, abs=1e-6)


def test_a_full_disk_stops_with_a_clear_message_and_resume_finishes(rm_dir, tmp_path, monkeypatch, capsys):
    src = _records(tmp_path / "recs.jsonl", 10)
    out = tmp_path / "scores.jsonl"
    calls, real = [], os.write

    def fill_up(fd, data):
        calls.append(len(data))
        if len(calls) == 2:  # the second batch half-written, then the disk is full
            real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr("mmreward.scoring_io._write_fd", fill_up)
    assert main(_score(rm_dir, src, "--output", str(out))) == 1
    assert f"{out}: write failed (No space left on device)" in capsys.readouterr().err
    kept = _read(out)  # every line parses: the half-written batch was cut off
    assert 0 < len(kept) < 10 and [r["id"] for r in kept] == [f"r{i}" for i in range(len(kept))]
    monkeypatch.undo()
    assert main(_score(rm_dir, src, "--output", str(out), "--resume")) == 0
    assert [r["id"] for r in _read(out)] == [f"r{i}" for i in range(10)]


def test_dev_full_output_and_bad_flag_combinations(rm_dir, tmp_path, capsys):
    src = _records(tmp_path / "recs.jsonl", 3)
    if os.path.exists("/dev/full"):
        assert main(_score(rm_dir, src, "--output", "/dev/full")) == 1
        assert "/dev/full: write failed (No space left on device)" in capsys.readouterr().err
    assert main(_score(rm_dir, src, "--resume")) == 2  # nothing to resume into
    assert main(_score(rm_dir, src, "--output", str(tmp_path / "s.csv"), "--resume")) == 2
    assert main(_score(rm_dir, src, "--output", str(src))) == 2  # would overwrite the input
    assert _read(src)[0]["id"] == "r0"


def _lines_in(path):
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_half_way_then_resume_scores_every_record_exactly_once(rm_dir, tmp_path):
    n = 200
    src = _records(tmp_path / "recs.jsonl", n)
    out, ref = tmp_path / "scores.jsonl", tmp_path / "ref.jsonl"
    # The child writes at most one batch per 50 ms, so a busy machine cannot let it finish between our check
    # and the kill (the kill then lands half-way whatever the load).
    child = ("import sys, time; from mmreward import scoring_io; from mmreward.cli import main\n"
             "write = scoring_io.ResultFile.write\n"
             "def slow(self, lines): write(self, lines); time.sleep(0.05)\n"
             "scoring_io.ResultFile.write = slow\n"
             "sys.exit(main(sys.argv[1:]))")
    cmd = [sys.executable, "-c", child, *_score(rm_dir, src, "--output", str(out))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    give_up = time.monotonic() + 600  # a safety net for a hung child, not a timing assertion
    while proc.poll() is None and _lines_in(out) < n // 2 and time.monotonic() < give_up:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGSTOP)  # freeze it first: the count we check is the count it dies with
    running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert running, f"the run ended (exit {proc.returncode}) before it could be killed"
    partial = _lines_in(out)
    assert n // 2 <= partial < n
    assert main(_score(rm_dir, src, "--output", str(out), "--resume")) == 0
    final = _read(out)
    assert sorted(r["id"] for r in final) == sorted(f"r{i}" for i in range(n))  # each exactly once
    assert main(_score(rm_dir, src, "--output", str(ref))) == 0  # the same run, never interrupted
    _same_scores(final, _read(ref))
