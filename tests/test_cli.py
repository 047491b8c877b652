"""The `mmreward` command end to end: score (JSONL, loose files, errors), data validate, demo."""

import json
import subprocess
import sys

from testkit import make_pair

from mmreward.cli import main
from mmreward.models.reward_model import RewardModel


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_jsonl_with_a_corrupt_video_and_skip(tiny_checkpoint, scoring_media, tmp_path):
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(tmp_path / "rm")
    rows = [make_pair("v", "v0.mp4", "v1.mp4"), make_pair("broken", "corrupt.mp4", "v2.mp4"),
            make_pair("i", "i0.png", "i1.png"),
            {"id": "pt", "prompt": "describe", "media": [{"type": "image", "path": "i2.png"}], "response": "x"}]
    src = _write_jsonl(scoring_media / "cli_records.jsonl", rows)
    out = tmp_path / "scores.jsonl"
    args = ["score", "--model", str(tmp_path / "rm"), "--input", str(src), "--output", str(out), "--no-progress"]
    assert main(args) == 1  # default: stop at the first bad record
    assert main(args + ["--on-error", "skip", "--batch-size", "2"]) == 3  # some failed
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["id"] for s in scored] == ["v", "i", "pt"]
    assert scored[0]["preferred"] in ("A", "B", "tie") and "score" in scored[2]
    errors = [json.loads(line) for line in (tmp_path / "scores.errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["broken"] and "corrupt.mp4" in errors[0]["error"]


def test_score_two_files_with_a_plain_vlm_prints_jsonl(tiny_checkpoint, scoring_media, capsys):
    code = main(["score", "--model", str(tiny_checkpoint("qwen2_vl")), "--prompt", "a square",
                 str(scoring_media / "v0.mp4"), str(scoring_media / "v1.mp4"), "--no-progress"])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 1 and lines[0]["id"] == "v0.mp4|v1.mp4"
    assert 0.0 <= lines[0]["score_a"] <= 1.0  # P(yes)


def test_score_argument_errors(tiny_checkpoint, tmp_path):
    assert main(["score", "--model", str(tiny_checkpoint("qwen2_vl"))]) == 2
    assert main(["score", "--model", str(tiny_checkpoint("qwen2_vl")), str(tmp_path)]) == 2


def test_data_validate_reports_the_bad_line(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "pairs.jsonl", [make_pair("ok", "a.png", "b.png"),
                                                  make_pair("bad", "a.png", "b.png", label="C")])
    assert main(["data", "validate", str(src)]) == 1
    assert 'pairs.jsonl:2: label must be "A", "B" or "tie", got "C"' in capsys.readouterr().err  # logs: stderr
    assert main(["data", "validate", str(src), "--on-error", "skip"]) == 0
    assert (tmp_path / "pairs.errors.jsonl").is_file()


def test_data_validate_refuses_a_directory_and_repeated_ids_on_request(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path)]) == 1
    assert f"{tmp_path}: is a directory, not a JSONL file" in capsys.readouterr().err
    src = _write_jsonl(tmp_path / "pairs.jsonl", [make_pair("p", "a.png", "b.png"), make_pair("q", "a.png", "b.png"),
                                                  make_pair("p", "b.png", "a.png")])
    assert main(["data", "validate", str(src)]) == 0  # a warning by default
    assert 'pairs.jsonl: 1 id(s) used on more than one line: "p" on lines 1, 3' in capsys.readouterr().err
    assert main(["data", "validate", str(src), "--on-duplicate-id", "error"]) == 1
    assert 'pairs.jsonl:3: id "p" is already used on line 1' in capsys.readouterr().err


def test_shortened_demo_trains_well_above_chance(tmp_path):
    from mmreward.demo import DemoSettings, run_demo

    report = run_demo(tmp_path, DemoSettings(n_images=100, n_videos=60, steps=80, batch_size=8, progress=False))
    assert report.test_pairs["image"] >= 10 and report.test_pairs["video"] >= 6
    # Trained on held-in pairs, measured on held-out pairs: clearly above chance for both kinds.
    assert report.accuracy_after["image"] >= 0.85 and report.accuracy_after["video"] >= 0.75
    assert (report.model / "mmreward_config.json").is_file() and (report.model / "head.safetensors").is_file()
    scores = [json.loads(x) for x in report.scores.read_text().splitlines()]
    assert len(scores) == 4 and all(s["preferred"] in ("A", "B", "tie") for s in scores)


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "mmreward.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout and "score" in out.stdout


def test_score_with_the_judge_reports_parse_failures(tiny_checkpoint, scoring_media, tmp_path):
    rows = [make_pair("v", "v0.mp4", "v1.mp4"), make_pair("i", "i0.png", "i1.png")]
    src = _write_jsonl(tmp_path / "pairs.jsonl", [{**r, "a": {"media": [{"type": m["type"], "path": str(
        scoring_media / m["path"])} for m in r["a"]["media"]]}, "b": {"media": [{"type": m["type"], "path": str(
            scoring_media / m["path"])} for m in r["b"]["media"]]}} for r in rows])
    out = tmp_path / "scores.jsonl"
    code = main(["score", "--model", str(tiny_checkpoint("qwen2_5_vl")), "--scorer", "judge", "--input", str(src),
                 "--output", str(out), "--on-error", "skip", "--no-progress"])
    assert code == 3
    errors = [json.loads(x) for x in (tmp_path / "scores.errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["v", "i"] and all("parse failure" in e["error"] for e in errors)
