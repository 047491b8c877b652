"""Load test of `mmreward serve` on loopback: concurrent clients against in-process scoring of the same records.

    python tools/load_test_serve.py                          # tiny random model, generated images + videos
    python tools/load_test_serve.py --model CKPT --records 512 --clients 16 --num-workers 4

Starts `mmreward serve` as a child process on 127.0.0.1 (a free port), then measures three phases, `--repeat`
rounds of them interleaved (a shared machine's load changes by the second; interleaving spreads that over all
phases, and the report gives the median of each phase and the ratios of the medians):
1. in process: one `scorer.score(records)` call (the reference records/s);
2. N clients (threads) send the records in small requests as fast as the server answers;
3. the same with 1 client (to show what batching buys).

The comparison is like for like, and the report states what each side got: the same records (pixels, prompts),
the same batch size, decode workers and torch threads, and the same media cache state: every phase reads its own
byte-identical copy of the media files (the media cache is keyed by path), so each starts with a cold cache on
both sides. Both sides are warmed up (model, allocator) on a further copy first. The clients send pre-serialised
bodies over keep-alive connections (stdlib `http.client`), so that the measuring process takes as little as it
can of the CPUs the server and the in-process reference share; its CPU time is printed too. The in-process
scorer stays loaded while the server runs (a real checkpoint needs memory for two copies).

Prints records/s and its ratio to in-process scoring, p50/p95 request latency, 5xx count, CPU milliseconds per
record (server process and its children; in-process reference), records per engine batch, the server's peak RSS
(children included) and the load average. Bounded: --records records per phase, --repeat rounds and
--time-limit seconds overall (checked between phases).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PHASES = ("in_process", "clients", "one_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_media(root: Path, n: int, copies: list[str]) -> list[dict]:
    """n media files in each folder root/<copy> (byte-identical copies); items alternate image / video.

    Returns:
        The media items (paths relative to a copy's folder).
    """
    import numpy as np
    from PIL import Image

    from mmreward.data.synthetic import write_index_video

    rng = np.random.default_rng(0)
    first = root / copies[0]
    first.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(max(1, n // 2)):
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(first / f"i{i}.png")
        write_index_video(first / f"v{i}.mp4", 24, fps=12, height=64, width=96)
        items += [{"type": "image", "path": f"i{i}.png"}, {"type": "video", "path": f"v{i}.mp4"}]
    for copy in copies[1:]:
        shutil.copytree(first, root / copy)
    return items


def make_records(items: list[dict], n: int, copy: str) -> list[dict]:
    """n pointwise records over the items of one media copy (the same prompts and pixels for every copy)."""
    return [{"id": f"r{i}", "prompt": f"a shape, take {i}",
             "media": [{**items[i % len(items)], "path": f"{copy}/{items[i % len(items)]['path']}"}],
             "response": None} for i in range(n)]


def start_server(model: str, root: Path, args) -> tuple[subprocess.Popen, int]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "mmreward.cli", "serve", "--model", model, "--port", str(port), "--media-root",
           str(root), "--max-batch-size", str(args.batch_size), "--max-wait-ms", str(args.max_wait_ms),
           "--num-workers", str(args.num_workers), "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start within 300 s (exit code {proc.poll()}); run its command to see "
                     f"why: {' '.join(cmd)}")


class RSSWatch(threading.Thread):
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live children."""
    import psutil

    total = 0.0
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def run_clients(port: int, records: list[dict], clients: int, per_request: int, deadline: float) -> dict:
    """Send the records in requests of `per_request` from `clients` threads; records/s, latency, statuses."""
    bodies = [json.dumps({"records": records[i:i + per_request]}).encode()
              for i in range(0, len(records), per_request)]
    lock, latencies, statuses, sent, next_index = threading.Lock(), [], [], [0], [0]

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if next_index[0] >= len(bodies):
                        return
                    n = next_index[0]
                    next_index[0] += 1
                start = time.perf_counter()
                conn.request("POST", "/score", bodies[n], {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                with lock:
                    latencies.append(time.perf_counter() - start)
                    statuses.append(response.status)
                    sent[0] += min(per_request, len(records) - n * per_request)
        finally:
            conn.close()

    cpu, start = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"records": sent[0], "records_per_s": round(sent[0] / elapsed, 1), "requests": len(statuses),
            "p50_s": round(latencies[len(latencies) // 2], 4),
            "p95_s": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 4),
            "5xx": sum(1 for s in statuses if s >= 500), "non_200": sum(1 for s in statuses if s != 200),
            "client_cpu_s": round(time.process_time() - cpu, 2)}


def batch_counts(port: int) -> tuple[float, float]:
    """(engine batches, records in them) so far, from the server's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    values = dict(line.split() for line in text.splitlines() if line.startswith("mmreward_batch_records_"))
    return float(values["mmreward_batch_records_count"]), float(values["mmreward_batch_records_sum"])


def server_phase(port: int, pid: int, records: list[dict], clients: int, args, deadline: float) -> dict:
    """One client phase, with the server's CPU per record and the records per engine batch (forward pass)."""
    before, (batches, in_batches) = cpu_seconds(pid), batch_counts(port)
    out = run_clients(port, records, clients, args.per_request, deadline)
    out["server_cpu_ms_per_record"] = round(1000 * (cpu_seconds(pid) - before) / max(1, out["records"]), 2)
    after, in_after = batch_counts(port)
    out["records_per_engine_batch"] = round((in_after - in_batches) / max(1.0, after - batches), 1)
    return out


def _children_cpu() -> float:
    # DataLoader workers are children that have exited when `score` returns: their time is in RUSAGE_CHILDREN.
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_reference(model: str, root: Path, items: list[dict], args):
    """The in-process scorer, with the server's torch threads, warmed up on the warm-up copy."""
    import torch

    from mmreward.data.schema import parse_record
    from mmreward.scoring import load_scorer

    torch.set_num_threads(args.threads)
    scorer = load_scorer(model)
    warm = [parse_record(r, base_dir=root) for r in make_records(items, args.batch_size, "warmup")]
    scorer.score(warm, batch_size=args.batch_size, num_workers=args.num_workers, progress=False)
    return scorer


def in_process(scorer, root: Path, records: list[dict], args) -> dict:
    """The reference: one `scorer.score` call on the records (batch size and workers as the server's)."""
    from mmreward.data.schema import parse_record

    parsed = [parse_record(r, base_dir=root) for r in records]
    cpu, start = time.process_time() + _children_cpu(), time.perf_counter()
    scorer.score(parsed, batch_size=args.batch_size, num_workers=args.num_workers, progress=False)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() + _children_cpu() - cpu
    return {"records": len(parsed), "records_per_s": round(len(parsed) / elapsed, 1),
            "cpu_ms_per_record": round(1000 * cpu / len(parsed), 2)}


def run_rounds(scorer, port: int, pid: int, root: Path, items: list[dict], args, deadline: float) -> list[dict]:
    """`--repeat` rounds of (in process, N clients, 1 client), each phase on its own media copy."""
    rounds = []
    for r in range(args.repeat):
        if time.monotonic() > deadline:
            break
        rounds.append({
            "in_process": in_process(scorer, root, make_records(items, args.records, f"in_process{r}"), args),
            "clients": server_phase(port, pid, make_records(items, args.records, f"clients{r}"), args.clients,
                                    args, deadline),
            "one_client": server_phase(port, pid, make_records(items, args.records, f"one_client{r}"), 1, args,
                                       deadline)})
    return rounds


def summary(rounds: list[dict], args) -> dict:
    """Median records/s of each phase over the rounds, and the ratios of the medians."""
    import statistics

    median = {phase: statistics.median(r[phase]["records_per_s"] for r in rounds) for phase in PHASES}
    return {"median_records_per_s": median,
            f"ratio_{args.clients}_clients": round(median["clients"] / median["in_process"], 3),
            "ratio_1_client": round(median["one_client"] / median["in_process"], 3),
            "cpu_ms_per_record_median": {
                "in_process": statistics.median(r["in_process"]["cpu_ms_per_record"] for r in rounds),
                "server_clients": statistics.median(r["clients"]["server_cpu_ms_per_record"] for r in rounds)}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="reward model checkpoint (default: a tiny random head model)")
    parser.add_argument("--records", type=int, default=1024, help="records per phase")
    parser.add_argument("--media", type=int, default=8, help="distinct media files (half images, half videos)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-request", type=int, default=2, help="records per request")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="server --max-batch-size and the in-process batch_size")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--num-workers", type=int, default=0, help="decode workers, on both sides")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, on both sides")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the three phases, interleaved so that a change in machine load hits all")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole run")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    deadline = time.monotonic() + args.time_limit
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="mmreward-load-"))
    model = args.model
    if model is None:
        from mmreward.models.reward_model import RewardModel
        from mmreward.models.tiny import make_tiny_vlm

        RewardModel.build(make_tiny_vlm(work / "tiny", family="qwen2_5_vl")).save_pretrained(work / "rm")
        model = str(work / "rm")
    root = work / "media"
    copies = ["warmup", *(f"{phase}{r}" for r in range(args.repeat) for phase in PHASES)]
    items = make_media(root, args.media, copies)
    scorer = load_reference(model, root, items, args)
    proc, port = start_server(model, root, args)
    watch = RSSWatch(proc.pid)
    watch.start()
    try:
        run_clients(port, make_records(items, args.batch_size, "warmup"), 1, args.per_request, deadline)
        rounds = run_rounds(scorer, port, proc.pid, root, items, args, deadline)
    finally:
        watch.stop.set()
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "setup": {"records_per_phase": args.records, "distinct_media": len(items), "per_request": args.per_request,
                  "clients": args.clients, "batch_size": args.batch_size, "max_wait_ms": args.max_wait_ms,
                  "num_workers": args.num_workers, "torch_threads": args.threads,
                  "media_cache": "cold at the start of every phase, both sides", "cpus": os.cpu_count(),
                  "load_average_before": [round(x, 2) for x in load_before],
                  "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        **summary(rounds, args), "server_peak_rss_mb": round(watch.peak / 2**20, 1), "rounds": rounds,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
