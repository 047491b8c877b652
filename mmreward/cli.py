"""The `mmreward` command line: a thin dispatcher to the library.

    mmreward demo [--out DIR] [--family qwen2_5_vl]
    mmreward tiny --family qwen3_vl --out DIR
    mmreward data validate pairs.jsonl [--on-error skip]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger("mmreward")


def _setup_logging(verbose: bool) -> None:
    """Log to stdout with a plain format; only the main process talks (RANK unset or 0)."""
    quiet = os.environ.get("RANK", "0") != "0"
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout, force=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmreward.demo import run_demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmreward-demo-"))
    run_demo(out, family=args.family)
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from mmreward.models.tiny import make_tiny_vlm

    make_tiny_vlm(args.out, family=args.family, seed=args.seed)
    return 0


def _cmd_data_validate(args: argparse.Namespace) -> int:
    from mmreward.data.schema import RecordError, read_jsonl

    try:
        records = read_jsonl(args.path, on_error=args.on_error)
    except RecordError as err:
        logger.error("%s", err)
        return 1
    kinds: dict[str, int] = {}
    for rec in records:
        kinds[type(rec).__name__] = kinds.get(type(rec).__name__, 0) + 1
    logger.info("%s: %d valid records %s", args.path, len(records), kinds)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from mmreward.models.tiny import FAMILIES

    parser = argparse.ArgumentParser(prog="mmreward", description="Multimodal reward models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="offline end-to-end demo on a tiny model (CPU, seconds)")
    demo.add_argument("--out", help="working directory (default: a new temporary directory)")
    demo.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    demo.set_defaults(func=_cmd_demo)

    tiny = sub.add_parser("tiny", help="write a tiny random-weight Qwen-VL checkpoint directory")
    tiny.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_cmd_tiny)

    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    validate = data.add_parser("validate", help="validate a record JSONL file")
    validate.add_argument("path")
    validate.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                          help="skip: write bad lines to <name>.errors.jsonl and keep going")
    validate.set_defaults(func=_cmd_data_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mmreward` console script."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
