"""The tool-necessity recipe: `SOURCES["synthetic_tool_task"]` videos and images, split 80/20 by pair.

``data_recipes/tool_task.yaml`` holds the same recipe with the default sizes (a test checks it).

    build_recipe(tool_task_recipe(n_videos=160, n_images=160), "/tmp/tool-task")
"""

from __future__ import annotations

from mmreward.data.recipe.build import Recipe, RecipeSource


def tool_task_recipe(n_videos: int = 160, n_images: int = 160, seed: int = 0, video_places=None,
                     image_places=None) -> Recipe:
    """The tool-necessity recipe (``data_recipes/tool_task.yaml`` with the default sizes).

    Args:
        n_videos: video pairs ("a grey ball that flashes red at about 1.5 s").
        n_images: image pairs ("a tile whose top left badge is red").
        seed: generation and split seed.
        video_places, image_places: the flash times / quadrants the prompts may name (None: all of them); fewer
            places make a smaller task (the tests' short settings), never one the first look can answer.

    Returns:
        A ``Recipe`` with sources ``flash_videos`` and ``badge_images`` (a source with n = 0 is left out), split
        80/20 by pair id.
    """
    sources = []
    for name, kind, n, places in (("flash_videos", "video", n_videos, video_places),
                                  ("badge_images", "image", n_images, image_places)):
        options = {"kind": kind, "n": n, "seed": seed}
        if places is not None:
            options["places"] = list(places)
        if n:
            sources.append(RecipeSource(name=name, converter="synthetic_tool_task", options=options))
    return Recipe(name="tool_task", seed=seed, splits={"train": 0.8, "test": 0.2}, group_by="id",
                  shard_size=5000, sources=sources)
