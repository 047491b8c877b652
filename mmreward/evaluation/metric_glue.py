"""Old import path of `mmreward.evaluation.metrics.glue`: the metric registry and row-to-metric glue.

The name is the same module object (not a copy), so attributes and monkeypatching behave as on the new path.
"""

import sys

from mmreward.evaluation.metrics import glue as _module

sys.modules[__name__] = _module
