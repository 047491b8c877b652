"""The batch scoring engine: plan each record, score each distinct unit once, batch by length, stream in order.

A scorer (`mmreward.scoring_types.EngineScorer`) turns each record into *units* (sequences or media to score)
with `plan`, encodes units on CPU with `encoder()` (picklable, so it runs in DataLoader worker processes), and
scores batches with `forward_batch`. The engine scores each unique unit once — a video that appears in three
pairs is decoded and encoded once — groups encoded units by length into batches, shows a progress bar, and
reports bad records by id and file. `stream_scores` drives any `Scorer` (engine-backed or not) chunk by chunk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from mmreward.data.schema import PointwiseRecord, PreferencePair
from mmreward.errors import DataError
from mmreward.scoring_types import EngineScorer, Plan, Scorer, ScoreResult, ScoringError, Unit

logger = logging.getLogger(__name__)

__all__ = ["score_records", "stream_scores"]


class _HostArrays(dict):
    """An encoding whose tensors `to_numpy` turned into numpy arrays (only these are turned back)."""


def to_numpy(encoded: Any) -> Any:
    """An encoding's tensors as numpy arrays, for the trip from a worker process (see `from_numpy`).

    A tensor crossing a process boundary goes through a shared-memory segment of its own (a file descriptor sent
    over a socket, then mapped): for the few small tensors of one encoded unit that costs more than encoding it.
    Numpy arrays travel as pickled bytes. Dtypes numpy lacks (bfloat16) stay tensors.
    """
    if not isinstance(encoded, dict):
        return encoded
    return _HostArrays({k: v.numpy() if isinstance(v, torch.Tensor) and v.dtype != torch.bfloat16
                        and not v.requires_grad else v for k, v in encoded.items()})


def from_numpy(encoded: Any) -> Any:
    """The inverse of `to_numpy` (no copy); anything else is returned as it is."""
    import numpy as np

    if not isinstance(encoded, _HostArrays):
        return encoded
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in encoded.items()}


class _UnitDataset(torch.utils.data.Dataset):
    """Encodes units in worker processes; failures come back as messages instead of killing the loader."""

    def __init__(self, units: list[Unit], encoder: Callable[[Unit], Any]):
        self.units = units
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, index: int):
        unit = self.units[index]
        try:
            encoded = self.encoder(unit)
        except DataError as err:  # MediaError, TokenBudgetError: the record's fault. Anything else is a bug.
            return index, None, f"{unit.record_id}: {err}"
        in_worker = torch.utils.data.get_worker_info() is not None
        return index, to_numpy(encoded) if in_worker else encoded, None


def _length(encoded: Any) -> int:
    if isinstance(encoded, dict) and "input_ids" in encoded:
        return int(encoded["input_ids"].shape[1])
    return 0


def _batches(loader: Iterable, batch_size: int, errors: dict[int, str], on_error: str):
    """Group encoded units of similar length into batches (a pool of 4 batches is sorted by length)."""
    pool: list[tuple[int, Any]] = []
    for items in loader:
        for index, encoded, error in items:
            if error is not None:
                if on_error == "raise":
                    raise ScoringError(f"{error}; use --on-error skip to score the other records")
                errors[index] = error
                continue
            pool.append((index, from_numpy(encoded)))
        if len(pool) >= 4 * batch_size:
            pool.sort(key=lambda item: _length(item[1]))
            while len(pool) >= batch_size:
                yield pool[:batch_size]
                pool = pool[batch_size:]
    pool.sort(key=lambda item: _length(item[1]))
    for start in range(0, len(pool), batch_size):
        yield pool[start:start + batch_size]


def _overall(values: list[float], dimensions: list[str]) -> float:
    # With no explicit "overall" dimension the overall reward is the sum of the dimensions (VideoAlign).
    if "overall" in dimensions:
        return values[dimensions.index("overall")]
    return float(sum(values))


def _result(record, plan: Plan, unit_scores: list[list[float]], dimensions: list[str]) -> ScoreResult:
    if plan.combine == "pointwise":
        values = unit_scores[0]
        return ScoreResult(id=record.id, kind="pointwise", score=_overall(values, dimensions),
                           scores=dict(zip(dimensions, values)))
    if plan.combine == "pair":
        a, b = unit_scores
        score_a, score_b = _overall(a, dimensions), _overall(b, dimensions)
        scores = {d: [x, y] for d, x, y in zip(dimensions, a, b)}
    else:  # pairwise: the unit's score is P(A better than B)
        p = unit_scores[0]
        score_a, score_b = _overall(p, dimensions), 1.0 - _overall(p, dimensions)
        scores = {d: [x, 1.0 - x] for d, x in zip(dimensions, p)}
    preferred = "A" if score_a > score_b else "B" if score_b > score_a else "tie"
    return ScoreResult(id=record.id, kind="pair", score_a=score_a, score_b=score_b, preferred=preferred,
                       scores=scores)


class _InOrder:
    """Hands finished results out in input order, as soon as every unit of a record (and of those before it) is done.

    Units are loaded in order of first appearance and sorted only within a small pool, so the wait for an earlier
    record is at most a few batches; in-order output keeps streamed files identical to a one-shot run.
    """

    def __init__(self, records: Sequence, plans: list[Plan | str], unique: dict[str, int], dimensions: list[str],
                 on_results: Callable[[list[ScoreResult]], None] | None):
        self.records, self.plans, self.unique, self.dimensions = records, plans, unique, dimensions
        self.on_results = on_results
        self.scores: dict[int, list[float]] = {}
        self.errors: dict[int, str] = {}
        self.results: list[ScoreResult] = []

    def flush(self) -> None:
        """Finish every record whose units are all scored or failed, up to the first one still waiting."""
        ready = []
        while len(self.results) + len(ready) < len(self.records):
            n = len(self.results) + len(ready)
            record, plan = self.records[n], self.plans[n]
            if isinstance(plan, str):  # the plan itself failed
                ready.append(ScoreResult(id=record.id, kind=_kind(record), error=plan))
                continue
            indices = [self.unique[u.key] for u in plan.units]
            if not all(i in self.scores or i in self.errors for i in indices):
                break
            ready.append(self._finish(record, plan, indices))
        self.results += ready
        if ready and self.on_results is not None:
            self.on_results(ready)

    def _finish(self, record, plan: Plan, indices: list[int]) -> ScoreResult:
        failed = [self.errors[i] for i in indices if i in self.errors]
        if failed:
            return ScoreResult(id=record.id, kind=_kind(record), error="; ".join(dict.fromkeys(failed)))
        result = _result(record, plan, [self.scores[i] for i in indices], self.dimensions)
        if not all(math.isfinite(v) for v in (result.score_a, result.score_b, result.score) if v is not None):
            raise ScoringError(f"{record.id}: non-finite score; check the model and dtype")
        return result


def _kind(record) -> str:
    return "pair" if isinstance(record, PreferencePair) else "pointwise"


def _plan_all(scorer, records: Sequence, on_error: str) -> list[Plan | str]:
    """Each record's plan, or (with on_error="skip") the message of the DataError that planning raised."""
    plans: list[Plan | str] = []
    for record in records:
        try:
            plans.append(scorer.plan(record))
        except DataError as err:
            if on_error == "raise":
                raise ScoringError(f"{record.id}: {err}; use --on-error skip to score the other records") from err
            plans.append(f"{record.id}: {err}")
    return plans


def score_records(scorer: EngineScorer, records: Sequence[PreferencePair | PointwiseRecord], *, batch_size: int = 8,
                  on_error: str = "raise", num_workers: int = 0, progress: bool = True,
                  on_results: Callable[[list[ScoreResult]], None] | None = None) -> list[ScoreResult]:
    """Score records with any scorer that implements `plan`, `encoder` and `forward_batch`.

    Args:
        scorer: a reward model, yes-token scorer or CLIP scorer.
        records: pairs and/or pointwise records.
        batch_size: units per forward pass.
        on_error: "raise" stops at the first bad record; "skip" returns it with `error` set and goes on. Only
            `DataError`s (bad media, too many tokens) count as bad records; any other exception is a bug and
            propagates.
        num_workers: DataLoader worker processes that decode media and run the processor (0: in process).
        progress: show a progress bar (on stderr).
        on_results: called after each forward pass with the results finished by it, in input order, so that
            callers can stream them to disk; every record reaches it exactly once.

    Returns:
        One `ScoreResult` per record, in input order.
    """
    from tqdm.auto import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    plans = _plan_all(scorer, records, on_error)
    unique: dict[str, int] = {}
    units: list[Unit] = []
    for plan in plans:
        for unit in [] if isinstance(plan, str) else plan.units:
            if unit.key not in unique:
                unique[unit.key] = len(units)
                units.append(unit)
    loader = torch.utils.data.DataLoader(
        _UnitDataset(units, scorer.encoder()), batch_size=max(1, batch_size // 2), num_workers=num_workers,
        collate_fn=list, prefetch_factor=4 if num_workers else None, persistent_workers=False,
    )
    out = _InOrder(records, plans, unique, scorer.dimensions, on_results)
    bar = tqdm(total=len(units), desc=f"scoring ({scorer.kind})", unit="unit", disable=not progress)
    with torch.inference_mode():
        for batch in _batches(loader, batch_size, out.errors, on_error):
            scored = scorer.forward_batch([encoded for _, encoded in batch]).float().cpu()
            for (index, _), row in zip(batch, scored.tolist()):
                out.scores[index] = row
            bar.update(len(batch))
            out.flush()
        bar.update(len(out.errors))
    bar.close()
    out.flush()
    logger.info("scored %d records through %d unique units (%d failed)", len(records), len(units),
                len(out.errors))
    return out.results


def stream_scores(scorer: Scorer, records: Sequence, on_results: Callable[[list[ScoreResult]], None], *,
                  batch_size: int = 8, progress: bool = True, **kwargs) -> None:
    """Score records with any `Scorer`, handing results to `on_results` in input order as they are scored.

    Engine scorers (head, yes-token, CLIP) stream every forward pass; a scorer whose `score` takes no
    `on_results` (the agentic judge) is called on chunks of `batch_size` records instead.

    Args:
        scorer: any scorer.
        records: the records to score.
        on_results: receives each finished group of results; every record reaches it exactly once.
        batch_size: records or units per forward pass.
        progress: show a progress bar (on stderr).
        **kwargs: passed to `scorer.score` (on_error, num_workers).
    """
    if _takes_keyword(scorer.score, "on_results"):
        delivered = 0

        def forward(results: list[ScoreResult]) -> None:
            nonlocal delivered
            delivered += len(results)
            on_results(results)

        results = scorer.score(records, on_results=forward, batch_size=batch_size, progress=progress, **kwargs)
        if delivered < len(results):  # a scorer that accepts **kwargs but never calls back
            on_results(list(results[delivered:]))
        return
    from tqdm.auto import tqdm

    step = max(1, batch_size)
    with tqdm(total=len(records), desc=f"scoring ({scorer.kind})", unit="record", disable=not progress) as bar:
        for start in range(0, len(records), step):
            chunk = records[start:start + step]
            on_results(list(scorer.score(chunk, batch_size=batch_size, progress=False, **kwargs)))
            bar.update(len(chunk))


def _takes_keyword(fn: Callable, name: str) -> bool:
    import inspect

    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
