"""Importers for published reward models: load their released checkpoint layouts into our scorers.

    scorer = load_scorer("checkpoints/VideoReward")            # auto-detected: a VideoAlign checkpoint
    scorer = load_scorer("Skywork-VL-Reward-7B", kind="skywork_vl")

Each importer module holds a scorer class (registered in `mmreward.scoring.SCORERS` under its kind) and a
`detect(path)` that recognises the published layout from file names alone (cheap: nothing is loaded).
`PUBLISHED_LAYOUTS` lists them in the order they are tried; this module imports them only when asked.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# kind -> module holding `detect(path) -> bool`. Tried in order; the first match wins.
PUBLISHED_LAYOUTS: dict[str, str] = {
    "videoalign": "mmreward.models.importers.videoalign",
    "skywork_vl": "mmreward.models.importers.skywork",
}


def detect_published(path: str | Path) -> str | None:
    """The kind of a published reward-model folder, or None when it is none we import.

    Args:
        path: a local folder (hub ids are never detected: pass `kind` for those).

    Returns:
        A key of `PUBLISHED_LAYOUTS`, or None.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    for kind, module in PUBLISHED_LAYOUTS.items():
        if importlib.import_module(module).detect(folder):
            return kind
    return None
