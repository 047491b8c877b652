"""Copy pretraining gives a random tiny model in-context copying (the induction task), and only touches its
language model."""

import torch
from safetensors.torch import load_file

from mmreward.models.tiny import make_tiny_vlm
from mmreward.models.tiny_pretrain import pretrain_copying


def test_a_random_tiny_model_learns_to_copy_and_keeps_its_vision_tower(tmp_path):
    path = make_tiny_vlm(tmp_path / "tiny", family="qwen2_5_vl", vocab_size=512)
    before = load_file(path / "model.safetensors")
    untrained = pretrain_copying(path, steps=1, seed=1)  # one step: still a random model
    stats = pretrain_copying(path, steps=250, seed=0)
    # Chance is 1 / (ordinary tokens) ~ 0.002; the copy is learned, not guessed.
    assert untrained["copy_accuracy"] < 0.05 and stats["copy_accuracy"] > 0.9
    after = load_file(path / "model.safetensors")
    vision = [k for k in before if "visual" in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert all(not torch.equal(before[k], after[k]) for k in ("model.embed_tokens.weight", "lm_head.weight"))
