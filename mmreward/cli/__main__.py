"""`python -m mmreward.cli …` (and `torchrun … -m mmreward.cli score …`): the same as the `mmreward` command."""

import sys

from mmreward.cli import main

sys.exit(main())
