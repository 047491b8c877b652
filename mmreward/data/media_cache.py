"""Old import path of `mmreward.data.media.cache` (the media modules are the `data/media/` package now).

The name is the same module object (not a copy), so attributes and monkeypatching behave as on the new path.
"""

import sys

from mmreward.data.media import cache as _module

sys.modules[__name__] = _module
