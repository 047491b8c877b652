"""Rejection-sampling fine-tuning of a reasoning judge: sample episodes, keep only fully correct ones, SFT on them.

    mmreward train rft --config launch/configs/tiny_cpu/rft.yaml [--key value …]

For each labelled pair, K episodes are sampled with the current judge (the agent loop with its tools; HF generate
here, any `generate_fn` such as vLLM through `JudgeScorer(generate_fn=…)`). An episode is kept only if its
per-dimension and overall verdicts all match the labels (VR-Thinker's RFT rule) and, by default for pairs, if the
judge also gets the swapped pair right (`require_swap_agreement`). Pairs are sampled in both orders by default
(`swap_augment`): episode k of a pair and episode k of its swap are each other's agreement check, and both are
kept when both are right, so the SFT data has no position bias. Kept trajectories and statistics (acceptance per dimension, tool-use rate, parse
failures) are written, then the SFT stage (`mmreward.train.sft`) trains on them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from mmreward.agent.judge_scorer import default_tools

logger = logging.getLogger(__name__)


@dataclass
class RFTConfig:
    """Sampling, filtering, and the settings handed to the SFT stage."""

    # Judge to sample from (hub id, local VLM, or a judge checkpoint from `mmreward train sft`).
    model: str = ""
    # Labelled pairs: JSONL, built recipe folder, or recipe YAML (its train split).
    train_data: str = ""
    train_split: str = "train"
    # Use only the first N pairs (None: all).
    max_records: int | None = None
    # Episodes sampled per pair, and their sampling temperature / top-p.
    samples_per_record: int = 4
    temperature: float = 1.0
    top_p: float = 0.95
    # Also require a correct verdict on the swapped pair (A and B exchanged) before keeping an episode (pairs
    # only: a pointwise record has no other order). A judge that answers by position never passes it.
    require_swap_agreement: bool = True
    # Sample every pair in both orders (labels flipped) and keep the right episodes of each, so the kept data
    # holds both orders; with require_swap_agreement the two orders check each other (no extra episodes).
    swap_augment: bool = True
    # Judge settings used while sampling (see agent.judge_scorer.JudgeConfig; the tools default to
    # agent.tools.DEFAULT_TOOLS, the one default list).
    tools: list[str] = field(default_factory=default_tools)
    initial_frames: int = 4
    max_turns: int = 4
    max_new_tokens: int = 512
    batch_size: int = 4
    # Where kept trajectories, statistics and the fine-tuned judge (output_dir/model) go.
    output_dir: str = "outputs/rft"
    # Replace a previous RFT run in output_dir (without it, a folder holding one is refused).
    overwrite_output_dir: bool = False
    # Overrides for the SFT stage's config (mmreward.train.sft.SFTConfig fields), e.g. {max_steps: 200}.
    sft: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        if not self.model or not self.train_data:
            raise ValueError("model and train_data are required")
        if self.samples_per_record < 1:
            raise ValueError(f"samples_per_record must be >= 1, got {self.samples_per_record}")


def episode_correct(traj, record) -> dict[str, bool]:
    """Per-dimension correctness of an episode's verdict against a record's labels (overall included).

    Dimensions the template asks for but the record does not label are checked against the overall label (the
    same rule the synthetic traces use).
    """
    from mmreward.judge import Verdict, verdict_matches
    from mmreward.prompts import JUDGE_DIMENSIONS

    dims = JUDGE_DIMENSIONS[traj.meta.get("template", "pairwise_image")]
    labels = {d: (record.dimensions or {}).get(d, record.label) for d in dims}
    labels["overall"] = record.label
    verdict = Verdict(ok=traj.verdict is not None, verdicts=traj.verdict or {}, reason=traj.parse_error,
                      kind="pairwise")
    return verdict_matches(verdict, labels)


def _swap_agreement(judge, records: list, trajs: list, cfg: RFTConfig, partner: list[int | None]) -> list[bool]:
    """Per episode: whether the judge also got the swapped pair right (True for pointwise records).

    With `swap_augment` the swapped pair's own episode (same sample number) is the check; otherwise the swapped
    pairs are judged once more for it.
    """
    from mmreward.data.schema import PreferencePair

    if not cfg.require_swap_agreement:
        return [True] * len(records)
    if cfg.swap_augment:
        ok = [all(episode_correct(t, r).values()) for t, r in zip(trajs, records)]
        return [True if j is None else ok[j] for j in partner]
    pairs = [i for i, r in enumerate(records) if isinstance(r, PreferencePair)]
    swapped = [records[i].swapped() for i in pairs]
    agreement = [True] * len(records)
    for i, t, r in zip(pairs, judge.run(swapped, batch_size=cfg.batch_size), swapped):
        agreement[i] = all(episode_correct(t, r).values())
    return agreement


def sample_and_filter(judge, records, cfg: RFTConfig) -> tuple[list, dict]:
    """Sample K episodes per record (per order with `swap_augment`), keep the fully correct ones that also
    pass the swap-agreement check; returns (kept trajectories, statistics)."""
    from mmreward.train.traces import both_orders

    k = cfg.samples_per_record
    base = both_orders(records) if cfg.swap_augment else list(records)
    repeated = [r for r in base for _ in range(k)]
    trajs = judge.run(repeated, batch_size=cfg.batch_size, progress=True)
    # both_orders puts a pair's swap right after it: sample s of record i partners sample s of its swap.
    partner: list[int | None] = [None] * len(repeated)
    for i, record in enumerate(base):
        if record.id.endswith("~swap"):
            for s in range(k):
                partner[(i - 1) * k + s], partner[i * k + s] = i * k + s, (i - 1) * k + s
    swapped_ok = _swap_agreement(judge, repeated, trajs, cfg, partner)
    kept, per_dim = [], {}
    for i, (traj, record) in enumerate(zip(trajs, repeated)):
        correct = episode_correct(traj, record)
        for dim, ok in correct.items():
            hits = per_dim.setdefault(dim, [0, 0])
            hits[0] += ok
            hits[1] += 1
        traj.meta.update(record_id=record.id, correct=correct)
        traj.id = f"{record.id}#{i % cfg.samples_per_record}"
        if all(correct.values()) and swapped_ok[i]:
            kept.append(traj)
    stats = {
        "episodes": len(trajs), "kept": len(kept), "acceptance": len(kept) / max(1, len(trajs)),
        "acceptance_per_dimension": {d: h[0] / h[1] for d, h in per_dim.items()},
        "tool_use_rate": sum(t.tool_calls > 0 for t in trajs) / max(1, len(trajs)),
        "mean_tool_calls": sum(t.tool_calls for t in trajs) / max(1, len(trajs)),
        "tool_failures": sum(t.tool_failures for t in trajs),
        "parse_failures": sum(t.verdict is None for t in trajs),
        "records_with_a_kept_episode": len({t.meta["record_id"].removesuffix("~swap") for t in kept}),
        "swap_agreement_required": cfg.require_swap_agreement,
        "swap_augment": cfg.swap_augment,
        "swap_partner_correct": sum(swapped_ok) / max(1, len(swapped_ok)),
    }
    return kept, stats


def train(cfg: RFTConfig, callbacks=None) -> Path:
    """Sample, filter, write `kept.jsonl` + `rft_stats.json`, then SFT on the kept episodes (output_dir/model)."""
    from transformers import set_seed

    from mmreward.config import load_config
    from mmreward.data.trajectory import write_trajectories
    from mmreward.scoring import load_scorer
    from mmreward.train import sft
    from mmreward.train.args import JudgeArgs
    from mmreward.train.bt_setup import read_records
    from mmreward.train.run_dir import prepare_output_dir

    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    # RFT has no resume of its own (its SFT stage does): a folder holding an earlier run is refused or cleared.
    prepare_output_dir(cfg)
    records = read_records(cfg.train_data, cfg.train_split, out)[: cfg.max_records]
    judge = load_scorer(cfg.model, kind="judge")
    # Sample with this stage's settings; the loaded judge's own config stays as it was saved.
    judge.config = replace(judge.config, tools=list(cfg.tools), initial_frames=cfg.initial_frames,
                           max_turns=cfg.max_turns, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                           top_p=cfg.top_p)
    kept, stats = sample_and_filter(judge, records, cfg)
    write_trajectories(out / "kept.jsonl", kept)
    (out / "rft_stats.json").write_text(json.dumps({**stats, "config": asdict(cfg)}, indent=2) + "\n")
    logger.info("RFT kept %d of %d episodes (acceptance %.3f; tool use %.3f; parse failures %d)", stats["kept"],
                stats["episodes"], stats["acceptance"], stats["tool_use_rate"], stats["parse_failures"])
    if not kept:
        from mmreward.errors import ConfigError

        # The judge is not yet good enough for this data: a setup to change, not a bug (one message, exit 2).
        raise ConfigError(f"no episode passed the filter ({stats['episodes']} sampled); see {out}/rft_stats.json "
                           "— cold-start the judge with `mmreward train sft` first or sample more")
    # Continue from the judge being improved (SFT accepts a judge checkpoint with full weights in backbone/).
    base = cfg.model if Path(cfg.model, "backbone").is_dir() else judge.config.backbone
    # The judge keeps how it was shown media (pixel budgets, workspace, …): the episodes were rendered with them.
    shown = {f.name: getattr(judge.config, f.name) for f in fields(JudgeArgs) if f.name != "tools"}
    sft_cfg = load_config(sft.SFTConfig, None, {"model": base, "train_data": str(out / "kept.jsonl"),
                                                "output_dir": str(out / "model"), "tools": list(cfg.tools),
                                                **shown, **cfg.sft})
    return sft.train(sft_cfg, callbacks=callbacks)
