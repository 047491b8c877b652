"""One judge configuration shape: JudgeArgs.to_judge_config, PolicyArgs.lora_spec, one default tool list."""

from dataclasses import asdict

from mmreward.agent.judge_scorer import JudgeConfig
from mmreward.agent.tools import DEFAULT_TOOLS
from mmreward.models.backbone import LoraSpec
from mmreward.train.args import JudgeArgs, PolicyArgs
from mmreward.train.rft import RFTConfig


def test_judge_args_defaults_are_the_judge_configs():
    assert asdict(JudgeArgs().to_judge_config("m")) == asdict(JudgeConfig(backbone="m"))


def test_to_judge_config_copies_shared_fields_and_applies_overrides():
    args = JudgeArgs(tools=["crop"], initial_frames=7, template="pairwise_image")
    config = args.to_judge_config("ckpt", max_turns=9, memory_window=-1)
    assert (config.backbone, config.tools, config.initial_frames, config.template) == \
        ("ckpt", ["crop"], 7, "pairwise_image")
    assert (config.max_turns, config.memory_window) == (9, -1)
    config.tools.append("calculator")  # the judge's list is its own
    assert args.tools == ["crop"]


def test_lora_spec():
    assert PolicyArgs(lora_r=0).lora_spec() is None
    spec = PolicyArgs(lora_r=8, lora_alpha=16, lora_dropout=0.1, lora_target_modules="q_proj").lora_spec()
    assert spec == LoraSpec(r=8, alpha=16, dropout=0.1, target_modules="q_proj")


def test_one_default_tool_list():
    expected = list(DEFAULT_TOOLS)
    assert JudgeConfig().tools == expected and JudgeArgs().tools == expected
    assert RFTConfig(model="m", train_data="d").tools == expected
