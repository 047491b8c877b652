"""`mmreward score` under torchrun: records sharded across ranks, each rank streams its part, rank 0 merges.

    torchrun --nproc_per_node 8 [--nnodes N …] -m mmreward.cli score --model CKPT --input recs.jsonl \
        --output scores.jsonl [--on-error skip] [--resume]

Every rank reads the input and takes one contiguous block of it (as `mmreward eval` does), streams its scores to
``<output>.part<r>-of-<W>`` and the records it could not score to ``<errors stem>.rank<r>.jsonl``. When all ranks
are done, rank 0 merges the parts into ``--output`` in input order (written to a temporary file and renamed),
and the per-rank errors into the one errors file; parts are removed only after the merge. The result is the
file a single process writes. ``--resume`` after an interruption continues each rank from its own part (the
shards are the same as long as the input and world size are); the lines of an earlier merged output count as
done. Read errors of the input are reported once, by rank 0.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict, deque
from pathlib import Path

logger = logging.getLogger(__name__)


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[start, end) of rank's contiguous block of n items (ceil-sized blocks; the last ranks may get fewer)."""
    size = -(-n // world)
    return min(n, rank * size), min(n, (rank + 1) * size)


def part_path(output: str | Path, rank: int, world: int) -> Path:
    """The file rank writes its scores to before the merge."""
    output = Path(output)
    return output.with_name(f"{output.name}.part{rank}-of-{world}")


def rank_errors_path(errors: str | Path, rank: int) -> Path:
    """The errors file of one rank (merged into `errors` at the end)."""
    errors = Path(errors)
    return errors.with_name(f"{errors.stem}.rank{rank}{errors.suffix}")


def merge_parts(output: str | Path, ids: list[str], world: int, *, keep_existing: bool = False) -> int:
    """Write the ranks' parts (and, resuming, the lines already in `output`) into `output` in input order.

    Args:
        output: the final scores file.
        ids: every input record's id, in input order (a repeated id takes its lines in order).
        world: number of ranks.
        keep_existing: include the complete lines already in `output` (an earlier merged run being resumed).

    Returns:
        The number of lines written. Parts are removed after the rename.
    """
    output = Path(output)
    sources = ([output] if keep_existing and output.exists() else []) + \
        [part_path(output, r, world) for r in range(world)]
    lines: dict[str, deque] = defaultdict(deque)
    for source in sources:
        if not source.exists():
            continue
        with open(source, "rb") as f:
            for raw in f:
                if raw.endswith(b"\n"):  # a cut-off last line was not a result
                    lines[json.loads(raw)["id"]].append(raw)
    tmp = output.with_name(output.name + ".tmp")
    written = 0
    with open(tmp, "wb") as f:
        for record_id in ids:
            if lines[record_id]:
                f.write(lines[record_id].popleft())
                written += 1
    os.replace(tmp, output)
    for r in range(world):
        part_path(output, r, world).unlink(missing_ok=True)
    return written


def merge_errors(errors: str | Path, world: int) -> None:
    """Concatenate the ranks' errors files (in rank order) into `errors`; no file when no rank had an error."""
    errors = Path(errors)
    parts = [rank_errors_path(errors, r) for r in range(world)]
    data = b"".join(p.read_bytes() for p in parts if p.exists())
    if data:
        errors.write_bytes(data)
    for p in parts:
        p.unlink(missing_ok=True)


def _init() -> tuple[int, int]:
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _all_sum(values: list[int]) -> list[int]:
    import torch
    import torch.distributed as dist

    # gloo reduces CPU tensors; with nccl the tensor must live on this rank's GPU.
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.long, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


class _NoReadErrors:
    """Ranks other than 0 read the input only to shard it: rank 0 reports its bad lines."""

    def read_error(self, err, raw: str) -> None:
        return None


def score_distributed(args) -> int:
    """`mmreward score` on this rank of a torchrun launch; returns the exit code (the same on every rank)."""
    import torch
    import torch.distributed as dist

    from mmreward.errors import ConfigError, MMRewardError
    from mmreward.evaluation.eval_config import set_judge_options
    from mmreward.scoring import load_scorer, stream_scores
    from mmreward.scoring_io import (
        ResultFile,
        ScoreRun,
        errors_path,
        read_score_inputs,
        scored_ids,
        take_done,
    )

    if not args.output or Path(args.output).suffix.lower() == ".csv":
        raise ConfigError("under torchrun, scores are merged into a JSONL file: give --output scores.jsonl")
    rank, world = _init()
    errors_file = Path(args.errors) if args.errors else errors_path(args.output, args.input)
    run = ScoreRun(None, rank_errors_path(errors_file, rank))
    status = 0
    try:
        records, locations = read_score_inputs(args, run if rank == 0 else _NoReadErrors())
        ids = [r.id for r in records]
        start, end = shard_bounds(len(records), rank, world)
        part = part_path(args.output, rank, world)
        done = Counter()
        if args.resume:
            mine = set(ids[start:end])
            earlier = Counter({k: v for k, v in scored_ids(args.output).items() if k in mine})
            done = scored_ids(part) + earlier
        keep = [i for i in range(start, end) if not take_done(done, records[i].id)]
        run.locations = [locations[i] for i in keep]
        device = {"device": f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"} if torch.cuda.is_available() else {}
        scorer = load_scorer(args.model, kind=args.scorer, mode=args.mode, dtype=args.dtype, **device)
        # The same judge options as one process (`--judge-template`, `--judge-tools`).
        scorer = set_judge_options(scorer, getattr(args, "judge_template", None), getattr(args, "judge_tools", None))
        run.output = ResultFile(part, append=args.resume)
        logger.warning("rank %d/%d: scoring records %d-%d (%d to do) into %s", rank, world, start, end, len(keep),
                       part)
        stream_scores(scorer, [records[i] for i in keep], run.add_results, batch_size=args.batch_size,
                      on_error=args.on_error, num_workers=args.num_workers,
                      progress=rank == 0 and not args.no_progress)
    except (MMRewardError, FileNotFoundError) as err:  # every rank must reach the all-reduce below
        logger.error("rank %d: %s", rank, err)
        status = 1
    finally:
        run.close()
    failed_ranks, n_scored, n_failed = _all_sum([status, run.n_scored, run.n_failed])
    if failed_ranks == 0 and rank == 0:
        written = merge_parts(args.output, ids, world, keep_existing=args.resume)
        merge_errors(errors_file, world)
        logger.warning("merged %d rank part(s) into %s: %d line(s); %d scored now, %d not scored%s", world,
                       args.output, written, n_scored, n_failed, f" (see {errors_file})" if n_failed else "")
    dist.barrier()
    dist.destroy_process_group()
    if failed_ranks:
        return 1
    return 3 if n_failed else 0
