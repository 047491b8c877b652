"""`mmreward serve` as a process: real socket, decode worker pool, OpenAPI schema, SIGTERM drains in-flight work."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from mmreward.models.reward_model import RewardModel  # noqa: E402
from mmreward.serving.inputs import encode_npy  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_scores_with_workers_and_drains_in_flight_requests_on_sigterm(tiny_checkpoint, scoring_media, tmp_path):
    model = tmp_path / "rm"
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(model)
    port = _free_port()
    # A long batching wait keeps the request queued when SIGTERM arrives: shutdown must still answer it.
    cmd = [sys.executable, "-m", "mmreward.cli", "serve", "--model", str(model), "--port", str(port),
           "--media-root", str(scoring_media), "--num-workers", "1", "--max-wait-ms", "3000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 300  # a safety net for a hung child, not a timing assertion
        while time.monotonic() < give_up and proc.poll() is None:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "mmreward reward server"
        # B is a raw .npy video: its in-memory array crosses to the decode worker process.
        frames = np.random.default_rng(0).integers(0, 256, (8, 24, 32, 3), dtype=np.uint8)
        record = {"id": "v", "prompt": "p", "a": {"media": [{"type": "video", "path": "v0.mp4"}]},
                  "b": {"media": [{"type": "video", "npy": encode_npy(frames), "fps": 12}]}, "label": "A"}
        answer = {}

        def post():
            answer["response"] = httpx.post(base + "/score", json={"records": [record]}, timeout=300)

        thread = threading.Thread(target=post)
        thread.start()
        while "mmreward_queue_records 1" not in httpx.get(base + "/metrics").text:
            assert thread.is_alive() and time.monotonic() < give_up
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        thread.join(300)
        # uvicorn re-raises the signal once it has shut down gracefully, so the exit status is -SIGTERM.
        assert proc.wait(300) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    response = answer["response"]
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["id"] == "v" and "error" not in result and result["preferred"] in ("A", "B", "tie")
    assert json.dumps(result)  # plain JSON
