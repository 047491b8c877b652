"""Importers of published reward models: tiny checkpoints written in each published layout (random weights,
offline) load through our scorers and give the rewards of a step-by-step replica of the published forward.

The replicas below are written from the published code (VideoAlign's `Qwen2VLRewardModelBT.forward` and
`inference.py`; Skywork-VL-Reward's model card: TRL's value head read at `attention_mask.sum() - 1`), not from
the importers: LoRA is applied as peft applies it at run time (a hook adding s·B·A·x), not merged.
"""

import hashlib
import json

import pytest
import torch

from mmreward.data.media import VideoSampling, load_video
from mmreward.data.schema import parse_record
from mmreward.errors import CheckpointError
from mmreward.prompts import HEAD_TEMPLATES, render

TOKENS = ["<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>"]
FRAME_PIXELS = 56 * 56
NORM = {"VQ_mean": 0.5, "VQ_std": 2.0, "MQ_mean": -1.0, "MQ_std": 0.5, "TA_mean": 0.0, "TA_std": 4.0}


def _old_name(key: str) -> str:
    """transformers-5 Qwen2-VL key -> the 4.45 name VideoAlign's checkpoints use."""
    return key.replace("model.language_model.", "model.", 1).replace("model.visual.", "visual.", 1)


def write_videoalign(out, base, *, lora_r=4, lora_alpha=8, embed=True, seed=1):
    """A VideoAlign training output in the published layout: model_config.json + checkpoint-N/ (LoRA)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForImageTextToText, AutoProcessor

    gen = torch.Generator().manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    vocab = len(AutoProcessor.from_pretrained(base).tokenizer) + len(TOKENS)
    hidden = model.config.text_config.hidden_size
    live = model.state_dict()
    prefix = "base_model.model."
    non_lora = {prefix + "rm_head.weight": torch.randn(3, hidden, generator=gen)}
    merger = "model.visual.merger.mlp.0.weight"
    non_lora[prefix + _old_name(merger)] = live[merger] + 0.1 * torch.randn(live[merger].shape, generator=gen)
    if embed:
        non_lora[prefix + "model.embed_tokens.weight"] = torch.randn(vocab, hidden, generator=gen)
    adapter, lora = {}, {}
    for key, weight in live.items():
        if key.endswith(("self_attn.q_proj.weight", "self_attn.v_proj.weight", "mlp.down_proj.weight")) \
                and "language_model" in key:
            module = _old_name(key)[: -len(".weight")]
            a = torch.randn(lora_r, weight.shape[1], generator=gen) * 0.3
            b = torch.randn(weight.shape[0], lora_r, generator=gen) * 0.3
            adapter[f"{prefix}{module}.lora_A.weight"], adapter[f"{prefix}{module}.lora_B.weight"] = a, b
            lora[key[: -len(".weight")]] = (a, b)
    ckpt = out / "checkpoint-12"
    ckpt.mkdir(parents=True)
    (out / "checkpoint-3").mkdir()  # an older step without weights: not a candidate
    save_file(adapter, ckpt / "adapter_model.safetensors")
    torch.save(non_lora, ckpt / "non_lora_state_dict.pth")
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": lora_r, "lora_alpha": lora_alpha,
                                                          "peft_type": "LORA"}))
    config = {
        "data_config": {"fps": 2.0, "num_frames": None, "max_frame_pixels": FRAME_PIXELS, "sample_type": "uniform",
                        "eval_dim": ["VQ", "MQ", "TA"], "prompt_template_type": "detailed_special"},
        "training_args": {},
        "model_config": {"model_name_or_path": str(base), "output_dim": 3, "use_special_tokens": True,
                         "reward_token": "special"},
        "peft_lora_config": {"lora_enable": True, "lora_r": lora_r, "lora_alpha": lora_alpha},
        "inference_config": NORM,
    }
    (out / "model_config.json").write_text(json.dumps(config))
    return {"non_lora": {k[len(prefix):]: v for k, v in non_lora.items()}, "lora": lora,
            "scale": lora_alpha / lora_r}


def videoalign_replica(base, weights, videos, prompts):
    """VideoAlign's inference, step by step: processor + 3 tokens, weights, `Qwen2VLRewardModelBT.forward`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(base)
    processor.tokenizer.padding_side = "right"
    processor.tokenizer.add_special_tokens({"additional_special_tokens": TOKENS})
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32).eval()
    model.resize_token_embeddings(len(processor.tokenizer))
    state = model.state_dict()
    with torch.no_grad():
        for key, value in weights["non_lora"].items():
            if key == "rm_head.weight":
                continue
            new = "model.language_model." + key[6:] if key.startswith("model.") else "model." + key
            state[new].copy_(value)
    modules = dict(model.named_modules())
    for name, (a, b) in weights["lora"].items():  # peft at run time: y = W x + s * B (A x)
        modules[name].register_forward_hook(
            lambda mod, inp, out, a=a, b=b: out + weights["scale"] * (inp[0] @ a.T) @ b.T)
    sampling = VideoSampling(fps=2.0, min_pixels=FRAME_PIXELS, max_pixels=FRAME_PIXELS,
                             total_pixels=FRAME_PIXELS * 768, timing="index")
    frames = [load_video(str(v), sampling=sampling).frames for v in videos]
    chats = [[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": render(
        HEAD_TEMPLATES["videoalign_detailed_special"], prompt=p)}]}] for p in prompts]
    text = processor.apply_chat_template(chats, tokenize=False, add_generation_prompt=True)
    batch = processor(text=text, videos=frames, padding=True, return_tensors="pt", videos_kwargs={
        "do_sample_frames": False, "size": {"shortest_edge": FRAME_PIXELS, "longest_edge": FRAME_PIXELS}})
    ids = batch["input_ids"]
    with torch.no_grad():
        embeds = model.model.language_model.embed_tokens(ids)
        video = model.model.visual(batch["pixel_values_videos"], grid_thw=batch["video_grid_thw"]).pooler_output
        mask = (ids == model.config.video_token_id).unsqueeze(-1).expand_as(embeds)
        embeds = embeds.masked_scatter(mask, video)
        # position_ids=None: the text model's own 0..T-1 positions, as in the published forward.
        hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state
        logits = hidden @ weights["non_lora"]["rm_head.weight"].T  # rm_head: Linear(H, 3, bias=False)
        special = torch.zeros_like(ids, dtype=torch.bool)
        for tid in processor.tokenizer.convert_tokens_to_ids(TOKENS):
            special |= ids == tid
        rewards = logits[special].view(ids.shape[0], 3, -1).diagonal(dim1=1, dim2=2)
    out = []
    for r in rewards.tolist():
        row = {d: (v - NORM[f"{d}_mean"]) / NORM[f"{d}_std"] for d, v in zip(("VQ", "MQ", "TA"), r)}
        row["Overall"] = row["VQ"] + row["MQ"] + row["TA"]
        out.append(row)
    return out


@pytest.fixture(scope="module")
def videoalign_folder(tiny_checkpoint, tmp_path_factory):
    base = tiny_checkpoint("qwen2_vl")
    folder = tmp_path_factory.mktemp("VideoReward")
    return folder, base, write_videoalign(folder, base)


def _video_records(media, names):
    prompts = ["a red square moving right", "a blue circle"]
    rows = [{"id": f"r{i}", "prompt": prompts[i % 2], "media": [{"type": "video", "path": n}], "scores": {}}
            for i, n in enumerate(names)]
    return [parse_record(r, base_dir=media) for r in rows], [prompts[i % 2] for i in range(len(names))]


def test_videoalign_template_is_the_published_text():
    # sha256 of upstream build_prompt("PROMPT", ["VQ", "MQ", "TA"], "detailed_special" / "detailed")
    special = render(HEAD_TEMPLATES["videoalign_detailed_special"], prompt="PROMPT")
    plain = render(HEAD_TEMPLATES["videoalign_detailed"], prompt="PROMPT")
    assert hashlib.sha256(special.encode()).hexdigest() == \
        "f5115bcec89d22a39f9f4ba48532cd0e8eeec40d8d25e235c9ed49e1f2179d04"
    assert hashlib.sha256(plain.encode()).hexdigest() == \
        "a8c941306370e8d468391f9ad272a119e82230bbbb57a8fb826ce8827b2eef64"


def test_videoalign_rewards_equal_the_published_forward(videoalign_folder, scoring_media):
    from mmreward.models.importers import detect_published
    from mmreward.models.importers.videoalign import VideoAlignRewardModel

    folder, base, weights = videoalign_folder
    assert detect_published(folder) == "videoalign"
    scorer = VideoAlignRewardModel.from_source(folder).eval()
    assert scorer.dimensions == ["VQ", "MQ", "TA"] and scorer.config.source.endswith("checkpoint-12")
    records, prompts = _video_records(scoring_media, ["v0.mp4", "v2.mp4"])
    results = scorer.score(records, batch_size=2, progress=False)  # one padded batch of two lengths
    expected = videoalign_replica(base, weights, [scoring_media / "v0.mp4", scoring_media / "v2.mp4"], prompts)
    for result, want in zip(results, expected):
        for dim in ("VQ", "MQ", "TA"):
            assert result.scores[dim] == pytest.approx(want[dim], abs=2e-4)
        assert result.score == pytest.approx(want["Overall"], abs=5e-4)
    # The rewards depend on what the weights hold: the two videos differ, and M-RoPE positions change them.
    assert abs(results[0].score - results[1].score) > 1e-3
    mrope = VideoAlignRewardModel.from_source(folder, position_ids="mrope").eval()
    other = mrope.score(records[:1], progress=False)[0]
    assert abs(other.scores["VQ"] - results[0].scores["VQ"]) > 1e-4


def test_videoalign_missing_token_rows_and_bad_keys_are_checkpoint_errors(tiny_checkpoint, tmp_path):
    from mmreward.models.importers.videoalign import VideoAlignRewardModel

    base = tiny_checkpoint("qwen2_vl")
    write_videoalign(tmp_path / "no_rows", base, embed=False)
    with pytest.raises(CheckpointError, match="reward tokens got new embedding rows"):
        VideoAlignRewardModel.from_source(tmp_path / "no_rows")
    write_videoalign(tmp_path / "bad", base)
    state = torch.load(tmp_path / "bad" / "checkpoint-12" / "non_lora_state_dict.pth")
    state["base_model.model.model.layers.9.mlp.up_proj.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "bad" / "checkpoint-12" / "non_lora_state_dict.pth")
    with pytest.raises(CheckpointError, match=r"'model.layers.9.mlp.up_proj.weight' does not fit"):
        VideoAlignRewardModel.from_source(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="no checkpoint-7; available steps: \\[12\\]"):
        VideoAlignRewardModel.from_source(tmp_path / "bad", step=7)
    with pytest.raises(CheckpointError, match="base model cannot be loaded"):
        VideoAlignRewardModel.from_source(tmp_path / "bad", base=tmp_path / "nowhere")


def write_skywork(out, base, seed=2):
    """Skywork-VL-Reward's published layout: the model folder + TRL's value_head.safetensors."""
    import shutil

    from safetensors.torch import save_file
    from transformers import AutoConfig

    shutil.copytree(base, out)
    hidden = AutoConfig.from_pretrained(base).text_config.hidden_size
    gen = torch.Generator().manual_seed(seed)
    head = {"v_head.summary.weight": torch.randn(1, hidden, generator=gen),
            "v_head.summary.bias": torch.randn(1, generator=gen)}
    save_file(head, out / "value_head.safetensors")
    return head


def skywork_replica(folder, head, image, question, responses):
    """The model card's scoring: chat template without generation prompt, value head at attention_mask.sum()-1."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.padding_side = "right"
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    chats = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
              {"role": "assistant", "content": r}] for r in responses]
    text = processor.apply_chat_template(chats, tokenize=False, add_generation_prompt=False)
    picture = Image.open(image).convert("RGB")
    batch = processor(text=text, images=[picture] * len(responses), padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True, use_cache=False)
        # TRL's AutoModelForCausalLMWithValueHead reads hidden_states[-1] (the final, normed states).
        assert torch.allclose(out.hidden_states[-1], model.model(**batch).last_hidden_state, atol=1e-5)
        values = out.hidden_states[-1] @ head["v_head.summary.weight"].T + head["v_head.summary.bias"]
        last = batch["attention_mask"].sum(dim=-1, keepdim=True) - 1
        return values.squeeze(-1).gather(-1, last).squeeze(-1).tolist()


def test_skywork_vl_rewards_equal_the_model_card_forward(tiny_checkpoint, tmp_path):
    import numpy as np
    from PIL import Image

    from mmreward.models.importers import detect_published
    from mmreward.models.importers.skywork import SkyworkVLReward
    from mmreward.models.reward_model import RewardModel

    folder = tmp_path / "Skywork-VL-Reward-tiny"
    head = write_skywork(folder, tiny_checkpoint("qwen2_5_vl"))
    # A size that is already a multiple of 28 inside the budget: both paths feed the same pixels.
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8)).save(tmp_path / "chart.png")
    question, answers = "Is Purple the highest value?", ["The answer is: B", "No, it is red and the highest"]
    record = parse_record({"id": "p", "prompt": question, "media": [{"type": "image", "path": "chart.png"}],
                           "a": {"text": answers[0]}, "b": {"text": answers[1]}, "label": "A"}, base_dir=tmp_path)
    assert detect_published(folder) == "skywork_vl"
    scorer = SkyworkVLReward.from_source(folder).eval()
    assert isinstance(scorer, RewardModel) and scorer.kind == "head" and scorer.config.pooling == "last"
    result = scorer.score([record], progress=False)[0]
    want = skywork_replica(folder, head, tmp_path / "chart.png", question, answers)
    assert [result.score_a, result.score_b] == pytest.approx(want, abs=1e-4)
    assert abs(want[0] - want[1]) > 1e-3


def test_skywork_vl_without_value_head_is_a_checkpoint_error(tiny_checkpoint, tmp_path):
    from safetensors.torch import save_file

    from mmreward.models.importers import detect_published
    from mmreward.models.importers.skywork import SkyworkVLReward

    assert detect_published(tiny_checkpoint("qwen2_5_vl")) is None  # a plain VLM stays a plain VLM
    with pytest.raises(CheckpointError, match="no value_head.safetensors"):
        SkyworkVLReward.from_source(tiny_checkpoint("qwen2_5_vl"))
    folder = tmp_path / "wrong"
    write_skywork(folder, tiny_checkpoint("qwen2_5_vl"))
    save_file({"v_head.summary.weight": torch.zeros(1, 7)}, folder / "value_head.safetensors")
    with pytest.raises(CheckpointError, match=r"expected v_head.summary.weight \(1, 64\)"):
        SkyworkVLReward.from_source(folder)


def test_load_scorer_detects_published_layouts_and_saved_imports_reload(videoalign_folder, scoring_media, tmp_path):
    from mmreward.models.importers.videoalign import VideoAlignRewardModel
    from mmreward.scoring import SCORERS, load_scorer, trainable_kinds

    folder, _, _ = videoalign_folder
    assert {"videoalign", "skywork_vl"} <= set(SCORERS) and "videoalign" not in trainable_kinds()
    auto = load_scorer(folder)
    assert isinstance(auto, VideoAlignRewardModel) and auto.kind == "videoalign"
    forced = load_scorer(folder, kind="videoalign", normalize=False)
    assert forced.config.normalization is None
    records, _ = _video_records(scoring_media, ["v1.mp4"])
    before = auto.score(records, progress=False)[0]
    raw = forced.score(records, progress=False)[0]
    # Normalisation is (r - mean) / std per dimension, as VideoAlign's _norm.
    assert before.scores["MQ"] == pytest.approx((raw.scores["MQ"] - NORM["MQ_mean"]) / NORM["MQ_std"], abs=1e-5)
    auto.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "mmreward_config.json").read_text())
    assert config["scorer"] == "videoalign" and config["position_ids"] == "sequential"
    reloaded = load_scorer(tmp_path / "saved")
    assert isinstance(reloaded, VideoAlignRewardModel)
    after = reloaded.score(records, progress=False)[0]
    assert after.scores == pytest.approx(before.scores, abs=1e-6)


def _vlrb_mirror(root):
    """A VL-RewardBench JSON mirror (data.json + images/) of three items."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    rows = []
    for i, (source, ranking) in enumerate([("VLFeedback", [0, 1]), ("POVID_preference_data_for_VLLMs", [1, 0]),
                                           ("wildvision-battle", [0, 1])]):
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        rows.append({"id": f"item-{i}", "query": "What is shown?", "response": [f"a cat {i}", "a dog on a mat"],
                     "image": f"images/{i}.png", "human_ranking": ranking, "models": ["a", "b"], "judge": "human",
                     "rationale": "", "query_source": source, "ground_truth": ""})
    (root / "data.json").write_text(json.dumps(rows))
    return root / "data.json"


def test_eval_runs_on_imported_models(videoalign_folder, tiny_checkpoint, scoring_media, tmp_path):
    import csv
    import shutil

    from mmreward.cli import main

    folder, _, _ = videoalign_folder
    bench = tmp_path / "videogen"
    (bench / "videos").mkdir(parents=True)
    for i in range(2):
        shutil.copy(scoring_media / f"v{i}.mp4", bench / "videos" / f"v{i}.mp4")
    with open(bench / "videogen-rewardbench.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall", "fps_A",
                         "num_frames_A", "fps_B", "num_frames_B"])
        for label in ("A", "B", "same"):
            writer.writerow(["videos/v0.mp4", "videos/v1.mp4", "m1", "m2", "a red square", label, label, label,
                             label, 10, 20, 10, 30])
    out = tmp_path / "ev_videoalign"
    assert main(["eval", "--benchmark", "videogen_rewardbench", "--data", str(bench), "--model", str(folder),
                 "--out", str(out), "--no-progress", "--no-report"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["scorer"] == "videoalign" and results["items"] == 3
    assert set(results["metrics"]["videogen"]["without_ties"]) == {"Overall", "VQ", "MQ", "TA"}
    # The same pair three times: one margin, so exactly one of the two decided labels is right.
    assert results["metrics"]["videogen"]["without_ties"]["Overall"] == pytest.approx(0.5)

    skywork = tmp_path / "skywork"
    write_skywork(skywork, tiny_checkpoint("qwen2_5_vl"))
    out = tmp_path / "ev_skywork"
    assert main(["eval", "--benchmark", "vl_rewardbench", "--data", str(_vlrb_mirror(tmp_path / "vlrb")),
                 "--model", str(skywork), "--out", str(out), "--no-progress", "--no-report"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["scorer"] == "head" and results["items"] == 3
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all(s.get("error") is None for s in samples)


def test_unifiedreward_think_templates_run_through_our_judge(tiny_checkpoint, scoring_media):
    from testkit import make_pair
    from transformers import AutoProcessor

    from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
    from mmreward.judge import parse_verdict
    from mmreward.prompts import JUDGE_ANSWERS, JUDGE_TEMPLATES

    # sha256 of the published prompt texts (benchmark_evaluation/*/test_qwen25_cot_*.py) with P / RA / RB filled in
    filled = {name: JUDGE_TEMPLATES[name].format(prompt="P", response_a="RA", response_b="RB") for name in JUDGE_ANSWERS
              if name.startswith("unifiedreward_think")}  # (LLaVA-Critic's are in tests/agent/test_llava_critic.py)
    assert {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in filled.items()} == {
        "unifiedreward_think_image": "7ab94d5304906a82", "unifiedreward_think_video": "148195982b88429f",
        "unifiedreward_think_response": "28c4eefe3b48fbe2"}
    answers = JUDGE_ANSWERS["unifiedreward_think_image"]
    ok = parse_verdict("<think>1. ...</think>\n<answer> image 2 is better. </answer>", answers=answers)
    assert ok.ok and ok.verdicts == {"overall": "B"}
    for bad in ("<answer>Image 3 is better</answer>", '<answer>{"overall": "A"}</answer>', "Image 1 is better",
                "<answer>Image 1 is better</answer><answer>Image 2 is better</answer>"):
        assert not parse_verdict(bad, answers=answers).ok

    replies = iter(["<think>scores</think><answer>Image 2 is better</answer>", "<answer>Image 1 is best</answer>"])
    judge = JudgeScorer(None, AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl")),
                        JudgeConfig(backbone="x", tools=[], template="unifiedreward_think_image"),
                        generate_fn=lambda conversations, images: [next(replies) for _ in conversations])
    records = [parse_record(make_pair(f"p{i}", "i0.png", "i1.png", prompt="a red square"), base_dir=scoring_media)
               for i in range(2)]
    messages, images, _ = judge.conversation(records[0])
    # As published: both images first, unlabelled, then the template's text (which numbers them 1 and 2).
    assert [p["type"] for p in messages[-1]["content"]] == ["image", "image", "text"] and len(images) == 2
    assert messages[-1]["content"][-1]["text"] == JUDGE_TEMPLATES["unifiedreward_think_image"].format(
        prompt="a red square")
    first, second = judge.score(records, batch_size=1, progress=False)
    assert (first.score_a, first.score_b, first.preferred) == (0.0, 1.0, "B")
    assert second.error.startswith("parse failure: answer") and "Image 1 is better" in second.error
