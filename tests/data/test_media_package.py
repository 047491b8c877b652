"""`data/media/` is a package whose parts keep their old (released) flat import paths, and whose parts never
import its ``__init__`` (which imports them all)."""

import ast
import importlib
from pathlib import Path

import pytest

import mmreward.data.media as media

# The flat modules that existed before the package; newer parts have only their package path.
OLD_PATHS = {"media_cache": "cache", "media_sampling": "sampling", "video_backends": "backends"}


@pytest.mark.parametrize("old, new", sorted(OLD_PATHS.items()))
def test_old_module_paths_are_the_new_modules(old, new):
    assert importlib.import_module(f"mmreward.data.{old}") is importlib.import_module(f"mmreward.data.media.{new}")


def test_the_public_names_come_from_their_parts():
    assert {"load_image", "load_video", "MediaError", "VideoSampling", "set_media_limits"} <= set(media.__all__)
    assert all(hasattr(media, name) for name in media.__all__)
    assert media.MediaError is media.sampling.MediaError and media.load_video is media.load.load_video
    assert media.VideoSource is media.backends.VideoSource and media.FrameIndex is media.index.FrameIndex


def test_no_part_imports_the_package_init():
    offenders = []
    for path in sorted(Path(media.__file__).parent.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "mmreward.data.media":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
