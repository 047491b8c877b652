"""Fixtures for data tests: small synthetic videos whose frames encode their own index (built once per session)."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from mmreward.data.synthetic import write_index_video


@dataclass(frozen=True)
class IndexVideo:
    """A generated video: frame i shows index i (``synthetic.decode_index``)."""

    path: Path
    n_frames: int
    fps: float
    height: int = 64
    width: int = 96


VIDEO_SPECS = {
    # name: (file name, frames, fps, write_video kwargs)
    "h264": ("idx.mp4", 60, 10.0, {}),  # x264 defaults: B-frames, long GOP
    "h264_gop": ("idx_gop.mp4", 80, 10.0, {"gop": 8}),  # many keyframes: exercises PyAV seeking
    "mkv": ("idx.mkv", 50, 12.5, {"gop": 10}),  # no frame count in the header; non-integer fps
    "mpeg4": ("idx.avi", 40, 8.0, {"codec": "mpeg4"}),  # another codec and container, no B-frames
}


@pytest.fixture(scope="session")
def index_videos(tmp_path_factory) -> dict[str, IndexVideo]:
    """name -> IndexVideo for every entry of VIDEO_SPECS (64x96, 4-8 s)."""
    root = tmp_path_factory.mktemp("index_videos")
    videos = {}
    for name, (file_name, n, fps, kw) in VIDEO_SPECS.items():
        write_index_video(root / file_name, n, fps=fps, **kw)
        videos[name] = IndexVideo(root / file_name, n, fps)
    return videos
