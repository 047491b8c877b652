"""GPU-only checks (skipped without CUDA): bf16 scoring, the auto attention kernel, and CPU/GPU agreement."""

import importlib.util

import pytest
import torch
from testkit import make_pair

from mmreward.data.schema import parse_record
from mmreward.models.backbone import resolve_attn_implementation, resolve_dtype
from mmreward.models.reward_model import RewardModel


@pytest.mark.gpu
def test_auto_dtype_and_attention_on_gpu():
    assert resolve_dtype("auto") in (torch.bfloat16, torch.float32)
    expected = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    assert resolve_attn_implementation("auto") == expected


@pytest.mark.gpu
def test_bf16_gpu_scores_agree_with_fp32_cpu(tiny_checkpoint, scoring_media):
    records = [parse_record(make_pair("v", "v0.mp4", "v1.mp4"), base_dir=scoring_media),
               parse_record(make_pair("i", "i0.png", "i1.png"), base_dir=scoring_media)]
    torch.manual_seed(0)
    cpu = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dtype="fp32", attn_implementation="sdpa", device="cpu")
    gpu = RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dtype="bf16", device="cuda")
    gpu.head.load_state_dict(cpu.head.state_dict())
    assert next(gpu.backbone.parameters()).is_cuda
    for a, b in zip(cpu.score(records, progress=False), gpu.score(records, progress=False)):
        assert a.score_a == pytest.approx(b.score_a, abs=5e-2) and a.score_b == pytest.approx(b.score_b, abs=5e-2)
