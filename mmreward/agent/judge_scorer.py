"""The agentic reasoning judge as a Scorer: tool-using episodes end in a structured verdict, turned into scores.

    judge = JudgeScorer.from_vlm("Qwen/Qwen2.5-VL-7B-Instruct", tools=("select_frames", "crop"))
    results = judge.score(pairs)                    # or: mmreward score --scorer judge …, mmreward eval --scorer judge
    rewards = pointwise_bridge(judge, prompt, rollouts, reference)   # a scalar per rollout for RL

Videos are shown as a few initial frames per video (VR-Thinker: 4), labelled with their timestamps; the judge
can look again with `select_frames` (a 96-frame workspace per video) and `crop`. A pairwise verdict becomes
scores A = 1, B = 0 (tie: 0.5 each) per dimension; a parse failure is an error result, never a score.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmreward.prompts import JUDGE_ANSWERS, JUDGE_DIMENSIONS
from mmreward.scoring_media import ScoreMediaMixin

logger = logging.getLogger(__name__)

VALUE = {"A": (1.0, 0.0), "B": (0.0, 1.0), "tie": (0.5, 0.5)}


def default_tools() -> list[str]:
    """`agent.tools.DEFAULT_TOOLS`, imported when a config is made: the tools load torch and PIL."""
    from mmreward.agent.tools import DEFAULT_TOOLS

    return list(DEFAULT_TOOLS)


@dataclass
class JudgeConfig:
    """How the judge is prompted and how far its episodes may go."""

    # Backbone: hub id or local directory of the judge VLM (the LoRA base when an adapter is saved).
    backbone: str = ""
    # Tools offered (agent.tools.TOOLS); empty: a plain chain-of-thought judge.
    tools: list[str] = field(default_factory=lambda: default_tools())
    # How the tools are documented in the system turn: "full" (their docstrings) or "brief" (one short line per
    # tool and parameter, `agent.tools.BRIEF_DOCS`: about half the tokens, for small judges).
    tool_schema: str = "full"
    # Frames per video shown in the prompt, the select_frames workspace per video, and frames per call.
    initial_frames: int = 4
    workspace_frames: int = 96
    max_frames_per_call: int = 8
    # Pixel budgets of prompt images / initial frames and of tool-returned images.
    image_max_pixels: int = 256 * 28 * 28
    tool_max_pixels: int = 256 * 28 * 28
    # Episode limits and the visual memory window (tool-returned image sets kept in context).
    max_turns: int = 4
    max_images: int = 64
    # Tool calls run per turn (the rest get one tool message saying so), checked before any call runs.
    max_tool_calls: int = 8
    memory_window: int = 1
    # Generation per turn (temperature 0: greedy).
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    # Judge template (prompts.JUDGE_TEMPLATES); None picks pairwise_video / pairwise_image / pairwise_response
    # / pointwise_* from the record.
    template: str | None = None


class JudgeScorer(ScoreMediaMixin):
    """Runs judge episodes and answers the Scorer protocol (`score(records) -> [ScoreResult]`)."""

    kind = "judge"

    def __init__(self, model, processor, config: JudgeConfig, generate_fn=None):
        from mmreward.agent.tools import check_tool_schema

        check_tool_schema(config.tool_schema)
        self.model = model
        self.processor = processor
        self.config = config
        self.dimensions = ["overall"]
        # A custom generate_fn (vLLM, a remote server, a scripted policy in tests) replaces HF generate.
        self.generate_fn = generate_fn
        # A `report_media.Thumbs` store: when set (the eval runner sets it), every result carries its episode
        # as a bounded trace (`ScoreResult.trace`) whose images are thumbnails written there.
        self.trace_thumbs = None

    @classmethod
    def from_vlm(cls, name_or_path: str | Path, *, dtype="auto", attn_implementation: str = "auto",
                 **config) -> JudgeScorer:
        """A judge on a generative VLM (hub id or local directory), or a trained judge directory (sft / rft / grpo
        output, as `load_scorer` reads it) with `config` overriding its saved settings."""
        from mmreward.models.backbone import load_vlm
        from mmreward.models.checkpoint import CONFIG_NAME

        if (Path(name_or_path) / CONFIG_NAME).is_file():
            judge = cls.from_pretrained(name_or_path, dtype=dtype, attn_implementation=attn_implementation)
            for key, value in config.items():
                if not hasattr(judge.config, key):
                    raise TypeError(f"JudgeConfig has no field {key!r}")
                setattr(judge.config, key, value)
            return judge
        model, processor = load_vlm(name_or_path, dtype=dtype, attn_implementation=attn_implementation)
        return cls(model.eval(), processor, JudgeConfig(backbone=str(name_or_path), **config))

    @classmethod
    def from_source(cls, path_or_id: str | Path, *, mode: str | None = None, **kwargs) -> JudgeScorer:
        """`load_scorer(path, kind="judge")` for a plain generative VLM (a directory or hub id); `mode` is unused."""
        from mmreward.models.checkpoint import plain_model_source

        return cls.from_vlm(plain_model_source(path_or_id), **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> JudgeScorer:
        """Load a judge saved with `save_pretrained` (config + the VLM or its adapter)."""
        from mmreward.models.checkpoint import CONFIG_NAME, config_from_dict, load_backbone, read_config

        raw = read_config(path)
        raw.pop("scorer", None)
        lora = raw.pop("lora", None) is not None
        config = config_from_dict(JudgeConfig, raw, Path(path) / CONFIG_NAME)
        model, processor = load_backbone(Path(path), config.backbone, lora=lora, **kwargs)
        return cls(model.eval(), processor, config)

    def save_pretrained(self, out_dir: str | Path, state_dict: dict | None = None) -> Path:
        """Write the judge VLM (or adapter) and its config; `load_scorer` recognises it as kind "judge".

        Args:
            out_dir: checkpoint directory.
            state_dict: the model's gathered full state dict when its weights are sharded (ZeRO-3 / FSDP).
        """
        from peft import PeftModel

        from mmreward.models.checkpoint import save_backbone, write_config

        out = Path(out_dir)
        save_backbone(self.model, self.processor, out, state_dict)
        lora = {"adapter": True} if isinstance(self.model, PeftModel) else None
        write_config(out, {"scorer": self.kind, **asdict(self.config), "lora": lora})
        return out

    # --- episodes -----------------------------------------------------------------------------------------------
    def _template(self, record) -> str:
        from mmreward.data.collate import candidate_kind
        from mmreward.data.schema import PreferencePair

        if self.config.template:
            return self.config.template
        if isinstance(record, PreferencePair):
            kind = candidate_kind([*record.a.media, *record.b.media])
            return {"video": "pairwise_video", "image": "pairwise_image"}.get(kind, "pairwise_response")
        kind = candidate_kind(record.media)
        return "pointwise_video" if kind == "video" else "pointwise_image"

    def conversation(self, record) -> tuple[list[dict], list, str]:
        """(messages, images, template name) of the first turn for a record."""
        from mmreward.agent.judge_prompt import build_conversation

        name = self._template(record)
        messages, images = build_conversation(record, name, self.config)
        return messages, images, name

    def run(self, records, *, batch_size: int = 4, progress: bool = False):
        """Run one episode per record; returns their `Trajectory`s (with the template used in `meta`)."""
        from tqdm.auto import tqdm

        from mmreward.agent.env import JudgeEnv
        from mmreward.agent.generate import hf_generate_fn
        from mmreward.agent.loop import run_episodes
        from mmreward.agent.tools import judge_tool_schemas

        c = self.config
        env_settings = dict(workspace_frames=c.workspace_frames, max_frames_per_call=c.max_frames_per_call,
                            max_pixels=c.tool_max_pixels)
        schemas = judge_tool_schemas(c.tools, c.tool_schema)
        generate = self.generate_fn or hf_generate_fn(
            self.model, self.processor, tools=schemas, max_new_tokens=c.max_new_tokens, do_sample=c.temperature > 0,
            temperature=c.temperature or 1.0, top_p=c.top_p)
        trajectories = []
        for start in tqdm(range(0, len(records), batch_size), disable=not progress, desc="judging"):
            batch = records[start:start + batch_size]
            envs, convs, images, names = [], [], [], []
            for record in batch:
                env = JudgeEnv(tools=tuple(c.tools), **env_settings)
                env.load(record)
                messages, imgs, name = self.conversation(record)
                envs.append(env), convs.append(messages), images.append(imgs), names.append(name)
            # Episodes of one batch share a template family; each is parsed against its own dimensions.
            for name in dict.fromkeys(names):
                idx = [i for i, n in enumerate(names) if n == name]
                kind = "pairwise" if name.startswith("pairwise") or name in JUDGE_ANSWERS else "pointwise"
                trajs = run_episodes(generate, [envs[i] for i in idx], [convs[i] for i in idx],
                                     [images[i] for i in idx], ids=[batch[i].id for i in idx],
                                     max_turns=c.max_turns, max_images=c.max_images,
                                     max_tool_calls=c.max_tool_calls,
                                     memory_window=c.memory_window, dimensions=JUDGE_DIMENSIONS[name], kind=kind,
                                     answers=JUDGE_ANSWERS.get(name))
                for i, traj in zip(idx, trajs):
                    traj.meta["template"] = name
                    trajectories.append((start + i, traj))
        return [traj for _, traj in sorted(trajectories, key=lambda item: item[0])]

    def score(self, records, *, batch_size: int = 4, progress: bool = True, on_error: str = "skip",
              num_workers: int = 0):
        """Judge each record; a verdict becomes scores, a parse failure an error result ("parse failure: …").

        `num_workers` is accepted for interface compatibility (episodes decode media in process).
        """
        from mmreward.data.schema import PreferencePair
        from mmreward.scoring_types import ScoreResult, ScoringError

        del num_workers
        results = []
        for record, traj in zip(records, self.run(records, batch_size=batch_size, progress=progress)):
            pair = isinstance(record, PreferencePair)
            if traj.verdict is None:
                reason = traj.parse_error or f"no verdict ({traj.finish_reason})"
                if on_error == "raise":
                    raise ScoringError(f"{record.id}: parse failure: {reason}")
                results.append(ScoreResult(id=record.id, kind="pair" if pair else "pointwise",
                                           error=f"parse failure: {reason}"))
            else:
                results.append(_result(record.id, pair, traj.verdict))
            if self.trace_thumbs is not None:
                from mmreward.evaluation.report_traces import compact_trace

                results[-1].trace = compact_trace(traj, self.trace_thumbs)
        return results


def _result(record_id: str, pair: bool, verdict: dict):
    from mmreward.scoring_types import ScoreResult

    if not pair:
        scores = {k: float(v) for k, v in verdict.items()}
        return ScoreResult(id=record_id, kind="pointwise", score=scores.get("overall"), scores=scores)
    scores = {dim: list(VALUE[value]) for dim, value in verdict.items()}
    a, b = scores["overall"]
    preferred = verdict["overall"]
    return ScoreResult(id=record_id, kind="pair", score_a=a, score_b=b, preferred=preferred, scores=scores)


def pointwise_bridge(judge: JudgeScorer, prompt: str, candidates: list, reference, *, shared_media=(),
                     swap: bool = True) -> list[float | None]:
    """A scalar per candidate from a pairwise judge: its win rate against a reference (anchor), swap-averaged.

    Args:
        judge: the pairwise judge.
        prompt: the generation prompt.
        candidates: `Candidate`s to score (e.g. a GRPO group's rollouts).
        reference: the anchor `Candidate` every rollout is compared with.
        shared_media: media shown with both (e.g. the source image of an edit).
        swap: also judge (reference, candidate) and average, cancelling position bias.

    Returns:
        Per candidate: mean of P(candidate wins) over the orders judged (1 win, 0.5 tie, 0 loss); None when
        every judgement failed to parse.
    """
    from mmreward.data.schema import PreferencePair

    pairs = []
    for i, cand in enumerate(candidates):
        pairs.append(PreferencePair(id=f"c{i}", prompt=prompt, media=list(shared_media), a=cand, b=reference,
                                    label="A"))
        if swap:
            pairs.append(PreferencePair(id=f"c{i}-swap", prompt=prompt, media=list(shared_media), a=reference,
                                        b=cand, label="B"))
    results = judge.score(pairs, progress=False)
    step = 2 if swap else 1
    out = []
    for i in range(len(candidates)):
        wins = []
        for j, result in enumerate(results[i * step:(i + 1) * step]):
            if result.error is None:
                wins.append(result.score_a if j == 0 else result.score_b)
        out.append(sum(wins) / len(wins) if wins else None)
    return out
