"""In-memory media (numpy / torch / PIL): same pixels and frame indices as lossless files, validation, cache keys."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mmreward.data.collate import MediaContract, build_unit, load_unit_media, media_source
from mmreward.data.media import (
    MediaError,
    VideoArray,
    clear_media_cache,
    load_image,
    load_video,
    media_cache_info,
    set_media_cache_bytes,
)
from mmreward.data.media.arrays import array_key, host_array, image_array, video_array
from mmreward.data.schema import MediaItem

RNG = np.random.default_rng(7)
FRAMES = RNG.integers(0, 256, (120, 24, 64, 3), dtype=np.uint8)  # 5 s at 24 fps (decord misreads PNG video 32 wide)
IMAGE = RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8)
# 120 frames at 24 fps sampled at 2 fps: round(5 s x 2) = 10 frames, linspace(0, 119, 10) rounded
# (step 13.22: 0, 13.2, 26.4, 39.7, 52.9, 66.1, 79.3, 92.6, 105.8, 119).
INDICES_2FPS = [0, 13, 26, 40, 53, 66, 79, 93, 106, 119]


def write_lossless(path, frames, fps):
    """PNG-coded video in a .mov: lossless RGB, exact timestamps (time base 1/fps)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture
def fresh_cache():
    clear_media_cache()
    before = media_cache_info()["max_bytes"]
    yield
    set_media_cache_bytes(before)
    clear_media_cache()


# ------------------------------------------------------------------------------------------------ images
@pytest.mark.parametrize("layout", ["hwc_numpy", "chw_tensor", "float_hwc", "float_chw_tensor", "pil"])
def test_image_array_gives_the_png_pixels(tmp_path, layout):
    Image.fromarray(IMAGE).save(tmp_path / "i.png")
    source = {
        "hwc_numpy": IMAGE,
        "chw_tensor": torch.from_numpy(IMAGE).permute(2, 0, 1),
        "float_hwc": IMAGE.astype(np.float32) / 255,
        "float_chw_tensor": torch.from_numpy(IMAGE).permute(2, 0, 1).double() / 255,
        "pil": Image.fromarray(IMAGE),
    }[layout]
    budget = {"max_pixels": 4 * 28 * 28, "factor": 28}  # forces a bicubic resize to 56 x 56
    expected = np.asarray(load_image(tmp_path / "i.png", **budget))
    got = np.asarray(load_image(source, **budget))
    assert got.shape == expected.shape == (56, 56, 3)
    assert np.array_equal(got, expected)


def test_uint8_channels_last_image_is_not_copied():
    assert np.shares_memory(image_array(IMAGE), IMAGE)
    tensor = torch.from_numpy(IMAGE.copy())
    assert np.shares_memory(host_array(tensor), tensor.numpy())
    assert host_array(torch.zeros(2, 2, dtype=torch.bfloat16)).dtype == np.float32  # numpy has no bfloat16


# ------------------------------------------------------------------------------------------------ videos
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_video_array_takes_the_frames_the_file_path_takes(tmp_path, backend, fresh_cache):
    path = write_lossless(tmp_path / "v.mov", FRAMES, 24)
    from_file = load_video(path, fps=2.0, backend=backend)
    from_array = load_video(FRAMES, fps=2.0, frames_fps=24)
    assert from_file.indices == from_array.indices == INDICES_2FPS
    assert torch.equal(from_file.frames, from_array.frames)
    assert from_array.timestamps == pytest.approx([i / 24 for i in INDICES_2FPS])
    assert from_array.timestamps == pytest.approx(from_file.timestamps)
    assert from_array.fps == pytest.approx(from_file.fps) == pytest.approx(10 / 120 * 24)
    assert (from_array.native_fps, from_array.total_frames, from_array.duration) == (24.0, 120, 5.0)
    assert from_array.backend == "array"


def test_video_layouts_and_float_frames_agree(fresh_cache):
    reference = load_video(FRAMES, frames_fps=24, cache=False).frames
    as_float_chw = torch.from_numpy(FRAMES).permute(0, 3, 1, 2).float() / 255
    got = load_video(VideoArray(as_float_chw, fps=24), cache=False)
    assert got.indices == INDICES_2FPS and torch.equal(got.frames, reference)


def test_video_window_and_nframes_follow_the_file_rules(tmp_path, fresh_cache):
    path = write_lossless(tmp_path / "v.mov", FRAMES, 24)
    kwargs = {"nframes": 6, "start": 1.0, "end": 3.0, "backend": "pyav"}
    from_file = load_video(path, **kwargs)
    from_array = load_video(FRAMES, frames_fps=24, **{k: v for k, v in kwargs.items() if k != "backend"})
    # Frames 24..72 (1 s to 3 s at 24 fps): linspace(24, 72, 6) = 24, 33.6, 43.2, 52.8, 62.4, 72.
    assert from_array.indices == from_file.indices == [24, 34, 43, 53, 62, 72]
    assert torch.equal(from_array.frames, from_file.frames)


# -------------------------------------------------------------------------------------------- validation
BAD_IMAGES = [
    (np.zeros((2, 4, 4, 3), np.uint8), "an image array must be 3-D, (H, W, 3) or (3, H, W); a 4-D array is a video"),
    (np.zeros((4, 4), np.uint8), "an image array must be 3-D"),
    (np.zeros((4, 5, 4), np.uint8), "needs 3 (RGB) channels, (H, W, 3) or (3, H, W); got shape (4, 5, 4)"),
    (np.zeros((4, 4, 3), np.int64), "dtype int64 is not supported; give uint8 (0-255) or float in [0, 1]"),
    (np.zeros((4, 4, 3), bool), "dtype bool is not supported"),
    (np.full((4, 4, 3), np.nan, np.float32), "contains NaN"),
    (np.full((4, 4, 3), 1.5, np.float32), "float values must lie in [0, 1], got min 1.5, max 1.5"),
    (np.full((4, 4, 3), -np.inf, np.float32), "float values must lie in [0, 1], got min -inf"),
    (np.zeros((0, 4, 3), np.uint8), "empty image"),
    (np.zeros((3, 3, 3), object), "dtype object is not supported"),
]


@pytest.mark.parametrize(("array", "message"), BAD_IMAGES)
def test_bad_image_arrays_raise_media_errors_that_say_why(array, message):
    with pytest.raises(MediaError) as err:
        load_image(array)
    assert message in str(err.value)
    assert str(err.value).startswith(f"<array {tuple(array.shape)} {array.dtype}>: ")


BAD_VIDEOS = [
    (np.zeros((2, 4, 4, 3), np.uint8), None, "fps of a video array is required"),
    (np.zeros((2, 4, 4, 3), np.uint8), 0, "fps of a video array must be a number > 0, got 0"),
    (np.zeros((2, 4, 4, 3), np.uint8), float("nan"), "must be a number > 0, got nan"),
    (np.zeros((0, 4, 4, 3), np.uint8), 24, "video with no frames (T = 0)"),
    (np.zeros((4, 4, 3), np.uint8), 24, "a video array must be 4-D, (T, H, W, 3) or (T, 3, H, W); a 3-D array is"),
    (np.zeros((2, 4, 4, 1), np.uint8), 24, "a video array needs 3 (RGB) channels"),
    (np.full((2, 4, 4, 3), np.nan, np.float16), 24, "contains NaN"),
]


@pytest.mark.parametrize(("array", "fps", "message"), BAD_VIDEOS)
def test_bad_video_arrays_raise_media_errors_that_say_why(array, fps, message):
    with pytest.raises(MediaError, match="^<array") as err:
        load_video(array, frames_fps=fps, cache=False)
    assert message in str(err.value)
    with pytest.raises(MediaError):
        video_array(array, fps)


def test_a_broadcast_view_claiming_terabytes_is_refused_before_any_copy():
    huge = np.broadcast_to(IMAGE[:1, :1], (10**6, 1000, 1000, 3))  # 3 TB claimed over 3 bytes
    for call in (lambda: array_key(huge), lambda: load_video(huge, frames_fps=24, cache=False),
                 lambda: load_video(torch.from_numpy(IMAGE[:1, :1].copy()).expand(10**6, 1000, 1000, 3),
                                    frames_fps=24)):
        with pytest.raises(MediaError, match=r"a view of 3000000000000 bytes over \d+ bytes of memory"):
            call()
    static = np.broadcast_to(IMAGE, (8, *IMAGE.shape))  # small: a static clip from one frame is fine
    assert load_video(static, frames_fps=4, nframes=2, cache=False).frames.shape[0] == 2


def test_unsupported_objects_are_media_errors():
    with pytest.raises(MediaError, match="unsupported in-memory media of type dict"):
        image_array({"not": "an array"})
    with pytest.raises(MediaError, match="unsupported tensor"):
        host_array(torch.zeros(2, 2, dtype=torch.complex64).to_sparse())
    with pytest.raises(MediaError, match="unsupported tensor"):
        load_image(torch.zeros(4, 4, 3, device="meta"))
    with pytest.raises(MediaError, match=r"dtype datetime64\[s\] is not supported"):
        array_key(np.zeros((2, 4, 4, 3), "M8[s]"))  # exposes no buffer to hash


# ------------------------------------------------------------------------------------- keys and caching
def test_array_key_is_a_content_hash():
    buffer = FRAMES[:4].copy()
    key = array_key(buffer)
    assert array_key(buffer.copy()) == key  # same content elsewhere: same key
    assert array_key(torch.from_numpy(buffer)) == key
    buffer[0, 0, 0, 0] ^= 1  # the loop refills its buffer
    assert array_key(buffer) != key
    assert array_key(buffer.reshape(2, 2, 24, 64, 3)) != array_key(buffer)  # same bytes, other shape
    assert key.endswith(":|u1:(4, 24, 64, 3)")  # dtype and shape are part of the identity
    assert array_key(VideoArray(buffer, 24)) != array_key(VideoArray(buffer, 25))


def test_media_cache_never_serves_old_contents_of_a_reused_buffer(fresh_cache):
    buffer = FRAMES.copy()
    first = load_video(buffer, frames_fps=24)
    assert load_video(buffer, frames_fps=24) is first  # unchanged contents: a hit
    buffer[:] = 255 - buffer  # new contents, same object and address
    second = load_video(buffer, frames_fps=24)
    assert second is not first and not torch.equal(second.frames, first.frames)
    assert torch.equal(second.frames, load_video(buffer.copy(), frames_fps=24, cache=False).frames)
    assert load_video(buffer, frames_fps=12) is not second  # another native rate is another video


def test_media_items_with_arrays_load_and_key_like_their_contents():
    contract = MediaContract()
    video = MediaItem(type="video", array=torch.from_numpy(FRAMES), fps=24)
    image = MediaItem(type="image", array=IMAGE)
    assert isinstance(media_source(video), VideoArray) and media_source(image) is IMAGE
    unit = build_unit("r", user_text="score", media=[image, video])
    images, videos = load_unit_media(unit, contract)
    assert np.array_equal(np.asarray(images[0]), np.asarray(load_image(IMAGE, max_pixels=contract.image_max_pixels,
                                                                         min_pixels=contract.image_min_pixels)))
    assert videos[0].indices == INDICES_2FPS
    same = build_unit("r", user_text="score", media=[MediaItem(type="image", array=IMAGE.copy()), video])
    other = build_unit("r", user_text="score", media=[MediaItem(type="image", array=255 - IMAGE), video])
    assert same.key == unit.key and other.key != unit.key
    with pytest.raises(MediaError, match="fps of a video array is required"):
        load_unit_media(build_unit("r", user_text="s", media=[MediaItem(type="video", array=FRAMES)]), contract)
