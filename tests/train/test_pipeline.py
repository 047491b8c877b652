"""The judge pipeline end to end on the tiny model: SFT -> RFT -> GRPO -> scoring with the trained judge.

The same stages as `launch/smoke_cpu.sh`, on one video pair so that a few dozen SFT steps make the tiny judge
produce correct, tool-using episodes (which RFT then keeps).
"""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from mmreward.cli import main
from mmreward.config import load_config
from mmreward.data.recipe import build_recipe, load_split
from mmreward.data.schema import write_jsonl
from mmreward.data.synthetic_prefs import demo_recipe


class Losses(TrainerCallback):
    def __init__(self):
        self.losses = []

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def _weights(path):
    return load_file(next((path / "backbone").glob("*.safetensors")))


def _changed(a, b) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if k in b and "layers.0.mlp" in k)


@pytest.fixture(scope="module")
def one_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    build_recipe(demo_recipe(n_images=2, n_videos=2), root / "data")
    record = next(r for r in load_split(root / "data", "train") + load_split(root / "data", "test")
                  if r.id.startswith("shapes_videos"))
    write_jsonl(root / "one.jsonl", [record])
    return root / "one.jsonl"


def test_sft_rft_grpo_then_score(tiny_checkpoint, one_pair, tmp_path):
    from mmreward.train import grpo, rft, sft

    torch.set_num_threads(1)  # the tiny model is faster single-threaded, and steadier on a shared 2-core box
    judge = {"tools": ["select_frames"], "initial_frames": 2, "max_new_tokens": 160}
    common = {"use_cpu": True, "seed": 0, "disable_tqdm": True, "save_strategy": "no", "logging_steps": 1,
              "gradient_checkpointing": False, "dataloader_num_workers": 0}
    base = tiny_checkpoint("qwen2_5_vl")

    sft_losses = Losses()
    sft_cfg = load_config(sft.SFTConfig, None, {
        "model": str(base), "train_data": str(one_pair), "output_dir": str(tmp_path / "sft"), "max_steps": 100,
        "learning_rate": 5e-3, "lr_scheduler_type": "constant", "per_device_train_batch_size": 1, "swap_augment": False,
        **judge, **common})
    sft_out = sft.train(sft_cfg, callbacks=[sft_losses])
    assert all(math.isfinite(x) for x in sft_losses.losses) and sft_losses.losses[-1] < sft_losses.losses[0]
    assert json.loads((sft_out / "mmreward_config.json").read_text())["scorer"] == "judge"

    # One order only (this checks the stages connect; tests/train/test_tool_task.py checks both orders).
    rft_cfg = rft.RFTConfig(model=str(sft_out), train_data=str(one_pair), samples_per_record=2, temperature=0.0,
                            max_turns=3, output_dir=str(tmp_path / "rft"), swap_augment=False,
                            require_swap_agreement=False, **judge,
                            sft={"max_steps": 2, "learning_rate": 1e-4, "per_device_train_batch_size": 1,
                                 "initial_frames": 2, **common})
    rft_out = rft.train(rft_cfg)
    stats = json.loads((tmp_path / "rft" / "rft_stats.json").read_text())
    assert stats["kept"] == 2 and stats["tool_use_rate"] == 1.0 and stats["parse_failures"] == 0
    assert (tmp_path / "rft" / "kept.jsonl").is_file()
    assert _changed(_weights(sft_out), _weights(rft_out))

    grpo_losses = Losses()
    grpo_cfg = load_config(grpo.JudgeGRPOConfig, None, {
        "model": str(rft_out), "train_data": str(one_pair), "output_dir": str(tmp_path / "grpo"), "max_steps": 2,
        "num_generations": 2, "per_device_train_batch_size": 2, "max_completion_length": 192,
        "max_tool_calling_iterations": 2, "tools": ["select_frames"], "initial_frames": 2, "bf16": False,
        "temperature": 1.0, **{k: v for k, v in common.items() if k != "gradient_checkpointing"}})
    grpo_out = grpo.train(grpo_cfg, callbacks=[grpo_losses])
    assert grpo_losses.losses and all(math.isfinite(x) for x in grpo_losses.losses)

    out = tmp_path / "scores.jsonl"
    code = main(["score", "--model", str(grpo_out), "--input", str(one_pair), "--output", str(out),
                 "--on-error", "skip", "--no-progress"])
    assert code in (0, 3)  # a verdict, or a reported parse failure; never a silent score
    assert out.is_file()
