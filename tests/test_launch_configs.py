"""Every launch file parses: training YAMLs load into their config dataclass, accelerate YAMLs into accelerate's
ClusterConfig, DeepSpeed JSONs name a ZeRO stage, shell scripts pass `bash -n`, and each YAML opens with the
command that runs it.

    pytest tests/test_launch_configs.py -q
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mmreward.config import load_config
from mmreward.train.bt import BTConfig

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
TRAIN_CONFIGS = sorted((LAUNCH / "configs").rglob("*.yaml"))
ACCELERATE_CONFIGS = sorted((LAUNCH / "accelerate").glob("*.yaml"))
DEEPSPEED_CONFIGS = sorted((LAUNCH / "deepspeed").glob("*.json"))
SCRIPTS = sorted([*LAUNCH.rglob("*.sh"), *LAUNCH.rglob("*.sbatch")])
# Commands that may run a launch file; the header must name one of them and the file itself.
LAUNCHERS = ("launch/train.sh", "mmreward train", "mmreward.cli train", "accelerate launch", "sbatch")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_launch_files_are_found():
    assert len(TRAIN_CONFIGS) >= 6, TRAIN_CONFIGS
    assert {p.stem for p in ACCELERATE_CONFIGS} >= {"ddp", "fsdp", "zero2", "zero3"}
    assert {p.stem for p in DEEPSPEED_CONFIGS} >= {"zero2", "zero3"}
    assert {p.name for p in SCRIPTS} >= {"train.sh", "smoke_cpu.sh", "train_multinode.sbatch"}


def _config_class(path: Path):
    """The stage's config class, from the file name (bt*, sft*, rft*, grpo*)."""
    stage = path.stem.split("_")[0]
    if stage == "sft":
        from mmreward.train.sft import SFTConfig

        return SFTConfig
    if stage == "rft":
        from mmreward.train.rft import RFTConfig

        return RFTConfig
    if stage == "grpo":
        from mmreward.train.grpo import JudgeGRPOConfig

        return JudgeGRPOConfig
    assert stage == "bt", f"{_rel(path)}: name it after its stage (bt_, sft_, rft_, grpo_)"
    return BTConfig


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=_rel)
def test_train_config_loads_into_its_config_class(path: Path):
    # Only override: use_cpu, because TrainingArguments rejects `bf16: true` on a machine without a GPU unless
    # use_cpu is set (and vLLM/DeepSpeed are GPU-only). Everything else is validated as written.
    cls = _config_class(path)
    raw = yaml.safe_load(path.read_text())
    overrides = {}
    if "use_cpu" in getattr(cls, "__dataclass_fields__", {}):
        overrides = {"use_cpu": True, "bf16": False}
        if raw.get("use_vllm"):
            overrides["use_vllm"] = False
        if raw.get("deepspeed"):
            overrides["deepspeed"] = None
    cfg = load_config(cls, path, overrides)
    assert cfg.model == raw["model"] and cfg.train_data == raw["train_data"]
    if path.stem.startswith("rft"):
        # The SFT stage's overrides must be valid SFTConfig fields too.
        from mmreward.train.sft import SFTConfig

        load_config(SFTConfig, None, {"model": "m", "train_data": "d", **cfg.sft, "use_cpu": True, "bf16": False,
                                      "deepspeed": None})
    if path.parent.name == "tiny_cpu" and str(raw["model"]).startswith("/tmp/"):
        # The header command must run on a fresh clone: the config builds its tiny model itself.
        assert raw.get("tiny_family"), f"{_rel(path)}: set tiny_family so the tiny model is built on first use"
    if cls is BTConfig and cfg.pooling == "special":
        assert len(cfg.reward_tokens) == len(cfg.dimensions), "pooling 'special' needs one token per dimension"


@pytest.mark.parametrize("path", TRAIN_CONFIGS + ACCELERATE_CONFIGS, ids=_rel)
def test_yaml_header_is_the_launch_command(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# "), f"{_rel(path)}: the first line must be a comment with the launch command"
    assert _rel(path) in first, f"{_rel(path)}: the header command must name the file itself: {first!r}"
    assert any(cmd in first for cmd in LAUNCHERS), f"{_rel(path)}: no launch command in {first!r}"


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=_rel)
def test_accelerate_config_parses(path: Path):
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(path)
    assert cfg.num_processes >= 1 and not cfg.use_cpu
    ds_file = cfg.deepspeed_config.get("deepspeed_config_file")
    if ds_file:
        assert (ROOT / ds_file).is_file(), ds_file
        # accelerate refuses a mixed_precision next to deepspeed_config_file; the JSON holds precision.
        assert cfg.mixed_precision is None


@pytest.mark.parametrize("path", DEEPSPEED_CONFIGS, ids=_rel)
def test_deepspeed_config_parses(path: Path):
    config = json.loads(path.read_text())
    stage = config["zero_optimization"]["stage"]
    assert stage in (0, 1, 2, 3)
    assert path.stem == f"zero{stage}"
    # Trainer can only fill these "auto" values from model.config.hidden_size, which RewardModel's config lacks.
    for key in ("reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"):
        assert config["zero_optimization"].get(key) != "auto", key
    if stage == 3:
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_script_syntax(path: Path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert path.read_text().startswith("#!"), f"{_rel(path)}: missing shebang"
