"""Dataclass configs from YAML (`--config FILE`) plus command-line flags (`--key value`); unknown keys are errors.

    cfg = load_config(BTConfig, "launch/configs/tiny_cpu/bt.yaml", ["--learning_rate", "1e-4", "--max_steps=5"])

The dataclass is the single source of defaults. Values from YAML keep their YAML types; flag values are parsed
as YAML scalars/lists (`--dimensions "[VQ, MQ]"`, `--bf16 true`) and then coerced to the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from mmreward.errors import ConfigError  # noqa: F401  (re-exported: mmreward.config.ConfigError)


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _type_hints(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - third-party dataclasses may carry unresolvable forward references
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce a parsed value to a field type where that is unambiguous (int -> float, str -> Path, …)."""
    if value is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        for option in options:
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not fit {hint}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        return [_coerce(v, args[0], key) for v in value] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return value
    if isinstance(hint, type):
        return _coerce_scalar(value, hint, key)
    return value


def _coerce_scalar(value: Any, hint: type, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, str):
        # YAML 1.1 reads "1e-3" as a string; numbers written that way are still numbers.
        try:
            return hint(value)
        except ValueError:
            raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, Path) and isinstance(value, (str, int, float, Path)) and not isinstance(value, bool):
        return hint(value)
    if issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in hint)
            raise ConfigError(f"{key}: expected one of {choices}, got {value!r}") from None
    if isinstance(value, hint):
        return value
    raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")


def parse_flags(argv: list[str], raw: bool = False) -> dict[str, Any]:
    """`--key value` / `--key=value` pairs -> {key: YAML-parsed value}; dashes in keys become underscores.

    Args:
        argv: the flags.
        raw: keep every value as the string typed (no YAML parsing).
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise ConfigError(f"expected --key value, got {token!r}")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(f"--{key} needs a value")
            value = argv[i + 1]
            i += 1
        out[key.replace("-", "_")] = value if raw or value == "" else _yaml_scalar(key, value)
        i += 1
    return out


def _yaml_scalar(key: str, value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"--{key}: {value!r} is not a valid value (YAML scalar or [list])") from None


def _is_plain_str(hint: Any) -> bool:
    """`str`, `str | None`, `str | SomeEnum`: a flag for such a field keeps the text typed (`--save_strategy no` is
    "no", not YAML's False)."""
    if hint is str:
        return True
    if typing.get_origin(hint) not in (typing.Union, types.UnionType) or str not in typing.get_args(hint):
        return False
    # Trainer's `SaveStrategy | str` and the like: the enum is chosen by its text too.
    return all(a in (str, type(None)) or (isinstance(a, type) and issubclass(a, enum.Enum))
               for a in typing.get_args(hint))


def load_config(cls, path: str | Path | None = None, flags: list[str] | dict[str, Any] | None = None):
    """Build a config dataclass from a YAML file and flag overrides (flags win).

    Args:
        cls: the config dataclass.
        path: YAML file (a mapping of field names), or None.
        flags: `["--key", "value", …]` or an already parsed {key: value} dict.

    Returns:
        An instance of `cls`. Unknown keys (with the three closest valid names), ill-typed values and values the
        dataclass refuses raise `ConfigError` naming where the key came from: the flag, or the YAML file.
    """
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    hints = _type_hints(cls)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
        values.update(loaded)
        origin.update({k: f"{path}: {k}" for k in loaded})
    overrides = parse_flags(flags) if isinstance(flags, list) else (flags or {})
    values.update(overrides)
    if isinstance(flags, list):
        typed = parse_flags(flags, raw=True)
        values.update({k: v for k, v in typed.items() if _is_plain_str(hints.get(k)) and v not in ("null", "~")})
    # A flag is blamed as the flag the user typed; a key from a Python dict is named as the key.
    origin.update({k: (f"--{k}" if isinstance(flags, list) else k) for k in overrides})
    fields = _fields(cls)
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError("; ".join(_unknown_key_message(origin[k], k, fields) for k in unknown))
    coerced = {k: _coerce(v, hints.get(k, Any), origin[k]) for k, v in values.items()}
    try:
        return cls(**coerced)
    except ConfigError:
        raise
    except ValueError as err:
        # __post_init__ checks (ours, TrainingArguments', TRL's) are about the values the user gave.
        where = (f"{path} with flags" if overrides else f"{path}") if path else ("flags" if overrides else "config")
        raise ConfigError(f"{where}: {err}") from err


def _unknown_key_message(label: str, key: str, fields) -> str:
    """`--lerning_rate: unknown config key; did you mean learning_rate, …?` (the three closest names)."""
    ranked = sorted(fields, key=lambda name: -difflib.SequenceMatcher(None, key, name).ratio())
    flag = label.startswith("--")
    guesses = ", ".join(("--" if flag else "") + name for name in ranked[:3])
    what = "unknown flag" if flag else "unknown config key"
    return f"{label}: {what}; did you mean {guesses}? (--help lists every key)"


def config_help(cls, command: str) -> str:
    """Every field of a config dataclass with its type, default and one-line doc: ours first, then TRL / Trainer.

    Args:
        cls: the config dataclass (e.g. `BTConfig`).
        command: how the user runs it, for the heading (e.g. "mmreward train bt").

    Returns:
        The help text.
    """
    hints = _type_hints(cls)
    ours = _our_docs(cls)
    entries: dict[str, list[tuple[str, str]]] = {}
    for f in _fields_ours_first(cls):
        owner = _defining_class(cls, f.name)
        # A base field we redeclare with its own meaning (not just a new default) is documented as ours.
        mine = owner.__module__.startswith("mmreward") or (
            f.name in ours and not ours[f.name].startswith(_REDEFAULTED))
        doc = ours.get(f.name, "") if mine else _first_sentence(_base_field(owner, f.name).metadata.get("help", ""))
        group = "ours" if mine else f"{owner.__module__.split('.')[0]} {owner.__name__}"
        line = f"  --{f.name} {_type_name(hints.get(f.name, f.type))} (default {_default_text(f)})"
        entries.setdefault(group, []).append((line, doc))
    groups = {}
    for group, items in entries.items():
        # Fields documented by one comment are listed together, with the comment once after the last of them.
        out = []
        for i, (line, doc) in enumerate(items):
            out.append(line)
            if doc and (i + 1 == len(items) or items[i + 1][1] != doc):
                out.append(f"      {doc}")
        groups[group] = out
    lines = [f"usage: {command} [--config FILE.yaml] [--key value …]", "",
             "Every key below can be set in the YAML file or as a flag (--key value or --key=value); flags win.", ""]
    order = ["ours"] + sorted((g for g in groups if g.startswith("trl")), reverse=True) + \
        sorted(g for g in groups if g != "ours" and not g.startswith("trl"))
    for group in order:
        title = f"{cls.__name__} (mmreward) fields" if group == "ours" else f"{group} fields"
        lines += [f"{title}:", *groups[group], ""]
    return "\n".join(lines)


def _fields_ours_first(cls) -> list[dataclasses.Field]:
    """init fields, those declared by `cls` itself first, then its mixins' and bases' (stable within each)."""
    mro = list(cls.__mro__)

    def rank(f):
        # (first class in the MRO that declares it, its position in that class's source)
        base = next(b for b in mro if f.name in getattr(b, "__annotations__", {}))
        return mro.index(base), list(base.__annotations__).index(f.name)

    return sorted((f for f in dataclasses.fields(cls) if f.init), key=rank)


def _defining_class(cls, name: str) -> type:
    """The class that owns a field: a third-party base that defines it wins over our re-declared default."""
    owners = [base for base in cls.__mro__ if name in getattr(base, "__annotations__", {})]
    third_party = [base for base in owners if not base.__module__.startswith("mmreward")]
    return third_party[-1] if third_party else owners[0]


def _base_field(owner: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(owner) if f.name == name)


def _our_docs(cls) -> dict[str, str]:
    """Field docs from the comments above our fields; a comment covers the fields that follow it up to the next."""
    import inspect

    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("mmreward") or not dataclasses.is_dataclass(base):
            continue
        try:
            source = inspect.getsource(base).splitlines()
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        pending = False
        for line in source[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                comment = comment if pending else []
                comment.append(stripped.lstrip("# ").strip())
                pending = True
                continue
            match = _FIELD_LINE.match(line)
            if match:
                pending = False
                if comment:
                    docs[match.group(1)] = _first_sentence(" ".join(comment))
            elif stripped.startswith(("def ", "@")):
                break
    return docs


# The comment our configs put above base fields whose default they only change.
_REDEFAULTED = "Defaults that differ from"
_FIELD_LINE = re.compile(r"^    (\w+)\s*:[^=]*(=|$)")


def _first_sentence(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    text = text[: end + 1] if 0 < end else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if isinstance(value, enum.Enum):
        value = value.value
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def to_yaml(cfg) -> str:
    """The resolved config as YAML (only our own JSON-able fields), to store next to outputs."""
    data = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, Path):
            value = str(value)
        if value is None or isinstance(value, (str, int, float, bool, list, dict)):
            data[f.name] = value
    return yaml.safe_dump(data, sort_keys=True)
