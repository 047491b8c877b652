"""Load test of `mmreward serve` on loopback: concurrent clients against in-process scoring of the same records.

    python tools/load_test_serve.py                          # tiny random model, generated images + videos
    python tools/load_test_serve.py --model CKPT --records 512 --clients 16 --num-workers 4

Starts `mmreward serve` as a child process on 127.0.0.1 (a free port), then:
1. in process: `scorer.score(records)` once, for the reference records/s (same batch size and workers);
2. 16 clients (threads) send the records in small requests as fast as the server answers;
3. the same with 1 client (to show what batching buys).
Prints records/s and its ratio to in-process scoring, p50/p95 request latency, 5xx count and the server's peak RSS
(children included). Bounded: at most --records records per phase and --time-limit seconds overall.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_media(root: Path) -> list[dict]:
    """A few images and videos under root; records alternate image and video candidates."""
    import numpy as np
    from PIL import Image

    from mmreward.data.synthetic import write_index_video

    rng = np.random.default_rng(0)
    items = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / f"i{i}.png")
        write_index_video(root / f"v{i}.mp4", 24, fps=12, height=64, width=96)
        items += [{"type": "image", "path": f"i{i}.png"}, {"type": "video", "path": f"v{i}.mp4"}]
    return items


def make_records(items: list[dict], n: int) -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"a shape, take {i}", "media": [items[i % len(items)]],
             "response": None} for i in range(n)]


def start_server(model: str, root: Path, args) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "mmreward.cli", "serve", "--model", model, "--port", str(port), "--media-root",
           str(root), "--max-batch-size", str(args.batch_size), "--max-wait-ms", str(args.max_wait_ms),
           "--num-workers", str(args.num_workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


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


def run_clients(url: str, records: list[dict], clients: int, per_request: int, deadline: float) -> dict:
    import httpx

    requests = [records[i:i + per_request] for i in range(0, len(records), per_request)]
    lock, latencies, statuses, next_index = threading.Lock(), [], [], [0]

    def worker():
        with httpx.Client(timeout=600) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next_index[0] >= len(requests):
                        return
                    body = requests[next_index[0]]
                    next_index[0] += 1
                start = time.perf_counter()
                response = http.post(url + "/score", json={"records": body})
                with lock:
                    latencies.append(time.perf_counter() - start)
                    statuses.append(response.status_code)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    done = sum(len(r) for r in requests[:len(statuses)])
    return {"records_per_s": done / elapsed, "requests": len(statuses),
            "p50_s": latencies[len(latencies) // 2], "p95_s": latencies[int(len(latencies) * 0.95) - 1 or 0],
            "5xx": sum(1 for s in statuses if s >= 500), "non_200": sum(1 for s in statuses if s != 200)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="reward model checkpoint (default: a tiny random head model)")
    parser.add_argument("--records", type=int, default=256)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-request", type=int, default=2, help="records per request")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    deadline = time.monotonic() + args.time_limit
    from mmreward.data.schema import parse_record
    from mmreward.scoring import load_scorer

    work = Path(tempfile.mkdtemp(prefix="mmreward-load-"))
    model = args.model
    if model is None:
        from mmreward.models.reward_model import RewardModel
        from mmreward.models.tiny import make_tiny_vlm

        RewardModel.build(make_tiny_vlm(work / "tiny", family="qwen2_5_vl")).save_pretrained(work / "rm")
        model = str(work / "rm")
    records = make_records(make_media(work), args.records)
    scorer = load_scorer(model)
    parsed = [parse_record(r, base_dir=work) for r in records]
    scorer.score(parsed[:args.batch_size], batch_size=args.batch_size, progress=False)  # warm-up
    from mmreward.data.media import clear_media_cache

    clear_media_cache()
    start = time.perf_counter()
    scorer.score(parsed, batch_size=args.batch_size, num_workers=args.num_workers, progress=False)
    in_process = len(parsed) / (time.perf_counter() - start)
    del scorer
    proc, url = start_server(model, work, args)
    watch = RSSWatch(proc.pid)
    watch.start()
    try:
        run_clients(url, records[:args.batch_size], 1, args.per_request, deadline)  # warm-up
        many = run_clients(url, records, args.clients, args.per_request, deadline)
        one = run_clients(url, records, 1, args.per_request, deadline)
    finally:
        watch.stop.set()
        proc.terminate()
        proc.wait(60)
    report = {"records": len(records), "in_process_records_per_s": round(in_process, 2),
              f"clients_{args.clients}": many, "clients_1": one,
              f"ratio_{args.clients}_clients": round(many["records_per_s"] / in_process, 3),
              "ratio_1_client": round(one["records_per_s"] / in_process, 3),
              "server_peak_rss_mb": round(watch.peak / 2**20, 1)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
