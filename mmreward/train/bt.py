"""Bradley–Terry training of reward models (head or yes-token scorers) on `transformers.Trainer`.

    mmreward train bt --config launch/configs/tiny_cpu/bt.yaml [--key value …]
    torchrun --nproc_per_node 8 -m mmreward.cli train bt --config launch/configs/bt_qwen25vl_7b_video.yaml

Trainer supplies checkpointing, exact resume, DDP / FSDP / DeepSpeed and logging; this file adds the config,
the data, the scorer, and a loss that is `losses.bt_loss` (plus optional centering and regression terms).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from mmreward.data.collate import MediaContract
from mmreward.data.media import VideoSampling
from mmreward.evaluation.metrics import accuracy_without_ties
from mmreward.models.backbone import FAMILIES
from mmreward.train import losses
from mmreward.train.args import PolicyArgs, RunArgs, ensure_tiny_model
from mmreward.train.bt_setup import build_scorer, interrupt_hint, load_records, load_weights
from mmreward.train.pair_data import BOOKKEEPING_KEYS, RewardCollator, RewardDataset, split_rewards
from mmreward.train.run_dir import RecordRun, prepare_output_dir

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "mmreward_complete"


@dataclass
class BTConfig(TrainingArguments, PolicyArgs, RunArgs):
    """TrainingArguments (lr, batch size, steps, saving, DeepSpeed/FSDP, …) plus the reward-model fields."""

    # Backbone: hub id or local directory of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model.
    model: str = ""
    # "head" (backbone + pooling + reward head) or "yes_token" (P("yes"), no new parameters).
    scorer: str = "head"
    # Head architecture (models.heads.HEADS) and its inner width (None: the hidden size).
    head: str = "two_layer"
    head_inner_size: int | None = None
    # Pooling (models.heads.POOLS): "last", "mean" or "special" (needs reward_tokens).
    pooling: str = "last"
    # Reward dimensions; pairs label them in `dimensions`, the overall label feeds "overall" / a single dim.
    dimensions: list[str] = field(default_factory=lambda: ["overall"])
    reward_tokens: list[str] = field(default_factory=list)
    # User-turn template for head models (prompts.HEAD_TEMPLATES).
    prompt_template: str = "generation"
    # Yes-token question mode: "pointwise" (BT over two P(yes)) or "pairwise" (one question per pair).
    yes_mode: str = "pointwise"
    # Keep the vision tower fixed (reward models train it by default, as VideoAlign does). LoRA, dtype and the
    # attention kernel come from PolicyArgs.
    freeze_vision: bool = False
    # Training records: a JSONL file, a built recipe folder (manifest.json), or a recipe YAML (built first).
    train_data: str = ""
    # Evaluation records (same forms); None: the eval split of train_data when it is a recipe, else no eval.
    eval_data: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    # Bad lines in JSONL data: "raise" or "skip" (written to <name>.errors.jsonl).
    data_on_error: str = "raise"
    # The media contract (video fps or frame count, pixel budgets; None: the processor's defaults).
    video_fps: float | None = 2.0
    video_nframes: int | None = None
    video_max_pixels: int | None = None
    video_min_pixels: int | None = None
    image_max_pixels: int | None = None
    image_min_pixels: int | None = None
    # Token budget per sequence and what to do beyond it ("error" or "resample").
    max_length: int | None = None
    on_overflow: str = "error"
    # Ties: "drop" (ignored) or "rao_kupper" (trained, VideoAlign's BT-with-ties, θ = tie_k).
    ties: str = "drop"
    tie_k: float = 5.0
    # Use each pair's `margin` in the loss.
    use_margin: bool = False
    # Weights of the reward-centering penalty and of the regression term on pointwise ratings.
    centering_coef: float = 0.0
    regression_coef: float = 0.0
    # Defaults that differ from TrainingArguments: our batches carry custom keys; no external loggers by default.
    output_dir: str = "outputs/bt"
    remove_unused_columns: bool = False
    report_to: str | list[str] | None = "none"
    save_safetensors: bool = True
    # Pinned memory only helps when copying to a GPU.
    dataloader_pin_memory: bool = torch.cuda.is_available()

    def __post_init__(self):
        if not self.model:
            raise ValueError("model is required (a hub id or a local Qwen-VL directory)")
        if not self.train_data:
            raise ValueError("train_data is required (JSONL, recipe YAML, or built recipe folder)")
        from mmreward.scoring import trainable_kinds

        if self.scorer not in trainable_kinds():
            raise ValueError(f"scorer must be one of {', '.join(trainable_kinds())}, got {self.scorer!r}")
        if self.ties not in ("drop", "rao_kupper"):
            raise ValueError(f"ties must be 'drop' or 'rao_kupper', got {self.ties!r}")
        super().__post_init__()

    def media_contract(self, processor, model_type: str) -> MediaContract:
        """The contract from the processor's budgets with this config's overrides."""
        base = MediaContract.from_processor(processor, FAMILIES[model_type].factor, fps=self.video_fps,
                                            nframes=self.video_nframes)
        video = base.video.to_dict()
        for key, value in (("max_pixels", self.video_max_pixels), ("min_pixels", self.video_min_pixels)):
            if value is not None:
                video[key] = value
        return MediaContract(video=VideoSampling.from_dict(video),
                             image_min_pixels=self.image_min_pixels or base.image_min_pixels,
                             image_max_pixels=self.image_max_pixels or base.image_max_pixels)


class BTTrainer(Trainer):
    """A Trainer whose loss is Bradley–Terry on (A, B) rewards and whose eval reports pairwise accuracy."""

    def __init__(self, *args, bt_config: BTConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.bt = bt_config

    def _rewards(self, model, inputs: dict) -> torch.Tensor:
        forward_inputs = {k: v for k, v in inputs.items() if k not in BOOKKEEPING_KEYS}
        return model(**forward_inputs).float()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self._rewards(model, inputs)
        r_a, r_b = split_rewards(rewards, inputs)
        margin = inputs["margin"] if self.bt.use_margin else None
        loss = losses.bt_loss(r_a, r_b, inputs["labels"], margin, ties=self.bt.ties, tie_k=self.bt.tie_k)
        if self.bt.centering_coef:
            loss = loss + self.bt.centering_coef * losses.centering_loss(r_a, r_b)
        if self.bt.regression_coef and inputs["point_rows"].numel():
            loss = loss + self.bt.regression_coef * losses.regression_loss(rewards[inputs["point_rows"]],
                                                                           inputs["targets"])
        return (loss, {"margins": r_a - r_b}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), outputs["margins"].detach(), inputs["labels"]

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        # Checkpoints are in the reward-model format, so any checkpoint can be scored or evaluated directly.
        # Under ZeRO-3 / FSDP Trainer hands over the gathered full state dict; it is written instead of the
        # (sharded) live parameters.
        if self.args.should_save:
            self.model.save_pretrained(output_dir or self.args.output_dir, state_dict=state_dict)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        load_weights(model or self.model, Path(resume_from_checkpoint))


class _MarkComplete(TrainerCallback):
    """Marks a checkpoint complete only after Trainer has written all of it (weights, optimizer, state)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                (ckpt / COMPLETE_MARKER).write_text(str(state.global_step))


def pair_metrics(dimensions: list[str]):
    """compute_metrics for Trainer: accuracy without ties per dimension (and their mean)."""

    def compute(eval_pred) -> dict[str, float]:
        margins = torch.as_tensor(eval_pred.predictions).reshape(-1, len(dimensions))
        labels = torch.as_tensor(eval_pred.label_ids).reshape(-1, len(dimensions))
        out = {}
        for j, dim in enumerate(dimensions):
            keep = labels[:, j] != losses.IGNORE
            out[f"accuracy_{dim}"] = accuracy_without_ties(labels[keep, j].tolist(), margins[keep, j].tolist())
        values = [v for v in out.values() if v == v]
        out["accuracy"] = sum(values) / len(values) if values else float("nan")
        return out

    return compute


def train(cfg: BTConfig, callbacks: list[TrainerCallback] | None = None) -> Path:
    """Train a reward model with Bradley–Terry loss.

    Args:
        cfg: the config.
        callbacks: extra `TrainerCallback`s (progress reporting, early stopping, …).

    Returns:
        The output directory, a scorer checkpoint (`mmreward score --model DIR`).
    """
    # Before anything is written: refuse another run's folder, and a latest checkpoint of a different config.
    resume = prepare_output_dir(cfg, COMPLETE_MARKER)
    ensure_tiny_model(cfg)
    # Seed before building the scorer: the head's initialisation must be reproducible for exact resume.
    set_seed(cfg.seed)
    train_records, eval_records = load_records(cfg)
    scorer = build_scorer(cfg)
    dims = scorer.dimensions
    collator = RewardCollator(scorer.processor.tokenizer.pad_token_id, len(dims))
    trainer = BTTrainer(
        model=scorer, args=cfg, bt_config=cfg, data_collator=collator,
        train_dataset=RewardDataset(train_records, scorer, dims),
        eval_dataset=RewardDataset(eval_records, scorer, dims) if eval_records else None,
        compute_metrics=pair_metrics(dims),
        callbacks=[RecordRun(cfg, marker=None), _MarkComplete(), *(callbacks or [])],
    )
    # Ctrl-C ends in a TrainingInterrupted that says where the last complete checkpoint is (the CLI prints it with
    # the resume command). The final save needs no marker of its own: the scorer config is removed first and
    # written last, so an interrupted final save is refused by load_scorer.
    with interrupt_hint(cfg.output_dir, COMPLETE_MARKER):
        trainer.train(resume_from_checkpoint=resume)
        trainer.save_model(cfg.output_dir)
    if eval_records:
        metrics = trainer.evaluate()
        if trainer.is_world_process_zero():
            (Path(cfg.output_dir) / "eval_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
            # The mean accuracy first, then one per dimension.
            accuracy = ", ".join(f"{k.removeprefix('eval_')} {v:.3f}" for k, v in sorted(
                metrics.items(), key=lambda kv: kv[0] != "eval_accuracy") if k.startswith("eval_accuracy"))
            logger.info("held-out pairwise accuracy on %d records: %s (all metrics: %s)", len(eval_records),
                        accuracy, Path(cfg.output_dir) / "eval_results.json")
    return Path(cfg.output_dir)
