"""The head reward model: forward on images, videos and generation pairs; save/load; LoRA; token budget."""

import json

import pytest
import torch
from testkit import make_pair

from mmreward.data.collate import MediaContract, TokenBudgetError
from mmreward.data.media import VideoSampling
from mmreward.data.schema import parse_record
from mmreward.models.reward_model import RewardModel
from mmreward.scoring import Plan


def _records(root):
    rows = [
        make_pair("vid", "v0.mp4", "v1.mp4"),
        make_pair("img", "i0.png", "i1.png", label="B"),
        make_pair("resp", {"text": "a cat"}, {"text": "a dog on a mat"}, prompt="What is shown?", shared="i2.png"),
    ]
    return [parse_record(r, base_dir=root) for r in rows]


def _batch(model, records):
    enc = model.encoder()
    units = [u for r in records for u in model.plan(r).units]
    return model.forward_batch([enc(u) for u in units])


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_forward_on_images_videos_and_response_pairs(tiny_checkpoint, scoring_media, family):
    model = RewardModel.build(tiny_checkpoint(family), dimensions=["VQ", "MQ", "TA"]).eval()
    records = _records(scoring_media)
    plan = model.plan(records[0])
    assert isinstance(plan, Plan) and plan.combine == "pair" and len(plan.units) == 2
    with torch.no_grad():
        rewards = _batch(model, records)
    assert rewards.shape == (6, 3) and torch.isfinite(rewards).all()
    # Different candidates get different rewards (the media really reaches the model).
    assert not torch.allclose(rewards[0], rewards[1])


def test_batched_equals_one_by_one(tiny_checkpoint, scoring_media):
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()
    records = _records(scoring_media)
    with torch.no_grad():
        together = _batch(model, records)
        alone = torch.cat([_batch(model, [r]) for r in records])
    assert torch.allclose(together, alone, atol=1e-5)


def test_save_load_is_bit_identical(tiny_checkpoint, scoring_media, tmp_path):
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), pooling="mean", dimensions=["a", "b"]).eval()
    records = _records(scoring_media)
    with torch.no_grad():
        before = _batch(model, records)
    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "mmreward_config.json").read_text())
    assert config["scorer"] == "head" and config["pooling"] == "mean" and config["dimensions"] == ["a", "b"]
    assert config["media"]["video"]["fps"] == 2.0 and config["media"]["video"]["factor"] == 28
    assert (tmp_path / "ckpt" / "backbone" / "model.safetensors").is_file()
    loaded = RewardModel.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        after = _batch(loaded, records)
    assert torch.equal(before, after)


def test_lora_save_load_keeps_only_the_adapter(tiny_checkpoint, scoring_media, tmp_path):
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), lora={"r": 4, "alpha": 8, "dropout": 0.0})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable) and any(".visual." in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)
    # Give the adapter non-zero weights so the round trip is meaningful.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.eval()
    records = _records(scoring_media)
    with torch.no_grad():
        before = _batch(model, records)
    model.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "lora" / "trainable.safetensors").is_file()  # the trainable vision tower
    assert not (tmp_path / "lora" / "backbone").exists()
    loaded = RewardModel.from_pretrained(tmp_path / "lora").eval()
    with torch.no_grad():
        after = _batch(loaded, records)
    assert torch.equal(before, after)


def test_special_reward_tokens_pool_one_token_per_dimension(tiny_checkpoint, scoring_media):
    tokens = ["<|VQ_reward|>", "<|TA_reward|>"]
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), pooling="special", dimensions=["VQ", "TA"],
                              reward_tokens=tokens).eval()
    enc = model.encoder()(model.plan(_records(scoring_media)[0]).units[0])
    ids = enc["input_ids"][0].tolist()
    for tok in tokens:
        assert ids.count(model.processor.tokenizer.convert_tokens_to_ids(tok)) == 1
    with torch.no_grad():
        assert model.forward_batch([enc]).shape == (1, 2)


def test_special_pooling_needs_one_token_per_dimension(tiny_checkpoint):
    with pytest.raises(ValueError, match="one reward token per dimension"):
        RewardModel.build(tiny_checkpoint("qwen2_5_vl"), pooling="special", dimensions=["a", "b"],
                          reward_tokens=["<|r|>"])


def test_token_budget_guard_errors_or_resamples(tiny_checkpoint, scoring_media):
    contract = MediaContract(video=VideoSampling(nframes=8, min_pixels=4 * 784, max_pixels=16 * 784),
                             image_min_pixels=4 * 784, image_max_pixels=16 * 784)
    record = parse_record(make_pair("long", "v1.mp4", "v0.mp4"), base_dir=scoring_media)
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), media=contract, max_length=60)
    unit = model.plan(record).units[0]
    with pytest.raises(TokenBudgetError, match=r"long: \d+ tokens \(\d+ vision\) exceed max_length 60"):
        model.encoder()(unit)
    model.config.on_overflow = "resample"
    enc = model.encoder()(unit)
    assert enc["input_ids"].shape[1] <= 60
    # The video was resampled to fewer frames, never truncated inside its span.
    assert int(enc["video_grid_thw"][0, 0]) * 2 < 8
    assert (enc["input_ids"] == model.backbone.config.video_token_id).sum() == \
        int(enc["video_grid_thw"].prod()) // 4


def test_scoring_with_another_contract_warns(tiny_checkpoint, tmp_path, caplog):
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(tmp_path / "c")
    other = MediaContract(video=VideoSampling(nframes=4))
    with caplog.at_level("WARNING"):
        model = RewardModel.from_pretrained(tmp_path / "c", media=other)
    assert model.contract.video.nframes == 4
    assert "differs from the one it was trained with" in caplog.text and "video.nframes: None -> 4" in caplog.text


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8, "dropout": 0.0}])
def test_saving_a_gathered_state_dict_writes_it_instead_of_the_live_weights(tiny_checkpoint, tmp_path, lora):
    # Under ZeRO-3 / FSDP the live parameters are shards; Trainer passes the gathered state dict instead.
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), lora=lora)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["head.fc2.bias"] += 1.0
    vision_key = next(k for k in state if ".visual." in k and k.endswith("weight"))
    state[vision_key] += 0.5
    model.save_pretrained(tmp_path / "g", state_dict=state)
    loaded = RewardModel.from_pretrained(tmp_path / "g")
    assert torch.allclose(loaded.head.fc2.bias, model.head.fc2.bias + 1.0)
    assert torch.allclose(loaded.state_dict()[vision_key], state[vision_key])
