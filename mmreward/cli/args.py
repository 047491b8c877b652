"""The arguments of each `mmreward` subcommand, one function per command, and `COMMANDS` (name -> help, builder).

`mmreward.cli.build_parser` builds only the arguments of the command being run: some read registries (the
``--scorer`` choices are `scoring.SCORERS`, whose scorer classes import torch), and ``mmreward --help`` or
``mmreward data validate`` should not pay for that.
"""

from __future__ import annotations

import argparse

from mmreward.cli import commands

__all__ = ["COMMANDS"]


def _args_demo(demo: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward demo`."""
    from mmreward.models.tiny import FAMILIES

    demo.add_argument("mode", nargs="?", choices=("reward", "judge"), default="reward",
                      help="reward (default): a Bradley-Terry reward model; judge: the agentic judge on a task "
                           "that needs its tools")
    demo.add_argument("--out", help="working directory (default: a new temporary directory)")
    demo.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    demo.add_argument("--steps", type=int, default=150, help="training steps")
    demo.add_argument("--sft-steps", type=int, help="judge: cold-start SFT steps")
    demo.add_argument("--rft-steps", type=int, help="judge: SFT steps on the RFT-kept episodes")
    demo.add_argument("--grpo-steps", type=int, help="judge: GRPO steps")
    demo.add_argument("--pairs", type=int, help="judge: tool-necessity pairs per kind (videos, images)")
    demo.add_argument("--size", choices=("tiny", "small"), help="judge: tiny model size")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, the tiny model and the training")
    demo.add_argument("--no-progress", action="store_true", help="hide the training progress bar")
    demo.set_defaults(func=commands.cmd_demo)


def _args_tiny(tiny: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward tiny`."""
    from mmreward.models.tiny import FAMILIES

    tiny.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=commands.cmd_tiny)


def judge_template_name(name: str) -> str:
    """argparse `type` of `--judge-template`: a key of `prompts.JUDGE_DIMENSIONS`, else an error naming close ones."""
    from mmreward.evaluation.eval_config import check_judge_template

    try:
        return check_judge_template(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def judge_tool_names(text: str) -> list[str]:
    """argparse `type` of `--judge-tools`: comma-separated names of `agent.tools.TOOLS` ("none": no tools)."""
    from mmreward.evaluation.eval_config import check_judge_tools

    try:
        return check_judge_tools(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _args_score(score: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward score`."""
    from mmreward.scoring import SCORERS

    score.add_argument("files", nargs="*", help="media files or folders (with --prompt); two files = one pair")
    score.add_argument("--model", required=True,
                       help="scorer checkpoint dir, plain VLM dir/hub id, or open_clip MODEL[:PRETRAINED]")
    score.add_argument("--input", help="records JSONL (pairs and/or pointwise)")
    score.add_argument("--output", help="scores .jsonl or .csv (default: JSONL on stdout)")
    score.add_argument("--prompt", help="generation prompt for media files")
    score.add_argument("--scorer", choices=sorted(SCORERS),
                       help="override the scorer kind recorded in the checkpoint")
    score.add_argument("--mode", choices=("pointwise", "pairwise", "clipscore", "vlmrm"),
                       help="plain VLM: pointwise|pairwise yes/no questions; open_clip: clipscore|vlmrm")
    score.add_argument("--judge-template", type=judge_template_name, metavar="NAME",
                       help="with a judge (--scorer judge): the prompt template, a key of prompts.JUDGE_TEMPLATES "
                            "(e.g. llava_critic_pairwise, unifiedreward_think_image); default: by record kind")
    score.add_argument("--judge-tools", type=judge_tool_names, metavar="T1,T2",
                       help="with a judge (--scorer judge): the tools offered, names of agent.tools.TOOLS "
                            "(e.g. crop,select_frames); none: no tools and no tool paragraph (a published prompt "
                            "as published); default: the judge's own")
    score.add_argument("--batch-size", type=int, default=8)
    score.add_argument("--num-workers", type=int, default=0, help="media decoding worker processes")
    score.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    score.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                       help="skip: write records not scored to the errors file, score the rest, exit 3")
    score.add_argument("--errors", help="errors file (default <output stem>.errors.jsonl beside --output; "
                                        "without --output <input stem>.score-errors.jsonl beside --input)")
    score.add_argument("--resume", action="store_true",
                       help="continue an interrupted run: keep --output, skip the ids already in it")
    score.add_argument("--on-duplicate-id", choices=("warn", "error"), default="warn",
                       help="an id on several input lines: warn naming the lines, or treat repeats as bad lines")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    score.set_defaults(func=commands.cmd_score)


def _args_serve(srv: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward serve`."""
    from mmreward.scoring import SCORERS

    srv.add_argument("--model", required=True,
                     help="scorer checkpoint dir, plain VLM dir/hub id, or open_clip MODEL[:PRETRAINED]")
    srv.add_argument("--scorer", choices=sorted(SCORERS),
                     help="override the scorer kind recorded in the checkpoint")
    srv.add_argument("--mode", choices=("pointwise", "pairwise", "clipscore", "vlmrm"))
    srv.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: every interface)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--media-root", help="server-side media paths must lie under this folder (default: refused)")
    srv.add_argument("--allow-urls", action="store_true", help="fetch http(s) media URLs (size and time limited)")
    srv.add_argument("--max-batch-size", type=int, default=64, help="records merged into one engine batch")
    srv.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for batch company")
    srv.add_argument("--num-workers", type=int, default=0, help="media decoding worker processes")
    srv.add_argument("--threads", type=int, default=None,
                     help="torch threads of the server process (default: CPUs - 1 - num workers, at least 1)")
    srv.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body")
    srv.add_argument("--max-records", type=int, default=1024, help="most records per request")
    srv.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    srv.set_defaults(func=commands.cmd_serve)


def _args_eval(ev: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward eval`: `--config FILE.yaml` and one flag per field of `EvalConfig`
    (`mmreward.evaluation.eval_config`; a new eval option is a new field there, see `cli.eval_args`)."""
    from mmreward.cli.eval_args import add_eval_arguments

    add_eval_arguments(ev)
    ev.set_defaults(func=commands.cmd_eval)


def _args_view(view: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward view`."""
    view.add_argument("path", help="an `mmreward eval` output folder, a trajectory .jsonl, or a report .html")
    view.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    view.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    view.add_argument("--no-serve", action="store_true", help="only write the page and print its path")
    view.add_argument("--rebuild", action="store_true", help="re-render a run's report.html from its files")
    view.add_argument("--limit", type=int, help="show at most N traces of a trajectory file")
    view.set_defaults(func=commands.cmd_view)


def _args_train(train: argparse.ArgumentParser) -> None:
    """The arguments of `mmreward train`."""
    train.add_argument("stage", choices=sorted(commands.TRAINERS))
    train.add_argument("--config", help="YAML config (keys are the config dataclass fields)")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value overrides of config fields")
    train.set_defaults(func=commands.cmd_train)


def _args_data(parser: argparse.ArgumentParser) -> None:
    """`mmreward data`: its subcommands and their arguments."""
    data = parser.add_subparsers(dest="data_command", required=True)
    build = data.add_parser("build", help="build a data recipe into JSONL shards and a manifest")
    build.add_argument("recipe")
    build.add_argument("--out", required=True)
    build.set_defaults(func=commands.cmd_data_build)
    validate = data.add_parser("validate", help="validate a record JSONL file")
    validate.add_argument("path")
    validate.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                          help="skip: write bad lines to <name>.errors.jsonl and keep going")
    validate.add_argument("--on-duplicate-id", choices=("warn", "error"), default="warn",
                          help="an id on several lines: warn naming the lines, or treat repeats as bad lines")
    validate.add_argument("--check-media", action="store_true",
                          help="also check that every local media file (and frame image) exists")
    validate.set_defaults(func=commands.cmd_data_validate)


# Subcommand -> (its one-line help, the function adding its arguments), in the order `--help` lists them.
COMMANDS = {
    "demo": ("offline end-to-end demo: train a tiny reward model on CPU (~20-40 s); `demo judge`: the tool-using "
             "judge, SFT -> RFT -> GRPO, measured per stage", _args_demo),
    "tiny": ("write a tiny random-weight Qwen-VL checkpoint directory", _args_tiny),
    "score": ("score records, or images/videos against a prompt", _args_score),
    "serve": ("HTTP reward server (POST /score, OpenRLHF /get_reward, /health, /metrics)", _args_serve),
    "eval": ("evaluate a scorer on a vision reward benchmark", _args_eval),
    "view": ("browse an eval run's report.html, or a trajectory .jsonl, on localhost", _args_view),
    "train": ("train a reward model or judge", _args_train),
    "data": ("data utilities", _args_data),
}
