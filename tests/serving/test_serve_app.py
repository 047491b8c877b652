"""The reward server's HTTP API: scores equal in-process scoring, per-record failures, 4xx for bad requests."""

import base64
import json

import numpy as np
import pytest
from PIL import Image
from testkit import make_pair

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mmreward.data.schema import parse_record  # noqa: E402
from mmreward.models.reward_model import RewardModel  # noqa: E402
from mmreward.scoring import score_records  # noqa: E402
from mmreward.serving.app import ServeSettings, create_app  # noqa: E402
from mmreward.serving.inputs import encode_npy  # noqa: E402


@pytest.fixture(scope="module")
def head_model(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl"), dimensions=["VQ", "MQ"]).eval()


@pytest.fixture(scope="module")
def client(head_model, scoring_media):
    app = create_app(head_model, ServeSettings(media_root=str(scoring_media), max_body_bytes=1 << 20,
                                               max_records=8))
    with TestClient(app) as c:
        yield c


def _in_process(model, root, rows):
    return [r.to_dict() for r in score_records(model, [parse_record(r, base_dir=root) for r in rows],
                                               on_error="skip", progress=False)]


def _same(got, want):
    assert [g["id"] for g in got] == [w["id"] for w in want]
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for key in ("score", "score_a", "score_b"):
            if key in w:
                assert g[key] == pytest.approx(w[key], abs=1e-5)


def test_scores_equal_in_process_scoring_and_a_bad_media_record_fails_alone(client, head_model, scoring_media):
    image_b64 = base64.b64encode((scoring_media / "i1.png").read_bytes()).decode()
    rows = [make_pair("vid", "v0.mp4", "v1.mp4"),
            {"id": "img", "prompt": "a cat", "media": [{"type": "image", "bytes": image_b64}], "response": "yes"},
            make_pair("broken", "corrupt.mp4", "v2.mp4"),
            {"id": "text", "prompt": "2+2?", "response": "4"}]
    response = client.post("/score", json={"records": rows})
    assert response.status_code == 200
    results = response.json()["results"]
    assert "corrupt.mp4" in results[2]["error"] and results[2]["score_a"] is None
    _same([r for r in results if "error" not in r], [r for r in _in_process(head_model, scoring_media, rows)
                                                       if "error" not in r])
    assert results[0]["preferred"] in ("A", "B", "tie") and set(results[1]["scores"]) == {"VQ", "MQ"}


@pytest.mark.parametrize("body, status, field, words", [
    (b"{not json", 400, None, "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, 400, None, "not valid JSON"),
    (b'{"rows": []}', 422, "records", "records"),
    (b'{"records": {}}', 422, "records", "list of records"),
    (b'{"records": []}', 422, "records", "at least one"),
    (json.dumps({"records": [{"id": "x", "prompt": "p", "response": "r"}] * 9}).encode(), 413, "records", "limit of 8"),
    (json.dumps({"records": [{"id": "ok", "prompt": "p", "response": "r"},
                             {"id": "bad", "prompt": "p", "a": {"text": "x"}, "b": {"text": "y"}, "label": "C"}]}
                ).encode(), 422, "records[1].label", "must be \"A\", \"B\" or \"tie\""),
    (json.dumps({"records": [{"id": "d", "prompt": "p", "response": "r"}] * 2}).encode(), 422, "records[1].id",
     "unique"),
    (json.dumps({"records": [{"id": "u", "prompt": "p", "response": "r",
                              "media": [{"type": "image", "url": "http://example.com/x.png"}]}]}).encode(),
     403, "records[0].media[0].url", "--allow-urls"),
])
def test_bad_requests_are_4xx_naming_the_field_and_record(client, body, status, field, words):
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    assert words in payload["error"]
    assert payload.get("field") == field
    if field and field.startswith("records["):
        assert payload["record"] == int(field[8])


def test_body_limit_holds_with_and_without_content_length(client):
    big = json.dumps({"records": [{"id": "x", "prompt": "p" * (2 << 20), "response": "r"}]}).encode()
    assert client.post("/score", content=big).status_code == 413

    def chunks():  # no Content-Length: the limit is counted while reading
        for start in range(0, len(big), 1 << 16):
            yield big[start:start + (1 << 16)]

    response = client.post("/score", content=chunks())
    assert response.status_code == 413 and "limit of 1048576 bytes" in response.json()["error"]


def test_raw_npy_frames_score_like_the_same_pixels_on_disk(client, head_model, tmp_path):
    # The files are for the in-process reference only (not under the shared scoring_media folder, whose listing
    # other tests check).
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    video = rng.integers(0, 256, (12, 32, 48, 3), dtype=np.uint8)
    folder = tmp_path / "npy_frames"
    folder.mkdir()
    Image.fromarray(image).save(tmp_path / "npy_image.png")
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    as_arrays = [
        {"id": "i", "prompt": "p", "response": "r",
         "media": [{"type": "image", "npy": encode_npy(image.transpose(2, 0, 1).astype(np.float32) / 255)}]},
        {"id": "v", "prompt": "p", "response": "r", "media": [{"type": "video", "npy": encode_npy(video), "fps": 24}]},
    ]
    on_disk = [
        {"id": "i", "prompt": "p", "response": "r", "media": [{"type": "image", "path": "npy_image.png"}]},
        {"id": "v", "prompt": "p", "response": "r",
         "media": [{"type": "frames", "frames": [f"npy_frames/{t:03d}.png" for t in range(12)], "fps": 24}]},
    ]
    response = client.post("/score", json={"records": as_arrays})
    assert response.status_code == 200, response.text
    _same(response.json()["results"], _in_process(head_model, tmp_path, on_disk))


def test_an_npy_video_scores_like_the_same_frames_as_files_under_the_sampling_contract(client, head_model,
                                                                                       tmp_path):
    """48 frames given at 24 and at 8 fps: the contract picks the same frames from the array as from the files."""
    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (48, 24, 32, 3), dtype=np.uint8)
    folder = tmp_path / "npy_long"
    folder.mkdir()
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    payload = encode_npy(video)
    as_array = [{"id": f"fps{fps}", "prompt": "p", "response": "r",
                 "media": [{"type": "video", "npy": payload, "fps": fps}]} for fps in (24, 8)]
    as_files = [{**row, "media": [{"type": "frames", "frames": [f"npy_long/{t:03d}.png" for t in range(48)],
                                   "fps": row["media"][0]["fps"]}]} for row in as_array]
    response = client.post("/score", json={"records": as_array})
    assert response.status_code == 200, response.text
    got = response.json()["results"]
    _same(got, _in_process(head_model, tmp_path, as_files))
    assert got[0]["score"] != pytest.approx(got[1]["score"], abs=1e-6)  # the frame rate changed the frames seen


@pytest.mark.parametrize("item, field, words", [
    ({"type": "video", "npy": None}, "npy", "base64"),
    ({"type": "video", "npy": encode_npy(np.zeros((4, 8, 8, 3), np.uint8))}, "fps", "frame rate"),
    ({"type": "image", "npy": encode_npy(np.zeros((8, 8), np.uint8))}, "npy", "(H, W, 3)"),
    ({"type": "image", "npy": encode_npy(np.full((8, 8, 3), 2.0, np.float32))}, "npy", "[0, 1]"),
    ({"type": "image", "npy": encode_npy(np.zeros((8, 8, 3), np.int64))}, "npy", "int64 not supported"),
    ({"type": "image", "npy": base64.b64encode(b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, "
                                               b"'shape': (100000, 100000, 3), }" + b" " * 50 + b"\n").decode()},
     "npy", "bytes follow"),
    ({"type": "image", "npy": base64.b64encode(b"GIF89a").decode()}, "npy", "not a .npy file"),
])
def test_bad_raw_arrays_are_422_naming_the_field(client, item, field, words):
    record = {"id": "r", "prompt": "p", "response": "x", "media": [item]}
    response = client.post("/score", json={"records": [record]})
    assert response.status_code == 422, response.text
    assert words in response.json()["error"] and response.json()["field"] == f"records[0].media[0].{field}"


def test_non_ascii_base64_bytes_are_a_422_naming_the_field(client):
    """Found by the schemathesis fuzz: base64 text with non-ASCII characters was a ValueError (500)."""
    rows = [{"id": "x", "prompt": "p", "response": None, "media": [{"type": "image", "bytes": "\u0080"}]}]
    response = client.post("/score", json={"records": rows})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "records[0].media[0].bytes" and "base64" in response.json()["error"]


def test_health_metrics_and_openapi(client):
    client.post("/score", json={"records": [{"id": "m", "prompt": "p", "response": "r"}]})
    client.post("/score", content=b"{")
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["scorer"] == "head" and health["dimensions"] == ["VQ", "MQ"]
    text = client.get("/metrics").text
    assert 'mmreward_requests_total{endpoint="/score",status="200"}' in text
    assert 'mmreward_failures_total{reason="bad_json"}' in text
    assert "mmreward_batch_records_bucket" in text and "mmreward_request_seconds_count" in text
    assert "mmreward_queue_records 0" in text
    schema = client.get("/openapi.json").json()
    assert {"/score", "/get_reward", "/health", "/metrics"} <= set(schema["paths"])
    body = schema["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["records"]


def test_openrlhf_protocol_scores_the_user_text_and_response(client, head_model, scoring_media):
    prompt = ("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
              "<|vision_end|>What colour is the square?<|im_end|>\n<|im_start|>assistant\n")
    body = {"query": [prompt + "It is red.<|im_end|>", prompt + "Blue.<|im_end|><|endoftext|>"],
            "prompts": [prompt, prompt],
            "labels": [json.dumps({"media": [{"type": "image", "path": "i0.png"}]}), {"media": []}]}
    response = client.post("/get_reward", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    want = _in_process(head_model, scoring_media, [
        {"id": "0", "prompt": "What colour is the square?", "response": "It is red.",
         "media": [{"type": "image", "path": "i0.png"}]},
        {"id": "1", "prompt": "What colour is the square?", "response": "Blue."}])
    assert got["rewards"] == pytest.approx([w["score"] for w in want], abs=1e-5) and got["scores"] == got["rewards"]
    assert got["extra_logs"]["VQ"] == pytest.approx([w["scores"]["VQ"] for w in want], abs=1e-5)
    bad = client.post("/get_reward", json={"query": ["a"], "prompts": ["a", "b"]})
    assert bad.status_code == 422 and bad.json()["field"] == "prompts"


def test_small_bodies_are_parsed_on_the_event_loop_and_large_ones_in_a_worker_thread(head_model, monkeypatch):
    import starlette.concurrency

    from mmreward.serving.app import INLINE_BODY_BYTES

    hops, real = [], starlette.concurrency.run_in_threadpool

    async def spy(fn, *args, **kwargs):
        hops.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(starlette.concurrency, "run_in_threadpool", spy)
    record = {"id": "r", "prompt": "a red square", "response": "It is red."}
    with TestClient(create_app(head_model, ServeSettings())) as c:
        small = c.post("/score", json={"records": [record]})
        assert hops == []
        large = c.post("/score", json={"records": [{**record, "meta": {"pad": "x" * INLINE_BODY_BYTES}}]})
        assert hops == ["parse"]
        broken = c.post("/score", content=b"[" * INLINE_BODY_BYTES, headers={"content-type": "application/json"})
    assert small.status_code == large.status_code == 200
    assert small.json()["results"][0]["score"] == pytest.approx(large.json()["results"][0]["score"], abs=1e-6)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
