"""The run folder: refuse to train into another run's `output_dir`, and resume only a checkpoint of this config.

Every training stage calls `prepare_output_dir(cfg)` before it writes anything:

- a fresh or empty folder (or one holding only a built recipe, `data/`) is used as it is;
- a folder holding another run (checkpoints, a saved model, a run record) is refused unless the config says
  `overwrite_output_dir: true` (the old run's files are then removed, so no stale `checkpoint-N` is left behind
  for a later `--resume_from_checkpoint latest` to pick up) or `resume_from_checkpoint` is given;
- `resume_from_checkpoint: latest` takes the newest *complete* checkpoint and refuses it when the config recorded
  in it differs from the current one in a field that changes what is trained (model, data, loss, optimiser,
  schedule, steps, …); an explicit checkpoint path is resumed anyway, with a warning listing the differences.

`RecordRun` writes the resolved config (`mmreward_run.yaml`) into every checkpoint as it is saved.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import yaml
from transformers import TrainerCallback

from mmreward.config import to_yaml
from mmreward.errors import ConfigError
from mmreward.train.bt_setup import latest_complete_checkpoint

logger = logging.getLogger(__name__)

RUN_RECORD = "mmreward_run.yaml"
COMPLETE_MARKER = "mmreward_complete"
LATEST = ("latest", "auto", "true", "True")
# Files whose presence means a folder holds a run (besides checkpoint-N folders). A run record alone does not:
# a run stopped before its first checkpoint left nothing to resume from or to mix up, so rerunning it is fine.
RUN_FILES = ("mmreward_config.json", "trainer_state.json", "rft_stats.json")
# Fields that may differ between a run and its resume: where and how it logs, saves and evaluates, and the
# process layout. Everything else changes what is trained, so a checkpoint written under another value is refused.
_FREE_PREFIXES = ("logging_", "save_", "eval_", "hub_", "dataloader_", "log_", "ddp_", "trackio")
_FREE_FIELDS = {"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "report_to", "run_name",
                "disable_tqdm", "per_device_eval_batch_size", "push_to_hub", "local_rank", "use_cpu", "project",
                "eval_data", "data_on_error", "include_num_input_tokens_seen"}


def run_contents(output_dir: Path) -> list[str]:
    """Names in `output_dir` that belong to a run (checkpoints, saved model, run record); empty if none."""
    if not output_dir.is_dir():
        return []
    found = sorted(p.name for p in output_dir.glob("checkpoint-*") if p.is_dir())
    found += [name for name in RUN_FILES if (output_dir / name).is_file()]
    return found


def config_differences(recorded: dict, current: dict) -> list[str]:
    """`"key: recorded -> current"` for every field that matters and differs (keys present in both only).

    Args:
        recorded: the config read from a checkpoint's run record.
        current: the current config, in the same form (`yaml.safe_load(to_yaml(cfg))`).

    Returns:
        The differences, sorted by key.
    """
    out = []
    for key in sorted(set(recorded) & set(current)):
        if key in _FREE_FIELDS or key.startswith(_FREE_PREFIXES):
            continue
        if recorded[key] != current[key]:
            out.append(f"{key}: {recorded[key]!r} -> {current[key]!r}")
    return out


def prepare_output_dir(cfg, marker: str = COMPLETE_MARKER) -> str | None:
    """Check (and, with `overwrite_output_dir`, clear) the output folder; returns the checkpoint to resume from.

    Args:
        cfg: a stage config with `output_dir`, `overwrite_output_dir` and (optionally) `resume_from_checkpoint`.
        marker: the file that marks a checkpoint complete.

    Returns:
        The checkpoint path to hand to `Trainer.train(resume_from_checkpoint=…)`, or None to start from scratch.

    Raises:
        ConfigError: the folder holds another run and neither overwriting nor resuming was asked for, or the
            latest checkpoint was written by a different config.
    """
    out = Path(cfg.output_dir)
    resume = getattr(cfg, "resume_from_checkpoint", None)  # stages without Trainer (RFT) have no resume
    # Every rank decides from the same, unmodified folder; only the main process then changes it.
    contents = run_contents(out)
    if resume in LATEST:
        resume = latest_complete_checkpoint(out, marker)
        logger.info("resuming from %s", resume or "scratch (no complete checkpoint yet)")
        if resume:
            _check_recorded_config(Path(resume), cfg, strict=True)
    elif resume:
        if not Path(resume).is_dir():
            raise ConfigError(f"--resume_from_checkpoint {resume}: no such checkpoint folder")
        _check_recorded_config(Path(resume), cfg, strict=False)
    elif contents and not cfg.overwrite_output_dir:
        shown = ", ".join(contents[:4]) + (", …" if len(contents) > 4 else "")
        raise ConfigError(f"output_dir {out} already holds a run ({shown}); pass --overwrite_output_dir true to "
                          "replace it, --resume_from_checkpoint latest to continue it, or another --output_dir")
    _barrier(cfg)
    if _is_main(cfg):
        if contents and cfg.overwrite_output_dir and not resume:
            _clear(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_RECORD).write_text(to_yaml(cfg))
    _barrier(cfg)
    return resume


def _check_recorded_config(ckpt: Path, cfg, strict: bool) -> None:
    record = ckpt / RUN_RECORD
    if not record.is_file():
        logger.warning("%s: no %s (written by an older version); cannot check it was trained with this config",
                       ckpt, RUN_RECORD)
        return
    differences = config_differences(yaml.safe_load(record.read_text()) or {}, yaml.safe_load(to_yaml(cfg)))
    if not differences:
        return
    listed = "; ".join(differences[:6]) + ("; …" if len(differences) > 6 else "")
    if strict:
        raise ConfigError(f"{ckpt} was written by a different config ({listed}); rerun with that config, pass the "
                          "checkpoint folder itself to --resume_from_checkpoint to continue it under this one, "
                          "or start over with --overwrite_output_dir true")
    logger.warning("resuming %s under a different config (%s)", ckpt, listed)


def _clear(out: Path) -> None:
    """Remove everything in a previous run's folder (refusing folders that contain the working directory)."""
    resolved = out.resolve()
    if resolved == Path.home().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.cwd():
        raise ConfigError(f"output_dir {out} contains the working directory or is the home folder; "
                          "refusing to overwrite it — choose a dedicated --output_dir")
    entries = list(out.iterdir())
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    logger.info("overwrite_output_dir: removed %d entries of the previous run in %s", len(entries), out)


def _is_main(cfg) -> bool:
    return getattr(cfg, "process_index", 0) == 0


def _barrier(cfg) -> None:
    if getattr(cfg, "world_size", 1) > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()


class RecordRun(TrainerCallback):
    """Writes the run's config into each checkpoint as it is saved (then `marker`, if given, to mark it complete).

    Args:
        cfg: the stage config.
        marker: file written after the record; None when another callback marks completion.
    """

    def __init__(self, cfg, marker: str | None = COMPLETE_MARKER):
        self.record = to_yaml(cfg)
        self.marker = marker

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                (ckpt / RUN_RECORD).write_text(self.record)
                if self.marker:
                    (ckpt / self.marker).write_text(str(state.global_step))
