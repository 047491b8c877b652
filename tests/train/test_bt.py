"""The Bradley–Terry trainer: smoke runs that change parameters, yes-token training, exact resume, DDP on CPU."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from testkit import make_pair
from transformers import TrainerCallback

from mmreward.config import load_config
from mmreward.scoring import load_scorer
from mmreward.train.bt import COMPLETE_MARKER, BTConfig, train
from mmreward.train.bt_setup import latest_complete_checkpoint


@pytest.fixture(scope="module")
def pairs_jsonl(scoring_media):
    rows = [make_pair("p0", "v0.mp4", "v1.mp4", label="A"), make_pair("p1", "i0.png", "i1.png", label="B"),
            make_pair("p2", "i2.png", "v2.mp4", label="tie", dimensions={"VQ": "A", "MQ": "tie"}),
            make_pair("p3", {"text": "a cat"}, {"text": "two dogs"}, shared="i1.png", prompt="What is it?"),
            make_pair("p4", "i1.png", "i0.png", label="A", margin=0.5),
            {"id": "pt", "prompt": "rate", "media": [{"type": "image", "path": "i0.png"}],
             "scores": {"VQ": 3.0, "MQ": 1.0}}]
    path = scoring_media / "bt_train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(tiny_checkpoint, data, out, **overrides):
    flags = {"model": str(tiny_checkpoint("qwen2_5_vl")), "train_data": str(data), "eval_data": str(data),
             "output_dir": str(out), "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3,
             "logging_steps": 1, "save_strategy": "no", "use_cpu": True, "seed": 0, "disable_tqdm": True,
             "dataloader_num_workers": 0, **overrides}
    return load_config(BTConfig, None, flags)


def test_two_steps_train_the_head_model_and_save_a_scorer(tiny_checkpoint, pairs_jsonl, tmp_path):
    from mmreward.models.reward_model import RewardModel

    cfg = _cfg(tiny_checkpoint, pairs_jsonl, tmp_path / "out", dimensions=["VQ", "MQ"], ties="rao_kupper",
               regression_coef=0.1, centering_coef=0.01, use_margin=True)
    init = RewardModel.build(cfg.model, dimensions=["VQ", "MQ"])  # the pretrained backbone, for comparison
    out = train(cfg)
    state = json.loads((out / "eval_results.json").read_text())
    assert 0.0 <= state["eval_accuracy_VQ"] <= 1.0 and "eval_loss" in state
    trained = load_scorer(out)
    assert trained.dimensions == ["VQ", "MQ"]
    before = {k: v for k, v in init.backbone.state_dict().items() if "language_model.layers.0.mlp" in k}
    after = {k: v for k, v in trained.backbone.state_dict().items() if k in before}
    assert before and any(not torch.equal(before[k], after[k]) for k in before)
    head = load_file(out / "head.safetensors")
    assert all(torch.isfinite(v).all() for v in head.values())


def test_losses_are_finite_and_parameters_change(tiny_checkpoint, pairs_jsonl, tmp_path):
    seen = {}

    class Grab(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["before"] = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

        def on_train_end(self, args, state, control, model=None, **kw):
            seen["after"] = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
            seen["losses"] = [h["loss"] for h in state.log_history if "loss" in h]

    train(_cfg(tiny_checkpoint, pairs_jsonl, tmp_path / "o", max_steps=3), callbacks=[Grab()])
    assert len(seen["losses"]) == 3 and all(torch.isfinite(torch.tensor(seen["losses"])))
    changed = [k for k in seen["before"] if not torch.equal(seen["before"][k], seen["after"][k])]
    assert any(k.startswith("head.") for k in changed)
    assert any(".visual." in k for k in changed) and any("language_model" in k for k in changed)


def test_yes_token_scorer_trains_without_new_parameters(tiny_checkpoint, pairs_jsonl, tmp_path):
    from mmreward.models.yes_token import YesTokenScorer

    out = train(_cfg(tiny_checkpoint, pairs_jsonl, tmp_path / "yes", scorer="yes_token", yes_mode="pairwise",
                     lora_r=4, lora_alpha=8))
    scorer = load_scorer(out)
    assert isinstance(scorer, YesTokenScorer) and scorer.config.mode == "pairwise"
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and not (out / "head.safetensors").exists()
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items())  # B starts at 0: it trained


def test_resume_continues_exactly(tiny_checkpoint, pairs_jsonl, tmp_path):
    def losses(out):
        state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
        return [h["loss"] for h in state["log_history"] if "loss" in h]

    common = dict(max_steps=6, save_strategy="steps", save_steps=3, per_device_train_batch_size=2,
                  lr_scheduler_type="linear", eval_data=None)
    full = tmp_path / "full"
    train(_cfg(tiny_checkpoint, pairs_jsonl, full, **common))

    class StopAt3(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                control.should_training_stop = True

    broken = tmp_path / "broken"
    train(_cfg(tiny_checkpoint, pairs_jsonl, broken, **common), callbacks=[StopAt3()])
    # A half-written later checkpoint (no completion marker) must not be picked up.
    (broken / "checkpoint-5").mkdir()
    assert latest_complete_checkpoint(broken, COMPLETE_MARKER).endswith("checkpoint-3")
    train(_cfg(tiny_checkpoint, pairs_jsonl, broken, resume_from_checkpoint="latest", **common))
    assert losses(broken) == pytest.approx(losses(full), abs=1e-6)
    assert (broken / "checkpoint-6" / COMPLETE_MARKER).is_file()


def test_ddp_on_cpu_with_torchrun(tiny_checkpoint, pairs_jsonl, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "mmreward.cli", "train", "bt", "--model", str(tiny_checkpoint("qwen2_5_vl")),
           "--train_data", str(pairs_jsonl), "--eval_data", str(pairs_jsonl), "--output_dir", str(out),
           "--max_steps", "2", "--per_device_train_batch_size", "1", "--save_steps", "2", "--use_cpu", "true",
           "--ddp_backend", "gloo", "--disable_tqdm", "true", "--logging_steps", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    metrics = json.loads((out / "eval_results.json").read_text())
    # Eval gathered across both ranks: every labelled non-tie pair counted once (6 records, 2 ranks).
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]


def test_cli_config_file_after_the_stage_and_gradient_checkpointing(tiny_checkpoint, pairs_jsonl, tmp_path):
    from mmreward.cli import main

    config = tmp_path / "bt.yaml"
    config.write_text(f"model: {tiny_checkpoint('qwen2_5_vl')}\ntrain_data: {pairs_jsonl}\nmax_steps: 1\n"
                      f"use_cpu: true\nsave_strategy: 'no'\ngradient_checkpointing: true\nlora_r: 2\n"
                      f"output_dir: {tmp_path / 'o'}\n")
    assert main(["train", "bt", "--config", str(config), "--learning_rate", "1e-3"]) == 0
    assert (tmp_path / "o" / "adapter" / "adapter_config.json").is_file()
    assert main(["train", "bt", "--config", str(config), "--lerning_rate", "1e-3"]) == 2
