"""GRPO for the tool-using judge on TRL's `GRPOTrainer`: rollouts call our tools, rewards read the verdict.

    mmreward train grpo --config launch/configs/tiny_cpu/grpo.yaml [--key value …]
    launch/train.sh grpo launch/configs/grpo_judge_qwen25vl_7b.yaml          # 8 GPUs, vLLM colocate, ZeRO-3

Each record becomes one prompt: exactly the judge's first turn (`JudgeScorer.conversation`). Images are shown
as they are; each video under judgment is shown as `initial_frames` first-look frames sampled uniformly over the
clip (`load_video(nframes=initial_frames)`), labelled with their timestamps, and the judge fetches more through
`select_frames` (a `workspace_frames` grid per video) and `crop`. TRL runs the tool loop with our environment
(`agent.env.env_factory`), masks tool results out of the loss, and scores each episode with the rewards named in
`reward_fns` (`train.reward_fns.REWARD_FNS`), summed with `reward_weights`. Prompts are built lazily per batch
(decoding frames), so a large record set costs no start-up time or memory. The output is a judge checkpoint:
`load_scorer(output_dir)` returns a `JudgeScorer`.

TRL fields pass straight through (this config *is* a `trl.GRPOConfig`); the ones that matter most:
    loss_type: "dapo" (TRL default: token losses normalised over the batch's tokens, no length bias), "grpo"
        (per-sequence mean, UnifiedReward-Think's aggregation), "dr_grpo", "bnpo", "cispo", "sapo", …
    beta: k3 KL coefficient to the initial policy (VR-Thinker 0.01, UnifiedReward-Think 0.04; 0 loads no
        reference model). With LoRA the reference is the policy with its adapter disabled.
    use_vllm / vllm_mode: generate with vLLM, "colocate" (in the training processes, sharing the GPUs; set
        vllm_gpu_memory_utilization) or "server" (`trl vllm-serve --model …` on separate GPUs).
    num_generations (G), temperature, top_p, max_completion_length (all turns *and* tool-returned image tokens),
    max_tool_calling_iterations (tool rounds per episode; VR-Thinker allows 3), epsilon / epsilon_high / delta
    (ratio clipping; `delta` bounds the ratio of negative-advantage tokens, the role R1-Reward's log-ratio
    pre-clip plays), scale_rewards, entropy_coef (VR-Thinker 0.01).
Recommended for Qwen2.5-VL-7B on 8 GPUs (VR-Thinker stage III): num_generations 8, temperature 1.0, top_p 0.95,
learning_rate 1e-6, beta 0.01, loss_type dapo, max_completion_length 6144, bf16, activation_checkpointing,
use_vllm true with vllm_mode colocate (vllm_gpu_memory_utilization 0.3), freeze_vision true, and either
lora_r 64 or full weights under DeepSpeed ZeRO-3; reward_fns [verdict_accuracy, strict_format,
vrthinker_tool_bonus] (VR-Thinker's exact schedule: reward_weights [1, 1, 1] and reward_kwargs
{vrthinker_tool_bonus: {decay_after: 30}}). UnifiedReward-Think: [verdict_accuracy, strict_format] with
{verdict_accuracy: {unparsable: 0.0}}, beta 0.04, loss_type grpo.

TRL keeps every tool image in context (no visual memory window), so the saved judge keeps them all too
(`memory_window=-1`). Trainer's intermediate `checkpoint-N` folders are for resuming; only the final
`output_dir` is a judge checkpoint. R1-Reward's StableReinforce advantage filter (3-sigma rule) has no TRL
option: `advantage_filter_sigma` adds it by wrapping TRL's advantage computation (`FilteredGRPOTrainer`).
VR-Thinker's curiosity term is the `tool_curiosity` reward, and `evidence_hit` pays for tool calls whose replies
contain the record's evidence (`meta["evidence"]`). InternVL (tiled images) trains through
`train.grpo_tiles.TiledImagesGRPOTrainer`, which works around TRL 1.16's tool-image path for tiling processors;
LLaVA-OneVision (anyres images) through `train.grpo_anyres.AnyresImagesGRPOTrainer`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from transformers import TrainerCallback, set_seed
from trl import GRPOConfig, GRPOTrainer

from mmreward.train.args import JudgeArgs, PolicyArgs, RunArgs, ensure_tiny_model
from mmreward.train.grpo_anyres import AnyresImagesGRPOTrainer
from mmreward.train.grpo_tiles import TiledImagesGRPOTrainer, tile_consistent_processor
from mmreward.train.reward_fns import REWARD_FNS

logger = logging.getLogger(__name__)


@dataclass
class JudgeGRPOConfig(GRPOConfig, JudgeArgs, PolicyArgs, RunArgs):
    """trl.GRPOConfig (loss, KL, sampling, vLLM, batch sizes, saving, …) plus the judge's fields."""

    # Policy: hub id or local Qwen2-VL / Qwen2.5-VL / Qwen3-VL directory, or a judge checkpoint (sft / rft output).
    model: str = ""
    # Prompt records: a JSONL file, a built recipe folder (manifest.json), or a recipe YAML (built first).
    train_data: str = ""
    # Held-out records (same forms; None: the recipe's eval split); used only when eval_strategy is not "no".
    eval_data: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    # Bad lines in JSONL data: "raise" or "skip" (written to <name>.errors.jsonl).
    data_on_error: str = "raise"
    # Rewards (train.reward_fns.REWARD_FNS), summed with TRL's `reward_weights` (one per name; None: all 1).
    reward_fns: list[str] = field(default_factory=lambda: ["verdict_accuracy", "strict_format"])
    # Keyword arguments per reward, e.g. {verdict_accuracy: {unparsable: 0.0}}.
    reward_kwargs: dict = field(default_factory=dict)
    # Defaults that differ from GRPOConfig: VR-Thinker's sampling, KL and tool rounds; room for tool images;
    # bf16 only where the GPU supports it (None); no external loggers.
    top_p: float = 0.95
    beta: float = 0.01
    max_tool_calling_iterations: int | None = 3
    max_completion_length: int | None = 4096
    bf16: bool | None = None
    output_dir: str = "outputs/grpo"
    report_to: str | list[str] | None = "none"
    # R1-Reward's advantage filter: advantages farther than this many standard deviations from the batch mean
    # are set to 0 (those samples do not update the policy); None: off. R1-Reward uses 3.
    advantage_filter_sigma: float | None = None

    def __post_init__(self):
        from mmreward.agent.tools import TOOLS, check_tool_schema
        from mmreward.prompts import JUDGE_TEMPLATES

        if not self.model:
            raise ValueError("model is required (a hub id, a local Qwen-VL directory or a judge checkpoint)")
        if not self.train_data:
            raise ValueError("train_data is required (JSONL, recipe YAML, or built recipe folder)")
        for kind, names, known in (("reward", self.reward_fns, REWARD_FNS), ("tool", self.tools, TOOLS),
                                   ("reward_kwargs", list(self.reward_kwargs), self.reward_fns)):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise ValueError(f"unknown {kind} name(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        if not self.reward_fns:
            raise ValueError("reward_fns must name at least one reward")
        if self.advantage_filter_sigma is not None and not self.advantage_filter_sigma > 0:
            raise ValueError(f"advantage_filter_sigma must be > 0 (R1-Reward: 3) or null, got "
                             f"{self.advantage_filter_sigma}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_fns):
            raise ValueError(f"reward_weights has {len(self.reward_weights)} values for "
                             f"{len(self.reward_fns)} reward_fns")
        check_tool_schema(self.tool_schema)
        if self.template is not None and self.template not in JUDGE_TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}; choose from {', '.join(JUDGE_TEMPLATES)}")
        if self.bf16 is None:
            # TRL turns None into bf16 everywhere, which CPU runs do not want.
            self.bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        super().__post_init__()


def filter_advantages(advantages: torch.Tensor, sigma: float) -> torch.Tensor:
    """R1-Reward's advantage filter: zero the advantages outside mean +- sigma * std (3-sigma rule).

    Args:
        advantages: (N,) advantages of a batch of completions.
        sigma: how many standard deviations are kept.

    Returns:
        (N,) the same advantages with the outliers set to 0 (fewer than 2 values: unchanged).
    """
    if advantages.numel() < 2:
        return advantages
    mean, std = advantages.mean(), advantages.std()
    keep = (advantages - mean).abs() <= sigma * std + 1e-6
    return torch.where(keep, advantages, torch.zeros_like(advantages))


class FilteredGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with R1-Reward's advantage filter applied to each generation batch's advantages.

    TRL computes advantages inside `_generate_and_score_completions` (no hook); this wraps it and filters the
    advantages it returns, which are the process's own completions (with several processes, the statistics are
    per process).
    """

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        sigma = self.args.advantage_filter_sigma
        if sigma is not None and "advantages" in output:
            before = output["advantages"]
            output["advantages"] = filter_advantages(before, sigma)
            dropped = int(((before != 0) & (output["advantages"] == 0)).sum())
            self._metrics["train"]["advantage_filter/dropped"].append(float(dropped))
        return output


class FilteredTiledGRPOTrainer(FilteredGRPOTrainer, TiledImagesGRPOTrainer):
    """The advantage filter on a tiling processor's trainer (InternVL; see `train.grpo_tiles`)."""


class FilteredAnyresGRPOTrainer(FilteredGRPOTrainer, AnyresImagesGRPOTrainer):
    """The advantage filter on LLaVA-OneVision's trainer (see `train.grpo_anyres`)."""


def trainer_class(cfg: JudgeGRPOConfig, family) -> type[GRPOTrainer]:
    """The GRPOTrainer (sub)class for this config and model family.

    Args:
        cfg: the config (`advantage_filter_sigma` adds R1-Reward's filter).
        family: the policy's `models.families.Family`; InternVL's tiles need `TiledImagesGRPOTrainer`,
            LLaVA-OneVision's anyres images `AnyresImagesGRPOTrainer`.

    Returns:
        The class to instantiate.
    """
    filtered = cfg.advantage_filter_sigma is not None
    if family.media_kind == "internvl":
        return FilteredTiledGRPOTrainer if filtered else TiledImagesGRPOTrainer
    if family.media_kind == "llava_onevision":
        return FilteredAnyresGRPOTrainer if filtered else AnyresImagesGRPOTrainer
    return FilteredGRPOTrainer if filtered else GRPOTrainer


def judge_config(cfg: JudgeGRPOConfig, backbone: str):
    """The `JudgeConfig` that renders the prompts and is saved with the trained judge."""
    rounds = cfg.max_tool_calling_iterations if cfg.max_tool_calling_iterations is not None else 3
    # TRL's tool loop keeps every returned image (no memory window) and runs `rounds` tool rounds.
    return cfg.to_judge_config(backbone, max_turns=rounds + 1, memory_window=-1,
                               max_new_tokens=cfg.max_completion_length or 512)


def record_json(record) -> str:
    """A record as JSON with absolute media paths, so the environment finds them from any working directory."""
    from mmreward.data.schema import PreferencePair

    d = record.to_dict()
    groups = [(record.media, d["media"])]
    if isinstance(record, PreferencePair):
        groups += [(record.a.media, d["a"]["media"]), (record.b.media, d["b"]["media"])]
    for items, dicts in groups:
        for item, out in zip(items, dicts):
            if item.path is not None:
                out["path"] = str(item.local_path())
            if item.frames is not None:
                out["frames"] = [str(p) for p in item.frame_paths()]
    return json.dumps(d, ensure_ascii=False)


class FirstTurn:
    """Dataset transform: `record` JSON -> the judge's first turn, as TRL reads a multimodal row.

    Output columns: `prompt` (system + user messages, `{"type": "image"}` placeholders), `images` (PIL, in
    placeholder order), `record` (for the environment's `reset` and the rewards) and `template` (its name).
    """

    def __init__(self, config):
        from mmreward.agent.judge_scorer import JudgeScorer

        # Only the prompt builder is used: no model is needed to render a first turn.
        self.judge = JudgeScorer(None, None, config)

    def __call__(self, batch: dict) -> dict:
        from mmreward.data.schema import parse_record

        out = {"prompt": [], "images": [], "record": [], "template": []}
        for raw in batch["record"]:
            messages, images, name = self.judge.conversation(parse_record(json.loads(raw)))
            out["prompt"].append(messages)
            out["images"].append(images)
            out["record"].append(raw)
            out["template"].append(name)
        return out


def prompt_dataset(records: list, config):
    """A `datasets.Dataset` of judge prompts, rendered on access (see `FirstTurn`)."""
    from datasets import Dataset

    dataset = Dataset.from_dict({"record": [record_json(r) for r in records]})
    dataset.set_transform(FirstTurn(config))
    return dataset


def load_policy(cfg: JudgeGRPOConfig):
    """(model, processor, backbone to record, merged): the VLM to train and where its weights come from.

    A judge checkpoint with full weights trains from its `backbone/`; one with a LoRA adapter is merged into
    its base first (so the policy, and the KL reference, start as that judge) and is then saved in full.
    """
    from mmreward.models.backbone import load_vlm, vision_tower
    from mmreward.models.checkpoint import CONFIG_NAME, load_backbone, read_config

    path, common = Path(cfg.model), dict(dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
    merged = False
    if not (path / CONFIG_NAME).is_file():
        model, processor = load_vlm(cfg.model, **common)
        backbone = cfg.model
    elif (path / "backbone").is_dir():
        model, processor = load_vlm(path / "backbone", processor_from=path, **common)
        backbone = str(path / "backbone")
    else:
        if cfg.lora_r == 0 and cfg.beta != 0.0:
            # TRL would rebuild the KL reference from the base id, not from the merged judge.
            raise ValueError(f"{path} holds a LoRA adapter: train it with lora_r > 0, or with beta 0")
        backbone = read_config(path)["backbone"]
        model, processor = load_backbone(path, backbone, lora=True, **common)
        model, merged = model.merge_and_unload(), True
    # A merged adapter leaves the base frozen; with LoRA, TRL's peft wrapping freezes the base again anyway.
    for param in model.parameters():
        param.requires_grad_(True)
    if cfg.freeze_vision:
        for param in vision_tower(model).parameters():
            param.requires_grad_(False)
    return model, processor, backbone, merged


def lora_config(cfg: JudgeGRPOConfig, model_config=None):
    """peft `LoraConfig` for GRPOTrainer (None without LoRA): TRL wraps the model and disables the adapter
    for the KL reference, so no second model is loaded. Without explicit `lora_target_modules` the targets are
    the model family's (`backbone.lora_targets`)."""
    spec = cfg.lora_spec()
    if spec is None:
        return None
    from peft import LoraConfig

    from mmreward.models.backbone import DEFAULT_LORA_TARGETS, lora_targets

    targets = lora_targets(model_config, spec.target_modules) if model_config is not None else \
        spec.target_modules or DEFAULT_LORA_TARGETS
    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                      bias="none")


def _gathered(model):
    """Under DeepSpeed ZeRO-3, the full parameters on every rank for the duration (else a no-op)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)


def train(cfg: JudgeGRPOConfig, callbacks: list[TrainerCallback] | None = None) -> Path:
    """Train the judge with GRPO and save it as a judge checkpoint.

    Args:
        cfg: the config.
        callbacks: extra `TrainerCallback`s (progress reporting, log capture, …).

    Returns:
        The output directory, a judge checkpoint (`load_scorer(DIR)`, `mmreward eval --scorer judge`).
    """
    from mmreward.agent.env import env_factory
    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.agent.protocol import use_tool_template
    from mmreward.models.backbone import family_of, vision_tower
    from mmreward.train.bt_setup import load_records
    from mmreward.train.run_dir import RecordRun, prepare_output_dir

    # Before anything is written: refuse another run's folder, and a latest checkpoint of a different config.
    resume = prepare_output_dir(cfg)
    ensure_tiny_model(cfg)
    set_seed(cfg.seed)
    train_records, eval_records = load_records(cfg)
    model, processor, backbone, merged = load_policy(cfg)
    if cfg.tools:
        # Qwen2/2.5-VL's shipped template cannot show tools; TRL refuses tools without a template that can.
        use_tool_template(processor)
    config = judge_config(cfg, backbone)
    evaluate = bool(eval_records) and cfg.eval_strategy != "no"
    # The tokenizer lets the rewards read each turn's raw text (TRL's parsed messages hide format violations).
    # The family gives the turn markers and tool-call format the raw text is read with.
    family = family_of(model.config)
    rewards = [partial(REWARD_FNS[name], tokenizer=processor.tokenizer, family=family,
                       **cfg.reward_kwargs.get(name, {}))
               for name in cfg.reward_fns]
    environment = None
    if cfg.tools:
        # The same tool settings as JudgeScorer.run, so episodes at training and at inference look alike.
        environment = env_factory(tools=tuple(cfg.tools), brief=cfg.tool_schema == "brief",
                                  workspace_frames=cfg.workspace_frames,
                                  max_frames_per_call=cfg.max_frames_per_call, max_pixels=cfg.tool_max_pixels)
    # TRL gets a processor whose image processor tiles as the processor does (InternVL; `train.grpo_tiles`);
    # the judge is saved with the loaded one.
    trainer = trainer_class(cfg, family)(
        model=model, processing_class=tile_consistent_processor(processor), reward_funcs=rewards, args=cfg,
        train_dataset=prompt_dataset(train_records, config),
        eval_dataset=prompt_dataset(eval_records, config) if evaluate else None,
        peft_config=lora_config(cfg, model.config), environment_factory=environment,
        callbacks=[RecordRun(cfg), *(callbacks or [])],
    )
    if cfg.lora_r > 0 and not cfg.freeze_vision:
        # peft froze everything but the adapters; the (disabled-adapter) KL reference shares this tower.
        for param in vision_tower(trainer.model).parameters():
            param.requires_grad_(True)
    trainer.train(resume_from_checkpoint=resume)

    policy = trainer.accelerator.unwrap_model(trainer.model)
    with _gathered(policy):
        if trainer.is_world_process_zero():
            if merged and hasattr(policy, "merge_and_unload"):
                # The merged starting point exists nowhere on disk, so an adapter alone could not be loaded.
                policy = policy.merge_and_unload()
            JudgeScorer(policy, processor, config).save_pretrained(cfg.output_dir)
    trainer.accelerator.wait_for_everyone()
    logger.info("saved the GRPO judge to %s", cfg.output_dir)
    return Path(cfg.output_dir)
