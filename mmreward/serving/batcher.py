"""Dynamic batching in two pipelined stages: concurrent requests are merged into engine batches.

    batcher = Batcher(scorer, max_batch_size=64, max_wait_ms=5, num_workers=4).start()
    results = batcher.submit(records).result()          # concurrent.futures.Future[list[ScoreResult]]
    batcher.close()                                     # scores everything queued, then stops

Stage 1, the *encode* thread, takes every request waiting, up to `max_batch_size` records (a request is never
split; one that would overflow the batch starts the next one). When the engine has been idle (nothing scored
for `max_wait_ms`) it first waits up to `max_wait_ms` for company; under load it waits for nothing. It plans the records and encodes each distinct unit
once (units are deduplicated across the requests of a batch), in a persistent pool of worker processes when
`num_workers > 0` (started once, not per batch), as `mmreward score --num-workers` does. Stage 2, the *forward*
thread, takes every batch encoded while its previous forward pass ran (and the one being encoded at that moment:
on the CPU always, on an accelerator when it is the larger; up to `max_batch_size` records in all), scores them
together with `score_records` (units grouped by length, per-record errors, in-order combination) and answers each
request as soon as all its records are scored. So decoding and encoding overlap the forward pass
(`pipeline=True`; stage 1 stays at most `max_batch_size` records ahead), and the forward pass still gets what
arrived meanwhile: its fixed cost per call is what small batches pay most for.

One bad record fails only itself (its result carries `error`); anything unexpected fails the requests of that
batch and both stages go on with the next one, so the server never loses its engine. A request whose caller has
gone (its future cancelled before the batch starts) is dropped unscored.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mmreward.errors import DataError
from mmreward.serving.inputs import RequestError
from mmreward.serving.metrics import Metrics

logger = logging.getLogger(__name__)

Encoded = dict[str, tuple[Any, str | None]]  # unit key -> (encoding, None) or (None, error message)


@dataclass
class _Job:
    records: Sequence
    future: concurrent.futures.Future


@dataclass
class _Batch:
    jobs: list[_Job]
    records: list
    plans: dict[int, Any]  # id(record) -> its plan (records whose planning failed are absent)
    encoded: Encoded | None  # None: a scorer without `plan` (the judge) scores whole records itself


# ---- encoding: in a worker process (the encoder installed once per process) or on the encode thread ----
_ENCODER = None


def _init_worker(encoder, threads: int) -> None:
    import torch

    global _ENCODER
    _ENCODER = encoder
    torch.set_num_threads(threads)


def _encode_with(encoder: Callable, unit) -> tuple[Any, str | None]:
    try:
        return encoder(unit), None
    except DataError as err:  # the record's fault (bad media, too many tokens); anything else is a bug
        return None, str(err)


def _encode_unit(unit) -> tuple[Any, str | None]:
    from mmreward.scoring_engine import to_numpy

    encoded, error = _encode_with(_ENCODER, unit)
    return to_numpy(encoded), error  # numpy arrays cross back as bytes; tensors would each take a shm segment


class _Lookup:
    """An encoder that hands out units encoded beforehand by the encode stage."""

    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __call__(self, unit):
        value, error = self.encoded[unit.key]
        if error is not None:
            raise DataError(error)
        return value


class _Preencoded:
    """The scorer seen through a batch planned and encoded by stage 1: `score_records` batches, combines and
    reports as usual, without planning or encoding again."""

    def __init__(self, scorer, batch: _Batch):
        self.scorer, self.batch = scorer, batch
        self.kind, self.dimensions = scorer.kind, scorer.dimensions

    def plan(self, record):
        plan = self.batch.plans.get(id(record))
        return plan if plan is not None else self.scorer.plan(record)  # planning failed: raise its error again

    def encoder(self):
        return _Lookup(self.batch.encoded)

    def forward_batch(self, encodings):
        return self.scorer.forward_batch(encodings)


class _Answers:
    """Resolves each job's future as soon as the results of all its records (they come in order) are in."""

    def __init__(self, jobs: list[_Job]):
        self.jobs, self.done, self.buffer, self.failed = jobs, 0, [], 0

    def add(self, results: list) -> None:
        self.buffer += results
        self.failed += sum(1 for r in results if r.error is not None)
        while self.done < len(self.jobs) and len(self.buffer) >= len(self.jobs[self.done].records):
            n = len(self.jobs[self.done].records)
            self.jobs[self.done].future.set_result(self.buffer[:n])
            self.buffer = self.buffer[n:]
            self.done += 1

    def pending(self) -> list[_Job]:
        """The jobs not answered yet (their records' partial results are dropped)."""
        self.buffer = []
        return self.jobs[self.done:]


def _on_cpu(scorer) -> bool:
    """Whether the scorer's weights are on the CPU (a scorer without parameters counts as on the CPU)."""
    parameters = getattr(scorer, "parameters", None)
    if not callable(parameters):
        return True
    try:
        return next(iter(parameters())).device.type == "cpu"
    except (StopIteration, TypeError, AttributeError):
        return True


def _merge(batches: list[_Batch]) -> _Batch:
    """One batch of several encoded ones (jobs in order)."""
    if len(batches) == 1:
        return batches[0]
    plans, encoded = {}, None if batches[0].encoded is None else {}
    for batch in batches:
        plans.update(batch.plans)
        if encoded is not None:
            encoded.update(batch.encoded)
    return _Batch([j for b in batches for j in b.jobs], [r for b in batches for r in b.records], plans, encoded)


class Batcher:
    """Merges concurrent scoring requests into engine batches: an encode thread and a forward thread.

    Args:
        scorer: any `Scorer`; engine scorers (head, yes-token, CLIP) batch at the unit level, others (the judge)
            are called on the merged records.
        max_batch_size: most records gathered into one engine call (a single larger request goes alone), and
            units per forward pass.
        max_wait_ms: how long the first request reaching an idle engine (nothing scored for that long) waits for
            company.
        num_workers: media-decoding worker processes (0: decode on the encode thread).
        max_queue_records: records allowed to wait; beyond it `submit` refuses with 429.
        metrics: where batch sizes, queue depth and failed records are counted.
        pipeline: encode the next batch while the current one runs its forward pass (False: one batch at a
            time).
        wait_for_encoding: whether a free forward pass waits for the batch stage 1 is encoding at that moment:
            True always (fewest, largest passes: right when both stages share the CPU), False only when that
            batch is larger than what is ready (the accelerator idles least), None: True when the scorer's
            weights are on the CPU.
    """

    def __init__(self, scorer, *, max_batch_size: int = 64, max_wait_ms: float = 5.0, num_workers: int = 0,
                 max_queue_records: int = 8192, metrics: Metrics | None = None, pipeline: bool = True,
                 wait_for_encoding: bool | None = None):
        if max_batch_size < 1 or max_wait_ms < 0 or num_workers < 0:
            raise ValueError("max_batch_size must be >= 1, max_wait_ms and num_workers >= 0")
        self.scorer = scorer
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000.0
        self.num_workers, self.max_queue_records = num_workers, max_queue_records
        self.metrics = metrics or Metrics()
        self.pipeline = pipeline
        self.wait_for_encoding = _on_cpu(scorer) if wait_for_encoding is None else wait_for_encoding
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._waiting = 0
        self._lock = threading.Lock()
        # Between the stages (under `_ready_cond`): encoded batches not yet taken by stage 2, their record count,
        # whether stage 2 is running a forward pass, and whether stage 1 has stopped.
        self._ready_cond = threading.Condition()
        self._ready: list[_Batch] = []
        self._ready_records = 0
        self._forwarding = False
        self._last_forward = 0.0  # time.monotonic() at the end of the last forward pass
        self._encoding = 0  # records in the batch stage 1 is gathering / encoding now
        self._encode_done = False
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._encoder: Callable | None = None

    def start(self) -> Batcher:
        """Start the worker pool (if any) and the two stage threads; returns self."""
        if hasattr(self.scorer, "eval"):
            self.scorer.eval()
        if hasattr(self.scorer, "plan"):
            self._encoder = self.scorer.encoder()
            if self.num_workers:
                import multiprocessing

                # spawn, not fork: the server process runs threads (event loop, stages), which fork would copy
                # mid-lock.
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.num_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                    initargs=(self._encoder, 1))
        self._threads = [threading.Thread(target=self._encode_stage, name="mmreward-encode", daemon=True),
                         threading.Thread(target=self._forward_stage, name="mmreward-forward", daemon=True)]
        for thread in self._threads:
            thread.start()
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
        job = _Job(records, concurrent.futures.Future())
        self._queue.put(job)
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking requests, score everything already queued, then stop both stages and the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # ---- stage 1: gather and encode ----
    def _encode_stage(self) -> None:
        carry: _Job | None = None
        try:
            while True:
                first = carry if carry is not None else self._queue.get()
                if first is None:
                    return
                with self._ready_cond:
                    # Encode at most one batch ahead of the forward pass (pipeline), or none (no pipeline): what
                    # arrives meanwhile waits in the queue and joins a later, fuller batch.
                    self._ready_cond.wait_for(self._may_encode)
                    # Idle: nothing scored for a while. Right after a forward pass the clients it answered are
                    # sending their next requests; waiting for company then would only add dead time.
                    idle = (not self._forwarding and not self._ready
                            and time.monotonic() - self._last_forward > self.max_wait)
                    self._encoding = len(first.records)
                jobs, carry, stop = self._gather(first, idle)
                with self._ready_cond:
                    self._encoding = sum(len(job.records) for job in jobs)
                batch = self._prepare(self._take(jobs))
                with self._ready_cond:
                    self._encoding = 0
                    if batch is not None:
                        self._ready.append(batch)
                        self._ready_records += len(batch.records)
                    self._ready_cond.notify_all()
                if stop:
                    return
        finally:
            with self._ready_cond:
                self._encode_done = True
                self._ready_cond.notify_all()

    def _may_encode(self) -> bool:
        if self.pipeline:
            return self._ready_records < self.max_batch_size
        return not self._forwarding and not self._ready

    def _gather(self, first: _Job, idle: bool) -> tuple[list[_Job], _Job | None, bool]:
        """Jobs for one batch; (jobs, the job that starts the next batch or None, whether close() was called).

        Only a request reaching an idle engine waits `max_wait` for company; under load the batch is what waits.
        """
        jobs, n = [first], len(first.records)
        deadline = time.monotonic() + (self.max_wait if idle else 0.0)
        while n < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, None, True
            if n + len(job.records) > self.max_batch_size:
                return jobs, job, False
            jobs.append(job)
            n += len(job.records)
        return jobs, None, False

    def _take(self, jobs: list[_Job]) -> list[_Job]:
        """Count the jobs out of the queue; drop those whose caller has gone (cancelled futures)."""
        n = sum(len(job.records) for job in jobs)
        with self._lock:
            self._waiting -= n
        self.metrics.queued(-n)
        return [job for job in jobs if job.future.set_running_or_notify_cancel()]

    def _prepare(self, jobs: list[_Job]) -> _Batch | None:
        if not jobs:
            return None
        records = [r for job in jobs for r in job.records]
        if not hasattr(self.scorer, "plan"):
            return _Batch(jobs, records, {}, None)
        try:
            plans, units = {}, {}
            for record in records:
                try:
                    plans[id(record)] = plan = self.scorer.plan(record)
                except DataError:
                    continue  # score_records plans it again and reports the error on the record
                for unit in plan.units:
                    units.setdefault(unit.key, unit)
            return _Batch(jobs, records, plans, self._encode(units))
        except Exception as err:  # a bug: fail these requests (500 with the traceback logged), keep the stage
            logger.exception("encoding a batch of %d records failed", len(records))
            for job in jobs:
                job.future.set_exception(err)
            return None

    def _encode(self, units: dict[str, Any]) -> Encoded:
        if self._pool is None:
            return {key: _encode_with(self._encoder, unit) for key, unit in units.items()}
        # Chunks of several units cut the per-task IPC; four chunks per worker keep the workers evenly loaded.
        from mmreward.scoring_engine import from_numpy

        chunk = max(1, len(units) // (4 * self.num_workers))
        results = self._pool.map(_encode_unit, units.values(), chunksize=chunk)
        return {key: (from_numpy(encoded), error) for key, (encoded, error) in zip(units, results)}

    # ---- stage 2: forward ----
    def _may_forward(self) -> bool:
        # Each forward pass has a fixed cost, which small batches pay most for. So the batch stage 1 is encoding
        # right now is waited for and joins this pass (the wait is one encoding step): always on the CPU, where
        # the stages share the cores and overlap buys little (measured: a third fewer passes, ~10% less CPU per
        # record), and on an accelerator only when it is larger than what is ready, so that the device idles
        # least.
        if not self._ready:
            return self._encode_done
        if self._ready_records >= self.max_batch_size or not self._encoding:
            return True
        return not self.wait_for_encoding and self._ready_records >= self._encoding

    def _forward_stage(self) -> None:
        while True:
            with self._ready_cond:
                self._ready_cond.wait_for(self._may_forward)
                if not self._ready:
                    return
                # Everything encoded while the previous forward pass ran goes into this one, up to the cap.
                batches = [self._ready.pop(0)]
                n = len(batches[0].records)
                while self._ready and n + len(self._ready[0].records) <= self.max_batch_size:
                    n += len(self._ready[0].records)
                    batches.append(self._ready.pop(0))
                self._ready_records -= n
                self._forwarding = True
                self._ready_cond.notify_all()
            try:
                self._score_batch(_merge(batches))
            finally:
                with self._ready_cond:
                    self._forwarding = False
                    self._last_forward = time.monotonic()
                    self._ready_cond.notify_all()

    def _score_batch(self, batch: _Batch) -> None:
        answers = _Answers(batch.jobs)
        try:
            try:
                self._score(batch.records, batch, answers.add)
            except DataError:  # e.g. a non-finite score: score each request still waiting alone
                for job in answers.pending():
                    answers.add(self._score_or_fail(job.records, batch))
        except Exception as err:  # a bug: fail these requests (500 with the traceback logged), keep the engine
            logger.exception("scoring a batch of %d records failed", len(batch.records))
            for job in answers.pending():
                job.future.set_exception(err)
            return
        self.metrics.scored(len(batch.records))
        if answers.failed:
            self.metrics.failure("record", answers.failed)

    def _score_or_fail(self, records: Sequence, batch: _Batch) -> list:
        from mmreward.scoring import ScoreResult

        try:
            return self._score(records, batch)
        except DataError as err:
            return [ScoreResult(id=r.id, kind="pair" if hasattr(r, "a") else "pointwise", error=str(err))
                    for r in records]

    def _score(self, records: Sequence, batch: _Batch, on_results: Callable | None = None) -> list:
        from mmreward.scoring import score_records

        if batch.encoded is None:  # the agentic judge scores whole records itself
            results = list(self.scorer.score(records, batch_size=self.max_batch_size, on_error="skip",
                                             progress=False))
            if on_results is not None:
                on_results(results)
            return results
        return score_records(_Preencoded(self.scorer, batch), records, batch_size=self.max_batch_size,
                             on_error="skip", progress=False, on_results=on_results)
