"""Every scorer kind in one registry, `load_scorer` (the factory), and the scoring API in one import.

    from mmreward.scoring import load_scorer, score_records, ScoreResult
    scorer = load_scorer("outputs/bt")                       # any kind: head, yes_token, clip, judge
    results = scorer.score(records)                          # list[ScoreResult], in input order

`SCORERS` maps a kind to its class; the CLI's ``--scorer`` choices, the eval runner and the BT trainer's list of
trainable kinds all read it, so a new scorer kind is one module (a class implementing
`scoring_types.EngineScorer` or just `Scorer`, with `from_pretrained` / `from_source`) plus one line here.
The shared types live in `mmreward.scoring_types` and the batch engine in `mmreward.scoring_engine` (scorer
modules import those two, never this one: no import cycle); both are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from mmreward.agent.judge_scorer import JudgeScorer
from mmreward.errors import CheckpointError, ConfigError
from mmreward.models.checkpoint import CONFIG_NAME, SAVED_PARTS, read_config
from mmreward.models.clip import ClipScorer
from mmreward.models.importers import detect_published
from mmreward.models.importers.skywork import SkyworkVLReward
from mmreward.models.importers.videoalign import VideoAlignRewardModel
from mmreward.models.reward_model import RewardModel
from mmreward.models.yes_token import YesTokenScorer
from mmreward.scoring_engine import score_records, stream_scores
from mmreward.scoring_media import score_media
from mmreward.scoring_types import EngineScorer, Plan, Scorer, ScoreResult, ScoringError, Unit

__all__ = ["SCORERS", "EngineScorer", "Plan", "ScoreResult", "Scorer", "ScoringError", "Unit", "load_scorer",
           "score_media", "score_records", "stream_scores", "trainable_kinds"]

# kind -> scorer class. The kind is what checkpoints record (config.json "scorer") and what --scorer names. Each
# class loads its own checkpoints (`from_pretrained(path, **kwargs)`) and models that are not checkpoints of ours
# (`from_source(path_or_id, mode=None, **kwargs)`); a class with `from_bt_config(cfg)` can be trained by
# `mmreward train bt`. Insertion order is the order error messages list the kinds in.
SCORERS: dict[str, type] = {
    "head": RewardModel,
    "yes_token": YesTokenScorer,
    "clip": ClipScorer,
    "judge": JudgeScorer,
    # Published reward models in their released layouts (models/importers/); load_scorer detects those folders.
    "videoalign": VideoAlignRewardModel,
    "skywork_vl": SkyworkVLReward,
}

# What a path that is not one of our checkpoints is scored with when no kind is given: a plain VLM asked yes/no.
DEFAULT_KIND = "yes_token"

# Kept for callers of the tuple; `SCORERS` is the registry.
SCORER_KINDS = tuple(SCORERS)


def trainable_kinds(stage: str = "bt") -> list[str]:
    """The scorer kinds a training stage can build (for "bt": the classes with a `from_bt_config`).

    Args:
        stage: the training stage; only "bt" builds scorers from the registry today.

    Returns:
        The kinds, in registry order.
    """
    return [kind for kind, cls in SCORERS.items() if callable(getattr(cls, f"from_{stage}_config", None))]


def load_scorer(path_or_id: str | Path, kind: str | None = None, *, mode: str | None = None, **kwargs):
    """Load any scorer: a mmreward checkpoint (its kind is recorded), a plain VLM, or an open_clip model.

    Args:
        path_or_id: a checkpoint directory written by a scorer's `save_pretrained`; a plain Qwen-VL directory or
            hub id (scored with the yes-token scorer); or, with kind "clip", an open_clip spec: "MODEL[:PRETRAINED]"
            where PRETRAINED is a tag or a local weights file, a local open_clip folder, "hf-hub:…" or
            "local-dir:…" (see `mmreward.models.clip_weights`); or a published reward model's folder
            (VideoAlign, Skywork-VL-Reward: `mmreward.models.importers`), recognised by its files.
        kind: force a kind of `SCORERS` ("head", "yes_token", "clip", "judge", …) instead of reading it from the
            checkpoint.
        mode: for a plain VLM, "pointwise" or "pairwise"; for open_clip, "clipscore" or "vlmrm". Checkpoints
            record their mode, so it is an error there.
        **kwargs: passed to the scorer's loader (dtype, device, …).

    Returns:
        A scorer implementing the `Scorer` protocol.

    Raises:
        CheckpointError: a missing folder, an interrupted save, an edited or corrupt checkpoint, a hub model or
            CLIP weights that are not available offline (each message names the file and what to do).
        ConfigError: an unknown kind, or a kind / mode that contradicts the checkpoint.
    """
    kinds = ", ".join(SCORERS)
    if kind is not None and kind not in SCORERS:
        raise ConfigError(f"scorer kind {kind!r} unknown; choose one of {kinds}")
    path = Path(path_or_id).expanduser()
    if path.is_dir() and any((path / name).exists() for name in (CONFIG_NAME, *SAVED_PARTS)):
        # Ours, complete or not: read_config refuses an interrupted save or an edited config, naming the file.
        recorded = read_config(path).get("scorer")
        if recorded not in SCORERS:
            raise CheckpointError(f"{path / CONFIG_NAME}: 'scorer' must be one of {kinds}, "
                                  f"got {recorded!r}; undo the edit, or save the model again")
        if kind is not None and kind != recorded:
            raise ConfigError(f"{path}: is a {recorded!r} checkpoint, cannot load it as {kind!r}; drop --scorer")
        if mode is not None:
            raise ConfigError(f"{path}: the scoring mode is recorded in the checkpoint; drop --mode")
        return SCORERS[recorded].from_pretrained(path, **kwargs)
    # A published reward model's folder (VideoAlign, Skywork-VL-Reward) is recognised by its files.
    chosen = kind or detect_published(path) or DEFAULT_KIND
    return SCORERS[chosen].from_source(str(path_or_id), mode=mode, **kwargs)
