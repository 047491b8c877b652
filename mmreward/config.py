"""Dataclass configs from YAML (`--config FILE`) plus command-line flags (`--key value`); unknown keys are errors.

    cfg = load_config(BTConfig, "launch/configs/tiny_cpu/bt.yaml", ["--learning_rate", "1e-4", "--max_steps=5"])

The dataclass is the single source of defaults. Values from YAML keep their YAML types; flag values are parsed
as YAML scalars/lists (`--dimensions "[VQ, MQ]"`, `--bf16 true`) and then coerced to the field's type.
"""

from __future__ import annotations

import dataclasses
import enum
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
        return hint(value)
    if isinstance(value, hint):
        return value
    raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")


def parse_flags(argv: list[str]) -> dict[str, Any]:
    """`--key value` / `--key=value` pairs -> {key: YAML-parsed value}; dashes in keys become underscores."""
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
        out[key.replace("-", "_")] = yaml.safe_load(value) if value != "" else ""
        i += 1
    return out


def load_config(cls, path: str | Path | None = None, flags: list[str] | dict[str, Any] | None = None):
    """Build a config dataclass from a YAML file and flag overrides (flags win).

    Args:
        cls: the config dataclass.
        path: YAML file (a mapping of field names), or None.
        flags: `["--key", "value", …]` or an already parsed {key: value} dict.

    Returns:
        An instance of `cls`; unknown keys and ill-typed values raise `ConfigError` naming them.
    """
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
        values.update(loaded)
    values.update(parse_flags(flags) if isinstance(flags, list) else (flags or {}))
    fields = _fields(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f" in {path}" if path else ""
        raise ConfigError(f"unknown config key(s){where}: {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}")
    hints = _type_hints(cls)
    coerced = {k: _coerce(v, hints.get(k, Any), k) for k, v in values.items()}
    return cls(**coerced)


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
