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


def test_eval_unknown_benchmark_is_a_clear_error(head_ckpt, tmp_path, capsys):
    # A user mistake: one line and exit 2 (EvalConfig checks the name before any model is loaded).
    assert main(["eval", "--benchmark", "nope", "--data", str(tmp_path), "--model", str(head_ckpt)]) == 2
    assert "mmreward eval: error: flags: unknown benchmark 'nope'; known: " in capsys.readouterr().err


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
                 "--limit", "1", "--order", "both"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    # A random-weight judge writes no valid verdicts: the item is reported unparsed, not silently scored.
    assert results["scorer"] == "judge" and results["metrics"]["unparsed"] == 1
    assert results["protocol_summary"]["parse_failures"] == 2  # 1 item x 2 orders
    assert results["failures"]["unparsed"]["count"] == 1 and results["failures"]["media"]["count"] == 0
    assert "parse failure" in results["failures"]["unparsed"]["examples"][0]["reason"]


def test_a_video_that_fails_to_decode_is_reported_not_dropped(videogen_fixture, head_ckpt, scoring_media,
                                                              tmp_path):
    # Row 3's A video is corrupt: the pair leaves every denominator and is listed in results.json and .md.
    broken = tmp_path / "broken"
    shutil.copytree(videogen_fixture, broken)
    shutil.copy(scoring_media / "corrupt.mp4", broken / "videos" / "corrupt.mp4")
    lines = (broken / "videogen-rewardbench.csv").read_text().splitlines()
    lines[4] = lines[4].replace("videos/v0.mp4", "videos/corrupt.mp4", 1)
    (broken / "videogen-rewardbench.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ev"
    assert main(["eval", "--benchmark", "videogen_rewardbench", "--data", str(broken), "--model", str(head_ckpt),
                 "--out", str(out), "--no-progress", "--on-error", "skip"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["items"] == len(LABELS) and results["metrics"]["failed"] == 1
    assert results["metrics"]["scored"] == len(LABELS) - 1
    failure = results["failures"]["media"]
    assert failure["count"] == 1 and failure["examples"][0]["id"] == "3"
    assert "corrupt.mp4" in failure["examples"][0]["reason"]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["failure"] for s in samples].count("media") == 1 and samples[3]["margin"] is None
    decided = [s for s in samples if s["label"] != "tie" and s["failure"] is None]
    correct = sum((s["margin"] > 0) == (s["label"] == "A") and s["margin"] != 0 for s in decided)
    assert results["metrics"]["videogen"]["without_ties"]["Overall"] == pytest.approx(correct / len(decided))
    table = (out / "results.md").read_text()
    assert "- 1 media failures (left out of every denominator)" in table and "`3`:" in table


def test_scores_do_not_depend_on_batch_composition(tiny_checkpoint, scoring_media):
    import torch
    from testkit import make_pair

    from mmreward.data.schema import parse_record

    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()
    with torch.no_grad():  # margins far from zero: a padding or batching leak would show at this scale
        model.head.fc2.weight.mul_(2000.0)
        model.head.fc2.bias.fill_(50.0)
    rows = [make_pair("t0", {"text": "a red square"}, {"text": "a square moving to the right side, quickly"}),
            make_pair("t1", {"text": "x"}, {"text": "a much longer answer with many words in it"}),
            make_pair("i0", "i0.png", "i1.png"), make_pair("i1", "i2.png", "i0.png", label="B"),
            make_pair("v0", "v0.mp4", "v1.mp4"), make_pair("v1", "v2.mp4", "v0.mp4"),
            make_pair("bad", "corrupt.mp4", "v1.mp4"), make_pair("t2", {"text": "hello"}, {"text": "bye"})]
    records = [parse_record(r, base_dir=scoring_media) for r in rows]
    batch = {r.id: r for r in model.score(records, batch_size=8, on_error="skip", progress=False)}
    assert batch["bad"].error is not None  # a failed unit in the same batch
    good = [r for r in records if r.id != "bad"]
    without_failure = {r.id: r for r in model.score(good, batch_size=8, on_error="skip", progress=False)}
    scale = max(abs(v) for r in batch.values() if r.error is None for v in (r.score_a, r.score_b))
    margins = [abs(r.score_a - r.score_b) for r in batch.values() if r.error is None]
    assert scale > 10 and max(margins) > 1  # far from the tiny model's near-zero margins
    for record in good:
        alone = model.score([record], batch_size=1, on_error="skip", progress=False)[0]
        for other in (batch[record.id], without_failure[record.id]):
            assert other.score_a == pytest.approx(alone.score_a, abs=1e-4 * scale), record.id
            assert other.score_b == pytest.approx(alone.score_b, abs=1e-4 * scale), record.id


def test_every_suite_yaml_loads_and_records_its_protocol():
    from pathlib import Path

    from mmreward.evaluation.benchmarks import BENCHMARKS
    from mmreward.evaluation.runner import EvalConfig, load_suite

    suites = sorted((Path(__file__).parents[2] / "eval" / "suites").glob("*.yaml"))
    assert {load_suite(p)["benchmark"] for p in suites} == set(BENCHMARKS)
    for path in suites:
        values = load_suite(path)
        cfg = EvalConfig(**{**values, "data": "D", "model": "M"})
        assert {"order", "k", "unparsed"} <= set(values), path.name
        assert cfg.k >= 1 and cfg.order in ("given", "both", "random") and cfg.unparsed in ("exclude", "vote")
    assert load_suite(Path(__file__).parents[2] / "eval" / "suites" / "vl_rewardbench.yaml")["unparsed"] == "vote"


def test_bad_suites_and_protocols_are_clear_errors(tmp_path, head_ckpt, videogen_fixture, capsys):
    from mmreward.errors import ConfigError, DataError
    from mmreward.evaluation.runner import load_suite

    bad = tmp_path / "bad.yaml"
    bad.write_text("benchmark: vl_rewardbench\nk: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: k must be a positive integer, got 0"):
        load_suite(bad)
    bad.write_text("benchmark: vl_rewardbench\nunparse: vote\n")
    with pytest.raises(ConfigError, match="unknown key.*unparse; valid: "):
        load_suite(bad)
    bad.write_text("benchmark: nope\n")
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        load_suite(bad)
    # Empty input: a clear message, not NaN metrics.
    args = ["eval", "--benchmark", "videogen_rewardbench", "--data", str(videogen_fixture), "--model",
            str(head_ckpt), "--out", str(tmp_path / "o"), "--no-progress", "--limit", "0"]
    assert main(args) == 2  # the CLI prints an MMRewardError as one line
    assert "videogen_rewardbench: nothing to evaluate in" in capsys.readouterr().err
    from mmreward.evaluation.runner import EvalConfig, run_eval

    with pytest.raises(DataError, match=r"nothing to evaluate .*\(--limit 0\); no metric is defined on zero"):
        run_eval(EvalConfig(benchmark="videogen_rewardbench", data=str(videogen_fixture), model=str(head_ckpt),
                            limit=0, progress=False))
    assert not (tmp_path / "o").exists()


def test_empty_denominators_are_null_with_a_note_not_nan():
    from mmreward.evaluation.metrics.glue import compute_metrics

    rows = [{"id": "RLAIF-V-1", "label": "A", "margin": None, "preferred": None, "failure": "media"},
            {"id": "mathverse_2", "label": "A", "margin": None, "preferred": None, "failure": "unparsed"}]
    metrics = compute_metrics(("vlrb",), "pairs", rows, "judge")
    assert metrics["vlrb"]["overall"] is None and metrics["vlrb"]["reasoning"] is None
    assert "vlrb.overall: no rows in its denominator" in metrics["notes"]
    assert (metrics["failed"], metrics["unparsed"], metrics["scored"]) == (1, 1, 0)
    json.dumps(metrics, allow_nan=False)  # valid JSON: no NaN anywhere
