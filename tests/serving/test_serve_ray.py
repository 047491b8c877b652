"""Ray Serve: the same app as a deployment of 2 CPU replicas answers /score and /health (slow: starts Ray)."""

import pytest

ray = pytest.importorskip("ray")
httpx = pytest.importorskip("httpx")

from mmreward.models.reward_model import RewardModel  # noqa: E402


@pytest.mark.slow
def test_two_cpu_replicas_serve_the_app(tiny_checkpoint, tmp_path):
    from ray import serve

    from mmreward.serving.ray_serve import deployment

    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(tmp_path / "rm")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": 8765})
        serve.run(deployment(str(model), replicas=2, ray_actor_options={"num_cpus": 0.5}), route_prefix="/")
        replicas = serve.status().applications["default"].deployments["RewardServer"].replica_states
        assert replicas.get("RUNNING") == 2
        rows = [{"id": f"r{i}", "prompt": "q", "response": "x" * i} for i in range(1, 4)]
        response = httpx.post("http://127.0.0.1:8765/score", json={"records": rows}, timeout=120)
        assert response.status_code == 200 and [r["id"] for r in response.json()["results"]] == ["r1", "r2", "r3"]
        bad = httpx.post("http://127.0.0.1:8765/score", json={"records": []}, timeout=120)
        assert bad.status_code == 422 and bad.json()["field"] == "records"
        assert httpx.get("http://127.0.0.1:8765/health").json()["scorer"] == "head"
    finally:
        serve.shutdown()
        ray.shutdown()
