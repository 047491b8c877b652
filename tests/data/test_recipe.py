"""Recipes: YAML -> shards + manifest, with counts that add up, prompt-grouped splits and identical rebuilds.

    pytest tests/data/test_recipe.py -q
"""

import base64
import io
import json
from pathlib import Path

import pytest
import yaml

from mmreward.data.recipe import (
    RecipeError,
    build_recipe,
    demo_recipe,
    load_recipe,
    load_split,
    write_demo_pairs,
)
from mmreward.data.schema import (
    Candidate,
    MediaItem,
    PointwiseRecord,
    PreferencePair,
    parse_record,
    read_jsonl,
)
from mmreward.data.sources import SOURCES, Skip

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data_recipes" / "demo.yaml"
SMALL = {"sources.shapes_images.options.n": 60, "sources.shapes_videos.options.n": 8}


def _recipe(tmp_path: Path, sources: list, **top) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "seed": 0, "splits": {"train": 0.8, "test": 0.2},
                                    **top, "sources": sources}))
    return path


def _shapes(name: str, n: int, **extra) -> dict:
    return {"name": name, "converter": "synthetic_shapes", "options": {"kind": "image", "n": n}, **extra}


def _records(out: Path, manifest: dict) -> list:
    return [r for split in manifest["splits"] for r in load_split(out, split)]


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, build_recipe(DEMO, out, overrides=SMALL)


def test_demo_build_writes_shards_whose_counts_match_the_manifest(small_demo):
    out, manifest = small_demo
    assert set(manifest["splits"]) == {"train", "test"}
    for name, n in (("shapes_images", 60), ("shapes_videos", 8)):
        counts = manifest["sources"][name]
        assert counts["read"] == counts["kept"] == counts["after_weight"] == n
        assert counts["skipped"] == 0 and counts["filtered"] == {}
        assert sum(counts["splits"].values()) == n
    for split, info in manifest["splits"].items():
        assert info["shards"] == [f"{split}-00000.jsonl"]
        assert len(read_jsonl(out / info["shards"][0])) == info["records"]
        assert info["records"] == sum(s["splits"][split] for s in manifest["sources"].values())
    assert manifest["total"] == 68
    assert manifest["recipe"]["sources"][0]["options"]["n"] == 60  # the resolved recipe, overrides applied
    assert manifest["mmreward_version"] and manifest["created"]
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_records_have_unique_prefixed_ids_and_media_relative_to_the_output(small_demo):
    out, manifest = small_demo
    records = _records(out, manifest)
    ids = [r.id for r in records]
    assert len(set(ids)) == len(ids) == 68
    assert {i.split("/")[0] for i in ids} == {"shapes_images", "shapes_videos"}
    raw = [json.loads(line) for split in ("train", "test") for line in (out / f"{split}-00000.jsonl").open()]
    paths = [m["path"] for r in raw for side in ("a", "b") for m in r[side]["media"]]
    assert all(p.startswith("media/shapes_") for p in paths)
    assert all(m.local_path().is_file() for r in records for m in r.all_media())


def test_splits_follow_the_fractions_and_no_prompt_is_in_two_splits(tmp_path):
    manifest = build_recipe(_recipe(tmp_path, [_shapes("imgs", 400)]), tmp_path / "out")
    train, test = (load_split(tmp_path / "out", s) for s in ("train", "test"))
    assert len(train) + len(test) == 400
    assert 0.1 <= len(test) / 400 <= 0.3  # 48 prompts: the fractions hold over groups, roughly over records
    assert not {r.prompt for r in train} & {r.prompt for r in test}
    assert manifest["sources"]["imgs"]["splits"] == {"train": len(train), "test": len(test)}


def test_weight_subsamples_and_repeats_with_unique_ids_in_one_split(tmp_path):
    sources = [_shapes("half", 200, weight=0.5), _shapes("double", 30, weight=2.0)]
    manifest = build_recipe(_recipe(tmp_path, sources), tmp_path / "out")
    half, double = manifest["sources"]["half"], manifest["sources"]["double"]
    assert half["kept"] == 200 and 70 <= half["after_weight"] <= 130
    assert double["kept"] == 30 and double["after_weight"] == 60
    by_split = {s: load_split(tmp_path / "out", s) for s in ("train", "test")}
    ids = [r.id for rs in by_split.values() for r in rs]
    assert len(ids) == len(set(ids)) == half["after_weight"] + 60
    copies = [i for i in ids if i.endswith("#2")]
    assert len(copies) == 30 and all(i.startswith("double/") for i in copies)
    for records in by_split.values():  # a copy sits in the same split as its original
        names = {r.id for r in records}
        assert all(i[:-2] in names for i in names if i.endswith("#2"))


def test_max_items_caps_after_filtering_and_stops_reading(tmp_path):
    manifest = build_recipe(_recipe(tmp_path, [_shapes("capped", 50, max_items=10)]), tmp_path / "out")
    counts = manifest["sources"]["capped"]
    assert (counts["read"], counts["kept"], counts["capped"]) == (10, 10, True)


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _fake_rows(ext: Path):
    """A converter output exercising every filter, a Skip, an invalid record and embedded bytes."""
    long = "a prompt long enough"

    def pair(prompt, label="A", media=(), a_media=()):
        return PreferencePair(id=f"r{len(items)}", prompt=prompt, media=list(media),
                              a=Candidate(text="x", media=list(a_media)), b=Candidate(text="y"), label=label)

    items: list = []
    items.append(pair("short"))  # min_prompt_chars
    items.append(pair(long, "tie"))  # drop_ties
    items.append(pair(long, "B"))  # labels
    items.append(pair(long, a_media=[MediaItem(type="image", path="missing.png", base_dir=ext)]))  # require_media
    items.append(pair(long, media=[MediaItem(type="video", path=str(ext / "clip.mp4"))]))  # media_types
    items.append(pair(long, media=[MediaItem(type="image", bytes=_png_b64())]))  # kept: bytes -> file
    items.append(pair(long, media=[MediaItem(type="image", path="real.png", base_dir=ext)]))  # kept: external
    items.append(Skip(7, "broken row"))
    items.append(pair(long, "X"))  # invalid record
    items.append(PointwiseRecord(id="p9", prompt=long, response="fine"))  # kept: no label to filter
    items.append(pair("z" * 200))  # max_prompt_chars
    return items


def test_filters_skips_and_invalid_records_are_counted_by_name(tmp_path, monkeypatch):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "clip.mp4").write_bytes(b"0")
    (ext / "real.png").write_bytes(base64.b64decode(_png_b64()))
    monkeypatch.setitem(SOURCES, "fake_rows", lambda spec, media_dir: iter(_fake_rows(ext)))
    filters = {"drop_ties": True, "labels": ["A", "tie"], "min_prompt_chars": 6, "max_prompt_chars": 100,
               "media_types": ["image"]}
    out = tmp_path / "out"
    manifest = build_recipe(_recipe(tmp_path, [{"name": "fake", "converter": "fake_rows", "filters": filters}],
                                    splits={"all": 1.0}), out)
    counts = manifest["sources"]["fake"]
    assert counts["filtered"] == {"min_prompt_chars": 1, "drop_ties": 1, "labels": 1, "require_media": 1,
                                  "media_types": 1, "max_prompt_chars": 1}
    assert (counts["read"], counts["kept"], counts["skipped"]) == (11, 3, 2)
    assert counts["read"] == counts["kept"] + counts["skipped"] + sum(counts["filtered"].values())
    assert counts["skipped_by_reason"]["broken row"] == 1
    assert [r["row"] for r in counts["skipped_rows"]] == [7, "r8"]
    assert counts["skipped_rows"][1]["reason"].startswith("invalid record: label")
    by_id = {r.id: r for r in load_split(out, "all")}
    assert set(by_id) == {"fake/r5", "fake/r6", "fake/p9"}
    line = json.loads((out / "all-00000.jsonl").read_text().splitlines()[0])
    assert line["media"][0]["path"].startswith("media/fake/_embedded/") and "bytes" not in line["media"][0]
    assert by_id["fake/r5"].media[0].local_path().read_bytes()[:4] == b"\x89PNG"
    assert by_id["fake/r6"].media[0].path == str(ext / "real.png")  # outside the output: absolute


def test_a_bad_jsonl_line_is_skipped_with_its_reason(tmp_path, monkeypatch):
    lines = ['{"id": "p1", "prompt": "q1", "a": {"text": "x"}, "b": {"text": "y"}, "label": "A"}',
             "not json",
             '{"id": "p2", "prompt": "q2", "a": {"text": "x"}, "b": {"text": "z"}, "label": "B"}']
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    if "jsonl" not in SOURCES:  # stand-in until the real converter lands in mmreward.data.sources
        def jsonl(spec, media_dir):
            for row, text in enumerate(Path(spec.path).read_text().splitlines()):
                try:
                    yield parse_record(json.loads(text), base_dir=Path(spec.path).parent)
                except ValueError as err:
                    yield Skip(row, str(err))
        monkeypatch.setitem(SOURCES, "jsonl", jsonl)
    source = {"name": "mine", "converter": "jsonl", "path": str(tmp_path / "pairs.jsonl")}
    manifest = build_recipe(_recipe(tmp_path, [source], splits={"all": 1.0}), tmp_path / "out")
    counts = manifest["sources"]["mine"]
    assert (counts["read"], counts["kept"], counts["skipped"]) == (3, 2, 1)
    (skipped,) = counts["skipped_rows"]
    assert skipped["row"] == 1 and skipped["source"] == "mine" and skipped["reason"]
    assert [r.id for r in load_split(tmp_path / "out", "all")] == ["mine/p1", "mine/p2"]


def test_balance_sides_swaps_a_seeded_half_of_the_pairs(tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"q{i}", "a": {"text": "good"}, "b": {"text": "bad"}, "label": "A"}
            for i in range(60)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = {"name": "s", "converter": "jsonl", "path": str(tmp_path / "pairs.jsonl"), "balance_sides": True}
    manifest = build_recipe(_recipe(tmp_path, [source], splits={"all": 1.0}), tmp_path / "out")
    records = load_split(tmp_path / "out", "all")
    swapped = [r for r in records if r.label == "B"]
    assert 15 <= len(swapped) <= 45 and manifest["sources"]["s"]["swapped"] == len(swapped)
    assert all(r.b.text == "good" and r.meta["sides_swapped"] for r in swapped)


def _shard_bytes(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*-*.jsonl"))}


def test_rebuilding_gives_byte_identical_shards_and_removes_stale_ones(tmp_path):
    first = build_recipe(DEMO, tmp_path / "a", overrides={**SMALL, "shard_size": 7})
    assert len(first["splits"]["train"]["shards"]) > 1
    shards = _shard_bytes(tmp_path / "a")
    media = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a" / "media").rglob("*.*")}
    build_recipe(DEMO, tmp_path / "a", overrides={**SMALL, "shard_size": 7})
    build_recipe(DEMO, tmp_path / "b", overrides={**SMALL, "shard_size": 7})
    assert _shard_bytes(tmp_path / "a") == shards == _shard_bytes(tmp_path / "b")
    assert {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b" / "media").rglob("*.*")} == media
    # A rebuild with fewer shards and fewer pairs leaves no stale shard or media file behind.
    build_recipe(DEMO, tmp_path / "a", overrides={"sources.shapes_images.options.n": 5,
                                                  "sources.shapes_videos.options.n": 2})
    assert sorted(_shard_bytes(tmp_path / "a")) == ["test-00000.jsonl", "train-00000.jsonl"]
    assert len(list((tmp_path / "a" / "media").rglob("*.*"))) == 2 * (5 + 2)


def test_unknown_keys_are_errors_naming_the_valid_ones(tmp_path):
    with pytest.raises(RecipeError, match="'sedd'.*valid keys: name, sources, seed, splits, group_by, shard_size"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1)], sedd=1))
    with pytest.raises(RecipeError, match=r"sources\[0\]: unknown key\(s\) 'wieght'; valid keys: name, converter"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1, wieght=2)]))
    with pytest.raises(RecipeError, match="filters: unknown key.*'drop_tie'.*drop_ties, require_media, labels"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1, filters={"drop_tie": True})]))


def test_unknown_converter_is_an_error_listing_the_sources(tmp_path):
    with pytest.raises(RecipeError, match="unknown converter 'rlaif'") as err:
        load_recipe(_recipe(tmp_path, [{"name": "s", "converter": "rlaif"}]))
    assert all(name in str(err.value) for name in SOURCES)


def test_invalid_values_are_errors(tmp_path):
    with pytest.raises(RecipeError, match="sum to 1"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1)], splits={"train": 0.8, "test": 0.3}))
    with pytest.raises(RecipeError, match="unique"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1), _shapes("s", 2)]))
    with pytest.raises(RecipeError, match="group_by"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1)], group_by="image"))
    with pytest.raises(RecipeError, match="weight"):
        load_recipe(_recipe(tmp_path, [_shapes("s", 1, weight=-1)]))


def test_overrides_as_key_value_strings_and_unknown_source_names(tmp_path):
    recipe = load_recipe(DEMO, ["seed=3", "sources.shapes_videos.options.n=5", "sources.shapes_images.weight=2"])
    assert recipe.seed == 3 and recipe.sources[1].options["n"] == 5 and recipe.sources[0].weight == 2
    with pytest.raises(RecipeError, match="no source named 'nope' .*shapes_images, shapes_videos"):
        load_recipe(DEMO, {"sources.nope.weight": 2})
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(DEMO, {"sources.shapes_images.wieght": 2})


def test_demo_yaml_is_the_demo_recipe_and_write_demo_pairs_builds_it(tmp_path):
    assert load_recipe(DEMO) == demo_recipe()
    paths = write_demo_pairs(tmp_path, n_images=10, n_videos=2)
    assert set(paths) == {"train", "test", "manifest"} and all(p.is_file() for p in paths.values())
    assert len(load_split(tmp_path, "train")) + len(load_split(tmp_path, "test")) == 12


def test_load_split_names_the_splits_it_has(small_demo):
    with pytest.raises(KeyError, match="'val'.*train, test"):
        load_split(small_demo[0], "val")


def test_prompt_groups_key_embedded_images_by_content(tmp_path, monkeypatch):
    """One generic question about many images: rows that share an image share a split, others spread out."""
    from PIL import Image

    def rows(spec, media_dir):
        folder = media_dir / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(80):  # image i//2: two rows per image, each written under its own row name
            Image.new("RGB", (4, 4), (i // 2, 0, 0)).save(folder / f"{i}.png")
            yield PreferencePair(id=str(i), prompt="Describe the image.",
                                 media=[MediaItem(type="image", path=f"{spec.name}/{i}.png", base_dir=media_dir)],
                                 a=Candidate(text="x"), b=Candidate(text="y"), label="A")

    monkeypatch.setitem(SOURCES, "same_question", rows)
    build_recipe(_recipe(tmp_path, [{"name": "q", "converter": "same_question"}], splits={"train": 0.5, "test": 0.5}),
                 tmp_path / "out")
    split_of = {int(r.id.split("/")[1]): s for s in ("train", "test") for r in load_split(tmp_path / "out", s)}
    assert all(split_of[2 * k] == split_of[2 * k + 1] for k in range(40))
    assert 10 <= sum(s == "test" for s in split_of.values()) <= 70


def test_every_recipe_in_data_recipes_parses():
    recipes = sorted((ROOT / "data_recipes").glob("*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        recipe = load_recipe(path)
        first = path.read_text().splitlines()[0]
        assert first == f"# mmreward data build data_recipes/{path.name} --out {first.split('--out ')[-1]}", path
        assert recipe.sources


def test_the_videoalign_recipe_builds_from_a_csv_in_its_layout(tmp_path):
    import numpy as np

    from mmreward.data.synthetic import write_video

    (tmp_path / "videos").mkdir()
    for name in ("a", "b"):
        write_video(tmp_path / "videos" / f"{name}.mp4", np.zeros((4, 16, 16, 3), np.uint8), 4)
    rows = ["path_A,path_B,prompt,VQ,MQ,TA", "./videos/a.mp4,./videos/b.mp4,a cat,A,A,B",
            "./videos/b.mp4,./videos/a.mp4,a dog,same,same,A", "./videos/a.mp4,./videos/missing.mp4,a cow,A,B,A"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    recipe = ROOT / "data_recipes" / "video_videoalign.yaml"
    out = tmp_path / "out"
    manifest = build_recipe(recipe, out, overrides={"sources.t2v_pairs.path": str(tmp_path / "train.csv"),
                                                    "splits": {"all": 1.0}})
    counts = manifest["sources"]["t2v_pairs"]
    assert (counts["read"], counts["kept"], counts["skipped"]) == (3, 2, 1)
    records = {r.prompt: r for r in load_split(out, "all")}
    cat = records["a cat"].swapped() if records["a cat"].meta.get("sides_swapped") else records["a cat"]
    assert cat.label == "A" and cat.dimensions == {"VQ": "A", "MQ": "A", "TA": "B"}
    assert cat.a.media[0].local_path() == tmp_path / "videos" / "a.mp4"  # outside the output: absolute
