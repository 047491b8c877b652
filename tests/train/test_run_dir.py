"""The run folder: another run's output_dir is refused, overwrite clears it, `latest` refuses another config."""

import json
from dataclasses import dataclass

import pytest
import yaml
from testkit import make_pair

from mmreward.config import ConfigError, load_config, to_yaml
from mmreward.train.run_dir import RUN_RECORD, RecordRun, config_differences, prepare_output_dir


@dataclass
class Cfg:
    output_dir: str
    learning_rate: float = 1e-3
    max_steps: int = 4
    logging_steps: int = 1
    overwrite_output_dir: bool = False
    resume_from_checkpoint: str | None = None


def _checkpoint(out, step, cfg, complete=True):
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / RUN_RECORD).write_text(to_yaml(cfg))
    if complete:
        (ckpt / "mmreward_complete").write_text(str(step))
    return ckpt


def test_fresh_and_data_only_folders_are_used_and_get_a_run_record(tmp_path):
    out = tmp_path / "run"
    (out / "data").mkdir(parents=True)  # a recipe built by an earlier run is a cache, not a run
    assert prepare_output_dir(Cfg(str(out))) is None
    assert yaml.safe_load((out / RUN_RECORD).read_text())["max_steps"] == 4


def test_a_folder_holding_another_run_is_refused_with_what_to_do(tmp_path):
    out = tmp_path / "run"
    _checkpoint(out, 20, Cfg(str(out), max_steps=20))
    with pytest.raises(ConfigError) as err:
        prepare_output_dir(Cfg(str(out)))
    assert str(err.value) == (f"output_dir {out} already holds a run (checkpoint-20); pass --overwrite_output_dir "
                              "true to replace it, --resume_from_checkpoint latest to continue it, or another "
                              "--output_dir")


def test_overwrite_removes_the_old_run_so_latest_cannot_pick_it_up(tmp_path):
    out = tmp_path / "run"
    _checkpoint(out, 20, Cfg(str(out), max_steps=20))
    (out / "mmreward_config.json").write_text("{}")
    assert prepare_output_dir(Cfg(str(out), overwrite_output_dir=True)) is None
    assert sorted(p.name for p in out.iterdir()) == [RUN_RECORD]


def test_latest_refuses_a_checkpoint_of_another_config_and_names_the_fields(tmp_path):
    out = tmp_path / "run"
    _checkpoint(out, 2, Cfg(str(out)))
    _checkpoint(out, 20, Cfg(str(out), max_steps=20, learning_rate=5e-3))
    _checkpoint(out, 30, Cfg(str(out)), complete=False)  # half-written: never chosen
    with pytest.raises(ConfigError) as err:
        prepare_output_dir(Cfg(str(out), resume_from_checkpoint="latest"))
    assert str(err.value).startswith(f"{out}/checkpoint-20 was written by a different config "
                                     "(learning_rate: 0.005 -> 0.001; max_steps: 20 -> 4); rerun with that config")


def test_latest_resumes_a_checkpoint_of_the_same_config_despite_logging_changes(tmp_path):
    out = tmp_path / "run"
    _checkpoint(out, 2, Cfg(str(out), max_steps=20))
    resumed = prepare_output_dir(Cfg(str(out), max_steps=20, logging_steps=5, resume_from_checkpoint="latest"))
    assert resumed == str(out / "checkpoint-2")


def test_an_explicit_checkpoint_is_resumed_under_another_config_with_a_warning(tmp_path, caplog):
    out = tmp_path / "run"
    ckpt = _checkpoint(out, 20, Cfg(str(out), max_steps=20))
    assert prepare_output_dir(Cfg(str(out), max_steps=40, resume_from_checkpoint=str(ckpt))) == str(ckpt)
    assert "max_steps: 20 -> 40" in caplog.text
    with pytest.raises(ConfigError, match="no such checkpoint folder"):
        prepare_output_dir(Cfg(str(out), resume_from_checkpoint=str(out / "checkpoint-7")))


def test_config_differences_ignore_where_and_how_the_run_logs():
    recorded = {"output_dir": "a", "logging_steps": 1, "save_steps": 3, "learning_rate": 0.1, "model": "m"}
    current = {"output_dir": "b", "logging_steps": 9, "save_steps": 5, "learning_rate": 0.2, "model": "m", "new": 1}
    assert config_differences(recorded, current) == ["learning_rate: 0.1 -> 0.2"]


def test_record_run_writes_the_config_into_each_checkpoint(tmp_path):
    class State:
        is_world_process_zero, global_step = True, 3

    class Args:
        output_dir = str(tmp_path)

    (tmp_path / "checkpoint-3").mkdir()
    RecordRun(Cfg(str(tmp_path), max_steps=9)).on_save(Args(), State(), None)
    assert yaml.safe_load((tmp_path / "checkpoint-3" / RUN_RECORD).read_text())["max_steps"] == 9
    assert (tmp_path / "checkpoint-3" / "mmreward_complete").read_text() == "3"


def test_bt_rerun_with_fewer_steps_is_refused_then_overwritten(tiny_checkpoint, scoring_media, tmp_path):
    """The issue's scenario: a 4-step run, then the same folder with 2 steps and `latest`."""
    from mmreward.train.bt import BTConfig, train

    data = tmp_path / "pairs.jsonl"
    rows = [make_pair(f"p{i}", f"{scoring_media}/i{i % 3}.png", f"{scoring_media}/i{(i + 1) % 3}.png",
                      label="AB"[i % 2]) for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "bt"

    def cfg(**kw):
        return load_config(BTConfig, None, {
            "model": str(tiny_checkpoint("qwen2_5_vl")), "train_data": str(data), "output_dir": str(out),
            "per_device_train_batch_size": 2, "save_steps": 2, "use_cpu": True, "disable_tqdm": True,
            "report_to": "none", **kw})

    train(cfg(max_steps=4))
    assert (out / "checkpoint-4" / RUN_RECORD).is_file()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg(max_steps=2))
    with pytest.raises(ConfigError, match=r"checkpoint-4 was written by a different config \(max_steps: 4 -> 2\)"):
        train(cfg(max_steps=2, resume_from_checkpoint="latest"))
    train(cfg(max_steps=2, overwrite_output_dir=True))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
