"""Tests for mmreward.evaluation.benchmarks.video: each loader on a few rows in its published layout.

Rows follow /work/shared/BENCHMARKS.md §2.4-§2.6 and §5.4, §5.5, §5.7: prompts, paths, hashes and labels are
verbatim where §5 gives them; model names, fps and the extra rows are made up to cover every label. Videos are
copies of one 8-frame 32x32 mp4 (the loaders only check that the files exist).
"""

import io
import json
import logging
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreward.evaluation.benchmarks import BENCHMARKS, load_benchmark
from mmreward.evaluation.benchmarks.video import (
    load_genai_bench_edit,
    load_genai_bench_image,
    load_genai_bench_video,
    load_mjbench_video,
    load_videogen_rewardbench,
)

LOG = "mmreward.evaluation.benchmarks"
COMMIT = "89761f4" + "a" * 33


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    from mmreward.data.synthetic import write_index_video

    return write_index_video(tmp_path_factory.mktemp("mp4") / "tiny.mp4", 8, fps=8, height=32, width=32)


def _videos(mp4: Path, root: Path, names) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mp4, root / name)


# ---- VideoGen-RewardBench ----

# Row 0 is the dataset card's example (its TA / Overall / fps values are not in the excerpt); rows 1-3 are the
# VideoAlign example.csv rows of §5.4 with the eval CSV's A_model, B_model and Overall added.
VIDEOGEN_CSV = """\
path_A,path_B,A_model,B_model,prompt,VQ,MQ,TA,Overall,fps_A,num_frames_A,fps_B,num_frames_B
videos/kling1.5/kling1.5_00103.mp4,videos/minimax/minimax_00103.mp4,kling1.5,minimax,"Static camera, a metal ball rolls on a smooth tabletop.",A,A,same,A,30.0,153.0,25.0,141.0
videos/example_1_A.mp4,./videos/example_1_B.mp4,kling1.5,hunyuan,"The camera remains still, a girl with braided hair and wearing a pink dress approached the chair in the room and sat on it, the background is a cozy bedroom, warm indoor lighting.",B,B,A,B,24.0,126.0,30.0,152.0
videos/example_2_A.mp4,./videos/example_2_B.mp4,gen3,pika,"The camera follows a young explorer through an abandoned urban building at night, exploring hidden corridors and forgotten spaces, with a mix of light and shadow creating a mysterious atmosphere.",same,same,A,same,24.0,144.0,24.0,128.0
videos/example_3_A.mp4,./videos/example_3_B.mp4,sora,luma,"A first-person view of an astronaut running across the surface of the moon, the low-angle shot showcasing the vast lunar landscape and the smooth, light movements.",A,same,same,A,24.0,128.0,16.0,60.0
"""
VIDEOGEN_VIDEOS = ["videos/kling1.5/kling1.5_00103.mp4", "videos/minimax/minimax_00103.mp4",
                   *(f"videos/example_{i}_{s}.mp4" for i in (1, 2, 3) for s in "AB")]


def _videogen(tmp_path: Path, mp4: Path, csv: str = VIDEOGEN_CSV) -> Path:
    root = tmp_path / "VideoGen-RewardBench"
    root.mkdir()
    (root / "videogen-rewardbench.csv").write_text(csv, encoding="utf-8")
    _videos(mp4, root, VIDEOGEN_VIDEOS)
    return root


def test_videogen_rewardbench_pairs(tmp_path, mp4, caplog):
    root = _videogen(tmp_path, mp4)
    with caplog.at_level(logging.WARNING, logger=LOG):
        data = load_videogen_rewardbench(root, {})
    assert (data.name, data.kind, data.expected_size) == ("videogen_rewardbench", "pairs", None)
    assert [(r.id, r.label, r.dimensions) for r in data.records] == [
        ("0", "A", {"VQ": "A", "MQ": "A", "TA": "tie"}),
        ("1", "B", {"VQ": "B", "MQ": "B", "TA": "A"}),
        ("2", "tie", {"VQ": "tie", "MQ": "tie", "TA": "A"}),
        ("3", "A", {"VQ": "A", "MQ": "tie", "TA": "tie"})]
    first, second = data.records[:2]
    assert first.prompt == "Static camera, a metal ball rolls on a smooth tabletop."
    assert first.meta == {"model_a": "kling1.5", "model_b": "minimax",
                          "human": {"Overall": "A", "VQ": "A", "MQ": "A", "TA": "tie"}}
    assert (first.a.media[0].type, first.a.media[0].path, first.a.media[0].meta) == (
        "video", "videos/kling1.5/kling1.5_00103.mp4", {"fps": 30.0, "num_frames": 153})
    assert first.b.media[0].meta == {"fps": 25.0, "num_frames": 141}
    assert second.b.media[0].local_path() == root / "videos" / "example_1_B.mp4"  # "./videos/..." normalised
    assert first.media == [] and "category" not in first.meta
    assert data.revision.startswith("sha1:") and len(data.revision) == 17
    assert data.info == {"file": "videogen-rewardbench.csv", "labels": {"A": 2, "B": 1, "tie": 1}}
    assert [r.meta["human"]["Overall"] for r in data.records] == ["A", "B", "tie", "A"]
    assert any("about 26.5k" in m for m in caplog.messages)
    # Through the registry, from the CSV path itself.
    assert load_benchmark("videogen_rewardbench", root / "videogen-rewardbench.csv").records == data.records


def test_videogen_rewardbench_keeps_rows_with_empty_label_cells(tmp_path, mp4):
    # Upstream reads the CSV with pandas: an empty cell is NaN and the row stays (calc_accuracy counts it as
    # a decided pair the model never gets right); only that dimension is affected.
    header, *rows = VIDEOGEN_CSV.splitlines()
    rows[1] = rows[1].replace(",B,B,A,B,24.0", ",B,,A,B,24.0")  # MQ empty
    rows[3] = rows[3].replace(",A,same,same,A,24.0", ",A,same,same,,24.0")  # Overall empty
    root = _videogen(tmp_path, mp4, "\n".join([header, *rows]) + "\n")
    data = load_videogen_rewardbench(root, {})
    assert [r.id for r in data.records] == ["0", "1", "2", "3"]
    second, last = data.records[1], data.records[3]
    assert second.meta["human"] == {"Overall": "B", "VQ": "B", "MQ": None, "TA": "A"}
    assert second.dimensions == {"VQ": "B", "TA": "A"} and second.label == "B"
    assert last.meta["human"]["Overall"] is None and last.label == "tie"  # placeholder; metrics read human
    assert data.info["empty_label_cells"] == {"Overall": 1, "MQ": 1}
    assert data.info["labels"] == {"A": 1, "B": 1, "tie": 1, "empty": 1}
    rows[2] = rows[2].replace(",same,same,A,same,", ",same,same,maybe,same,")
    (root / "videogen-rewardbench.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    data = load_videogen_rewardbench(root, {})  # a value that is not a label is a bad row, reported
    assert [r.id for r in data.records] == ["0", "1", "3"]
    assert data.info["skipped_examples"] == ["row 2: TA must be A, B, same or empty, got 'maybe'"]


def test_videogen_rewardbench_layout_errors(tmp_path, mp4):
    with pytest.raises(FileNotFoundError, match=r"no videogen-rewardbench\.csv.*huggingface-cli download"):
        load_videogen_rewardbench(tmp_path, {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_videogen_rewardbench(tmp_path / "nowhere", {})
    root = _videogen(tmp_path, mp4)
    train = tmp_path / "example.csv"  # the training CSV: no A_model, B_model, Overall
    header, *rows = VIDEOGEN_CSV.splitlines()
    train.write_text("path_A,path_B,prompt,VQ,MQ,TA\nvideos/a.mp4,videos/b.mp4,p,A,B,A\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"A_model, B_model, Overall \(this looks like the VideoAlign train"):
        load_videogen_rewardbench(train, {})
    with pytest.raises(ValueError, match="unknown option.*check_medias"):
        load_videogen_rewardbench(root, {"check_medias": False})

    (root / "videos" / "example_2_B.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 8 media files are missing .*example_2_B\.mp4.*check_"):
        load_videogen_rewardbench(root, {})
    assert len(load_videogen_rewardbench(root, {"check_media": False}).records) == 4

    # An empty Overall cell keeps its row (counted as upstream counts NaN), never inferred from VQ/MQ/TA.
    no_overall = rows[1].replace(",B,24.0", ",,24.0")
    (root / "videogen-rewardbench.csv").write_text("\n".join([header, rows[0], no_overall]))
    data = load_videogen_rewardbench(root, {})
    assert [r.id for r in data.records] == ["0", "1"] and "skipped" not in data.info
    assert data.records[1].meta["human"]["Overall"] is None


def test_revision_is_the_hub_commit_when_known(tmp_path, mp4):
    root = _videogen(tmp_path, mp4)
    meta = root / ".cache" / "huggingface" / "download" / "videogen-rewardbench.csv.metadata"
    meta.parent.mkdir(parents=True)
    meta.write_text(f"{COMMIT}\nsome-etag\n{time.time() + 60}\n")
    assert load_videogen_rewardbench(root, {}).revision == COMMIT
    # Edited after the download: the commit no longer describes the file.
    meta.write_text(f"{COMMIT}\nsome-etag\n{time.time() - 3600}\n")
    assert load_videogen_rewardbench(root, {}).revision.startswith("sha1:")
    # HF cache layout: .../snapshots/<commit>/<file>.
    snap = tmp_path / "datasets--KwaiVGI--VideoGen-RewardBench" / "snapshots" / COMMIT
    shutil.copytree(root, snap, ignore=shutil.ignore_patterns(".cache"))
    assert load_videogen_rewardbench(snap, {}).revision == COMMIT


# ---- GenAI-Bench ----

URL = "https://huggingface.co/datasets/tianleliphoebe/genai-arena-video-mp4/blob/main/{}.mp4"
HASHES = ["86aa85eec53c4b1293ef632e6183fe93", "aadd660eca2b4d4788195c729920121f",
          "d2f5ade7f1c74951b1108cc0e89cf9ee", "0f4eb5304ee547dcb5edd60fe5b7db0e"]


def _video_rows() -> list[dict]:
    # Prompts and votes of §5.5 (two result lines, two flattened rows) plus a tievote row.
    def row(prompt, left, right, vote):
        return {"prompt": prompt, "left_model": "LaVie", "left_video": URL.format(left),
                "right_model": "VideoCrafter2", "right_video": URL.format(right), "vote_type": vote}

    return [row("A polar bear is playing guitar", HASHES[0], HASHES[1], "rightvote"),
            row("A person is bending back", HASHES[2], HASHES[3], "bothbad_vote"),
            row("a cute dog is playing a ball", HASHES[1], HASHES[2], "leftvote"),
            row("A mom is holding a baby's hand.", HASHES[3], HASHES[0], "tievote")]


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_genai_bench_video(tmp_path, mp4, caplog):
    repo = tmp_path / "GenAI-Bench"
    _write_parquet(repo / "video_generation" / "test_v1-00000-of-00001.parquet", _video_rows())
    _write_parquet(repo / "video_generation" / "test-00000-of-00001.parquet", _video_rows()[:2])
    _videos(mp4, repo, [f"videos/{h}.mp4" for h in HASHES])
    with caplog.at_level(logging.WARNING, logger=LOG):
        data = load_genai_bench_video(repo, {})
    assert [(r.id, r.prompt, r.label, r.meta["vote_type"]) for r in data.records] == [
        ("0", "A polar bear is playing guitar", "B", "rightvote"),
        ("1", "A person is bending back", "tie", "bothbad_vote"),
        ("2", "a cute dog is playing a ball", "A", "leftvote"),
        ("3", "A mom is holding a baby's hand.", "tie", "tievote")]
    first = data.records[0]
    assert first.meta == {"vote_type": "rightvote", "model_a": "LaVie", "model_b": "VideoCrafter2"}
    assert first.a.media[0].path == f"{HASHES[0]}.mp4"
    assert first.a.media[0].meta == {"url": URL.format(HASHES[0])}
    assert first.b.media[0].local_path() == repo / "videos" / f"{HASHES[1]}.mp4"
    assert data.expected_size == 1069
    assert data.info == {"config": "video_generation", "split": "test_v1",
                         "vote_counts": {"rightvote": 1, "bothbad_vote": 1, "leftvote": 1, "tievote": 1}}
    assert data.revision.startswith("sha1:")
    assert any("4 items, the paper used 1069" in m for m in caplog.messages)

    test = load_genai_bench_video(repo / "video_generation", {"split": "test"})
    assert (len(test.records), test.expected_size, test.info["split"]) == (2, None, "test")
    # URL media: no local files needed; Hub blob links become raw-file links.
    shutil.rmtree(repo / "videos")
    urls = load_genai_bench_video(repo, {"video_urls": True})
    assert urls.records[0].a.media[0].url == (
        f"https://huggingface.co/datasets/tianleliphoebe/genai-arena-video-mp4/resolve/main/{HASHES[0]}.mp4")
    with pytest.raises(FileNotFoundError, match=r"4 of 4 media files are missing.*video_urls=True"):
        load_genai_bench_video(repo, {})


def test_genai_bench_video_unifiedreward_copy(tmp_path, mp4):
    # UnifiedReward's flattened copy (§5.5 verbatim): file names, not URLs; its own ids; no model columns.
    rows = [{"id": 0, "prompt": "A polar bear is playing guitar", "video_left": f"{HASHES[0]}.mp4",
             "video_right": f"{HASHES[1]}.mp4", "vote_type": "rightvote"},
            {"id": 2, "prompt": "A person is bending back", "video_left": f"{HASHES[2]}.mp4",
             "video_right": f"{HASHES[3]}.mp4", "vote_type": "bothbad_vote"}]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    _videos(mp4, tmp_path / "clips", [f"{h}.mp4" for h in HASHES])
    data = load_genai_bench_video(tmp_path / "data.json", {"video_dir": str(tmp_path / "clips")})
    assert [(r.id, r.label, r.a.media[0].path, r.meta["model_a"]) for r in data.records] == [
        ("0", "B", f"{HASHES[0]}.mp4", None), ("2", "tie", f"{HASHES[2]}.mp4", None)]


IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _png(color: str) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": f"{color}.png"}


def test_genai_bench_image_and_edit(tmp_path):
    repo = tmp_path / "GenAI-Bench"
    schema = pa.schema([("prompt", pa.string()), ("left_model", pa.string()), ("left_image", IMAGE),
                        ("right_model", pa.string()), ("right_image", IMAGE), ("vote_type", pa.string())])
    _write_parquet(repo / "image_generation" / "test_v1-00000-of-00001.parquet", [
        {"prompt": "a red cube", "left_model": "SDXL", "left_image": _png("red"),
         "right_model": "PixArtAlpha", "right_image": _png("blue"), "vote_type": "leftvote"}], schema)
    data = load_genai_bench_image(repo, {})
    [pair] = data.records
    assert (pair.label, pair.meta, data.expected_size) == (
        "A", {"vote_type": "leftvote", "model_a": "SDXL", "model_b": "PixArtAlpha"}, 1735)
    image = pair.a.media[0]
    assert image.type == "image"
    assert image.local_path().parent == repo / "mmreward_media" / "image_generation-test_v1"
    assert image.local_path().read_bytes() == _png("red")["bytes"]

    edit = pa.schema([("source_prompt", pa.string()), ("target_prompt", pa.string()),
                      ("instruct_prompt", pa.string()), ("source_image", IMAGE),
                      ("left_model", pa.string()), ("left_output_image", IMAGE),
                      ("right_model", pa.string()), ("right_output_image", IMAGE),
                      ("vote_type", pa.string())])
    row = {"source_prompt": "a cat on a sofa", "target_prompt": "a dog on a sofa",
           "instruct_prompt": "replace the cat with a dog", "source_image": _png("white"),
           "left_model": "MagicBrush", "left_output_image": _png("green"),
           "right_model": "InstructPix2Pix", "right_output_image": _png("gray")}
    _write_parquet(repo / "image_edition" / "test_v1-00000-of-00001.parquet",
                   [{**row, "vote_type": "bothbad_vote"}, {**row, "vote_type": "rightvote"}], edit)
    media_dir = tmp_path / "extracted"
    edits = load_genai_bench_edit(repo, {"media_dir": str(media_dir)})
    first = edits.records[0]
    assert (first.prompt, first.label, first.meta["source_prompt"], first.meta["target_prompt"]) == (
        "replace the cat with a dog", "tie", "a cat on a sofa", "a dog on a sofa")
    assert [m.local_path().read_bytes() for m in (*first.media, *first.a.media)] == [
        _png("white")["bytes"], _png("green")["bytes"]]
    # Written once per content: both rows' four images are three files.
    assert edits.records[1].media == first.media and len(list(media_dir.iterdir())) == 3
    assert edits.info["vote_counts"] == {"bothbad_vote": 1, "rightvote": 1}


def test_genai_bench_layout_errors(tmp_path):
    repo = tmp_path / "GenAI-Bench"
    _write_parquet(repo / "video_generation" / "test_v1-00000-of-00001.parquet", _video_rows())
    with pytest.raises(FileNotFoundError, match=r"has no image_generation/ folder.*TIGER-Lab/GenAI-Bench"):
        load_genai_bench_image(repo, {})
    with pytest.raises(ValueError, match="split must be one of test_v1, test"):
        load_genai_bench_video(repo, {"split": "train"})
    with pytest.raises(ValueError, match="unknown option.*video_urls"):
        load_genai_bench_image(repo, {"video_urls": True})
    with pytest.raises(FileNotFoundError, match="no parquet shards for split 'test'"):
        load_genai_bench_video(repo, {"split": "test", "video_urls": True})
    _write_parquet(tmp_path / "other" / "x.parquet", [{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError, match=r"no usable rows; expected columns prompt.*vote_type must be one"):
        load_genai_bench_video(tmp_path / "other", {})


# ---- MJ-Bench-Video ----

# §5.7 verbatim (its 28-key video_*_label dicts were omitted there; a 2-key stand-in here).
MJ_ROW = {"caption": "Animated animation of 360 degree turn of this woman, her whole body spinning to face "
          "around front to smile at the perspective -motion 4  ", "video_0_path": "test/4_0.mp4",
          "video_1_path": "test/4_1.mp4", "video_0_label": {"object": 0, "Frame Flickering": 1},
          "video_1_label": {"object": 0, "Frame Flickering": 2},
          "video_0_overall_score": {"Alignment": 1, "Safety": 0, "Fineness": 1, "Consistency": 0, "Bias": 0},
          "video_1_overall_score": {"Alignment": 1, "Safety": 0, "Fineness": 2, "Consistency": 0, "Bias": 0},
          "category_preference": {"Alignment": "Same", "Safety": "Same", "Fineness": "Video 1 better",
                                  "Coherence & Consistency": "Same", "Bias": "Same"},
          "overall_preference": "Video 1 better", "discard": False, "video_0_total_score": 1,
          "video_1_total_score": 0}


def _mjbench(tmp_path: Path, mp4: Path, sub: str = "") -> Path:
    root = tmp_path / "MJ-BENCH-VIDEO"
    prefs = ["Video 1 better", "Video 2 better", "Same", "Hard to judge", "Video 1 Better"]
    rows = [{**MJ_ROW, "video_0_path": f"test/{i}_0.mp4", "video_1_path": f"test/{i}_1.mp4",
             "overall_preference": p} for i, p in zip((4, 5, 6, 7, 8), prefs)]
    (root / sub).mkdir(parents=True)
    (root / sub / "test.json").write_text(json.dumps(rows, indent=4), encoding="utf-8")
    _videos(mp4, root / sub / "videos", [f"test/{i}_{j}.mp4" for i in (4, 5, 6, 7, 8) for j in (0, 1)])
    return root


def test_mjbench_video(tmp_path, mp4, caplog):
    root = _mjbench(tmp_path, mp4)
    with caplog.at_level(logging.WARNING, logger=LOG):
        data = load_mjbench_video(root, {})
    assert [(r.id, r.label, r.meta["overall_preference"], r.meta["hard"]) for r in data.records] == [
        ("0", "A", "Video 1 better", False), ("1", "B", "Video 2 better", False), ("2", "tie", "Same", False),
        ("3", "tie", "Hard to judge", True), ("4", "A", "Video 1 better", False)]
    first = data.records[0]
    assert first.prompt == MJ_ROW["caption"]  # trailing spaces kept
    assert (first.a.media[0].path, first.b.media[0].local_path()) == ("test/4_0.mp4",
                                                                     root / "videos" / "test" / "4_1.mp4")
    kept = ("category_preference", "video_0_overall_score", "video_1_overall_score", "video_0_total_score",
            "video_1_total_score", "video_0_label", "video_1_label", "discard")
    expected_meta = {k: MJ_ROW[k] for k in kept}
    assert first.meta == {**expected_meta, "overall_preference": "Video 1 better", "hard": False}
    assert first.dimensions == {}
    assert data.info == {"file": "test.json", "strict_pairs": 3, "preferences": {
        "Video 1 better": 2, "Video 2 better": 1, "Same": 1, "Hard to judge": 1}}
    assert data.expected_size == 1085
    assert any("5 items, the paper used 1085" in m for m in caplog.messages)


def test_mjbench_video_layouts_and_errors(tmp_path, mp4):
    # The GitHub layout: datas/test.json with datas/videos/.
    github = _mjbench(tmp_path, mp4, sub="datas")
    assert len(load_benchmark("mjbench_video", github).records) == 5
    with pytest.raises(FileNotFoundError, match=r"has no test\.json.*MJ-Bench/MJ-BENCH-VIDEO"):
        load_mjbench_video(tmp_path, {})
    (github / "datas" / "videos" / "test" / "7_1.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 10 media files are missing .*7_1\.mp4"):
        load_mjbench_video(github, {})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**MJ_ROW, "overall_preference": "Video 3 better"}]))
    with pytest.raises(ValueError, match="no usable rows.*overall_preference must be one of"):
        load_mjbench_video(bad, {"check_media": False})


def test_registry_entries():
    expected = {"videogen_rewardbench": ("videogen",),
                "genai_bench_video": ("genai_rm", "genai_judge"),
                "genai_bench_image": ("genai_rm", "genai_judge"),
                "genai_bench_edit": ("genai_rm", "genai_judge"),
                "mjbench_video": ("mjbench_video",)}
    for name, metrics in expected.items():
        spec = BENCHMARKS[name]
        assert spec.loader.__module__ == "mmreward.evaluation.benchmarks.video" and spec.metrics == metrics
        assert "huggingface-cli download" in spec.download
