"""Qwen3.5 (dense and MoE) and InternVL through the family table: hybrid layers, padding, cache, checkpointing,
LoRA targets, MoE gradients, InternVL's tiles and template, and for each family a BT smoke that learns, yes-token
scoring, a judge episode with a tool call in the model's own format (XML for Qwen3.5, Hermes JSON for InternVL),
and a GRPO step.

Every test runs the real tiny checkpoint (`mmreward tiny --family qwen3_5|qwen3_5_moe|internvl`) on CPU, where the
gated DeltaNet layers use transformers' PyTorch fallback (the `gpu` extra lists the fast kernels).
"""

import json
import math
import os

import pytest
import torch
from testkit import make_pair

from mmreward.agent.generate import hf_generate_fn, render, tokenize_trajectory
from mmreward.agent.protocol import parse_tool_calls, render_tool_call
from mmreward.data.collate import pad_batch
from mmreward.data.schema import parse_record
from mmreward.models.backbone import LoraSpec, apply_lora, family_of, load_vlm, vision_tower
from mmreward.models.families import FAMILIES, HYBRID_LORA_TARGETS
from mmreward.models.reward_model import RewardModel
from mmreward.models.yes_token import YesTokenScorer

QWEN3_5 = ["qwen3_5", "qwen3_5_moe"]
NEW = [*QWEN3_5, "internvl"]
# What each template writes after the assistant header of a generation prompt.
PREFILL = {"qwen3_5": "<think>\n", "qwen3_5_moe": "<think>\n", "internvl": "", "llava_onevision": ""}


def _encoded(scorer, records):
    enc = scorer.encoder()
    return [enc(u) for r in records for u in scorer.plan(r).units]


@pytest.mark.parametrize("family", NEW)
def test_mmreward_tiny_builds_seeded_offline_checkpoints(tmp_path, family):
    from safetensors.torch import load_file

    from mmreward.cli import main
    from mmreward.models.tiny import shipped_chat_template

    assert main(["tiny", "--family", family, "--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert main(["tiny", "--family", family, "--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["model_type"] == family
    template = (tmp_path / "a" / "chat_template.jinja").read_text()
    assert template == shipped_chat_template({"internvl": "internvl3.jinja"}.get(family, "qwen3_5_think.jinja"))


@pytest.mark.parametrize("family", QWEN3_5)
def test_tiny_checkpoint_is_hybrid_and_lora_reaches_the_linear_attention(tiny_checkpoint, family):
    model, processor = load_vlm(tiny_checkpoint(family), device="cpu")
    text = model.config.text_config
    assert text.layer_types == ["linear_attention", "full_attention"]   # tiny: 2 layers, one of each
    assert family_of(model.config).tool_format == "xml" and family_of(model.config).lora_targets == HYBRID_LORA_TARGETS
    if family == "qwen3_5_moe":
        assert (text.num_experts, text.num_experts_per_tok) == (4, 2)
    # No explicit targets: the family's (the default of LoraSpec and of the training configs).
    peft_model = apply_lora(model, LoraSpec(r=2), freeze_vision=True)
    adapted = {name.rsplit(".", 1)[0].split("language_model.")[-1] for name, _ in peft_model.named_parameters()
               if "lora_A" in name}
    layer0 = {n.split(".", 2)[2].rsplit(".lora_A", 1)[0] for n in adapted if n.startswith("layers.0.")}
    layer1 = {n.split(".", 2)[2].rsplit(".lora_A", 1)[0] for n in adapted if n.startswith("layers.1.")}
    # The DeltaNet projections carry adapters; its narrow per-head gates (in_proj_a / in_proj_b) do not.
    assert {"linear_attn.in_proj_qkv", "linear_attn.in_proj_z", "linear_attn.out_proj"} <= layer0
    assert not any("in_proj_a" in n or "in_proj_b" in n for n in adapted)
    assert {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"} <= layer1
    if family == "qwen3_5_moe":
        # The shared expert's MLP is adapted; the router and the fused experts (3-D parameters) are not.
        assert "mlp.shared_expert.gate_proj" in layer0 and not any(n.endswith("mlp.gate") for n in layer0)
    else:
        assert {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} <= layer0
    assert not any("visual" in n for n in adapted)
    assert all(not p.requires_grad for p in vision_tower(peft_model).parameters())


@pytest.mark.parametrize("family", NEW)
def test_right_padding_and_last_token_pooling_leave_rewards_unchanged(tiny_checkpoint, scoring_media, family):
    # A short text pair and a long video pair in one batch: the short rows are padded on the right, behind their
    # last token, so the causal DeltaNet recurrence and the full-attention layers see the same prefix.
    model = RewardModel.build(tiny_checkpoint(family), dimensions=["VQ", "overall"]).eval()
    short = parse_record(make_pair("t", {"text": "yes"}, {"text": "no it is not"}, shared="i0.png"),
                         base_dir=scoring_media)
    long = parse_record(make_pair("v", "v0.mp4", "v1.mp4"), base_dir=scoring_media)
    with torch.no_grad():
        alone = model.forward_batch(_encoded(model, [short]))
        together = model.forward_batch(_encoded(model, [short, long]))
    assert together.shape == (4, 2)
    assert torch.allclose(alone, together[:2], atol=1e-5)


@pytest.mark.parametrize("family", NEW)
def test_yes_token_probability_by_hand_and_batch_invariant(tiny_checkpoint, scoring_media, family):
    scorer = YesTokenScorer.from_vlm(tiny_checkpoint(family), yes_words=["yes"], no_words=["no"]).eval()
    records = [parse_record(make_pair("p", "v0.mp4", "i0.png"), base_dir=scoring_media)]
    encodings = _encoded(scorer, records)
    with torch.no_grad():
        p_yes = scorer.forward_batch(encodings)[:, 0]
        singles = torch.cat([scorer.forward_batch([e]) for e in encodings])[:, 0]
        batch = pad_batch(encodings, scorer.processor.tokenizer.pad_token_id)
        logits = scorer.backbone(**batch).logits
    # The question ends with the template's generation prompt, thinking prefill included.
    text = scorer.processor.tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert text.endswith("<|im_start|>assistant\n" + PREFILL[family])
    last = batch["attention_mask"].sum(dim=1) - 1
    for row in range(2):
        answer = logits[row, last[row]]
        manual = torch.softmax(torch.stack([answer[scorer.yes_ids[0]], answer[scorer.no_ids[0]]]), dim=0)[0]
        assert torch.allclose(p_yes[row], manual, atol=1e-5)
    assert torch.allclose(p_yes, singles, atol=1e-5)


@pytest.mark.parametrize("family", QWEN3_5)
def test_left_padded_cached_generation_matches_single_uncached_generation(tiny_checkpoint, family):
    # Generation pads on the left: the padded positions are zeroed before the DeltaNet layers, so a row's greedy
    # continuation does not depend on its neighbours, and the recurrent cache reproduces the uncached run.
    model, processor = load_vlm(tiny_checkpoint(family), device="cpu")
    model.eval()
    conversations = [[{"role": "user", "content": "Is it red? Answer yes or no."}],
                     [{"role": "user", "content": "Is the first video better than the second one, on the whole?"}]]
    batched = hf_generate_fn(model, processor, max_new_tokens=6)(conversations, [[], []])
    single = [hf_generate_fn(model, processor, max_new_tokens=6)([c], [[]])[0] for c in conversations]
    assert batched == single and all(t.startswith("<think>\n") for t in batched)
    text = render(processor, conversations[1], None, add_generation_prompt=True)
    inputs = processor(text=[text], return_tensors="pt")
    with torch.no_grad():
        cached = model.generate(**inputs, max_new_tokens=6, do_sample=False, use_cache=True)
        uncached = model.generate(**inputs, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("family", QWEN3_5)
def test_activation_checkpointing_gives_the_same_gradients(tiny_checkpoint, scoring_media, family):
    record = parse_record(make_pair("p", "i0.png", "i1.png"), base_dir=scoring_media)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = RewardModel.build(tiny_checkpoint(family), gradient_checkpointing=checkpointing).train()
        batch = pad_batch(_encoded(model, [record]), model.processor.tokenizer.pad_token_id)
        model(**batch).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-5) for n in grads[0])


def test_moe_every_trainable_parameter_gets_a_gradient(tiny_checkpoint, scoring_media):
    # DDP (without find_unused_parameters) needs a gradient for every trainable parameter on every rank. The
    # experts are fused 3-D parameters and the router always runs, so even experts no token was routed to
    # receive a (zero) gradient.
    model = RewardModel.build(tiny_checkpoint("qwen3_5_moe")).train()
    record = parse_record(make_pair("p", {"text": "a"}, {"text": "b"}), base_dir=scoring_media)
    batch = pad_batch(_encoded(model, [record]), model.processor.tokenizer.pad_token_id)
    model(**batch).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and "visual" not in n]
    assert missing == []
    experts = [p for n, p in model.named_parameters() if n.endswith("experts.gate_up_proj")]
    assert experts and all(p.grad.shape == p.shape for p in experts)


@pytest.mark.slow
@pytest.mark.parametrize("family", NEW)
def test_bt_smoke_learns_the_demo_task(tmp_path, family):
    from mmreward.demo import DemoSettings, run_demo

    report = run_demo(tmp_path, DemoSettings(family=family, n_images=80, n_videos=40, steps=40, batch_size=8,
                                             progress=False))
    assert report.test_pairs["image"] >= 10 and report.test_pairs["video"] >= 5
    # Held-out accuracy, clearly above chance for both kinds (measured: 1.00 / 1.00 for each family; 30-100 s each
    # on the shared 2-core machine, the DeltaNet layers on their PyTorch fallback).
    assert report.accuracy_after["image"] >= 0.85 and report.accuracy_after["video"] >= 0.75


@pytest.mark.parametrize("family", [*NEW, "llava_onevision"])
def test_judge_episode_runs_a_tool_call_in_the_family_format_and_trains_on_it(tiny_checkpoint, scoring_media,
                                                                              family):
    from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer

    model, processor = load_vlm(tiny_checkpoint(family), device="cpu")
    tool_format = FAMILIES[family].tool_format
    call = render_tool_call("select_frames", {"video": 1, "target_frames": [1, 2]}, tool_format)
    assert call.startswith("<tool_call>\n" + ("<function=select_frames>" if tool_format == "xml" else '{"name"'))
    turns = [f"<think>\nthe motion is unclear\n</think>\n\n{call}",
             '<think>\nB is smoother\n</think>\n\n<answer>{"VQ": "B", "MQ": "B", "TA": "tie", "overall": "B"}</answer>']
    seen = []

    def policy(conversations, images):
        seen.append(render(processor, conversations[0], None, add_generation_prompt=True))
        return [turns[len(seen) - 1]]

    judge = JudgeScorer(model, processor, JudgeConfig(backbone="tiny", initial_frames=2, workspace_frames=8,
                                                      max_frames_per_call=2), generate_fn=policy)
    record = parse_record(make_pair("v", "v0.mp4", "v1.mp4", label="B"), base_dir=scoring_media)
    traj = judge.run([record])[0]
    assert traj.tool_calls == 1 and traj.tool_failures == 0
    assert traj.verdict == {"VQ": "B", "MQ": "B", "TA": "tie", "overall": "B"} and len(traj.images) > 0
    if family == "llava_onevision":  # our template keeps frame timestamps beside their frames (the shipped one does not)
        assert "t=0.0s<image>\n" in seen[0]
    # The template shows the call back exactly as the model wrote it (Qwen3.5: inside the thinking turn; our
    # InternVL and LLaVA-OneVision tool templates: one line break before the call, as Qwen2.5's).
    shown = turns[0] if tool_format == "xml" else turns[0].replace("\n\n<tool_call>", "\n<tool_call>")
    assert f"<|im_start|>assistant\n{shown}<|im_end|>\n<|im_start|>user\n<tool_response>\n" in seen[1]
    # Tokenised for SFT / RFT: the loss covers the generated call, not the prefill or the tool response.
    tokenize_trajectory(traj, processor, None, family=FAMILIES[family])
    tok = processor.tokenizer
    learned = tok.decode([t for t, m in zip(traj.input_ids, traj.loss_mask) if m])
    assert "select_frames" in learned and "B is smoother" in learned
    assert "<tool_response>" not in learned and learned.startswith("<think>") == (PREFILL[family] == "")
    calls, errors, _ = parse_tool_calls(turns[0], tool_format)
    assert errors == [] and calls[0].arguments == {"video": 1, "target_frames": [1, 2]}


def test_judge_with_real_generation_ends_without_a_crash(tiny_checkpoint, scoring_media):
    from mmreward.agent.judge_scorer import JudgeScorer

    judge = JudgeScorer.from_vlm(tiny_checkpoint("qwen3_5"), initial_frames=2, max_new_tokens=8, max_turns=1)
    traj = judge.run([parse_record(make_pair("i", "i0.png", "i1.png"), base_dir=scoring_media)])[0]
    assert traj.finish_reason in ("answer", "max_turns") and traj.turns == 1
    # The generated turn is whole: the template's <think>\n prefill is in front of the sampled text.
    first = next(m for m in traj.messages if m["role"] == "assistant")
    assert first["content"].startswith("<think>") or first.get("tool_calls")


# GRPO through TRL, with a scripted policy in the family's own format (generation replaced, the rest real). The
# completion continues the generation prompt, so it omits the template's prefill (Qwen3.5: "<think>\n").
def _script(family, tool):
    fmt, prefill = FAMILIES[family].tool_format, PREFILL[family]
    think = "" if prefill else "<think>"

    def call(good):
        arguments = ({"video": 1, "target_frames": [1, 2] if good else [99]} if tool == "select_frames" else
                     {"expression": "2 + 3" if good else "__import__('os')"})
        return f"{think}look\n</think>\n\n" + render_tool_call(tool, arguments, fmt)

    def answer(thought, overall):
        verdict = {"overall": overall} if tool == "calculator" else {"VQ": "B", "MQ": "B", "TA": "B", "overall": overall}
        return f"{think}{thought}\n</think>\n\n<answer>{json.dumps(verdict)}</answer>"

    return {(0, 1): call(True), (0, 2): call(False), (0, 3): answer("seen", "B"), (1, 1): answer("quick", "A")}


# The current test's script, read by the patched generation step.
_SCRIPT: dict = {}


def _scripted_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
    out = []
    for i, ids in enumerate(prompt_ids):
        turn = self._tokenizer.decode(ids).count("<|im_start|>assistant\n")
        text = _SCRIPT[(i % 2 if turn == 1 else 0, turn)] + "<|im_end|>"
        out.append(self._tokenizer.encode(text, add_special_tokens=False))
    return out, None


@pytest.mark.parametrize("family", NEW)
def test_grpo_step_reads_tool_episodes_with_hand_computed_rewards(family, tiny_checkpoint, scoring_media,
                                                                  tmp_path, monkeypatch):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from mmreward.train.grpo import JudgeGRPOConfig, train

    class Capture(TrainerCallback):
        logs: dict = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.update(logs or {})

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", _scripted_turn)
    # Every family judges a video pair with select_frames (frames in the prompt and in the tool reply); InternVL's
    # tiled images go through `train.grpo_tiles.TiledImagesGRPOTrainer`, chosen by `grpo.trainer_class`.
    tool = "select_frames"
    _SCRIPT.clear()
    _SCRIPT.update(_script(family, tool))
    data = tmp_path / "pairs.jsonl"
    record = make_pair("vid", str(scoring_media / "v0.mp4"), str(scoring_media / "v1.mp4"), label="B",
                       dimensions={"VQ": "B"})
    data.write_text(json.dumps(record) + "\n")
    names = ["verdict_accuracy", "dimension_accuracy", "strict_format", "tool_call_validity"]
    cfg = JudgeGRPOConfig(model=str(tiny_checkpoint(family)), train_data=str(data), output_dir=str(tmp_path / "o"),
                          initial_frames=2, workspace_frames=8, max_frames_per_call=2, image_max_pixels=64 * 64,
                          tool_max_pixels=64 * 64, per_device_train_batch_size=2, num_generations=2,
                          max_completion_length=512, max_steps=1, learning_rate=1e-2, lora_r=2,
                          activation_checkpointing=False, use_cpu=True, disable_tqdm=True, save_strategy="no",
                          logging_steps=1, seed=0, reward_fns=names, tools=[tool])
    capture = Capture()
    train(cfg, callbacks=[capture])
    logged = capture.logs
    # Episode 0: 2 calls (the second asks for frame 99 / runs a forbidden expression: a failed call), correct
    # verdict; episode 1: no call, wrong verdict. strict_format sees each turn whole (Qwen3.5: the <think>\n prefill put back in front).
    expected = {"verdict_accuracy": (1.0 + 0.0) / 2, "dimension_accuracy": (1.0 + 0.5) / 2,
                "strict_format": 1.0, "tool_call_validity": (0.5 + 0.0) / 2}
    assert {n: logged[f"rewards/{n}/mean"] for n in names} == pytest.approx(expected)
    assert logged["tools/call_frequency"] == pytest.approx(1.0) and logged["tools/failure_frequency"] == 0.5
    assert math.isfinite(logged["loss"])


# --- InternVL: tiles, its template, the tool template -----------------------------------------------------------

def test_internvl_checkpoint_tiles_images_and_frames(tiny_checkpoint):
    import numpy as np
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmreward.models.tiny import shipped_chat_template

    path = tiny_checkpoint("internvl")
    assert (path / "chat_template.jinja").read_text() == shipped_chat_template("internvl3.jinja")
    processor, model = AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)
    tok = processor.tokenizer
    for token in ("<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<|im_start|>", "<tool_call>"):
        assert tok.tokenize(token) == [token], token
    assert (tok.start_image_token, tok.context_image_token) == ("<img>", "<IMG_CONTEXT>")
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "video"},
                                             {"type": "text", "text": "Is it red?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # The converter's template, by hand: no system turn, an image is <IMG_CONTEXT> and a video <video>, one per line.
    assert text == "<|im_start|>user\n<IMG_CONTEXT>\n<video>\nIs it red?<|im_end|>\n<|im_start|>assistant\n"
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 112, 3), dtype=np.uint8))
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 255, (3, 3, 40, 40), dtype=np.uint8))
    inputs = processor(text=[text], images=[image], videos=[frames], return_tensors="pt",
                       videos_kwargs={"do_sample_frames": False})
    # A 56x112 image is 2 tiles of 56 plus the thumbnail; 3 frames are 3 tiles; each tile is 4 tokens (4x4 patches
    # of 14, pixel-shuffled by 0.5 in each direction).
    assert inputs["pixel_values"].shape == (3 + 3, 3, 56, 56)
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 4 * (3 + 3)
    assert "Frame3: <img>" in tok.decode(inputs["input_ids"][0])
    with torch.no_grad():
        out = model(**inputs).logits
        altered = model(**dict(inputs, pixel_values=inputs["pixel_values"] + 1.0)).logits
    assert torch.isfinite(out).all() and not torch.allclose(out, altered)


def test_internvl_vision_tower_is_the_encoder_and_projector(tiny_checkpoint):
    model, _ = load_vlm(tiny_checkpoint("internvl"), device="cpu", freeze_vision=True, lora={"r": 2})
    inner = model.get_base_model().model
    tower = vision_tower(model)
    assert list(tower) == [inner.vision_tower, inner.multi_modal_projector]
    assert all(not p.requires_grad for p in tower.parameters())
    adapted = {n for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted and all("language_model" in n for n in adapted)


def _internvl_conversations():
    image, video = {"type": "image"}, {"type": "video"}
    return [
        [{"role": "user", "content": "Hello"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again"}],
        [{"role": "user", "content": [image, video, {"type": "text", "text": "Compare."}]},
         {"role": "assistant", "content": [{"type": "text", "text": '<answer>{"overall": "A"}</answer>'}]}],
    ]


@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_internvl_tool_template_equals_the_shipped_one_without_tools(tiny_checkpoint, index, add_generation_prompt):
    from transformers import AutoProcessor

    from mmreward.agent.protocol import chat_template_for, tool_template

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("internvl"))
    assert chat_template_for(processor, tools_in_use=True) == tool_template("internvl_tools.jinja")
    messages = _internvl_conversations()[index]
    shipped = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    ours = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         chat_template=tool_template("internvl_tools.jinja"))
    assert ours == shipped


def test_internvl_tool_template_is_prefix_preserving_and_shows_tool_images(tiny_checkpoint):
    from transformers import AutoProcessor

    from mmreward.agent.protocol import format_tool_calls, tool_message
    from mmreward.agent.tools import tool_schemas

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("internvl"))
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
            "<|im_start|>user\n<tool_response>\n<IMG_CONTEXT>\nHere is the crop.\n</tool_response><|im_end|>") in text
