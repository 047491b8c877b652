"""Data recipes: a YAML list of sources (converter, filters, weight) built into JSONL shards and a manifest.

    manifest = build_recipe(load_recipe("data_recipes/image_mix.yaml"), "out/image_mix")
    train = load_split("out/image_mix", "train")

`build.py` holds the recipe types and the build; `ops.py` the per-record steps (filters, media anchoring, swaps,
deterministic splits); `demo.py` the demo recipe over the synthetic shapes set.
"""

from __future__ import annotations

from mmreward.data.recipe.build import (
    Filters,
    Recipe,
    RecipeError,
    RecipeSource,
    build_recipe,
    load_recipe,
    load_split,
)
from mmreward.data.recipe.demo import demo_recipe, write_demo_pairs

__all__ = ["Filters", "Recipe", "RecipeError", "RecipeSource", "build_recipe", "demo_recipe", "load_recipe",
           "load_split", "write_demo_pairs"]
