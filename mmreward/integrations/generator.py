"""Rewards for RL of image / video generators (Flow-GRPO, DanceGRPO style): tensors in, rewards `(B,)` out.

    reward = GeneratorReward(load_scorer("ckpt"))                 # or GeneratorReward("http://rm:8000")
    rewards, info = reward(videos, prompts, fps=24)                # videos (B, T, 3, H, W) in [0, 1]
    rewards           # tensor (B,), NaN where a sample failed
    info["VQ"]        # tensor (B,) per dimension; info["failed"] bool (B,); info["errors"] {index: message}

Media may be a batch tensor / array — images (B, 3, H, W) / (B, H, W, 3), videos (B, T, 3, H, W) /
(B, T, H, W, 3) — or a list of per-sample tensors, arrays or PIL images; uint8 or float in [0, 1]. Videos need
their frame rate (the checkpoint's sampling contract picks frames by time). Each sample is a pointwise record
with the prompt; the engine batches and deduplicates them like any records.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mmreward.integrations.backend import make_backend
from mmreward.integrations.client import media_item

logger = logging.getLogger(__name__)


def _samples(media: Any) -> list:
    """Per-sample items of a batch tensor / array or a list."""
    if isinstance(media, (list, tuple)):
        return list(media)
    if hasattr(media, "shape") and len(media.shape) in (4, 5):
        return [media[i] for i in range(media.shape[0])]
    raise ValueError(f"media must be a list or a batch of images (B, C, H, W) / videos (B, T, C, H, W), got "
                     f"{type(media).__name__} of shape {tuple(getattr(media, 'shape', ()))}")


class GeneratorReward:
    """Scores generated images or videos against their prompts.

    Args:
        scorer_or_url: a loaded scorer, or the base URL of `mmreward serve`.
        fps: default frame rate of generated videos.
        **backend_kwargs: batch_size / num_workers (local) or timeout / retries (remote).
    """

    def __init__(self, scorer_or_url: Any, *, fps: float | None = None, **backend_kwargs):
        self.backend = make_backend(scorer_or_url, **backend_kwargs)
        self.fps = fps

    def __call__(self, media: Any, prompts: list[str], *, fps: float | None = None
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Rewards `(B,)` (NaN for failed samples) and per-dimension info.

        Args:
            media: the generated batch (see the module docstring).
            prompts: one prompt per sample.
            fps: frame rate of the videos (default: the one given at construction).

        Returns:
            (rewards, info): info maps each dimension to a (B,) tensor, "failed" to a (B,) bool tensor and
            "errors" to {sample index: message}.
        """
        samples = _samples(media)
        if len(samples) != len(prompts):
            raise ValueError(f"{len(samples)} media samples but {len(prompts)} prompts")
        rate = fps if fps is not None else self.fps
        records = [{"id": str(i), "prompt": p, "media": [media_item(x, fps=rate)], "response": None}
                   for i, (x, p) in enumerate(zip(samples, prompts))]
        rows = self.backend.score(records)
        rewards = torch.full((len(rows),), float("nan"))
        dims: dict[str, torch.Tensor] = {}
        errors = {}
        for i, row in enumerate(rows):
            if row.get("error"):
                errors[i] = row["error"]
                continue
            rewards[i] = row["score"]
            for name, value in row["scores"].items():
                dims.setdefault(name, torch.full((len(rows),), float("nan")))[i] = value
        if errors:
            logger.warning("%d of %d generated samples could not be scored: %s", len(errors), len(rows),
                           next(iter(errors.values())))
        failed = torch.zeros(len(rows), dtype=torch.bool)
        failed[list(errors)] = True
        return rewards, {**dims, "failed": failed, "errors": errors}
