"""`EvalConfig`: one evaluation run, the single source of `mmreward eval`'s defaults, flags and `--help`.

    mmreward eval --config eval/suites/vl_rewardbench.yaml --data DIR --model CKPT [--key value …]
    cfg = load_config(EvalConfig, "eval.yaml", ["--limit", "5"])      # as the CLI does (mmreward.config)

Every field is a flag (`--batch_size 4` or `--batch-size 4`) and a key of the YAML file (`--config`, or its older
name `--suite`); flags win, unknown keys are errors naming the closest valid ones, and the values are checked
here (registered benchmark, known probes, a valid judge protocol) before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmreward.errors import ConfigError
from mmreward.evaluation.benchmarks import get_benchmark
from mmreward.evaluation.protocol import JudgeProtocol

# The values a field accepts, where the set is fixed (the CLI offers them as argparse choices too).
CHOICES = {
    "mode": ("pointwise", "pairwise", "clipscore", "vlmrm"),
    "order": ("given", "both", "random"),
    "unparsed": ("exclude", "vote"),
    "on_error": ("raise", "skip"),
}
REQUIRED = ("benchmark", "data", "model")


@dataclass
class EvalConfig:
    """One evaluation run (`mmreward eval`, `evaluation.runner.run_eval`)."""

    # Benchmark: a name in mmreward.evaluation.benchmarks.BENCHMARKS (vl_rewardbench, videogen_rewardbench, …). Required.
    benchmark: str = ""
    # Local copy of the benchmark in its published layout (or a hub id). Required.
    data: str = ""
    # Scorer checkpoint, plain VLM (yes-token), or open_clip MODEL[:PRETRAINED] (with scorer "clip"). Required.
    model: str = ""
    # Force a scorer kind of mmreward.scoring.SCORERS: head | yes_token | clip | judge (default: from the checkpoint).
    scorer: str | None = None
    # Yes-token question mode for a plain VLM (pointwise | pairwise); open_clip: clipscore | vlmrm.
    mode: str | None = None
    # Output folder (default: eval_results/<benchmark>).
    out: str | None = None
    # Loader options ({split: test} for GenAI-Bench); on the command line also --option KEY=VALUE, repeatable.
    options: dict = field(default_factory=dict)
    # Judge protocol: order given|both|random, k samples per item (vote), seed, unparsed exclude|vote (null: official).
    # `unparsed` is what a failed sample is in the vote: "exclude" (left out) or "vote" (a vote class, as
    # VL-RewardBench's cal.py); None: the benchmark's official rule (`BenchmarkSpec.unparsed`).
    order: str = "given"
    k: int = 1
    seed: int = 0
    unparsed: str | None = None
    # Scoring: units per forward, media-decoding worker processes, what to do with bad records (raise | skip).
    batch_size: int = 8
    num_workers: int = 0
    on_error: str = "skip"
    # Evaluate only the first N items (smoke runs); None: all.
    limit: int | None = None
    # Bias probes to run and report (mmreward.evaluation.probes.PROBES): [length_bias] or length_bias,fps_sensitivity.
    probes: list[str] = field(default_factory=list)
    # Judge scorer only (any other scorer is a ConfigError, as with `mmreward score`): the prompt template, a key
    # of prompts.JUDGE_DIMENSIONS (llava_critic_pairwise, unifiedreward_think_image, …; null: by record kind), and
    # the tools offered (agent.tools.TOOLS, e.g. [crop] or crop,select_frames; [] = none, so a published prompt
    # runs as published, without the tool paragraph; null: the judge's own).
    judge_template: str | None = None
    judge_tools: list[str] | None = None
    # Weights dtype (auto: bf16 on GPU, fp32 on CPU; bf16, fp16, fp32); for CLIP scorers its open_clip precision.
    dtype: str = "auto"
    # Show a progress bar (--no-progress: off).
    progress: bool = True
    # Write report.html and, for judges, keep each episode's trajectory in samples.jsonl (--no-report: off).
    report: bool = True

    def __post_init__(self):
        from mmreward.evaluation.probes import PROBES

        missing = [name for name in REQUIRED if not getattr(self, name)]
        if missing:
            names = " and ".join("--" + m for m in missing)
            raise ConfigError(f"{names} {'is' if len(missing) == 1 else 'are'} required: give the flag, or set the "
                              "key in the --config YAML")
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        try:
            spec = get_benchmark(self.benchmark)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        unknown = [p for p in self.probes if p not in PROBES]
        if unknown:
            raise ValueError(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBES)}")
        if (self.judge_template is not None or self.judge_tools is not None) and self.scorer not in (None, "judge"):
            raise ValueError(f"judge_template / judge_tools are options of the judge scorer, not of --scorer "
                             f"{self.scorer}; drop them or use --scorer judge")
        if self.judge_template is not None:
            check_judge_template(self.judge_template)
        if self.judge_tools is not None:
            self.judge_tools = check_judge_tools(self.judge_tools)
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0 or null, got {self.limit}")
        self.protocol(spec)

    def protocol(self, spec=None) -> JudgeProtocol:
        """The run's judge protocol (a bad order / k / unparsed is a ValueError naming it).

        Args:
            spec: the benchmark's `BenchmarkSpec` (None: looked up), whose official rule fills `unparsed: null`.

        Returns:
            The `JudgeProtocol`.
        """
        spec = spec or get_benchmark(self.benchmark)
        return JudgeProtocol(order=self.order, k=self.k, seed=self.seed, unparsed=self.unparsed or spec.unparsed)


def check_judge_template(name: str) -> str:
    """A judge template name (`judge_template`, `mmreward score --judge-template`), checked.

    Args:
        name: a key of `prompts.JUDGE_DIMENSIONS` (the templates a judge answers with; the others, like
            "tool_use", are paragraphs appended to them).

    Returns:
        The name. Anything else is a ValueError naming the close names and every known one.
    """
    from mmreward.prompts import JUDGE_DIMENSIONS

    return _check_name(name, sorted(JUDGE_DIMENSIONS), "judge template")


def check_judge_tools(names) -> list[str]:
    """The judge's tool names (`judge_tools`, `mmreward score --judge-tools`), checked.

    Args:
        names: names of `agent.tools.TOOLS`, as a list or one comma-separated string; "none" or "" (or []) is no
            tool at all.

    Returns:
        The names, in order, each once. An unknown name is a ValueError naming the close ones.
    """
    if isinstance(names, str):
        names = [] if names.strip().lower() in ("", "none", "[]") else names.split(",")
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names or names == ["none"]:
        return []
    # The registry imports the tools (torch, PIL): only when there is something to check.
    from mmreward.agent.tools import TOOLS

    return list(dict.fromkeys(_check_name(n, sorted(TOOLS), "judge tool") for n in names))


def _check_name(name: str, known: list[str], what: str) -> str:
    import difflib

    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown {what} {name!r}; {hint}known: {', '.join(known)}")


def set_judge_options(scorer, template: str | None = None, tools: list[str] | None = None):
    """The judge `scorer` set to prompt with `template` and offer `tools` (`--judge-template`, `--judge-tools`).

    Args:
        scorer: a loaded scorer; anything but an `agent.judge_scorer.JudgeScorer` is a ConfigError when an option
            is set, as the flag would otherwise be silently ignored.
        template: a checked template name (`check_judge_template`), or None to keep the judge's.
        tools: checked tool names (`check_judge_tools`; [] = none), or None to keep the judge's.

    Returns:
        The same scorer, its `config` replaced.
    """
    import dataclasses

    from mmreward.agent.judge_scorer import JudgeScorer

    given = [f"--judge-template {template}"] if template is not None else []
    if tools is not None:
        given.append(f"--judge-tools {','.join(tools) or 'none'}")
    if not given:
        return scorer
    if not isinstance(scorer, JudgeScorer):
        raise ConfigError(f"{' '.join(given)}: the model loads as a {type(scorer).__name__}, not a judge; add "
                          "--scorer judge (a plain VLM or a judge checkpoint)")
    changes = {"template": template} if template is not None else {}
    if tools is not None:
        changes["tools"] = list(tools)
    scorer.config = dataclasses.replace(scorer.config, **changes)
    return scorer


def load_suite(path: str | Path) -> dict:
    """Read a suite YAML (keys of `EvalConfig`) and check it: known keys, a registered benchmark, a valid protocol.

    A suite usually leaves out `data` and `model` (given per run), so this checks what it holds without building
    an `EvalConfig`; `mmreward eval --config SUITE` reads it through `mmreward.config.load_config`.

    Args:
        path: the YAML file (eval/suites/*.yaml).

    Returns:
        The values, to be overridden by command-line flags. Raises ConfigError naming the file and the key.
    """
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the suite ({err})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a suite is a mapping of EvalConfig keys, got {type(values).__name__}")
    unknown = sorted(set(values) - set(EvalConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(EvalConfig.__dataclass_fields__)}")
    if "benchmark" in values:
        try:
            spec = get_benchmark(values["benchmark"])
        except KeyError as err:
            raise ConfigError(f"{path}: {err.args[0]}") from None
        protocol = {k: values[k] for k in ("order", "k", "seed") if k in values}
        try:
            JudgeProtocol(**protocol, unparsed=values.get("unparsed") or spec.unparsed)
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
    return values
