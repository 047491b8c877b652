"""Dynamic batching: concurrent requests are merged into engine batches, scored by one engine thread.

    batcher = Batcher(scorer, max_batch_size=32, max_wait_ms=5, num_workers=4).start()
    results = batcher.submit(records).result()          # concurrent.futures.Future[list[ScoreResult]]
    batcher.close()                                     # scores everything queued, then stops

The engine thread takes the first waiting request, then keeps taking requests until it holds `max_batch_size`
records or `max_wait_ms` have passed, and scores them together with `score_records` (units deduplicated across
requests, grouped by length, per-record errors). While it scores, new requests queue up, so under load batches
fill without waiting. With `num_workers > 0`, media are decoded and run through the processor in a persistent
pool of worker processes (started once, not per batch), as `mmreward score --num-workers` does.

One bad record fails only itself (its result carries `error`); anything unexpected fails the requests of that
batch and the engine goes on with the next one, so the server never loses its worker.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mmreward.errors import DataError
from mmreward.serving.inputs import RequestError
from mmreward.serving.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    records: Sequence
    future: concurrent.futures.Future


# ---- worker processes: the scorer's encoder, installed once per process ----
_ENCODER = None


def _init_worker(encoder, threads: int) -> None:
    import torch

    global _ENCODER
    _ENCODER = encoder
    torch.set_num_threads(threads)


def _encode_unit(unit) -> tuple[Any, str | None]:
    try:
        return _ENCODER(unit), None
    except DataError as err:  # the record's fault (bad media, too many tokens); anything else is a bug
        return None, str(err)


class _Lookup:
    """An encoder that hands out units encoded beforehand by the worker pool."""

    def __init__(self, encoded: dict[str, tuple[Any, str | None]]):
        self.encoded = encoded

    def __call__(self, unit):
        value, error = self.encoded[unit.key]
        if error is not None:
            raise DataError(error)
        return value


class _Preencoded:
    """The scorer seen through units already encoded: `score_records` batches, combines and reports as usual."""

    def __init__(self, scorer, encoded: dict[str, tuple[Any, str | None]]):
        self.scorer, self.encoded = scorer, encoded
        self.kind, self.dimensions = scorer.kind, scorer.dimensions

    def plan(self, record):
        return self.scorer.plan(record)

    def encoder(self):
        return _Lookup(self.encoded)

    def forward_batch(self, encodings):
        return self.scorer.forward_batch(encodings)


class Batcher:
    """Merges concurrent scoring requests into engine batches on one engine thread.

    Args:
        scorer: any `Scorer`; engine scorers (head, yes-token, CLIP) batch at the unit level, others (the judge)
            are called on the merged records.
        max_batch_size: records gathered into one engine call, and units per forward pass.
        max_wait_ms: how long the first request of a batch waits for company.
        num_workers: media-decoding worker processes (0: decode on the engine thread).
        max_queue_records: records allowed to wait; beyond it `submit` refuses with 429.
        metrics: where batch sizes, queue depth and failed records are counted.
    """

    def __init__(self, scorer, *, max_batch_size: int = 32, max_wait_ms: float = 5.0, num_workers: int = 0,
                 max_queue_records: int = 8192, metrics: Metrics | None = None):
        if max_batch_size < 1 or max_wait_ms < 0 or num_workers < 0:
            raise ValueError("max_batch_size must be >= 1, max_wait_ms and num_workers >= 0")
        self.scorer = scorer
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000.0
        self.num_workers, self.max_queue_records = num_workers, max_queue_records
        self.metrics = metrics or Metrics()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._waiting = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def start(self) -> Batcher:
        """Start the worker pool (if any) and the engine thread; returns self."""
        if hasattr(self.scorer, "eval"):
            self.scorer.eval()
        if self.num_workers and hasattr(self.scorer, "encoder"):
            import multiprocessing

            # spawn, not fork: the server process runs threads (event loop, engine), which fork would copy mid-lock.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.num_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                initargs=(self.scorer.encoder(), 1))
        self._thread = threading.Thread(target=self._run, name="mmreward-engine", daemon=True)
        self._thread.start()
        return self

    def submit(self, records: Sequence) -> concurrent.futures.Future:
        """Queue records for scoring; the future resolves to one `ScoreResult` per record, in order.

        Raises:
            RequestError: 429 when the queue is full, 503 after `close`.
        """
        with self._lock:
            if self._closed:
                raise RequestError("the server is shutting down; retry on another replica", status=503)
            if self._waiting and self._waiting + len(records) > self.max_queue_records:
                raise RequestError(f"{self._waiting} records are already waiting (limit {self.max_queue_records}); "
                                   "retry later", status=429)
            self._waiting += len(records)
        self.metrics.queued(len(records))
        job = _Job(list(records), concurrent.futures.Future())
        self._queue.put(job)
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking requests, score everything already queued, then stop the engine and the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # ---- engine thread ----
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group, stop = self._gather(job)
            self._score_group(group)
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        group, n = [first], len(first.records)
        deadline = time.monotonic() + self.max_wait
        while n < self.max_batch_size:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return group, True
            group.append(job)
            n += len(job.records)
        return group, False

    def _score_group(self, group: list[_Job]) -> None:
        records = [r for job in group for r in job.records]
        with self._lock:
            self._waiting -= len(records)
        self.metrics.queued(-len(records))
        try:
            try:
                results = self._score(records)
            except DataError:  # e.g. a non-finite score: score each request alone so only its own fails
                results = []
                for job in group:
                    results += self._score_or_fail(job.records)
        except Exception as err:  # a bug: fail these requests (500 with the traceback logged), keep the engine
            logger.exception("scoring a batch of %d records failed", len(records))
            for job in group:
                job.future.set_exception(err)
            return
        self.metrics.scored(len(records))
        failed = sum(1 for r in results if r.error is not None)
        if failed:
            self.metrics.failure("record", failed)
        start = 0
        for job in group:
            job.future.set_result(results[start:start + len(job.records)])
            start += len(job.records)

    def _score_or_fail(self, records: Sequence) -> list:
        from mmreward.scoring import ScoreResult

        try:
            return self._score(records)
        except DataError as err:
            return [ScoreResult(id=r.id, kind="pair" if hasattr(r, "a") else "pointwise", error=str(err))
                    for r in records]

    def _score(self, records: Sequence) -> list:
        from mmreward.scoring import score_records

        if not hasattr(self.scorer, "plan"):  # the agentic judge scores whole records itself
            return list(self.scorer.score(records, batch_size=self.max_batch_size, on_error="skip", progress=False))
        scorer = self.scorer if self._pool is None else _Preencoded(self.scorer, self._encode(records))
        return score_records(scorer, records, batch_size=self.max_batch_size, on_error="skip", progress=False)

    def _encode(self, records: Sequence) -> dict[str, tuple[Any, str | None]]:
        """Encode the records' unique units in the worker pool."""
        units: dict[str, Any] = {}
        for record in records:
            try:
                plan = self.scorer.plan(record)
            except DataError:
                continue  # score_records plans again and reports it
            for unit in plan.units:
                units.setdefault(unit.key, unit)
        encoded = self._pool.map(_encode_unit, units.values(), chunksize=1)
        return dict(zip(units, encoded))
