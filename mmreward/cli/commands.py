"""What each `mmreward` subcommand does: one `cmd_<name>(args) -> exit code` per command (the parser is in
`mmreward.cli.args`, the entry point and error handling in `mmreward.cli`).

Handlers stay thin: they read the parsed arguments, call the library, and report. Imports of the library happen
inside each handler, so `mmreward --help` and light commands load nothing heavy.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger("mmreward")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.mode == "judge":
        return cmd_demo_judge(args)
    from mmreward.demo import DemoSettings, run_demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmreward-demo-"))
    settings = DemoSettings(family=args.family, steps=args.steps, seed=args.seed, progress=not args.no_progress)
    report = run_demo(out, settings)
    return 0 if report.accuracy_after else 1


def cmd_demo_judge(args: argparse.Namespace) -> int:
    """`mmreward demo judge`: the tool-necessity task, untrained -> SFT -> RFT -> GRPO, measured after each."""
    from mmreward.demo_judge import JudgeDemoSettings, format_table, run_judge_demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmreward-demo-judge-"))
    overrides = {k: v for k, v in (("sft_steps", args.sft_steps), ("rft_steps", args.rft_steps),
                                   ("grpo_steps", args.grpo_steps), ("n_videos", args.pairs),
                                   ("n_images", args.pairs), ("size", args.size)) if v is not None}
    settings = JudgeDemoSettings(family=args.family, seed=args.seed, progress=not args.no_progress, **overrides)
    report = run_judge_demo(out, settings)
    sys.stdout.write(format_table(report.stages) + "\n")
    logger.info("done in %.0f s; results.json and results.png in %s", report.seconds, out)
    return 0


def cmd_tiny(args: argparse.Namespace) -> int:
    from mmreward.models.tiny import make_tiny_vlm

    make_tiny_vlm(args.out, family=args.family, seed=args.seed)
    return 0


def cmd_data_validate(args: argparse.Namespace) -> int:
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


def cmd_score(args: argparse.Namespace) -> int:
    from collections import Counter

    from mmreward.errors import DataError, MMRewardError
    from mmreward.evaluation.eval_config import set_judge_options
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
        scorer = set_judge_options(scorer, getattr(args, "judge_template", None), getattr(args, "judge_tools", None))
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


def cmd_serve(args: argparse.Namespace) -> int:
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
    serve(scorer, settings, host=args.host, port=args.port, torch_threads=args.threads)
    return 0


TRAINERS = {
    "bt": ("mmreward.train.bt", "BTConfig"),
    "sft": ("mmreward.train.sft", "SFTConfig"),
    "rft": ("mmreward.train.rft", "RFTConfig"),
    "grpo": ("mmreward.train.grpo", "JudgeGRPOConfig"),
}


def cmd_train(args: argparse.Namespace) -> int:
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


def cmd_data_build(args: argparse.Namespace) -> int:
    from mmreward.data.recipe import build_recipe

    manifest = build_recipe(args.recipe, args.out)
    totals = {split: info["records"] if isinstance(info, dict) else info
              for split, info in manifest.get("splits", {}).items()}
    logger.info("wrote %s: %s", args.out, totals)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`mmreward eval`: the `EvalConfig` from --config and the flags (`cli.eval_args`), then `run_eval`."""
    from mmreward.cli.eval_args import eval_config
    from mmreward.evaluation.runner import run_eval

    # A bad key or value is a ConfigError naming the flag or file: main() prints it and exits 2.
    run_eval(eval_config(args))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
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
