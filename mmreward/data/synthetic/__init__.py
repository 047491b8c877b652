"""Synthetic data whose right answers are known: media that encode their own frame index, and preference pairs.

- `media`: `index_frame` / `decode_index` (a frame that carries its index in its pixels), `write_video`,
  `write_index_video` — the media tests, `tools/bench_decode.py`, the demo data;
- `prefs`: `synthetic_pairs`, the shapes / motions preference set (`SOURCES["synthetic_shapes"]`).
"""

from __future__ import annotations

from mmreward.data.synthetic.media import decode_index, index_frame, write_index_video, write_video
from mmreward.data.synthetic.prefs import synthetic_pairs

__all__ = ["decode_index", "index_frame", "synthetic_pairs", "write_index_video", "write_video"]
