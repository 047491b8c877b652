"""Vision reward benchmarks: loaders from each benchmark's published layout to mmreward records (`BENCHMARKS`).

A loader is `fn(source: str | Path, options: dict) -> BenchmarkData`. `source` is a local copy in the
published layout (HF dataset folder / parquet / the official CSV or JSON plus media files), or a hub id when the
network allows. Records follow these conventions, which the metrics and the runner rely on:

- pairs: `PreferencePair` with `label` A / B / tie (per-dimension labels in `dimensions`, e.g. VQ/MQ/TA), and
  `meta["category"]`, `meta["subcategory"]`, `meta["group"]` (e.g. MM-RLHF prompt id for Acc+);
- list-wise benchmarks (RewardBench 2, ImageReward, HPDv2): one `PointwiseRecord` per candidate, with
  `meta["group"]` (the prompt / item id), `meta["rank"]` (1 = best; ties share a rank) or `meta["correct"]`
  (RewardBench 2), and `meta["category"]`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registry entry: where the loader lives, what the data is, and which metrics apply."""

    # "module:function" under mmreward.evaluation, imported on first use (loaders pull in pandas/pyarrow).
    loader: str
    description: str
    # Metric names the runner computes for this benchmark (keys of `mmreward.evaluation.metrics.METRICS`).
    metrics: tuple[str, ...]
    # How to obtain a local copy.
    download: str

    def load(self, source, options: dict | None = None) -> BenchmarkData:
        module_name, func = self.loader.split(":")
        module = importlib.import_module(f"mmreward.evaluation.{module_name}")
        return getattr(module, func)(source, dict(options or {}))


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def get_benchmark(name: str) -> BenchmarkSpec:
    """The registry entry, or a KeyError listing the known benchmarks."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


def load_benchmark(name: str, source: str | Path, options: dict | None = None) -> BenchmarkData:
    """Load a benchmark by registry name from a local copy (or hub id)."""
    return get_benchmark(name).load(source, options)
