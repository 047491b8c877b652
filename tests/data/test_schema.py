"""Tests for mmreward.data.schema: record round trips, TRL normalisation, exact validation messages, JSONL I/O."""

import base64
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from mmreward.data.schema import (
    LABELS,
    MEDIA_TYPES,
    Candidate,
    MediaItem,
    PointwiseRecord,
    PreferencePair,
    RecordError,
    from_hf_dataset,
    iter_jsonl_numbered,
    parse_record,
    read_jsonl,
    to_hf_dataset,
    write_jsonl,
)

RESPONSE_PAIR = {
    "id": "p1", "prompt": "a red circle", "system": None,
    "media": [{"type": "video", "path": "videos/x.mp4", "start": 0.0, "end": 4.0}],
    "a": {"text": "response A", "media": []}, "b": {"text": "response B", "media": []},
    "label": "A", "dimensions": {"VQ": "A", "MQ": "tie"}, "margin": None, "meta": {},
}
PNG_B64 = base64.b64encode(b"\x89PNG fake").decode()
GENERATION_PAIR = {
    "id": "g7", "prompt": "a cat surfing", "system": "You judge videos.", "media": [],
    "a": {"text": None, "media": [{"type": "frames", "frames": ["f/0.png", "f/1.png"], "fps": 2.0,
                                   "meta": {"model": "m1"}}]},
    "b": {"text": "caption", "media": [{"type": "image", "bytes": PNG_B64},
                                       {"type": "video", "url": "https://x.org/v.mp4", "fps": 24.0}]},
    "label": "tie", "dimensions": {}, "margin": 0.5, "meta": {"source": "unit"},
}
POINTWISE = {
    "id": "s1", "prompt": "a dog", "system": None, "media": [{"type": "image", "path": "img/dog.png"}],
    "response": None, "scores": {"VQ": 3.5, "TA": 4.0}, "meta": {"rater": 2},
}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- round trips ----

@pytest.mark.parametrize("obj", [RESPONSE_PAIR, GENERATION_PAIR, POINTWISE], ids=["response", "generation", "pointwise"])
def test_dict_round_trip_is_exact(obj):
    record = parse_record(obj)
    assert record.to_dict() == obj
    assert list(record.to_dict()) == list(obj)  # key order of the schema example
    assert parse_record(record.to_dict()) == record


def test_parsed_fields_have_the_expected_values():
    pair = parse_record(GENERATION_PAIR)
    assert isinstance(pair, PreferencePair)
    assert pair.a == Candidate(None, [MediaItem("frames", frames=["f/0.png", "f/1.png"], fps=2.0,
                                                meta={"model": "m1"})])
    assert pair.b.media[0].data() == b"\x89PNG fake"
    assert pair.b.media[1].url == "https://x.org/v.mp4"
    assert pair.margin == 0.5 and pair.label == "tie" and pair.system == "You judge videos."
    point = parse_record(POINTWISE)
    assert isinstance(point, PointwiseRecord)
    assert point.scores == {"VQ": 3.5, "TA": 4.0}
    assert LABELS == ("A", "B", "tie") and MEDIA_TYPES == ("image", "video", "frames")


def test_int_id_and_int_numbers_are_normalised():
    obj = dict(RESPONSE_PAIR, id=42, margin=2, media=[{"type": "video", "path": "v.mp4", "start": 1, "end": 3}])
    pair = parse_record(obj)
    assert pair.id == "42"
    assert pair.margin == 2.0 and isinstance(pair.margin, float)
    assert pair.media[0].to_dict() == {"type": "video", "path": "v.mp4", "start": 1.0, "end": 3.0}


def test_jsonl_round_trip(tmp_path):
    src = _write_lines(tmp_path / "in.jsonl", [json.dumps(o) for o in (RESPONSE_PAIR, GENERATION_PAIR, POINTWISE)])
    records = read_jsonl(src)
    assert [r.id for r in records] == ["p1", "g7", "s1"]
    out = tmp_path / "out.jsonl"
    assert write_jsonl(out, records) == 3
    # Same folder, so the paths are unchanged and the text matches the compact JSON of the input.
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [RESPONSE_PAIR, GENERATION_PAIR, POINTWISE]
    assert read_jsonl(out) == records


def test_write_jsonl_keeps_unicode_readable(tmp_path):
    pair = parse_record(dict(RESPONSE_PAIR, prompt="un cercle rouge — 红色"))
    out = tmp_path / "u.jsonl"
    write_jsonl(out, [pair])
    assert '"prompt": "un cercle rouge — 红色"' in out.read_text(encoding="utf-8")


def test_hf_dataset_round_trip_for_pairs_and_pointwise(tmp_path):
    pairs = [parse_record(RESPONSE_PAIR, base_dir=tmp_path), parse_record(GENERATION_PAIR, base_dir=tmp_path)]
    ds = to_hf_dataset(pairs)
    assert ds.num_rows == 2
    assert ds[0]["dimensions"] == '{"VQ": "A", "MQ": "tie"}'
    assert ds[1]["a"]["media"][0]["frames"] == ["f/0.png", "f/1.png"]
    back = from_hf_dataset(ds, base_dir=tmp_path)
    assert back == pairs
    assert back[0].media[0].local_path() == tmp_path / "videos" / "x.mp4"
    points = [parse_record(POINTWISE)]
    ds = to_hf_dataset(points)
    assert ds[0]["scores"] == '{"VQ": 3.5, "TA": 4.0}'
    assert from_hf_dataset(ds) == points


def test_hf_dataset_rejects_mixed_kinds():
    with pytest.raises(ValueError, match="one kind"):
        to_hf_dataset([parse_record(RESPONSE_PAIR), parse_record(POINTWISE)])


# ---- TRL rows ----

def test_trl_string_form_with_images(tmp_path):
    row = {"prompt": "Which caption fits?", "chosen": "A red circle.", "rejected": "A blue square.",
           "images": ["img/1.png", {"path": "img/2.png", "bytes": None}], "source": "rlaif"}
    src = _write_lines(tmp_path / "trl.jsonl", ["", json.dumps(row)])
    [pair] = read_jsonl(src)
    assert pair.to_dict() == {
        "id": "trl-2", "prompt": "Which caption fits?", "system": None,
        "media": [{"type": "image", "path": "img/1.png"}, {"type": "image", "path": "img/2.png"}],
        "a": {"text": "A red circle.", "media": []}, "b": {"text": "A blue square.", "media": []},
        "label": "A", "dimensions": {}, "margin": None, "meta": {"source": "rlaif"},
    }
    assert pair.media[1].local_path() == tmp_path / "img" / "2.png"


def test_trl_conversational_form():
    row = {
        "id": 9,
        "prompt": [{"role": "system", "content": "Be strict."},
                   {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]}],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "A red circle."}]}],
        "rejected": [{"role": "assistant", "content": "A square."}],
        "margin": 1.5,
    }
    pair = parse_record(row)
    assert (pair.id, pair.system, pair.prompt) == ("9", "Be strict.", "Describe it.")
    assert (pair.a.text, pair.b.text, pair.label, pair.margin) == ("A red circle.", "A square.", "A", 1.5)


def test_trl_implicit_prompt_comes_from_the_conversation():
    row = {"id": "x",
           "chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
           "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}
    pair = parse_record(row)
    assert (pair.prompt, pair.a.text, pair.b.text) == ("2+2?", "4", "5")


def test_trl_image_part_carrying_its_own_image_is_an_error():
    row = {"id": "x", "prompt": [{"role": "user", "content": [{"type": "image", "image": "a.png"}]}],
           "chosen": "a", "rejected": "b"}
    with pytest.raises(RecordError) as err:
        parse_record(row)
    assert str(err.value) == ('prompt[0].content[0] must be a text part or an {"type": "image"} placeholder, '
                              'got {"type": "image", "image": "a.png"}')


# ---- validation messages ----

def _pair_line(**changes) -> str:
    return json.dumps({**RESPONSE_PAIR, **changes})


def _media_line(item: dict, where: str = "top") -> str:
    if where == "top":
        return _pair_line(media=[item])
    return _pair_line(a={"text": None, "media": [{"type": "image", "path": "ok.png"}, item]})


BAD_LINES = [
    (_pair_line(label="C"), 'label must be "A", "B" or "tie", got "C"'),
    ('{"id": "p1" "prompt": "x"}', "invalid JSON (Expecting ',' delimiter: column 13)"),
    (_media_line({"type": "audio", "path": "a.wav"}), 'media[0].type must be one of image, video, frames, got "audio"'),
    (_media_line({"type": "image"}, where="a"), "a.media[1]: exactly one of path, url, bytes, frames is required"),
    (_media_line({"type": "image", "path": "x.png", "url": "http://x"}),
     "media[0]: exactly one of path, url, bytes, frames is required, got path, url"),
    (_media_line({"type": "video", "path": "v.mp4", "start": 4.0, "end": 2.5}),
     "media[0]: start must be < end, got start=4, end=2.5"),
    (_media_line({"type": "video", "path": "v.mp4", "start": 1.0, "end": 1.0}),
     "media[0]: start must be < end, got start=1, end=1"),
    (_media_line({"type": "video", "path": "v.mp4", "start": -1}), "media[0].start must be a number >= 0, got -1"),
    (_media_line({"type": "image", "path": "x.png", "start": 0}),
     'media[0]: start and end are only valid for type "video", got "image"'),
    (_media_line({"type": "frames", "frames": ["0.png"], "fps": 0}), "media[0].fps must be a number > 0, got 0"),
    (_media_line({"type": "video", "frames": ["0.png"]}),
     'media[0]: type "frames" goes with a "frames" list, got type "video" with frames'),
    (_media_line({"type": "image", "bytes": "not base64!"}), 'media[0].bytes must be base64 text, got "not base64!"'),
    (_media_line({"type": "image", "paht": "x.png"}),
     'media[0]: unknown key "paht" (expected type, path, url, bytes, frames, start, end, fps, meta)'),
    (_pair_line(margin=float("nan")), "margin must be a number >= 0, got NaN"),
    (_pair_line(margin="big"), 'margin must be a number >= 0, got "big"'),
    # A margin is a strength of preference (>= 0) that enters a float32 loss: both bounds hold at read time.
    (_pair_line(margin=-0.5), "margin must be a number >= 0, got -0.5"),
    (_pair_line(margin=1e39), "margin must be within the float32 range (|x| <= 3.403e+38), got 1e+39"),
    (_pair_line(margin=float("inf")), "margin must be a number >= 0, got Infinity"),
    (json.dumps({**POINTWISE, "scores": {"VQ": -1e300}}),
     "scores.VQ must be within the float32 range (|x| <= 3.403e+38), got -1e+300"),
    (_pair_line(dimensions={"VQ": "A", "MQ": "b"}), 'dimensions.MQ must be "A", "B" or "tie", got "b"'),
    ('{"id": "p1", "prompt": "x", "foo": 1}',
     'unknown record shape: expected "a" and "b" or "chosen" and "rejected" (pair), '
     'or "scores" or "response" (pointwise); got keys id, prompt, foo'),
    (json.dumps({k: v for k, v in RESPONSE_PAIR.items() if k != "id"}), "id is required"),
    (_pair_line(id=""), 'id must be a non-empty string, got ""'),
    (_pair_line(media={"type": "image"}), 'media must be a list, got {"type": "image"}'),
    (_pair_line(b="B"), 'b must be an object, got "B"'),
    (_pair_line(b={"text": None, "media": []}), "b: needs text or media, got neither"),
    (_pair_line(lable="A"), 'unknown key "lable" (expected id, prompt, system, media, a, b, label, dimensions, '
                            'margin, meta)'),
    (json.dumps({**POINTWISE, "scores": {"VQ": "high"}}), 'scores.VQ must be a finite number, got "high"'),
    ("[1, 2]", "expected a JSON object, got [1, 2]"),
    # Lone surrogates ("\ud800" escapes) decode fine but no UTF-8 writer accepts them: rejected per field.
    (_pair_line(id="p\ud800"), "id must be valid Unicode text, got a lone surrogate U+D800 at character 1"),
    (_pair_line(prompt="x\udfff"), "prompt must be valid Unicode text, got a lone surrogate U+DFFF at character 1"),
    (_pair_line(a={"text": "\ud83d ok"}), "a.text must be valid Unicode text, got a lone surrogate U+D83D at "
                                          "character 0"),
    (json.dumps({**POINTWISE, "response": "r\udc80"}),
     "response must be valid Unicode text, got a lone surrogate U+DC80 at character 1"),
    (_pair_line(meta={"notes": ["fine", "bad\ud800"]}),
     "meta.notes[1] must be valid Unicode text, got a lone surrogate U+D800 at character 3"),
    (_pair_line(dimensions={"V\ud800": "A"}),
     "dimensions key must be valid Unicode text, got a lone surrogate U+D800 at character 1"),
    # TRL rows: "chosen" is candidate A, so an explicit label must agree with it.
    (json.dumps({"id": "t", "prompt": "p", "chosen": "good", "rejected": "bad", "label": "B"}),
     'label conflicts with chosen/rejected: a TRL row\'s "chosen" is candidate A, so "label" must be "A" or '
     'absent, got "B"; swap chosen and rejected instead'),
    ('[' * 100000 + ']' * 100000, "invalid JSON (nested too deeply)"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_validation_error_names_file_line_and_field(tmp_path, line, reason):
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line(), _pair_line(id="p2"), line])
    with pytest.raises(RecordError) as err:
        read_jsonl(src)
    assert str(err.value) == f"pairs.jsonl:3: {reason}"
    assert (err.value.path, err.value.line) == (src, 3)


def test_record_error_attributes():
    with pytest.raises(RecordError) as err:
        parse_record(json.loads(_media_line({"type": "image"}, where="a")), where="x.jsonl:8")
    e = err.value
    assert (e.field, e.reason) == ("a.media[1]", "exactly one of path, url, bytes, frames is required")
    assert str(e) == "x.jsonl:8: a.media[1]: exactly one of path, url, bytes, frames is required"
    assert isinstance(e, ValueError)


def test_kind_restricts_the_accepted_records(tmp_path):
    src = _write_lines(tmp_path / "mixed.jsonl", [_pair_line(), json.dumps(POINTWISE)])
    with pytest.raises(RecordError) as err:
        read_jsonl(src, kind="pair")
    assert str(err.value) == "mixed.jsonl:2: expected a pair record, got a pointwise record"
    assert [r.id for r in read_jsonl(src, kind="pointwise", on_error="skip")] == ["s1"]
    with pytest.raises(RecordError, match="expected a pair record, got a pointwise record"):
        PreferencePair.from_dict(POINTWISE)


# ---- on_error="skip" ----

def test_skip_writes_bad_lines_to_the_errors_file(tmp_path, caplog):
    bad_label, bad_json = _pair_line(id="p3", label="C"), '{"id": "p4",'
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line(), "", _pair_line(id="p2"), bad_label, bad_json,
                                                  _pair_line(id="p6")])
    with caplog.at_level(logging.WARNING, logger="mmreward.data.schema"):
        records = read_jsonl(src, on_error="skip")
    assert [r.id for r in records] == ["p1", "p2", "p6"]
    errors = [json.loads(line) for line in (tmp_path / "pairs.errors.jsonl").read_text().splitlines()]
    assert errors == [
        {"line": 4, "error": 'pairs.jsonl:4: label must be "A", "B" or "tie", got "C"', "raw": bad_label},
        {"line": 5, "error": "pairs.jsonl:5: invalid JSON (Expecting property name enclosed in double quotes: "
                             "column 13)", "raw": bad_json},
    ]
    assert "pairs.jsonl: skipped 2 bad line(s)" in caplog.text


def test_clean_read_creates_no_errors_file_and_removes_a_stale_one(tmp_path):
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line()])
    stale = tmp_path / "pairs.errors.jsonl"
    stale.write_text('{"line": 1, "error": "old", "raw": ""}\n')
    assert len(read_jsonl(src, on_error="skip")) == 1
    assert not stale.exists()


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='on_error must be "raise" or "skip"'):
        read_jsonl(tmp_path / "x.jsonl", on_error="ignore")
    with pytest.raises(ValueError, match='kind must be "pair", "pointwise" or None'):
        read_jsonl(tmp_path / "x.jsonl", kind="pairs")


# ---- paths ----

def test_media_paths_resolve_relative_to_the_jsonl_folder(tmp_path):
    abs_img = str(tmp_path / "elsewhere" / "abs.png")
    obj = dict(GENERATION_PAIR, media=[{"type": "image", "path": abs_img}])
    (tmp_path / "data").mkdir()
    src = _write_lines(tmp_path / "data" / "pairs.jsonl", [_pair_line(), json.dumps(obj)])
    first, second = read_jsonl(src)
    assert first.media[0].local_path() == tmp_path / "data" / "videos" / "x.mp4"
    assert first.media[0].cache_key() == str(tmp_path / "data" / "videos" / "x.mp4")
    assert second.media[0].local_path() == Path(abs_img)
    frames = second.a.media[0]
    assert frames.frame_paths() == [tmp_path / "data" / "f" / "0.png", tmp_path / "data" / "f" / "1.png"]
    assert frames.local_path() is None and frames.data() is None
    assert second.b.media[1].cache_key() == "https://x.org/v.mp4"
    assert second.b.media[0].cache_key() == "sha1:" + hashlib.sha1(b"\x89PNG fake").hexdigest()


def test_write_jsonl_elsewhere_keeps_media_pointing_at_the_same_files(tmp_path):
    (tmp_path / "data").mkdir()
    src = _write_lines(tmp_path / "data" / "pairs.jsonl", [json.dumps(GENERATION_PAIR), _pair_line()])
    records = read_jsonl(src)
    out = tmp_path / "out" / "deep" / "copy.jsonl"  # parents are created
    write_jsonl(out, records)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written[0]["a"]["media"][0]["frames"] == [
        os.path.join("..", "..", "data", "f", "0.png"), os.path.join("..", "..", "data", "f", "1.png")]
    assert written[1]["media"][0]["path"] == os.path.join("..", "..", "data", "videos", "x.mp4")
    again = read_jsonl(out)
    assert again[1].media[0].local_path() == tmp_path / "data" / "videos" / "x.mp4"
    assert again[0].a.media[0].frame_paths() == records[0].a.media[0].frame_paths()
    assert not (out.parent / "copy.jsonl.tmp").exists()


def test_records_built_in_code_keep_their_paths_and_are_validated_on_write(tmp_path):
    pair = PreferencePair(id="c1", prompt="p", a=Candidate(media=[MediaItem("image", path="gen/a.png")]),
                          b=Candidate("text"), label="B")
    out = tmp_path / "sub" / "o.jsonl"
    write_jsonl(out, [pair])
    assert json.loads(out.read_text())["a"]["media"] == [{"type": "image", "path": "gen/a.png"}]
    broken = PreferencePair(id="c2", prompt="p", a=Candidate("x"), b=Candidate("y"), label="maybe")
    with pytest.raises(RecordError) as err:
        write_jsonl(out, [pair, broken])
    assert str(err.value) == 'record 2 (id "c2"): label must be "A", "B" or "tie", got "maybe"'
    assert read_jsonl(out) == [pair]  # the failed write left the previous file intact


# ---- helpers ----

def test_swapped_exchanges_candidates_and_flips_labels():
    pair = parse_record(dict(RESPONSE_PAIR, margin=0.7, dimensions={"VQ": "A", "MQ": "tie", "TA": "B"}))
    flipped = pair.swapped()
    assert (flipped.a.text, flipped.b.text) == ("response B", "response A")
    assert flipped.label == "B"
    assert flipped.dimensions == {"VQ": "B", "MQ": "tie", "TA": "A"}
    assert flipped.margin == 0.7 and flipped.id == "p1" and flipped.media == pair.media
    assert flipped.swapped() == pair
    assert parse_record(dict(RESPONSE_PAIR, label="tie")).swapped().label == "tie"


def test_all_media_yields_shared_then_candidate_media():
    pair = parse_record(dict(GENERATION_PAIR, media=[{"type": "image", "path": "ctx.png"}]))
    assert [m.type for m in pair.all_media()] == ["image", "frames", "image", "video"]
    assert next(pair.all_media()).path == "ctx.png"
    assert [m.path for m in parse_record(POINTWISE).all_media()] == ["img/dog.png"]


def test_crlf_line_endings_and_a_byte_order_mark_are_accepted(tmp_path):
    src = tmp_path / "win.jsonl"
    src.write_bytes(("\ufeff" + _pair_line() + "\r\n\r\n" + _pair_line(id="p2") + "\r\n").encode("utf-8"))
    assert [r.id for r in read_jsonl(src)] == ["p1", "p2"]


# ---- hostile files: encodings, nesting, directories, duplicate ids ----

def test_trl_label_a_is_accepted_and_not_kept_in_meta():
    pair = parse_record({"id": "t", "prompt": "p", "chosen": "good", "rejected": "bad", "label": "A"})
    assert (pair.label, pair.a.text, pair.meta) == ("A", "good", {})


def test_skip_survives_invalid_utf8_and_deep_nesting_line_by_line(tmp_path):
    src = tmp_path / "pairs.jsonl"
    deep = "[" * 100000 + "]" * 100000
    broken = _pair_line(id="p2").encode()[:-2]  # the line up to its last "}}", then a Latin-1 byte
    src.write_bytes(b"\xef\xbb\xbf" + _pair_line().encode() + b"\n" + broken + b'\xff"}\n'
                    + deep.encode() + b"\n" + _pair_line(id="p4", prompt="caf\u00e9").encode() + b"\n")
    reason = f"invalid UTF-8 (byte 0xff at byte offset {len(broken)}); re-save the file as UTF-8"
    with pytest.raises(RecordError) as err:
        read_jsonl(src)
    assert str(err.value) == f"pairs.jsonl:2: {reason}"
    records = read_jsonl(src, on_error="skip")
    assert [r.id for r in records] == ["p1", "p4"] and records[1].prompt == "caf\u00e9"
    errors = [json.loads(line) for line in (tmp_path / "pairs.errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["error"].split(": ", 1)[1]) for e in errors] == [
        (2, reason), (3, "invalid JSON (nested too deeply)")]
    assert errors[0]["raw"].endswith('\\xff"}')  # the undecodable byte is shown escaped, not lost


def test_deep_but_parseable_meta_is_walked_without_recursion(tmp_path):
    deep = "[" * 900 + "]" * 900  # json parses it; the text check of meta must not overflow the stack on it
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line(id="p1", meta={"x": 1})[:-2] + f', "d": {deep}}}}}'])
    [pair] = read_jsonl(src)
    depth, value = 0, pair.meta["d"]
    while value:
        depth, value = depth + 1, value[0]
    assert pair.meta["x"] == 1 and depth == 899


def test_a_directory_or_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RecordError) as err:
        read_jsonl(tmp_path, on_error="skip")
    assert str(err.value) == f"{tmp_path}: is a directory, not a JSONL file; give the .jsonl file inside it"
    assert err.value.line is None
    with pytest.raises(RecordError, match=r"nope\.jsonl: no such file$"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_duplicate_ids_warn_naming_the_lines_or_are_errors(tmp_path, caplog):
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line(), _pair_line(id="p2"), _pair_line(),
                                                  _pair_line(id="p3"), _pair_line()])
    with caplog.at_level(logging.WARNING, logger="mmreward.data.schema"):
        assert [r.id for r in read_jsonl(src)] == ["p1", "p2", "p1", "p3", "p1"]
    assert 'pairs.jsonl: 1 id(s) used on more than one line: "p1" on lines 1, 3, 5' in caplog.text
    with pytest.raises(RecordError) as err:
        read_jsonl(src, on_duplicate_id="error")
    assert str(err.value) == ('pairs.jsonl:3: id "p1" is already used on line 1; ids must be unique '
                              "(scores and resumed runs are keyed by id)")
    assert [r.id for r in read_jsonl(src, on_duplicate_id="error", on_error="skip")] == ["p1", "p2", "p3"]
    lines = [json.loads(x)["line"] for x in (tmp_path / "pairs.errors.jsonl").read_text().splitlines()]
    assert lines == [3, 5]
    with pytest.raises(ValueError, match='on_duplicate_id must be "warn", "error" or "ignore"'):
        read_jsonl(src, on_duplicate_id="drop")


def test_on_bad_receives_bad_lines_instead_of_the_errors_file(tmp_path):
    src = _write_lines(tmp_path / "pairs.jsonl", [_pair_line(), _pair_line(id="p2", label="C")])
    bad = []
    records = list(iter_jsonl_numbered(src, on_error="skip", on_bad=lambda err, raw: bad.append((err.line, raw))))
    assert [(n, r.id) for n, r in records] == [(1, "p1")]
    assert bad == [(2, _pair_line(id="p2", label="C"))]
    assert not (tmp_path / "pairs.errors.jsonl").exists()
