"""The reward server as a Ray Serve deployment: N replicas of the same app, one GPU each (the `ray` extra).

    from mmreward.serving.ray_serve import deployment
    from ray import serve
    serve.run(deployment("ckpt/", replicas=4), route_prefix="/")      # POST /score on Ray's HTTP proxy (:8000)

Each replica loads the scorer and runs its own batcher, exactly as `mmreward serve` does; Ray's proxy spreads
requests over replicas. Production settings (one GPU per replica, autoscaling on queued requests)::

    deployment("ckpt/", ray_actor_options={"num_gpus": 1, "num_cpus": 8},   # CPUs feed the decode workers
               autoscaling_config={"min_replicas": 1, "max_replicas": 8,
                                   "target_ongoing_requests": 16,           # ~ --max-batch-size / records per request
                                   "upscale_delay_s": 30, "downscale_delay_s": 300},
               settings=ServeSettings(num_workers=6, max_batch_size=32, media_root="/data"))

Ray is an engine we build on, not a dependency: nothing else in mmreward imports this module.
"""

from __future__ import annotations

from typing import Any

from mmreward.serving.app import ServeSettings


def deployment(model: str, *, replicas: int = 1, scorer: str | None = None, settings: ServeSettings | None = None,
               ray_actor_options: dict[str, Any] | None = None, autoscaling_config: dict[str, Any] | None = None,
               **load_kwargs):
    """A bound Ray Serve application serving `model` (pass it to `ray.serve.run`).

    Args:
        model: checkpoint / model spec, as for `mmreward serve --model`.
        replicas: fixed replica count (ignored when `autoscaling_config` is given).
        scorer: force the scorer kind (head, yes_token, clip, judge).
        settings: the server settings of every replica.
        ray_actor_options: resources per replica, e.g. {"num_gpus": 1}.
        autoscaling_config: Ray Serve autoscaling (see the module docstring).
        **load_kwargs: passed to `load_scorer` (dtype, device, …).

    Returns:
        A Ray Serve `Application`.
    """
    from ray import serve

    from mmreward.serving.app import create_app

    options: dict[str, Any] = {"ray_actor_options": ray_actor_options or {"num_cpus": 1}}
    if autoscaling_config:
        options["autoscaling_config"] = autoscaling_config
    else:
        options["num_replicas"] = replicas

    # The FastAPI app is built inside each replica (it holds the model and the batcher), so ingress gets a
    # factory: Ray Serve calls it in the replica process.
    def build_app():
        from mmreward.scoring import load_scorer

        return create_app(load_scorer(model, kind=scorer, **load_kwargs), settings or ServeSettings())

    @serve.deployment(**options)
    @serve.ingress(build_app)
    class RewardServer:
        """One replica of the reward server."""

    return RewardServer.bind()
