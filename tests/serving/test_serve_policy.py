"""The server's media policy: paths only under --media-root, no escapes, URLs only when enabled and http(s)."""

import os

import pytest

from mmreward.serving.inputs import MediaPolicy, RequestError, Spool, parse_records


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
    return parse_records([record], MediaPolicy(media_root=root, **policy), Spool(), max_records=4)


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
