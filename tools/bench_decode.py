"""Benchmark video decoding: our sampled-frame decode (decord / PyAV) vs decoding every frame vs qwen-vl-utils.

    python tools/bench_decode.py                                   # 60 s, 1280x720, 30 fps, GOP 2 s
    python tools/bench_decode.py --duration 20 --height 360 --width 640 --repeats 2

Generates a test video once (textured, moving content so the codec has real work; cached under
--cache-dir), then times, with the media cache off:
  - ``load_video`` at the default 2 fps and with ``nframes``, per backend (includes the resize to the
    qwen-vl-utils pixel budget, like ``fetch_video``);
  - decoding every frame sequentially (decord ``next()``, PyAV ``decode()``): the naive baseline;
  - ``qwen_vl_utils.fetch_video`` on the same requests, with each of its readers that works here;
  - frames/s of one worker (one process, one video at a time) with 1 vs 2 decoder threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mmreward.data.media import VideoSampling, load_video
from mmreward.data.synthetic import index_frame, write_video
from mmreward.data.video_backends import DecordReader, PyAVReader, VideoSource


def make_video(args) -> Path:
    """A scrolling blocky texture plus film grain (~2.7 Mbit/s at 720p30, typical of web video) and an
    index patch; written once and reused from --cache-dir."""
    cache = Path(args.cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"bench_v2_{args.duration}s_{args.width}x{args.height}_{args.fps}fps_gop{args.gop}.mp4"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (args.height // 16 + 2, args.width // 16 + 2, 3), dtype=np.uint8)
    texture = np.kron(small, np.ones((16, 16, 1), dtype=np.uint8))
    texture = np.concatenate([texture, texture], axis=0)
    texture = np.concatenate([texture, texture], axis=1)  # tiled twice so any scroll offset fits
    # Grain that changes every frame: without it the codec predicts almost everything and decoding
    # is unrealistically cheap.
    grain = [rng.integers(-8, 9, (args.height, args.width, 1), dtype=np.int16) for _ in range(7)]

    def frames():
        for i in range(int(args.duration * args.fps)):
            dy, dx = (2 * i) % (texture.shape[0] // 2), (3 * i) % (texture.shape[1] // 2)
            frame = texture[dy : dy + args.height, dx : dx + args.width] + grain[i % len(grain)]
            frame = np.clip(frame, 0, 255).astype(np.uint8)
            frame[:64, :96] = index_frame(i % 4096, 64, 96)
            yield frame

    print(f"writing {path} ...", flush=True)
    t0 = time.perf_counter()
    tmp = path.with_suffix(".tmp.mp4")
    write_video(tmp, frames(), args.fps, gop=args.gop, options={"preset": "veryfast", "crf": "23"})
    tmp.rename(path)
    mbit = path.stat().st_size * 8 / args.duration / 1e6
    print(
        f"  done in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.1f} MB, {mbit:.1f} Mbit/s)"
    )
    return path


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def decode_all_decord(path: Path, threads: int) -> int:
    import decord

    vr = decord.VideoReader(str(path), num_threads=threads)
    for _ in range(len(vr)):
        vr.next().asnumpy()
    return len(vr)


def decode_all_pyav(path: Path, threads: int) -> int:
    import av

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type, stream.codec_context.thread_count = "AUTO", threads
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def qwen_fetch(path: Path, reader: str, request: dict):
    """qwen_vl_utils.fetch_video forced onto one of its readers (it normally picks one at first use)."""
    from qwen_vl_utils import vision_process as qv

    qv.get_video_reader_backend = lambda: reader
    return qv.fetch_video({"video": str(path), **request})


def decode_only(reader, path: Path, request: dict, threads: int) -> int:
    """Open + pick indices exactly as load_video does + decode them; no resize (compare with decode-all)."""
    from mmreward.data.media import _plan

    r = reader(VideoSource(str(path), path), threads)
    try:
        s = VideoSampling(**request)
        indices, _ = _plan(str(path), s, None, None, r.total_frames, r.native_fps)
        return r.read(indices).shape[0]
    finally:
        r.close()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--gop", type=int, default=None, help="keyframe interval in frames (default 2 s)")
    p.add_argument("--nframes", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="decoder threads for the main table")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache-dir", default="~/.cache/mmreward/bench")
    args = p.parse_args(argv)
    args.gop = args.gop or int(round(2 * args.fps))
    path = make_video(args)
    print(
        f"video: {path.name}, {int(args.duration * args.fps)} frames, GOP {args.gop}; threads={args.threads}"
    )
    rows: dict[str, tuple[float, int]] = {}  # name -> (seconds, frames returned)

    def add(name, fn, repeats=args.repeats):
        seconds, out = timed(fn, repeats)
        n = (
            out
            if isinstance(out, int)
            else len(out.indices)
            if hasattr(out, "timestamps")
            else int(out.shape[0])
        )
        rows[name] = (seconds, n)
        print(f"  {name:<44} {seconds * 1000:9.1f} ms  {n:5d} frames", flush=True)

    add("decode all: decord sequential", lambda: decode_all_decord(path, args.threads), 1)
    add("decode all: pyav sequential", lambda: decode_all_pyav(path, args.threads), 1)
    requests = {"fps=2": dict(fps=2.0), f"nframes={args.nframes}": dict(nframes=args.nframes)}
    for label, req in requests.items():
        for name, reader in (("decord", DecordReader), ("pyav", PyAVReader)):
            add(
                f"ours decode-only {name} {label}",
                lambda rd=reader, r=req: decode_only(rd, path, r, args.threads),
            )
        for backend in ("decord", "pyav"):
            add(
                f"ours load_video {backend} {label}",
                lambda b=backend, r=req: load_video(
                    path, backend=b, cache=False, num_threads=args.threads, **r
                ),
            )
        for reader in ("decord", "torchvision", "torchcodec"):
            try:
                add(f"qwen-vl-utils {reader} {label}", lambda rd=reader, r=req: qwen_fetch(path, rd, r))
            except Exception as e:  # reader not installed / removed from torchvision
                print(f"  qwen-vl-utils {reader} {label}: unavailable ({type(e).__name__}: {str(e)[:60]})")
    report(rows, requests)
    per_worker(path, args)


def report(rows: dict[str, tuple[float, int]], requests) -> None:
    print(
        f"\n{'measurement':<44} {'ms':>9} {'frames':>7} {'frames/s':>9} {'vs decode-all':>14} {'vs qwen':>8}"
    )
    for name, (s, n) in rows.items():
        vs_all = vs_qwen = ""
        if name.startswith("ours decode-only"):
            backend = name.split()[2]
            vs_all = f"{rows[f'decode all: {backend} sequential'][0] / s:.1f}x"
        if name.startswith("ours load_video"):
            label = name.split()[-1]
            qwen = rows.get(f"qwen-vl-utils decord {label}")
            vs_qwen = f"{qwen[0] / s:.2f}x" if qwen else "n/a"
        print(f"{name:<44} {s * 1000:9.1f} {n:7d} {n / s:9.1f} {vs_all:>14} {vs_qwen:>8}")
    print("vs decode-all: decoding every frame with the same backend / decoding only the sampled frames.")
    print("vs qwen: qwen_vl_utils.fetch_video (decord reader) on the same request / our load_video;")
    print("  both include the bicubic antialiased resize to the pixel budget, which dominates at 2 fps.")


def worker_rate(backend: str, what: str, path: Path, threads: int, repeats: int) -> float:
    """Sampled frames/s of one worker at the default 2 fps sampling."""
    if what == "decode-only":
        reader = {"decord": DecordReader, "pyav": PyAVReader}[backend]
        s, n = timed(lambda: decode_only(reader, path, dict(fps=2.0), threads), repeats)
        return n / s
    s, video = timed(lambda: load_video(path, backend=backend, cache=False, num_threads=threads), repeats)
    return len(video.indices) / s


def per_worker(path: Path, args) -> None:
    """Frames/s of one worker (one process, one video at a time) for 1 vs 2 decoder threads."""
    print("\nframes/s per worker, default sampling (2 fps), cache off:")
    print(f"{'':<24} {'1 thread':>10} {'2 threads':>10}")
    for backend in ("decord", "pyav"):
        for what in ("decode-only", "load_video"):
            one, two = (worker_rate(backend, what, path, t, args.repeats) for t in (1, 2))
            print(f"{backend + ' ' + what:<24} {one:10.1f} {two:10.1f}")


if __name__ == "__main__":
    sys.exit(main())
