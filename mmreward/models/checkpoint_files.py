"""The on-disk format of a scorer checkpoint: file names, the config (read, write, validate), weight-file checks.

The layout and the completeness rule are described in `mmreward.models.checkpoint` (which adds saving and
loading the backbone part and re-exports everything here). This module imports no model code, so the backbone
loader can use its checks without an import cycle.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from mmreward.errors import CheckpointError

logger = logging.getLogger(__name__)

CONFIG_NAME = "mmreward_config.json"
# What only a mmreward save writes: a folder holding one of these but no config is an interrupted save.
SAVED_PARTS = ("backbone", "adapter", "head.safetensors", "trainable.safetensors", "clip.safetensors")


def begin_save(out: Path) -> Path:
    """Prepare `out` for a save: create it, and remove the config and the parts a previous save left there.

    The config goes first so that, until `write_config` writes the new one, the folder reads as incomplete; stale
    parts go so that a new save never loads beside leftovers of an older one (an old `trainable.safetensors`
    under a new adapter). Only the names a save writes are removed; anything else in the folder stays.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_NAME).unlink(missing_ok=True)
    for name in SAVED_PARTS:
        part = out / name
        if part.is_dir() and not part.is_symlink():
            shutil.rmtree(part)
        elif part.exists() or part.is_symlink():
            part.unlink()
    return out


def split_state_dict(state_dict: dict | None, prefix: str) -> dict | None:
    """The entries under `prefix.` with the prefix removed (None passes through)."""
    if state_dict is None:
        return None
    return {k[len(prefix) + 1:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def require_part(path: Path, name: str) -> Path:
    """A checkpoint's sub-folder, or a CheckpointError saying the checkpoint is incomplete."""
    part = path / name
    if not part.is_dir():
        raise CheckpointError(f"{part}: missing, although {path / CONFIG_NAME} says it is there; the checkpoint was "
                              "copied only in part: copy it again or save the model again")
    return part


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def check_safetensors(file: Path) -> None:
    """Read a .safetensors header (cheap: nothing but the header is read) and refuse a corrupt or truncated file.

    Raises:
        CheckpointError: naming the file (safetensors' own message does not).
    """
    from safetensors import SafetensorError, safe_open

    if not file.is_file():
        raise CheckpointError(f"{file}: missing; the checkpoint was copied only in part: copy it again or save the "
                              "model again")
    try:
        with safe_open(str(file), "pt"):
            pass
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file}: corrupt or truncated safetensors file ({first_line(err)}); copy it again "
                              "or save the model again") from None


def check_weights(folder: Path) -> None:
    """`check_safetensors` on every .safetensors file directly in `folder`."""
    for file in sorted(folder.glob("*.safetensors")):
        check_safetensors(file)


def load_safetensors(file: Path) -> dict:
    """The tensors of a .safetensors file, with a CheckpointError naming it when it is missing or corrupt."""
    from safetensors.torch import load_file

    check_safetensors(file)
    return load_file(file)


def load_state(module, file: Path, *, strict: bool = True):
    """Load a .safetensors file into `module`; a file of another shape or other keys is a CheckpointError naming it.

    Returns:
        `load_state_dict`'s result (missing / unexpected keys when not strict).
    """
    state = load_safetensors(file)
    try:
        return module.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        detail = lines[0].split(". ")[0] if lines else first_line(err)
        raise CheckpointError(f"{file}: does not fit this model ({detail[:200]}); was it copied from another "
                              "checkpoint?") from err


def check_folder(path: str | Path) -> Path:
    """`path` as a Path, or a CheckpointError when it does not exist or is a file."""
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{path}: no such folder")
    if not folder.is_dir():
        raise CheckpointError(f"{path}: is a file; give the checkpoint folder (the one holding {CONFIG_NAME})")
    return folder


def plain_model_source(path_or_id: str | Path) -> str:
    """A plain model's directory or hub id as given; an open_clip-like spec ("MODEL:TAG") that is no folder is refused.

    Raises:
        CheckpointError: `path_or_id` has a ":" and is no folder (most likely an open_clip model without --scorer).
    """
    if ":" in str(path_or_id) and not Path(path_or_id).expanduser().exists():
        raise CheckpointError(f"{path_or_id}: no such folder; for an open_clip model add --scorer clip")
    return str(path_or_id)


def read_config(path: str | Path) -> dict:
    """The `mmreward_config.json` of a checkpoint directory.

    Raises:
        CheckpointError: the folder is missing, not a checkpoint, an interrupted save, or its config is not a JSON
            object (the message names the file and what to do).
    """
    folder = check_folder(path)
    file = folder / CONFIG_NAME
    if not file.is_file():
        raise CheckpointError(missing_config_message(folder))
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                              "undo the edit, or save the model again") from None
    except (UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({type(err).__name__}); undo the edit, or save the model "
                              "again") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file}: must hold a JSON object of scorer settings, not a {type(raw).__name__}")
    return raw


def missing_config_message(folder: Path) -> str:
    """Why a folder without `mmreward_config.json` cannot be loaded as a checkpoint, and what to do instead."""
    done = _complete_checkpoints(folder)
    resume = (f"; the last complete training checkpoint here is {done[-1]}: score that, or resume training with "
              "--resume_from_checkpoint latest") if done else "; save the model again"
    if any((folder / name).exists() for name in SAVED_PARTS):
        return (f"{folder}: incomplete checkpoint: {CONFIG_NAME}, which every save writes last, is missing, so the "
                f"save was interrupted{resume}")
    if (folder / "config.json").is_file():
        return (f"{folder}: a transformers model, not a mmreward checkpoint (no {CONFIG_NAME}); score it as a plain "
                "VLM (--scorer yes_token or judge)")
    where = f"; it holds training checkpoints, e.g. {done[-1]}" if done else ""
    return (f"{folder}: not a model folder: no {CONFIG_NAME} (mmreward checkpoint) and no config.json "
            f"(transformers model){where}")


def _complete_checkpoints(folder: Path) -> list[Path]:
    """checkpoint-N sub-folders whose model save completed, oldest first."""
    found = []
    for sub in folder.glob("checkpoint-*"):
        suffix = sub.name.split("-", 1)[1]
        if suffix.isdigit() and (sub / CONFIG_NAME).is_file():
            found.append((int(suffix), sub))
    return [sub for _, sub in sorted(found)]


def write_config(path: Path, config: dict) -> None:
    """Write `mmreward_config.json` atomically (temp file, fsync, rename): the last step of every save."""
    tmp = path / f".{CONFIG_NAME}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(config, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path / CONFIG_NAME)


def config_from_dict(cls, raw: dict, file: Path):
    """Build a config dataclass from a checkpoint's settings, checking keys and value types first.

    Args:
        cls: the dataclass (e.g. `RewardModelConfig`).
        raw: the settings read from `file` (the "scorer" key already removed).
        file: the config file, named in every error.

    Returns:
        The config.

    Raises:
        CheckpointError: an unknown or missing key, a value of the wrong type, or a value the config refuses.
    """
    known = [f for f in fields(cls) if f.init]
    required = [f.name for f in known if f.default is MISSING and f.default_factory is MISSING]
    hints = typing.get_type_hints(cls)
    check_settings(raw, {f.name: hints[f.name] for f in known}, required, file)
    try:
        return cls(**raw)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{file}: {err}") from None


def check_settings(raw: dict, hints: dict, required: list[str], file: Path) -> None:
    """Check a checkpoint's settings against type annotations: no unknown or missing key, every value of its type.

    Args:
        raw: the settings read from `file`.
        hints: key -> type annotation (str, int, float, bool, None, list[...], dict[...], unions).
        required: the keys that must be present.
        file: the config file, named in every error.

    Raises:
        CheckpointError: naming the file, the key and what is wrong with it.
    """
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise CheckpointError(f"{file}: unknown key(s) {', '.join(map(repr, unknown))}; the file was edited or "
                              "written by a newer mmreward")
    missing = [key for key in required if key not in raw]
    if missing:
        raise CheckpointError(f"{file}: missing key(s) {', '.join(map(repr, missing))}; undo the edit, or save the "
                              "model again")
    for key, value in raw.items():
        if not _matches(value, hints[key]):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise CheckpointError(f"{file}: {key!r} must be {_describe(hints[key])}, got {shown}")


def check_media(media: dict, file: Path) -> None:
    """Refuse a recorded media contract that cannot be read back (an edited `media` entry), naming the file."""
    from mmreward.data.collate import MediaContract

    if not media:
        return
    try:
        MediaContract.from_dict(media)
    except KeyError as err:
        raise CheckpointError(f"{file}: 'media' lacks the key {err}; undo the edit, or save the model again") from None
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{file}: 'media' is not a valid media contract ({err})") from None


def _matches(value, hint) -> bool:
    """Whether a JSON value fits a type annotation (str, int, float, bool, None, list[...], dict[...], unions)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (typing.Any, object):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is list or origin is list:
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if hint is dict or origin is dict:
        return isinstance(value, dict) and (not args or all(_matches(v, args[1]) for v in value.values()))
    return True  # an annotation this check does not know: the config's own validation decides


def _describe(hint) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
