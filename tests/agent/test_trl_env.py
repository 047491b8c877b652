"""The judge environment plugs into TRL: GRPOTrainer(environment_factory=env_factory(...)) trains a step."""

import json
import os

from PIL import Image


def test_grpo_trainer_accepts_our_environment_and_trains_a_step(tiny_checkpoint, tmp_path):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from mmreward.agent.env import env_factory
    from mmreward.data.synthetic import write_index_video

    video = str(write_index_video(tmp_path / "v.mp4", n_frames=40, fps=10))
    record = {"id": "r", "prompt": "p", "a": {"media": [{"type": "video", "path": video}]}, "b": {"text": "x"},
              "label": "A"}
    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Judge."}]}],
             "images": [Image.new("RGB", (64, 64), "red")], "record": json.dumps(record)}] * 4
    path = tiny_checkpoint("qwen3_vl")
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=16, max_steps=1, use_cpu=True, report_to="none", bf16=False,
                      disable_tqdm=True)
    trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path),
                          processing_class=AutoProcessor.from_pretrained(path),
                          reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
                          train_dataset=Dataset.from_list(rows),
                          environment_factory=env_factory(tools=("select_frames", "calculator"),
                                                          workspace_frames=40))
    assert sorted(t.__name__ for t in trainer.tools) == ["calculator", "select_frames"]
    trainer.train()
    assert trainer.state.global_step == 1
