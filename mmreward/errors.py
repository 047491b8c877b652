"""The package's one error root: user mistakes and bad inputs are `MMRewardError`s; anything else is a bug.

`on_error="skip"` paths catch `DataError` (bad records, bad media, records that do not fit the model) and nothing
else, so a bug in an encoder or a model shows its traceback instead of being reported as a skipped record. The CLI
turns any `MMRewardError` into a one- or two-line message and exit code 2 (`-v` shows the traceback).

Each class also derives from the builtin it replaced (`ValueError`, `RuntimeError`) so that existing
`except ValueError` callers keep working.
"""

from __future__ import annotations


class MMRewardError(Exception):
    """Root of every error this package raises on purpose (bad input, bad config, missing file)."""


class DataError(MMRewardError, ValueError):
    """A record, data file or media item that cannot be used; per-record `on_error="skip"` catches these."""


class ConfigError(MMRewardError, ValueError):
    """A config file or flag names an unknown key or a value of the wrong type, or a run setup is refused."""


class CheckpointError(MMRewardError, RuntimeError):
    """A model path or checkpoint that is missing, incomplete, corrupt or inconsistent; the message names the file."""


class DependencyError(MMRewardError, ImportError):
    """An optional dependency (extra) is not installed; the message names the pip command."""


class ToolError(MMRewardError, ValueError):
    """Bad arguments or a failed tool call; the message is written for the model, which reads it and retries."""
