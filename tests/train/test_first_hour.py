"""First-hour messages of training: missing media name the record and the data_on_error hint, `data validate
--check-media` finds missing files, `train bt` says its held-out accuracy."""

import json

from testkit import make_pair

from mmreward.cli import main


def _pairs(tmp_path, scoring_media, missing=True):
    rows = [make_pair("ok0", f"{scoring_media}/i0.png", f"{scoring_media}/i1.png", label="A"),
            make_pair("ok1", f"{scoring_media}/i1.png", f"{scoring_media}/i2.png", label="B"),
            make_pair("ok2", f"{scoring_media}/i2.png", f"{scoring_media}/i0.png", label="A")]
    if missing:
        rows.insert(1, make_pair("gone", f"{scoring_media}/v0.mp4", "videos/nowhere.mp4"))
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train_args(tiny_checkpoint, data, out, *extra):
    return ["train", "bt", "--model", str(tiny_checkpoint("qwen2_5_vl")), "--train_data", str(data),
            "--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", "2", "--use_cpu", "true",
            "--save_strategy", "no", "--disable_tqdm", "true", *extra]


def test_missing_video_in_train_bt_is_one_message_with_the_hint(tiny_checkpoint, scoring_media, tmp_path, capsys):
    data = _pairs(tmp_path, scoring_media)
    tiny_checkpoint("qwen2_5_vl")
    capsys.readouterr()  # building the session's tiny checkpoint may have written progress; only the command counts
    assert main(_train_args(tiny_checkpoint, data, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err == (f"mmreward train bt: error: {data}: record gone: media file {tmp_path}/videos/nowhere.mp4 "
                   "does not exist; fix the path, or pass --data_on_error skip to train without such records\n")
    assert "Traceback" not in err


def test_data_on_error_skip_trains_without_the_record_and_logs_held_out_accuracy(tiny_checkpoint, scoring_media,
                                                                                 tmp_path, capsys):
    data = _pairs(tmp_path, scoring_media)
    code = main(_train_args(tiny_checkpoint, data, tmp_path / "o", "--data_on_error", "skip", "--eval_data", str(data)))
    assert code == 0
    out = capsys.readouterr()
    log = out.out + out.err  # the CLI logs to stdout
    assert "record gone: media file" in log and "1 of 4 records skipped for missing media" in log
    metrics = json.loads((tmp_path / "o" / "eval_results.json").read_text())
    line = next(x for x in log.splitlines() if x.startswith("held-out pairwise accuracy"))
    assert line.startswith(f"held-out pairwise accuracy on 3 records: accuracy {metrics['eval_accuracy']:.3f}, "
                           f"accuracy_overall {metrics['eval_accuracy_overall']:.3f}")


def test_data_validate_check_media(tmp_path, scoring_media, capsys):
    data = _pairs(tmp_path, scoring_media)
    assert main(["data", "validate", str(data)]) == 0  # the schema alone is fine
    assert main(["data", "validate", str(data), "--check-media"]) == 1
    out = capsys.readouterr()
    assert f"record gone: media file {tmp_path}/videos/nowhere.mp4 does not exist" in out.out + out.err
    assert main(["data", "validate", str(data), "--check-media", "--on-error", "skip"]) == 0
    out = capsys.readouterr()
    assert "3 valid records" in out.out + out.err
    clean = _pairs(tmp_path, scoring_media, missing=False)
    assert main(["data", "validate", str(clean), "--check-media"]) == 0


def test_judge_from_vlm_loads_a_trained_judge_dir_like_load_scorer(tiny_checkpoint, tmp_path):
    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.scoring import load_scorer

    JudgeScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), max_turns=3).save_pretrained(tmp_path / "judge")
    judge = JudgeScorer.from_vlm(tmp_path / "judge", memory_window=2)
    reference = load_scorer(tmp_path / "judge")
    assert isinstance(judge, JudgeScorer) and isinstance(reference, JudgeScorer)
    assert (judge.config.max_turns, judge.config.memory_window) == (3, 2)  # saved setting kept, override applied
    assert judge.config.backbone == reference.config.backbone == str(tiny_checkpoint("qwen2_5_vl"))


def test_tiny_configs_build_their_model_on_first_use(tmp_path):
    from mmreward.config import load_config
    from mmreward.train.args import ensure_tiny_model
    from mmreward.train.bt import BTConfig

    cfg = load_config(BTConfig, "launch/configs/tiny_cpu/bt.yaml", ["--model", str(tmp_path / "tiny")])
    assert cfg.tiny_family == "qwen2_5_vl" and not (tmp_path / "tiny").exists()
    ensure_tiny_model(cfg)
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    stamp = (tmp_path / "tiny" / "config.json").stat().st_mtime_ns
    ensure_tiny_model(cfg)  # already there: left alone
    assert (tmp_path / "tiny" / "config.json").stat().st_mtime_ns == stamp


def test_a_corrupt_video_during_training_names_the_record(tiny_checkpoint, scoring_media, tmp_path, capsys):
    rows = [make_pair("fine", f"{scoring_media}/i0.png", f"{scoring_media}/i1.png"),
            make_pair("broken", f"{scoring_media}/corrupt.mp4", f"{scoring_media}/v1.mp4")]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny_checkpoint("qwen2_5_vl")
    capsys.readouterr()
    assert main(_train_args(tiny_checkpoint, data, tmp_path / "o")) == 2
    err = capsys.readouterr().err  # the log (stderr) first, then the error as the last line
    last = err.strip().splitlines()[-1]
    assert last.startswith("mmreward train bt: error: record broken: ") and "corrupt.mp4" in last
    assert "fix or remove this record" in last and "Traceback" not in err
