"""The tiny offline checkpoints load and run like the real Qwen-VL families."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmreward.models.tiny import (
    FAMILIES,
    SPECIAL_TOKENS,
    TEXT_ADDED_TOKENS,
    make_tiny_vlm,
    shipped_chat_template,
)

# The Qwen-style families (pixel budgets, grid_thw); InternVL's tiles are tested in test_families.py.
ALL = sorted(f for f in FAMILIES if FAMILIES[f].media_kind == "qwen")
PATCH = {"qwen2_vl": 14, "qwen2_5_vl": 14, "qwen3_vl": 16, "qwen3_5": 16, "qwen3_5_moe": 16}
# What the shipped template writes after the assistant header of a generation prompt (Qwen3.5 thinks first).
PREFILL = {"qwen3_5": "<think>\n", "qwen3_5_moe": "<think>\n"}


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    cache = {}

    def get(family):
        if family not in cache:
            path = tiny_checkpoint(family)
            cache[family] = (AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path))
        return cache[family]

    return get


def _image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8))


def _video(n=4):
    return torch.from_numpy(np.random.default_rng(1).integers(0, 255, (n, 3, 64, 96), dtype=np.uint8))


@pytest.mark.parametrize("family", ALL)
def test_checkpoint_files_and_config(tiny_checkpoint, family):
    path = tiny_checkpoint(family)
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "processor_config.json", "chat_template.jinja"):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == family
    # Chat template byte-identical to the one TRL ships for the family (Qwen2-VL ships the Qwen2.5-VL one).
    assert (path / "chat_template.jinja").read_text() == shipped_chat_template(FAMILIES[family].chat_template)


@pytest.mark.parametrize("family", ALL)
def test_processor_patch_size_and_special_tokens(loaded, family):
    processor, model = loaded(family)
    expected_patch = PATCH[family]
    assert processor.image_processor.patch_size == expected_patch
    assert processor.video_processor.patch_size == expected_patch
    assert model.config.vision_config.patch_size == expected_patch
    tok = processor.tokenizer
    for token in SPECIAL_TOKENS + TEXT_ADDED_TOKENS:
        assert tok.tokenize(token) == [token], token
    # The ids the model looks for are the ids the processor writes.
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    for word in ("yes", "no", "A", "B", " yes", " no", " A", " B"):
        assert len(tok.encode(word, add_special_tokens=False)) == 1, word
    assert tok.decode(tok.encode("Is the first video better? yes")) == "Is the first video better? yes"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


@pytest.mark.parametrize("family", ALL)
def test_forward_on_image_video_and_generate(loaded, family):
    processor, model = loaded(family)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "video"},
                                             {"type": "text", "text": "Answer yes or no."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n" + PREFILL.get(family, ""))
    inputs = processor(text=[text], images=[_image()], videos=[_video()], return_tensors="pt",
                       videos_kwargs={"do_sample_frames": False, "fps": 2.0})
    ids = inputs["input_ids"][0]
    grid = inputs["image_grid_thw"][0]
    # One placeholder token per merged 2x2 patch block.
    assert int((ids == model.config.image_token_id).sum()) == int(grid.prod()) // 4
    vgrid = inputs["video_grid_thw"][0]
    assert int((ids == model.config.video_token_id).sum()) == int(vgrid.prod()) // 4
    with torch.no_grad():
        out = model(**inputs)
        assert out.logits.shape == (1, ids.numel(), len(processor.tokenizer))
        assert torch.isfinite(out.logits).all()
        # The vision inputs really reach the model: changing the pixels changes the logits.
        altered = dict(inputs, pixel_values=inputs["pixel_values"] + 1.0)
        assert not torch.allclose(model(**altered).logits, out.logits)
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids.numel()


def test_qwen3_template_renders_tools(loaded):
    processor, _ = loaded("qwen3_vl")
    tool = {"type": "function", "function": {"name": "calculator", "description": "math",
                                             "parameters": {"type": "object", "properties": {}}}}
    text = processor.apply_chat_template([{"role": "user", "content": "2+2?"}], tools=[tool], tokenize=False,
                                         add_generation_prompt=True)
    assert "<tools>" in text and '"name": "calculator"' in text


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a = load_file(make_tiny_vlm(tmp_path / "a", "qwen2_5_vl", seed=3) / "model.safetensors")
    b = load_file(make_tiny_vlm(tmp_path / "b", "qwen2_5_vl", seed=3) / "model.safetensors")
    c = load_file(make_tiny_vlm(tmp_path / "c", "qwen2_5_vl", seed=4) / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_tied_embeddings_share_the_head_and_survive_a_save(tmp_path, family):
    def shared(model):
        return model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()

    untied = AutoModelForImageTextToText.from_pretrained(make_tiny_vlm(tmp_path / "u", family))
    tied = AutoModelForImageTextToText.from_pretrained(make_tiny_vlm(tmp_path / "t", family, tie_embeddings=True))
    assert not shared(untied) and shared(tied)
    # A training step moves the one shared matrix, and a saved copy loads tied again.
    with torch.no_grad():
        tied.get_input_embeddings().weight[5] += 1.0
    assert torch.equal(tied.get_output_embeddings().weight[5], tied.get_input_embeddings().weight[5])
    tied.save_pretrained(tmp_path / "saved")
    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "saved")
    assert shared(again) and torch.equal(again.get_output_embeddings().weight, tied.get_input_embeddings().weight)


def test_unknown_family_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown family 'llava'; choose one of"):
        make_tiny_vlm(tmp_path, "llava")
