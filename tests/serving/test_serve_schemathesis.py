"""Schema fuzz with schemathesis: requests generated from the app's own `/openapi.json` (valid and invalid bodies
for every operation), sent in process, never get a 5xx; a 4xx carries our JSON error. Skipped when schemathesis
is not installed (dev extra). Its pytest plugin does not run under pytest 9 (`Function._nodeid`), so the cases
come from the schema's hypothesis strategy."""

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402

from mmreward.models.reward_model import RewardModel  # noqa: E402
from mmreward.serving.app import ServeSettings, create_app  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tiny_checkpoint, scoring_media):
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()
    app = create_app(model, ServeSettings(media_root=str(scoring_media), max_wait_ms=0, max_records=8))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_generated_requests_never_5xx(api_schema):
    seen: dict[str, set] = {}
    cases = api_schema.as_strategy(GenerationMode.POSITIVE) | api_schema.as_strategy(GenerationMode.NEGATIVE)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=cases)
    def check(case):
        response = case.call()
        seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
        # (case.as_curl_command() itself fails on non-ASCII bodies, so the body is shown with repr)
        assert response.status_code < 500, (f"{case.method} {case.path} -> {response.status_code}: "
                                            f"{response.text[:500]}; body {case.body!r:.2000}")
        if response.status_code >= 400 and case.path != "/openapi.json":
            assert isinstance(response.json()["error"], str)

    check()
    # Not vacuous: every operation was called, and /score bodies were both scored (200) and refused (4xx).
    assert {"POST /score", "POST /get_reward", "GET /health", "GET /metrics"} <= set(seen), seen
    assert 200 in seen["POST /score"] and any(400 <= s < 500 for s in seen["POST /score"]), seen
