"""Run the reward server with uvicorn (what `mmreward serve` calls).

On SIGTERM / Ctrl-C uvicorn stops accepting connections and waits (up to `graceful_s`) for the requests in
flight; then the app's lifespan closes the batcher, which scores whatever is still queued. Requests are never
cut off half-scored.
"""

from __future__ import annotations

import logging

from mmreward.serving.app import ServeSettings, create_app

logger = logging.getLogger(__name__)


def serve(scorer, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000,
          graceful_s: float = 60.0, log_level: str = "info") -> None:
    """Serve `scorer` over HTTP until interrupted.

    Args:
        scorer: any `Scorer`.
        settings: request limits, media policy, batching.
        host: interface to bind (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: TCP port (0: any free port).
        graceful_s: longest wait for in-flight requests at shutdown.
        log_level: uvicorn's log level.
    """
    import uvicorn

    app = create_app(scorer, settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful_s,
                            access_log=False)
    logger.info("serving a %s scorer on http://%s:%d (docs at /docs, schema at /openapi.json)", scorer.kind, host,
                port)
    uvicorn.Server(config).run()
