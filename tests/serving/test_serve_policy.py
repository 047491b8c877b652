"""The server's media policy: paths only under --media-root, no escapes, URLs only when enabled and http(s)."""

import os

import pytest

from mmreward.serving.inputs import MediaPolicy, RequestError, parse_records


@pytest.fixture()
def root(tmp_path):
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "sub" / "ok.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", media / "escape.png")
    os.symlink(media / "sub" / "ok.png", media / "inside.png")
    return media


def _record(**media):
    return {"id": "r", "prompt": "p", "response": "x", "media": [{"type": "image", **media}]}


def _parse(record, root, **policy):
    return parse_records([record], MediaPolicy(media_root=root, **policy), max_records=4)


@pytest.mark.parametrize("path", ["sub/ok.png", "inside.png", "ABS/sub/ok.png"])
def test_paths_under_the_root_resolve_against_it(root, path):
    path = path.replace("ABS", str(root))  # an absolute path inside the root is fine too
    (record,) = _parse(_record(path=path), root)
    assert record.media[0].local_path() == root / path


@pytest.mark.parametrize("source, words", [
    ({"path": "../secret.png"}, "'..'"),
    ({"path": "sub/../../secret.png"}, "'..'"),
    ({"path": "escape.png"}, "outside the server's media root"),
    ({"path": "/etc/passwd"}, "outside the server's media root"),
    ({"path": "file:///etc/passwd"}, "not a URL"),
    ({"path": "http://example.com/a.png"}, "not a URL"),
    ({"frames": ["sub/ok.png", "../secret.png"]}, "'..'"),
])
def test_escaping_paths_are_refused_with_403_naming_the_field(root, source, words):
    kind = "frames" if "frames" in source else "image"
    record = {"id": "r", "prompt": "p", "response": "x", "media": [{"type": kind, **source}]}
    with pytest.raises(RequestError) as info:
        _parse(record, root)
    err = info.value
    assert err.status == 403 and words in str(err)
    assert err.field.startswith("records[0].media[0].") and err.record == 0 and err.record_id == "r"


def test_without_a_media_root_paths_are_refused(root):
    with pytest.raises(RequestError, match="--media-root") as info:
        _parse(_record(path="sub/ok.png"), None)
    assert info.value.status == 403


def test_urls_only_when_enabled_and_only_http(root):
    with pytest.raises(RequestError, match="--allow-urls"):
        _parse(_record(url="https://example.com/a.png"), root)
    (record,) = _parse(_record(url="https://example.com/a.png"), root, allow_urls=True)
    assert record.media[0].url == "https://example.com/a.png"
    for url in ("file:///etc/passwd", "/etc/passwd", "ftp://host/x.png", "data:image/png;base64,AAAA"):
        with pytest.raises(RequestError, match="only http"):
            _parse(_record(url=url), root, allow_urls=True)


def test_pair_candidate_media_are_checked_too(root):
    record = {"id": "p", "prompt": "p", "label": "A", "a": {"media": [{"type": "image", "path": "sub/ok.png"}]},
              "b": {"media": [{"type": "image", "path": "escape.png"}]}}
    with pytest.raises(RequestError) as info:
        _parse(record, root)
    assert info.value.field == "records[0].b.media[0].path"


def test_raw_arrays_become_in_memory_media_items_without_re_encoding(root):
    """An npy item is handed over as a uint8 channels-last array (no PNG, no spool), in pairs' sides too."""
    import numpy as np

    from mmreward.serving.inputs import encode_npy

    video = np.arange(4 * 6 * 8 * 3, dtype=np.uint32).reshape(4, 6, 8, 3).astype(np.uint8)
    channels_first = video.transpose(0, 3, 1, 2).astype(np.float32) / 255  # (T, 3, H, W) in [0, 1]
    record = {"id": "p", "prompt": "p", "label": "A",
              "a": {"media": [{"type": "image", "path": "sub/ok.png"},
                              {"type": "video", "npy": encode_npy(channels_first), "fps": 24, "start": 0.0,
                               "end": 0.1, "meta": {"k": 1}}]},
              "b": {"media": [{"type": "image", "npy": encode_npy(video[2])}]}}
    (pair,) = _parse(record, root)
    path_item, raw_video = pair.a.media
    assert path_item.local_path() == root / "sub" / "ok.png" and path_item.array is None
    assert raw_video.type == "video" and raw_video.bytes is None and raw_video.frames is None
    assert (raw_video.fps, raw_video.start, raw_video.end, raw_video.meta) == (24.0, 0.0, 0.1, {"k": 1})
    assert raw_video.array.dtype == np.uint8 and np.array_equal(raw_video.array, video)  # rint(x * 255) == x
    (raw_image,) = pair.b.media
    assert raw_image.bytes is None and np.array_equal(raw_image.array, video[2])
    assert raw_image.cache_key() != raw_video.cache_key()


def test_a_raw_items_bad_timing_is_refused_naming_its_field(root):
    import numpy as np

    from mmreward.serving.inputs import encode_npy

    raw = {"type": "video", "npy": encode_npy(np.zeros((4, 8, 8, 3), np.uint8)), "fps": 24, "start": 2.0, "end": 1.0}
    with pytest.raises(RequestError, match="start must be < end") as info:
        _parse({"id": "r", "prompt": "p", "response": "x", "media": [{"type": "image", "path": "sub/ok.png"}, raw]},
               root)
    assert info.value.field == "records[0].media[1]" and info.value.status == 422
