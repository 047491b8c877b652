"""Run the reward server with uvicorn (what `mmreward serve` calls).

On SIGTERM / Ctrl-C uvicorn stops accepting connections and waits (up to `graceful_s`) for the requests in
flight; then the app's lifespan closes the batcher, which scores whatever is still queued. Requests are never
cut off half-scored.

Torch's intra-op threads are set once for the process (`torch_threads`): by default one per CPU this process may
use, less one for the HTTP event loop and one per decode worker. Torch's own default (every core) is what an
offline job wants, but a server shares its cores with the event loop and the decode workers, and torch's OpenMP
threads spin at every barrier: on a 2-core machine with one other busy thread, 2 torch threads scored the tiny
model 3-5x slower than 1 (measured; see README, "Rewards in RL loops").

One uvicorn worker process: each worker would hold its own copy of the model, and scaling out across processes
and machines is Ray Serve's job (`serving.ray_serve`). uvicorn picks uvloop and httptools when they are installed
(`pip install 'uvicorn[standard]'`); its per-request cost is small next to scoring (README: ≈ 0.45 ms of CPU).
"""

from __future__ import annotations

import logging
import os

from mmreward.serving.app import ServeSettings, create_app

logger = logging.getLogger(__name__)


def default_torch_threads(num_workers: int = 0) -> int:
    """Torch threads for a server process: its usable CPUs less one (event loop) and one per decode worker.

    Args:
        num_workers: decode worker processes (each runs one torch thread).

    Returns:
        At least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1 - num_workers)


def serve(scorer, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000,
          graceful_s: float = 60.0, log_level: str = "info", torch_threads: int | None = None) -> None:
    """Serve `scorer` over HTTP until interrupted.

    Args:
        scorer: any `Scorer`.
        settings: request limits, media policy, batching.
        host: interface to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: TCP port (0: any free port).
        graceful_s: longest wait for in-flight requests at shutdown.
        log_level: uvicorn's log level.
        torch_threads: torch intra-op threads of this process (None: `default_torch_threads`).
    """
    import torch
    import uvicorn

    threads = torch_threads or default_torch_threads(settings.num_workers)
    torch.set_num_threads(threads)

    app = create_app(scorer, settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful_s,
                            access_log=False)
    logger.info("serving a %s scorer on http://%s:%d (docs at /docs, schema at /openapi.json), %d torch threads",
                scorer.kind, host, port, threads)
    uvicorn.Server(config).run()
