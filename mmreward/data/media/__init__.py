"""Images and videos for the models: the one decode path (training, scoring and tools all call this).

    from mmreward.data.media import load_image, load_video, VideoSampling
    image = load_image("cat.jpg", max_pixels=1024 * 28 * 28)        # PIL RGB, EXIF-rotated, resized
    video = load_video("clip.mp4", fps=2.0, start=1.0, end=5.0)     # Video: frames (T, 3, H, W) uint8
    video = load_video(clip_bytes, sampling=VideoSampling(nframes=16, backend="pyav"))

The parts, each importable on its own (dependencies point down this list; no module imports this package's
``__init__``):

- ``load``      `load_image`, `load_video`, `Video`: the public entry points, the cache lookups, the fallbacks
- ``backends``  decord and PyAV readers that decode only the sampled frames (``VideoSource``, ``READERS``)
- ``index``     one PyAV demux pass: presentation times, frame rate, keyframes (``FrameIndex``)
- ``arrays``    in-memory media (numpy / torch / PIL): validation, host copies, content keys
- ``fetch``     URL / bytes / base64 sources, bounded in size and time (``set_media_limits``)
- ``resize``    per-frame resize as frames are decoded, bit-identical to torchvision
- ``cache``     the in-process LRU cache of decoded media
- ``sampling``  the sampling contract and its pure maths (``VideoSampling``, ``smart_resize``, ``MediaError``)

The old flat modules (``mmreward.data.media_sampling``, ``video_backends``, …) are aliases of these.
"""

from mmreward.data.media.arrays import (
    VideoArray,
    array_key,
    host_array,
    image_array,
    is_array,
    to_uint8,
    video_array,
)
from mmreward.data.media.backends import READERS, VideoSource
from mmreward.data.media.cache import CACHE, clear_media_cache, media_cache_info, set_media_cache_bytes
from mmreward.data.media.fetch import MediaLimits, download, limits, read_base64, set_media_limits
from mmreward.data.media.index import FrameIndex, probe_index
from mmreward.data.media.load import (
    DECORD_MAX_DEFAULT_PIXELS,
    ImageSource,
    Video,
    load_image,
    load_video,
    plan,
)
from mmreward.data.media.resize import resize_frame
from mmreward.data.media.sampling import (
    BACKENDS,
    DEFAULT_MAX_SOURCE_PIXELS,
    FramePlan,
    MediaError,
    VideoSampling,
    plan_frames,
    smart_resize,
    video_frame_size,
)

__all__ = [
    "BACKENDS",
    "CACHE",
    "DECORD_MAX_DEFAULT_PIXELS",
    "DEFAULT_MAX_SOURCE_PIXELS",
    "READERS",
    "FrameIndex",
    "FramePlan",
    "ImageSource",
    "MediaError",
    "MediaLimits",
    "Video",
    "VideoArray",
    "VideoSampling",
    "VideoSource",
    "array_key",
    "clear_media_cache",
    "download",
    "host_array",
    "image_array",
    "is_array",
    "limits",
    "load_image",
    "load_video",
    "media_cache_info",
    "plan",
    "plan_frames",
    "probe_index",
    "read_base64",
    "resize_frame",
    "set_media_cache_bytes",
    "set_media_limits",
    "smart_resize",
    "to_uint8",
    "video_array",
    "video_frame_size",
]
