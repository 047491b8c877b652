"""Plumbing the Bradley–Terry trainer calls: reading training records, building the scorer, checkpoint helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def _read(source: str, split: str, cfg, out_dir: Path) -> list:
    return read_records(source, split, out_dir, on_error=cfg.data_on_error)


def read_records(source: str, split: str, out_dir: Path, on_error: str = "raise") -> list:
    """Records from a JSONL file, a built recipe folder, or a recipe YAML (built into out_dir/data first).

    Args:
        source: the data path.
        split: which split of a recipe to read.
        out_dir: where a recipe YAML is built.
        on_error: bad JSONL lines: "raise" or "skip".
    """
    from mmreward.data.schema import read_jsonl

    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        from mmreward.data.recipe import build_recipe

        data_dir = out_dir / "data"
        if not (data_dir / "manifest.json").is_file():
            build_recipe(path, data_dir)
        path = data_dir
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(f"{path}: a data folder needs the manifest.json written by `mmreward data build`")
        from mmreward.data.recipe import load_split

        return load_split(path, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file (expected JSONL, recipe YAML or built recipe folder)")
    return read_jsonl(path, on_error=on_error)


def missing_media(record) -> list[Path]:
    """Local media files (paths and frame images) a record names that do not exist; URLs and bytes are not checked."""
    items = list(record.media)
    for side in (getattr(record, "a", None), getattr(record, "b", None)):
        items += side.media if side is not None else []
    paths = [p for item in items for p in ([item.local_path()] if item.path else item.frame_paths())]
    return [p for p in paths if not p.exists()]


def check_media(records: list, source: str, on_error: str = "raise", hint: str = "") -> list:
    """Records whose local media all exist; a missing file raises `DataError` ("raise") or drops the record ("skip").

    Args:
        records: the records.
        source: the data path, named in messages.
        on_error: "raise" or "skip".
        hint: what to do, appended to the error (e.g. how to skip such records).

    Returns:
        The records kept, in order.
    """
    from mmreward.errors import DataError

    kept = []
    for record in records:
        missing = missing_media(record)
        if not missing:
            kept.append(record)
            continue
        message = f"{source}: record {record.id}: media file {missing[0]} does not exist"
        if on_error != "skip":
            raise DataError(message + (f"; {hint}" if hint else ""))
        logger.warning("%s; record skipped", message)
    if len(kept) < len(records):
        logger.warning("%s: %d of %d records skipped for missing media", source, len(records) - len(kept),
                       len(records))
    return kept


def load_records(cfg) -> tuple[list, list]:
    """(train records, eval records) as configured; eval falls back to the recipe's eval split."""
    out_dir = Path(cfg.output_dir)
    train = _read(cfg.train_data, cfg.train_split, cfg, out_dir)
    if cfg.eval_data:
        evaluation = _read(cfg.eval_data, cfg.eval_split, cfg, out_dir)
    elif not Path(cfg.train_data).suffix == ".jsonl":
        try:
            evaluation = _read(cfg.train_data, cfg.eval_split, cfg, out_dir)
        except KeyError:
            evaluation = []
    else:
        evaluation = []
    # A missing file would otherwise surface mid-training as a traceback from the data loader.
    hint = "fix the path, or pass --data_on_error skip to train without such records"
    train = check_media(train, cfg.train_data, cfg.data_on_error, hint)
    evaluation = check_media(evaluation, cfg.eval_data or cfg.train_data, cfg.data_on_error, hint)
    if not train:
        raise ValueError(f"{cfg.train_data}: no training records")
    logger.info("training on %d records, evaluating on %d", len(train), len(evaluation))
    return train, evaluation


def build_scorer(cfg):
    """The scorer named by `cfg.scorer`: a fresh one from `scoring.SCORERS[cfg.scorer].from_bt_config(cfg)`.

    Args:
        cfg: a `train.bt.BTConfig` (its `scorer` is one of `scoring.trainable_kinds()`, checked by the config).
    """
    from mmreward.scoring import SCORERS

    return SCORERS[cfg.scorer].from_bt_config(cfg)


def latest_complete_checkpoint(output_dir: Path, marker: str) -> str | None:
    """The newest `checkpoint-N` holding `marker`; half-written checkpoints are never chosen."""
    if not output_dir.is_dir():
        return None
    found = []
    for path in output_dir.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if suffix.isdigit() and (path / marker).is_file():
            found.append((int(suffix), path))
        elif suffix.isdigit():
            logger.warning("%s: incomplete checkpoint (no %s), not resuming from it", path, marker)
    return str(max(found)[1]) if found else None


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, with where the last complete checkpoint is (None: no checkpoint was complete yet)."""

    def __init__(self, output_dir: str, checkpoint: str | None):
        super().__init__(f"interrupted; last complete checkpoint: {checkpoint or 'none'}")
        self.output_dir = output_dir
        self.checkpoint = checkpoint


@contextmanager
def interrupt_hint(output_dir: str | Path, marker: str) -> Iterator[None]:
    """Turn a KeyboardInterrupt inside the block into a `TrainingInterrupted` naming the last complete checkpoint.

    Args:
        output_dir: the run's output folder (its checkpoint-N sub-folders are searched).
        marker: the file that marks a checkpoint complete.
    """
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt as err:
        checkpoint = latest_complete_checkpoint(Path(output_dir), marker)
        raise TrainingInterrupted(str(output_dir), checkpoint) from err


def load_weights(model, ckpt: Path) -> None:
    """Load a scorer checkpoint's weights into an existing scorer in place (Trainer's resume)."""
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    if (ckpt / "head.safetensors").is_file():
        model.head.load_state_dict(load_file(ckpt / "head.safetensors"))
    if isinstance(model.backbone, PeftModel):
        set_peft_model_state_dict(model.backbone, load_file(ckpt / "adapter" / "adapter_model.safetensors"))
        if (ckpt / "trainable.safetensors").is_file():
            model.backbone.load_state_dict(load_file(ckpt / "trainable.safetensors"), strict=False)
        return
    # Full weights: reload through from_pretrained (it knows the on-disk key layout) and copy in place.
    fresh = type(model.backbone).from_pretrained(ckpt / "backbone", dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        model.backbone.load_state_dict(fresh.state_dict())
