"""Old import path of `mmreward.evaluation.benchmarks.image`: the image benchmark loaders.

The name is the same module object (not a copy), so attributes and monkeypatching behave as on the new path.
"""

import sys

from mmreward.evaluation.benchmarks import image as _module

sys.modules[__name__] = _module
