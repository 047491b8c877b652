"""LLaVA-OneVision (the LLaVA-Critic architecture) through the family table: the tiny checkpoint and its converter
template, anyres tiles and pooled video frames, the tool template (string content, Hermes calls), and each stage on
it: padding invariance, yes-token scoring by hand, a BT smoke that learns, a judge episode with a tool call parsed
from the model's output, and a GRPO step through TRL.

Every test runs the real tiny checkpoint (`mmreward tiny --family llava_onevision`) on CPU.
"""

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from testkit import make_pair

from mmreward.agent.generate import hf_generate_fn, render
from mmreward.agent.protocol import chat_template_for, parse_tool_calls, render_tool_call, tool_template
from mmreward.data.collate import MediaContract, pad_batch
from mmreward.data.schema import parse_record
from mmreward.errors import DataError
from mmreward.models.backbone import family_of, load_processor, load_vlm, vision_tower
from mmreward.models.families import FAMILIES
from mmreward.models.reward_model import RewardModel
from mmreward.models.tiny import shipped_chat_template
from mmreward.models.yes_token import YesTokenScorer

FAMILY = "llava_onevision"
TOOLS_TEMPLATE = "llava_onevision_tools.jinja"


@pytest.fixture(scope="module")
def ov(tiny_checkpoint):
    return tiny_checkpoint(FAMILY)


def _encoded(scorer, records):
    enc = scorer.encoder()
    return [enc(u) for r in records for u in scorer.plan(r).units]


def _image(h, w, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


# --- the checkpoint ---------------------------------------------------------------------------------------------

def test_mmreward_tiny_builds_a_seeded_offline_checkpoint_with_the_converter_template(tmp_path):
    from safetensors.torch import load_file

    from mmreward.cli import main

    assert main(["tiny", "--family", FAMILY, "--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert main(["tiny", "--family", FAMILY, "--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The "-hf" key layout (what transformers writes and the llava-hf repositories hold).
    assert {"image_newline", "language_model.lm_head.weight", "multi_modal_projector.linear_2.weight"} <= a.keys()
    assert any(k.startswith("vision_tower.encoder.layers.") for k in a)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["model_type"] == FAMILY and config["vision_config"]["model_type"] == "siglip_vision_model"
    assert config["vision_feature_select_strategy"] == "full" and config["vision_aspect_ratio"] == "anyres_max_9"
    template = (tmp_path / "a" / "chat_template.jinja").read_text()
    assert template == shipped_chat_template("llava_onevision.jinja")
    # The converter's literal (transformers' convert_llava_onevision_weights_to_hf.py), newlines and all.
    assert template.startswith("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}")
    assert "{% generation %}{{ content['text'] }}{% endgeneration %}" in template


def test_images_are_anyres_tiles_and_video_frames_are_pooled_tiles(ov):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor, model = AutoProcessor.from_pretrained(ov), AutoModelForImageTextToText.from_pretrained(ov)
    tok = processor.tokenizer
    for token in ("<image>", "<video>", "<|im_start|>", "<tool_call>"):
        assert tok.tokenize(token) == [token], token
    assert (model.config.image_token_id, model.config.video_token_id) == (tok.convert_tokens_to_ids("<image>"),
                                                                          tok.convert_tokens_to_ids("<video>"))
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "image"},
                                             {"type": "text", "text": "Is it red?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # The converter's template, by hand: images first, then videos, then the text; no system turn.
    assert text == "<|im_start|>user\n<image>\n<video>\nIs it red?<|im_end|>\n<|im_start|>assistant\n"
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 255, (4, 3, 40, 40), dtype=np.uint8))
    inputs = processor(text=[text], images=[_image(60, 130)], videos=[frames], return_tensors="pt")
    # 60x130: the best grid covering it whole with the least waste is 84x168 (2x4 tiles of 42), so 8 tiles + the
    # base image. Tokens: the tiles give a 6x12 feature grid (3x3 patches each); the image is wider (130/60) than the
    # grid (12/6), so rows are cut to int(60 * 12 / 130) = 5, padding (6 - 5) // 2 = 0 keeps 6 rows: 6 * 12 = 72
    # features + 6 row newlines, plus the base tile's 9 = 87. A frame is 3x3 patches pooled to 2x2 (rounding up,
    # as 27x27 -> 14x14 does on the real model): 4 frames * 4 + 1 newline = 17.
    assert inputs["pixel_values"].shape == (1, 9, 3, 42, 42)
    assert inputs["pixel_values_videos"].shape == (1, 4, 3, 42, 42)
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 87
    assert int((inputs["input_ids"] == model.config.video_token_id).sum()) == 4 * 4 + 1
    # 168x168 takes the 4x4 grid (16 tiles): a 12x12 feature grid is more than anyres_max_9 allows (ratio
    # sqrt(144 / 81) = 1.33 > 1.1), so it is scaled to int(12 / 1.33) = 9 a side: 81 + 9 newlines + 9 base = 99.
    big = processor(text=["<image>"], images=[_image(168, 168)], return_tensors="pt")
    assert big["pixel_values"].shape[1] == 17 and int((big["input_ids"] == model.config.image_token_id).sum()) == 99
    with torch.no_grad():
        assert torch.isfinite(model(**big).logits).all()     # the model packs exactly 99 features
    with torch.no_grad():
        out = model(**inputs).logits
        altered = model(**dict(inputs, pixel_values=inputs["pixel_values"] + 1.0)).logits
    assert torch.isfinite(out).all() and not torch.allclose(out, altered)


def test_multi_image_rows_use_one_base_tile_per_image_and_pad_into_a_batch(ov, scoring_media):
    # Two images in one sequence: LLaVA-OneVision's multi-image mode (no anyres), 9 tokens + a newline each. A row
    # with one large image (anyres: several tiles) and a row with two images pad to a common tile count.
    model = RewardModel.build(ov).eval()
    two = parse_record(make_pair("two", "i0.png", "i1.png", shared="i2.png"), base_dir=scoring_media)
    encodings = _encoded(model, [two])
    assert all(int(e["batch_num_images"][0]) == 2 for e in encodings)
    assert all(int((e["input_ids"] == model.backbone.config.image_token_id).sum()) == 2 * (9 + 1) for e in encodings)
    one = parse_record(make_pair("one", "i0.png", "i1.png"), base_dir=scoring_media)
    singles = _encoded(model, [one])
    assert singles[0]["pixel_values"].shape[1] > 1      # anyres tiles of a single image
    with torch.no_grad():
        alone = model.forward_batch(encodings)
        together = model.forward_batch(encodings + singles)
    assert torch.allclose(alone, together[:2], atol=1e-5)


def test_media_contract_keeps_anyres_detail_and_fixes_the_frame_count(ov):
    processor = load_processor(ov)
    contract = MediaContract.from_processor(processor, FAMILIES[FAMILY].factor)
    # Images up to the largest grid (4x4 tiles of 42), one tile per frame, the processor's 4 frames per video.
    assert (contract.image_min_pixels, contract.image_max_pixels) == (42 * 42, 16 * 42 * 42)
    assert contract.video.nframes == 4 and contract.video.fps is None
    assert contract.video.max_pixels == 42 * 42
    assert MediaContract.from_processor(processor, 28, nframes=8).video.nframes == 8


def test_videos_with_different_frame_counts_cannot_share_a_batch():
    rows = [{"input_ids": torch.ones(1, 3, dtype=torch.long), "pixel_values_videos": torch.zeros(1, n, 3, 42, 42)}
            for n in (4, 6)]
    with pytest.raises(DataError, match=r"pixel_values_videos: rows with \[4, 6\] frames.*nframes"):
        pad_batch(rows, 0)


def test_vision_tower_is_the_siglip_encoder_and_projector(ov):
    model, _ = load_vlm(ov, device="cpu", freeze_vision=True, lora={"r": 2})
    inner = model.get_base_model().model
    tower = vision_tower(model)
    assert list(tower) == [inner.vision_tower, inner.multi_modal_projector]
    assert all(not p.requires_grad for p in tower.parameters())
    adapted = {n for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted and all("language_model" in n for n in adapted)
    assert {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"}
    assert family_of(model.config).tool_format == "hermes"


# --- the templates ----------------------------------------------------------------------------------------------

def _conversations():
    image, video = {"type": "image"}, {"type": "video"}

    def text(t):
        return {"type": "text", "text": t}

    return [
        [{"role": "user", "content": [text("Hello")]}],
        [{"role": "system", "content": [text("Be brief.")]}, {"role": "user", "content": [text("Hi")]},
         {"role": "assistant", "content": [text("Hello.")]}, {"role": "user", "content": [text("Again")]}],
        [{"role": "user", "content": [image, image, video, text("Compare "), text("these.")]},
         {"role": "assistant", "content": [text('<answer>{"overall": "A"}</answer>')]}],
    ]


@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_tool_template_equals_the_shipped_one_on_content_parts(ov, index, add_generation_prompt):
    from transformers import AutoProcessor

    shipped = AutoProcessor.from_pretrained(ov)
    messages = _conversations()[index]
    expected = shipped.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    ours = shipped.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                       chat_template=tool_template(TOOLS_TEMPLATE))
    assert ours == expected
    # The {% generation %} marks are kept: SFT's assistant-token masks are the shipped template's.
    if index == 1:
        kwargs = dict(tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        a = shipped.apply_chat_template(messages, **kwargs)
        b = shipped.apply_chat_template(messages, chat_template=tool_template(TOOLS_TEMPLATE), **kwargs)
        assert a["assistant_masks"] == b["assistant_masks"] and sum(a["assistant_masks"][0]) > 0


def test_tool_template_keeps_interleaved_text_beside_its_media(ov):
    # The shipped template moves every image of a message in front of all its text; ours keeps the order.
    from transformers import AutoProcessor

    messages = [{"role": "user", "content": [{"type": "text", "text": "t=0.0s"}, {"type": "image"},
                                             {"type": "text", "text": "t=1.0s"}, {"type": "image"}]}]
    shipped = AutoProcessor.from_pretrained(ov).apply_chat_template(messages, tokenize=False)
    assert shipped == "<|im_start|>user\n<image>\n<image>\nt=0.0st=1.0s<|im_end|>\n"
    ours = load_processor(ov).apply_chat_template(messages, tokenize=False)
    assert ours == "<|im_start|>user\nt=0.0s<image>\nt=1.0s<image>\n<|im_end|>\n"


def test_loaded_processor_renders_string_content_that_the_shipped_template_drops(ov):
    from transformers import AutoProcessor

    messages = [{"role": "system", "content": "Judge fairly."}, {"role": "user", "content": "Which?"},
                {"role": "assistant", "content": "Image 1 is better"}]
    shipped = AutoProcessor.from_pretrained(ov).apply_chat_template(messages, tokenize=False)
    assert shipped == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
    processor = load_processor(ov)
    assert processor.chat_template == tool_template(TOOLS_TEMPLATE)
    assert chat_template_for(processor, tools_in_use=True) == tool_template(TOOLS_TEMPLATE)
    assert processor.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nJudge fairly.<|im_end|>\n<|im_start|>user\nWhich?<|im_end|>\n"
        "<|im_start|>assistant\nImage 1 is better<|im_end|>\n")


def test_tool_template_is_prefix_preserving_and_shows_tool_images(ov):
    from mmreward.agent.protocol import format_tool_calls, tool_message
    from mmreward.agent.tools import tool_schemas

    processor = load_processor(ov)
    calls, _, _ = parse_tool_calls(render_tool_call("crop", {"box": [0, 0, 1, 1]}))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Judge."}]},
                {"role": "assistant", "content": "<think>zoom</think>", "tool_calls": format_tool_calls(calls)},
                tool_message("Here is the crop.", images=[object()]),
                {"role": "assistant", "content": '<think>ok</think><answer>{"overall": "A"}</answer>'}]
    tools = tool_schemas(["crop"])
    for i in (1, 3):
        before = render(processor, messages[:i], tools, add_generation_prompt=True)
        assert render(processor, messages[:i + 1], tools, add_generation_prompt=False).startswith(before)
    text = render(processor, messages, tools, add_generation_prompt=False)
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert ('<tool_call>\n{"name": "crop", "arguments": {"box": [0, 0, 1, 1]}}\n</tool_call><|im_end|>\n'
            "<|im_start|>user\n<tool_response>\n<image>\nHere is the crop.\n</tool_response><|im_end|>") in text


# --- the stages -------------------------------------------------------------------------------------------------

def test_right_padding_and_last_token_pooling_leave_rewards_unchanged(ov, scoring_media):
    model = RewardModel.build(ov, dimensions=["VQ", "overall"]).eval()
    short = parse_record(make_pair("t", {"text": "yes"}, {"text": "no it is not"}, shared="i0.png"),
                         base_dir=scoring_media)
    long = parse_record(make_pair("v", "v0.mp4", "v1.mp4"), base_dir=scoring_media)
    with torch.no_grad():
        alone = model.forward_batch(_encoded(model, [short]))
        together = model.forward_batch(_encoded(model, [short, long]))
    assert together.shape == (4, 2)
    assert torch.allclose(alone, together[:2], atol=1e-5)
    # The candidate's text is in the sequence (the shipped template would have dropped the string reply).
    text = model.processor.tokenizer.decode(_encoded(model, [short])[1]["input_ids"][0])
    assert text.endswith("<|im_start|>assistant\nno it is not<|im_end|>\n")


def test_yes_token_probability_by_hand_and_batch_invariant(ov, scoring_media):
    scorer = YesTokenScorer.from_vlm(ov, yes_words=["yes"], no_words=["no"]).eval()
    records = [parse_record(make_pair("p", "v0.mp4", "i0.png"), base_dir=scoring_media)]
    encodings = _encoded(scorer, records)
    with torch.no_grad():
        p_yes = scorer.forward_batch(encodings)[:, 0]
        singles = torch.cat([scorer.forward_batch([e]) for e in encodings])[:, 0]
        batch = pad_batch(encodings, scorer.processor.tokenizer.pad_token_id)
        logits = scorer.backbone(**batch).logits
    text = scorer.processor.tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert text.endswith("<|im_start|>assistant\n") and "<video>" in text
    last = batch["attention_mask"].sum(dim=1) - 1
    for row in range(2):
        answer = logits[row, last[row]]
        manual = torch.softmax(torch.stack([answer[scorer.yes_ids[0]], answer[scorer.no_ids[0]]]), dim=0)[0]
        assert torch.allclose(p_yes[row], manual, atol=1e-5)
    assert torch.allclose(p_yes, singles, atol=1e-5)


@pytest.mark.slow
def test_bt_smoke_learns_the_demo_task(tmp_path):
    from mmreward.demo import DemoSettings, run_demo

    report = run_demo(tmp_path, DemoSettings(family=FAMILY, n_images=80, n_videos=40, steps=40, batch_size=8,
                                             progress=False))
    assert report.test_pairs["image"] >= 10 and report.test_pairs["video"] >= 5
    assert report.accuracy_after["image"] >= 0.85 and report.accuracy_after["video"] >= 0.75


def test_judge_with_real_generation_parses_its_own_output(ov, scoring_media):
    # Real greedy generation with images in the conversation (random weights: any text), parsed without a crash.
    model, processor = load_vlm(ov, device="cpu")
    generate = hf_generate_fn(model, processor, max_new_tokens=6)
    image = {"type": "image"}
    conversations = [[{"role": "user", "content": [image, {"type": "text", "text": "Is it red?"}]}],
                     [{"role": "user", "content": [image, image, {"type": "text", "text": "Which is better?"}]}]]
    texts = generate(conversations, [[_image(50, 90)], [_image(42, 42, 1), _image(60, 40, 2)]])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    for text in texts:
        parse_tool_calls(text, "hermes")


# GRPO through TRL with a scripted policy (generation replaced, the rest real), Hermes calls in the completion: a text
# pair with the calculator (the family's template, tool format and rewards). Image and video pairs with tool images
# go through `train/grpo_anyres.py` and are tested in tests/train/test_grpo_llava_onevision.py.
_SCRIPT: dict = {}


def _script():
    def call(good):
        return "<think>look\n</think>\n\n" + render_tool_call(
            "calculator", {"expression": "2 + 3" if good else "__import__('os')"}, "hermes")

    def answer(thought, overall):
        return f"<think>{thought}\n</think>\n\n<answer>{json.dumps({'overall': overall})}</answer>"

    return {(0, 1): call(True), (0, 2): call(False), (0, 3): answer("seen", "B"), (1, 1): answer("quick", "A")}


def _scripted_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
    out = []
    for i, ids in enumerate(prompt_ids):
        turn = self._tokenizer.decode(ids).count("<|im_start|>assistant\n")
        text = _SCRIPT[(i % 2 if turn == 1 else 0, turn)] + "<|im_end|>"
        out.append(self._tokenizer.encode(text, add_special_tokens=False))
    return out, None


def test_grpo_step_reads_tool_episodes_with_hand_computed_rewards(ov, tmp_path, monkeypatch):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from mmreward.train.grpo import JudgeGRPOConfig, train

    class Capture(TrainerCallback):
        logs: dict = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.update(logs or {})

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", _scripted_turn)
    _SCRIPT.clear()
    _SCRIPT.update(_script())
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps(make_pair("txt", {"text": "a red circle"}, {"text": "a blue square"}, label="B"))
                    + "\n")
    names = ["verdict_accuracy", "dimension_accuracy", "strict_format", "tool_call_validity"]
    cfg = JudgeGRPOConfig(model=str(ov), train_data=str(data), output_dir=str(tmp_path / "o"), initial_frames=2,
                          workspace_frames=8, max_frames_per_call=2, per_device_train_batch_size=2,
                          num_generations=2, max_completion_length=512, max_steps=1, learning_rate=1e-2, lora_r=2,
                          activation_checkpointing=False, use_cpu=True, disable_tqdm=True, save_strategy="no",
                          logging_steps=1, seed=0, reward_fns=names, tools=["calculator"])
    capture = Capture()
    train(cfg, callbacks=[capture])
    logged = capture.logs
    # Episode 0: two calls (the second runs a forbidden expression: a failed call), the correct verdict; episode 1:
    # no call, the wrong verdict. Only "overall" is judged, so dimension accuracy is verdict accuracy.
    expected = {"verdict_accuracy": (1.0 + 0.0) / 2, "dimension_accuracy": (1.0 + 0.0) / 2, "strict_format": 1.0,
                "tool_call_validity": (0.5 + 0.0) / 2}
    assert {n: logged[f"rewards/{n}/mean"] for n in names} == pytest.approx(expected)
    assert logged["tools/call_frequency"] == pytest.approx(1.0) and logged["tools/failure_frequency"] == 0.5
    assert math.isfinite(logged["loss"])
