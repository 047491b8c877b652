"""Old import path of the synthetic preference set (`mmreward.data.synthetic.prefs`) and the demo recipe
(`mmreward.data.recipe.demo`), kept for existing imports.
"""

from mmreward.data.recipe.demo import DEMO_IMAGE_TARGET, DEMO_VIDEO_TARGET, demo_recipe, write_demo_pairs
from mmreward.data.synthetic.prefs import COLOURS, DIRECTIONS, POSITIONS, SHAPES, synthetic_pairs

__all__ = ["COLOURS", "DEMO_IMAGE_TARGET", "DEMO_VIDEO_TARGET", "DIRECTIONS", "POSITIONS", "SHAPES",
           "demo_recipe", "synthetic_pairs", "write_demo_pairs"]
