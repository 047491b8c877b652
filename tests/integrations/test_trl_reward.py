"""TRL: a real GRPOTrainer step on a tiny VLM policy whose reward comes from `mmreward serve` over HTTP."""

import os

import pytest
from PIL import Image

from mmreward.integrations.backend import LocalBackend
from mmreward.integrations.trl import MMRewardFunc, completion_text, prompt_text


def test_prompt_and_completion_text_from_trl_conversations():
    prompt = [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
    assert prompt_text(prompt) == ("Colour?", "Be brief.")
    assert prompt_text("plain") == ("plain", None)
    assert completion_text([{"role": "assistant", "content": "Red."}]) == "Red."


def test_grpo_trainer_step_with_a_remote_mmreward_reward(tiny_checkpoint, live_server, head_model, tmp_path):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    url, app = live_server
    reward = MMRewardFunc(url)
    calls = []

    def recording(prompts, completions, **kwargs):
        rewards = reward(prompts, completions, **kwargs)
        calls.append((reward.records(prompts, completions, kwargs["images"]), rewards))
        return rewards

    recording.__name__ = "mmreward"
    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}],
             "images": [Image.new("RGB", (56, 56), colour)]} for colour in ("red", "blue")]
    path = tiny_checkpoint("qwen3_vl")
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=8, max_steps=1, use_cpu=True, report_to="none", bf16=False,
                      disable_tqdm=True, logging_steps=1)
    trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path),
                          processing_class=AutoProcessor.from_pretrained(path), reward_funcs=[recording],
                          args=args, train_dataset=Dataset.from_list(rows))
    records_before = app.state.metrics.records
    trainer.train()
    assert trainer.state.global_step == 1
    (records, rewards), = calls
    assert len(records) == 2 and all(len(r["media"]) == 1 for r in records)  # the prompt's image went along
    assert app.state.metrics.records - records_before == 2
    local = [row["score"] for row in LocalBackend(head_model).score(records)]
    assert rewards == pytest.approx(local, abs=1e-5)
    logged = next(log for log in trainer.state.log_history if "rewards/mmreward/mean" in log)
    assert logged["rewards/mmreward/mean"] == pytest.approx(sum(rewards) / 2, abs=1e-4)
