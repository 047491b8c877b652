"""The HTTP reward server: `mmreward serve` (FastAPI + uvicorn), its dynamic batcher, metrics and protocols.

    mmreward serve --model CKPT --media-root /data --port 8000      # POST /score, GET /health, GET /metrics
    from mmreward.serving.app import create_app                     # the same app, for tests / Ray Serve

Layers (each importable without the ones above it): `requests` turns hostile JSON into records (media policy,
raw `.npy` frames), `batcher` merges concurrent requests into engine batches, `metrics` renders Prometheus text,
`app` is the FastAPI app, `openrlhf` the OpenRLHF remote-RM protocol, `ray_serve` the Ray Serve deployment.
Nothing here is imported by `import mmreward`; fastapi / uvicorn are the `serve` extra.
"""
