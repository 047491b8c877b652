"""`scorer.score_media`: in-memory media score exactly like the same pixels on disk; pairs, dimensions, failures."""

import math

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mmreward.data.schema import MediaItem, PointwiseRecord
from mmreward.models.reward_model import RewardModel
from mmreward.scoring import ScoringError, score_media, score_records

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)  # B, H, W, C
VIDEOS = RNG.integers(0, 256, (2, 30, 24, 64, 3), dtype=np.uint8)  # B, T, H, W, C at 24 fps


@pytest.fixture(scope="module")
def multi(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dimensions=["VQ", "MQ"]).eval()


@pytest.fixture(scope="module")
def single(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()


def write_lossless(path, frames, fps):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def file_scores(scorer, paths, kind, prompt="a cat"):
    records = [PointwiseRecord(id=str(i), prompt=prompt, media=[MediaItem(type=kind, path=str(p))])
               for i, p in enumerate(paths)]
    return torch.tensor([r.score for r in score_records(scorer, records, progress=False)])


def test_image_tensor_scores_equal_the_png_files(single, tmp_path):
    paths = []
    for i, image in enumerate(IMAGES):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    expected = file_scores(single, paths, "image")
    batch = torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W) in [0, 1]
    got = single.score_media("a cat", batch)
    assert got.shape == (3,) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    assert len(set(got.tolist())) == 3  # three different images, three different rewards


def test_video_tensor_scores_equal_the_lossless_files(multi, tmp_path):
    paths = [write_lossless(tmp_path / f"{i}.mov", v, 24) for i, v in enumerate(VIDEOS)]
    records = [PointwiseRecord(id=str(i), prompt="a cat", media=[MediaItem(type="video", path=str(p))])
               for i, p in enumerate(paths)]
    expected = score_records(multi, records, progress=False)
    got = multi.score_media(["a cat", "a cat"], torch.from_numpy(VIDEOS).permute(0, 1, 4, 2, 3), fps=24)
    assert set(got) == {"VQ", "MQ", "overall"} and all(v.shape == (2,) for v in got.values())
    for i, result in enumerate(expected):
        assert got["VQ"][i].item() == pytest.approx(result.scores["VQ"], abs=1e-5)
        assert got["MQ"][i].item() == pytest.approx(result.scores["MQ"], abs=1e-5)
        assert got["overall"][i].item() == pytest.approx(result.score, abs=1e-5)
    # No "overall" dimension: the overall reward is the sum of the dimensions.
    assert torch.allclose(got["overall"], got["VQ"] + got["MQ"])


def test_pairs_give_margins_of_the_pointwise_rewards(single):
    rewards = single.score_media("a dog", list(IMAGES))
    margins = single.score_media("a dog", list(IMAGES), pairs=[(0, 1), (2, 0), (1, 1)])
    expected = torch.stack([rewards[0] - rewards[1], rewards[2] - rewards[0], rewards[1] - rewards[1]])
    assert margins.shape == (3,) and torch.allclose(margins, expected, atol=1e-5)
    assert margins[2].item() == 0.0


def test_duplicates_are_scored_once_and_a_refilled_buffer_is_rescored(single, monkeypatch):
    calls = []
    encoder = single.encoder()
    monkeypatch.setattr(single, "encoder", lambda: lambda unit: calls.append(unit.key) or encoder(unit))
    buffer = IMAGES[0].copy()
    first = single.score_media("a cat", [buffer, buffer.copy(), torch.from_numpy(buffer)])
    assert len(calls) == 1 and first[0] == first[1] == first[2]
    buffer[:] = IMAGES[1]  # an RL loop refilling the same buffer: new content, new key, new score
    second = single.score_media("a cat", [buffer])
    assert len(calls) == 2 and second[0] != first[0]


def test_a_bad_sample_raises_naming_it_or_is_nan_under_skip(single):
    bad = IMAGES[1].astype(np.float32) / 255
    bad[0, 0, 0] = np.nan
    media = [IMAGES[0], bad, IMAGES[2][:, :, :2]]
    with pytest.raises(ScoringError) as err:
        single.score_media("a cat", media)
    message = str(err.value)
    assert "2 of 3 samples could not be scored" in message
    assert "media[1]: <array (40, 56, 3) float32>: contains NaN" in message
    assert "media[2]: <array (40, 56, 2) uint8>: an image array needs 3 (RGB) channels" in message
    got = single.score_media("a cat", media, on_error="skip")
    assert math.isnan(got[1]) and math.isnan(got[2])
    assert got[0].item() == pytest.approx(single.score_media("a cat", IMAGES[:1])[0].item(), abs=1e-6)


def test_video_without_fps_and_garbage_objects_fail_alone(single):
    got = single.score_media("a cat", [VIDEOS[0], IMAGES[0], "not media", np.zeros((2, 2), np.uint8)],
                             on_error="skip")
    assert torch.isnan(got).tolist() == [True, False, True, True]
    with pytest.raises(ScoringError, match=r"media\[0\]: .*fps of a video array is required"):
        single.score_media("a cat", [VIDEOS[0]])


def test_argument_mistakes_are_value_errors(single):
    with pytest.raises(ValueError, match="2 media samples but 3 prompts"):
        score_media(single, ["a", "b", "c"], list(IMAGES[:2]))
    with pytest.raises(ValueError, match=r"pairs\[0\] = \(0, 5\) is out of range for 2 media samples"):
        score_media(single, "a", list(IMAGES[:2]), pairs=[(0, 5)])
    with pytest.raises(ValueError, match="different prompts"):
        score_media(single, ["a", "b"], list(IMAGES[:2]), pairs=[(0, 1)])
    with pytest.raises(ValueError, match="batch of images"):
        score_media(single, "a", IMAGES[0])  # one 3-D image is not a batch
    with pytest.raises(ValueError, match="on_error"):
        score_media(single, "a", list(IMAGES[:1]), on_error="ignore")


def test_media_scored_alone_are_worded_as_generated_media_not_responses(single, tiny_checkpoint):
    from mmreward.models.yes_token import YesTokenScorer

    record = PointwiseRecord(id="r", prompt="a cat", media=[MediaItem(type="video", array=VIDEOS[0], fps=24)])
    head_text = single.plan(record).units[0].messages[-1]["content"][-1]["text"]
    assert head_text == "Prompt: a cat\nHow good is this video, and how well does it match the prompt?"
    yes = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl")).eval()
    (unit,) = yes.plan(record).units
    assert unit.messages[-1]["content"][-1]["text"] == ('Does the video match the prompt "a cat" and look good? '
                                                        'Answer yes or no.')
    assert len(unit.media) == 1  # shown once, not as shared media and candidate both
    probs = yes.score_media("a cat", list(IMAGES))
    assert probs.shape == (3,) and bool(((probs > 0) & (probs < 1)).all())
    margins = yes.score_media("a cat", list(IMAGES), pairs=[(0, 2)])
    assert margins[0].item() == pytest.approx((probs[0] - probs[2]).item(), abs=1e-5)


def test_clip_scorer_scores_video_tensors_like_their_files(tmp_path):
    pytest.importorskip("open_clip")
    from mmreward.models.clip import ClipScorer

    tiny = {"embed_dim": 32,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
    clip = ClipScorer.from_open_clip("tiny", None, model_cfg=tiny, device="cpu")
    paths = [write_lossless(tmp_path / f"{i}.mov", v, 24) for i, v in enumerate(VIDEOS)]
    expected = file_scores(clip, paths, "video")
    got = clip.score_media("a cat", torch.from_numpy(VIDEOS).float() / 255, fps=24)  # (B, T, H, W, 3) floats
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_worker_processes_give_the_same_rewards(single):
    inline = single.score_media("a cat", list(IMAGES))
    workers = single.score_media("a cat", list(IMAGES), num_workers=1)
    assert torch.allclose(inline, workers, atol=1e-5, rtol=0)


def test_pairwise_yes_token_margin_is_two_p_minus_one(tiny_checkpoint):
    from mmreward.data.schema import Candidate, PreferencePair
    from mmreward.models.yes_token import YesTokenScorer

    yes = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), mode="pairwise").eval()
    margin = yes.score_media("a cat", list(IMAGES[:2]), pairs=[(0, 1)])
    a, b = (Candidate(media=[MediaItem(type="image", array=x)]) for x in IMAGES[:2])
    pair = PreferencePair(id="p", prompt="a cat", label="tie", a=a, b=b)
    (result,) = score_records(yes, [pair], progress=False)
    p = result.score_a  # P(A better than B)
    assert 0 < p < 1 and margin[0].item() == pytest.approx(2 * p - 1, abs=1e-5)


def test_samples_become_host_arrays_once():
    from mmreward.scoring_media import media_items

    batch = torch.from_numpy(VIDEOS)
    items = media_items(batch, fps=[24, 12])
    assert [(m.type, m.fps) for m in items] == [("video", 24), ("video", 12)]
    # CPU tensors are viewed, not copied; what the engine keys and loads is numpy, never moved again.
    assert all(isinstance(m.array, np.ndarray) and np.shares_memory(m.array, VIDEOS) for m in items)
    assert [m.type for m in media_items([IMAGES[0], Image.fromarray(IMAGES[1]), VIDEOS[0]], fps=24)] == [
        "image", "image", "video"]
    given = [MediaItem(type="video", array=VIDEOS[0]), MediaItem(type="video", array=VIDEOS[1], fps=8)]
    assert [m.fps for m in media_items(given, fps=24)] == [24, 8]  # an item's own fps wins


@pytest.mark.gpu
def test_cuda_tensors_score_like_cpu_tensors(single):
    batch = torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255
    on_gpu = single.score_media("a cat", batch.cuda())
    assert torch.equal(on_gpu, single.score_media("a cat", batch))
    videos = torch.from_numpy(VIDEOS).cuda().to(torch.bfloat16) / 255  # bf16 has no numpy dtype
    assert torch.isfinite(single.score_media("a cat", videos, fps=24, on_error="raise")).all()
