"""Tests for the image and text benchmark loaders (mmreward.evaluation.benchmarks.image / .text).

Each loader reads fixture files written in the benchmark's published layout. Text fields are the verbatim rows
of /work/shared/BENCHMARKS.md §5 (long text trimmed with "…" as there); rows marked "constructed" add the cases
§5 has no row for (a B label, a repeated MM-RLHF id, other categories). Images are tiny PNG stand-ins; parquet
files carry real image bytes written with pyarrow.
"""

import hashlib
import io
import json
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreward.data.schema import PointwiseRecord, PreferencePair, parse_record
from mmreward.evaluation.benchmarks import BENCHMARKS, load_benchmark
from mmreward.evaluation.benchmarks.image import vlrb_category
from mmreward.evaluation.benchmarks.tables import dense_ranks
from mmreward.evaluation.metrics import mmrb_bucket as mmrb_subcategory

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SHA = "0123456789abcdef0123456789abcdef01234567"
MINE = ("vl_rewardbench", "multimodal_rewardbench", "mm_rlhf_rewardbench", "imagereward_test", "hpdv2_test",
        "pickapic_v2_test", "rewardbench2")


def _png(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buf, format="PNG")
    return buf.getvalue()


def _image(path: Path, color: str = "blue") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(color))


def _parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def _json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def _valid(records) -> None:
    """Every record survives the schema validator, and its media files exist."""
    for r in records:
        assert parse_record(r.to_dict()).id == r.id
        for item in r.all_media():
            paths = [item.local_path()] if item.path else item.frame_paths()
            assert paths and all(p.is_file() for p in paths), item


def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# ---- VL-RewardBench (§5.1) ----

VLRB_ROWS = [
    {"id": "hallucination_pair-1003", "query": "Describe this image in detail.", "response": ["The image showcases a lively scene of a couple of kids playing soccer on a field. They are kicking a…", "The image showcases a lively scene of a couple of kids playing soccer on a field. They are kicking a…"], "image": "images/hallucination_pair-1003.png", "human_ranking": [0, 1], "models": ["gpt", "gpt"], "judge": "human", "rationale": "", "query_source": "POVID_preference_data_for_VLLMs", "ground_truth": ""},
    {"id": "RLAIF-V-14", "query": "Convey the specifics of the image with meticulous attention to detail.", "response": ["A kitchen counter with a sink, blue plate, and knife block, along with cabinets below and above it; …", "A clean and well-organized kitchen showcases a stainless steel gas cooktop, positioned centrally on …"], "image": "images/RLAIF-V-14.png", "human_ranking": [0, 1], "models": ["OmniLMM-12B", "OmniLMM-12B"], "judge": "placeholder_judge", "rationale": "placeholder_rationale", "query_source": "COCO", "ground_truth": ""},
    {"id": "mmmu_pro_test_Electronics_6", "query": "For the circuit shown in , find $v_c (t)$ if $i_s$ = 25u(t) mA\nOptions:\nA. 60 + 70(1 - e^{-20t}) u(t) V\nB. 30 + 60(1 - e^{-20t}) u(t) V\nC. 50 + 60(1 -…", "response": ["To find \\( v_c(t) \\) for the given circuit, we need to analyze the circuit and solve for the voltage…", "To find the voltage across the capacitor \\( v_c(t) \\) in the given circuit, we can use the concept o…"], "image": "images/mmmu_pro_test_Electronics_6.png", "human_ranking": [0, 1], "models": ["qwen-vl-max", "gpt-4o-2024-05-13"], "judge": "gpt-4o-2024-05-13", "rationale": "### Evaluation of Answers\n\n#### Ground Truth Answer: G. 40 + 60(1 - e^{-20t}) u(t) V…", "query_source": "", "ground_truth": "G"},
    {"id": "wildvision-battle-13", "query": "Can you solve the 3 questions in the image?", "response": ["1. No\n2. Conservation of Energy\n3. Conservation of Momentum", "Yes, I can help you solve the three questions in the image.\n\n1. A child is playing with a toy skateb…"], "image": "images/wildvision-battle-13.png", "human_ranking": [0, 1], "models": ["gemini-pro-vision", "llava-v1.5-13b"], "judge": "human", "rationale": "placeholder_rationale", "query_source": "wildvision-battle", "ground_truth": ""},
    # constructed: one of the 5 [1, 0] items (response[1] preferred), a VLFeedback-style id
    {"id": "politics-3", "query": "<image>\nWho is this?", "response": ["I cannot tell.", "A politician at a rally."], "image": "images/politics-3.png", "human_ranking": [1, 0], "models": ["a", "b"], "judge": "human", "rationale": "", "query_source": "VLFeedback", "ground_truth": ""},
]
COLORS = ("red", "green", "blue", "white", "black")


def _vlrb_parquet(path: Path, rows=VLRB_ROWS) -> Path:
    """The HF layout: the image column is a {bytes, path} struct."""
    table_rows = [{**row, "image": {"bytes": _png(c), "path": None}} for row, c in zip(rows, COLORS)]
    schema = pa.schema([("id", pa.string()), ("query", pa.string()), ("response", pa.list_(pa.string())),
                        ("image", IMAGE), ("human_ranking", pa.list_(pa.int64())), ("models", pa.list_(pa.string())),
                        ("judge", pa.string()), ("rationale", pa.string()), ("query_source", pa.string()),
                        ("ground_truth", pa.string())])
    return _parquet(path, table_rows, schema)


def test_vl_rewardbench_hf_layout(tmp_path, caplog):
    root = tmp_path / "VL-RewardBench"
    test = _vlrb_parquet(root / "data" / "test-00000-of-00001.parquet")
    _vlrb_parquet(root / "data" / "train-00000-of-00001.parquet", VLRB_ROWS[:1])  # older revisions: ignored
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("vl_rewardbench", str(root), {"media_dir": str(tmp_path / "media")})
    assert (data.name, data.kind, data.expected_size) == ("vl_rewardbench", "pairs", 1250)
    assert [r.id for r in data.records] == [row["id"] for row in VLRB_ROWS]
    assert [r.label for r in data.records] == ["A", "A", "A", "A", "B"]
    assert [r.meta["category"] for r in data.records] == ["hallucination", "hallucination", "reasoning", "general",
                                                           "general"]
    assert [r.meta["subcategory"] for r in data.records] == ["povid", "rlaif-v", "reasoning_tasks",
                                                              "wildvision-battle", "vlfeedback"]
    assert data.records[4].prompt == "Who is this?"  # the official inference drops "<image>\n"
    first, third = data.records[0], data.records[2]
    assert isinstance(first, PreferencePair) and first.prompt == "Describe this image in detail."
    assert (first.a.text, first.b.text) == tuple(VLRB_ROWS[0]["response"])  # identical texts are kept
    assert first.meta["query_source"] == "POVID_preference_data_for_VLLMs" and first.meta["source_id"] == first.id
    assert third.meta["ground_truth"] == "G" and third.meta["models"] == ["qwen-vl-max", "gpt-4o-2024-05-13"]
    _valid(data.records)
    for record, color in zip(data.records, COLORS):
        path = record.media[0].local_path()
        assert path.parent == tmp_path / "media" / "vl_rewardbench" and path.read_bytes() == _png(color)
    assert data.info["categories"] == {"hallucination": 2, "reasoning": 1, "general": 2}
    assert data.revision == "sha1:" + hashlib.sha1(test.read_bytes()).hexdigest()[:12]
    assert "vl_rewardbench: 5 items, the paper used 1250" in _warnings(caplog)
    assert "1,247" in data.info["warnings"][0]


def test_vl_rewardbench_json_mirror_and_default_media_dir(tmp_path):
    mirror = tmp_path / "mirror"
    for row in VLRB_ROWS:
        _image(mirror / row["image"])
    data = load_benchmark("vl_rewardbench", str(_json(mirror / "data.json", VLRB_ROWS)), {})
    assert [m.local_path() for r in data.records for m in r.media] == [mirror / row["image"] for row in VLRB_ROWS]
    # Parquet bytes without a media_dir go next to the data.
    root = tmp_path / "hf"
    _vlrb_parquet(root / "test.parquet")
    data = load_benchmark("vl_rewardbench", str(root), {})
    assert data.records[0].media[0].local_path().parent == root / ".mmreward_media" / "vl_rewardbench"


def test_official_grouping_rules():
    assert vlrb_category("RLHF-V-2") == ("hallucination", "rlhf-v")
    assert vlrb_category("mathverse_7") == ("reasoning", "reasoning_tasks")
    assert vlrb_category("jailbreak-1") == ("general", "vlfeedback")
    # The official rule is case-sensitive: R1-Reward's lower-case match is what put these in "general".
    assert vlrb_category("rlaif-v-3") == ("general", "vlfeedback")
    assert mmrb_subcategory("safety", "PAIRS_1") == "safety/bias"
    assert mmrb_subcategory("safety", "hateful_1") == "safety/toxicity"
    assert mmrb_subcategory("reasoning", "image2struct_4") == "reasoning/coding"
    assert mmrb_subcategory("vqa", "MMBench_1") == "vqa"
    assert dense_ranks([1, 2, 5, 3]) == [1, 2, 4, 3] and dense_ranks([2.5, 1, 2.5]) == [2, 1, 2]


@pytest.mark.parametrize("layout", ["local_dir", "git", "packed_refs", "hub_cache"])
def test_revision_sources(tmp_path, layout):
    root = tmp_path / "vlrb"
    shard = Path("data") / "test-00000-of-00001.parquet"
    if layout == "hub_cache":
        root = tmp_path / "datasets--MMInstruction--VL-RewardBench" / "snapshots" / SHA
    elif layout == "local_dir":  # what `huggingface-cli download --local-dir` leaves behind
        meta = root / ".cache" / "huggingface" / "download" / f"{shard}.metadata"
        meta.parent.mkdir(parents=True)
        meta.write_text(f"{SHA}\netag\n{time.time() + 60}\n")  # not modified since the download
    else:
        (root / ".git" / "refs" / "heads").mkdir(parents=True)
        (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        if layout == "git":
            (root / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
        else:
            (root / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/main\n")
    _vlrb_parquet(root / shard, VLRB_ROWS[:1])
    assert load_benchmark("vl_rewardbench", str(root), {"media_dir": str(tmp_path / "m")}).revision == SHA


def test_bad_rows_raise_or_are_skipped(tmp_path):
    rows = [VLRB_ROWS[0], {**VLRB_ROWS[1], "response": ["only one"]}]
    root = tmp_path / "vlrb"
    _vlrb_parquet(root / "test.parquet", rows)
    with pytest.raises(ValueError, match=r"row 1 .*response must be a list of two texts"):
        load_benchmark("vl_rewardbench", str(root), {})
    data = load_benchmark("vl_rewardbench", str(root), {"on_error": "skip"})
    assert [r.id for r in data.records] == ["hallucination_pair-1003"]
    assert "response must be a list of two texts" in data.info["skipped"][1]
    with pytest.raises(ValueError, match="unknown option.*limit"):
        load_benchmark("vl_rewardbench", str(root), {"limit": 3})
    with pytest.raises(ValueError, match="on_error"):
        load_benchmark("vl_rewardbench", str(root), {"on_error": "ignore"})


# ---- Multimodal RewardBench (§5.2: the prediction rows' ID / Image / Label / Category) ----

def _mmrb_row(item_id, image, better, category, text="Please generate a detailed caption of this image."):
    return {"ID": item_id, "Image": image, "Text": text, "Output1": f"{item_id} answer 1",
            "Output2": f"{item_id} answer 2", "Better": better, "Category": category}


MMRB_ROWS = [
    _mmrb_row("nocaps_13062", "images/nocaps/13062.jpg", "Output2", "open_generation/correctness_task"),
    _mmrb_row("visitbench_235", "images/visitbench/235.jpg", "Output2", "open_generation/correctness_task"),
    # constructed: the split buckets of the official accuracy script
    _mmrb_row("pairs_17", "images/pairs/17.jpg", "Output1", "safety"),
    _mmrb_row("mathvista_5", "images/mathvista/5.jpg", "Output1", "reasoning"),
    _mmrb_row("EMMA-Coding_3", "images/EMMA-Coding/3_0.png", "Output2", "reasoning"),
]


def test_multimodal_rewardbench_repo_layout(tmp_path, caplog):
    repo = tmp_path / "multimodal_rewardbench"
    for row in MMRB_ROWS:
        _image(repo / "data" / row["Image"])
    _json(repo / "data" / "all_data.json", MMRB_ROWS)
    # The release file (no Text) is only read when all_data.json is missing.
    _json(repo / "data" / "all_data_release.json", [{k: v for k, v in MMRB_ROWS[0].items() if k != "Text"}])
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("multimodal_rewardbench", str(repo), {})
    assert [r.id for r in data.records] == [row["ID"] for row in MMRB_ROWS]
    assert [r.label for r in data.records] == ["B", "B", "A", "A", "B"]
    assert [r.meta["subcategory"] for r in data.records] == [
        "open_generation/correctness_task", "open_generation/correctness_task", "safety/bias", "reasoning/math",
        "reasoning/coding"]
    first = data.records[0]
    assert (first.a.text, first.b.text) == ("nocaps_13062 answer 1", "nocaps_13062 answer 2")
    assert first.media[0].local_path() == repo / "data" / "images" / "nocaps" / "13062.jpg"
    _valid(data.records)
    assert "5 items, the paper used 5211" in _warnings(caplog) and "Hateful-Memes" in _warnings(caplog)


def test_multimodal_rewardbench_release_without_text(tmp_path):
    repo = tmp_path / "mmrb"
    rows = [{k: v for k, v in row.items() if k != "Text"} for row in MMRB_ROWS[:2]]
    for row in rows:
        _image(repo / "data" / row["Image"])
    _json(repo / "data" / "all_data_release.json", rows)
    with pytest.raises(ValueError, match="0_download_data.py"):
        load_benchmark("multimodal_rewardbench", str(repo), {})
    data = load_benchmark("multimodal_rewardbench", str(repo), {"on_error": "skip"})
    assert data.records == [] and sorted(data.info["skipped"]) == [0, 1]


# ---- MM-RLHF-RewardBench (§5.3) ----

MMRLHF_ROWS = [
    {"id": "073712_6205145", "image": "mcq/073712.png", "prompt": "According to the question shown in the image, please first perform reasoning, then finally select the right answer from the choices, e.g., Answer: xxx.\nQuestion…", "chosen": "I apologize, but there seems to be a misunderstanding. The image provided does not contain a question or any choices as you've described. …", "rejected": " AB = 12.0. Since ABCD is a square, all four sides are equal. Therefore, CB = AB = 12.0.\nAnswer: C", "chosen_reason": "The answer is correct and the analysis is reasonable.", "rejected_reason": "The answer is incorrect, the image does not match the question."},
    {"id": "cauldron/figureqa/images/figureqa_00049777.png_3952691", "image": "short/cauldron_figureqa_images_figureqa_00049777.png.png", "prompt": "Is Light Gold the maximum?\nAnswer the question with Yes or No.", "chosen": "Yes.", "rejected": "No, Light Gold is not the maximum segment in this pie chart. From visual inspection, it appears that Light Green occupies the largest portion of the chart.", "chosen_reason": "Only the correct answer, no analysis", "rejected_reason": "The answer is incorrect, and the analysis is also incorrect. Light Gold is the largest segment in the pie chart."},
    {"id": "-77dfCjTbSc_2_94421", "video": "video/-77dfCjTbSc", "prompt": "What is the view captured in the subsequent frames?", "chosen": "The sequence of frames captures a journey through a jungle path leading to hidden ruins. …", "rejected": "The subsequent frames capture a view of ancient ruins, with a person in a red shirt and white shorts sitting on a rock, looking towards the structures.", "chosen_reason": "The view captured in subsequent frames is described in great detail", "rejected_reason": "The view captured in subsequent frames is not detailed enough"},
    # constructed: a second pair of the first prompt id (ids repeat: 170 pairs over 46 ids), and the other paths
    {"id": "073712_6205145", "image": "mcq/073712.png", "prompt": "According to the question…", "chosen": "C.", "rejected": "D."},
    {"id": "31567", "image": "long/31567.png", "prompt": "Describe the image.", "chosen": "A long answer.", "rejected": "Short."},
    {"id": "HOD_img_hod_009457_safeimg", "image": "safety/img_hod_009457.jpg", "prompt": "Is this safe?", "chosen": "Yes.", "rejected": "No."},
]


def test_mm_rlhf_rewardbench(tmp_path, caplog):
    root = tmp_path / "MM-RLHF-RewardBench"
    for row in MMRLHF_ROWS:
        if "image" in row:
            _image(root / "images" / row["image"])
    for name in ("frame_10.jpg", "frame_2.jpg", "frame_1.jpg"):
        _image(root / "images" / "video" / "-77dfCjTbSc" / name)
    (root / "mm_reward_bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MMRLHF_ROWS), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("mm_rlhf_rewardbench", str(root), {})
    assert [r.id for r in data.records] == ["073712_6205145#0", MMRLHF_ROWS[1]["id"], "-77dfCjTbSc_2_94421",
                                            "073712_6205145#1", "31567", "HOD_img_hod_009457_safeimg"]
    assert [r.meta["group"] for r in data.records] == [row["id"] for row in MMRLHF_ROWS]
    assert [r.meta["category"] for r in data.records] == ["mcq", "short", "video", "mcq", "long", "safety"]
    assert {r.label for r in data.records} == {"A"}
    first, video = data.records[0], data.records[2]
    assert (first.a.text, first.b.text) == (MMRLHF_ROWS[0]["chosen"], MMRLHF_ROWS[0]["rejected"])
    assert first.meta["chosen_reason"] == "The answer is correct and the analysis is reasonable."
    assert first.media[0].local_path() == root / "images" / "mcq" / "073712.png"
    assert video.media[0].type == "frames"
    assert [p.name for p in video.media[0].frame_paths()] == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    _valid(data.records)
    text = _warnings(caplog)
    assert "6 pairs, the paper used 170" in text and "5 prompt ids, the paper used 46" in text


# ---- ImageReward test (§5.8) ----

IR_ROWS = [
    {"id": "005658-0040", "prompt": "deathly portal to the abyss, ultra detailed, warm interior light, cinematic shot, photorealistic, octane render, high definition, fine details, sinister tones, 8 k, mcbess mood,", "generations": ["part-005658/images/0040/45b0de4d-5a57-4ae3-8810-ffbd328204fd.webp", "part-005658/images/0040/7d4cc31d-2451-4a9d-99e6-3bdc157aaf2d.webp", "part-005658/images/0040/f24a2c01-b1ed-4d4f-ba23-5ba5755b1ce7.webp", "part-005658/images/0040/e77d096b-cc89-49cc-ae9a-39679ae23aeb.webp"], "ranking": [1, 2, 5, 3]},
    {"id": "005664-0153", "prompt": "cola made from cockroaches", "generations": ["part-005664/images/0153/06f3eff4-303d-4fae-b751-7f172ec641f0.webp", "part-005664/images/0153/cab5e96b-6df8-4b38-8755-b7b4d9f882ae.webp", "part-005664/images/0153/7177f467-6846-4cb9-9f0e-d69d0dd44c82.webp", "part-005664/images/0153/bc969494-28bf-4f57-b9a3-1e61ed034f2b.webp"], "ranking": [1, 2, 3, 4]},
]


def test_imagereward_test(tmp_path, caplog):
    repo = tmp_path / "ImageReward"
    for row in IR_ROWS:
        for path in row["generations"]:
            _image(repo / "data" / "test_images" / path)  # PNG bytes: the loader only checks that files exist
    _json(repo / "data" / "test.json", IR_ROWS)
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("imagereward_test", str(repo), {})
    assert (data.kind, data.expected_size, len(data.records)) == ("listwise", 2720, 8)
    assert all(isinstance(r, PointwiseRecord) for r in data.records)
    assert [r.id for r in data.records[:2]] == ["005658-0040/0", "005658-0040/1"]
    assert [r.meta["group"] for r in data.records] == ["005658-0040"] * 4 + ["005664-0153"] * 4
    assert [r.meta["raw_rank"] for r in data.records[:4]] == [1, 2, 5, 3]
    assert [r.meta["rank"] for r in data.records] == [1, 2, 4, 3, 1, 2, 3, 4]
    assert data.records[7].prompt == "cola made from cockroaches" and data.records[7].meta["index"] == 3
    assert data.records[2].media[0].local_path() == repo / "data" / "test_images" / IR_ROWS[0]["generations"][2]
    _valid(data.records)
    text = _warnings(caplog)
    assert "2 prompts, the paper used 466" in text and "8 images, the paper used 2720" in text


# ---- HPDv2 test (constructed rows in the test.json schema of §2.7.2) ----

def test_hpdv2_test_rank_direction(tmp_path):
    root = tmp_path / "HPDv2"
    rows = [{"prompt": "a cat", "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"], "rank": [2, 1, 3],
             "raw_annotations": [{"rank": [2, 1, 3], "user_hash": "u1"}]},
            {"prompt": "a dog", "image_path": ["00003.jpg", "00004.jpg"], "rank": [1.5, 1.5],
             "raw_annotations": [{"rank": [1, 2], "user_hash": "u1"}, {"rank": [2, 1], "user_hash": "u2"}]}]
    for row in rows:
        for path in row["image_path"]:
            _image(root / "test" / path)  # unpacked test.tar.gz
    _json(root / "test.json", rows)
    data = load_benchmark("hpdv2_test", str(root), {})
    # Smaller rank = better (HPSv2 compares it with the position in argsort(-score)); ties share a rank.
    assert [r.meta["rank"] for r in data.records] == [2, 1, 3, 1, 1]
    assert [r.meta["raw_rank"] for r in data.records] == [2, 1, 3, 1.5, 1.5]
    assert [r.meta["group"] for r in data.records] == ["0", "0", "0", "1", "1"]
    assert [r.id for r in data.records] == ["0/0", "0/1", "0/2", "1/0", "1/1"]
    assert data.records[1].media[0].local_path() == root / "test" / "00001.jpg"
    assert data.expected_size is None
    _valid(data.records)


# ---- Pick-a-Pic v2 (constructed rows in the §2.7.3 schema) ----

def _pickapic_rows(prefix: str) -> list[dict]:
    labels = [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    return [{"caption": f"{prefix} caption {i}", "jpg_0": _png("red"), "jpg_1": _png("blue"), "label_0": l0,
             "label_1": l1, "image_0_uid": f"{prefix}-u{i}a", "image_1_uid": f"{prefix}-u{i}b", "model_0": "sdxl",
             "model_1": "sd15", "ranking_id": 100 + i, "user_id": 7, "has_label": True,
             "are_different": i != 3, "best_image_uid": f"{prefix}-u{i}a"} for i, (l0, l1) in enumerate(labels)]


def test_pickapic_v2_test_and_validation(tmp_path, caplog):
    root = tmp_path / "pickapic_v2"
    _parquet(root / "data" / "test_unique-00000-of-00001.parquet", _pickapic_rows("t"))
    _parquet(root / "data" / "validation_unique-00000-of-00001.parquet", _pickapic_rows("v")[:2])
    media = tmp_path / "media"
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("pickapic_v2_test", str(root), {"media_dir": str(media)})
    assert [r.label for r in data.records] == ["A", "B", "tie", "A"]  # are_different false is kept for eval
    assert [r.id for r in data.records] == ["100", "101", "102", "103"]
    first = data.records[0]
    assert first.prompt == "t caption 0" and first.meta["model_0"] == "sdxl" and first.meta["ranking_id"] == 100
    assert first.a.media[0].local_path() == media / "pickapic_v2_test" / "t-u0a.png"
    assert first.a.media[0].local_path().read_bytes() == _png("red")
    _valid(data.records)
    assert data.info["split"] == "test_unique" and "4 items, the paper used 500" in _warnings(caplog)
    val = load_benchmark("pickapic_v2_test", str(root), {"media_dir": str(media), "split": "validation_unique"})
    assert [r.prompt for r in val.records] == ["v caption 0", "v caption 1"]


# ---- RewardBench 2 (constructed rows in the §2.8 schema) ----

def test_rewardbench2(tmp_path, caplog):
    rows = [{"id": "42", "prompt": "What is 2+2?", "chosen": ["4"], "rejected": ["5", "3", "22"], "num_correct": 1,
             "num_rejected": 3, "total_completions": 4, "models": ["m0", "m1", "m2", "m3"], "subset": "Math"},
            {"id": "tied:5", "prompt": "Name a prime.", "chosen": ["2", "3"], "rejected": ["4"], "num_correct": 2,
             "num_rejected": 1, "total_completions": 3, "models": ["a", "b"], "subset": "Ties"}]
    root = tmp_path / "reward-bench-2"
    _parquet(root / "data" / "test-00000-of-00001.parquet", rows)
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("rewardbench2", str(root), {})
    assert (data.kind, data.expected_size) == ("listwise", None)
    assert [r.id for r in data.records] == ["42/0", "42/1", "42/2", "42/3", "tied:5/0", "tied:5/1", "tied:5/2"]
    assert [r.response for r in data.records] == ["4", "5", "3", "22", "2", "3", "4"]
    assert [r.meta["correct"] for r in data.records] == [True, False, False, False, True, True, False]
    assert [r.meta["category"] for r in data.records] == ["Math"] * 4 + ["Ties"] * 3
    assert [r.meta.get("model") for r in data.records] == ["m0", "m1", "m2", "m3", None, None, None]
    assert all(r.media == [] and r.prompt for r in data.records)
    assert data.info["categories"] == {"Math": 1, "Ties": 1}
    _valid(data.records)
    assert "2 prompts, the paper used 1865" in _warnings(caplog)


# ---- registry and layout errors ----

def test_registry_entries():
    metric_names = {"vlrb", "mmrb", "mmrlhf", "imagereward", "hpd_inversion", "pickapic", "rb2",
                    "accuracy_without_ties"}
    for name in MINE:
        spec = BENCHMARKS[name]
        assert callable(spec.loader)
        assert spec.loader.__module__ in ("mmreward.evaluation.benchmarks.image", "mmreward.evaluation.benchmarks.text")
        assert spec.metrics and set(spec.metrics) <= metric_names and spec.download and spec.description


@pytest.mark.parametrize("name", MINE)
def test_missing_data_says_how_to_get_it(tmp_path, name):
    with pytest.raises(FileNotFoundError) as err:
        load_benchmark(name, str(tmp_path / "nowhere"), {})
    assert BENCHMARKS[name].download in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no dataset found") as err:
        load_benchmark(name, str(tmp_path / "empty"), {})
    assert BENCHMARKS[name].download in str(err.value)


@pytest.mark.parametrize("name, path", [
    ("vl_rewardbench", "data/test-00000-of-00001.parquet"),
    ("pickapic_v2_test", "data/test_unique-00000-of-00001.parquet"),
    ("rewardbench2", "data/test-00000-of-00001.parquet"),
    ("multimodal_rewardbench", "data/all_data.json"),
    ("mm_rlhf_rewardbench", "mm_reward_bench.jsonl"),
    ("imagereward_test", "data/test.json"),
    ("hpdv2_test", "test.json"),
])
def test_unrecognised_layout(tmp_path, name, path):
    target = tmp_path / "data_root" / path
    if target.suffix == ".parquet":
        _parquet(target, [{"question": "q", "answer": "a"}])
    elif target.suffix == ".jsonl":
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n", encoding="utf-8")
    else:
        _json(target, [{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError, match=f"not the {name} layout: missing column") as err:
        load_benchmark(name, str(tmp_path / "data_root"), {})
    assert BENCHMARKS[name].download in str(err.value)
