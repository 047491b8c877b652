"""Server metrics in the Prometheus text format (version 0.0.4), kept without a client library.

    mmreward_requests_total{endpoint="/score",status="200"} 12
    mmreward_records_total 96
    mmreward_failures_total{reason="media"} 1
    mmreward_batch_records_bucket{le="8"} 3        (records per engine batch)
    mmreward_queue_records 0                        (records waiting for the engine)
    mmreward_request_seconds_bucket{endpoint="/score",le="0.5"} 10

Thread-safe: handlers (event loop) and the engine thread both write.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{_num(b)}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.sum:.6f}", f"{name}_count{suffix} {self.total}"]
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters, gauges and histograms of one server process."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.failures: dict[str, int] = defaultdict(int)
        self.records = 0
        self.queue_records = 0
        self.batch = _Histogram(BATCH_BUCKETS)
        self.latency: dict[str, _Histogram] = {}

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count a finished request and its latency."""
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def failure(self, reason: str, n: int = 1) -> None:
        """Count refused requests or failed records by reason (bad_request, media, too_large, busy, …)."""
        with self._lock:
            self.failures[reason] += n

    def scored(self, n_records: int) -> None:
        """Count one engine batch of `n_records` records."""
        with self._lock:
            self.records += n_records
            self.batch.observe(n_records)

    def queued(self, delta: int) -> None:
        """Move the queue-depth gauge by `delta` records."""
        with self._lock:
            self.queue_records += delta

    def render(self) -> str:
        """The Prometheus exposition text."""
        with self._lock:
            lines = ["# HELP mmreward_requests_total HTTP requests by endpoint and status.",
                     "# TYPE mmreward_requests_total counter"]
            lines += [f'mmreward_requests_total{{endpoint="{_label(e)}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP mmreward_records_total Records scored (failed records included).",
                      "# TYPE mmreward_records_total counter", f"mmreward_records_total {self.records}",
                      "# HELP mmreward_failures_total Refused requests and failed records by reason.",
                      "# TYPE mmreward_failures_total counter"]
            lines += [f'mmreward_failures_total{{reason="{_label(r)}"}} {n}' for r, n in sorted(self.failures.items())]
            lines += ["# HELP mmreward_queue_records Records waiting for the engine.",
                      "# TYPE mmreward_queue_records gauge", f"mmreward_queue_records {self.queue_records}",
                      "# HELP mmreward_batch_records Records per engine batch.",
                      "# TYPE mmreward_batch_records histogram", *self.batch.lines("mmreward_batch_records"),
                      "# HELP mmreward_request_seconds Request latency by endpoint.",
                      "# TYPE mmreward_request_seconds histogram"]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("mmreward_request_seconds", f'endpoint="{_label(endpoint)}"')
        return "\n".join(lines) + "\n"
