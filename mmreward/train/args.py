"""Config fields shared by the judge-training stages (SFT, GRPO): the judge's rendering settings and the policy.

Mixed into `sft.SFTConfig` and `grpo.JudgeGRPOConfig` (and `RunArgs`, `PolicyArgs` into `bt.BTConfig` too) so each
field is defined and documented once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

from mmreward.agent.judge_scorer import JudgeConfig, default_tools
from mmreward.models.backbone import LoraSpec


@dataclass
class JudgeArgs:
    """How the judge is shown its media and tools (same names and defaults as `agent.judge_scorer.JudgeConfig`)."""

    # Tools the judge may call (agent.tools.TOOLS): their schemas are rendered into every sequence; empty: a plain
    # chain-of-thought judge.
    tools: list[str] = field(default_factory=default_tools)
    # How the tools are documented in every sequence: "full" (their docstrings) or "brief" (agent.tools.BRIEF_DOCS).
    tool_schema: str = JudgeConfig.tool_schema
    # First-look frames per video, the select_frames workspace per video, and frames per call.
    initial_frames: int = JudgeConfig.initial_frames
    workspace_frames: int = JudgeConfig.workspace_frames
    max_frames_per_call: int = JudgeConfig.max_frames_per_call
    # Pixel budgets of prompt images / first-look frames and of tool-returned images.
    image_max_pixels: int = JudgeConfig.image_max_pixels
    tool_max_pixels: int = JudgeConfig.tool_max_pixels
    # Judge template (prompts.JUDGE_TEMPLATES); None picks pairwise_video / pairwise_image / … per record.
    template: str | None = JudgeConfig.template

    def to_judge_config(self, backbone: str, **overrides) -> JudgeConfig:
        """The `JudgeConfig` these settings describe: every field both dataclasses have, plus `overrides`.

        Judge settings a stage does not expose keep `JudgeConfig`'s defaults, so a field added to `JudgeConfig`
        later needs no change here.

        Args:
            backbone: the judge VLM (hub id or directory; the LoRA base when an adapter is saved).
            **overrides: `JudgeConfig` fields the stage sets itself (e.g. GRPO's `max_turns`).
        """
        shared = {f.name: getattr(self, f.name) for f in fields(JudgeConfig)
                  if f.name not in ("backbone", "tools") and hasattr(self, f.name)}
        return JudgeConfig(**{**shared, "backbone": backbone, "tools": list(self.tools), **overrides})


@dataclass
class PolicyArgs:
    """The model being trained: LoRA, frozen vision tower, dtype and attention kernel."""

    # LoRA rank; 0 trains all weights.
    lora_r: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    # peft target_modules regex; None: the model family's (`models.backbone.FAMILIES`, e.g. Qwen3.5 adds its
    # linear-attention projections).
    lora_target_modules: str | None = None
    # Keep the vision tower fixed (VR-Thinker trains the language model only: the judge learns the protocol).
    freeze_vision: bool = True
    # Weights dtype ("auto": bf16 on a capable GPU, else fp32) and attention kernel ("auto": flash-attn if present).
    dtype: str = "auto"
    attn_implementation: str = "auto"
    # Offline smoke runs: when `model` does not exist yet, build a tiny random-weight checkpoint of this family there
    # first (qwen2_vl, qwen2_5_vl, qwen3_vl; `mmreward tiny`). None: `model` must exist or be a hub id.
    tiny_family: str | None = None

    def lora_spec(self) -> LoraSpec | None:
        """The LoRA settings of this policy, or None when `lora_r` is 0 (all weights train)."""
        if self.lora_r <= 0:
            return None
        return LoraSpec(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout,
                        target_modules=self.lora_target_modules)


def ensure_tiny_model(cfg) -> None:
    """Build the tiny checkpoint named by `cfg.tiny_family` at `cfg.model` if that folder has none (rank 0 first)."""
    from pathlib import Path

    if not cfg.tiny_family or (Path(cfg.model) / "config.json").is_file():
        return
    from mmreward.models.tiny import FAMILIES, make_tiny_vlm

    if cfg.tiny_family not in FAMILIES:
        from mmreward.errors import ConfigError

        raise ConfigError(f"tiny_family {cfg.tiny_family!r} is not one of {', '.join(sorted(FAMILIES))}")
    with cfg.main_process_first(desc="building the tiny model"):
        if not (Path(cfg.model) / "config.json").is_file():
            make_tiny_vlm(cfg.model, family=cfg.tiny_family)
            logging.getLogger(__name__).info("built a tiny random-weight %s checkpoint at %s (tiny_family)",
                                             cfg.tiny_family, cfg.model)


@dataclass
class RunArgs:
    """How a run treats its output folder (see `train.run_dir`)."""

    # Replace a previous run in output_dir (its files are removed first); without it, training into a folder that
    # holds another run is refused unless resume_from_checkpoint is given.
    overwrite_output_dir: bool = False
