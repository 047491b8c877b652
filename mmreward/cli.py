"""The `mmreward` command line: a thin dispatcher to the library.

    mmreward demo [--out DIR] [--family qwen2_5_vl]
    mmreward tiny --family qwen3_vl --out DIR
    mmreward data validate pairs.jsonl [--on-error skip]
    mmreward score --model DIR --input records.jsonl --output scores.jsonl [--on-error skip] [--resume]
    mmreward score --model DIR --prompt "a red circle" a.mp4 b.mp4
    mmreward train bt|sft|rft|grpo --config launch/configs/tiny_cpu/bt.yaml [--key value …]
    mmreward data build data_recipes/demo.yaml --out DIR
    mmreward eval --benchmark videogen_rewardbench --data DIR --model CKPT [--scorer head] [--out DIR]
    mmreward serve --model CKPT [--media-root DIR] [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

logger = logging.getLogger("mmreward")


def _setup_logging(verbose: bool) -> None:
    """Log to stderr with a plain format (stdout carries data only); only the main process talks (RANK unset or 0)."""
    quiet = os.environ.get("RANK", "0") != "0"
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.mode == "judge":
        return _cmd_demo_judge(args)
    from mmreward.demo import DemoSettings, run_demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmreward-demo-"))
    settings = DemoSettings(family=args.family, steps=args.steps, progress=not args.no_progress)
    report = run_demo(out, settings)
    return 0 if report.accuracy_after else 1


def _cmd_demo_judge(args: argparse.Namespace) -> int:
    """`mmreward demo judge`: the tool-necessity task, untrained -> SFT -> RFT -> GRPO, measured after each."""
    from mmreward.demo_judge import JudgeDemoSettings, format_table, run_judge_demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmreward-demo-judge-"))
    overrides = {k: v for k, v in (("sft_steps", args.sft_steps), ("rft_steps", args.rft_steps),
                                   ("grpo_steps", args.grpo_steps), ("n_videos", args.pairs),
                                   ("n_images", args.pairs), ("size", args.size)) if v is not None}
    settings = JudgeDemoSettings(family=args.family, progress=not args.no_progress, **overrides)
    report = run_judge_demo(out, settings)
    sys.stdout.write(format_table(report.stages) + "\n")
    logger.info("done in %.0f s; results.json and results.png in %s", report.seconds, out)
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from mmreward.models.tiny import make_tiny_vlm

    make_tiny_vlm(args.out, family=args.family, seed=args.seed)
    return 0


def _cmd_data_validate(args: argparse.Namespace) -> int:
    from mmreward.data.schema import RecordError, read_jsonl

    _logs_to_stderr()
    try:
        records = read_jsonl(args.path, on_error=args.on_error, on_duplicate_id=args.on_duplicate_id)
    except RecordError as err:
        logger.error("%s", err)
        return 1
    if args.check_media:
        from mmreward.errors import DataError
        from mmreward.train.bt_setup import check_media

        try:
            records = check_media(records, args.path, args.on_error, "fix the path, or pass --on-error skip to list "
                                  "every record whose media are missing")
        except DataError as err:
            logger.error("%s", err)
            return 1
    kinds: dict[str, int] = {}
    for rec in records:
        kinds[type(rec).__name__] = kinds.get(type(rec).__name__, 0) + 1
    logger.info("%s: %d valid records %s", args.path, len(records), kinds)
    return 0


def _logs_to_stderr() -> None:
    """Send log lines to stderr, so that stdout carries data only (`mmreward score` prints JSONL there)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def _score_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of `mmreward score` flags, or None."""
    if bool(args.input) == bool(args.files):
        return "give either --input records.jsonl or media files/folders (with --prompt)"
    if args.files and args.prompt is None:
        return "--prompt is required when scoring media files"
    if args.resume and (not args.output or Path(args.output).suffix.lower() == ".csv"):
        return "--resume continues a JSONL --output file; give --output scores.jsonl"
    if args.input and args.output and _same_file(args.input, args.output):
        return f"--output {args.output} is the input file; choose another name"
    return None


def _same_file(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _cmd_score(args: argparse.Namespace) -> int:
    from collections import Counter

    from mmreward.errors import DataError, MMRewardError
    from mmreward.scoring import load_scorer, stream_scores
    from mmreward.scoring_io import (
        ResultFile,
        ScoreRun,
        errors_path,
        read_score_inputs,
        scored_ids,
        take_done,
        write_results,
    )

    _logs_to_stderr()  # stdout carries scores only, so it can be piped into anything that reads JSONL
    problem = _score_usage_error(args)
    errors_file = Path(args.errors) if args.errors else errors_path(args.output, args.input)
    if problem is None and any(_same_file(errors_file, p) for p in (args.input, args.output) if p):
        problem = f"the errors file {errors_file} would overwrite an input or output file; pass --errors PATH"
    if problem:
        logger.error("%s", problem)
        return 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: shard, stream per rank, merge in input order
        from mmreward.scoring_dist import score_distributed

        return score_distributed(args)
    run = ScoreRun(None, errors_file)
    try:
        records, run.locations = read_score_inputs(args, run)
        done = scored_ids(args.output) if args.resume else Counter()
    except DataError as err:  # a bad line under --on-error raise stops the run (exit 1, as a failing record does)
        logger.error("%s", err)
        run.close()
        return 1
    try:
        scorer = load_scorer(args.model, kind=args.scorer, mode=args.mode, dtype=args.dtype)
    except MMRewardError:  # a bad model path or name: main() reports it with exit code 2
        run.close()
        raise
    keep = [i for i, r in enumerate(records) if not take_done(done, r.id)]
    if args.resume:
        logger.info("resuming %s: %d record(s) already scored, %d to go", args.output, len(records) - len(keep),
                    len(keep))
    records, run.locations = [records[i] for i in keep], [run.locations[i] for i in keep]
    csv_out = bool(args.output) and Path(args.output).suffix.lower() == ".csv"
    try:
        run.output = None if csv_out else ResultFile(args.output, append=args.resume, stream=sys.stdout)
        stream_scores(scorer, records, run.add_results, batch_size=args.batch_size, on_error=args.on_error,
                      num_workers=args.num_workers, progress=not args.no_progress)
        if csv_out:
            write_results(run.collected, args.output)
    except MMRewardError as err:  # a record under --on-error raise, or the output cannot be written
        logger.error("%s", err)
        return 1
    finally:
        run.close()
    return _score_summary(args, run, len(records))


def _score_summary(args: argparse.Namespace, run, n_todo: int) -> int:
    """Log what happened; exit 3 when any record (read-time or score-time) was not scored, else 0."""
    where = args.output or "stdout"
    if run.n_failed:
        logger.warning("scored %d of %d record(s) into %s; %d not scored (%d rejected while reading, %d failed "
                       "while scoring); see %s", run.n_scored, n_todo + run.n_read_failed, where, run.n_failed,
                       run.n_read_failed, run.n_score_failed, run.errors_path)
        return 3
    logger.info("scored %d record(s) into %s", run.n_scored, where)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """`mmreward serve`: the HTTP reward server (FastAPI + uvicorn) over any scorer."""
    from mmreward.errors import ConfigError
    from mmreward.scoring import load_scorer

    if args.media_root and not Path(args.media_root).is_dir():
        raise ConfigError(f"--media-root {args.media_root}: no such folder")
    try:
        from mmreward.serving.app import ServeSettings
        from mmreward.serving.server import serve
    except ModuleNotFoundError as err:
        if err.name not in ("fastapi", "uvicorn", "starlette"):
            raise
        from mmreward.errors import DependencyError

        raise DependencyError(f"{err.name} is needed by `mmreward serve` but not installed: "
                              "pip install 'mmreward[serve]'") from None
    scorer = load_scorer(args.model, kind=args.scorer, mode=args.mode, dtype=args.dtype)
    settings = ServeSettings(media_root=args.media_root, allow_urls=args.allow_urls,
                             max_body_bytes=int(args.max_body_mb * (1 << 20)), max_records=args.max_records,
                             max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             num_workers=args.num_workers)
    serve(scorer, settings, host=args.host, port=args.port)
    return 0


TRAINERS = {
    "bt": ("mmreward.train.bt", "BTConfig"),
    "sft": ("mmreward.train.sft", "SFTConfig"),
    "rft": ("mmreward.train.rft", "RFTConfig"),
    "grpo": ("mmreward.train.grpo", "JudgeGRPOConfig"),
}


def _cmd_train(args: argparse.Namespace) -> int:
    import importlib

    from mmreward.config import load_config

    module_name, config_name = TRAINERS[args.stage]
    module = importlib.import_module(module_name)
    config_path, overrides = args.config, list(args.overrides)
    # argparse.REMAINDER also swallows a --config given after the stage name; take it back out.
    for i, token in enumerate(overrides):
        if token == "--config" and i + 1 < len(overrides):
            config_path = overrides[i + 1]
            del overrides[i:i + 2]
            break
        if token.startswith("--config="):
            config_path = token.split("=", 1)[1]
            del overrides[i]
            break
    if any(token in ("-h", "--help") for token in overrides):
        from mmreward.config import config_help

        sys.stdout.write(config_help(getattr(module, config_name), f"mmreward train {args.stage}") + "\n")
        return 0
    # A bad key or value is a ConfigError naming the flag or file: main() prints it and exits 2.
    cfg = load_config(getattr(module, config_name), config_path, overrides)
    out = module.train(cfg)
    logger.info("wrote %s", out)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # Shut gloo/nccl down before interpreter exit so no rank aborts on live communicator threads.
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _cmd_data_build(args: argparse.Namespace) -> int:
    from mmreward.data.recipe import build_recipe

    manifest = build_recipe(args.recipe, args.out)
    totals = {split: info["records"] if isinstance(info, dict) else info
              for split, info in manifest.get("splits", {}).items()}
    logger.info("wrote %s: %s", args.out, totals)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmreward.evaluation.runner import EvalConfig, load_suite, run_eval

    values = load_suite(args.suite) if args.suite else {}
    flags = {k: v for k, v in vars(args).items()
             if k in EvalConfig.__dataclass_fields__ and v is not None and k != "options"}
    flags["progress"] = not args.no_progress
    if args.option:
        values.setdefault("options", {}).update(dict(kv.split("=", 1) for kv in args.option))
    try:
        cfg = EvalConfig(**{**values, **flags})
    except TypeError as err:
        logger.error("%s; valid keys: %s", err, ", ".join(EvalConfig.__dataclass_fields__))
        return 2
    if not (cfg.benchmark and cfg.data and cfg.model):
        logger.error("--benchmark, --data and --model are required (or set them in --suite)")
        return 2
    run_eval(cfg)
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    """`mmreward view RUN_DIR | TRACES.jsonl`: write the report page if needed, then serve it on localhost."""
    from mmreward.evaluation.view import make_server, page_url, prepare

    page = prepare(args.path, rebuild=args.rebuild, limit=args.limit)
    if args.no_serve:
        sys.stdout.write(f"{page}\n")
        return 0
    server = make_server(page, host=args.host, port=args.port)
    url = page_url(server, page)
    # stdout, not the log: the URL is the command's output (remote: ssh -L PORT:127.0.0.1:PORT this-host).
    sys.stdout.write(f"{url}\n")
    sys.stdout.flush()
    logger.info("serving %s at %s (also opens from disk: file://%s); Ctrl-C stops", page.parent, url,
                page.resolve())
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from mmreward.models.tiny import FAMILIES
    from mmreward.scoring import SCORERS

    parser = argparse.ArgumentParser(prog="mmreward", description="Multimodal reward models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="offline end-to-end demo: train a tiny reward model on CPU (~20-40 s); "
                                       "`demo judge`: the tool-using judge, SFT -> RFT -> GRPO, measured per stage")
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
    demo.add_argument("--no-progress", action="store_true", help="hide the training progress bar")
    demo.set_defaults(func=_cmd_demo)

    tiny = sub.add_parser("tiny", help="write a tiny random-weight Qwen-VL checkpoint directory")
    tiny.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_cmd_tiny)

    score = sub.add_parser("score", help="score records, or images/videos against a prompt")
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
    score.set_defaults(func=_cmd_score)

    srv = sub.add_parser("serve", help="HTTP reward server (POST /score, OpenRLHF /get_reward, /health, /metrics)")
    srv.add_argument("--model", required=True,
                     help="scorer checkpoint dir, plain VLM dir/hub id, or open_clip MODEL[:PRETRAINED]")
    srv.add_argument("--scorer", choices=sorted(SCORERS),
                     help="override the scorer kind recorded in the checkpoint")
    srv.add_argument("--mode", choices=("pointwise", "pairwise", "clipscore", "vlmrm"))
    srv.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: every interface)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--media-root", help="server-side media paths must lie under this folder (default: refused)")
    srv.add_argument("--allow-urls", action="store_true", help="fetch http(s) media URLs (size and time limited)")
    srv.add_argument("--max-batch-size", type=int, default=32, help="records merged into one engine batch")
    srv.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for batch company")
    srv.add_argument("--num-workers", type=int, default=0, help="media decoding worker processes")
    srv.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body")
    srv.add_argument("--max-records", type=int, default=1024, help="most records per request")
    srv.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    srv.set_defaults(func=_cmd_serve)

    ev = sub.add_parser("eval", help="evaluate a scorer on a vision reward benchmark")
    ev.add_argument("--benchmark", help="registry name, e.g. vl_rewardbench, videogen_rewardbench")
    ev.add_argument("--data", help="local copy of the benchmark in its published layout (or a hub id)")
    ev.add_argument("--model", help="scorer checkpoint, plain VLM, or open_clip MODEL[:PRETRAINED]")
    ev.add_argument("--suite", help="a suite YAML from eval/ (keys of EvalConfig); flags override it")
    ev.add_argument("--scorer", choices=sorted(SCORERS))
    ev.add_argument("--mode", choices=("pointwise", "pairwise", "clipscore", "vlmrm"))
    ev.add_argument("--out", help="output folder (default eval_results/<benchmark>)")
    ev.add_argument("--order", choices=("given", "both", "random"), help="judge presentation order")
    ev.add_argument("--k", type=int, help="samples per item (majority vote) for stochastic judges")
    ev.add_argument("--unparsed", choices=("exclude", "vote"),
                    help="a failed judge sample: left out of the vote (exclude) or a vote class (vote, as "
                         "VL-RewardBench's cal.py); default: the benchmark's official rule")
    ev.add_argument("--seed", type=int)
    ev.add_argument("--batch-size", dest="batch_size", type=int)
    ev.add_argument("--num-workers", dest="num_workers", type=int)
    ev.add_argument("--on-error", dest="on_error", choices=("raise", "skip"))
    ev.add_argument("--limit", type=int, help="only the first N items (smoke runs)")
    ev.add_argument("--dtype")
    ev.add_argument("--option", action="append", help="loader option KEY=VALUE (e.g. split=test)")
    ev.add_argument("--probes", type=lambda s: [p for p in s.split(",") if p],
                    help="comma-separated bias probes: position_consistency, length_bias, "
                         "frame_count_sensitivity, fps_sensitivity, resolution_sensitivity")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--no-report", dest="report", action="store_const", const=False,
                    help="do not write report.html (nor keep judge trajectories in samples.jsonl)")
    ev.set_defaults(func=_cmd_eval)

    view = sub.add_parser("view", help="browse an eval run's report.html, or a trajectory .jsonl, on localhost")
    view.add_argument("path", help="an `mmreward eval` output folder, a trajectory .jsonl, or a report .html")
    view.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    view.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    view.add_argument("--no-serve", action="store_true", help="only write the page and print its path")
    view.add_argument("--rebuild", action="store_true", help="re-render a run's report.html from its files")
    view.add_argument("--limit", type=int, help="show at most N traces of a trajectory file")
    view.set_defaults(func=_cmd_view)

    train = sub.add_parser("train", help="train a reward model or judge")
    train.add_argument("stage", choices=sorted(TRAINERS))
    train.add_argument("--config", help="YAML config (keys are the config dataclass fields)")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value overrides of config fields")
    train.set_defaults(func=_cmd_train)

    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    build = data.add_parser("build", help="build a data recipe into JSONL shards and a manifest")
    build.add_argument("recipe")
    build.add_argument("--out", required=True)
    build.set_defaults(func=_cmd_data_build)
    validate = data.add_parser("validate", help="validate a record JSONL file")
    validate.add_argument("path")
    validate.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                          help="skip: write bad lines to <name>.errors.jsonl and keep going")
    validate.add_argument("--on-duplicate-id", choices=("warn", "error"), default="warn",
                          help="an id on several lines: warn naming the lines, or treat repeats as bad lines")
    validate.add_argument("--check-media", action="store_true",
                          help="also check that every local media file (and frame image) exists")
    validate.set_defaults(func=_cmd_data_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mmreward` console script.

    Exit codes: 0 done; 1 the command itself failed; 2 a user mistake (a bad flag, path, config, checkpoint or a
    missing extra: one message on stderr, the traceback only with -v); 3 some records were not scored; 130
    interrupted (Ctrl-C; training says where its last complete checkpoint is and how to resume).
    Anything else is a bug in mmreward and shows its traceback.
    """
    from mmreward.errors import MMRewardError

    argv = sys.argv[1:] if argv is None else list(argv)
    # -v / --verbose is a global flag; accept it anywhere (people add it at the end after an error).
    flags = [token for token in argv if token in ("-v", "--verbose")]
    args = build_parser().parse_args(flags[:1] + [token for token in argv if token not in ("-v", "--verbose")])
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except MMRewardError as err:
        return _user_error(args, str(err))
    except ImportError as err:
        missing = _missing_extra(err)
        if missing is None:
            raise
        return _user_error(args, missing)
    except KeyboardInterrupt as err:
        return _interrupted(args, argv, err)


def _prog(args: argparse.Namespace) -> str:
    words = ["mmreward", args.command, getattr(args, "stage", None) or getattr(args, "data_command", None)]
    return " ".join(w for w in words if w)


def _user_error(args: argparse.Namespace, message: str) -> int:
    """Report a user mistake in one message on stderr (traceback first with -v); exit code 2."""
    if args.verbose:
        traceback.print_exc()
    sys.stderr.write(f"{_prog(args)}: error: {message}\n")
    return 2


# Optional dependencies: import name -> (pip name, the mmreward extra that installs it).
EXTRAS = {"deepspeed": ("deepspeed", "gpu"), "flash_attn": ("flash-attn", "gpu"), "vllm": ("vllm", "gpu"),
          "liger_kernel": ("liger-kernel", "gpu"), "open_clip": ("open-clip-torch", "clip")}


def _missing_extra(err: ImportError) -> str | None:
    """The message for an optional dependency that is not installed, or None when `err` is something else."""
    top = (err.name or "").split(".")[0]
    text = str(err)
    # Our own imports fail with the module's name; transformers reports a missing package in its message.
    absent = "not installed" in text or "was not found" in text
    for module, (package, extra) in EXTRAS.items():
        if (isinstance(err, ModuleNotFoundError) and top == module) or (absent and (module in text or package in text)):
            return f"{package} is needed here but not installed: pip install 'mmreward[{extra}]' (or pip install {package})"
    return None


def _interrupted(args: argparse.Namespace, argv: list[str], err: KeyboardInterrupt) -> int:
    """Ctrl-C: a short note instead of a traceback; training adds its last complete checkpoint and the resume command."""
    if args.verbose:
        traceback.print_exc()
    if os.environ.get("RANK", "0") != "0":
        return 130
    checkpoint, output_dir = getattr(err, "checkpoint", None), getattr(err, "output_dir", None)
    if checkpoint:
        keep = _without_resume_flag(argv)
        command = shlex.join(["mmreward", *keep, "--resume_from_checkpoint", "latest"])
        sys.stderr.write(f"{_prog(args)}: interrupted; the last complete checkpoint is {checkpoint}\n"
                         f"resume with: {command}\n")
    elif output_dir:
        sys.stderr.write(f"{_prog(args)}: interrupted before any checkpoint in {output_dir} was complete; run the "
                         "same command again to start over\n")
    else:
        sys.stderr.write(f"{_prog(args)}: interrupted\n")
    return 130


def _without_resume_flag(argv: list[str]) -> list[str]:
    """argv without a --resume_from_checkpoint flag (and its value)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--resume_from_checkpoint":
            skip = True
        elif not token.startswith("--resume_from_checkpoint="):
            out.append(token)
    return out


if __name__ == "__main__":
    sys.exit(main())
