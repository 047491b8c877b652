"""Adapters score the same local and remote: generator-RL tensors, verl compute_score, the HTTP client."""

import math

import numpy as np
import pytest
import torch

from mmreward.integrations.backend import LocalBackend
from mmreward.integrations.client import ClientError, RewardClient
from mmreward.integrations.generator import GeneratorReward


def test_generator_reward_local_and_remote_agree_on_images_and_videos(head_model, live_server, scoring_media):
    url, _ = live_server
    gen = torch.Generator().manual_seed(0)
    videos = torch.rand(2, 6, 3, 32, 48, generator=gen)            # (B, T, 3, H, W) in [0, 1]
    images = (torch.rand(3, 40, 56, 3, generator=gen) * 255).to(torch.uint8)  # (B, H, W, 3) uint8
    local, remote = GeneratorReward(head_model), GeneratorReward(url, fps=24)
    for media, prompts, fps in ((videos, ["a", "b"], 24), (images, ["x", "y", "z"], None)):
        r_local, info_local = local(media, prompts, fps=fps)
        r_remote, info_remote = remote(media, prompts)
        assert r_local.shape == (len(prompts),) and torch.isfinite(r_local).all()
        assert torch.allclose(r_local, r_remote, atol=1e-5)
        assert torch.allclose(info_local["VQ"], info_remote["VQ"], atol=1e-5)
        assert torch.allclose(r_local, info_local["VQ"] + info_local["MQ"], atol=1e-5)  # overall = sum of dims
        assert not info_local["failed"].any()
    # Two identical samples get identical rewards (deduplicated, same frames).
    twin, _ = local(torch.stack([videos[0], videos[0]]), ["a", "a"], fps=24)
    assert twin[0] == twin[1]


def test_generator_reward_reports_a_failed_sample_as_nan(head_model, scoring_media):
    image = np.zeros((32, 32, 3), np.uint8)
    rewards, info = GeneratorReward(head_model)([image, str(scoring_media / "corrupt.mp4")], ["a", "b"], fps=10)
    assert math.isfinite(rewards[0]) and math.isnan(rewards[1])
    assert info["failed"].tolist() == [False, True] and "corrupt.mp4" in info["errors"][1]
    with pytest.raises(ValueError, match="needs fps"):
        GeneratorReward(head_model)(torch.rand(1, 4, 3, 8, 8), ["a"])


def test_verl_compute_score_calls_the_server(head_model, live_server, scoring_media, monkeypatch):
    from mmreward.integrations import verl_reward

    url, _ = live_server
    infos = [{"prompt": "What is shown?", "media": [{"type": "image", "path": "i0.png"}]},
             {"prompt": "What is shown?", "images": ["i1.png"]},
             {"prompt": "bad", "media": [{"type": "video", "path": "corrupt.mp4"}]}]
    got = verl_reward.compute_score_batch(["d"] * 3, ["a cat", "a dog", "x"], [None] * 3, infos, url=url,
                                          failed_reward=-7.0)
    want = LocalBackend(head_model).score([
        {"id": "0", "prompt": "What is shown?", "media": [{"type": "image", "path": str(scoring_media / "i0.png")}],
         "response": "a cat"},
        {"id": "1", "prompt": "What is shown?", "media": [{"type": "image", "path": str(scoring_media / "i1.png")}],
         "response": "a dog"}])
    assert got[:2] == pytest.approx([w["score"] for w in want], abs=1e-5) and got[2] == -7.0
    monkeypatch.setenv("MMREWARD_URL", url)
    single = verl_reward.compute_score("d", "a cat", None, infos[0], dimension="VQ")
    assert single == pytest.approx(want[0]["scores"]["VQ"], abs=1e-5)


def test_client_raises_the_servers_refusal_and_unreachable_servers(live_server):
    url, _ = live_server
    with RewardClient(url) as client:
        with pytest.raises(ClientError, match=r"refused with 403: .*outside the server's media root.*"
                                              r"field records\[0\]\.media\[0\]\.path"):
            client.score([{"id": "x", "prompt": "p", "response": "r", "media": [{"type": "image", "path": "/etc/x"}]}])
    with pytest.raises(ClientError, match="cannot reach the reward server"):
        RewardClient("http://127.0.0.1:9", retries=0).score([{"id": "x", "prompt": "p", "response": "r"}])
