"""`mmreward demo judge`: show that the agentic judge learns, and that its tools matter, on CPU at tiny scale.

    mmreward demo judge [--out DIR] [--sft-steps 3000] [--grpo-steps 8] [--seed 0]

1. builds the tool-necessity set (`data/synthetic/tool_task.py`: flash videos whose deciding frame lies between
   the first-look frames, badge images whose deciding detail is below the first-look pixel budget) and a tiny
   random-weight Qwen2.5-VL whose tokenizer is trained on the demo's prompts and tool schemas;
2. measures the untrained judge, then runs cold-start SFT on teacher traces (oracle tool calls, both orders),
   RFT (sampled episodes kept when right in both orders) and GRPO (verdict + format + evidence rewards), and
   measures the judge after each stage;
3. every measurement judges each held-out pair in both orders, with tools and with tools disabled (same model;
   no tool schemas, no tool prompt, no tool loop), and reports accuracy, position consistency, parse failures,
   tool-call validity and how often the tools returned the evidence (`agent.evidence`);
4. prints the table, writes `results.json` ({"stages": {"untrained": {…}, "sft": {…}, "rft": {…},
   "grpo": {…}}}) and `results.png` in the output folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STAGES = ("untrained", "sft", "rft", "grpo")
METRICS = ("accuracy_tools", "accuracy_no_tools", "position_consistency", "parse_failure_rate",
           "tool_call_validity", "evidence_hit_rate")
TOOLS = ("select_frames", "crop")


@dataclass
class JudgeDemoSettings:
    """Sizes of the judge demo (the defaults are the benchmark run; tests use much smaller ones)."""

    family: str = "qwen2_5_vl"
    # Tiny model size (`models.tiny.SIZES`) and its tokenizer's vocabulary (trained on the demo's own text).
    size: str = "tiny"
    vocab_size: int = 4096
    # The flash times and quadrant names as whole tokens: a 2-layer random model does not learn to copy a number
    # digit by digit from 300 tokens back within minutes (measured: token accuracy stuck at 0.94, the time never
    # copied); a real VLM does. The media, the prompts and what the tools must be asked are unchanged.
    where_tokens: bool = True
    # Tie the input embedding and the LM head (Qwen2-VL-2B and Qwen2.5-VL-3B do). Measured (seed 0, 1500 SFT steps):
    # untied, the judge copied the prompt's place into its calls in 31% of held-out episodes, value by value; tied,
    # in 100% (a copy is then an attention to the token, which the head already scores).
    tie_embeddings: bool = True
    # Tool-necessity pairs per kind (80% train, 20% held out) and held-out pairs measured per stage (None: all).
    n_videos: int = 160
    n_images: int = 160
    # The flash times / quadrants the prompts may name (None: all; the tests' short settings use one each).
    video_places: tuple | None = None
    image_places: tuple | None = None
    eval_pairs: int | None = 48
    # What the judge is shown: first-look frames and pixel budgets (small, so that details need the tools).
    initial_frames: int = 4
    workspace_frames: int = 32
    image_max_pixels: int = 56 * 56
    # A crop of a quadrant comes back at half the tile's resolution: its 24 px badge is 12 px, a third of one of the
    # crop's 16 image tokens (at 224 px it would take 64 tokens per crop).
    tool_max_pixels: int = 112 * 112
    max_new_tokens: int = 96
    # Teacher traces look at one candidate per turn (two calls, then the verdict), and every returned image stays
    # in view (memory window -1: all; GRPO's tool loop keeps them all too).
    max_turns: int = 3
    memory_window: int = -1
    # Tool documentation in every sequence: "brief" (agent.tools.BRIEF_DOCS) halves the ~560 tokens of the full
    # docstrings, which a model trained from scratch must otherwise learn to look past.
    tool_schema: str = "brief"
    # The judge prompt: the brief two-line template (prompts.JUDGE_TEMPLATES["pairwise_brief"]); None: the full
    # pairwise_video / pairwise_image ones.
    template: str | None = "pairwise_brief"
    # Copy pretraining of the random tiny model (`models.tiny_pretrain`: random token strings written twice, no task
    # data), the in-context copying every pretrained VLM has; 0 skips it. Off by default: with 300 steps (copy
    # accuracy 1.00) and SFT at 1e-3 the SFT-ed judge did worse (0.19 with tools, parse failures 0.56) than without
    # it (0.48, 0.00): SFT overwrote the circuit rather than used it.
    pretrain_copy_steps: int = 0
    # Tokens per random string of the copy pretraining.
    pretrain_copy_length: int = 48
    # Cold-start SFT on teacher traces (both orders). Measured (seed 0): after 300 steps the judge follows the
    # protocol but copies no place from the prompt; after 1500 it still missed one flash time of six; after 3000
    # (~8.5 min on 2 idle cores) it looks in the right place and reads what it sees in every held-out episode but
    # one (0.99 with tools). The step at which each skill appears depends on the seed (README: seed 1 stalls).
    sft_steps: int = 3000
    sft_batch_size: int = 8
    sft_learning_rate: float = 3e-3
    # Share of the SFT pairs traced with the tools off, so that "accuracy without tools" measures the missing
    # evidence rather than a judge that never learned to answer without its tools.
    no_tool_share: float = 0.25
    # RFT: pairs sampled (both orders), episodes per pair and order, temperature; SFT steps on the kept ones.
    rft_records: int = 64
    rft_samples: int = 2
    # Sampling temperature of RFT and of GRPO's rollouts: at 1.0 the tiny SFT-ed judge breaks its own tool-call
    # JSON in most samples (measured: 115 of 256 RFT episodes unparsable; every GRPO completion of 8 steps ended on a
    # malformed call, reward -1 for all, zero advantage), so the demo samples cooler.
    rft_temperature: float = 0.7
    rft_steps: int = 30
    rft_learning_rate: float = 5e-4
    # GRPO: steps, generations per prompt, learning rate and rewards.
    grpo_steps: int = 8
    grpo_generations: int = 4
    grpo_learning_rate: float = 2e-4
    grpo_rewards: tuple[str, ...] = ("verdict_accuracy", "strict_format", "evidence_hit")
    eval_batch_size: int = 16
    seed: int = 0
    stages: tuple[str, ...] = STAGES
    progress: bool = False


@dataclass
class JudgeDemoReport:
    """What the judge demo measured (also written as results.json)."""

    out_dir: Path
    stages: dict[str, dict] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Stages that could not train (e.g. RFT kept no episode), with the reason; their row measures the judge unchanged.
    notes: dict[str, str] = field(default_factory=dict)
    # The copy pretraining's last loss and copy accuracy (empty when skipped).
    pretrain: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"stages": self.stages, "models": self.models, "timings": self.timings, "notes": self.notes,
                "pretrain": self.pretrain, "seconds": self.seconds}


# ---------------------------------------------------------------------------------------------- measuring

def judge_settings(s: JudgeDemoSettings) -> dict:
    """The judge's rendering settings (one place: SFT, RFT, GRPO and every measurement use them)."""
    return {"initial_frames": s.initial_frames, "workspace_frames": s.workspace_frames,
            "image_max_pixels": s.image_max_pixels, "tool_max_pixels": s.tool_max_pixels,
            "tool_schema": s.tool_schema, "template": s.template}


def episode_metrics(records, trajectories) -> dict:
    """Accuracy and friends over episodes judged in both orders.

    Args:
        records: `both_orders(pairs)`: each pair followed by its swap (id "…~swap").
        trajectories: one finished episode per record, in the same order.

    Returns:
        accuracy (parse failures count as wrong), position_consistency (share of pairs whose two verdicts name the
        same candidate; a parse failure is inconsistent), parse_failure_rate, tool_call_validity (share of the
        attempted calls — ran, failed, malformed or refused — that ran and returned a result; 0.0 without any), evidence_hit_rate (share of episodes whose tool replies showed the evidence
        in every candidate), tool_use_rate, mean_tool_calls, n_pairs, n_episodes.
    """
    from mmreward.agent.evidence import record_evidence_seen
    from mmreward.train.reward_fns import _text

    flip = {"A": "B", "B": "A", "tie": "tie"}
    verdicts = [(t.verdict or {}).get("overall") for t in trajectories]
    correct = [v == r.label for v, r in zip(verdicts, records)]
    pairs = [(i, i + 1) for i in range(0, len(records) - 1, 2) if records[i + 1].id == f"{records[i].id}~swap"]
    consistent = [verdicts[i] is not None and verdicts[j] is not None and flip.get(verdicts[j]) == verdicts[i]
                  for i, j in pairs]
    calls = sum(t.tool_calls for t in trajectories)
    # A call that ran answers with a tool message that is not an error; `tool_failures` counts every other
    # attempt, malformed calls included (those are not in `tool_calls`).
    valid = sum(1 for t in trajectories for m in t.messages
                if m.get("role") == "tool" and not _text(m.get("content")).startswith("Error:"))
    failures = sum(t.tool_failures for t in trajectories)
    hits = []
    for record, traj in zip(records, trajectories):
        texts = [_text(m.get("content")) for m in traj.messages if m.get("role") == "tool"]
        hits.append(bool(record_evidence_seen(record, texts)))
    n = max(1, len(trajectories))
    return {
        "accuracy": sum(correct) / n,
        "position_consistency": sum(consistent) / max(1, len(consistent)),
        "parse_failure_rate": sum(v is None for v in verdicts) / n,
        "tool_call_validity": valid / (valid + failures) if valid + failures else 0.0,
        "evidence_hit_rate": sum(hits) / n,
        "tool_use_rate": sum(t.tool_calls > 0 for t in trajectories) / n,
        "mean_tool_calls": calls / n,
        "n_pairs": len(pairs),
        "n_episodes": len(trajectories),
    }


def measure(model: str | Path, pairs, s: JudgeDemoSettings) -> dict:
    """One stage's row: the judge at `model` on held-out `pairs` (both orders), with tools and without.

    Args:
        model: a tiny base checkpoint (untrained) or a judge checkpoint (sft / rft / grpo output).
        pairs: held-out `PreferencePair`s.
        s: the demo settings (judge rendering, generation, batch size).

    Returns:
        The stage's metrics: `accuracy_tools`, `accuracy_no_tools`, `position_consistency`,
        `parse_failure_rate`, `tool_call_validity`, `evidence_hit_rate` (the with-tools run unless named),
        `n_pairs`, plus the no-tools run's consistency and parse failures and per-kind accuracies.
    """
    from mmreward.agent.judge_scorer import JudgeScorer
    from mmreward.train.traces import both_orders

    records = both_orders(pairs)
    judge = JudgeScorer.from_vlm(str(model), dtype="float32", max_new_tokens=s.max_new_tokens,
                                 max_turns=s.max_turns, memory_window=s.memory_window, temperature=0.0,
                                 tools=list(TOOLS), **judge_settings(s))
    runs = {}
    for mode, tools in (("tools", list(TOOLS)), ("no_tools", [])):
        judge.config.tools = tools
        trajs = judge.run(records, batch_size=s.eval_batch_size, progress=s.progress)
        runs[mode] = episode_metrics(records, trajs)
        for kind in ("video", "image"):
            idx = [i for i, r in enumerate(records) if r.meta.get("kind") == kind]
            if idx:
                sub = episode_metrics([records[i] for i in idx], [trajs[i] for i in idx])
                runs[mode][f"accuracy_{kind}"] = sub["accuracy"]
    t, n = runs["tools"], runs["no_tools"]
    row = {"accuracy_tools": t["accuracy"], "accuracy_no_tools": n["accuracy"],
           "position_consistency": t["position_consistency"], "parse_failure_rate": t["parse_failure_rate"],
           "tool_call_validity": t["tool_call_validity"], "evidence_hit_rate": t["evidence_hit_rate"],
           "n_pairs": t["n_pairs"], "tool_use_rate": t["tool_use_rate"], "mean_tool_calls": t["mean_tool_calls"],
           "position_consistency_no_tools": n["position_consistency"],
           "parse_failure_rate_no_tools": n["parse_failure_rate"]}
    row.update({f"{k}_tools": v for k, v in t.items() if k.startswith("accuracy_")})
    row.update({f"{k}_no_tools": v for k, v in n.items() if k.startswith("accuracy_")})
    return row


# ---------------------------------------------------------------------------------------------- stages

def _common(s: JudgeDemoSettings, progress: bool) -> dict:
    return {"use_cpu": True, "seed": s.seed, "disable_tqdm": not progress, "save_strategy": "no",
            "dataloader_num_workers": 0, "report_to": "none", "overwrite_output_dir": True}


def run_sft(base: Path, data: Path, out: Path, s: JudgeDemoSettings) -> Path:
    """Cold-start SFT on teacher traces of the train split (both orders: `swap_augment`)."""
    from mmreward.config import load_config
    from mmreward.train import sft

    cfg = load_config(sft.SFTConfig, None, {
        "model": str(base), "train_data": str(data), "output_dir": str(out), "tools": list(TOOLS),
        "max_steps": s.sft_steps, "per_device_train_batch_size": s.sft_batch_size,
        "learning_rate": s.sft_learning_rate, "lr_scheduler_type": "cosine", "warmup_steps": 0.05,
        "logging_steps": max(1, s.sft_steps // 10), "gradient_checkpointing": False, "swap_augment": True,
        "no_tool_share": s.no_tool_share, "memory_window": s.memory_window,
        "max_new_tokens": s.max_new_tokens, "max_turns": s.max_turns, **judge_settings(s),
        **_common(s, s.progress)})
    return sft.train(cfg)


def run_rft(judge: Path, data: Path, out: Path, s: JudgeDemoSettings) -> Path:
    """Rejection sampling on train pairs (both orders, swap agreement), then SFT on the kept episodes."""
    from mmreward.train import rft

    cfg = rft.RFTConfig(
        model=str(judge), train_data=str(data), max_records=s.rft_records, samples_per_record=s.rft_samples,
        temperature=s.rft_temperature, top_p=1.0, tools=list(TOOLS), initial_frames=s.initial_frames,
        max_turns=s.max_turns, max_new_tokens=s.max_new_tokens, batch_size=s.eval_batch_size,
        output_dir=str(out), overwrite_output_dir=True, require_swap_agreement=True, swap_augment=True,
        seed=s.seed, sft={"max_steps": s.rft_steps, "per_device_train_batch_size": s.sft_batch_size,
                          "learning_rate": s.rft_learning_rate, "lr_scheduler_type": "constant",
                          "logging_steps": max(1, s.rft_steps // 5), "gradient_checkpointing": False,
                          "max_new_tokens": s.max_new_tokens, "max_turns": s.max_turns,
                          "memory_window": s.memory_window, **_common(s, s.progress)})
    return rft.train(cfg)


def run_grpo(judge: Path, data: Path, out: Path, s: JudgeDemoSettings) -> Path:
    """GRPO from the RFT judge with verdict, format and evidence rewards (TRL's GRPOTrainer, CPU)."""
    from mmreward.config import load_config
    from mmreward.train import grpo

    cfg = load_config(grpo.JudgeGRPOConfig, None, {
        "model": str(judge), "train_data": str(data), "output_dir": str(out), "tools": list(TOOLS),
        "max_steps": s.grpo_steps, "num_generations": s.grpo_generations,
        "per_device_train_batch_size": s.grpo_generations, "learning_rate": s.grpo_learning_rate,
        # Every turn plus the tool replies (a 224 px crop is 64 image tokens) must fit, or TRL drops the replies.
        "lr_scheduler_type": "constant", "max_completion_length": s.max_turns * s.max_new_tokens + 256,
        "max_tool_calling_iterations": s.max_turns - 1, "reward_fns": list(s.grpo_rewards), "beta": 0.0,
        "temperature": s.rft_temperature, "top_p": 1.0, "logging_steps": 1, "bf16": False, "advantage_filter_sigma": 3.0,
        **judge_settings(s),
        **_common(s, s.progress)})
    return grpo.train(cfg)


# ---------------------------------------------------------------------------------------------- the demo

def demo_corpus(tools=TOOLS) -> tuple[str, ...]:
    """Text the demo's tiny tokenizer is trained on: the tool schemas, judge templates and prompt words, so that
    a sequence is about as long as with a real Qwen vocabulary (the byte-level default makes it ~2x longer)."""
    from mmreward.agent.tools import tool_schemas, tool_use_prompt
    from mmreward.prompts import JUDGE_TEMPLATES

    header = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
              "with function signatures within <tools></tools> XML tags:\n<tools>\n")
    schemas = "\n".join(json.dumps(schema) for brief in (False, True)
                         for schema in tool_schemas(list(tools), brief=brief))
    words = ("a grey ball that flashes red at about s a tile whose top bottom left right badge is red blue grey "
             "Video Image Frame Crop of image frames pixels resized to select_frames crop timestamps box The prompt "
             "says the first look misses it Only A B matches")
    return (header + schemas, *JUDGE_TEMPLATES.values(), tool_use_prompt(list(tools)), words) * 20


def run_judge_demo(out_dir: str | Path, settings: JudgeDemoSettings | None = None) -> JudgeDemoReport:
    """Build the data and the tiny judge, train it stage by stage, and measure it after each stage.

    Args:
        out_dir: working directory (data, checkpoints, results.json, results.png).
        settings: sizes and training settings (defaults: the benchmark run).

    Returns:
        The report (also written to `out_dir/results.json`).
    """
    from transformers import set_seed

    from mmreward.data.recipe import build_recipe, load_split
    from mmreward.data.recipe.tool_task import tool_task_recipe
    from mmreward.data.synthetic.tool_task import WHERE_WORDS
    from mmreward.errors import ConfigError
    from mmreward.models.tiny import make_tiny_vlm

    s = settings or JudgeDemoSettings()
    unknown = sorted(set(s.stages) - set(STAGES))
    if unknown:
        raise ConfigError(f"unknown demo stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = JudgeDemoReport(out_dir=out)
    set_seed(s.seed)
    base = make_tiny_vlm(out / f"tiny-{s.family}", family=s.family, seed=s.seed, size=s.size,
                         vocab_size=s.vocab_size, corpus=demo_corpus(), words=WHERE_WORDS if s.where_tokens else (),
                         tie_embeddings=s.tie_embeddings)
    if s.pretrain_copy_steps:
        from mmreward.models.tiny_pretrain import pretrain_copying

        report.pretrain = pretrain_copying(base, steps=s.pretrain_copy_steps, half_length=s.pretrain_copy_length,
                                           batch_size=max(4, 32 * 48 // s.pretrain_copy_length), seed=s.seed)
    data = out / "data"
    build_recipe(tool_task_recipe(s.n_videos, s.n_images, s.seed, s.video_places, s.image_places), data)
    held_out = _balanced(load_split(data, "test"), s.eval_pairs)
    report.timings["setup"] = time.perf_counter() - start
    logger.info("built %s and the tool-necessity set in %s (%d held-out pairs, judged in both orders)",
                base.name, data, len(held_out))
    model: Path = base
    runners = {"sft": lambda m: run_sft(m, data, out / "sft", s), "rft": lambda m: run_rft(m, data, out / "rft", s),
               "grpo": lambda m: run_grpo(m, data, out / "grpo", s)}
    for stage in STAGES:
        if stage not in s.stages:
            continue
        t0 = time.perf_counter()
        if stage != "untrained":
            try:
                model = runners[stage](model)
            except ConfigError as err:
                # RFT with no episode right in both orders: a judge not yet good enough, which is a result to
                # report (the row then measures the previous judge again), not a reason to stop the demo.
                logger.warning("%s did not train: %s", stage, err)
                report.notes[stage] = str(err)
        report.timings[f"{stage}_train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report.stages[stage] = measure(model, held_out, s)
        report.timings[f"{stage}_measure"] = time.perf_counter() - t0
        report.models[stage] = str(model)
        logger.info("%-9s %s", stage, _fmt(report.stages[stage]))
        _write(report, s)
    report.seconds = time.perf_counter() - start
    _write(report, s)
    return report


def _balanced(pairs: list, n: int | None) -> list:
    """The first n held-out pairs, half videos and half images where both kinds have enough (None: all)."""
    if n is None:
        return pairs
    kinds = {k: [p for p in pairs if p.meta.get("kind") == k] for k in ("video", "image")}
    take = {k: min(len(v), n // 2) for k, v in kinds.items()}
    spare = n - sum(take.values())
    for k, v in kinds.items():
        extra = min(spare, len(v) - take[k])
        take[k], spare = take[k] + extra, spare - extra
    return [p for k, v in kinds.items() for p in v[: take[k]]]


def _fmt(row: dict) -> str:
    return "  ".join(f"{k} {row[k]:.2f}" for k in METRICS)


def format_table(stages: dict[str, dict]) -> str:
    """The stage x metric table printed by `mmreward demo judge`."""
    heads = ("stage", "acc tools", "acc no tools", "pos. consist.", "parse fail", "tool valid", "evidence hit",
             "pairs")
    lines = ["  ".join(f"{h:>13}" for h in heads)]
    for stage, row in stages.items():
        cells = [stage, *(f"{row[k]:.3f}" for k in METRICS), str(row["n_pairs"])]
        lines.append("  ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def _write(report: JudgeDemoReport, s: JudgeDemoSettings) -> None:
    """results.json (with the settings) and results.png, rewritten after every stage."""
    payload = {**report.to_dict(), "settings": asdict(s)}
    (report.out_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    if report.stages:
        plot(report.stages, report.out_dir / "results.png")


def plot(stages: dict[str, dict], path: Path) -> Path:
    """A grouped bar chart of every metric per stage (headless matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(stages))
    for j, (stage, row) in enumerate(stages.items()):
        xs = [i + j * width for i in range(len(METRICS))]
        ax.bar(xs, [row[k] for k in METRICS], width, label=stage)
    ax.set_xticks([i + width * (len(stages) - 1) / 2 for i in range(len(METRICS))])
    ax.set_xticklabels([m.replace("_", "\n") for m in METRICS], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_title("tool-necessity task: held-out pairs, both orders")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
