"""What a benchmark is to the rest of the package: `BenchmarkSpec` (a registry entry) and `BenchmarkData`.

A loader is `fn(source: str | Path, options: dict) -> BenchmarkData`. `source` is a local copy in the
published layout (HF dataset folder / parquet / the official CSV or JSON plus media files), or a hub id when the
network allows. Records follow these conventions, which the metrics and the runner rely on:

- pairs: `PreferencePair` with `label` A / B / tie (per-dimension labels in `dimensions`, e.g. VQ/MQ/TA), and
  `meta["category"]`, `meta["subcategory"]`, `meta["group"]` (e.g. MM-RLHF prompt id for Acc+);
- list-wise benchmarks (RewardBench 2, ImageReward, HPDv2): one `PointwiseRecord` per candidate, with
  `meta["group"]` (the prompt / item id), `meta["rank"]` (1 = best; ties share a rank) or `meta["correct"]`
  (RewardBench 2), and `meta["category"]`.

Anything else a metric reads from a record's `meta` is named in the spec's `row_fields`; the runner copies those
into the per-sample rows, so it never changes when a benchmark is added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchmarkData:
    """What a loader returns."""

    # Registry name, e.g. "vl_rewardbench".
    name: str
    # "pairs" or "listwise".
    kind: str
    records: list
    # Dataset revision / file identity (commit hash, file sha, or None when unknown), recorded in results.
    revision: str | None = None
    # Item count of the version the paper used, to warn when ours differs.
    expected_size: int | None = None
    # Anything else worth recording (split, config, counts per category, warnings).
    info: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[Any, dict], BenchmarkData]

# The registry's "how to obtain" text of the benchmark being loaded, for the loaders' error messages. Set by
# `BenchmarkSpec.load`, so that loaders need not import the registry that imports them.
_DOWNLOAD: ContextVar[str] = ContextVar("mmreward_benchmark_download", default="")


@contextmanager
def _download_hint(text: str) -> Iterator[None]:
    token = _DOWNLOAD.set(text)
    try:
        yield
    finally:
        _DOWNLOAD.reset(token)


def download_text() -> str:
    """Return "To obtain it: <how>" for the benchmark `BenchmarkSpec.load` is loading ("" outside one)."""
    text = _DOWNLOAD.get()
    return f"To obtain it: {text}" if text else ""


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registry entry: its loader, what the data is, which metrics apply and which record fields they read."""

    loader: Loader
    description: str
    # Metric names the runner computes for this benchmark (keys of `mmreward.evaluation.metrics.glue.METRICS`).
    metrics: tuple[str, ...]
    # How to obtain a local copy.
    download: str
    # Keys of a record's `meta` that the metrics read (e.g. GenAI-Bench's "vote_type"); the runner copies them
    # into each per-sample row when present.
    row_fields: tuple[str, ...] = ()
    # The official rule for a failed judge sample when a record has several (`JudgeProtocol.unparsed`):
    # "exclude" (left out of the vote) or "vote" (a vote class, as VL-RewardBench's cal.py counts it).
    unparsed: str = "exclude"

    def load(self, source, options: dict | None = None) -> BenchmarkData:
        """Run the loader on a local copy (or hub id); its errors say how to obtain the data."""
        with _download_hint(self.download):
            return self.loader(source, dict(options or {}))
