"""`mmreward eval`'s arguments, generated from `EvalConfig` and read back through `mmreward.config.load_config`.

Every field of `evaluation.eval_config.EvalConfig` is a flag, spelled with dashes or underscores (`--batch-size`,
`--batch_size`); a boolean that defaults to true also has `--no-<name>` (`--no-progress`, `--no-report`), and
`options` also takes `--option KEY=VALUE` (repeatable, merged into the YAML's options). `--config FILE.yaml`
(or its older name `--suite`) gives a YAML of the same keys; flags win. Flags that name no field are kept and
handed to `load_config`, which refuses them naming the closest fields, as `mmreward train` does. `--help` is
`config_help(EvalConfig)`: the dataclass's comments are the only documentation of each option.
"""

from __future__ import annotations

import argparse
import dataclasses

# What `--help` adds to the fields' list: the flags that are not fields.
_EXTRA_HELP = """Also:
  --config FILE.yaml (or --suite FILE.yaml)
      keys of EvalConfig (eval/suites/*.yaml); flags override them.
  --no-progress, --no-report
      the same as --progress false, --report false.
  --option KEY=VALUE (repeatable)
      one loader option, merged into `options` (e.g. --option split=test)."""


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--config` and one flag per `EvalConfig` field to the `eval` subparser.

    Args:
        parser: the `mmreward eval` subparser. Flags default to None, so that only the ones given override the
            YAML and the dataclass defaults.
    """
    from mmreward.evaluation.eval_config import CHOICES, EvalConfig
    from mmreward.scoring import SCORERS

    choices = {**CHOICES, "scorer": tuple(sorted(SCORERS))}
    parser.add_argument("--config", "--suite", dest="config", help=argparse.SUPPRESS)
    for f in dataclasses.fields(EvalConfig):
        names = dict.fromkeys([f"--{f.name.replace('_', '-')}", f"--{f.name}"])
        try:
            parser.add_argument(*names, dest=f.name, choices=choices.get(f.name), help=argparse.SUPPRESS)
        except argparse.ArgumentError:
            # A flag added by hand before this call keeps its own definition.
            continue
        if f.type in (bool, "bool") and f.default is True:
            parser.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_const", const="false",
                                help=argparse.SUPPRESS)
    parser.add_argument("--option", action="append", help=argparse.SUPPRESS)
    parser.format_help = lambda: _eval_help(EvalConfig)
    _keep_unknown_flags(parser)


def _eval_help(cls) -> str:
    from mmreward.config import config_help

    return config_help(cls, "mmreward eval") + "\n" + _EXTRA_HELP + "\n"


def _keep_unknown_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that argparse does not know land in `args.unknown_flags` instead of argparse's bare "unrecognized
    arguments", so that `load_config` names the closest fields."""
    parse_known_args = parser.parse_known_args

    def keep(args=None, namespace=None):
        namespace, rest = parse_known_args(args, namespace)
        namespace.unknown_flags = [*getattr(namespace, "unknown_flags", []), *rest]
        return namespace, []

    parser.parse_known_args = keep


def eval_config(args: argparse.Namespace):
    """The `EvalConfig` of a parsed `mmreward eval` command line.

    Args:
        args: the parsed arguments (see `add_eval_arguments`).

    Returns:
        The config: the YAML's values, overridden by the flags given, checked by `EvalConfig`. Unknown keys,
        ill-typed values and refused values are `ConfigError`s naming the flag or the YAML file.
    """
    from mmreward.config import ConfigError, load_config
    from mmreward.evaluation.eval_config import EvalConfig

    flags: list[str] = []
    for f in dataclasses.fields(EvalConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            flags += [f"--{f.name}", value]
    cfg = load_config(EvalConfig, args.config, flags + list(getattr(args, "unknown_flags", [])))
    if args.option:
        pairs = [kv.split("=", 1) for kv in args.option]
        bad = [kv for kv, pair in zip(args.option, pairs) if len(pair) != 2 or not pair[0]]
        if bad:
            raise ConfigError(f"--option {bad[0]}: expected KEY=VALUE (e.g. --option split=test)")
        cfg = dataclasses.replace(cfg, options={**cfg.options, **dict(pairs)})
    return cfg
