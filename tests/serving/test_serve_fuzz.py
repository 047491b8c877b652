"""Schema fuzz of the HTTP API (hypothesis): any body, any field value, never a 5xx."""

import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mmreward.models.reward_model import RewardModel  # noqa: E402
from mmreward.serving.app import ServeSettings, create_app  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=12)
VALID = [
    {"id": "p", "prompt": "q", "a": {"text": "x"}, "b": {"text": "y"}, "label": "A"},
    {"id": "m", "prompt": "q", "response": "r", "media": [{"type": "image", "path": "i0.png"}]},
    {"id": "v", "prompt": "q", "response": None, "media": [{"type": "video", "npy": "AAAA", "fps": 2}]},
]
KEYS = ["id", "prompt", "a", "b", "label", "response", "media", "scores", "system", "dimensions", "meta", "x"]


@st.composite
def mutated_record(draw):
    record = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 3))):
        record[draw(st.sampled_from(KEYS))] = draw(JSON)
    media = record.get("media")
    if draw(st.booleans()) and isinstance(media, list) and media and isinstance(media[0], dict):
        record["media"][0] = {**record["media"][0], draw(st.sampled_from(
            ["type", "path", "url", "bytes", "npy", "frames", "fps", "start"])): draw(JSON)}
    return record


@pytest.fixture(scope="module")
def client(tiny_checkpoint, scoring_media):
    model = RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()
    app = create_app(model, ServeSettings(media_root=str(scoring_media), max_wait_ms=0, max_records=8))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(records=st.lists(mutated_record(), min_size=1, max_size=3))
def test_mutated_records_never_5xx(client, records):
    response = client.post("/score", json={"records": records})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert len(response.json()["results"]) == len(records)
    else:
        assert isinstance(response.json()["error"], str)


@FUZZ
@given(body=JSON, path=st.sampled_from(["/score", "/get_reward"]))
def test_any_json_body_never_5xx(client, body, path):
    response = client.post(path, json=body)
    assert response.status_code < 500, response.text


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_never_5xx(client, raw):
    assert client.post("/score", content=raw).status_code < 500
