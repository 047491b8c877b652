"""`torchrun … -m mmreward.cli score`: 2 CPU ranks write the same output as one process, in input order."""

import json
import os
import subprocess
import sys

import pytest

from mmreward.cli import main
from mmreward.models.reward_model import RewardModel
from mmreward.scoring_dist import merge_parts, part_path, shard_bounds


@pytest.fixture(scope="module")
def rm_dir(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("score_dist") / "rm"
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(out)
    return out


def test_shard_bounds_cover_every_record_once():
    for n, world in ((0, 2), (1, 2), (7, 2), (7, 3), (8, 4), (3, 8)):
        blocks = [shard_bounds(n, r, world) for r in range(world)]
        assert [i for s, e in blocks for i in range(s, e)] == list(range(n))


def _line(record_id, score):
    return (json.dumps({"id": record_id, "score": score, "scores": {}}) + "\n").encode()


def test_merge_puts_parts_and_an_earlier_output_in_input_order(tmp_path):
    out = tmp_path / "scores.jsonl"
    out.write_bytes(_line("a", 1))                                   # merged by an earlier, interrupted run
    part_path(out, 0, 2).write_bytes(_line("c", 3) + _line("b", 2) + b'{"id": "d", "sco')  # cut-off last line
    part_path(out, 1, 2).write_bytes(_line("e", 5) + _line("b", 6))  # "b" appears twice in the input
    assert merge_parts(out, ["a", "b", "c", "d", "b", "e"], 2, keep_existing=True) == 5
    assert [json.loads(x)["score"] for x in out.read_text().splitlines()] == [1, 2, 3, 6, 5]
    assert not part_path(out, 0, 2).exists() and not part_path(out, 1, 2).exists()


def test_two_cpu_ranks_match_one_process(rm_dir, scoring_media, tmp_path):
    rows = [{"id": f"r{i}", "prompt": f"q{i}", "response": "answer " * (i % 4 + 1)} for i in range(9)]
    rows.insert(4, {"id": "bad", "prompt": "p", "response": "x", "media": [{"type": "video", "path": "corrupt.mp4"}]})
    src = tmp_path / "recs.jsonl"
    for row in rows:
        for item in row.get("media", []):
            item["path"] = str(scoring_media / item["path"])
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    single, multi = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    flags = ["--model", str(rm_dir), "--input", str(src), "--on-error", "skip", "--batch-size", "2", "--no-progress"]
    assert main(["score", *flags, "--output", str(single)]) == 3
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "mmreward.cli", "score", *flags,
           "--output", str(multi)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    # Each rank exits 3 (some records not scored), which torchrun reports as a failed launch.
    assert proc.returncode != 0 and "exitcode  : 3" in proc.stderr, proc.stderr[-3000:]
    one = [json.loads(x) for x in single.read_text().splitlines()]
    two = [json.loads(x) for x in multi.read_text().splitlines()]
    assert [r["id"] for r in two] == [r["id"] for r in one] == [f"r{i}" for i in range(9)]
    assert [r["score"] for r in two] == pytest.approx([r["score"] for r in one], abs=1e-5)
    errors = [json.loads(x) for x in (tmp_path / "two.errors.jsonl").read_text().splitlines()]
    assert sorted(e["stage"] for e in errors) == ["read", "score"]  # the bad line once, the corrupt video once
    assert not list(tmp_path.glob("two.jsonl.part*")) and not list(tmp_path.glob("two.errors.rank*"))
