"""`score_media`: rewards for in-memory images and videos (generator RL loops), through the scoring engine.

    rewards = scorer.score_media(prompts, videos, fps=24)          # videos (B, T, 3, H, W) in [0, 1]: (B,)
    margins = scorer.score_media([p] * 4, images, pairs=[(0, 1), (2, 3)])   # (2,): reward(i) - reward(j)

Each sample becomes a record whose media item holds the array itself (``MediaItem.array``): no disk round
trip, no re-encoding, and the checkpoint's sampling contract picks the frames exactly as it does for a file
(``media.load_video``). The engine batches the units and scores each distinct one once (media are keyed by a
content hash, ``media_arrays.array_key``).

Contracts:
- ``pairs=[(i, j), ...]`` scores media i (as A) against media j (as B) under their shared prompt and returns
  the margin ``score_a - score_b`` per pair: reward(i) - reward(j) for head / CLIP / pointwise scorers,
  ``2 P(i better) - 1`` for a pairwise yes-token scorer.
- A scorer with more than one dimension returns a dict of ``(B,)`` tensors, one per dimension plus
  ``"overall"`` (the "overall" dimension if the scorer has one, else their sum, as in ``ScoreResult``).
- A sample that cannot be scored (bad shape, dtype, NaN, missing fps, corrupt file) raises `ScoringError`
  naming every failed index by default; with ``on_error="skip"`` its reward is NaN (the mask is
  ``rewards.isnan()``), the others are scored, and a warning names the failures.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import torch

from mmreward.data.media.arrays import host_array
from mmreward.data.schema import Candidate, MediaItem, PointwiseRecord, PreferencePair
from mmreward.scoring_types import ScoringError

logger = logging.getLogger(__name__)

__all__ = ["ScoreMediaMixin", "media_items", "score_media"]


def _samples(media: Any) -> list:
    """Per-sample objects of a list, or of a batch array / tensor (moved to the CPU once, then split)."""
    if isinstance(media, (list, tuple)):
        return list(media)
    if hasattr(media, "shape") and len(media.shape) in (4, 5):
        batch = host_array(media)
        return [batch[i] for i in range(batch.shape[0])]
    raise ValueError(f"media must be a list of samples or a batch of images (B, 3, H, W) / (B, H, W, 3) or "
                     f"videos (B, T, 3, H, W) / (B, T, H, W, 3), got {type(media).__name__} of shape "
                     f"{tuple(getattr(media, 'shape', ()))}")


def media_items(media: Any, fps: float | Sequence[float | None] | None = None) -> list[MediaItem]:
    """One `MediaItem` per sample: arrays / tensors (3-D image, 4-D video), PIL images, MediaItems as given.

    Args:
        media: a list of samples, or a batch array / tensor of images (4-D) or videos (5-D).
        fps: frame rate of the video samples: one number for all, or one per sample.

    Returns:
        The items; arrays are host (CPU) numpy arrays. An unusable sample still gets an item: its error is
        raised (as a `MediaError`) when the engine scores it, so it fails alone.
    """
    from PIL import Image

    samples = _samples(media)
    rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(samples)
    if len(rates) != len(samples):
        raise ValueError(f"{len(rates)} fps values for {len(samples)} media samples")
    items = []
    for sample, rate in zip(samples, rates):
        if isinstance(sample, MediaItem):
            # A video item's own fps wins; ``fps=`` fills it in where the item has none.
            missing = sample.type != "image" and sample.fps is None and rate is not None
            items.append(dataclasses.replace(sample, fps=rate) if missing else sample)
            continue
        if isinstance(sample, Image.Image):
            items.append(MediaItem(type="image", array=sample))
            continue
        array = host_array(sample)
        # Anything not 4-D goes in as an image: its validation names the shape that is wrong.
        video = getattr(array, "ndim", 0) == 4
        items.append(MediaItem(type="video" if video else "image", array=array, fps=rate if video else None))
    return items


def _records(prompts: Sequence[str], items: list[MediaItem], pairs) -> list:
    if pairs is None:
        return [PointwiseRecord(id=f"media[{i}]", prompt=p, media=[m])
                for i, (p, m) in enumerate(zip(prompts, items))]
    records = []
    for k, pair in enumerate(pairs):
        try:
            i, j = (int(x) for x in pair)
        except (TypeError, ValueError):
            raise ValueError(f"pairs[{k}] must be two media indices (i, j), got {pair!r}") from None
        if not (0 <= i < len(items) and 0 <= j < len(items)):
            raise ValueError(f"pairs[{k}] = ({i}, {j}) is out of range for {len(items)} media samples")
        if prompts[i] != prompts[j]:
            raise ValueError(f"pairs[{k}] = ({i}, {j}): the two samples have different prompts; a pair is "
                             f"judged under one prompt")
        records.append(PreferencePair(id=f"pair[{k}] ({i}, {j})", prompt=prompts[i], label="tie",
                                      a=Candidate(media=[items[i]]), b=Candidate(media=[items[j]])))
    return records


def _values(result, pairs) -> tuple[float, dict[str, float]]:
    """(overall, per-dimension) value of one result: the score, or the margin A - B for a pair."""
    if pairs is None:
        return result.score, dict(result.scores)
    return result.score_a - result.score_b, {d: a - b for d, (a, b) in result.scores.items()}


def score_media(scorer, prompts: Sequence[str] | str, media: Any, *,
                pairs: Sequence[tuple[int, int]] | None = None, fps: float | Sequence[float | None] | None = None,
                on_error: str = "raise", batch_size: int = 8, progress: bool = False, return_errors: bool = False,
                **kwargs) -> Any:
    """Rewards for in-memory media under their prompts (see the module docstring for the contracts).

    Args:
        scorer: any scorer (head, yes-token, CLIP, judge).
        prompts: one prompt per sample, or one string for all.
        media: a list of samples (numpy arrays / torch tensors: images ``(H, W, 3)`` / ``(3, H, W)``, videos
            ``(T, H, W, 3)`` / ``(T, 3, H, W)``, uint8 or float in [0, 1]; PIL images; `MediaItem`s) or a batch
            array / tensor ``(B, ...)`` of images (4-D) or videos (5-D). GPU tensors are copied to the CPU once.
        pairs: score media i against media j (same prompt) for each ``(i, j)``; returns margins, one per pair.
        fps: frame rate of the video samples (required for videos): one number, or one per sample.
        on_error: "raise" (default): a `ScoringError` naming every failed sample, after scoring; "skip": NaN.
        batch_size: units per forward pass.
        progress: show a progress bar.
        return_errors: also return ``{sample (or pair) index: error message}`` of the failed ones (loops that
            report why a sample got NaN, e.g. `integrations.generator`).
        **kwargs: passed to ``scorer.score`` (e.g. ``num_workers``).

    Returns:
        A float32 CPU tensor ``(B,)`` (``(len(pairs),)`` with pairs), or for a multi-dimension scorer a dict of
        them: one per dimension and "overall"; with ``return_errors``, the pair (rewards, errors).

    Raises:
        ScoringError: a sample failed and on_error is "raise".
        ValueError: prompts / fps / pairs that do not match the media.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    items = media_items(media, fps)
    prompts = [prompts] * len(items) if isinstance(prompts, str) else list(prompts)
    if len(prompts) != len(items):
        raise ValueError(f"{len(items)} media samples but {len(prompts)} prompts")
    records = _records(prompts, items, pairs)
    results = scorer.score(records, on_error="skip", batch_size=batch_size, progress=progress, **kwargs)
    dims = list(scorer.dimensions)
    names = dims if "overall" in dims else [*dims, "overall"]
    out = {name: torch.full((len(records),), float("nan")) for name in names}
    failed = {}
    for n, result in enumerate(results):
        if result.error is not None:
            failed[n] = result.error
            continue
        overall, per_dim = _values(result, pairs)
        out["overall"][n] = overall
        for name, value in per_dim.items():
            out[name][n] = value
    if failed:
        listing = "; ".join(failed.values())
        if on_error == "raise":
            raise ScoringError(f"{len(failed)} of {len(records)} samples could not be scored: {listing}; pass "
                               f"on_error='skip' to get NaN for them")
        logger.warning("%d of %d samples could not be scored (NaN): %s", len(failed), len(records), listing)
    rewards = out["overall"] if len(dims) <= 1 else out
    return (rewards, failed) if return_errors else rewards


class ScoreMediaMixin:
    """Gives a scorer ``score_media`` (tensors / arrays / PIL in, rewards out); see `score_media`."""

    def score_media(self, prompts: Sequence[str] | str, media: Any, *, pairs: Sequence[tuple[int, int]] | None = None,
                    **kwargs) -> torch.Tensor | dict[str, torch.Tensor]:
        """Rewards ``(B,)`` for in-memory media (margins with ``pairs``); see `scoring_media.score_media`.

        Args:
            prompts: one prompt per sample, or one string for all.
            media: a list of samples or a batch array / tensor of images / videos.
            pairs: ``[(i, j), ...]``: score media i against media j; returns one margin per pair.
            **kwargs: fps, on_error, batch_size, progress, return_errors, num_workers (see `score_media`).

        Returns:
            A ``(B,)`` float32 tensor, or a dict of them for a multi-dimension scorer (with ``return_errors``: and
            the failed samples' messages by index).
        """
        return score_media(self, prompts, media, pairs=pairs, **kwargs)

