"""GRPO on the tiny LLaVA-OneVision judge with images (TRL 1.16 + `train.grpo_anyres`).

The policy's turns are scripted (episode 0 calls a tool that returns images, then answers correctly; episode 1
answers wrongly at once), but TRL's real generation runs first on every turn with the real inputs (prompt images,
tool images, their anyres tiles), so what TRL 1.16 gets wrong for LLaVA-OneVision is exercised in `generate`, in
the log-prob passes and in the optimizer step. Every image must be shown as the judge's HF episodes show it (on its
own: anyres tiles), in the text and in the pixels of every pass.
"""

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from testkit import make_pair, scripted_generation, two_episode_script
from transformers import AutoProcessor, TrainerCallback

# One image alone, in multi-image mode: the tiny tile's 3 x 3 features + the newline (what the fix must not use).
MULTI_IMAGE_TOKENS = 9 + 1


class Capture(TrainerCallback):
    def __init__(self):
        self.logs = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.update(logs or {})


def _images(tmp_path):
    """Two 56 x 84 images: on the judge's 28-pixel grid and within its pixel budget, so the media path keeps them
    as they are."""
    paths = []
    for i in range(2):
        path = tmp_path / f"wide{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (56, 84, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _config(model, data, out, tool, **overrides):
    from mmreward.train.grpo import JudgeGRPOConfig

    values = dict(model=str(model), train_data=str(data), output_dir=str(out), initial_frames=2,
                  workspace_frames=8, max_frames_per_call=2, per_device_train_batch_size=2, num_generations=2,
                  max_completion_length=1024, generation_kwargs={"max_new_tokens": 2}, max_steps=1,
                  learning_rate=1e-2, activation_checkpointing=False, use_cpu=True, disable_tqdm=True,
                  save_strategy="no", logging_steps=1, seed=0, tools=[tool],
                  reward_fns=["verdict_accuracy", "strict_format", "tool_call_validity"])
    return JudgeGRPOConfig(**{**values, **overrides})


def _write(tmp_path, record):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def _alone(processor, image) -> tuple[int, torch.Tensor]:
    """(image tokens, pixel values) of one image processed on its own by the judge's processor, as the HF judge
    episodes show it (`agent.generate.hf_generate_fn`)."""
    inputs = processor(text=[processor.image_token], images=[image], return_tensors="pt")
    return int((inputs["input_ids"] == processor.image_token_id).sum()), inputs["pixel_values"][0]


@pytest.fixture
def spy_logps(monkeypatch):
    """Records the inputs of every log-prob pass of the LLaVA-OneVision trainer."""
    from testkit import record_logp_passes

    from mmreward.train.grpo_anyres import AnyresImagesGRPOTrainer

    return record_logp_passes(monkeypatch, AnyresImagesGRPOTrainer)


def _check_passes(calls, processor, episodes):
    """Every pass fed each episode its images as the judge shows them alone: image tokens in the text = the sum
    of their single-image counts, pixel values = their single-image tiles, the same in every pass."""
    expected = {len(imgs): [_alone(processor, img) for img in imgs] for imgs in episodes}
    assert len(calls) >= 2 and sorted(expected) == sorted(calls[0]["num_images"])
    for call in calls:
        starts = np.cumsum([0, *call["num_images"]])
        for row, n, start in zip(call["input_ids"], call["num_images"], starts):
            tokens = int((row == call["image_token_id"]).sum())
            assert tokens == sum(t for t, _ in expected[n]) and tokens != n * MULTI_IMAGE_TOKENS
            for (_, pixels), got in zip(expected[n], call["pixel_values"][start:start + n]):
                assert torch.allclose(got[:pixels.shape[0]], pixels) and not got[pixels.shape[0]:].any()
    return expected


def test_grpo_step_on_llava_onevision_with_cropped_images(tiny_checkpoint, tmp_path, monkeypatch, spy_logps):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOTrainer

    from mmreward.train.grpo import train

    model_dir = tiny_checkpoint("llava_onevision")
    script = two_episode_script("crop", {"box": [0, 0, 0.5, 0.5], "image": 1}, [{"overall": "A"}, {"overall": "B"}])
    seen: list = []
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn",
                        scripted_generation(script, GRPOTrainer._generate_single_turn, seen))
    a, b = _images(tmp_path)
    capture = Capture()
    out = train(_config(model_dir, _write(tmp_path, make_pair("img", a, b, label="A")), tmp_path / "out", "crop",
                        lora_r=0), callbacks=[capture])

    logged = capture.logs
    # Episode 0: one valid crop call, then the right verdict; episode 1: the wrong verdict, no call.
    expected = {"verdict_accuracy": (1.0 + 0.0) / 2, "strict_format": 1.0, "tool_call_validity": (1.0 + 0.0) / 2}
    assert {n: logged[f"rewards/{n}/mean"] for n in expected} == pytest.approx(expected)
    assert logged["tools/call_frequency"] == 0.5 and logged["tools/failure_frequency"] == 0.0
    assert math.isfinite(logged["loss"]) and logged["grad_norm"] > 0

    # Generation saw the two prompt images per episode, then (episode 0's second turn) those and the crop.
    assert [len(s) for s in seen] == [2, 2, 3]
    processor = AutoProcessor.from_pretrained(model_dir)
    per_image = _check_passes(spy_logps, processor, [seen[0], seen[2]])
    # By hand, each 56 x 84 prompt image alone: the best anyres grid is 84 x 84 (2 x 2 tiles of 42, no
    # downscaling, least padding), so 4 tiles + the base tile; tokens: 9 base features + the 6 x 6 grid features
    # unpadded to 4 rows (84 / 56 = 1.5 wider than tall) = 24, + 4 row newlines = 37. Multi-image mode would
    # have given one base tile and 10 tokens each.
    assert [(t, p.shape[0]) for t, p in per_image[2]] == [(37, 5), (37, 5)]

    # Full weights moved; the vision tower and projector are frozen by default (`freeze_vision`), the learned
    # image-newline vector (a top-level parameter, in the family's vision modules neither) is not.
    before, after = load_file(model_dir / "model.safetensors"), load_file(out / "backbone" / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "language_model.lm_head.weight" in changed
    assert all(k.startswith("language_model.") or k == "image_newline" for k in changed)


def test_grpo_step_on_llava_onevision_with_video_frames(tiny_checkpoint, scoring_media, tmp_path, monkeypatch,
                                                        spy_logps):
    """A video pair: first-look frames in the prompt, two more from one `select_frames` reply (a tool reply with
    several images, which TRL tokenizes together), a LoRA step."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOTrainer

    from mmreward.train.grpo import train

    verdict = {"VQ": "B", "MQ": "B", "TA": "B", "overall": "B"}
    script = two_episode_script("select_frames", {"video": 1, "target_frames": [1, 2]}, [verdict, {**verdict, "overall": "A"}])
    seen: list = []
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn",
                        scripted_generation(script, GRPOTrainer._generate_single_turn, seen))
    record = make_pair("vid", str(scoring_media / "v0.mp4"), str(scoring_media / "v1.mp4"), label="B",
                       dimensions={"VQ": "B"})
    capture = Capture()
    model_dir = tiny_checkpoint("llava_onevision")
    out = train(_config(model_dir, _write(tmp_path, record), tmp_path / "out", "select_frames", lora_r=2),
                callbacks=[capture])

    logged = capture.logs
    expected = {"verdict_accuracy": (1.0 + 0.0) / 2, "strict_format": 1.0, "tool_call_validity": (1.0 + 0.0) / 2}
    assert {n: logged[f"rewards/{n}/mean"] for n in expected} == pytest.approx(expected)
    assert math.isfinite(logged["loss"])
    # 2 first-look frames per video, plus the 2 frames select_frames returned in episode 0.
    assert [len(s) for s in seen] == [4, 4, 6]
    _check_passes(spy_logps, AutoProcessor.from_pretrained(model_dir), [seen[0], seen[2]])
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)   # lora_B starts at zero


def test_single_image_processor_tiles_each_image_alone(tiny_checkpoint, tmp_path):
    from mmreward.train.grpo_anyres import single_image_processor

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("llava_onevision"))
    a, b = (Image.open(p) for p in _images(tmp_path))
    text = [processor.image_token * 2]
    # The processor's own multi-image mode: one base tile per image, 9 features + a newline each.
    multi = processor(text=text, images=[[a, b]], return_tensors="pt")
    assert multi["batch_num_images"].tolist() == [2] and multi["pixel_values"].shape[:2] == (2, 1)
    assert int((multi["input_ids"] == processor.image_token_id).sum()) == 2 * MULTI_IMAGE_TOKENS

    single = single_image_processor(processor)
    got = single(text=text, images=[[a, b]], return_tensors="pt")
    alone = [_alone(processor, image) for image in (a, b)]
    assert got["batch_num_images"].tolist() == [1, 1]
    assert int((got["input_ids"] == processor.image_token_id).sum()) == sum(t for t, _ in alone)
    assert all(torch.equal(got["pixel_values"][i][:p.shape[0]], p) for i, (_, p) in enumerate(alone))
    # The caller's processor is unchanged; the copy saves (and reloads) as the same classes.
    assert processor(text=text, images=[[a, b]])["batch_num_images"] == [2]
    assert single.tokenizer is processor.tokenizer and single_image_processor(single) is single
    single.save_pretrained(tmp_path / "saved")
    reloaded = AutoProcessor.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is type(processor) and type(reloaded.image_processor) is type(processor.image_processor)

    qwen = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    assert single_image_processor(qwen) is qwen


def test_ragged_prompt_tiles_are_padded_into_one_tensor():
    from mmreward.train.grpo_anyres import anyres_fields, flat_images

    assert flat_images([["a", "b"], None, ["c"], "d"]) == ["a", "b", "c", "d"] and flat_images(None) is None
    tiles = [torch.ones(3, 1, 2, 2), torch.full((5, 1, 2, 2), 2.0)]
    fields = anyres_fields({"pixel_values": tiles, "image_sizes": [torch.tensor([4, 8]), torch.tensor([8, 4])],
                            "batch_num_images": [1, 1], "token_type_ids": [[0, 1]]})
    assert sorted(fields) == ["image_sizes", "pixel_values"]
    pixels = fields["pixel_values"]
    assert pixels.shape == (2, 5, 1, 2, 2) and fields["image_sizes"].tolist() == [[4, 8], [8, 4]]
    assert pixels[0, :3].eq(1).all() and pixels[0, 3:].eq(0).all() and pixels[1].eq(2).all()


def test_trainer_class_for_llava_onevision():
    from mmreward.models.families import FAMILIES
    from mmreward.train.grpo import FilteredAnyresGRPOTrainer, JudgeGRPOConfig, trainer_class
    from mmreward.train.grpo_anyres import AnyresImagesGRPOTrainer

    plain = JudgeGRPOConfig(model="m", train_data="d", use_cpu=True)
    filtered = JudgeGRPOConfig(model="m", train_data="d", use_cpu=True, advantage_filter_sigma=3.0)
    assert trainer_class(plain, FAMILIES["llava_onevision"]) is AnyresImagesGRPOTrainer
    both = trainer_class(filtered, FAMILIES["llava_onevision"])
    assert both is FilteredAnyresGRPOTrainer and issubclass(both, AnyresImagesGRPOTrainer)


def test_trl_still_needs_the_anyres_fixes(tiny_checkpoint, tmp_path, monkeypatch):
    """Sentinel: TRL's own GRPOTrainer still fails this step. When this test fails, TRL handles LLaVA-OneVision's
    images itself: check that the steps above pass without `train/grpo_anyres.py`, then drop it (and this test)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOTrainer

    import mmreward.train.grpo as grpo

    script = two_episode_script("crop", {"box": [0, 0, 0.5, 0.5], "image": 1}, [{"overall": "A"}, {"overall": "B"}])
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", scripted_generation(script, GRPOTrainer._generate_single_turn))
    monkeypatch.setattr(grpo, "trainer_class", lambda cfg, family: GRPOTrainer)
    a, b = _images(tmp_path)
    cfg = _config(tiny_checkpoint("llava_onevision"), _write(tmp_path, make_pair("img", a, b)), tmp_path / "out",
                  "crop", lora_r=2)
    with pytest.raises((TypeError, ValueError), match="batch_num_images|token_type_ids|image tokens do not match"):
        grpo.train(cfg)
