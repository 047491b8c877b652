"""Tests for mmreward.data.sources: each converter on a few rows written in the dataset's published layout.

Rows follow /work/shared/BENCHMARKS.md §4-§5 (fixture rows, trimmed). Parquet files are written with pyarrow
and real image bytes from PIL; videos are empty placeholder files (converters only check that they exist).
"""

import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreward.data.schema import PointwiseRecord, read_jsonl, write_jsonl
from mmreward.data.sources import SOURCES, Skip, SourceSpec, json_safe, read_rows

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _image_bytes(color: str = "red", fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format=fmt)
    return buf.getvalue()


def _touch_image(path: Path, color: str = "blue") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path)


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def _run(converter: str, path: Path | str, media_dir: Path, name: str = "src", split: str = "train", **options):
    spec = SourceSpec(name=name, converter=converter, path=str(path), split=split, options=options)
    out = list(SOURCES[converter](spec, media_dir))
    records = [x for x in out if not isinstance(x, Skip)]
    skips = {x.row: x.reason for x in out if isinstance(x, Skip)}
    return records, skips


# ---- read_rows: layouts and errors ----

def test_read_rows_layouts(tmp_path):
    rows = [{"x": 1}, {"x": 2}]
    _write_jsonl(tmp_path / "a.jsonl", [rows[0], "", "{bad", "[1]", rows[1]])
    got = list(read_rows(SourceSpec("s", "jsonl", str(tmp_path / "a.jsonl"))))
    # Row ids are line numbers - 1; a blank line yields nothing, a bad line a Skip.
    assert got[0] == (0, {"x": 1}) and got[-1] == (4, {"x": 2})
    assert got[1] == (2, Skip(2, "invalid JSON (Expecting property name enclosed in double quotes: column 2)"))
    assert got[2] == (3, Skip(3, "expected a JSON object, got list"))

    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.csv").write_text("x,y\n1,2\n3,4,5\n")
    (tmp_path / "lines.json").write_text('{"x": 1}\n{"x": 2}\n')  # JSON lines named .json
    assert [r for _, r in read_rows(SourceSpec("s", "jsonl", str(tmp_path / "b.json")))] == rows
    assert [r for _, r in read_rows(SourceSpec("s", "jsonl", str(tmp_path / "lines.json")))] == rows
    csv_rows = list(read_rows(SourceSpec("s", "jsonl", str(tmp_path / "c.csv"))))
    assert csv_rows == [(0, {"x": "1", "y": "2"}), (1, Skip(1, "the row has more fields than the header"))]


def test_read_rows_parquet_repo_layouts_and_split(tmp_path):
    repo = tmp_path / "repo"
    _write_parquet(repo / "data" / "train-00000-of-00002.parquet", [{"x": 0}, {"x": 1}])
    _write_parquet(repo / "data" / "train-00001-of-00002.parquet", [{"x": 2}])
    _write_parquet(repo / "data" / "test-00000-of-00001.parquet", [{"x": 9}])
    assert list(read_rows(SourceSpec("s", "jsonl", str(repo)))) == [(0, {"x": 0}), (1, {"x": 1}), (2, {"x": 2})]
    assert list(read_rows(SourceSpec("s", "jsonl", str(repo), split="test"))) == [(0, {"x": 9})]
    with pytest.raises(FileNotFoundError, match="no parquet shards for split 'validation'; found splits test, train"):
        read_rows(SourceSpec("s", "jsonl", str(repo), split="validation"))
    # <split>/ sub-folders, and un-named shards at the top (RLAIF-V's "RLAIF-V-Dataset_000.parquet").
    _write_parquet(tmp_path / "r2" / "test" / "part.parquet", [{"x": 5}])
    assert list(read_rows(SourceSpec("s", "jsonl", str(tmp_path / "r2"), split="test"))) == [(0, {"x": 5})]
    _write_parquet(tmp_path / "r3" / "RLAIF-V-Dataset_000.parquet", [{"x": 7}])
    assert list(read_rows(SourceSpec("s", "jsonl", str(tmp_path / "r3")))) == [(0, {"x": 7})]


def test_read_rows_save_to_disk_keeps_image_bytes(tmp_path):
    import datasets

    data = _image_bytes()
    ds = datasets.Dataset.from_dict({"x": [1], "image": [{"bytes": data, "path": None}]})
    datasets.DatasetDict({"train": ds.cast_column("image", datasets.Image())}).save_to_disk(str(tmp_path / "dd"))
    assert list(read_rows(SourceSpec("s", "jsonl", str(tmp_path / "dd")))) == [
        (0, {"x": 1, "image": {"bytes": data, "path": None}})]
    with pytest.raises(KeyError, match="no split 'test'; it has train"):
        read_rows(SourceSpec("s", "jsonl", str(tmp_path / "dd"), split="test"))


def test_read_rows_errors_say_what_was_expected(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download --repo-type dataset openbmb/RLAIF-V"):
        list(SOURCES["rlaif_v"](SourceSpec("r", "rlaif_v", str(tmp_path / "missing.parquet")), tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no dataset found. Expected a file matching dpo_pairs.jsonl"):
        SOURCES["mm_rlhf"](SourceSpec("m", "mm_rlhf", str(tmp_path / "empty")), tmp_path)
    (tmp_path / "two").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "two" / name).write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"several table files \(a.json, b.json\)"):
        read_rows(SourceSpec("s", "povid", str(tmp_path / "two")))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        read_rows(SourceSpec("s", "jsonl", str(tmp_path / "x.txt")))
    with pytest.raises(ValueError, match="unknown option"):
        SOURCES["povid"](SourceSpec("p", "povid", str(tmp_path), options={"imgae_root": "x"}), tmp_path)

    # A hub id that is not a local path goes to datasets.load_dataset; a failure names the download command.
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="not a local path.*offline.*huggingface-cli"):
        SOURCES["rlaif_v"](SourceSpec("r", "rlaif_v", "openbmb/RLAIF-V-Dataset"), tmp_path)


# ---- RLAIF-V ----

RLAIF_SCHEMA = pa.schema([("image", IMAGE_STRUCT)] + [(k, pa.string()) for k in (
    "ds_name", "question", "chosen", "rejected", "origin_dataset", "origin_split", "idx", "image_path")])


def _rlaif_row(idx: str, image: bytes, chosen: str = "A kitchen counter with a sink.",
               rejected: str = "A clean kitchen with a gas cooktop.") -> dict:
    return {"ds_name": "RLAIF-V", "image": {"bytes": image, "path": None},
            "question": "Convey the specifics of the image with meticulous attention to detail.",
            "chosen": chosen, "rejected": rejected, "origin_dataset": "COCO",
            "origin_split": '{"model": "OmniLMM-12B", "type": "detailed_description"}', "idx": idx,
            "image_path": f"coco/{idx}.jpg"}


def test_rlaif_v_parquet_shards(tmp_path):
    repo, media = tmp_path / "RLAIF-V-Dataset", tmp_path / "media"
    jpeg, png = _image_bytes("red"), _image_bytes("green", "PNG")
    _write_parquet(repo / "RLAIF-V-Dataset_000.parquet",
                   [_rlaif_row("14", jpeg), _rlaif_row("15", b"not an image")], RLAIF_SCHEMA)
    _write_parquet(repo / "RLAIF-V-Dataset_001.parquet",
                   [_rlaif_row("16", png), _rlaif_row("17", jpeg, rejected="A kitchen counter with a sink."),
                    _rlaif_row("18", jpeg, rejected="  ")], RLAIF_SCHEMA)
    records, skips = _run("rlaif_v", repo, media, name="rlaif")
    assert [r.id for r in records] == ["14", "16"]
    first = records[0]
    assert first.prompt == "Convey the specifics of the image with meticulous attention to detail."
    assert (first.a.text, first.b.text, first.label) == ("A kitchen counter with a sink.",
                                                           "A clean kitchen with a gas cooktop.", "A")
    assert first.meta == {"ds_name": "RLAIF-V", "origin_dataset": "COCO", "idx": "14", "image_path": "coco/14.jpg",
                          "origin_split": '{"model": "OmniLMM-12B", "type": "detailed_description"}'}
    # Image bytes are written as media/<source>/<row>.<ext>, the extension from the header.
    assert [(m.type, m.path) for m in first.media] == [("image", "rlaif/0.jpg")]
    assert first.media[0].local_path().read_bytes() == jpeg and records[1].media[0].local_path().is_file()
    assert records[1].media[0].path == "rlaif/2.png"
    assert skips[1].startswith("unreadable image bytes (UnidentifiedImageError")
    assert skips == {1: skips[1], 3: "the two candidates are identical (chosen == rejected)",
                     4: "field 'rejected' is empty"}


def test_rlaif_v_trl_format(tmp_path):
    user = [{"role": "user", "content": [{"type": "image", "text": None},
                                         {"type": "text", "text": "What is on the plate?"}]}]
    def row(answer_a, answer_b, image):
        return {"images": [{"bytes": image, "path": None}], "prompt": user,
                "chosen": [{"role": "assistant", "content": [{"type": "text", "text": answer_a}]}],
                "rejected": [{"role": "assistant", "content": [{"type": "text", "text": answer_b}]}]}
    jpeg = _image_bytes()
    _write_parquet(tmp_path / "rlaif-v" / "data" / "train-00000-of-00001.parquet",
                   [row("A slice of cake.", "A bowl of soup.", jpeg), row("x", "y", b"\x00\x01")])
    _write_parquet(tmp_path / "rlaif-v" / "data" / "test-00000-of-00001.parquet", [row("t", "u", jpeg)])
    [pair], skips = _run("rlaif_v", tmp_path / "rlaif-v", tmp_path / "media", name="trl")
    assert (pair.id, pair.prompt, pair.a.text, pair.b.text, pair.label) == (
        "0", "What is on the plate?", "A slice of cake.", "A bowl of soup.", "A")
    assert pair.media[0].path == "trl/0.jpg" and pair.media[0].local_path().read_bytes() == jpeg
    assert list(skips) == [1] and skips[1].startswith("unreadable image bytes")


# ---- MM-RLHF ----

def test_mm_rlhf_images_frame_folders_and_ties(tmp_path):
    root = tmp_path / "MM-RLHF"
    _touch_image(root / "mcq" / "073712.png")
    for name in ("frame_10.jpg", "frame_2.jpg", "frame_1.jpg"):
        _touch_image(root / "video" / "-77dfCjTbSc" / name)
    (root / "video" / "-77dfCjTbSc" / "notes.txt").write_text("not a frame")
    base = {"prompt": "What is the view captured in the subsequent frames?", "chosen": "A jungle path.",
            "rejected": "Ancient ruins.", "chosen_reason": "detailed", "rejected_reason": "not detailed"}
    _write_jsonl(root / "dpo_pairs.jsonl", [
        {**base, "id": "073712_6205145", "image": "mcq/073712.png"},
        {**base, "id": "-77dfCjTbSc_2_94421", "video": "video/-77dfCjTbSc", "is_tie": True, "ls_factor": 0.3},
        {**base, "id": "missing", "image": "mcq/nope.png"},
        {**base, "id": "no_media"},
        {**base, "id": "073712_6205145", "image": "mcq/073712.png", "chosen": None},
        {**base, "id": "073712_6205145", "image": "mcq/073712.png", "chosen": "Another answer."},
    ])
    (image_pair, video_pair, dup), skips = _run("mm_rlhf", root, tmp_path / "media", name="mm")
    assert (image_pair.id, image_pair.label, image_pair.media[0].type) == ("073712_6205145", "A", "image")
    assert image_pair.media[0].local_path() == root / "mcq" / "073712.png"
    assert image_pair.meta == {"chosen_reason": "detailed", "rejected_reason": "not detailed"}
    assert (video_pair.label, video_pair.meta["ls_factor"]) == ("tie", 0.3)
    # A video is its folder of frames, in natural order, as paths relative to the dataset folder.
    assert video_pair.media[0].type == "frames" and all(p.is_file() for p in video_pair.media[0].frame_paths())
    assert video_pair.media[0].frames == [f"video/-77dfCjTbSc/frame_{i}.jpg" for i in (1, 2, 10)]
    assert dup.id == "073712_6205145-5"  # a repeated dataset id gets the row appended
    assert skips == {2: f"media file not found: {root / 'mcq' / 'nope.png'}",
                     3: "missing field 'image' or 'video'", 4: "missing field 'chosen'"}
    # check_media=False keeps rows whose media is not there (yet).
    records, skips = _run("mm_rlhf", root / "dpo_pairs.jsonl", tmp_path / "media", check_media=False)
    assert len(records) == 4 and set(skips) == {3, 4}


# ---- VLFeedback ----

def _completion(model: str, h: str, e: str, f: str) -> dict:
    def aspect(rating):
        return {"Rating": rating, "Rationale": "…"}
    return {"annotations": {"Helpfulness": aspect(h), "Ethical Considerations": aspect(e),
                            "Visual Faithfulness": aspect(f)}, "model": model, "response": f"answer of {model}"}


VLF_ROW = {
    "id": "svit-conversation-2", "prompt": "What is the man holding?",
    "models": ["gpt-4v", "llava", "qwen", "fuyu"], "img_path": "merged_images/svit-2.jpg",
    # averages: 14/3, (3+2)/2 (ethics N/A), 13/3, 7/3
    "completions": [_completion("gpt-4v", "5", "5", "4"), _completion("llava", "3", "N/A", "2"),
                    _completion("qwen", "4", "5", "4"), _completion("fuyu", "1", "5", "1")],
}


def test_vlfeedback_best_worst_and_all(tmp_path):
    root = tmp_path / "VLFeedback"
    _touch_image(root / "merged_images" / "svit-2.jpg")
    bad = {**VLF_ROW, "id": "bad", "completions": [_completion("m", "seven", "5", "5"), *VLF_ROW["completions"][1:]]}
    flat = {**VLF_ROW, "id": "flat", "completions": [_completion("m", "3", "3", "3"), _completion("n", "3", "3", "3")]}
    _write_jsonl(root / "vlfeedback_80k.jsonl", [VLF_ROW, bad, flat])

    [pair], skips = _run("vlfeedback", root, tmp_path / "m", name="vlf")
    assert (pair.id, pair.label, pair.prompt) == ("svit-conversation-2-0-3", "A", "What is the man holding?")
    assert (pair.a.text, pair.b.text) == ("answer of gpt-4v", "answer of fuyu")
    assert pair.dimensions == {"helpfulness": "A", "ethics": "tie", "faithfulness": "A"}
    assert pair.margin == pytest.approx(14 / 3 - 7 / 3)
    assert pair.meta == {"model_a": "gpt-4v", "model_b": "fuyu",
                         "ratings_a": {"helpfulness": 5.0, "ethics": 5.0, "faithfulness": 4.0},
                         "ratings_b": {"helpfulness": 1.0, "ethics": 5.0, "faithfulness": 1.0}}
    assert pair.media[0].local_path() == root / "merged_images" / "svit-2.jpg"
    assert skips == {1: "completions[0] Helpfulness rating is not 1-5 or N/A: 'seven'",
                     2: "no two completions with different average ratings"}

    records, _ = _run("vlfeedback", root, tmp_path / "m", name="vlf", pairs="all")
    got = {r.id.removeprefix("svit-conversation-2-"): (r.dimensions, round(r.margin, 4)) for r in records}
    assert got == {
        "0-1": ({"helpfulness": "A", "faithfulness": "A"}, round(14 / 3 - 2.5, 4)),
        "0-2": ({"helpfulness": "A", "ethics": "tie", "faithfulness": "tie"}, round(1 / 3, 4)),
        "0-3": ({"helpfulness": "A", "ethics": "tie", "faithfulness": "A"}, round(7 / 3, 4)),
        "2-1": ({"helpfulness": "A", "faithfulness": "A"}, round(13 / 3 - 2.5, 4)),
        "1-3": ({"helpfulness": "A", "faithfulness": "A"}, round(2.5 - 7 / 3, 4)),
        "2-3": ({"helpfulness": "A", "ethics": "tie", "faithfulness": "A"}, 2.0),
    }
    with pytest.raises(ValueError, match='options.pairs must be "best_worst" or "all"'):
        _run("vlfeedback", root, tmp_path / "m", pairs="top2")


# ---- POVID ----

def _povid_row(image: str, question: str = "<image>\nDescribe this image in detail.") -> dict:
    return {"id": "COCO_train2014_000000353952", "image": image,
            "conversations": [{"from": "human", "value": "<image>\nDescribe this image in detail."},
                              {"from": "gpt", "value": "A vintage black and white image of eleven people."}],
            "rejected_conversations": [{"from": "human", "value": question},
                                       {"from": "gpt", "value": "A vintage image, all wearing riding boots."}]}


def test_povid_image_root_and_prompt(tmp_path):
    data = tmp_path / "povid" / "POVID_preference_data_for_VLLMs.json"
    data.parent.mkdir()
    data.write_text(json.dumps([_povid_row("./data/coco/COCO_train2014_000000353952.jpg"),
                                _povid_row("./data/coco/COCO_train2014_000000353952.jpg", "<image>\nOther?")]))
    coco = tmp_path / "train2014"
    _touch_image(coco / "COCO_train2014_000000353952.jpg")
    [pair], skips = _run("povid", data, tmp_path / "m", name="povid", image_root=str(coco))
    assert (pair.id, pair.prompt, pair.label) == ("COCO_train2014_000000353952",
                                                  "Describe this image in detail.", "A")
    assert (pair.a.text, pair.b.text) == ("A vintage black and white image of eleven people.",
                                          "A vintage image, all wearing riding boots.")
    # "./data/coco/X.jpg" is not under the flat image_root, X.jpg is.
    assert pair.media[0].local_path() == coco / "COCO_train2014_000000353952.jpg"
    assert skips == {1: "conversations and rejected_conversations ask different questions"}
    # Default image root: the JSON file's folder, where the README's relative path resolves.
    _touch_image(data.parent / "data" / "coco" / "COCO_train2014_000000353952.jpg")
    [pair], _ = _run("povid", data, tmp_path / "m")
    assert pair.media[0].path == "data/coco/COCO_train2014_000000353952.jpg" and pair.media[0].local_path().is_file()


# ---- Skywork ----

def test_skywork_preference_turns(tmp_path):
    def msgs(*pairs):
        return [{"content": c, "role": r} for r, c in pairs]
    messages = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
    schema = pa.schema([("chosen", messages), ("rejected", messages), ("source", pa.string())])
    context = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "2+2?")]
    _write_parquet(tmp_path / "sky" / "data" / "train-00000-of-00001.parquet", [
        {"chosen": msgs(("user", "Capital of France?"), ("assistant", "Paris.")),
         "rejected": msgs(("user", "Capital of France?"), ("assistant", "Lyon.")), "source": "magpie_ultra"},
        {"chosen": msgs(*context, ("assistant", "4")), "rejected": msgs(*context, ("assistant", "5")),
         "source": "helpsteer2"},
        {"chosen": msgs(("user", "a"), ("assistant", "b")), "rejected": msgs(("user", "c"), ("assistant", "d")),
         "source": "x"},
        {"chosen": msgs(("user", "a"), ("assistant", "")), "rejected": msgs(("user", "a"), ("assistant", "d")),
         "source": "x"},
    ], schema)
    (single, multi), skips = _run("skywork_preference", tmp_path / "sky", tmp_path / "m", name="sky")
    assert (single.id, single.prompt, single.system, single.a.text, single.b.text, single.media) == (
        "0", "Capital of France?", None, "Paris.", "Lyon.", [])
    assert single.meta == {"source": "magpie_ultra"}
    assert (multi.prompt, multi.system, multi.a.text, multi.b.text) == ("2+2?", "Be brief.", "4", "5")
    assert multi.meta == {"source": "helpsteer2", "context": [{"role": "user", "content": "Hi"},
                                                              {"role": "assistant", "content": "Hello!"}]}
    assert skips == {2: "chosen and rejected differ before the last message",
                     3: "the last message of 'chosen' is not a non-empty assistant message"}


# ---- generic JSONL ----

def test_jsonl_records_and_trl_rows(tmp_path):
    _touch_image(tmp_path / "d" / "img" / "cat.png")
    canonical = {"id": "p1", "prompt": "a cat", "media": [{"type": "image", "path": "img/cat.png"}],
                 "a": {"text": "yes"}, "b": {"text": "no"}, "label": "B", "dimensions": {"TA": "B"}}
    trl = {"prompt": "Is it a cat?", "chosen": "Yes.", "rejected": "No.", "images": ["img/cat.png"]}
    _write_jsonl(tmp_path / "d" / "pairs.jsonl", [
        canonical, trl, {**canonical, "label": "C"}, "not json",
        {"id": "s1", "prompt": "a cat", "scores": {"TA": 3}},
    ])
    (pair, trl_pair, point), skips = _run("jsonl", tmp_path / "d" / "pairs.jsonl", tmp_path / "m", name="own")
    assert (pair.id, pair.label, pair.dimensions) == ("p1", "B", {"TA": "B"})
    assert pair.media[0].local_path() == tmp_path / "d" / "img" / "cat.png"
    assert (trl_pair.id, trl_pair.prompt, trl_pair.a.text, trl_pair.label) == ("1", "Is it a cat?", "Yes.", "A")
    assert trl_pair.media[0].local_path() == tmp_path / "d" / "img" / "cat.png"
    assert isinstance(point, PointwiseRecord) and (point.id, point.scores) == ("s1", {"TA": 3.0})
    assert skips == {2: 'label must be "A", "B" or "tie", got "C"',
                     3: "invalid JSON (Expecting value: column 1)"}


# ---- Pick-a-Pic v2 ----

def _pick_row(uid0: str, uid1: str, label_0: float, label_1: float, jpg_0: bytes, jpg_1: bytes, **kw) -> dict:
    row = {"are_different": True, "best_image_uid": uid0 if label_0 == 1 else uid1 if label_1 == 1 else "",
           "caption": "Sunset reflecting on a crystal ball", "created_at": datetime(2023, 4, 28, 12, 30),
           "has_label": True, "image_0_uid": uid0, "image_0_url": f"https://x/{uid0}.png", "image_1_uid": uid1,
           "image_1_url": f"https://x/{uid1}.png", "jpg_0": jpg_0, "jpg_1": jpg_1, "label_0": label_0,
           "label_1": label_1, "model_0": "sdxl", "model_1": "sd2.1", "ranking_id": 7, "user_id": 42,
           "num_example_per_prompt": 1}
    return {**row, **kw}


def test_pickapic_v2_labels_image_files_and_round_trip(tmp_path):
    j0, j1 = _image_bytes("red"), _image_bytes("blue")
    _write_parquet(tmp_path / "pap" / "data" / "train-00000-of-00001.parquet", [
        _pick_row("u0", "u1", 1.0, 0.0, j0, j1), _pick_row("u0", "u2", 0.5, 0.5, j0, j1),
        _pick_row("u3", "u1", 0.0, 1.0, j0, j1), _pick_row("u4", "u5", 0.0, 0.0, j0, j1, has_label=False),
        _pick_row("u6", "u7", 1.0, 0.0, j0, j0, are_different=False), _pick_row("u8", "u9", 1.0, 0.0, b"bad", j1)])
    records, skips = _run("pickapic_v2", tmp_path / "pap", tmp_path / "media", name="pick")
    assert [(r.id, r.label) for r in records] == [("0", "A"), ("1", "tie"), ("2", "B")]
    first = records[0]
    assert first.prompt == "Sunset reflecting on a crystal ball" and first.media == []
    assert [first.a.media[0].path, first.b.media[0].path] == ["pick/u0.jpg", "pick/u1.jpg"]
    assert first.a.media[0].local_path().read_bytes() == j0 and first.b.media[0].local_path().read_bytes() == j1
    assert first.meta["created_at"] == "2023-04-28T12:30:00" and first.meta["model_0"] == "sdxl"
    assert records[2].a.media[0].path == "pick/u3.jpg"
    assert skips == {3: "no preference label (has_label is false or label_0 / label_1 missing)",
                     4: "are_different is false: the two images are the same", 5: skips[5]}
    assert skips[5].startswith("unreadable image bytes")
    # Written to JSONL elsewhere, the records still reach the image files.
    write_jsonl(tmp_path / "out" / "pairs.jsonl", records)
    back = read_jsonl(tmp_path / "out" / "pairs.jsonl")[0]
    assert back.a.media[0].path == "../media/pick/u0.jpg" and back.a.media[0].local_path().read_bytes() == j0
    assert json_safe({"t": datetime(2024, 1, 2), "n": float("nan"), "b": b"xy"}) == {
        "t": "2024-01-02T00:00:00", "n": None, "b": "<2 bytes>"}


# ---- HPDv2 ----

def test_hpdv2_train_json(tmp_path):
    root = tmp_path / "HPDv2"
    for n in range(1, 5):
        _touch_image(root / "train" / f"0000{n}.jpg")
    rows = [
        {"human_preference": [1, 0], "prompt": "a cozy cabin", "file_path": ["train/00001.jpg", "train/00002.jpg"],
         "user_hash": "abc"},
        {"human_preference": [0, 1], "prompt": "a fox", "file_path": ["00003.jpg", "00004.jpg"]},  # under train/
        {"human_preference": [1, 1], "prompt": "x", "file_path": ["train/00001.jpg", "train/00002.jpg"]},
        {"human_preference": [1, 0], "prompt": "x", "file_path": ["train/00001.jpg", "train/99999.jpg"]},
        {"prompt": "x", "image_path": ["train/00001.jpg"], "rank": [1]},
    ]
    (root / "train.json").write_text(json.dumps(rows))
    (first, second), skips = _run("hpdv2", root, tmp_path / "m", name="hpd")
    assert (first.id, first.prompt, first.label, first.meta) == ("0", "a cozy cabin", "A", {"user_hash": "abc"})
    assert [first.a.media[0].path, first.b.media[0].path] == ["train/00001.jpg", "train/00002.jpg"]
    assert second.label == "B" and second.b.media[0].local_path() == root / "train" / "00004.jpg"
    assert skips == {2: "human_preference must be [1, 0] or [0, 1], got [1, 1]",
                     3: f"media file not found: {root / 'train' / '99999.jpg'}",
                     4: "missing field 'human_preference' (HPDv2 test rows hold rankings, not pairs)"}


# ---- VideoAlign CSV ----

VIDEOALIGN_CSV = """\
path_A,path_B,prompt,VQ,MQ,TA,fps_A,num_frames_A,fps_B,num_frames_B
videos/example_1_A.mp4,./videos/example_1_B.mp4,"The camera remains still, a girl with braided hair and wearing a pink dress approached the chair in the room and sat on it, the background is a cozy bedroom, warm indoor lighting.",B,B,A,24.0,126.0,30.0,152.0
videos/example_2_A.mp4,./videos/example_2_B.mp4,"The camera follows a young explorer through an abandoned urban building at night, exploring hidden corridors and forgotten spaces, with a mix of light and shadow creating a mysterious atmosphere.",same,same,A,24.0,144.0,24.0,128.0
videos/example_3_A.mp4,./videos/example_3_B.mp4,"A first-person view of an astronaut running across the surface of the moon, the low-angle shot showcasing the vast lunar landscape and the smooth, light movements.",A,same,same,24.0,128.0,16.0,60.0
videos/example_1_A.mp4,./videos/example_1_B.mp4,bad label,C,B,A,24.0,126.0,30.0,152.0
"""


def test_videoalign_csv_example(tmp_path):
    root = tmp_path / "train"
    (root / "videos").mkdir(parents=True)
    for name in (f"example_{i}_{side}.mp4" for i in (1, 2, 3) for side in "AB"):
        (root / "videos" / name).write_bytes(b"")  # converters only check that videos exist
    (root / "example.csv").write_text(VIDEOALIGN_CSV)
    records, skips = _run("videoalign_csv", root / "example.csv", tmp_path / "m", name="va")
    assert [(r.id, r.label, r.dimensions) for r in records] == [
        ("0", "B", {"VQ": "B", "MQ": "B", "TA": "A"}), ("1", "tie", {"VQ": "tie", "MQ": "tie", "TA": "A"}),
        ("2", "tie", {"VQ": "A", "MQ": "tie", "TA": "tie"})]
    first = records[0]
    assert first.prompt.startswith("The camera remains still, a girl with braided hair")
    assert (first.a.media[0].type, first.a.media[0].path, first.b.media[0].path) == (
        "video", "videos/example_1_A.mp4", "videos/example_1_B.mp4")
    assert [first.a.media[0].meta, first.b.media[0].meta] == [{"fps": 24.0, "num_frames": 126},
                                                              {"fps": 30.0, "num_frames": 152}]
    assert first.b.media[0].local_path() == root / "videos" / "example_1_B.mp4"
    assert first.meta == {"overall_from": "majority"}
    assert skips == {3: "VQ must be A, B or same, got 'C'"}

    # The eval CSV's Overall column, when present, is the label.
    header, *lines = VIDEOALIGN_CSV.splitlines()[:2]
    (root / "eval.csv").write_text(f"{header},A_model,B_model,Overall\n{lines[0]},kling,sora,A\n")
    [pair], _ = _run("videoalign_csv", root / "eval.csv", tmp_path / "m")
    assert (pair.label, pair.meta) == ("A", {"A_model": "kling", "B_model": "sora", "overall_from": "Overall"})


# ---- VideoFeedback ----

def _vf_row(vid: str, frames: list[str], **scores) -> dict:
    row = {"id": vid, "images": frames, "text prompt": "a dog running on grass",
           "video link": f"https://huggingface.co/datasets/TIGER-Lab/VideoFeedback/resolve/main/{vid}.mp4",
           "visual quality": 3, "temporal consistency": 2, "dynamic degree": 4, "text-to-video alignment": 3,
           "factual consistency": 1, "conversations": [{"from": "human", "value": "…"}, {"from": "gpt", "value": "…"}]}
    return {**row, **scores}


def test_videofeedback_pointwise_scores(tmp_path):
    repo = tmp_path / "VideoFeedback"
    frames = [f"frames_annotated/v1/{i}.jpg" for i in range(3)]
    for frame in frames:
        _touch_image(repo / frame)
    _write_parquet(repo / "annotated" / "train-00000-of-00001.parquet", [
        _vf_row("v1", frames), _vf_row("v2", ["frames_annotated/v2/0.jpg"]),
        _vf_row("v3", frames, **{k: None for k in ("visual quality", "temporal consistency", "dynamic degree",
                                                    "text-to-video alignment", "factual consistency")}),
        _vf_row("v4", frames, **{"factual consistency": None})])
    _write_parquet(repo / "annotated" / "test-00000-of-00001.parquet", [_vf_row("t1", frames)])
    (record, partial_scores), skips = _run("videofeedback", repo, tmp_path / "m", name="vf")
    assert isinstance(record, PointwiseRecord) and (record.id, record.prompt) == ("v1", "a dog running on grass")
    assert record.scores == {"visual_quality": 3.0, "temporal_consistency": 2.0, "dynamic_degree": 4.0,
                             "text_to_video_alignment": 3.0, "factual_consistency": 1.0}
    assert record.media[0].frames == frames and all(p.is_file() for p in record.media[0].frame_paths())
    assert skips == {1: f"media file not found: {repo / 'frames_annotated' / 'v2' / '0.jpg'}",
                     2: "no scores (expected columns visual quality, temporal consistency, dynamic degree, "
                        "text-to-video alignment, factual consistency)"}
    # A null score is left out rather than guessed.
    assert partial_scores.id == "v4" and "factual_consistency" not in partial_scores.scores

    records, _ = _run("videofeedback", repo, tmp_path / "m", name="vf", use_video_link=True)
    assert [r.media[0].url for r in records][:2] == [
        "https://huggingface.co/datasets/TIGER-Lab/VideoFeedback/resolve/main/v1.mp4",
        "https://huggingface.co/datasets/TIGER-Lab/VideoFeedback/resolve/main/v2.mp4"]
    records, _ = _run("videofeedback", repo, tmp_path / "m", split="test")
    assert [r.id for r in records] == ["t1"]


def test_converter_modules_import_alone_and_stay_light():
    """Importing a converter module first is no import cycle with the sources package, and loads no datasets/PIL."""
    code = ("import sys, mmreward.data.sources.generation, mmreward.data.sources.response\n"
            "print(sorted({'datasets', 'PIL', 'pyarrow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
