"""A real uvicorn server on 127.0.0.1 (ephemeral port, in a thread) serving a tiny head reward model."""

import threading

import pytest


@pytest.fixture(scope="module")
def head_model(tiny_checkpoint):
    from mmreward.models.reward_model import RewardModel

    return RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dimensions=["VQ", "MQ"]).eval()


def start_server(app):
    """Start `app` on 127.0.0.1:<free port> in a thread; returns (base URL, stop function)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop():
        server.should_exit = True
        thread.join(60)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def live_server(head_model, scoring_media):
    """(URL, app) of a server over the head model with the scoring media as its media root."""
    pytest.importorskip("fastapi")
    from mmreward.serving.app import ServeSettings, create_app

    app = create_app(head_model, ServeSettings(media_root=str(scoring_media), max_wait_ms=1))
    url, stop = start_server(app)
    yield url, app
    stop()
