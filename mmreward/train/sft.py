"""Cold-start SFT of a tool-using judge on trajectories, with TRL's `SFTTrainer` (loss on assistant tokens only).

    mmreward train sft --model /tmp/tiny-qwen25vl --train_data data_recipes/demo.yaml --use_cpu true --max_steps 20
    mmreward train sft --model Qwen/Qwen2.5-VL-7B-Instruct --train_data teacher_traces.jsonl --lora_r 64
    torchrun --nproc_per_node 8 -m mmreward.cli train sft --config FILE.yaml [--key value …]

`train_data` is a Trajectory JSONL (teacher traces, rejection-sampled episodes; format in `train/traces.py`) or
labelled pairs (a records JSONL, a built recipe folder, a recipe YAML) from which the scripted traces of
`traces.synthetic_traces` are made. Each trajectory is rendered with the tool-capable chat template and the same
tool schemas the judge shows at inference; prompt, tool results and template glue are masked out of the labels
(`agent.generate.tokenize_trajectory`). The output directory is a judge checkpoint: `load_scorer(out)` gives a
`JudgeScorer` (`mmreward score --scorer judge --model out`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import trl
from transformers import TrainerCallback, set_seed

from mmreward.agent.judge_scorer import JudgeConfig
from mmreward.data.trajectory import Trajectory
from mmreward.train.args import JudgeArgs, PolicyArgs, RunArgs, ensure_tiny_model

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class SFTConfig(trl.SFTConfig, JudgeArgs, PolicyArgs, RunArgs):
    """TRL's SFTConfig (lr, batch size, steps, saving, DeepSpeed/FSDP, …) plus the judge and data fields."""

    # Backbone: hub id or local directory of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model (also the LoRA base).
    model: str = ""
    # A Trajectory JSONL, or labelled pairs (records JSONL, built recipe folder, recipe YAML) to script traces from.
    train_data: str = ""
    # The recipe split read when train_data is a recipe, and how many of its records (or trajectories) to use
    # (None: all).
    train_split: str = "train"
    max_records: int | None = None
    # Scripted traces from labelled pairs: also the swapped pair of each (A and B exchanged, labels flipped), so
    # that answering by position is never rewarded. Trajectory files are used as they are.
    swap_augment: bool = True
    # Share of the labelled pairs scripted with the tools off (no schemas, no tool prompt, an answer from the first
    # look), so that the judge also answers when run without tools. Trajectory files are used as they are.
    no_tool_share: float = 0.0
    # Judge settings used only at inference, saved with the judge (as in `agent.judge_scorer.JudgeConfig`).
    max_turns: int = JudgeConfig.max_turns
    max_images: int = JudgeConfig.max_images
    memory_window: int = JudgeConfig.memory_window
    max_new_tokens: int = JudgeConfig.max_new_tokens
    temperature: float = JudgeConfig.temperature
    top_p: float = JudgeConfig.top_p
    # Token budget per trajectory (None: no limit). Longer ones are never truncated (a cut inside an image or a
    # tool call teaches garbage): on_overflow "skip" drops them with a warning, "error" stops.
    max_length: int | None = None
    on_overflow: str = "skip"
    # Defaults that differ from TRL's: batches come from our collator (TRL must not prepare or prune the data);
    # no external loggers; mixed precision bf16 only where the GPU has it (TRL's default also asks for it on CPU).
    output_dir: str = "outputs/sft"
    report_to: str | list[str] | None = "none"
    remove_unused_columns: bool = False
    dataset_kwargs: dict[str, Any] | str | None = field(default_factory=lambda: {"skip_prepare_dataset": True})
    bf16: bool | None = None
    # Pinned memory only helps when copying to a GPU.
    dataloader_pin_memory: bool = torch.cuda.is_available()

    def __post_init__(self):
        from mmreward.agent.tools import TOOLS, check_tool_schema

        check_tool_schema(self.tool_schema)
        if not self.model:
            raise ValueError("model is required (a hub id or a local Qwen-VL directory)")
        if not self.train_data:
            raise ValueError("train_data is required (Trajectory JSONL, records JSONL, recipe YAML or folder)")
        if not 0.0 <= self.no_tool_share <= 1.0:
            raise ValueError(f"no_tool_share must be in [0, 1], got {self.no_tool_share!r}")
        if self.on_overflow not in ("skip", "error"):
            raise ValueError(f"on_overflow must be 'skip' or 'error', got {self.on_overflow!r}")
        unknown = sorted(set(self.tools) - set(TOOLS))
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(TOOLS)}")
        if isinstance(self.dataset_kwargs, str):
            self.dataset_kwargs = json.loads(self.dataset_kwargs)
        if not (self.dataset_kwargs or {}).get("skip_prepare_dataset"):
            raise ValueError("dataset_kwargs must keep skip_prepare_dataset: true (our collator builds the batches)")
        if self.bf16 is None:
            self.bf16 = (not self.fp16 and not self.use_cpu and torch.cuda.is_available()
                         and torch.cuda.is_bf16_supported())
        super().__post_init__()

    def judge_config(self) -> JudgeConfig:
        """The `JudgeConfig` of the judge being trained (saved with it; used to script synthetic traces)."""
        return self.to_judge_config(self.model)


def _is_trajectory_file(path: Path) -> bool:
    """Whether a JSONL holds trajectories (a "messages" field) rather than preference records."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return "messages" in json.loads(line)
    return False


def load_trajectories(cfg: SFTConfig) -> list[Trajectory]:
    """The training trajectories: read from a Trajectory JSONL, or scripted from labelled pairs.

    Args:
        cfg: the config (`train_data`, `train_split`, judge settings, `seed`).

    Returns:
        Untokenised trajectories.
    """
    from mmreward.data.trajectory import read_trajectories
    from mmreward.train.bt_setup import read_records
    from mmreward.train.traces import synthetic_traces

    path = Path(cfg.train_data)
    if path.suffix == ".jsonl" and path.is_file() and _is_trajectory_file(path):
        return read_trajectories(path)[: cfg.max_records]
    records = read_records(cfg.train_data, cfg.train_split, Path(cfg.output_dir))[: cfg.max_records]
    return synthetic_traces(records, cfg.judge_config(), seed=cfg.seed, swap=cfg.swap_augment,
                            no_tool_share=cfg.no_tool_share)


def tokenize_all(trajectories: list[Trajectory], processor, tools: list[dict] | None,
                 max_length: int | None = None, on_overflow: str = "skip", progress: bool = False) -> list[Trajectory]:
    """Fill every trajectory's `input_ids` / `loss_mask` for this processor; drop (or refuse) overlong ones.

    Args:
        trajectories: the trajectories (tokenised in place; ids from another processor are recomputed).
        processor: the model's processor.
        tools: the tool schemas rendered into the system turn.
        max_length: token budget per trajectory (None: no limit).
        on_overflow: "skip" or "error" for a trajectory over the budget.
        progress: show a progress bar (rendering and tokenising thousands of trajectories takes a while).

    Returns:
        The trajectories that fit, in order.
    """
    from tqdm.auto import tqdm

    from mmreward.agent.generate import tokenize_trajectory

    kept = []
    for traj in tqdm(trajectories, desc="tokenising trajectories", unit="traj", disable=not progress):
        tokenize_trajectory(traj, processor, trajectory_tools(traj, tools))
        if max_length is not None and len(traj.input_ids) > max_length:
            message = f"{traj.id}: {len(traj.input_ids)} tokens > max_length {max_length}"
            if on_overflow == "error":
                raise ValueError(message + " (raise max_length, or on_overflow: skip)")
            logger.warning("%s: skipped", message)
            continue
        if not any(traj.loss_mask):
            logger.warning("%s: no assistant tokens to train on; skipped", traj.id)
            continue
        kept.append(traj)
    if not kept:
        raise ValueError(f"no trajectory left to train on (of {len(trajectories)}; max_length {max_length})")
    logger.info("SFT on %d trajectories (%d skipped), %d tokens, %d trained", len(kept),
                len(trajectories) - len(kept), sum(len(t.input_ids) for t in kept),
                sum(sum(t.loss_mask) for t in kept))
    return kept


def trajectory_tools(traj: Trajectory, tools: list[dict] | None) -> list[dict] | None:
    """The tool schemas a trajectory was generated with: none when its `meta["tools"]` is [] (traced with the
    tools off), else the run's."""
    names = traj.meta.get("tools") if isinstance(traj.meta, dict) else None
    return None if names == [] else tools


class TrajectoryCollator:
    """Turns dataset rows `{"index": i}` into a right-padded batch of rendered trajectories with SFT labels.

    Each trajectory is rendered with the tool template (`agent.generate.render`) and run through the processor with
    its images; `labels` are the input ids with every token outside the assistant turns set to -100.
    """

    def __init__(self, trajectories: list[Trajectory], processor, tools: list[dict] | None):
        self.trajectories = trajectories
        self.processor = processor
        self.tools = tools

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        """Collate rows.

        Args:
            rows: dataset rows, each `{"index": i}` into the trajectories (already tokenised by `tokenize_all`).

        Returns:
            The processor's batch (input_ids (B, L), attention_mask (B, L), pixel_values, image_grid_thw, …) plus
            labels (B, L): -100 on prompt, tool-output and padding tokens.
        """
        from mmreward.agent.generate import render

        trajs = [self.trajectories[row["index"]] for row in rows]
        texts = [render(self.processor, t.messages, trajectory_tools(t, self.tools), add_generation_prompt=False)
                 for t in trajs]
        images = [image for t in trajs for image in t.images]
        tokenizer = self.processor.tokenizer
        old_side = tokenizer.padding_side
        tokenizer.padding_side = "right"  # labels and the loss mask are aligned from the left
        try:
            batch = self.processor(text=texts, images=images or None, return_tensors="pt", padding=True)
        finally:
            tokenizer.padding_side = old_side
        labels = torch.full_like(batch["input_ids"], IGNORE)
        for row, traj in enumerate(trajs):
            n = len(traj.input_ids)
            # The mask was computed on this very rendering; a mismatch means the ids moved under it.
            if batch["input_ids"][row, :n].tolist() != traj.input_ids or int(batch["attention_mask"][row].sum()) != n:
                raise RuntimeError(f"{traj.id}: the batch's token ids differ from the tokenised trajectory")
            ids, mask = batch["input_ids"][row, :n], torch.tensor(traj.loss_mask, dtype=torch.bool)
            labels[row, :n] = ids.masked_fill(~mask, IGNORE)
        batch["labels"] = labels
        return dict(batch)


@contextlib.contextmanager
def labelled_positions_only():
    """While active, TRL's fused LM-head loss scores only the labelled positions on CPU too.

    TRL (1.16) scores every position of the batch off CUDA/XPU, so that the tile shapes stay fixed for compilers
    (Neuron); on CPU that is pure cost: a judge trace trains on ~10% of its tokens, and the head over all of them
    was a quarter of a CPU step. The loss and metrics are the same (the unlabelled positions are zeroed either
    way). Only `trl.trainer.utils`' decision is switched; the kernels still run their torch (CPU) tiles. Without
    that hook (another TRL version) nothing changes.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


def train(cfg: SFTConfig, callbacks: list[TrainerCallback] | None = None) -> Path:
    """Supervised fine-tuning of a judge on tool-using trajectories.

    Args:
        cfg: the config.
        callbacks: extra `TrainerCallback`s (progress reporting, early stopping, …).

    Returns:
        The output directory, a judge checkpoint (`load_scorer(out)` -> `JudgeScorer`).
    """
    from datasets import Dataset

    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.agent.tools import judge_tool_schemas
    from mmreward.models.backbone import load_vlm
    from mmreward.train.run_dir import RecordRun, prepare_output_dir

    # Before anything is written: refuse another run's folder, and a latest checkpoint of a different config.
    resume = prepare_output_dir(cfg)
    ensure_tiny_model(cfg)
    # Seed before building the model: LoRA's initialisation (and the traces' wording) must be reproducible.
    set_seed(cfg.seed)
    # Rank 0 first: a recipe YAML is built once into output_dir/data, the other ranks then read it.
    with cfg.main_process_first(desc="loading trajectories"):
        trajectories = load_trajectories(cfg)
    lora = cfg.lora_spec()
    # A judge checkpoint (an earlier SFT / RFT output) keeps full weights in backbone/ and the processor beside it.
    source = Path(cfg.model)
    weights, processor_from = (source / "backbone", source) if (source / "backbone").is_dir() else (cfg.model, None)
    model, processor = load_vlm(weights, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation, lora=lora,
                                freeze_vision=cfg.freeze_vision, processor_from=processor_from)
    # The same schemas the judge shows at inference (JudgeScorer.run), so SFT teaches the prompt it will see.
    tools = judge_tool_schemas(cfg.tools, cfg.tool_schema)
    trajectories = tokenize_all(trajectories, processor, tools, cfg.max_length, cfg.on_overflow,
                                progress=not cfg.disable_tqdm and cfg.process_index == 0)
    # TRL 1.16 accepts only `datasets` datasets; rows are indices, the collator holds the trajectories (and
    # their PIL images), so nothing is serialised.
    dataset = Dataset.from_dict({"index": list(range(len(trajectories)))})
    trainer = trl.SFTTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=processor,
                             data_collator=TrajectoryCollator(trajectories, processor, tools),
                             callbacks=[RecordRun(cfg), *(callbacks or [])])
    with labelled_positions_only():
        trainer.train(resume_from_checkpoint=resume)
    # Written in the judge format so the result is scored directly. Under ZeRO-3 / FSDP the live weights are
    # sharded and this would need the gathered state dict (JudgeScorer.save_pretrained does not take one yet).
    if trainer.is_world_process_zero():
        judge = JudgeScorer(trainer.accelerator.unwrap_model(trainer.model), processor, cfg.judge_config())
        judge.save_pretrained(cfg.output_dir)
    return Path(cfg.output_dir)
