"""Tests for mmreward.data.media: the right frames come back (checked through pixel-encoded indices) with
both decoders, sampling and pixel budgets equal qwen-vl-utils', failures raise MediaError, the cache works."""

import base64
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from qwen_vl_utils import vision_process as qv

from mmreward.data import media
from mmreward.data.media import (
    MediaError,
    VideoSampling,
    clear_media_cache,
    load_image,
    load_video,
    media_cache_info,
    set_media_cache_bytes,
    smart_resize,
)
from mmreward.data.media.backends import PyAVReader, VideoSource
from mmreward.data.media.sampling import frame_range, smart_nframes, video_frame_size
from mmreward.data.synthetic import decode_index, index_frame, write_index_video

BACKENDS = ["decord", "pyav"]


def decoded(video) -> list[int]:
    return [decode_index(f) for f in video.frames]


def qwen_indices(total, native_fps, **ele):
    """Indices (and sample fps) qwen-vl-utils' decord reader picks: its frame range, smart_nframes, linspace."""
    start, end, count = qv.calculate_video_frame_range(ele, total, native_fps)
    n = qv.smart_nframes(
        {k: v for k, v in ele.items() if k not in ("video_start", "video_end")}, count, native_fps
    )
    return torch.linspace(start, end, n).round().long().tolist(), n / count * native_fps


@pytest.fixture
def fresh_cache():
    clear_media_cache()
    before = media_cache_info()["max_bytes"]
    yield
    set_media_cache_bytes(before)
    clear_media_cache()


# ------------------------------------------------------------------------------------- pure sampling maths
def test_smart_resize_equals_qwen_on_a_grid():
    sizes = [1, 3, 27, 28, 29, 55, 64, 96, 100, 224, 333, 480, 720, 1080, 1920, 4000]
    budgets = [(None, None), (128 * 784, 768 * 784), (4 * 784, 1024 * 784), (1000, 50_000)]
    for factor in (28, 32):
        for h in sizes:
            for w in sizes:
                for lo, hi in budgets:
                    try:
                        expected = qv.smart_resize(h, w, factor, min_pixels=lo, max_pixels=hi)
                    except ValueError:
                        with pytest.raises(ValueError):
                            smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
                        continue
                    got = smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
                    assert got == expected, (h, w, factor, lo, hi)
                    assert got[0] % factor == 0 and got[1] % factor == 0


def test_smart_nframes_and_frame_range_equal_qwen():
    for total in (1, 2, 5, 17, 60, 301, 2000):
        for native in (7.5, 10.0, 29.97, 60.0):
            for req in (
                {"fps": 2.0},
                {"fps": 0.5, "min_frames": 3, "max_frames": 9},
                {"nframes": 5},
                {"nframes": 8},
            ):
                s = VideoSampling(**req)
                try:
                    expected = qv.smart_nframes(req, total, native)
                except ValueError:
                    with pytest.raises(ValueError):
                        smart_nframes(s, total, native)
                    continue
                assert smart_nframes(s, total, native) == expected
            for start, end in ((None, None), (0.5, None), (None, 1.0), (1.0, 3.3), (-1.0, 2.0), (0.0, 1e9)):
                ele = {"video_start": start, "video_end": end}
                try:
                    expected = qv.calculate_video_frame_range(ele, total, native)
                except ValueError:
                    with pytest.raises(ValueError):
                        frame_range(start, end, total, native)
                    continue
                assert frame_range(start, end, total, native) == expected


def test_video_sampling_contract():
    assert VideoSampling().fps == 2.0 and VideoSampling(nframes=16).fps is None
    s = VideoSampling(nframes=16, max_pixels=256 * 784, backend="pyav")
    assert VideoSampling.from_dict(s.to_dict()) == s
    assert VideoSampling.qwen_defaults(32).min_pixels == 128 * 32 * 32
    with pytest.raises(ValueError, match="not both"):
        VideoSampling(fps=1.0, nframes=8)
    with pytest.raises(ValueError, match="unknown"):
        VideoSampling.from_dict({"fsp": 2})
    with pytest.raises(ValueError):
        VideoSampling(backend="ffmpeg")


def test_decode_index_survives_quarter_resize():
    frames = torch.from_numpy(np.stack([index_frame(i, 64, 96) for i in range(0, 4096, 97)])).permute(
        0, 3, 1, 2
    )
    small = torch.nn.functional.interpolate(frames.float(), size=(16, 24), mode="bicubic", antialias=True)
    assert [decode_index(f) for f in small.clamp(0, 255)] == list(range(0, 4096, 97))


# -------------------------------------------------------------------------------------- video sampling
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["h264", "h264_gop", "mkv", "mpeg4"])
def test_fps_sampling_returns_the_frames_qwen_picks(index_videos, name, backend):
    v = index_videos[name]
    video = load_video(v.path, backend=backend, cache=False)
    expected, sample_fps = qwen_indices(v.n_frames, v.fps, fps=2.0)
    assert video.indices == expected and decoded(video) == expected
    assert video.timestamps == pytest.approx([i / v.fps for i in expected])
    assert video.fps == pytest.approx(sample_fps) and video.native_fps == pytest.approx(v.fps)
    assert video.total_frames == v.n_frames and video.duration == pytest.approx(v.n_frames / v.fps)
    assert video.frames.dtype == torch.uint8 and video.backend == backend
    assert tuple(video.frames.shape[2:]) == video_frame_size(
        VideoSampling(), len(expected), v.height, v.width
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_nframes_window_and_frame_bounds(index_videos, backend):
    v = index_videos["h264_gop"]  # 80 frames at 10 fps
    cases = [
        (dict(nframes=8), dict(nframes=8)),
        (dict(nframes=7), dict(nframes=7)),  # rounded to an even count, as qwen-vl-utils does
        (dict(fps=1.0, start=1.05, end=6.5), dict(fps=1.0, video_start=1.05, video_end=6.5)),
        (dict(nframes=6, start=2.0), dict(nframes=6, video_start=2.0)),
        (dict(fps=0.2), dict(fps=0.2)),  # below min_frames=4 -> 4
        (dict(sampling=VideoSampling(fps=10.0, max_frames=12)), dict(fps=10.0, max_frames=12)),
        (dict(sampling=VideoSampling(fps=0.1, min_frames=10)), dict(fps=0.1, min_frames=10)),
    ]
    for kwargs, ele in cases:
        video = load_video(v.path, backend=backend, cache=False, **kwargs)
        expected, sample_fps = qwen_indices(v.n_frames, v.fps, **ele)
        assert video.indices == expected and decoded(video) == expected, kwargs
        assert video.fps == pytest.approx(sample_fps)
        assert len(video.indices) % 2 == 0


def test_both_backends_agree_on_frames_and_pixels(index_videos):
    for v in index_videos.values():
        for kwargs in (dict(), dict(nframes=10), dict(fps=3.0, start=0.5, end=3.5)):
            a = load_video(v.path, backend="decord", cache=False, **kwargs)
            b = load_video(v.path, backend="pyav", cache=False, **kwargs)
            assert a.indices == b.indices and decoded(a) == decoded(b) == a.indices
            assert a.frames.shape == b.frames.shape
            # Same codec output (bit-exact here); other FFmpeg builds may round YUV->RGB differently.
            assert (a.frames.float() - b.frames.float()).abs().mean() < 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(nframes=8),
        dict(fps=1.0, start=1.0, end=5.0),
        dict(min_pixels=16 * 784, max_pixels=40 * 784),
    ],
)
def test_decord_frames_equal_qwen_fetch_video(index_videos, monkeypatch, kwargs):
    monkeypatch.setattr(qv, "get_video_reader_backend", lambda: "decord")
    v = index_videos["h264"]
    ele = {
        "video": str(v.path),
        **{{"start": "video_start", "end": "video_end"}.get(k, k): x for k, x in kwargs.items()},
    }
    expected = qv.fetch_video(ele)
    ours = load_video(v.path, backend="decord", cache=False, **kwargs)
    assert torch.equal(ours.frames.float(), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_budgets(index_videos, backend):
    v = index_videos["h264"]
    for kwargs in (
        dict(max_pixels=6 * 784, min_pixels=4 * 784),
        dict(total_pixels=40 * 784, min_pixels=784),
        dict(sampling=VideoSampling(factor=32, min_pixels=1024, max_pixels=8 * 1024)),
    ):
        video = load_video(v.path, backend=backend, cache=False, nframes=6, **kwargs)
        s = media.load._request(kwargs.pop("sampling", None), None, 6, **kwargs)
        h, w = video.frames.shape[2:]
        assert (h, w) == video_frame_size(s, 6, v.height, v.width)
        assert h % s.factor == 0 and w % s.factor == 0 and h * w <= s.max_pixels
        assert decoded(video) == video.indices


def test_pyav_reader_sparse_unsorted_repeated_indices(index_videos):
    import av

    with av.open(
        str(index_videos["mkv"].path)
    ) as container:  # frame count comes from demuxing, not the header
        assert container.streams.video[0].frames == 0
    for name in ("h264", "h264_gop", "mkv"):
        v = index_videos[name]
        reader = PyAVReader(VideoSource(str(v.path), v.path), num_threads=1)
        try:
            indices = [v.n_frames - 1, 3, 3, 0, 17, v.n_frames // 2, 40, 1]
            frames = reader.read(indices)
            assert [decode_index(f) for f in frames] == indices
        finally:
            reader.close()


def test_pyav_seeks_over_gaps_instead_of_decoding_everything(index_videos):
    v = index_videos["h264_gop"]  # 80 frames, a keyframe every <= 8
    reader = PyAVReader(VideoSource(str(v.path), v.path), num_threads=1)
    try:
        frames = reader.read([0, 26, 53, 79])
        assert [decode_index(f) for f in frames] == [0, 26, 53, 79]
        assert reader.frames_decoded < v.n_frames // 2
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_memory_bytes(index_videos, backend):
    v = index_videos["h264"]
    video = load_video(v.path.read_bytes(), backend=backend, cache=False, nframes=4)
    assert decoded(video) == video.indices == [0, 20, 39, 59]
    assert video.source.endswith("bytes>")


def test_frames_list_video(tmp_path):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(index_frame(i, 64, 96)).save(paths[-1])
    video = load_video(paths, cache=False)  # 7 frames padded to 8 by repeating the last, 2 fps -> all
    assert video.indices == [0, 1, 2, 3, 4, 5, 6, 6] and decoded(video) == video.indices
    assert video.fps == pytest.approx(2.0) and video.backend == "frames"
    pil = [Image.fromarray(index_frame(i, 64, 96)) for i in range(7)]
    video = load_video(pil, nframes=4, frames_fps=4.0, cache=False)
    assert video.indices == [0, 2, 5, 6] and decoded(video) == video.indices
    assert video.timestamps == pytest.approx([0.0, 0.5, 1.25, 1.75])
    pil[2] = pil[2].resize((120, 80))  # a frame of another size is resized to the common size
    mixed = load_video(pil, nframes=4, frames_fps=4.0, cache=False)
    assert mixed.frames.shape == video.frames.shape and decoded(mixed) == video.indices
    assert video.frames.shape[2:] == torch.Size(video_frame_size(VideoSampling(), 4, 64, 96))


# -------------------------------------------------------------------------------------------- images
def _jpeg_bytes(size=(60, 40), exif_orientation=None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    buf = io.BytesIO()
    if exif_orientation is None:
        image.save(buf, format="JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_load_image_sources(tmp_path):
    data = _jpeg_bytes()
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    sources = [
        path,
        str(path),
        f"file://{path}",
        data,
        b64,
        f"data:image/jpeg;base64,{b64}",
        Image.open(path),
    ]
    for source in sources:
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (60, 40), type(source)
    resized = load_image(path, max_pixels=4 * 784, factor=28)
    assert resized.size[::-1] == smart_resize(40, 60, factor=28, max_pixels=4 * 784)


def test_load_image_exif_and_alpha(tmp_path):
    assert load_image(_jpeg_bytes((60, 40), exif_orientation=6)).size == (40, 60)  # rotated 90 degrees
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgb = np.asarray(load_image(rgba))
    assert rgb[0, 0].tolist() == [0, 0, 255] and rgb[4, 4].tolist() == [255, 255, 255]  # alpha -> white


def test_load_image_errors(tmp_path):
    with pytest.raises(MediaError, match="missing.jpg: file not found"):
        load_image(str(tmp_path / "missing.jpg"))
    big = tmp_path / "big.png"
    Image.new("L", (5000, 5000)).save(big)
    with pytest.raises(MediaError, match="big.png: .*decompression bomb"):
        load_image(big, max_source_pixels=10_000_000)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(_jpeg_bytes()[:200])
    with pytest.raises(MediaError, match="bad.jpg"):
        load_image(bad)


# -------------------------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def broken_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    real = write_index_video(root / "real.mp4", 40, fps=10).read_bytes()
    garbled = bytearray(real)  # the moov index is at the end: this hits frame data in the middle
    garbled[len(real) // 2 : len(real) // 2 + 300] = bytes(
        (b * 7 + 13) % 256 for b in garbled[len(real) // 2 :][:300]
    )
    files = {
        "corrupt": os.urandom(4000),
        "truncated": real[: len(real) // 2],
        "empty": b"",
        "garbled": bytes(garbled),
    }
    for name, data in files.items():
        (root / f"{name}.mp4").write_bytes(data)
    return root


@pytest.mark.parametrize("backend", [*BACKENDS, None])
@pytest.mark.parametrize("name", ["corrupt", "truncated", "empty", "garbled", "missing"])
def test_bad_videos_raise_media_error_naming_the_source(broken_videos, name, backend):
    path = broken_videos / f"{name}.mp4"
    with pytest.raises(MediaError, match=f"{name}.mp4") as info:
        load_video(str(path), fps=10.0, backend=backend, cache=False)
    if name != "missing":
        assert re.search("not a readable video|truncated|corrupt|zero frames|cannot decode", str(info.value))
    if backend is None and name == "garbled":  # indexes fine, then every decoder fails on the data
        assert "decord" in str(info.value) and "pyav" in str(info.value)


def test_decord_on_truncated_bytes_does_not_crash(tmp_path):
    """decord's in-memory reader segfaulted on this input; bytes now reach decord through a file."""
    path = write_index_video(tmp_path / "t.avi", 60, fps=10, codec="mpeg4")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code = (
        "import sys; from mmreward.data.media import load_video, MediaError\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "try:\n    load_video(data, backend='decord', cache=False)\nexcept MediaError as e:\n    print('MediaError', e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("MediaError <"), (out.returncode, out.stderr[-500:])
    assert "truncated" in out.stdout


def test_truncated_stream_with_index_up_front(tmp_path):
    """moov first (faststart): the file opens, but frames after the cut are gone; never padded."""
    import av

    path = tmp_path / "fs.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(40):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    for backend in [*BACKENDS, None]:
        with pytest.raises(MediaError, match="fs.mp4: .*(truncated|corrupt)"):
            load_video(path, backend=backend, cache=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_errors(index_videos, backend):
    v = index_videos["h264"]  # 6 s
    with pytest.raises(
        MediaError, match=r"idx.mp4: window \[7.0, 9.0\] s is outside the video \(duration 6.00 s\)"
    ):
        load_video(v.path, start=7.0, end=9.0, backend=backend, cache=False)
    with pytest.raises(MediaError, match="start >= end"):
        load_video(v.path, start=3.0, end=2.0, backend=backend, cache=False)
    with pytest.raises(MediaError, match="too few frames"):
        load_video(v.path, nframes=100, backend=backend, cache=False)


# --------------------------------------------------------------------------------------------- cache
def test_cache_hits_misses_invalidation_and_eviction(index_videos, tmp_path, fresh_cache):
    path = tmp_path / "c.mp4"
    path.write_bytes(index_videos["h264"].path.read_bytes())
    a = load_video(path, nframes=4)
    b = load_video(str(path), nframes=4)
    assert b is a and media_cache_info()["hits"] == 1 and media_cache_info()["misses"] == 1
    assert load_video(path, nframes=6) is not a  # different request
    assert load_video(path, nframes=4, start=0.5) is not a
    assert media_cache_info()["misses"] == 3 and media_cache_info()["entries"] == 3
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touch: new identity
    assert load_video(path, nframes=4) is not a
    clear_media_cache()
    first = load_video(path, nframes=4)
    set_media_cache_bytes(2 * first.nbytes)  # room for two
    second = load_video(path, nframes=4, start=1.0)
    assert load_video(path, nframes=4) is first  # now most recently used
    load_video(path, nframes=4, start=2.0)  # evicts `second`, the least recently used
    assert load_video(path, nframes=4) is first
    assert load_video(path, nframes=4, start=1.0) is not second
    set_media_cache_bytes(first.nbytes - 1)  # an item larger than the cap is not cached
    assert media_cache_info()["entries"] == 0
    assert load_video(path, nframes=4) is not load_video(path, nframes=4)


def test_import_is_light():
    code = "import sys, mmreward.data.media; print(sorted({'decord', 'av'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
