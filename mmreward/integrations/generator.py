"""Rewards for RL of image / video generators (Flow-GRPO, DanceGRPO style): tensors in, rewards `(B,)` out.

    reward = GeneratorReward(load_scorer("ckpt"))                 # or GeneratorReward("http://rm:8000")
    rewards, info = reward(videos, prompts, fps=24)                # videos (B, T, 3, H, W) in [0, 1]
    rewards           # tensor (B,), NaN where a sample failed
    info["VQ"]        # tensor (B,) per dimension; info["failed"] bool (B,); info["errors"] {index: message}

Media may be a batch tensor / array — images (B, 3, H, W) / (B, H, W, 3), videos (B, T, 3, H, W) /
(B, T, H, W, 3) — or a list of per-sample tensors, arrays or PIL images; uint8 or float in [0, 1]. Videos need
their frame rate (the checkpoint's sampling contract picks frames by time). Each sample is a pointwise record
with the prompt; the engine batches and deduplicates them like any records. In process the tensors go straight
to ``scorer.score_media`` (in-memory media: no copy beyond one transfer to the host, no encoding); to a server
they travel as raw ``.npy`` arrays.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mmreward.integrations.backend import LocalBackend, make_backend
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
        if any(_is_video(x) for x in samples) and rate is None:
            raise ValueError("a video array needs fps (the checkpoint's sampling contract depends on it)")
        if isinstance(self.backend, LocalBackend):
            # A batch tensor goes whole: score_media moves it to the host in one transfer.
            batch = media if hasattr(media, "shape") else [_file_item(x) for x in samples]
            rewards, dims, errors = self._local(batch, prompts, rate)
        else:
            rewards, dims, errors = self._remote(samples, prompts, rate)
        if errors:
            logger.warning("%d of %d generated samples could not be scored: %s", len(errors), len(samples),
                           next(iter(errors.values())))
        failed = torch.zeros(len(samples), dtype=torch.bool)
        failed[list(errors)] = True
        return rewards, {**dims, "failed": failed, "errors": errors}

    def _local(self, media: Any, prompts: list[str], rate: float | None) -> tuple:
        """(rewards, per-dimension tensors, errors) from ``score_media`` on the in-process scorer."""
        from mmreward.scoring_media import score_media

        scorer = self.backend.scorer
        kwargs = {"fps": rate, "on_error": "skip", "return_errors": True, "batch_size": self.backend.batch_size}
        if hasattr(scorer, "plan"):  # engine-backed scorers take decode workers
            kwargs["num_workers"] = self.backend.num_workers
        values, errors = (scorer.score_media(list(prompts), media, **kwargs) if hasattr(scorer, "score_media")
                          else score_media(scorer, list(prompts), media, **kwargs))
        if isinstance(values, dict):
            dims = {name: v for name, v in values.items() if name in scorer.dimensions}
            return values["overall"], dims, errors
        return values, {name: values.clone() for name in scorer.dimensions}, errors

    def _remote(self, samples: list, prompts: list[str], rate: float | None) -> tuple:
        """(rewards, per-dimension tensors, errors) from the server; the arrays travel as raw ``.npy``."""
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
        return rewards, dims, errors


def _is_video(sample: Any) -> bool:
    return hasattr(sample, "shape") and len(sample.shape) == 4


def _file_item(sample: Any) -> Any:
    """A path or encoded bytes as a `MediaItem` (what ``score_media`` takes); arrays and PIL images unchanged."""
    import base64
    from pathlib import Path

    from mmreward.data.schema import MediaItem
    from mmreward.scoring_io import VIDEO_SUFFIXES

    if isinstance(sample, (str, Path)):
        kind = "video" if Path(sample).suffix.lower() in VIDEO_SUFFIXES else "image"
        return MediaItem(type=kind, path=str(Path(sample).absolute()))
    if isinstance(sample, (bytes, bytearray)):
        return MediaItem(type="image", bytes=base64.b64encode(bytes(sample)).decode())
    return sample
