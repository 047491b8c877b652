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

The package: `commands` (what each subcommand does: `cmd_<name>(args) -> exit code`), `args` (each subcommand's
arguments and `COMMANDS`), and here the entry point `main` with its exit codes and error reporting.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import traceback

from mmreward.cli.args import COMMANDS

__all__ = ["COMMANDS", "build_parser", "main"]

logger = logging.getLogger("mmreward")


def _setup_logging(verbose: bool) -> None:
    """Log to stderr with a plain format (stdout carries data only); only the main process talks (RANK unset or 0)."""
    quiet = os.environ.get("RANK", "0") != "0"
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand with its help line, and the arguments of `command` (None: of all).

    Args:
        command: the subcommand about to run (its arguments are built, the others only named); None builds every
            subcommand's arguments (tests, documentation).

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog="mmreward", description="Multimodal reward models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, add_arguments) in COMMANDS.items():
        subparser = sub.add_parser(name, help=text)
        if command is None or command == name:
            add_arguments(subparser)
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
    rest = [token for token in argv if token not in ("-v", "--verbose")]
    # Only the command being run gets its arguments built (none for `mmreward --help`); see COMMANDS.
    command = next((token for token in rest if not token.startswith("-")), "")
    args = build_parser(command).parse_args(flags[:1] + rest)
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
