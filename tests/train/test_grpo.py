"""GRPO smoke runs: two steps on tiny Qwen3-VL (full weights) and Qwen2.5-VL (LoRA, our tool template) on image
and video pairs; rewards are logged, the weights move, and the output loads as a judge."""

import json
import math
import os
import random

import pytest
import torch
from safetensors.torch import load_file
from testkit import make_pair
from transformers import TrainerCallback

from mmreward.train.grpo import FirstTurn, JudgeGRPOConfig, judge_config, prompt_dataset, train
from mmreward.train.reward_fns import REWARD_FNS


def noisy(completions, **kwargs):
    """Test-only reward with variance inside every group, so advantages are non-zero and a step must move weights
    (a tiny random model never writes a parsable verdict: the real rewards are constant)."""
    return [random.random() for _ in completions]


class LogCapture(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def _data(scoring_media, tmp_path):
    records = [make_pair("img", str(scoring_media / "i0.png"), str(scoring_media / "i1.png"), label="A"),
               make_pair("vid", str(scoring_media / "v0.mp4"), str(scoring_media / "v1.mp4"), label="B",
                         dimensions={"VQ": "B"})]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _config(model, data, out, **overrides):
    values = dict(model=str(model), train_data=str(data), output_dir=str(out), initial_frames=2,
                  workspace_frames=8, max_frames_per_call=2, image_max_pixels=64 * 64, tool_max_pixels=64 * 64,
                  per_device_train_batch_size=2, num_generations=2, max_completion_length=24, max_steps=2,
                  learning_rate=1e-2, activation_checkpointing=False, use_cpu=True, disable_tqdm=True,
                  save_strategy="no", logging_steps=1, seed=0)
    return JudgeGRPOConfig(**{**values, **overrides})


def test_prompts_are_the_judges_first_turn(tiny_checkpoint, scoring_media, tmp_path):
    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.data.schema import read_jsonl

    data = _data(scoring_media, tmp_path)
    cfg = _config(tiny_checkpoint("qwen3_vl"), data, tmp_path / "out")
    config = judge_config(cfg, cfg.model)
    records = read_jsonl(data)
    rows = prompt_dataset(records, config)
    assert len(rows) == 2 and set(rows[0]) == {"prompt", "images", "record", "template"}
    messages, images, name = JudgeScorer(None, None, config).conversation(records[1])
    row = rows[1]
    assert row["prompt"] == messages and row["template"] == name == "pairwise_video"
    assert len(row["images"]) == len(images) == 4      # 2 first-look frames per video
    assert sum(p["type"] == "image" for p in row["prompt"][-1]["content"]) == 4
    # Media paths are absolute, so the environment resolves them from any working directory.
    assert json.loads(row["record"])["a"]["media"][0]["path"] == str(scoring_media / "v0.mp4")
    assert isinstance(FirstTurn(config)({"record": [row["record"]]})["images"][0][0].size, tuple)


def test_config_validates_names():
    with pytest.raises(ValueError, match="unknown reward"):
        JudgeGRPOConfig(model="m", train_data="d", reward_fns=["nope"], use_cpu=True)
    with pytest.raises(ValueError, match="reward_weights"):
        JudgeGRPOConfig(model="m", train_data="d", reward_weights=[1.0], use_cpu=True)
    with pytest.raises(ValueError, match="unknown tool"):
        JudgeGRPOConfig(model="m", train_data="d", tools=["hammer"], use_cpu=True)


@pytest.mark.parametrize("family,lora_r", [("qwen3_vl", 0), ("qwen2_5_vl", 4)])
def test_grpo_two_steps_and_a_loadable_judge(family, lora_r, tiny_checkpoint, scoring_media, tmp_path,
                                             monkeypatch):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.scoring import load_scorer

    monkeypatch.setitem(REWARD_FNS, "noisy", noisy)
    random.seed(0)
    base = tiny_checkpoint(family)
    cfg = _config(base, _data(scoring_media, tmp_path), tmp_path / "out", lora_r=lora_r,
                  reward_fns=["verdict_accuracy", "strict_format", "noisy"], reward_weights=[1.0, 1.0, 1.0])
    capture = LogCapture()
    out = train(cfg, callbacks=[capture])

    losses = [log["loss"] for log in capture.logs if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    logged = {key for log in capture.logs for key in log}
    assert {"rewards/verdict_accuracy/mean", "rewards/strict_format/mean", "rewards/noisy/mean"} <= logged

    if lora_r:
        adapter = load_file(out / "adapter" / "adapter_model.safetensors")
        assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)   # lora_B starts at zero
    else:
        before = load_file(base / "model.safetensors")
        after = load_file(out / "backbone" / "model.safetensors")
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and not any("visual" in k for k in changed)   # the vision tower is frozen by default
    judge = load_scorer(out)
    assert isinstance(judge, JudgeScorer)
    assert judge.config.tools == ["select_frames", "crop"] and judge.config.initial_frames == 2


# A scripted policy (replaces generation, keeps everything else real): in each group, episode 0 fetches frames,
# makes a bad call, then answers correctly; episode 1 answers wrongly at once. Keyed by (episode, turn).
_ANSWER = '<think>{}</think><answer>{{"VQ": "B", "MQ": "B", "TA": "B", "overall": "{}"}}</answer>'
_CALL = ('<think>look</think><tool_call>\n{{"name": "select_frames", "arguments": {{"video": 1, '
         '"target_frames": {}}}}}\n</tool_call>')
SCRIPT = {(0, 1): _CALL.format("[1, 2]"), (0, 2): _CALL.format("[99]"), (0, 3): _ANSWER.format("seen", "B"),
          (1, 1): _ANSWER.format("quick", "A")}


def scripted_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
    out = []
    for i, ids in enumerate(prompt_ids):
        turn = self._tokenizer.decode(ids).count("<|im_start|>assistant\n")
        text = SCRIPT[(i % 2 if turn == 1 else 0, turn)] + "<|im_end|>"
        out.append(self._tokenizer.encode(text, add_special_tokens=False))
    return out, None


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_tool_episodes_through_trl_get_the_hand_computed_rewards(family, tiny_checkpoint, scoring_media, tmp_path,
                                                                  monkeypatch):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOTrainer

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", scripted_turn)
    record = make_pair("vid", str(scoring_media / "v0.mp4"), str(scoring_media / "v1.mp4"), label="B",
                       dimensions={"VQ": "B"})
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps(record) + "\n")
    names = ["verdict_accuracy", "dimension_accuracy", "strict_format", "tool_call_validity", "vrthinker_tool_bonus"]
    cfg = _config(tiny_checkpoint(family), data, tmp_path / "out", reward_fns=names, max_steps=1,
                  max_completion_length=512)
    capture = LogCapture()
    train(cfg, callbacks=[capture])
    logged = {k: v for log in capture.logs for k, v in log.items()}
    # Episode 0: 2 calls (1 failed), correct verdict (overall B, VQ B); episode 1: no call, overall wrong.
    expected = {"verdict_accuracy": (1.0 + 0.0) / 2, "dimension_accuracy": (1.0 + 0.5) / 2, "strict_format": 1.0,
                "tool_call_validity": (0.5 + 0.0) / 2, "vrthinker_tool_bonus": (0.5 - 1.0) / 2}
    assert {n: logged[f"rewards/{n}/mean"] for n in names} == pytest.approx(expected)
    assert logged["tools/call_frequency"] == pytest.approx(1.0) and logged["tools/failure_frequency"] == 0.5
    assert math.isfinite(logged["loss"])
