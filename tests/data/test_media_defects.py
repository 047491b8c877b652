"""Issue 13: frames you can trust. One test per defect, on media generated here (PyAV), checked through
frames that carry their own index (``synthetic.index_frame``) and hand-computed times:

1. decord's random access on MPEG-4 Part 2 AVI with B-frames returned wrong frames;
2. PyAV ignored rotation metadata;
3. variable-frame-rate clips were sampled and windowed by index / average fps;
4. a truncated WebM was not detected;
5. 16-bit grayscale PNGs came back washed out;
6. an AV1 file decord cannot decode was reported as "truncated or corrupt?".
"""

import struct
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from mmreward.data.media import MediaError, VideoSampling, load_image, load_video
from mmreward.data.media.backends import DecordReader, PyAVReader, VideoSource
from mmreward.data.media.index import probe_index
from mmreward.data.synthetic import decode_index, index_frame, write_index_video

BACKENDS = ["decord", "pyav"]


def decoded(video) -> list[int]:
    return [decode_index(f) for f in video.frames]


def _encode(path, codec, frames_at, rate=10, container_options=None, **ctx):
    """Encode index frames; ``frames_at`` = [(index, pts in ms)] (pts None: the encoder's own)."""
    import av

    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for key, value in ctx.items():
            setattr(stream.codec_context, key, value)
        for i, ms in frames_at:
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            if ms is not None:
                frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


# ------------------------------------------------------------------------ 1. wrong frames from decord
@pytest.fixture(scope="module")
def bframe_avi(tmp_path_factory):
    path = tmp_path_factory.mktemp("bf") / "bframes.avi"
    return _encode(path, "mpeg4", [(i, None) for i in range(40)], gop_size=12, max_b_frames=2)


def test_bframe_avi_gives_the_requested_frames(bframe_avi):
    index = probe_index(VideoSource(str(bframe_avi), bframe_avi))
    assert index.container == "avi" and index.has_b_frames and index.total_frames == 40
    wanted = [0, 5, 13, 20, 27, 39]  # decord's get_batch returned [0, 5, 3, 10, 29, 38]
    with pytest.raises(MediaError, match="decord's seeking is unreliable on AVI with B-frames"):
        DecordReader(VideoSource(str(bframe_avi), bframe_avi), 1)
    reader = PyAVReader(VideoSource(str(bframe_avi), bframe_avi), 1)
    try:
        assert [decode_index(f) for f in reader.read(wanted)] == wanted
    finally:
        reader.close()
    video = load_video(bframe_avi, nframes=8, cache=False)  # default path: decord refused, PyAV used
    assert video.backend == "pyav" and decoded(video) == video.indices == [0, 6, 11, 17, 22, 28, 33, 39]


def test_decord_seek_table_is_checked_against_the_index(bframe_avi, monkeypatch):
    """Without the AVI rule, the timestamp check alone still refuses decord on this file."""
    monkeypatch.setattr(DecordReader, "_refuse_unreliable", lambda self: None)
    with pytest.raises(MediaError, match="decord's frame table disagrees with the container"):
        DecordReader(VideoSource(str(bframe_avi), bframe_avi), 1)


# ---------------------------------------------------------------------------------------- 2. rotation
def _rotate_mp4(src, dst):
    """Copy an MP4 with its track header's display matrix set to a 90-degree rotation (a phone held
    upright): ffmpeg reports "rotation of -90 degrees", players turn the picture clockwise."""
    data = bytearray(src.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    # version/flags, creation/modification times, track id, reserved, duration, reserved, layer, group,
    # volume, reserved -> the 3x3 matrix (16.16 fixed point, last column 2.30)
    offset = at + 4 + 4 + (8 if version == 0 else 16) + 8 + (4 if version == 0 else 8) + 8 + 8
    assert struct.unpack(">9i", data[offset : offset + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    data[offset : offset + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_video_comes_back_upright(tmp_path, backend):
    plain = write_index_video(tmp_path / "plain.mp4", 20, fps=10)
    rotated = _rotate_mp4(plain, tmp_path / "rot90.mp4")
    video = load_video(rotated, nframes=4, backend=backend, cache=False, max_pixels=96 * 64, min_pixels=64 * 64)
    frames = video.frames.permute(0, 2, 3, 1).numpy()
    assert frames.shape[1] > frames.shape[2]  # portrait now: 96 wide pixels shown 96 tall
    for frame, i in zip(frames, video.indices):
        # Upright = the stored picture turned clockwise; turning it back reads the index again.
        assert decode_index(np.rot90(frame, k=1)) == i
    reference = np.rot90(index_frame(video.indices[1]), k=-1)  # clockwise, the expected display
    small = np.asarray(Image.fromarray(np.ascontiguousarray(reference)).resize(frames.shape[2:0:-1]))
    assert np.abs(frames[1].astype(int) - small.astype(int)).mean() < 12
    assert np.abs(frames[1].astype(int) - small[::-1, ::-1].astype(int)).mean() > 40  # not 180 off


# ----------------------------------------------------------------------------------- 3. variable rate
@pytest.fixture(scope="module")
def vfr_mp4(tmp_path_factory):
    """Frames 0..29 every 100 ms, then 30..89 every 25 ms: 4.5 s, average 20 fps."""
    times_ms = [i * 100 for i in range(30)] + [3000 + 25 * i for i in range(60)]
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    _encode(path, "libx264", list(enumerate(times_ms)), rate=40, time_base=Fraction(1, 1000))
    return path, [t / 1000 for t in times_ms]


@pytest.mark.parametrize("backend", BACKENDS)
def test_vfr_window_and_timestamps_use_real_times(vfr_mp4, backend):
    path, times = vfr_mp4
    video = load_video(path, fps=2.0, start=1.0, end=3.0, backend=backend, cache=False)
    # Window frames: 10 (1.0 s) .. 30 (3.0 s), covering 1.0 .. 3.025 s -> floor(2.025 s x 2) = 4 frames at
    # times linspace(1.0, 3.0, 4) = 1.0, 1.667, 2.333, 3.0 -> nearest frames 10, 17, 23, 30.
    assert video.indices == [10, 17, 23, 30] and decoded(video) == video.indices
    assert video.timestamps == pytest.approx([1.0, 1.7, 2.3, 3.0])
    assert all(1.0 <= t <= 3.0 for t in video.timestamps)
    assert video.fps == pytest.approx(4 / 2.025)
    whole = load_video(path, fps=2.0, backend=backend, cache=False)
    # 4.5 s x 2 fps = 9 -> 8 frames at linspace(0, 4.475, 8): nearest by time, not by index.
    assert whole.indices == [0, 6, 13, 19, 26, 38, 63, 89] and decoded(whole) == whole.indices
    assert whole.timestamps == pytest.approx([times[i] for i in whole.indices])
    assert whole.duration == pytest.approx(4.5)
    gaps = np.diff(whole.timestamps)
    assert gaps.max() - gaps.min() <= 0.1 + 1e-9  # even up to the 0.1 s frame spacing (index rule: 0.3 .. 1.3 s)


def test_vfr_index_timing_keeps_qwen_vl_utils_rule(vfr_mp4):
    path, _ = vfr_mp4
    s = VideoSampling(fps=2.0, timing="index")
    video = load_video(path, sampling=s, cache=False)
    n = 90
    fps = n / 4.5  # FFmpeg's average rate: 90 frames over the stream's 4.5 s
    # qwen-vl-utils: 90 / 20 x 2 = 9 -> 8 frames, linspace(0, 89, 8).round()
    assert video.native_fps == pytest.approx(fps, rel=0.05)
    assert video.indices == [0, 13, 25, 38, 51, 64, 76, 89] and decoded(video) == video.indices
    assert video.timestamps == pytest.approx([i / video.native_fps for i in video.indices])
    with pytest.raises(ValueError, match="timing"):
        VideoSampling(timing="frames")


# ------------------------------------------------------------------------------------ 4. truncated WebM
@pytest.mark.parametrize("backend", [*BACKENDS, None])
def test_truncated_webm_is_detected(tmp_path, backend):
    path = write_index_video(tmp_path / "cut.webm", 90, fps=30, codec="libvpx-vp9")
    whole = load_video(path, nframes=4, backend=backend, cache=False)
    assert decoded(whole) == whole.indices == [0, 30, 59, 89]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut.webm: truncated or corrupt stream \(container says 3.00 s"):
        load_video(path, nframes=4, backend=backend, cache=False)


# --------------------------------------------------------------------------------- 5. 16-bit grayscale
def test_16bit_grayscale_png_keeps_its_brightness(tmp_path):
    ramp16 = np.linspace(0, 65535, 64 * 96).reshape(64, 96).astype(np.uint16)
    ramp8 = np.round(ramp16 / 257).astype(np.uint8)
    Image.fromarray(ramp16).save(tmp_path / "g16.png")
    Image.fromarray(ramp8).save(tmp_path / "g8.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got16, got8 = np.asarray(load_image(tmp_path / "g16.png")), np.asarray(load_image(tmp_path / "g8.png"))
    assert got16.shape == (64, 96, 3) and (got16[..., 0] == got16[..., 2]).all()
    assert np.abs(got16.astype(int) - got8.astype(int)).max() <= 1
    assert got16.mean() == pytest.approx(ramp8.mean(), abs=0.5)  # 127.5, not ~255 (clipped)
    assert load_image(Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32))).getpixel((0, 0)) == (128,) * 3


# ----------------------------------------------------------------------------- 6. unsupported codec
def test_av1_unsupported_by_decord_is_named_and_pyav_decodes_it(tmp_path):
    import av

    if "libsvtav1" not in av.codecs_available and "libaom-av1" not in av.codecs_available:
        pytest.skip("this PyAV build has no AV1 encoder")
    codec = "libsvtav1" if "libsvtav1" in av.codecs_available else "libaom-av1"
    path = write_index_video(tmp_path / "clip.mkv", 20, fps=10, codec=codec)
    try:
        DecordReader(VideoSource(str(path), path), 1).close()
        pytest.skip("this decord build decodes AV1")
    except MediaError as e:
        assert "decord cannot decode av1 video (codec unsupported by this backend)" in str(e)
        assert "truncated" not in str(e)
    video = load_video(path, nframes=4, cache=False)
    assert video.backend == "pyav" and decoded(video) == video.indices == [0, 6, 13, 19]


def test_backends_differ_only_in_colour_conversion_on_odd_size_vp9(tmp_path):
    """README: same frame indices always; pixels may differ on odd-size (or 10-bit) streams, where each
    library's FFmpeg upsamples chroma its own way. Neither is wrong: both are as close to the source."""
    import av

    rng = np.random.default_rng(0)
    sources = []
    with av.open(str(tmp_path / "odd.webm"), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 97, 65, "yuv420p"
        for i in range(12):
            image = np.zeros((65, 97, 3), dtype=np.uint8)
            image[:64, :96] = index_frame(i)
            sources.append(np.clip(image + rng.integers(0, 60, image.shape), 0, 255).astype(np.uint8))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(sources[-1], format="rgb24")))
        container.mux(stream.encode(None))
    src = VideoSource("odd.webm", tmp_path / "odd.webm")
    errors = {}
    for reader_cls in (DecordReader, PyAVReader):
        reader = reader_cls(src, 1)
        try:
            frames = reader.read([0, 5, 11])
        finally:
            reader.close()
        assert frames.shape == (3, 65, 97, 3)
        errors[reader_cls.name] = np.mean([np.abs(f.astype(int) - sources[i]).mean() for f, i in
                                           zip(frames, [0, 5, 11])])
    assert abs(errors["decord"] - errors["pyav"]) < 0.5, errors


def test_plan_frames_time_rule_by_hand():
    """The pure planner on a hand-made VFR clock: 0, 0.5, 1.0 s, then every 0.1 s to 2.0 s (13 frames)."""
    from mmreward.data.media.sampling import plan_frames

    times = [0.0, 0.5, 1.0] + [round(1.1 + 0.1 * k, 10) for k in range(10)]
    p = plan_frames(VideoSampling(nframes=4), None, None, times, 6.0, cfr=False)
    # linspace(0, 2.0, 4) = 0, 0.667, 1.333, 2.0 -> nearest 0.0 (0), 0.5 (1), 1.3 (5), 2.0 (12)
    assert p.indices == [0, 1, 5, 12] and p.timestamps == pytest.approx([0.0, 0.5, 1.3, 2.0])
    assert p.duration == pytest.approx(2.1)  # last frame + its interval
    w = plan_frames(VideoSampling(fps=2.0, min_frames=2), 0.4, 1.55, times, 6.0, cfr=False)
    # frames at 0.5 .. 1.5 (positions 1..7); they cover 0.5 .. 1.6 s = 1.1 s x 2 fps -> 2 frames
    assert w.indices == [1, 7] and w.fps == pytest.approx(2 / 1.1)
    with pytest.raises(ValueError, match="outside the video"):
        plan_frames(VideoSampling(nframes=2), 2.5, None, times, 6.0, cfr=False)
    with pytest.raises(ValueError, match="fewer than 2 frames"):
        plan_frames(VideoSampling(nframes=2), 0.1, 0.4, times, 6.0, cfr=False)
    cfr = [i / 10 for i in range(13)]  # constant rate: qwen-vl-utils' index rule, times from the stream
    c = plan_frames(VideoSampling(nframes=4), None, None, cfr, 10.0, cfr=True)
    assert c.indices == [0, 4, 8, 12] and c.fps == pytest.approx(4 / 13 * 10)


def test_mutated_videos_raise_only_media_error(tmp_path):
    """Hostile input: bit flips, cuts and overwritten runs in four containers (seeded; case 42 once
    reached PyAV with no codec context and raised AttributeError)."""
    rng = np.random.default_rng(1)
    kinds = [(".mp4", {}), (".webm", {"codec": "libvpx-vp9"}), (".avi", {"codec": "mpeg4"}), (".mkv", {"gop": 5})]
    sources = [write_index_video(tmp_path / f"v{i}{ext}", 30, fps=10, **kw).read_bytes()
               for i, (ext, kw) in enumerate(kinds)]
    for k in range(48):
        data = bytearray(sources[k % 4])
        if k % 3 == 0:
            for _ in range(20):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
        elif k % 3 == 1:
            data = data[: rng.integers(1, len(data))]
        else:
            at = rng.integers(0, len(data) - 100)
            data[at : at + 100] = rng.integers(0, 256, 100, dtype=np.uint8).tobytes()
        try:
            video = load_video(bytes(data), nframes=4, cache=False)
        except MediaError:
            continue
        assert video.frames.shape[0] == 4 and len(video.indices) == 4
