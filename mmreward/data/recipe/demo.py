"""The demo data recipe: the synthetic shapes / motions set (`SOURCES["synthetic_shapes"]`), split 80/20.

``data_recipes/demo.yaml`` holds the same recipe with the default sizes (a test checks it).

    write_demo_pairs("/tmp/mmreward-demo-data")   # shards, media/ and manifest.json
"""

from __future__ import annotations

from pathlib import Path

from mmreward.data.recipe.build import Recipe, RecipeSource, build_recipe

DEMO_IMAGE_TARGET = {"colour": "red", "shape": "circle", "position": "left"}
DEMO_VIDEO_TARGET = {"motion": "right"}


def demo_recipe(n_images: int = 480, n_videos: int = 240, seed: int = 0) -> Recipe:
    """The demo recipe (``data_recipes/demo.yaml`` holds the same with the default sizes).

    Args:
        n_images: image pairs.
        n_videos: video pairs (64x64, 8 frames at 4 fps).
        seed: generation and split seed.

    Returns:
        A ``Recipe`` with sources ``shapes_images`` ("a red circle on the left") and
        ``shapes_videos`` ("a … square moving right"), split 80/20 by pair.
    """
    sources = [
        RecipeSource(name="shapes_images", converter="synthetic_shapes",
                     options={"kind": "image", "n": n_images, "seed": seed, "target": dict(DEMO_IMAGE_TARGET)}),
        RecipeSource(name="shapes_videos", converter="synthetic_shapes",
                     options={"kind": "video", "n": n_videos, "seed": seed, "target": dict(DEMO_VIDEO_TARGET)}),
    ]
    # One prompt per kind, so pairs (not prompts) are what the split holds out.
    return Recipe(name="demo", seed=seed, splits={"train": 0.8, "test": 0.2}, group_by="id",
                  shard_size=5000, sources=sources)


def write_demo_pairs(out_dir: str | Path, n_images: int = 480, n_videos: int = 240,
                     seed: int = 0) -> dict[str, Path]:
    """Build the demo data set (:func:`demo_recipe`) into ``out_dir``.

    Args:
        out_dir: output folder (shards, ``media/`` and ``manifest.json``).
        n_images: image pairs.
        n_videos: video pairs.
        seed: generation and split seed.

    Returns:
        ``{"train": first train shard, "test": first test shard, "manifest": manifest.json}``; read a split
        with ``mmreward.data.recipe.load_split(out_dir, "train")``.
    """
    out_dir = Path(out_dir)
    manifest = build_recipe(demo_recipe(n_images, n_videos, seed), out_dir)
    # shard_size 5000 keeps each split of the demo in one shard (every split has at least one).
    paths = {split: out_dir / info["shards"][0] for split, info in manifest["splits"].items()}
    return {**paths, "manifest": out_dir / "manifest.json"}
