"""The CLIP baseline scorer: projected-reward maths by hand, and scoring with a tiny random open_clip model
built offline from a config dict (no weights are downloaded)."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("open_clip")
from PIL import Image  # noqa: E402

from mmreward.data.schema import parse_record  # noqa: E402
from mmreward.models.clip import ClipScorer, projected_reward  # noqa: E402

# A very small CLIP: 32x32 images in 2x2 patches of 16, two 64-wide layers per tower, the bundled tokenizer.
TINY = {"embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parts():
    """(model, preprocess, tokenizer) of one tiny random CLIP, shared by the tests of this module."""
    torch.manual_seed(0)
    scorer = ClipScorer.from_open_clip("tiny", None, model_cfg=TINY, device="cpu")
    return scorer.model, scorer.preprocess, scorer.tokenizer


def make_scorer(parts, **kwargs) -> ClipScorer:
    model, preprocess, tokenizer = parts
    return ClipScorer(model, preprocess, tokenizer, model_name="tiny", model_cfg=TINY, **kwargs)


@pytest.fixture
def images(tmp_path):
    """Three distinct PNGs: red, blue, and a striped one."""
    paths = {}
    for name, colour in (("red", (220, 30, 30)), ("blue", (20, 40, 230))):
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (48, 40), colour).save(paths[name])
    stripes = Image.new("RGB", (40, 40), (255, 255, 255))
    for x in range(0, 40, 8):
        stripes.paste((0, 0, 0), (x, 0, x + 4, 40))
    paths["stripes"] = tmp_path / "stripes.png"
    stripes.save(paths["stripes"])
    return paths


def manual_embeddings(scorer, image_paths, texts):
    """(N, D) image and (M, D) text embeddings, L2-normalised, straight from the open_clip model."""
    with torch.no_grad():
        pixels = torch.stack([scorer.preprocess(Image.open(p).convert("RGB")) for p in image_paths])
        x = F.normalize(scorer.model.encode_image(pixels).float(), dim=-1)
        t = F.normalize(scorer.model.encode_text(scorer.tokenizer(texts)).float(), dim=-1)
    return x, t


def pointwise(prompt, media, response=None, rid="p"):
    return parse_record({"id": rid, "prompt": prompt, "media": media, "response": response})


# ---- projected_reward: hand-computed values ----

def test_alpha_zero_is_the_cosine_for_unit_vectors():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    g, b = torch.tensor([0.6, 0.8]), torch.tensor([1.0, 0.0])
    assert torch.allclose(projected_reward(x, g, b, 0.0), x @ g)
    assert torch.allclose(projected_reward(x, g, b, 0.0), torch.tensor([0.6, 0.8, 1.0]))


def test_alpha_one_keeps_only_the_goal_minus_baseline_direction():
    g, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # d = (1, -1)
    # x = (0.6, 0.8): x - g = (-0.4, 0.8), along d: (-1.2 / 2) d = (-0.6, 0.6), |.|^2 = 0.72 -> R = 0.64.
    # x = (1.5, 0.5): x - g = (0.5, 0.5) is orthogonal to d, so it costs nothing: R = 1.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.5, 0.5]])
    assert torch.allclose(projected_reward(x, g, b, 1.0), torch.tensor([1.0, 0.0, 0.64, 1.0]))


def test_mid_alpha_by_hand_in_3d():
    # g = e1, b = e2, d = (1, -1, 0); x = e3: v = x - g = (-1, 0, 1), v.d = -1.
    # alpha = 0.5: Pv = 0.5 * (-0.5, 0.5, 0) + 0.5 * (-1, 0, 1) = (-0.75, 0.25, 0.5); |Pv|^2 = 0.875 -> R = 0.5625.
    g, b, x = torch.eye(3)[0], torch.eye(3)[1], torch.eye(3)[2:]
    assert projected_reward(x, g, b, 0.5).item() == pytest.approx(0.5625)
    assert projected_reward(x, g, b, 1.0).item() == pytest.approx(0.75)
    assert projected_reward(x, g, b, 0.0).item() == pytest.approx(0.0)


def test_matches_the_explicit_projection_matrix():
    torch.manual_seed(1)
    x = F.normalize(torch.randn(5, 7, dtype=torch.float64), dim=-1)
    g, b = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    d = (g - b)[:, None]
    for alpha in (0.0, 0.3, 1.0):
        P = alpha * (d @ d.T) / (d.T @ d) + (1 - alpha) * torch.eye(7, dtype=torch.float64)
        expected = 1 - 0.5 * ((x - g) @ P).pow(2).sum(-1)
        assert torch.allclose(projected_reward(x, g, b, alpha), expected)


def test_coinciding_goal_and_baseline_and_bad_alpha_are_errors():
    v = torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match="coincide"):
        projected_reward(v[None], v, v.clone(), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        projected_reward(v[None], v, -v, 1.5)


# ---- the scorer ----

def test_clipscore_equals_a_manual_cosine(parts, images):
    scorer = make_scorer(parts)
    prompts = ["a red square", "blue sky"]
    records = [pointwise(p, [{"type": "image", "path": str(images[n])}], rid=n)
               for p, n in zip(prompts, ("red", "stripes"))]
    results = scorer.score(records, progress=False)
    x, t = manual_embeddings(scorer, [images["red"], images["stripes"]], prompts)
    expected = (x * t).sum(-1)
    assert [r.score for r in results] == pytest.approx(expected.tolist(), abs=1e-5)
    assert results[0].scores == {"overall": pytest.approx(expected[0].item(), abs=1e-5)}

    scaled = make_scorer(parts, scale=2.5).score(records, progress=False)
    assert [r.score for r in scaled] == pytest.approx((2.5 * expected.clamp(min=0)).tolist(), abs=1e-5)


def test_vlmrm_goal_is_the_mean_of_normalised_prompts_not_renormalised(parts, images):
    goals, baselines = ["a red square", "a red thing"], ["a picture", "an image"]
    scorer = make_scorer(parts, mode="vlmrm", alpha=0.5, goal_prompts=goals, baseline_prompts=baselines)
    result = scorer.score([pointwise("ignored prompt", [{"type": "image", "path": str(images["red"])}])],
                          progress=False)[0]
    x, t = manual_embeddings(scorer, [images["red"]], goals + baselines)
    g, b = t[:2].mean(0), t[2:].mean(0)
    assert g.norm() < 0.999  # the mean of two distinct unit vectors is shorter: re-normalising would change it
    assert result.score == pytest.approx(projected_reward(x, g, b, 0.5).item(), abs=1e-5)
    renormalised = projected_reward(x, F.normalize(g, dim=0), F.normalize(b, dim=0), 0.5).item()
    assert result.score != pytest.approx(renormalised, abs=1e-4)


def test_vlmrm_with_alpha_zero_and_the_record_prompt_as_goal_is_clipscore(parts, images):
    records = [pointwise("a blue square", [{"type": "image", "path": str(images["blue"])}])]
    vlmrm = make_scorer(parts, mode="vlmrm", alpha=0.0, baseline_prompts=["a photo"]).score(records, progress=False)
    clipscore = make_scorer(parts).score(records, progress=False)
    assert vlmrm[0].score == pytest.approx(clipscore[0].score, abs=1e-5)


def test_video_reward_is_the_mean_of_its_frame_rewards(parts, tmp_path):
    from mmreward.data.media import load_video
    from mmreward.data.synthetic import write_index_video

    video = write_index_video(tmp_path / "v.mp4", n_frames=20, fps=10, height=64, width=96)
    scorer = make_scorer(parts)
    result = scorer.score([pointwise("a moving pattern", [{"type": "video", "path": str(video)}])],
                          progress=False)[0]
    frames = load_video(str(video), nframes=8).frames
    assert frames.shape[0] == 8
    # Each sampled frame scored on its own, as a separate image, then averaged.
    per_frame = []
    with torch.no_grad():
        t = F.normalize(scorer.model.encode_text(scorer.tokenizer(["a moving pattern"])).float(), dim=-1)[0]
        for frame in frames:
            pixels = scorer.preprocess(Image.fromarray(frame.permute(1, 2, 0).numpy()))[None]
            per_frame.append(F.normalize(scorer.model.encode_image(pixels).float(), dim=-1)[0] @ t)
    assert result.score == pytest.approx(torch.stack(per_frame).mean().item(), abs=1e-5)


def test_frame_list_is_scored_as_a_video(parts, images):
    scorer = make_scorer(parts, nframes=2)
    frames = [str(images["red"]), str(images["blue"])]
    video = scorer.score([pointwise("red", [{"type": "frames", "frames": frames}])], progress=False)[0]
    singles = scorer.score([pointwise("red", [{"type": "image", "path": f}], rid=f) for f in frames],
                           progress=False)
    # Solid colours come through the video pixel-budget resize unchanged, so the mean matches exactly.
    assert video.score == pytest.approx(sum(r.score for r in singles) / 2, abs=1e-5)


def test_generation_pair_scoring(parts, images):
    scorer = make_scorer(parts)
    record = parse_record({"id": "g1", "prompt": "a red square", "label": "A",
                           "a": {"media": [{"type": "image", "path": "red.png"}]},
                           "b": {"media": [{"type": "image", "path": "stripes.png"}]}},
                          base_dir=images["red"].parent)
    result = scorer.score([record], progress=False)[0]
    x, t = manual_embeddings(scorer, [images["red"], images["stripes"]], ["a red square"])
    cos = (x @ t[0]).tolist()
    assert [result.score_a, result.score_b] == pytest.approx(cos, abs=1e-5)
    assert result.preferred == ("A" if cos[0] > cos[1] else "B")
    assert result.scores == {"overall": pytest.approx(cos, abs=1e-5)}


def test_text_responses_are_scored_against_the_shared_image(parts, images):
    scorer = make_scorer(parts)
    record = parse_record({"id": "r1", "prompt": "what is shown?", "label": "A",
                           "media": [{"type": "image", "path": str(images["stripes"])}],
                           "a": {"text": "black and white stripes"}, "b": {"text": "a cat on a sofa"}})
    result = scorer.score([record], progress=False)[0]
    x, t = manual_embeddings(scorer, [images["stripes"]], ["black and white stripes", "a cat on a sofa"])
    assert [result.score_a, result.score_b] == pytest.approx((t @ x[0]).tolist(), abs=1e-5)


def test_identical_candidates_share_one_unit_and_score_the_same(parts, images):
    scorer = make_scorer(parts)
    media = [{"type": "image", "path": str(images["blue"])}]
    record = parse_record({"id": "d", "prompt": "blue", "label": "tie", "a": {"media": media},
                           "b": {"media": media}})
    plan = scorer.plan(record)
    assert plan.units[0].key == plan.units[1].key
    result = scorer.score([record], progress=False)[0]
    assert result.score_a == result.score_b and result.preferred == "tie"


def test_missing_media_fails_only_that_record(parts, images, tmp_path):
    scorer = make_scorer(parts)
    records = [pointwise("x", [{"type": "image", "path": str(tmp_path / "missing.png")}], rid="bad"),
               pointwise("x", [], response="text only", rid="nothing"),
               pointwise("x", [{"type": "image", "path": str(images["red"])}], rid="ok")]
    results = scorer.score(records, on_error="skip", progress=False)
    assert "missing.png" in results[0].error
    assert "needs an image or video" in results[1].error
    assert results[2].error is None and results[2].score is not None


def test_save_and_load_round_trip_bit_identical(parts, images, tmp_path):
    scorer = make_scorer(parts, mode="vlmrm", alpha=0.25, goal_prompts=["red"], baseline_prompts=["a photo"],
                         nframes=4)
    records = [pointwise("a", [{"type": "image", "path": str(images[n])}], rid=n) for n in images]
    before = [r.score for r in scorer.score(records, progress=False)]
    scorer.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "mmreward_config.json").read_text())
    assert config["scorer"] == "clip" and config["weights"] == "clip.safetensors"
    assert (config["mode"], config["alpha"], config["nframes"]) == ("vlmrm", 0.25, 4)
    assert config["goal_prompts"] == ["red"] and config["baseline_prompts"] == ["a photo"]
    assert config["video"]["nframes"] == 4 and config["model_cfg"] == TINY
    loaded = ClipScorer.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert [r.score for r in loaded.score(records, progress=False)] == before
    for name, tensor in scorer.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name


def test_named_pretrained_weights_are_recorded_not_copied(parts, tmp_path):
    model, preprocess, tokenizer = parts
    scorer = ClipScorer(model, preprocess, tokenizer, model_name="ViT-B-32", pretrained="openai")
    scorer.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "mmreward_config.json").read_text())
    assert (config["model_name"], config["pretrained"], config["weights"]) == ("ViT-B-32", "openai", None)
    assert not (tmp_path / "ckpt" / "clip.safetensors").exists()


def test_load_scorer_reads_a_clip_checkpoint(parts, tmp_path):
    from mmreward.scoring import load_scorer

    make_scorer(parts).save_pretrained(tmp_path / "ckpt")
    scorer = load_scorer(tmp_path / "ckpt", dtype="auto", device="cpu")
    assert isinstance(scorer, ClipScorer) and scorer.mode == "clipscore" and scorer.nframes == 8


def test_invalid_settings_are_errors(parts):
    with pytest.raises(ValueError, match="baseline_prompts"):
        make_scorer(parts, mode="vlmrm")
    with pytest.raises(ValueError, match="vlmrm"):
        make_scorer(parts, goal_prompts=["a red square"])
    with pytest.raises(ValueError, match="alpha"):
        make_scorer(parts, mode="vlmrm", alpha=2.0, baseline_prompts=["a photo"])
    with pytest.raises(ValueError, match="mode"):
        make_scorer(parts, mode="pairwise")
    with pytest.raises(ValueError, match="scale"):
        make_scorer(parts, mode="vlmrm", baseline_prompts=["a photo"], scale=2.5)


def test_encoder_is_picklable(parts, images):
    scorer = make_scorer(parts)
    encoder = pickle.loads(pickle.dumps(scorer.encoder()))
    unit = scorer.plan(pointwise("red", [{"type": "image", "path": str(images["red"])}])).units[0]
    encoded = encoder(unit)
    assert encoded["pixels"].shape == (1, 3, 32, 32) and encoded["text"] == "red" and not encoded["response"]


def test_importing_the_module_does_not_import_open_clip():
    code = "import sys, mmreward.models.clip; print('open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
