"""`mmreward eval` end to end on a fixture benchmark in its published layout, one process and two."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from mmreward.cli import main
from mmreward.models.reward_model import RewardModel

LABELS = ["A", "B", "same", "A", "B", "A", "same", "B"]


@pytest.fixture(scope="module")
def videogen_fixture(scoring_media, tmp_path_factory):
    """A VideoGen-RewardBench folder: the official CSV columns and videos/ (generated mp4s, reused by rows)."""
    root = tmp_path_factory.mktemp("videogen")
    (root / "videos").mkdir()
    for i in range(3):
        shutil.copy(scoring_media / f"v{i}.mp4", root / "videos" / f"v{i}.mp4")
    header = ["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall", "fps_A",
              "num_frames_A", "fps_B", "num_frames_B"]
    with open(root / "videogen-rewardbench.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, label in enumerate(LABELS):
            a, b = f"videos/v{i % 3}.mp4", f"videos/v{(i + 1) % 3}.mp4"
            writer.writerow([a, b, "m1", "m2", f"prompt {i % 2}", label, "A", "same", label, 10, 20, 10, 30])
    return root


@pytest.fixture(scope="module")
def head_ckpt(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dimensions=["VQ", "MQ", "TA"]).save_pretrained(out)
    return out


def test_eval_writes_results_samples_table_and_plots(videogen_fixture, head_ckpt, tmp_path):
    out = tmp_path / "ev"
    code = main(["eval", "--benchmark", "videogen_rewardbench", "--data", str(videogen_fixture), "--model",
                 str(head_ckpt), "--out", str(out), "--no-progress", "--order", "both",
                 "--probes", "position_consistency,fps_sensitivity"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["items"] == len(LABELS) and results["scorer"] == "head"
    assert results["protocol"]["order"] == "both" and results["revision"]
    assert results["sampling_contract"]["video"]["fps"] == 2.0
    acc = results["metrics"]["videogen"]["without_ties"]
    assert set(acc) == {"Overall", "VQ", "MQ", "TA"} and 0.0 <= acc["Overall"] <= 1.0
    # The tie-aware accuracy (VideoAlign) is reported next to the exact-maximum variant.
    assert set(results["metrics"]["videogen"]["with_ties"]) == set(results["metrics"]["videogen"]["with_ties_exact"])
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["label"] for s in samples] == [{"same": "tie"}.get(x, x) for x in LABELS]
    # Overall margin = sum of the dimension margins (VideoAlign's Overall = VQ + MQ + TA).
    first = samples[0]
    assert first["margin"] == pytest.approx(sum(a - b for a, b in first["scores"].values()), abs=1e-5)
    # Recomputed by hand from the samples: accuracy without ties.
    decided = [s for s in samples if s["label"] != "tie"]
    correct = sum((s["margin"] > 0) == (s["label"] == "A") and s["margin"] != 0 for s in decided)
    assert acc["Overall"] == pytest.approx(correct / len(decided))
    assert results["probes"]["position_consistency"]["consistency"] == 1.0  # scalar scorer: trivially
    assert set(results["probes"]["fps_sensitivity"]) >= {"flip_rate", "mean_spread"}
    table = (out / "results.md").read_text()
    assert "videogen.without_ties.Overall" in table and "protocol" in table and "## Failures" in table
    for png in ("scores_hist.png", "category_accuracy.png", "calibration.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_eval_unknown_benchmark_is_a_clear_error(head_ckpt, tmp_path):
    with pytest.raises(KeyError, match="unknown benchmark 'nope'; known: "):
        main(["eval", "--benchmark", "nope", "--data", str(tmp_path), "--model", str(head_ckpt)])


def test_two_process_torchrun_equals_one_process(videogen_fixture, head_ckpt, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--benchmark", "videogen_rewardbench", "--data", str(videogen_fixture), "--model", str(head_ckpt),
            "--no-progress"]
    assert main(["eval", *args, "--out", str(one)]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "mmreward.cli", "eval", *args, "--out", str(two)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    r1, r2 = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert r2["world_size"] == 2 and r2["items"] == r1["items"]
    assert r2["metrics"] == r1["metrics"]
    s1 = [json.loads(x)["margin"] for x in (one / "samples.jsonl").read_text().splitlines()]
    s2 = [json.loads(x)["margin"] for x in (two / "samples.jsonl").read_text().splitlines()]
    assert s2 == pytest.approx(s1, abs=1e-5)


def test_eval_with_the_judge_scorer_counts_parse_failures(videogen_fixture, tiny_checkpoint, tmp_path):
    out = tmp_path / "judge"
    code = main(["eval", "--benchmark", "videogen_rewardbench", "--data", str(videogen_fixture), "--model",
                 str(tiny_checkpoint("qwen2_5_vl")), "--scorer", "judge", "--out", str(out), "--no-progress",
                 "--limit", "2", "--order", "both"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    # A random-weight judge writes no valid verdicts: every item is reported unparsed, none silently scored.
    assert results["scorer"] == "judge" and results["metrics"]["unparsed"] == 2
    assert results["protocol_summary"]["parse_failures"] == 4  # 2 items x 2 orders
